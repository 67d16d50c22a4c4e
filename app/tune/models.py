"""My models: the tuned models the catalogue lists (`engine.tune.jobs.tuned_models`), with
their base, data, date and held-out CER before and after from their model cards (one whose card
cannot be read says so, its figures unknown); one can be used, renamed, exported or deleted.
Signals carry the job folder; the page asks and acts."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.tune.export import CARD_FILE
from engine.tune.jobs import TunedModel

from ..demo import model_display_name
from ..i18n import tr
from ..plain import literal
from . import strings  # noqa: F401  (registers the strings used below)

__all__ = ["ModelsPanel"]

_COLUMNS = (
    "tune.col.name",
    "tune.col.base",
    "tune.col.data",
    "tune.col.date",
    "tune.col.method",
    "tune.col.before",
    "tune.col.after",
)
_ACTIONS = ("use", "rename", "export", "delete")


def _source_name(source: str) -> str:
    """A training set by its name (its folder), anything else by its file or folder name."""
    path = Path(source)
    return path.parent.name if path.name == "manifest.tsv" else path.name


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _method(m: TunedModel) -> str:
    """Method and steps, or that the card they come from cannot be read."""
    return f"{m.method}, {m.steps}" if m.card_readable else tr("tune.models.no_card")


class ModelsPanel(QWidget):
    use_requested = Signal(str)
    rename_requested = Signal(str)
    export_requested = Signal(str)
    # A job folder: the page asks and deletes; then the window forgets a model it remembered
    # in that folder, so the next start does not open one that is gone.
    delete_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.models: list[TunedModel] = []
        self.title = QLabel()
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update)
        self.table.doubleClicked.connect(lambda _: self._emit("use"))
        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        row.addStretch(1)
        for name in _ACTIONS:
            button = QPushButton()
            button.setObjectName(f"models-{name}")
            button.clicked.connect(lambda _=False, n=name: self._emit(n))
            row.addWidget(button)
            self.buttons[name] = button
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        self.retranslate()
        self._update()

    def retranslate(self) -> None:
        self.title.setText(tr("tune.models.title"))
        self.table.setAccessibleName(tr("tune.models.title"))
        self.table.setHorizontalHeaderLabels([tr(k) for k in _COLUMNS])
        for name, button in self.buttons.items():
            button.setText(tr(f"tune.models.{name}"))
        self.show_models(self.models)  # a card that cannot be read is said in words

    def show_models(self, models: list[TunedModel]) -> None:
        """List `models`; the model selected stays so, and none is when it is gone (its row
        index would now be another model's)."""
        selected = self.selected()
        self.table.clearSelection()
        self.models = models
        self.table.setRowCount(len(models))
        for row, m in enumerate(models):
            data = ", ".join(_source_name(s) for s in m.sources)
            cells = (
                m.name,
                model_display_name(m.base_model),
                data,
                m.created[:16].replace("T", " "),
                _method(m),
                _percent(m.cer_before),
                _percent(m.cer_after),
            )
            tips = [m.name, m.base_model, ", ".join(m.sources), *cells[3:]]  # in full
            if not m.card_readable:  # the card's columns say why they are empty
                note = tr("tune.models.no_card_tip", path=str(m.model_dir / CARD_FILE))
                tips[4:] = [note] * (len(cells) - 4)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(literal(tips[col]))
                item.setData(Qt.ItemDataRole.UserRole, str(m.job.path))
                self.table.setItem(row, col, item)
            if str(m.job.path) == selected:
                self.table.selectRow(row)
        self._update()

    def selected(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)

    def _update(self) -> None:
        chosen = self.selected() is not None
        for button in self.buttons.values():
            button.setEnabled(chosen)

    def _emit(self, name: str) -> None:
        folder = self.selected()
        if folder is not None:
            getattr(self, f"{name}_requested").emit(folder)
