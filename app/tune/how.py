"""Step 3 of the Tune page, how: method and preset first, then every other setting of the job
(`ConfigForm`), an estimate of time and peak memory measured on this machine from a few warm-up
steps (in a child process), and the Start button."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from engine.tune.events import Estimate

from ..i18n import Message, tr
from ..plain import literal, plain
from ..review.page import format_duration
from . import strings  # noqa: F401  (registers the strings used below)
from .form import ConfigForm

__all__ = ["HowPanel", "estimate_text"]


def estimate_text(e: Estimate) -> str:
    """The How step's estimate, each part it adds up from named; the finish's calibration
    refit apart where the job has one."""
    key = "tune.how.estimate_gpu" if e.device_memory_bytes else "tune.how.estimate"
    key += "_refit" if e.refit_seconds else ""
    return tr(
        key,
        total=format_duration(e.total_seconds),
        setup=format_duration(e.setup_seconds),
        per_step=e.seconds_per_step,
        steps=e.steps,
        evaluations=e.evaluations,
        eval=e.eval_seconds,
        saves=e.saves,
        save=e.save_seconds,
        finish=format_duration(e.finish_seconds),
        refit=format_duration(e.refit_seconds),
        memory=e.peak_memory_bytes / 1e9,
        device_memory=e.device_memory_bytes / 1e9,
        device=e.device,
        measured=e.measured_steps,
    )


class HowPanel(QWidget):
    estimate_requested = Signal()
    start_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel()
        self.form = ConfigForm()
        scroll = QScrollArea()
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        self.estimate = plain(QLabel())  # a failed measurement quotes the error
        self.estimate.setWordWrap(True)
        self.estimate.setObjectName("tune-estimate")
        self.estimate_button = QPushButton()
        self.estimate_button.setObjectName("tune-measure")
        self.estimate_button.clicked.connect(self.estimate_requested)
        self.note = plain(QLabel())  # quotes the model's family
        self.note.setWordWrap(True)
        self.start_button = QPushButton()
        self.start_button.setObjectName("tune-start")
        self.start_button.clicked.connect(self.start_requested)
        self.form.changed.connect(self._form_changed)
        self._shown: Message = lambda: tr("tune.how.not_measured")
        self._edited = False  # the form changed since the last measurement started
        self._before_measuring: Message | None = None  # shown again if nothing is measured
        self._why = ""  # why only LoRA applies to the base model ("" when every method does)
        measure = QHBoxLayout()
        measure.addWidget(self.estimate, 1)
        measure.addWidget(self.estimate_button)
        start = QHBoxLayout()
        start.addWidget(self.note, 1)
        start.addWidget(self.start_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(scroll, 1)
        layout.addLayout(measure)
        layout.addLayout(start)
        self.retranslate()

    def retranslate(self) -> None:
        self.title.setText(tr("tune.how.title"))
        self.estimate_button.setText(tr("tune.how.measure"))
        self.start_button.setText(tr("tune.how.start"))
        self.note.setText(self._why or tr("tune.how.one_job"))
        self.form.retranslate()
        self.estimate.setText(self._shown())

    def set_lora_only(self, why: str) -> None:
        """A base model tuned with LoRA only (`why`, "" when every method applies): LoRA is
        chosen, the other methods are greyed with `why` as their tooltip, the note says it."""
        self._why = why
        method = self.form.fields["method"].widget
        items = method.model()
        for i in range(method.count()):
            other = method.itemData(i) != "lora"
            items.item(i).setEnabled(not (why and other))
            method.setItemData(i, literal(why) if other else "", Qt.ItemDataRole.ToolTipRole)
        if why and self.form.value("method") != "lora":
            self.form.set_value("method", "lora")
        self.note.setText(why or tr("tune.how.one_job"))

    def set_measuring(self, measuring: bool) -> None:
        """While a measurement's process lives (until the supervisor says it is gone, a little
        after its estimate arrives), neither another measurement nor a job can start: the
        start would be refused as a second job. One that ends with nothing said (refused, or
        its process never started) leaves what was shown before it."""
        self.estimate_button.setEnabled(not measuring)
        self.start_button.setEnabled(not measuring)
        if not measuring and self._before_measuring is not None:
            self._show(self._before_measuring)

    def _form_changed(self) -> None:
        self._edited = True
        self._show(lambda: tr("tune.how.stale"))

    def _show(self, message: Message) -> None:
        self._shown, self._before_measuring = message, None
        self.estimate.setText(message())

    def show_estimate(self, estimate: Estimate) -> None:
        """Show `estimate`, unless the form was edited while it was measured: it is for the
        earlier settings, and the note to measure again stays."""
        if not self._edited:
            self._show(lambda: estimate_text(estimate))

    def show_measuring(self) -> None:
        before = self._shown
        self._show(lambda: tr("tune.how.measuring"))
        self._before_measuring, self._edited = before, False
        self.set_measuring(True)

    def say(self, message: Message) -> None:
        """A message that is not an estimate (a failed measurement)."""
        self._show(message)
