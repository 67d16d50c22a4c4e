"""Step 4 of the Tune page, watch: the running job's step, loss and held-out CER as live curves,
utterances per second, time left, and its checkpoints as they are saved. Cancel stops after the
current step and keeps a checkpoint; Resume continues from the last one. A resumed job that
could not read its last checkpoint says, under the status, which one, where it is kept and the
step it resumed from instead. Its texts are drawn from the events kept, so a language switch
rewords them."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.tune.events import (
    CheckpointSaved,
    CheckpointSetAside,
    Evaluated,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    StepProgress,
)

from ..errors import failure_text
from ..i18n import Message, tr
from ..plain import plain
from ..review.page import format_duration
from . import strings  # noqa: F401  (registers the strings used below)

__all__ = ["WatchPanel"]


def _plot(color: str) -> tuple[pg.PlotWidget, Any]:
    plot = pg.PlotWidget(background="w")
    plot.setMouseEnabled(x=False, y=False)
    plot.setMenuEnabled(False)  # pyqtgraph's own menu is English only
    plot.hideButtons()
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setMinimumHeight(160)
    curve = plot.plot(pen=pg.mkPen(color, width=2), symbol=None)
    return plot, curve


class WatchPanel(QWidget):
    cancel_requested = Signal()
    resume_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel()
        self.status = plain(QLabel())  # a failure quotes the error
        self.status.setWordWrap(True)
        self.status.setObjectName("tune-status")
        self.set_aside = plain(QLabel())  # stays after the job ends, unlike the status
        self.set_aside.setWordWrap(True)
        self.set_aside.setObjectName("tune-set-aside")
        self.about = QLabel()
        self.about.setWordWrap(True)
        self.progress = QProgressBar()
        self.stats = QLabel()
        self.loss_plot, self.loss_curve = _plot("#1565c0")
        self.cer_plot, self.cer_curve = _plot("#2e7d32")
        self.cer_curve.setSymbol("o")
        self.checkpoints = QListWidget()
        self.checkpoints.setMaximumHeight(110)
        self.cancel_button = QPushButton()
        self.cancel_button.setObjectName("tune-cancel")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.resume_button = QPushButton()
        self.resume_button.setObjectName("tune-resume")
        self.resume_button.clicked.connect(self.resume_requested)
        plots = QHBoxLayout()
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.cer_plot)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.status)
        layout.addWidget(self.set_aside)
        layout.addWidget(self.about)
        layout.addWidget(self.progress)
        layout.addWidget(self.stats)
        layout.addLayout(plots, 1)
        layout.addWidget(self.checkpoints)
        layout.addLayout(buttons)
        self.reset()
        self.retranslate()

    def retranslate(self) -> None:
        self.title.setText(tr("tune.watch.title"))
        self.checkpoints.setAccessibleName(tr("tune.watch.checkpoints"))
        self.cancel_button.setText(tr("tune.watch.cancel"))
        self.resume_button.setText(tr("tune.watch.resume"))
        self.loss_plot.setTitle(tr("tune.watch.loss"))
        self.cer_plot.setTitle(tr("tune.watch.cer"))
        for plot in (self.loss_plot, self.cer_plot):
            plot.setLabel("bottom", tr("tune.watch.step"))
        self.status.setText(self._status())
        self._show_set_aside()
        self._show_about()
        self._show_stats()
        for row, event in enumerate(self._saved):
            self.checkpoints.item(row).setText(_checkpoint_text(event))

    def reset(self) -> None:
        """An empty view for a new job."""
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.cer_steps: list[int] = []
        self.cers: list[float] = []
        self._last_step: StepProgress | None = None
        self._started: JobStarted | None = None
        self._saved: list[CheckpointSaved] = []
        self._set_aside: list[CheckpointSetAside] = []  # by this run (since its JobStarted)
        self.total = 0
        self.loss_curve.setData([], [])
        self.cer_curve.setData([], [])
        self.checkpoints.clear()
        self.progress.setValue(0)
        self.stats.setText("")
        self.about.setText("")
        self._show_set_aside()
        self.say(lambda: tr("tune.watch.idle"))
        self.set_running(False, can_resume=False)

    def set_running(self, running: bool, can_resume: bool = False) -> None:
        self.cancel_button.setEnabled(running)
        self.resume_button.setVisible(can_resume and not running)

    def say(self, message: Message) -> None:
        """One sentence on what happened (a crash, a refusal, the end)."""
        self._status = message
        self.status.setText(message())

    def add(self, event: Any) -> None:
        """Show one event of the job (live, or replayed from its events file)."""
        if isinstance(event, JobStarted):
            self._started = event
            self._set_aside = []  # an earlier run's, replayed
            self.total = event.config.steps
            self.progress.setRange(0, event.config.steps)
            self._show_about()
            self._show_set_aside()
            if event.resumed_from_step:
                self.say(lambda: tr("tune.watch.resumed", step=event.resumed_from_step))
            else:
                self.say(lambda: tr("tune.watch.running"))
        elif isinstance(event, CheckpointSetAside):
            self._set_aside.append(event)
            self._show_set_aside()
        elif isinstance(event, StepProgress):
            self._step(event)
        elif isinstance(event, Evaluated):
            self.cer_steps.append(event.step)
            self.cers.append(100 * event.cer)
            self.cer_curve.setData(self.cer_steps, self.cers)
            self._show_stats()  # the new CER at once, not with the next step
        elif isinstance(event, CheckpointSaved):
            self._saved.append(event)
            self.checkpoints.addItem(_checkpoint_text(event))
            self.checkpoints.scrollToBottom()
        elif isinstance(event, JobFinished):
            self.say(lambda: tr("tune.watch.finished", steps=event.result.steps))
        elif isinstance(event, JobCancelled):
            key = "tune.watch.cancelled" if event.checkpoint else "tune.watch.cancelled_none"
            self.say(lambda: tr(key, step=event.step))
        elif isinstance(event, JobFailed):
            self.say(lambda: tr("tune.watch.failed", message=failure_text(event)))

    def _step(self, event: StepProgress) -> None:
        if self.steps and event.step <= self.steps[-1]:  # replayed after a resume: start over
            keep = [i for i, s in enumerate(self.steps) if s < event.step]
            self.steps = [self.steps[i] for i in keep]
            self.losses = [self.losses[i] for i in keep]
        self.steps.append(event.step)
        self.losses.append(event.loss)
        self.loss_curve.setData(self.steps, self.losses)
        self.total = event.total_steps
        self.progress.setRange(0, event.total_steps)
        self.progress.setValue(event.step)
        self._last_step = event
        self._show_stats()

    def _show_set_aside(self) -> None:
        self.set_aside.setText(" ".join(_set_aside_text(e) for e in self._set_aside))
        self.set_aside.setVisible(bool(self._set_aside))

    def _show_about(self) -> None:
        event = self._started
        if event is None:
            return
        cfg, chosen = event.config, event.selection_examples
        self.about.setText(
            tr(
                "tune.watch.about_split" if chosen else "tune.watch.about",
                method=cfg.method,
                preset=cfg.preset,
                steps=cfg.steps,
                train=event.train_examples,
                minutes=event.train_seconds / 60,
                heldout=event.heldout_examples,
                report=event.heldout_examples - chosen,
                selection=chosen,
                device=event.device,
                precision=event.precision,
            )
        )

    def _show_stats(self) -> None:
        event = self._last_step
        if event is None:
            return
        cer = f"{self.cers[-1]:.1f} %" if self.cers else "—"
        self.stats.setText(
            tr(
                "tune.watch.stats",
                step=event.step,
                total=event.total_steps,
                loss=event.loss,
                cer=cer,
                rate=event.samples_per_second,
                eta=format_duration(event.eta_seconds),
            )
        )


def _set_aside_text(event: CheckpointSetAside) -> str:
    return tr(
        "tune.watch.set_aside",
        checkpoint=str(event.checkpoint),
        problem=event.problem,
        step=event.resumed_step,
        kept=str(event.kept_as),
    )


def _checkpoint_text(event: CheckpointSaved) -> str:
    key = "tune.watch.checkpoint_best" if event.best else "tune.watch.checkpoint"
    return tr(key, step=event.step, path=str(event.path))
