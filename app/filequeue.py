"""The file queue: one row per file with progress, status and a cancel button.

Holds no logic beyond display: the window forwards the worker's file signals here and the
row's cancel button back to the worker.

The progress bar and the cancel button are drawn by item delegates, not widgets in the rows:
with even one item widget, every row inserted lays out all rows to place it, so "Open with" on
a few hundred files froze the window for minutes.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QKeyEvent, QMouseEvent, QPainter, QPalette
from PySide6.QtWidgets import (
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionButton,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from .errors import error_text
from .i18n import STRINGS, tr
from .plain import literal

__all__ = ["FileQueue", "JobState"]

JobState = Literal["waiting", "running", "done", "cancelled", "failed"]
_ACTIVE = ("waiting", "running")
_COL_FILE, _COL_PROGRESS, _COL_STATUS, _COL_CANCEL = range(4)
_PREFERRED_ROWS = 3  # rows the panel asks room for; the user can drag it taller or shorter
_VALUE = Qt.ItemDataRole.UserRole  # file column: job id; progress: fraction; cancel: enabled
_STEPS = 1000  # the bar's resolution, as a QProgressBar's range
_MARGIN = 2  # pixels between a drawn bar or button and its cell's edge


@dataclass(slots=True)
class _Row:
    path: str
    item: QTreeWidgetItem
    state: JobState = "waiting"
    same: str = ""  # the path as two spellings of one file compare (`_same`)
    error: object = None  # why it failed, worded in the UI language each time it is shown


class FileQueue(QTreeWidget):
    """Queued and finished file jobs; selecting a row shows its transcript, and so does a
    click on the row shown already (after Show live the view holds another transcript)."""

    cancel_requested = Signal(int)  # job id
    job_selected = Signal(int)  # job id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(4)
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)  # the first row's height serves all: no row measured
        self.setItemDelegateForColumn(_COL_PROGRESS, _ProgressDelegate(self))
        self.setItemDelegateForColumn(_COL_CANCEL, _ButtonDelegate(self))
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(_COL_FILE, QHeaderView.ResizeMode.Stretch)
        # The status column is as wide as its longest text, measured once: sized to its
        # contents, each status change measured every row (34 s over a batch of 2 000 files),
        # and one long failure pushed the other columns aside (its tooltip has it whole).
        header.setSectionResizeMode(_COL_STATUS, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(_COL_STATUS, _status_width(self))
        for col in (_COL_PROGRESS, _COL_CANCEL):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(_COL_PROGRESS, 160)
        self._rows: dict[int, _Row] = {}
        # The waiting and running rows' paths (`_Row.same`), kept as rows change: rebuilt at
        # each `split_queued`, a watch folder's files queued one by one cost n² on this thread.
        self._active: Counter[str] = Counter()
        self._pressed: int | None = None  # the job whose cancel button the mouse holds down
        self._busy = _BusyAnimation(self)
        self.currentItemChanged.connect(self._selected)
        self.retranslate()

    def sizeHint(self) -> QSize:
        """Room for the header and a few rows (a row holds a button, a bit taller than text):
        Qt's default asks for more, which the main window takes from its pages."""
        row = self.fontMetrics().height() + 10
        height = self.header().sizeHint().height() + _PREFERRED_ROWS * row + 2 * self.frameWidth()
        return QSize(super().sizeHint().width(), height)

    def add(self, job_id: int, path: str) -> None:
        item = QTreeWidgetItem([Path(path).name, "", "", tr("action.cancel")])
        item.setToolTip(_COL_FILE, literal(path))
        item.setData(_COL_FILE, _VALUE, job_id)
        self.addTopLevelItem(item)
        row = self._rows[job_id] = _Row(path, item, same=_same(path))
        self._active[row.same] += 1
        self.set_progress(job_id, 0.0)
        self.set_state(job_id, "waiting")

    def path(self, job_id: int) -> str:
        return self._rows[job_id].path

    def state(self, job_id: int) -> JobState:
        return self._rows[job_id].state

    def progress(self, job_id: int) -> float:
        """The share done; NaN while the file's length is not known."""
        return float(self._rows[job_id].item.data(_COL_PROGRESS, _VALUE))

    def status_text(self, job_id: int) -> str:
        return self._rows[job_id].item.text(_COL_STATUS)

    def can_cancel(self, job_id: int) -> bool:
        """Whether the row's cancel button is enabled: the file waits or is transcribed."""
        return bool(self._rows[job_id].item.data(_COL_CANCEL, _VALUE))

    def job_ids(self) -> list[int]:
        return list(self._rows)

    def set_progress(self, job_id: int, fraction: float) -> None:
        """`fraction` NaN: the file's length is not known (yet), so the bar shows Qt's busy
        indicator rather than a share it cannot know."""
        if math.isnan(fraction):
            self._busy.jobs.add(job_id)
        else:
            self._busy.jobs.discard(job_id)
        item = self._rows[job_id].item
        item.setData(_COL_PROGRESS, _VALUE, fraction)
        item.setText(_COL_PROGRESS, "" if math.isnan(fraction) else f"{round(100 * fraction)}%")

    def set_state(self, job_id: int, state: JobState, error: object = None) -> None:
        row = self._rows[job_id]
        if (row.state in _ACTIVE) != (state in _ACTIVE):
            self._active[row.same] += 1 if state in _ACTIVE else -1
            if not self._active[row.same]:
                del self._active[row.same]
        row.state, row.error = state, error
        if state == "done":
            self.set_progress(job_id, 1.0)
        elif state in ("cancelled", "failed") and math.isnan(self.progress(job_id)):
            self.set_progress(job_id, 0.0)  # a busy indicator would run on
        row.item.setData(_COL_CANCEL, _VALUE, state in _ACTIVE)
        self._show_status(row)

    def _show_status(self, row: _Row) -> None:
        message = "" if row.error is None else error_text(row.error)
        text = tr(f"queue.{row.state}", message=message)
        row.item.setText(_COL_STATUS, text)
        row.item.setToolTip(_COL_STATUS, literal(text))
        color = Qt.GlobalColor.red if row.state == "failed" else Qt.GlobalColor.black
        row.item.setForeground(_COL_STATUS, color)

    def active_jobs(self) -> list[int]:
        return [j for j, r in self._rows.items() if r.state in _ACTIVE]

    def split_queued(self, paths: list[str]) -> tuple[list[str], list[str]]:
        """`paths` that are not waiting or running here, each once, and the others (a repeat
        in `paths` too): a file queued twice is transcribed, and kept in the library, twice."""
        seen: set[str] = set()
        new: list[str] = []
        again: list[str] = []
        for path in paths:
            same = _same(path)
            (again if same in seen or same in self._active else new).append(path)
            seen.add(same)
        return new, again

    def retranslate(self) -> None:
        self.setHeaderLabels([tr("queue.file"), tr("queue.progress"), tr("queue.status"), ""])
        label = tr("action.cancel")
        self.header().resizeSection(_COL_CANCEL, _button_size(self, label).width() + 2 * _MARGIN)
        for row in self._rows.values():
            row.item.setText(_COL_CANCEL, label)
            self._show_status(row)

    def changeEvent(self, event: QEvent) -> None:
        """A new font (the window's, once the queue is placed in it) measures the status
        column again."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self.header().resizeSection(_COL_STATUS, _status_width(self))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """A press on a cancel button holds it (the row is not selected); one on the row shown
        already shows it again."""
        pos = event.position().toPoint()
        item = self.itemAt(pos)
        if item is not None and self.columnAt(pos.x()) == _COL_CANCEL:
            job_id = _job(item)
            if event.button() == Qt.MouseButton.LeftButton and self.can_cancel(job_id):
                self._pressed = job_id
                self.viewport().update()
            event.accept()
            return
        before = self.currentItem()
        super().mousePressEvent(event)
        if item is not None and item is before and event.button() == Qt.MouseButton.LeftButton:
            self.job_selected.emit(_job(item))  # currentItemChanged did not fire

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        """A cancel button pressed and released on it: that file's job is cancelled."""
        pressed, self._pressed = self._pressed, None
        if pressed is None:
            super().mouseReleaseEvent(event)
            return
        self.viewport().update()
        pos = event.position().toPoint()
        item = self.itemAt(pos)
        on_button = item is not None and self.columnAt(pos.x()) == _COL_CANCEL
        if on_button and _job(item) == pressed and self.can_cancel(pressed):
            self.cancel_requested.emit(pressed)
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Delete cancels the current row's file, as its button does."""
        item = self.currentItem()
        if event.key() == Qt.Key.Key_Delete and item is not None:
            if self.can_cancel(_job(item)):
                self.cancel_requested.emit(_job(item))
            event.accept()
            return
        super().keyPressEvent(event)

    def _selected(self, item: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        if item is not None:
            self.job_selected.emit(_job(item))


def _same(path: str) -> str:
    """`path` as two spellings of one file compare: absolute, in the case Windows ignores."""
    return os.path.normcase(os.path.abspath(path))


def _job(item: QTreeWidgetItem) -> int:
    return int(item.data(_COL_FILE, _VALUE))


def _status_width(view: QTreeWidget) -> int:
    """The width of the status column's longest text in either language: its title or a
    state (a failure without its message)."""
    keys = ["queue.status", *(f"queue.{state}" for state in get_args(JobState))]
    texts = {text.format(message="") for key in keys for text in STRINGS[key]}
    return max(_cell_width(view, text) for text in texts)


def _cell_width(view: QTreeWidget, text: str) -> int:
    """The width a cell of `view` showing `text` asks for (what sizing to contents gives)."""
    option = QStyleOptionViewItem()
    option.initFrom(view)
    option.font = view.font()
    option.features |= QStyleOptionViewItem.ViewItemFeature.HasDisplay
    option.text = text
    return (
        view.style()
        .sizeFromContents(QStyle.ContentsType.CT_ItemViewItem, option, QSize(), view)
        .width()
    )


def _button_size(widget: QWidget, text: str) -> QSize:
    """A push button's size for `text` in `widget`'s style (what QPushButton asks for)."""
    option = QStyleOptionButton()
    option.initFrom(widget)
    option.text = text
    content = widget.fontMetrics().size(Qt.TextFlag.TextShowMnemonic, text)
    return widget.style().sizeFromContents(
        QStyle.ContentsType.CT_PushButton, option, content, widget
    )


class _CellDelegate(QStyledItemDelegate):
    """The cell's background and selection without its text (which the control drawn over
    it shows, and screen readers read)."""

    def __init__(self, queue: FileQueue) -> None:
        super().__init__(queue)
        self._queue = queue

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        cell = QStyleOptionViewItem(option)
        self.initStyleOption(cell, index)
        cell.text = ""
        widget = option.widget
        widget.style().drawControl(QStyle.ControlElement.CE_ItemViewItem, cell, painter, widget)
        self.draw(painter, option, index)

    def draw(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        raise NotImplementedError


class _BusyAnimation(QObject):
    """The jobs whose length is not known, and what the style animates for their busy bars
    (one animation for all): each frame redraws the progress column while such a bar is
    shown; a frame refused ends the animation (the style starts it again when a busy bar is
    next drawn)."""

    def __init__(self, queue: FileQueue) -> None:
        super().__init__(queue)
        self._queue = queue
        self.jobs: set[int] = set()

    def event(self, event: QEvent) -> bool:
        if event.type() != QEvent.Type.StyleAnimationUpdate:
            return super().event(event)
        queue = self._queue
        running = queue.isVisible() and bool(self.jobs)
        if running:
            header = queue.header()
            x = header.sectionViewportPosition(_COL_PROGRESS)
            column = QRect(x, 0, header.sectionSize(_COL_PROGRESS), queue.viewport().height())
            queue.viewport().update(column)
        event.setAccepted(running)
        return True


class _ProgressDelegate(_CellDelegate):
    """The row's progress as a progress bar (its fraction in the cell's data; NaN: busy)."""

    def draw(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        fraction = float(index.data(_VALUE))
        bar = QStyleOptionProgressBar()
        bar.initFrom(option.widget)
        bar.rect = option.rect.adjusted(_MARGIN, _MARGIN, -_MARGIN, -_MARGIN)
        bar.state |= QStyle.StateFlag.State_Horizontal
        bar.textAlignment = Qt.AlignmentFlag.AlignCenter
        if math.isnan(fraction):  # Qt's busy indicator (minimum = maximum), animated
            bar.minimum = bar.maximum = 0
            bar.styleObject = self._queue._busy
        else:  # no styleObject: the style would stop the busy rows' animation
            bar.minimum, bar.maximum = 0, _STEPS
            bar.progress = round(_STEPS * fraction)
            bar.text, bar.textVisible = str(index.data(Qt.ItemDataRole.DisplayRole)), True
        style = option.widget.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, option.widget)


class _ButtonDelegate(_CellDelegate):
    """The row's cancel button: enabled while its file waits or runs (the cell's data), drawn
    pressed while the mouse holds it (FileQueue handles the click)."""

    def draw(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        button = QStyleOptionButton()
        button.initFrom(option.widget)
        button.rect = option.rect.adjusted(_MARGIN, _MARGIN, -_MARGIN, -_MARGIN)
        button.text = str(index.data(Qt.ItemDataRole.DisplayRole))
        job_id = int(index.siblingAtColumn(_COL_FILE).data(_VALUE))
        pressed = self._queue._pressed == job_id
        enabled = bool(index.data(_VALUE))
        flags = QStyle.StateFlag
        button.state = flags.State_Sunken if pressed else flags.State_Raised
        if enabled:
            button.state |= flags.State_Enabled
        else:  # grey text, as a disabled QPushButton's
            palette = QPalette(button.palette)
            palette.setCurrentColorGroup(QPalette.ColorGroup.Disabled)
            button.palette = palette
        style = option.widget.style()
        style.drawControl(QStyle.ControlElement.CE_PushButton, button, painter, option.widget)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        size = _button_size(option.widget, str(index.data(Qt.ItemDataRole.DisplayRole)))
        return QSize(size.width() + 2 * _MARGIN, size.height() + 2 * _MARGIN)
