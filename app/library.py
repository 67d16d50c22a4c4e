"""The library: past transcripts, newest first, with search over their (edited) text."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
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

from engine.library.store import Store, StoreError

from .errors import error_text
from .i18n import tr
from .review import strings  # noqa: F401  (registers the strings used below)

__all__ = ["LibraryView"]

_SEARCH_DELAY_MS = 200  # wait for a pause in typing before querying
_COLUMNS = ("title", "date", "duration", "edits", "text")


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
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(_SEARCH_DELAY_MS)
        self._timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _: self._timer.start())
        self.search.returnPressed.connect(self._open_current)
        self.table.cellDoubleClicked.connect(lambda row, _: self._open_row(row))
        self.ids: list[int] = []
        self._stale = False
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

    def refresh(self) -> None:
        """Query the store again with the current search text."""
        try:
            rows = self.store.list_transcripts(self.search.text())
        except StoreError as e:
            self.message.setText(error_text(e))
            return
        self.message.setText("")
        self._stale = False
        self.ids = [r.id for r in rows]
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            duration = f"{r.duration / 60:.1f} min" if r.duration else ""
            changed = r.updated_at[:16].replace("T", " ")
            cells = (r.title, changed, duration, str(r.edits), r.preview)
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, r.id)
                self.table.setItem(i, j, item)

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._open_current()
        else:
            super().keyPressEvent(event)

    def _open_current(self) -> None:
        row = self.table.currentRow()
        self._open_row(row if row >= 0 else 0)

    def _open_row(self, row: int) -> None:
        if 0 <= row < len(self.ids):
            self.open_requested.emit(self.ids[row])
