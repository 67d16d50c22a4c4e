"""Choosing the model: a Hub id typed in, a local checkpoint folder, Whisper-base from the model
cache, or the shipped demo."""

from __future__ import annotations

import os

from PySide6.QtCore import QUrl
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.model import model_folder_of
from engine.registry import kind_on_disk, local_path, model_source

from . import demo as demo_model
from .i18n import tr

__all__ = ["ModelDialog"]


class ModelDialog(QDialog):
    """Edit the model source; `source()` is the Hub id or folder the user settled on."""

    def __init__(self, current: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(tr("dialog.choose_model"))
        self.edit = QLineEdit(current)
        self.edit.setMinimumWidth(420)
        # What a screen reader says of the field; the hint above it is its description.
        self.edit.setAccessibleName(tr("dialog.model_field"))
        self.edit.setAccessibleDescription(tr("dialog.model_hint"))
        browse = QPushButton(tr("dialog.browse"))
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.edit, 1)
        row.addWidget(browse)
        whisper = demo_model.whisper_model_dir()
        if whisper is not None:
            use_whisper = QPushButton(tr("action.use_whisper"))
            use_whisper.clicked.connect(lambda: self.edit.setText(whisper))
            row.addWidget(use_whisper)
        demo = demo_model.demo_model_dir()
        if demo is not None:
            use_demo = QPushButton(tr("action.use_demo"))
            use_demo.clicked.connect(lambda: self.edit.setText(demo))
            row.addWidget(use_demo)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(tr("dialog.model_hint")))
        layout.addLayout(row)
        layout.addWidget(buttons)

    def source(self) -> str:
        """The text as typed, but an existing folder as an absolute path: it is remembered,
        and the next start (from the desktop, in another working folder) would read a
        relative one as a Hub id. Symbolic links stay links (the user may point them on).
        A path pasted in quotes (Explorer's "Copy as path") or as a file:// URL (a file
        manager's copy) is the folder it names; a file inside a model's folder (config.json,
        the weights: what a file manager shows) is that folder, the one thing it can mean.
        A Hub model page's address is its Hub id (`engine.registry.model_source`); text no
        folder can be named (a pasted sentence) is kept, for the load to say what it is."""
        text = self.edit.text().strip()
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
            text = text[1:-1].strip()
        url = QUrl(text)
        if url.isLocalFile():
            text = url.toLocalFile()
        path = local_path(text)
        folder = path if kind_on_disk(path) == "folder" else model_folder_of(path)
        return os.path.abspath(folder) if text and folder is not None else model_source(text)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, tr("dialog.choose_model"), self.source())
        if folder:
            self.edit.setText(folder)
