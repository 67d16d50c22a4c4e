"""Step 5 of the Tune page, the result: held-out CER before and after (base and tuned model on the
same held-out recordings, none of which chose the saved step: engine.tune.data.heldout_shares),
one of those recordings as both models wrote it with the wrong characters marked, and the two
things to do next: use the model, or export it."""

from __future__ import annotations

import html

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from engine.metrics import align
from engine.tune.events import JobResult
from engine.tune.jobs import Comparison

from ..i18n import tr
from . import strings  # noqa: F401  (registers the strings used below)

__all__ = ["ResultPanel", "marked_html"]

_WRONG = "#c62828"


def marked_html(reference: str, hypothesis: str) -> str:
    """The hypothesis with each character the reference does not have there in red."""
    parts = []
    for pair in align(reference, hypothesis):
        char = html.escape(pair.char)
        parts.append(char if pair.correct else f'<b style="color:{_WRONG}">{char}</b>')
    return "".join(parts) or "&nbsp;"


class ResultPanel(QWidget):
    use_requested = Signal()
    export_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: JobResult | None = None
        self.comparison: Comparison | None = None
        self.title = QLabel()
        self.cer = QLabel()
        self.cer.setObjectName("tune-cer")
        self.cer.setWordWrap(True)
        self.sample = QTextBrowser()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.use_button = QPushButton()
        self.use_button.setObjectName("tune-use")
        self.use_button.clicked.connect(self.use_requested)
        self.export_button = QPushButton()
        self.export_button.setObjectName("tune-export")
        self.export_button.clicked.connect(self.export_requested)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.use_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.cer)
        layout.addWidget(self.sample, 1)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.retranslate()
        self.show_result(None, [])

    def retranslate(self) -> None:
        self.title.setText(tr("tune.result.title"))
        self.use_button.setText(tr("tune.result.use"))
        self.export_button.setText(tr("tune.result.export"))
        self._show()

    def show_result(self, result: JobResult | None, comparisons: list[Comparison]) -> None:
        self.result = result
        self.comparison = comparisons[0] if comparisons else None
        self.use_button.setEnabled(result is not None)
        self.export_button.setEnabled(result is not None)
        self.status.setText("")
        self._show()

    def _show(self) -> None:
        r = self.result
        if r is None:
            self.cer.setText(tr("tune.result.none"))
        elif r.cer_before is None or r.cer_after is None:
            self.cer.setText(tr("tune.result.unmeasured"))
        else:
            # No relative change from 0: any error at all is infinitely more.
            change = (r.cer_after - r.cer_before) / r.cer_before if r.cer_before else None
            text = tr(
                "tune.result.cer_unknown_rows" if r.rows_unknown else "tune.result.cer",
                before=100 * r.cer_before,
                after=100 * r.cer_after,
                relative="" if change is None else tr("tune.result.relative", change=100 * change),
                step=r.best_step,
            )
            if r.cer_after >= r.cer_before:  # say so before anyone switches to it
                text += " " + tr("tune.result.not_better")
            self.cer.setText(text)
        c = self.comparison
        if c is None:
            self.sample.setHtml("")
            return
        rows = [
            (tr("tune.result.reference"), html.escape(c.reference)),
            (tr("tune.result.before"), marked_html(c.reference, c.before)),
            (tr("tune.result.after"), marked_html(c.reference, c.after)),
        ]
        body = "".join(
            f"<tr><td><i>{label}</i>&nbsp;</td><td>{text}</td></tr>" for label, text in rows
        )
        self.sample.setHtml(f"<p>{tr('tune.result.sample')}</p><table>{body}</table>")
