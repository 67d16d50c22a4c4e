"""The library: past transcripts, newest first, with search over their (edited) text."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import PurePath

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.library.store import Store, StoreError, TranscriptSummary, local_time

from .errors import error_text
from .i18n import tr
from .review import strings  # noqa: F401  (registers the strings used below)
from .review.strings import format_duration

__all__ = ["LibraryView", "distinct_titles"]

_SEARCH_DELAY_MS = 200  # wait for a pause in typing before querying
_COLUMNS = ("title", "date", "duration", "edits", "text")
_SHOWN = 500  # rows listed at most, newest first; a search finds the older ones


def distinct_titles(rows: Sequence[TranscriptSummary]) -> list[str]:
    """The rows' titles, with where each came from added when two read the same (two
    "meeting.m4a" from different folders): the audio's folder, with as many parent folders as
    it takes to tell them apart, and the time it was transcribed when even that is the same or
    there is no audio.

    Titles are file names by default, so the same name from two folders is common."""
    labels = [r.title for r in rows]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[r.title].append(i)
    for title, group in groups.items():
        if len(group) < 2:
            continue
        members = [rows[i] for i in group]
        hints = _folder_hints(members)
        for i, r, hint in zip(group, members, hints, strict=True):
            if not hint or hints.count(hint) > 1:  # the same file, or no audio: the time
                hint = " · ".join(filter(None, [hint, local_time(r.created_at, seconds=True)]))
            labels[i] = f"{title} ({hint})"
    return labels


def _folder_hints(rows: Sequence[TranscriptSummary]) -> list[str]:
    """The shortest trailing part of each audio folder that differs across `rows` ('' for a
    row without audio); rejoined as a path, so the root stays one "/" ("/x", not "//x")."""
    parents = [r.audio_path.parent.parts if r.audio_path else () for r in rows]
    hints = [""] * len(rows)
    for depth in range(1, max(map(len, parents), default=0) + 1):
        hints = [PurePath(*p[-depth:]).as_posix() if p else "" for p in parents]
        if len(set(hints)) == len(set(parents)):
            break
    return hints


def _length(seconds: float | None) -> str:
    """The Length column: the audio's duration in the UI language ('' when not known)."""
    return format_duration(seconds) if seconds else ""


class LibraryView(QWidget):
    """A searchable table of the store's transcripts; Enter or a double click opens one."""

    open_requested = Signal(int)  # transcript id

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.search = QLineEdit()
        self.search.setClearButtonEnabled(True)
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(
            len(_COLUMNS) - 1, QHeaderView.ResizeMode.Stretch
        )
        self.table.verticalHeader().hide()
        self.message = QLabel()
        self.message.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(_SEARCH_DELAY_MS)
        self._timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _: self._timer.start())
        self.table.cellDoubleClicked.connect(lambda row, _: self._open_row(row))
        self.ids: list[int] = []
        self._stale = False
        self._empty = False  # the message says why the table is empty (reworded with the language)
        self._cut = False  # more transcripts match than the table lists (the message says so)
        self._durations: list[float] = []  # seconds of each row's audio (0: not known)
        self.retranslate()
        self.refresh()

    def refresh_later(self) -> None:
        """The store changed: refresh now if shown, else when next shown (a decision in
        review should not rebuild a hidden table)."""
        if self.isVisible():
            self._timer.start()
        else:
            self._stale = True

    def showEvent(self, event) -> None:
        if self._stale:
            self.refresh()
        super().showEvent(event)

    def retranslate(self) -> None:
        self.search.setPlaceholderText(tr("library.search"))
        self.table.setHorizontalHeaderLabels([tr(f"library.{c}") for c in _COLUMNS])
        column = _COLUMNS.index("duration")
        for row, seconds in enumerate(self._durations):
            item = self.table.item(row, column)
            if item is not None:
                item.setText(_length(seconds))
        if self._empty:
            self._say_empty()
        elif self._cut:
            self.message.setText(tr("library.cut", count=_SHOWN))

    def _say_empty(self) -> None:
        """What an empty table means: nothing kept yet, or nothing matching the search."""
        self._empty = True
        query = self.search.text().strip()
        self.message.setText(tr("library.no_match", text=query) if query else tr("library.empty"))

    def refresh(self) -> None:
        """Query the store again with the current search text."""
        try:
            rows = self.store.list_transcripts(self.search.text(), limit=_SHOWN + 1)
        except StoreError as e:
            self._empty = self._cut = False
            self.message.setText(error_text(e))
            return
        self._stale = False
        chosen = self._current_id()
        self._cut, rows = len(rows) > _SHOWN, rows[:_SHOWN]
        self.ids = [r.id for r in rows]
        self._durations = [r.duration or 0.0 for r in rows]
        if rows:
            self._empty = False
            self.message.setText(tr("library.cut", count=_SHOWN) if self._cut else "")
        else:
            self._say_empty()
        self.table.setRowCount(len(rows))
        for i, (r, title) in enumerate(zip(rows, distinct_titles(rows), strict=True)):
            cells = (title, local_time(r.updated_at), _length(r.duration), str(r.edits), r.preview)
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, r.id)
                self.table.setItem(i, j, item)
            if r.audio_path is not None:  # the whole path on hover
                self.table.item(i, 0).setToolTip(str(r.audio_path))
        self._select(chosen)

    def _current_id(self) -> int | None:
        """The transcript of the current row (None: no row chosen)."""
        row = self.table.currentRow()
        return self.ids[row] if 0 <= row < len(self.ids) else None

    def _select(self, tid: int | None) -> None:
        """Choose transcript `tid`'s row again after a rebuild, which keeps the row number: a
        transcription finishing moves every row down, and Enter would open another transcript.
        None, or one no longer listed, leaves no row chosen."""
        if tid in self.ids:  # not selectRow: it reads the keyboard's modifiers (Ctrl adds)
            index = self.table.model().index(self.ids.index(tid), 0)
            flags = QItemSelectionModel.SelectionFlag
            self.table.selectionModel().setCurrentIndex(index, flags.ClearAndSelect | flags.Rows)
        else:
            self.table.selectionModel().clear()

    def keyPressEvent(self, event) -> None:
        """Enter in the search box or the table (each passes it on to here) opens one."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._open_current()
        else:
            super().keyPressEvent(event)

    def _open_current(self) -> None:
        """Open the current row, else the top one, of what the search says now: typed a
        moment ago, its query (waiting for a pause in typing) runs first."""
        if self._timer.isActive():
            self._timer.stop()
            self.refresh()
        row = self.table.currentRow()
        self._open_row(row if row >= 0 else 0)

    def _open_row(self, row: int) -> None:
        if 0 <= row < len(self.ids):
            self.open_requested.emit(self.ids[row])
