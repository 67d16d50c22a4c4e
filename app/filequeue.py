"""The file queue: one row per file with progress, status and a cancel button.

Holds no logic beyond display: the window forwards the worker's file signals here and the
row's cancel button back to the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QHeaderView,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from .errors import error_text
from .i18n import tr

__all__ = ["FileQueue", "JobState"]

JobState = Literal["waiting", "running", "done", "cancelled", "failed"]
_COL_FILE, _COL_PROGRESS, _COL_STATUS, _COL_CANCEL = range(4)
_PREFERRED_ROWS = 3  # rows the panel asks room for; the user can drag it taller or shorter


@dataclass(slots=True)
class _Row:
    path: str
    item: QTreeWidgetItem
    bar: QProgressBar
    cancel: QPushButton
    state: JobState = "waiting"
    error: object = None  # why it failed, worded in the UI language each time it is shown


class FileQueue(QTreeWidget):
    """Queued and finished file jobs; selecting a row shows its transcript."""

    cancel_requested = Signal(int)  # job id
    job_selected = Signal(int)  # job id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(4)
        self.setRootIsDecorated(False)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(_COL_FILE, QHeaderView.ResizeMode.Stretch)
        for col in (_COL_STATUS, _COL_CANCEL):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(_COL_PROGRESS, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(_COL_PROGRESS, 160)
        self._rows: dict[int, _Row] = {}
        self.currentItemChanged.connect(self._selected)
        self.retranslate()

    def sizeHint(self) -> QSize:
        """Room for the header and a few rows (a row holds a button, a bit taller than text):
        Qt's default asks for more, which the main window takes from its pages."""
        row = self.fontMetrics().height() + 10
        height = self.header().sizeHint().height() + _PREFERRED_ROWS * row + 2 * self.frameWidth()
        return QSize(super().sizeHint().width(), height)

    def add(self, job_id: int, path: str) -> None:
        item = QTreeWidgetItem([Path(path).name, "", "", ""])
        item.setToolTip(_COL_FILE, path)
        item.setData(_COL_FILE, Qt.ItemDataRole.UserRole, job_id)
        self.addTopLevelItem(item)
        bar = QProgressBar()
        bar.setRange(0, 1000)
        cancel = QPushButton(tr("action.cancel"))
        cancel.clicked.connect(lambda: self.cancel_requested.emit(job_id))
        self.setItemWidget(item, _COL_PROGRESS, bar)
        self.setItemWidget(item, _COL_CANCEL, cancel)
        self._rows[job_id] = _Row(path, item, bar, cancel)
        self.set_state(job_id, "waiting")

    def path(self, job_id: int) -> str:
        return self._rows[job_id].path

    def state(self, job_id: int) -> JobState:
        return self._rows[job_id].state

    def progress(self, job_id: int) -> float:
        return self._rows[job_id].bar.value() / 1000

    def status_text(self, job_id: int) -> str:
        return self._rows[job_id].item.text(_COL_STATUS)

    def job_ids(self) -> list[int]:
        return list(self._rows)

    def set_progress(self, job_id: int, fraction: float) -> None:
        self._rows[job_id].bar.setValue(round(1000 * fraction))

    def set_state(self, job_id: int, state: JobState, error: object = None) -> None:
        row = self._rows[job_id]
        row.state, row.error = state, error
        if state == "done":
            row.bar.setValue(1000)
        row.cancel.setEnabled(state in ("waiting", "running"))
        self._show_status(row)

    def _show_status(self, row: _Row) -> None:
        message = "" if row.error is None else error_text(row.error)
        text = tr(f"queue.{row.state}", message=message)
        row.item.setText(_COL_STATUS, text)
        row.item.setToolTip(_COL_STATUS, text)
        color = Qt.GlobalColor.red if row.state == "failed" else Qt.GlobalColor.black
        row.item.setForeground(_COL_STATUS, color)

    def active_jobs(self) -> list[int]:
        return [j for j, r in self._rows.items() if r.state in ("waiting", "running")]

    def retranslate(self) -> None:
        self.setHeaderLabels([tr("queue.file"), tr("queue.progress"), tr("queue.status"), ""])
        for row in self._rows.values():
            row.cancel.setText(tr("action.cancel"))
            self._show_status(row)

    def _selected(self, item: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        if item is not None:
            self.job_selected.emit(int(item.data(_COL_FILE, Qt.ItemDataRole.UserRole)))
