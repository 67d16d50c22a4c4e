"""Step 2 of the Tune page, check before spending time: the engine's verdict on the data
(`engine.tune.prepare.DataCheck`) as a summary, the issues, a duration histogram and the rows
that will not train and why. Blocking issues keep the job from starting; warnings can be
accepted. Characters the model cannot write can be added to its vocabulary from here. The texts
are drawn from the check kept, so a language switch rewords them. The table lists the first
findings of a long report (a table of 20 000 rows is slow to fill and to read); "Save report…"
writes every one to a TSV or CSV file."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.atomic import atomic_write_text
from engine.errors import TingxieError
from engine.tune.data import Finding
from engine.tune.prepare import DataCheck, Issue

from ..errors import error_text
from ..i18n import tr
from ..savedialog import ask_save_file, write_error_text
from . import strings  # noqa: F401  (registers the strings used below)

__all__ = ["CheckPanel", "detail_text", "issue_text", "report_text"]

_MAX_ROWS = 1000  # findings listed (the summary counts them all, the saved report holds them)
_COLUMNS = ("tune.col.row", "tune.col.problem", "tune.col.detail", "tune.col.used")
_REPORT_DELIMITERS = {"tsv": "\t", "csv": ","}  # the report's formats, by suffix
_BLOCKING_COLOR, _WARNING_COLOR = "#c62828", "#e65100"


def detail_text(code: str, params: Mapping[str, object], english: str) -> str:
    """A finding's or an issue's detail in the UI language, by its engine.errors code (its
    English when it has none: a system's message, a name)."""
    if not code:
        return english
    params = dict(params)
    if "counts" in params:  # how many rows of each kind ("dataset.none_usable"): in words here
        params["found"] = tr("tune.check.separator").join(
            tr("tune.check.kind_count", kind=tr(f"tune.finding.{kind}"), count=n)
            for kind, n in params["counts"]
        )
    return error_text(TingxieError(code, **params))


def issue_text(issue: Issue) -> str:
    detail = detail_text(issue.code, issue.params, issue.detail)
    return tr(f"tune.issue.{issue.kind}", count=issue.count, detail=detail)


def _finding_cells(finding: Finding) -> tuple[str, str, str, str]:
    """A finding as the table and the report show it: its row, problem, detail, and whether
    the row trains, in the UI language."""
    used = tr("tune.check.skipped") if finding.skipped else tr("tune.check.kept")
    detail = detail_text(finding.code, finding.params, finding.detail)
    return finding.origin, tr(f"tune.finding.{finding.kind}"), detail, used


def report_text(findings: Iterable[Finding], delimiter: str) -> str:
    """Every finding under the table's column titles, cells split by `delimiter` (a tab: TSV,
    a comma: CSV) and quoted where a cell holds one, as spreadsheets and csv readers take it."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow([tr(k) for k in _COLUMNS])
    writer.writerows(_finding_cells(f) for f in findings)
    return buf.getvalue()


class CheckPanel(QWidget):
    next_requested = Signal()
    add_vocabulary = Signal()
    ready_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.check: DataCheck | None = None
        self._checking = False  # a check runs: its verdict is to come
        self.title = QLabel()
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.issues = QLabel()
        self.issues.setWordWrap(True)
        self.accept_box = QCheckBox()
        self.accept_box.toggled.connect(self._update)
        self.vocab_button = QPushButton()
        self.vocab_button.clicked.connect(self.add_vocabulary)
        self.histogram = pg.PlotWidget(background="w")
        self.histogram.setMouseEnabled(x=False, y=False)
        self.histogram.setMenuEnabled(False)  # pyqtgraph's own menu is English only
        self.histogram.hideButtons()
        self.histogram.setMinimumHeight(140)
        self.histogram.setMaximumHeight(200)
        self.histogram.getAxis("bottom").enableAutoSIPrefix(False)  # seconds, never "x0.001"
        self.histogram.hide()  # empty axes say nothing: shown with a check's durations
        self.table = QTableWidget(0, 4)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.listed = QLabel()  # how much of a long report the table lists; a report saved
        self.listed.setWordWrap(True)
        self.save_button = QPushButton()
        self.save_button.setObjectName("check-save-report")
        self.save_button.clicked.connect(self.save_report)
        report = QHBoxLayout()
        report.addWidget(self.listed, 1)
        report.addWidget(self.save_button)
        self.next_button = QPushButton()
        self.next_button.setObjectName("check-next")
        self.next_button.clicked.connect(self.next_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.accept_box)
        buttons.addWidget(self.vocab_button)
        buttons.addStretch(1)
        buttons.addWidget(self.next_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.summary)
        layout.addWidget(self.issues)
        layout.addWidget(self.histogram)
        layout.addWidget(self.table, 1)
        layout.addLayout(report)
        layout.addLayout(buttons)
        self.retranslate()
        self._update()

    def retranslate(self) -> None:
        self.title.setText(tr("tune.check.title"))
        self.table.setAccessibleName(tr("tune.check.title"))
        self.accept_box.setText(tr("tune.check.accept"))
        self.vocab_button.setText(tr("tune.check.add_vocab"))
        self.next_button.setText(tr("tune.check.next"))
        self.save_button.setText(tr("tune.check.save_report"))
        self.table.setHorizontalHeaderLabels([tr(k) for k in _COLUMNS])
        self.histogram.setLabel("bottom", tr("tune.check.seconds"))
        self.histogram.setLabel("left", tr("tune.check.utterances"))
        self._show_texts()

    def show_checking(self) -> None:
        self.check, self._checking = None, True
        self.histogram.clear()
        self.histogram.hide()
        self._show_texts()
        self._update()

    def stop_checking(self) -> None:
        """The check could not run (the page says why): it no longer says it is checking."""
        if self._checking:
            self._checking = False
            self._show_texts()
            self._update()

    def show_check(self, check: DataCheck) -> None:
        self.check, self._checking = check, False
        self.accept_box.setChecked(False)
        self.histogram.clear()
        if check.histogram:
            lo = [b[0] for b in check.histogram]
            width = check.histogram[0][1] - check.histogram[0][0] or 1.0
            bars = pg.BarGraphItem(
                x=[x + width / 2 for x in lo],
                height=[b[2] for b in check.histogram],
                width=0.9 * width,
                brush="#1565c0",
            )
            self.histogram.addItem(bars)
        self.histogram.setVisible(bool(check.histogram))
        self._show_texts()
        self._update()

    def _show_texts(self) -> None:
        check = self.check
        findings = check.report.findings if check and check.report else []
        self.table.setRowCount(min(len(findings), _MAX_ROWS))
        for row, f in enumerate(findings[:_MAX_ROWS]):
            for col, text in enumerate(_finding_cells(f)):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.save_button.setVisible(bool(findings))
        self.listed.setVisible(len(findings) > _MAX_ROWS)
        self.listed.setText(tr("tune.check.listed", shown=_MAX_ROWS, total=len(findings)))
        if check is None:
            self.summary.setText(tr("tune.check.running") if self._checking else "")
            self.issues.setText("")
            return
        if check.report is not None:
            self.summary.setText(
                tr(
                    # which held-out rows measure the result and which choose the checkpoint
                    "tune.check.summary_split"
                    if check.selection_examples
                    else "tune.check.summary",
                    usable=len(check.report.kept),
                    total=check.report.total,
                    minutes=check.report.kept_seconds / 60,  # of the rows counted usable
                    train=check.train_examples,
                    train_minutes=check.train_seconds / 60,
                    heldout=check.heldout_examples,
                    heldout_seconds=check.heldout_seconds,
                    report=check.report_examples,
                    selection=check.selection_examples,
                )
            )
        else:
            self.summary.setText("")
        lines = [
            f'<p style="color:{_BLOCKING_COLOR if i.blocking else _WARNING_COLOR}">'
            f"{tr('tune.check.blocking' if i.blocking else 'tune.check.warning')}"
            f"{_escape(issue_text(i))}</p>"
            for i in check.issues
        ]
        self.issues.setText("".join(lines) or tr("tune.check.clean"))

    def save_report(self) -> None:
        """Ask for a file and write every finding to it (TSV or CSV, by its suffix): the table
        lists the first `_MAX_ROWS` only. Never over the data the check read."""
        check = self.check
        if check is None or check.report is None:
            return
        title = tr("tune.check.save_report")
        target = self._ask_report_path(title, check.sources)
        if target is None:
            return
        findings = check.report.findings
        try:
            text = report_text(findings, _REPORT_DELIMITERS[target.suffix.lower().lstrip(".")])
            atomic_write_text(target, text)
        except OSError as e:
            QMessageBox.warning(self, tr("dialog.error"), write_error_text(target, e))
            return
        self.listed.setText(tr("tune.check.report_saved", count=len(findings), path=str(target)))
        self.listed.show()

    def _ask_report_path(self, title: str, sources: Sequence[str]) -> Path | None:
        """The report's file, beside the data; never one of the data files the check read."""
        first = Path(sources[0]) if sources else Path("data")
        start = str(first.with_name(f"{first.stem}-check.tsv"))
        formats = tuple(_REPORT_DELIMITERS)
        return ask_save_file(self, title, start, formats, sources, "tune.check.report_over_source")

    def ready(self) -> bool:
        """Checked, nothing blocking, and every warning accepted."""
        check = self.check
        if check is None or check.blocking:
            return False
        return not check.warnings or self.accept_box.isChecked()

    def _update(self) -> None:
        check = self.check
        self.accept_box.setVisible(bool(check and check.warnings and not check.blocking))
        unknown = bool(check and any(i.kind == "unknown_chars" for i in check.issues))
        self.vocab_button.setVisible(unknown)
        self.next_button.setEnabled(self.ready())
        self.ready_changed.emit(self.ready())


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
