"""Model → Export…: a model as a Hugging Face folder, a LoRA adapter or ONNX (fp32 / int8),
written and checked against PyTorch by the engine worker (engine.tune.formats); the dialog
shows the parity figures and says plainly when they fail."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..errors import error_text
from ..i18n import tr
from ..worker import ModelExportRequest, WorkerHandle
from . import strings as _strings  # noqa: F401  (registers the strings)
from .form import PathRow, StatusLine

__all__ = ["FORMATS", "ExportDialog"]

# choice in the format box (its i18n key is export.format.<choice>) -> (format, quantize)
FORMATS = {
    "hf": ("hf", "none"),
    "adapter": ("adapter", "none"),
    "onnx": ("onnx", "none"),
    "onnx_int8": ("onnx", "int8"),
}


class ExportDialog(QDialog):
    def __init__(self, handle: WorkerHandle, model: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.handle = handle
        self.setWindowTitle(tr("export.title"))
        self.model = PathRow(model)
        self.format = QComboBox()
        for choice in FORMATS:
            self.format.addItem(tr(f"export.format.{choice}"), choice)
        self.check = PathRow("", "*.csv *.tsv")
        self.out = PathRow()
        self.run_button = QPushButton(tr("export.common.run"))
        self.run_button.clicked.connect(self.start)
        self.status = StatusLine(self.run_button)
        self.figures = QPlainTextEdit()
        self.figures.setReadOnly(True)
        self.figures.hide()
        form = QFormLayout()
        form.addRow(tr("export.model"), self.model)
        form.addRow(tr("export.format"), self.format)
        form.addRow(tr("export.check"), self.check)
        form.addRow(tr("export.common.out"), self.out)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.run_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(self.figures, 1)
        layout.addWidget(buttons)
        worker = handle.worker
        worker.export_progress.connect(self._progress)
        worker.export_done.connect(self._done)
        worker.export_failed.connect(self._failed)

    def start(self) -> None:
        """Hand the export to the engine worker; its reply ends up in the status line."""
        from engine.tune.formats import ExportOptions

        if not self.out.text():
            self.status.finished(tr("export.common.need_out"))
            return
        fmt, quantize = FORMATS[self.format.currentData()]
        check = Path(self.check.text()) if self.check.text() else None
        options = ExportOptions(fmt, quantize, check)
        self.figures.hide()
        self.status.busy(tr("export.stage.writing", path=self.out.text()))
        self.handle.export_model.emit(
            ModelExportRequest(self.model.text(), self.out.text(), options)
        )

    def _progress(self, stage: object) -> None:
        key = f"export.stage.{stage.stage}"
        self.status.busy(tr(key, path=self.out.text()))

    def _done(self, result: object) -> None:
        self.status.finished(tr("export.done", path=str(result.out)))
        if result.lines:
            head = tr("export.parity_passed" if result.passed else "export.parity_failed")
            self.figures.setPlainText("\n".join((head, *result.lines)))
            self.figures.show()

    def _failed(self, error: object) -> None:
        self.status.finished(tr("export.failed", message=error_text(error)))
