"""Model → Export… (and Export… on a tuned model of the Tune page): a model as a Hugging Face
folder, a LoRA adapter or ONNX (fp32 / int8), written and checked against PyTorch by the engine
worker (engine.tune.formats); the dialog shows each stage as it begins, can cancel between
stages (nothing half-written is left), shows the parity figures and says plainly when they fail
(and where the failed export was kept instead), and lists a check manifest's unusable rows.
Formats the model's family cannot be exported to are greyed out with the reason
(app.features). Closing the dialog while an export runs cancels it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..errors import error_text
from ..features import capabilities
from ..i18n import tr
from ..plain import literal, plain
from ..worker import ModelExportRequest, ModelSummary, WorkerHandle
from . import strings as _strings  # noqa: F401  (registers the strings)
from .form import PathRow, StatusLine

if TYPE_CHECKING:
    from engine.tune.data import ValidationReport

__all__ = ["FORMATS", "ExportDialog"]

# choice in the format box (its i18n key is export.format.<choice>) -> (format, quantize)
FORMATS = {
    "hf": ("hf", "none"),
    "adapter": ("adapter", "none"),
    "onnx": ("onnx", "none"),
    "onnx_int8": ("onnx", "int8"),
}
# The registry feature (engine.registry.FEATURES) a choice needs; the adapter is a tuning job's
# file, copied whatever the family (the engine says when a folder has none).
_NEEDS = {"hf": "hf_export", "adapter": None, "onnx": "onnx_export", "onnx_int8": "onnx_export"}


class ExportDialog(QDialog):
    """`model`: the folder, Hub id or tuning job preselected; `loaded`: the model the window
    has loaded (its features are the engine's own when `model` names it). After a model folder
    is written (Hugging Face or ONNX, its parity not failed), *Use this model* asks the window
    to transcribe with it (`use_requested`): an int8 export is what starts fastest and holds
    least memory on a CPU, and choosing it should not mean finding the folder again."""

    use_requested = Signal(str)  # the written folder

    def __init__(
        self,
        handle: WorkerHandle,
        model: str,
        parent: QWidget | None = None,
        *,
        loaded: ModelSummary | None = None,
    ) -> None:
        super().__init__(parent)
        self.handle = handle
        self.loaded = loaded
        self.request: ModelExportRequest | None = None  # the export running now
        self._written = ""  # the folder the last export wrote
        self._why: dict[str, str] = {}  # format choice -> why this model cannot have it
        self.setWindowTitle(tr("export.title"))
        self.model = PathRow(model)
        self.format = QComboBox()
        for choice in FORMATS:
            self.format.addItem(tr(f"export.format.{choice}"), choice)
        self.check = PathRow("", "*.csv *.tsv")
        self.out = PathRow()
        self.why = plain(QLabel())  # why the chosen format does not apply to this model
        self.why.setWordWrap(True)
        self.why.setObjectName("export-why")
        self.why.hide()
        self.run_button = QPushButton(tr("export.common.run"))
        self.run_button.clicked.connect(self.start)
        self.cancel_button = QPushButton(tr("export.cancel"))
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.use_button = QPushButton(tr("export.use"))
        self.use_button.clicked.connect(self._use)
        self.status = StatusLine(self.run_button)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.figures = QPlainTextEdit()
        self.figures.setReadOnly(True)
        self.figures.hide()
        form = QFormLayout()
        form.addRow(tr("export.model"), self.model)
        form.addRow(tr("export.format"), self.format)
        form.addRow("", self.why)
        form.addRow(tr("export.check"), self.check)
        form.addRow(tr("export.common.out"), self.out)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.run_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.use_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.use_button.hide()  # (after addButton, which shows it) until a folder is written
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.figures, 1)
        layout.addWidget(buttons)
        self.model.edit.textChanged.connect(self._model_changed)
        self.format.currentIndexChanged.connect(self._update)
        worker = handle.worker
        worker.export_progress.connect(self._progress)
        worker.export_done.connect(self._done)
        worker.export_failed.connect(self._failed)
        worker.export_cancelled.connect(self._cancelled)
        self._model_changed()

    # ---- what applies --------------------------------------------------------------------
    def _model_changed(self) -> None:
        """Grey out the formats the model's family cannot be exported to, each with why."""
        caps = capabilities(self.model.text(), self.loaded)
        items = self.format.model()
        for row in range(self.format.count()):
            choice = self.format.itemData(row)
            why = caps.why_not(_NEEDS[choice]) if _NEEDS[choice] else ""
            self._why[choice] = why
            items.item(row).setEnabled(not why)
            self.format.setItemData(row, literal(why) or None, Qt.ItemDataRole.ToolTipRole)
        self._update()

    def unavailable(self) -> str:
        """Why the chosen format does not apply to the model ("" when it does)."""
        return self._why.get(self.format.currentData(), "")

    def _update(self) -> None:
        why = self.unavailable()
        self.why.setText(why)
        self.why.setVisible(bool(why))
        self.format.setToolTip(literal(why))
        self.run_button.setEnabled(self.request is None and not why)
        # Only an ONNX export is compared with PyTorch; the others copy the weights unchanged.
        self.check.setEnabled(FORMATS[self.format.currentData()][0] == "onnx")

    # ---- running -------------------------------------------------------------------------
    def start(self) -> None:
        """Hand the export to the engine worker; its replies end up in the status line."""
        from engine.errors import TingxieError
        from engine.tune.formats import ExportOptions, export_stages, export_target

        if self.request is not None or self.unavailable():
            return
        if not self.model.text():
            self.status.finished(tr("export.need_model"))
            return
        if not self.out.text():
            self.status.finished(tr("export.common.need_out"))
            return
        fmt, quantize = FORMATS[self.format.currentData()]
        check = Path(self.check.text()) if self.check.text() and fmt == "onnx" else None
        options = ExportOptions(fmt, quantize, check)
        try:  # a chosen folder holding other files is never replaced: a subfolder is made
            out = export_target(self.out.text(), self.model.text(), options)
        except TingxieError as e:  # (a path the system refuses is one too: export.bad_path)
            self.status.finished(error_text(e))
            return
        self.request = ModelExportRequest(self.model.text(), str(out), options)
        self.figures.hide()
        self.use_button.hide()
        self.progress.setRange(0, len(export_stages(options)))
        self.progress.setValue(0)
        self.progress.show()
        self.status.busy(tr("export.starting", path=str(out)))
        self.cancel_button.setEnabled(True)
        self.handle.export_model.emit(self.request)
        self._update()

    def cancel(self) -> None:
        """Stop the export at its next stage; nothing of it is left."""
        if self.request is None or self.request.cancel.is_set():
            return
        self.request.cancel.set()  # thread-safe; seen by the worker between stages
        self.cancel_button.setEnabled(False)
        self.status.busy(tr("export.cancelling"))

    def reject(self) -> None:
        """Closing while an export runs cancels it (no one would see how it ended)."""
        self.cancel()
        super().reject()

    def _progress(self, stage: object) -> None:
        if self.request is None or self.request.cancel.is_set():
            return
        what = tr(f"export.stage.{stage.stage}", path=self.request.out, model=self.request.source)
        self.status.busy(tr("export.step", index=stage.index, count=stage.count, what=what))
        self.progress.setValue(stage.index - 1)

    def _finish(self, text: str) -> None:
        self.request = None
        self.cancel_button.setEnabled(False)
        self.status.finished(text)
        self._update()

    def _done(self, result: object) -> None:
        self.progress.setValue(self.progress.maximum())
        key = "export.done" if result.passed else "export.kept_failed"
        self._finish(tr(key, path=str(result.out)))
        if result.lines:
            head = tr("export.parity_passed" if result.passed else "export.parity_failed")
            self.figures.setPlainText("\n".join((head, *result.lines)))
            self.figures.show()
        self._written = str(result.out)
        self.use_button.setVisible(result.format in ("hf", "onnx") and result.passed)

    def _use(self) -> None:
        self.use_requested.emit(self._written)
        self.accept()

    def _failed(self, error: object) -> None:
        self.progress.hide()
        self._finish(tr("export.failed", message=error_text(error)))
        self._show_rows(getattr(error, "report", None))

    def _show_rows(self, report: ValidationReport | None) -> None:
        """A check manifest's rows left out, each with why, in the figures pane (the dialog has
        no table of its own; the message names the first few)."""
        from ..tune.checkview import detail_text

        skipped = [f for f in report.findings if f.skipped] if report is not None else []
        if not skipped:
            return
        rows = [f"{f.origin}: {detail_text(f.code, f.params, f.detail)}" for f in skipped]
        self.figures.setPlainText("\n".join((tr("export.check_rows"), *rows)))
        self.figures.show()

    def _cancelled(self, error: object) -> None:
        self.progress.hide()
        self._finish(error_text(error))
