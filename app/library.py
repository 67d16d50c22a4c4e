"""The library: past transcripts, newest first or sorted by a column, with search over their
(edited) text; each can be opened, renamed or deleted (its audio file is never touched)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import PurePath

from PySide6.QtCore import (
    QCollator,
    QCoreApplication,
    QEventLoop,
    QItemSelectionModel,
    QLocale,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressDialog,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.library.store import Store, StoreError, TranscriptSummary, local_time

from .errors import error_text
from .i18n import tr
from .plain import literal, plain
from .review import strings  # noqa: F401  (registers the strings used below)
from .review.strings import format_duration


class UpgradeNotice:
    """A wait box while the library at `path` is upgraded (Store's on_upgrade): seconds on a
    big library, as the app starts, when nothing else is on screen yet; gone on leaving
    its `with`."""

    def __init__(self, path: PurePath, parent: QWidget | None = None) -> None:
        self._path, self._parent = path, parent
        self.box: QProgressDialog | None = None

    def __call__(self, old: int, new: int) -> None:
        box = QProgressDialog(tr("library.upgrading", path=str(self._path)), "", 0, 0, self._parent)
        box.setCancelButton(None)  # an upgrade stopped halfway is not an option
        box.setWindowTitle("Tingxie 听写")
        box.setMinimumDuration(0)
        box.show()
        # painted now: the upgrade holds this thread (no clicks meanwhile)
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        self.box = box

    def __enter__(self) -> UpgradeNotice:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.box is not None:
            self.box.close()
            self.box.deleteLater()
            self.box = None


__all__ = ["LibraryView", "distinct_titles"]

_SEARCH_DELAY_MS = 200  # wait for a pause in typing before querying
_COLUMNS = ("title", "date", "duration", "edits", "text")
_SHOWN = 500  # rows listed at most, newest first; a search finds the older ones
_ID = Qt.ItemDataRole.UserRole  # each cell holds its transcript's id (rows move as they sort)
_NAMED = 10  # titles a delete question names; the rest it counts
_FITTED = ("date", "duration", "edits")  # always as wide as their contents (short, bounded)
_TITLE_CHARS = 48  # the Title column fits titles up to about this many characters; longer
# ones are elided in the middle, keeping their ends (…W0121.wav), which tell files apart


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


def _title_collator() -> QCollator:
    """How titles and texts sort: Chinese by pinyin, other letters alphabetically whatever
    their case, numbers by value ("第2集" before "第10集", "memo 9" before "memo 10")."""
    collator = QCollator(QLocale(QLocale.Language.Chinese, QLocale.Country.China))
    collator.setNumericMode(True)
    collator.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    return collator


_COLLATOR = _title_collator()


class _Cell(QTableWidgetItem):
    """A cell that knows its transcript (`_ID`) and sorts by `key`, not by the text shown: the
    Length in seconds and the Edits as numbers ("9" sorted after "10" as text), the time
    changed as stored with the id after it (the store's newest-first order), words through
    `_COLLATOR`."""

    def __init__(self, text: str, key: object, tid: int) -> None:
        super().__init__(text)
        self.key = key
        self.setData(_ID, tid)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(self.key, str):
            return _COLLATOR.compare(self.key, other.key) < 0
        return self.key < other.key


def _quoted(labels: Sequence[str]) -> str:
    """Titles for a confirmation, one a line, the first `_NAMED` of them by name."""
    lines = [f"“{label}”" for label in labels[:_NAMED]]
    if len(labels) > _NAMED:
        lines.append(tr("library.more", count=len(labels) - _NAMED))
    return "\n".join(lines)


class LibraryView(QWidget):
    """A searchable table of the store's transcripts, sorted by the column the user clicks
    (newest first to begin with). Enter or a double click opens one, F2 renames it, Delete
    deletes the selected ones (the context menu holds the same)."""

    open_requested = Signal(int)  # transcript id
    deleted = Signal(list)  # ids of the transcripts just deleted from the store

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.search = QLineEdit()
        self.search.setClearButtonEnabled(True)
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.table.horizontalHeader()
        for name in _FITTED:
            header.setSectionResizeMode(
                _COLUMNS.index(name), QHeaderView.ResizeMode.ResizeToContents
            )
        header.setSectionResizeMode(len(_COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self._fitting = False  # the Title column is being fitted (not resized by the user)
        self._title_set_by_user = False  # a width the user dragged stays across refreshes
        header.sectionResized.connect(self._title_resized)
        # Newest first, as the store lists them, until the user clicks another column.
        header.setSortIndicator(_COLUMNS.index("date"), Qt.SortOrder.DescendingOrder)
        self.table.setSortingEnabled(True)
        self.table.verticalHeader().hide()
        self.message = plain(QLabel())  # quotes the search text
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
        self._build_actions()
        self._stale = False
        self._error: StoreError | None = None  # why the last search failed (the message says)
        self._cut = False  # more transcripts match than the table lists (the message says so)
        self._titles: dict[int, str] = {}  # each listed transcript's title as stored
        self.retranslate()
        self.refresh()

    def _build_actions(self) -> None:
        """Open, Rename and Delete: keys of the table (in the search box Delete deletes a
        character) and its context menu, which shows the keys beside them."""

        def action(slot: Callable[[], object], *keys: QKeySequence) -> QAction:
            act = QAction(self.table)
            act.setShortcuts(list(keys))
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            act.triggered.connect(slot)
            self.table.addAction(act)
            return act

        enter = (QKeySequence(Qt.Key.Key_Return), QKeySequence(Qt.Key.Key_Enter))
        self.open_action = action(self._open_current, *enter)
        self.rename_action = action(self.rename_selected, QKeySequence(Qt.Key.Key_F2))
        delete = QKeySequence.keyBindings(QKeySequence.StandardKey.Delete)
        self.delete_action = action(self.delete_selected, *delete)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.table.itemSelectionChanged.connect(self._update_actions)

    def _update_actions(self) -> None:
        """Rename needs one transcript chosen, Delete at least one."""
        chosen = len(self.table.selectionModel().selectedRows())
        self.rename_action.setEnabled(chosen == 1)
        self.delete_action.setEnabled(chosen > 0)

    @property
    def ids(self) -> list[int]:
        """The listed transcripts' ids, in the order the table shows them."""
        return [self._id(row) for row in range(self.table.rowCount())]

    def _id(self, row: int) -> int:
        return self.table.item(row, 0).data(_ID)

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
        self.search.setAccessibleName(tr("library.search_name"))  # no label stands beside it
        self.table.setAccessibleName(tr("library.table_name"))
        self.table.setAccessibleDescription(tr("library.keys"))
        self.table.setHorizontalHeaderLabels([tr(f"library.{c}") for c in _COLUMNS])
        self.table.horizontalHeader().setToolTip(tr("library.sort_tip"))
        self.open_action.setText(tr("library.open"))
        self.rename_action.setText(tr("library.rename"))
        self.delete_action.setText(tr("library.delete"))
        column = _COLUMNS.index("duration")
        for row in range(self.table.rowCount()):
            item = self.table.item(row, column)
            item.setText(_length(item.key))
        self._show_message()

    def _show_message(self) -> None:
        """The line under the table, in the UI language: why the search failed, why the table
        is empty (nothing kept yet, or nothing matching the search), or that it lists only the
        newest transcripts."""
        query = self.search.text().strip()
        if self._error is not None:
            text = error_text(self._error)
        elif not self.table.rowCount():
            text = tr("library.no_match", text=query) if query else tr("library.empty")
        else:
            text = tr("library.cut", count=_SHOWN) if self._cut else ""
        self.message.setText(text)

    def refresh(self) -> None:
        """Query the store again with the current search text. A search that fails lists
        nothing: the last one's rows stayed, and Enter opened one that did not match."""
        try:
            rows = self.store.list_transcripts(self.search.text(), limit=_SHOWN + 1)
        except StoreError as e:
            rows, self._error = [], e
        else:
            self._stale, self._error = False, None
        chosen = self._current_id()
        self._cut, rows = len(rows) > _SHOWN, rows[:_SHOWN]
        self._titles = {r.id: r.title for r in rows}
        self.table.setSortingEnabled(False)  # else each row moves as its cells are set
        self.table.setRowCount(len(rows))
        for i, (r, title) in enumerate(zip(rows, distinct_titles(rows), strict=True)):
            self._fill(i, r, title)
        self.table.setSortingEnabled(True)  # sorts by the header's column again
        self._fit_title()
        self._show_message()
        self._select(chosen)

    def _fit_title(self) -> None:
        """Widen the Title column to its longest title (up to `_TITLE_CHARS` characters), as
        Qt's 100 px cut titles sharing a prefix to the same "aishell1_BAC0…"; a width the
        user set stays."""
        if self._title_set_by_user:
            return
        column = _COLUMNS.index("title")
        header = self.table.horizontalHeader()
        most = self.table.fontMetrics().averageCharWidth() * _TITLE_CHARS
        fits = max(self.table.sizeHintForColumn(column), header.sectionSizeHint(column))
        self._fitting = True
        try:
            header.resizeSection(column, min(fits, most))
        finally:
            self._fitting = False

    def _title_resized(self, column: int, _old: int, _new: int) -> None:
        if column == _COLUMNS.index("title") and not self._fitting:
            self._title_set_by_user = True

    def _fill(self, row: int, r: TranscriptSummary, title: str) -> None:
        """Put transcript `r` in `row`, titled `title` (`distinct_titles`)."""
        cells = (
            (title, title),
            (local_time(r.updated_at), (r.updated_at, r.id)),
            (_length(r.duration), r.duration or 0.0),
            (str(r.edits), r.edits),
            (r.preview, r.preview),
        )
        for column, (text, key) in enumerate(cells):
            self.table.setItem(row, column, _Cell(text, key, r.id))
        if r.audio_path is not None:  # the whole path on hover
            self.table.item(row, 0).setToolTip(literal(str(r.audio_path)))

    def _current_id(self) -> int | None:
        """The transcript of the current row (None: no row chosen)."""
        row = self.table.currentRow()
        return self._id(row) if 0 <= row < self.table.rowCount() else None

    def _select(self, tid: int | None) -> None:
        """Choose transcript `tid`'s row again after a rebuild, which keeps the row number: a
        transcription finishing moves every row down, and Enter would open another transcript.
        None, or one no longer listed, leaves no row chosen."""
        ids = self.ids
        if tid in ids:  # not selectRow: it reads the keyboard's modifiers (Ctrl adds)
            index = self.table.model().index(ids.index(tid), 0)
            flags = QItemSelectionModel.SelectionFlag
            self.table.selectionModel().setCurrentIndex(index, flags.ClearAndSelect | flags.Rows)
        else:
            self.table.selectionModel().clear()
        self._update_actions()

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
        if 0 <= row < self.table.rowCount():
            self.open_requested.emit(self._id(row))

    # ---- managing transcripts --------------------------------------------------------------
    def _chosen(self) -> list[tuple[int, str]]:
        """The selected transcripts, top row first: (id, title as the table shows it)."""
        rows = sorted(index.row() for index in self.table.selectionModel().selectedRows())
        return [(self._id(row), self.table.item(row, 0).text()) for row in rows]

    def rename_selected(self) -> None:
        """Ask for a new title of the one transcript selected (F2). A blank one is refused,
        saying so; one the store cannot take (deleted meanwhile, a read-only disk) says why."""
        chosen = self._chosen()
        if len(chosen) != 1:
            return
        ((tid, _),) = chosen
        old = self._titles[tid]
        title, ok = QInputDialog.getText(
            self,
            tr("library.rename_title"),
            literal(tr("library.rename_label", title=old)),
            text=old,
        )
        if not ok or title.strip() == old:
            return
        if not title.strip():
            QMessageBox.warning(self, tr("library.rename_title"), tr("library.rename_empty"))
            return
        try:
            self.store.rename_transcript(tid, title)
        except StoreError as e:
            QMessageBox.warning(self, tr("library.rename_title"), literal(error_text(e)))
        self.refresh()

    def delete_selected(self) -> None:
        """Delete the selected transcripts (Delete) once the user agrees to a question that
        names them and says that their audio files stay. The store deletes them all at once
        (`Store.delete_transcripts`), and `deleted` names them; where it cannot (a locked
        database, a read-only or full disk) none is deleted, and the user is told why and that
        they are all still there."""
        chosen = self._chosen()
        labels = [label for _, label in chosen]
        if not chosen or not self._confirm_delete(labels):
            return
        tids = [tid for tid, _ in chosen]
        try:
            self.store.delete_transcripts(tids)
        except StoreError as e:
            text = tr("library.not_deleted", titles=_quoted(labels), message=error_text(e))
            QMessageBox.warning(self, tr("library.delete_title"), literal(text))
            return
        self.refresh()
        self.deleted.emit(tids)

    def _confirm_delete(self, labels: Sequence[str]) -> bool:
        if len(labels) == 1:
            question = tr("library.delete_one", title=labels[0])
        else:
            question = tr("library.delete_many", count=len(labels), titles=_quoted(labels))
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self,
            tr("library.delete_title"),
            literal(question),
            buttons.Yes | buttons.No,
            buttons.No,
        )
        return answer == buttons.Yes
