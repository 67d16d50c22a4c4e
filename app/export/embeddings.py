"""File → Export embeddings…: the loaded model's vectors for the file shown (one layer, per
frame with times or one per file), computed and written by the engine worker (engine.embed)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..errors import error_text
from ..i18n import tr
from ..plain import plain
from ..worker import EmbedRequest, WorkerHandle
from . import strings as _strings  # noqa: F401  (registers the strings)
from .form import PathRow, StatusLine

__all__ = ["EmbedDialog"]


class EmbedDialog(QDialog):
    def __init__(self, handle: WorkerHandle, audio: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.handle = handle
        self.audio = audio
        self.setWindowTitle(tr("embed.title"))
        self.layer = QSpinBox()
        self.layer.setRange(-1, 128)  # the engine names the model's own range when it is out
        self.layer.setValue(-1)
        self.pool = QComboBox()
        for pool in ("none", "mean"):
            self.pool.addItem(tr(f"embed.pool.{pool}"), pool)
        self.format = QComboBox()
        for fmt in ("npy", "parquet"):
            self.format.addItem(fmt, fmt)
        self.out = PathRow()
        self.run_button = QPushButton(tr("export.common.run"))
        self.run_button.clicked.connect(self.start)
        self.run_button.setEnabled(bool(audio))
        self.status = StatusLine(self.run_button)
        if not audio:
            self.status.setText(tr("embed.no_file"))
        form = QFormLayout()
        form.addRow(tr("embed.file"), plain(QLabel(audio)))
        form.addRow(tr("embed.layer"), self.layer)
        form.addRow(tr("embed.pool"), self.pool)
        form.addRow(tr("embed.format"), self.format)
        form.addRow(tr("export.common.out"), self.out)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.run_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        handle.worker.embed_done.connect(self._done)
        handle.worker.embed_failed.connect(self._failed)

    def start(self) -> None:
        if not self.out.text():
            self.status.finished(tr("export.common.need_out"))
            return
        self.status.busy(tr("embed.running"))
        request = EmbedRequest(
            self.audio,
            self.out.text(),
            layer=self.layer.value(),
            pool=self.pool.currentData(),
            format=self.format.currentData(),
        )
        self.handle.embed_file.emit(request)

    def _done(self, path: str) -> None:
        """The path written, and why it is not the audio's name: a file there already (the
        person's own, another layer's vectors) is never replaced (engine.embed)."""
        stem = Path(self.audio).stem
        if Path(path).stem == stem:
            self.status.finished(tr("embed.done", path=path))
        else:
            self.status.finished(tr("embed.done_kept", path=path, stem=stem))

    def _failed(self, error: object) -> None:
        self.status.finished(tr("embed.failed", message=error_text(error)))
