"""Step 1 of the Tune page, what to teach: the base model and the data. The data are the
training sets made on the Review page (listed from the library with their size and date), and
any folders (audio + .txt, or Common Voice) and manifests the user adds; every checked row is
used, several are combined into one manifest in the job folder."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.tune.prepare import source_kind

from ..i18n import tr
from ..plain import literal, plain
from . import strings  # noqa: F401  (registers the strings used below)

__all__ = ["SourcesPanel", "TrainingSet"]

# (name, folder, summary) as engine.library.store.Store.correction_sets lists them
TrainingSet = tuple[str, Path, dict]
_COLUMNS = ("tune.col.name", "tune.col.kind", "tune.col.clips", "tune.col.hours", "tune.col.date")


class SourcesPanel(QWidget):
    check_requested = Signal()
    changed = Signal()

    def __init__(
        self, training_sets: Callable[[], list[TrainingSet]], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.training_sets = training_sets
        self.title = QLabel()
        self.model_label = QLabel()
        self.model_box = QComboBox()
        self.model_box.setEditable(True)  # a Hub id is typed in
        self.model_box.setMinimumWidth(420)
        self.model_box.currentTextChanged.connect(self.changed)
        self.model_box.currentTextChanged.connect(self._edited)
        # Whether the box still shows what set_current_model put there (no one changed it
        # since): then it follows the next model switch.
        self._following = True
        self._offering = False
        self.browse_model = QPushButton()
        self.browse_model.clicked.connect(self._browse_model)
        # What the chosen base model's family allows (Whisper: LoRA); it quotes that family.
        self.model_note = plain(QLabel())
        self.model_note.setWordWrap(True)
        self.model_note.setObjectName("tune-model-note")
        self.model_note.hide()
        self.name_label = QLabel()
        self.name_edit = QLineEdit()
        self.data_label = QLabel()
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.itemChanged.connect(lambda _: self.changed.emit())
        self.add_folder = QPushButton()
        self.add_folder.clicked.connect(self._browse_folder)
        self.add_manifest = QPushButton()
        self.add_manifest.clicked.connect(self._browse_manifest)
        self.check_button = QPushButton()
        self.check_button.setObjectName("check-data")
        self.check_button.clicked.connect(self.check_requested)

        model_row = QHBoxLayout()
        self.model_label.setBuddy(self.model_box)  # the fields' accessible names
        self.name_label.setBuddy(self.name_edit)
        self.data_label.setBuddy(self.table)
        model_row.addWidget(self.model_label)
        model_row.addWidget(self.model_box, 1)
        model_row.addWidget(self.browse_model)
        name_row = QHBoxLayout()
        name_row.addWidget(self.name_label)
        name_row.addWidget(self.name_edit, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_folder)
        buttons.addWidget(self.add_manifest)
        buttons.addStretch(1)
        buttons.addWidget(self.check_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(model_row)
        layout.addWidget(self.model_note)
        layout.addWidget(self.data_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addLayout(name_row)
        self.retranslate()
        self.refresh()

    def retranslate(self) -> None:
        self.title.setText(tr("tune.sources.title"))
        self.model_label.setText(tr("tune.sources.model"))
        self.browse_model.setText(tr("dialog.browse"))
        self.name_label.setText(tr("tune.sources.name"))
        self.data_label.setText(tr("tune.sources.data"))
        self.add_folder.setText(tr("tune.sources.add_folder"))
        self.add_manifest.setText(tr("tune.sources.add_manifest"))
        self.check_button.setText(tr("tune.sources.check"))
        self.table.setHorizontalHeaderLabels([tr(k) for k in _COLUMNS])
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 1)
            item.setText(tr(f"tune.kind.{item.data(Qt.ItemDataRole.UserRole)}"))

    # ---- rows ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """List the library's training sets again (checked rows and added sources stay)."""
        checked = set(self.sources())
        added = [self._row_source(r) for r in range(self.table.rowCount()) if not self._is_set(r)]
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        for name, folder, summary in self.training_sets():
            manifest = Path(folder) / "manifest.tsv"
            when = _mtime(manifest)
            hours = f"{summary.get('seconds', 0.0) / 3600:.2f}"
            clips = str(summary.get("examples", ""))
            self._add_row(str(manifest), name, "training_set", clips, hours, when)
        for source in added:
            self._add_source_row(source)
        for row in range(self.table.rowCount()):
            if self._row_source(row) in checked:
                self.table.item(row, 0).setCheckState(Qt.CheckState.Checked)
        self.table.blockSignals(False)
        self.changed.emit()

    def _add_row(self, source: str, name: str, kind: str, *cells: str) -> int:
        row = self.table.rowCount()
        self.table.insertRow(row)
        first = QTableWidgetItem(name)
        first.setData(Qt.ItemDataRole.UserRole, source)
        first.setToolTip(literal(source))
        first.setFlags(first.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        first.setCheckState(Qt.CheckState.Unchecked)
        self.table.setItem(row, 0, first)
        kind_item = QTableWidgetItem(tr(f"tune.kind.{kind}"))
        kind_item.setData(Qt.ItemDataRole.UserRole, kind)
        self.table.setItem(row, 1, kind_item)
        for col, text in enumerate(cells, start=2):
            self.table.setItem(row, col, QTableWidgetItem(text))
        return row

    def _add_source_row(self, source: str) -> int:
        name = Path(source).name or source
        return self._add_row(source, name, source_kind(source), "", "", _mtime(Path(source)))

    def _row_source(self, row: int) -> str:
        return self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)

    def _is_set(self, row: int) -> bool:
        return self.table.item(row, 1).data(Qt.ItemDataRole.UserRole) == "training_set"

    def select_source(self, source: str | Path, only: bool = True) -> None:
        """Check the row of `source` (a training set's manifest, a folder or a manifest),
        adding it when it is not listed; with `only`, every other row is unchecked."""
        source = str(source)
        rows = [r for r in range(self.table.rowCount()) if self._row_source(r) == source]
        row = rows[0] if rows else self._add_source_row(source)
        for r in range(self.table.rowCount()):
            if r == row or only:
                state = Qt.CheckState.Checked if r == row else Qt.CheckState.Unchecked
                self.table.item(r, 0).setCheckState(state)
        if not self.name_edit.text():
            self.name_edit.setText(self.table.item(row, 0).text())

    def _checked_rows(self) -> list[int]:
        return [
            r
            for r in range(self.table.rowCount())
            if self.table.item(r, 0).checkState() == Qt.CheckState.Checked
        ]

    def sources(self) -> list[str]:
        return [self._row_source(r) for r in self._checked_rows()]

    # ---- model ---------------------------------------------------------------------------
    def set_current_model(self, source: str) -> None:
        """Offer the model in use as the base; the box follows each switch unless the user
        chose or typed another."""
        typed = self.model_box.currentText()
        self._offering = True
        try:
            if self.model_box.findText(source) < 0:
                self.model_box.insertItem(0, source)
            if not typed or typed == source or self._following:
                self.model_box.setCurrentText(source)
                self._following = True
        finally:
            self._offering = False

    def _edited(self, _text: str) -> None:
        if not self._offering:
            self._following = False  # chosen or typed: kept through model switches

    def model(self) -> str:
        return self.model_box.currentText().strip()

    def set_model_note(self, note: str) -> None:
        """A note under the base model about what its family allows ("" for none)."""
        self.model_note.setText(note)
        self.model_note.setVisible(bool(note))

    def job_name(self) -> str:
        """The name typed, else the first checked row's."""
        rows = self._checked_rows()
        first = self.table.item(rows[0], 0).text() if rows else ""
        return self.name_edit.text().strip() or first

    # ---- dialogs -------------------------------------------------------------------------
    def _browse_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, tr("dialog.choose_model"))
        if folder:
            self.model_box.setCurrentText(folder)

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, tr("tune.sources.add_folder"))
        if folder:
            self.select_source(folder, only=False)

    def _browse_manifest(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, tr("tune.sources.add_manifest"), "", tr("tune.sources.manifest_filter")
        )
        if path:
            self.select_source(path, only=False)


def _mtime(path: Path) -> str:
    try:
        return f"{datetime.fromtimestamp(path.stat().st_mtime):%Y-%m-%d %H:%M}"
    except OSError:
        return ""
