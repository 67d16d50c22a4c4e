"""What the three dialogs share: a path row with a Browse button, and the status line with
the run button that the worker's reply re-enables."""

from __future__ import annotations

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from ..i18n import tr
from ..plain import plain

__all__ = ["PathRow", "StatusLine"]


class PathRow(QWidget):
    """A line edit with a "Folder…" button (a file chooser with `file_filter`)."""

    def __init__(self, text: str = "", file_filter: str | None = None) -> None:
        super().__init__()
        self.edit = QLineEdit(text)
        self.edit.setMinimumWidth(360)
        self._filter = file_filter
        self.browse = QPushButton(tr("export.common.browse"))
        self.browse.clicked.connect(self._browse)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.browse)
        self.setFocusProxy(self.edit)  # its label's Alt+key, made for the row, types in it

    def text(self) -> str:
        return self.edit.text().strip()

    def event(self, event: QEvent) -> bool:
        """Name the edit after the label a form gave the row: Qt names a field from a label
        beside it, and the row's label is beside the row, not the edit inside it. Named as
        the form places the row in its dialog (a screen reader may read it before it shows),
        and again on a language switch (its label reworded)."""
        kind = event.type()
        if kind == QEvent.Type.LanguageChange:
            self.browse.setText(tr("export.common.browse"))
        if kind in (QEvent.Type.ParentChange, QEvent.Type.Polish, QEvent.Type.LanguageChange):
            self._name_edit()
        return super().event(event)

    def _name_edit(self) -> None:
        parent = self.parentWidget()
        for label in parent.findChildren(QLabel) if parent is not None else ():
            if label.buddy() is self:
                text = label.text().replace("&&", "\0").replace("&", "").replace("\0", "&")
                self.edit.setAccessibleName(text)

    def _browse(self) -> None:
        if self._filter is None:
            chosen = QFileDialog.getExistingDirectory(self, "", self.text())
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, "", self.text(), self._filter)
        if chosen:
            self.edit.setText(chosen)


class StatusLine(QLabel):
    """What the dialog's work is doing or how it ended; the run button is off meanwhile."""

    def __init__(self, run: QPushButton) -> None:
        super().__init__()
        plain(self)  # errors quote paths and model names
        self.setWordWrap(True)
        self.setTextInteractionFlags(self.textInteractionFlags().TextSelectableByMouse)
        self._run = run

    def busy(self, text: str) -> None:
        self._run.setEnabled(False)
        self.setText(text)

    def finished(self, text: str) -> None:
        self._run.setEnabled(True)
        self.setText(text)
