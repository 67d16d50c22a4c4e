"""The Tune page: from corrected recordings to a better model, with the mouse.

Six steps, each its own panel: what to teach (`SourcesPanel`), the data check (`CheckPanel`),
how (`HowPanel`: settings, measured estimate, start), watch (`WatchPanel`), the result
(`ResultPanel`) and my models (`ModelsPanel`). This class only moves between them and talks to
the supervisor (`app.tune.supervisor`), which runs every job in a child process; the data check,
job folders and the catalogue are the engine's (`engine.tune.prepare`, `engine.tune.jobs`).

When the page opens it looks at the job folders: a job still running (the app was closed while
it ran) is followed again, and a job that stopped (cancelled, crashed, killed) is offered for
resume, or for discard when it stopped before its first checkpoint, and one that finished while
the app was closed (left to finish in the background) is shown on the Result step. Texts the
page shows are messages (`app.i18n.Message`), reworded on a language switch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.tune.data import DatasetError
from engine.tune.events import CheckpointSaved, JobFinished, JobResult
from engine.tune.export import ModelCard, read_card
from engine.tune.jobs import (
    ESTIMATES,
    UNREADABLE,
    EventLog,
    JobFolder,
    TunedModel,
    compare_heldout,
    delete_job,
    find_jobs,
    rename_job,
    tuned_models,
)
from engine.tune.wire import TERMINAL

from ..demo import model_display_name
from ..errors import error_text, failure_text
from ..features import capabilities
from ..i18n import LiveText, Message, tr
from ..plain import literal, plain
from . import strings  # noqa: F401  (registers the strings used below)
from .checkview import CheckPanel
from .form import FormError
from .how import HowPanel
from .models import ModelsPanel
from .result import ResultPanel
from .sources import SourcesPanel, TrainingSet
from .supervisor import CheckRequest, NewJob, SupervisorHandle, status_key
from .watch import WatchPanel

__all__ = ["STEPS", "TunePage"]

log = logging.getLogger("tingxie.app.tune")

# Written in a job folder when the user closes the app and lets the job finish in the
# background: the next start shows its result (or follows it, or offers it), then removes it.
LEFT_RUNNING = "left-running"
STEPS = ("sources", "check", "how", "watch", "result", "models")
# Settings the data check depends on: changing one after a check asks for another.
_CHECKED_SETTINGS = (
    "min_seconds",
    "max_seconds",
    "heldout_fraction",
    "extend_vocab",
    "mask_time_prob",
    "mask_time_length",
)


def _job_name(job: JobFolder) -> str:
    """The job's name, or its folder's when its job.json cannot be read."""
    try:
        return job.spec.name
    except UNREADABLE:
        return job.path.name


def _unreadable_note(folders: list[str]) -> Message:
    """What the notice adds about job folders left out because they cannot be read."""
    shown = ", ".join(folders)
    return (lambda: tr("tune.unreadable_jobs", folders=shown)) if folders else str


def _joined(*messages: Message) -> Message:
    """`messages` as one, a space between those that say something."""
    return lambda: " ".join(filter(None, (m() for m in messages)))


def _same_path(a: str, b: str) -> bool:
    """Whether `a` and `b` name the same model folder (or Hub id)."""
    try:
        return a == b or Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except OSError:
        return False


def _saved_result(job: JobFolder, card: ModelCard) -> JobResult:
    """The result of a job whose child was killed after saving the tuned model (while the
    confidence calibration was refitted, before its JobFinished), from the model's card: its
    best step is that of its last best checkpoint, as the job chose the saved weights, and the
    held-out rows that chose it are the card's, so it says what the live result said."""
    best = [e.step for e in job.events() if isinstance(e, CheckpointSaved) and e.best]
    adapter = job.adapter_dir if job.adapter_dir.is_dir() else None
    step = best[-1] if best else card.steps
    return JobResult(
        job.model_dir,
        adapter,
        card.cer_before,
        card.cer_after,
        step,
        card.steps,
        selection_rows=card.selection_rows,
        rows_unknown=card.cer_rows is None,
    )


class TunePage(QWidget):
    """See the module docstring. `root` holds the job folders; `training_sets` lists the
    library's (engine.library.store.Store.correction_sets)."""

    use_model_requested = Signal(str)  # a tuned model's folder: load it and remember it
    # A tuned model's job folder to export: the window opens its one Export dialog with it
    # (every format, ONNX and int8 with their parity check, cancellable).
    export_requested = Signal(str)

    def __init__(
        self,
        handle: SupervisorHandle,
        root: Path,
        *,
        training_sets: Callable[[], list[TrainingSet]] = list,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.handle = handle
        self.root = Path(root)
        self.job: JobFolder | None = None  # the job on the Watch step
        self.result_job: JobFolder | None = None  # the job whose result the Result step shows
        self.events: list[Any] = []  # its events so far
        self.over = False  # its last event arrived (the child may still be exiting)
        self.stopped: JobFolder | None = None  # offered for resume or discard in the notice
        self._refusal_shown = False  # the notice says one job at a time (until a child ends)
        # The name of the job a Start or Resume asked for, until its child starts (or it is
        # refused, or fails): closing meanwhile asks about it as about a running one.
        self._starting: str | None = None
        self._stop_on_close = False  # the user chose to stop the job when the app closes
        # The tuned model Use asked the window to load (its folder, its name), until it has.
        self._switching: tuple[str, str] | None = None
        self._checked_key: tuple | None = None
        # The check asked for last: a verdict on another (sources or settings changed since,
        # its answer still on the way) is not this data's.
        self._check_request: CheckRequest | None = None
        self.loaded: Any = None  # the window's loaded model (app.worker.ModelSummary)
        self._build(training_sets)
        self._connect()
        self.retranslate()
        self.refresh_models()
        self.scan_jobs()

    # ---- construction --------------------------------------------------------------------
    def _build(self, training_sets: Callable[[], list[TrainingSet]]) -> None:
        self.sources = SourcesPanel(training_sets)
        self.checker = CheckPanel()
        self.how = HowPanel()
        self.watch = WatchPanel()
        self.result = ResultPanel()
        self.models = ModelsPanel()
        panels = (self.sources, self.checker, self.how, self.watch, self.result, self.models)
        self.panels = dict(zip(STEPS, panels, strict=True))
        self.nav = QListWidget()
        self.nav.setMaximumWidth(200)
        self.stack = QStackedWidget()
        for panel in self.panels.values():
            self.nav.addItem("")
            self.stack.addWidget(panel)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.notice = plain(QLabel())  # quotes paths, names and errors
        self.notice.setWordWrap(True)
        self.notice.setObjectName("tune-notice")
        self._notice = LiveText(self._show_notice, self.notice.text)
        self.resume_button = QPushButton()
        self.resume_button.clicked.connect(lambda: self.resume(self.stopped))
        self.discard_button = QPushButton()
        self.discard_button.clicked.connect(self._discard_stopped)
        top = QHBoxLayout()
        top.addWidget(self.notice, 1)
        top.addWidget(self.resume_button)
        top.addWidget(self.discard_button)
        body = QHBoxLayout()
        body.addWidget(self.nav)
        body.addWidget(self.stack, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(body, 1)
        self.nav.setCurrentRow(0)
        self._offer(None)

    def _connect(self) -> None:
        s = self.handle.supervisor
        s.checked.connect(self._checked)
        s.failed.connect(self._failed)
        s.started.connect(self._started)
        s.event.connect(self._event)
        s.ended.connect(self._ended)
        s.finished.connect(self._finished)
        s.refused.connect(self._refused)
        # Bound methods only: a lambda has no receiver thread and would run in the supervisor's.
        s.estimated.connect(self._estimated)
        s.estimate_failed.connect(self._estimate_failed)
        self.sources.check_requested.connect(self.check)
        self.sources.changed.connect(self._update_tunable)
        self.checker.next_requested.connect(lambda: self.show_step("how"))
        self.checker.add_vocabulary.connect(self._add_vocabulary)
        self.how.estimate_requested.connect(self.measure)
        self.how.start_requested.connect(self.start_job)
        self.watch.cancel_requested.connect(self.cancel)
        self.watch.resume_requested.connect(lambda: self.resume(self.job))
        self.result.use_requested.connect(lambda: self.use_model(self.result_job))
        self.result.export_requested.connect(lambda: self.export(self.result_job))
        self.models.use_requested.connect(lambda f: self.use_model(JobFolder(f)))
        self.models.rename_requested.connect(self._rename)
        self.models.export_requested.connect(lambda f: self.export(JobFolder(f)))
        self.models.delete_requested.connect(self._delete)

    def retranslate(self) -> None:
        self.nav.setAccessibleName(tr("tune.steps"))
        for row, step in enumerate(STEPS):
            self.nav.item(row).setText(tr(f"tune.step.{step}", n=row + 1))
        for panel in self.panels.values():
            panel.retranslate()
        self.resume_button.setText(tr("tune.watch.resume"))
        self.discard_button.setText(tr("tune.discard"))
        self._notice.retranslate()
        self._update_tunable()  # its reasons follow the language

    def showEvent(self, event) -> None:
        """Training sets made since the page was last shown appear in the list."""
        self.sources.refresh()
        super().showEvent(event)

    def show_step(self, step: str) -> None:
        self.nav.setCurrentRow(STEPS.index(step))

    def _say(self, message: Message | str) -> None:
        """Show `message` in the notice, reworded on a language switch (a str, an error already
        worded in the UI language, as it is)."""
        self._refusal_shown = False
        self._notice.say(message if callable(message) else lambda: message)

    def _show_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def _offer(self, job: JobFolder | None, note: Message = str) -> None:
        """Offer `job` (stopped) in the notice, or nothing, with `note` after it: for resume
        when it has checkpoints, else for discard (nothing to resume). A folder that cannot be
        read raises, and nothing changes."""
        offer: Message = str
        steps = job.checkpoint_steps() if job is not None else []
        if job is not None and steps:
            name, total = job.spec.name, job.config.resolved().steps
            offer = partial(tr, "tune.offer_resume", name=name, step=steps[-1], total=total)
        elif job is not None:
            offer = partial(tr, "tune.offer_discard", name=job.spec.name)
        self.stopped = job
        self.resume_button.setVisible(bool(steps))
        self.discard_button.setVisible(job is not None)
        self._say(_joined(offer, note))

    # ---- what to teach, check ------------------------------------------------------------
    def set_loaded_model(self, summary: Any) -> None:
        """The model the window loaded (`ModelSummary`): offered as the base model, and what
        its family can do is the engine's own word when it is the base."""
        self.loaded = summary
        self.sources.set_current_model(summary.source)
        self._update_tunable()
        self._switch_ended(summary.source, "tune.now_using")

    def model_not_loaded(self, source: str) -> None:
        """The window could not load `source` (it says why): when it is the tuned model Use
        asked for, the notice no longer says the switch is under way."""
        self._switch_ended(source, "tune.use_failed")

    def _switch_ended(self, source: str, key: str) -> None:
        """Say `key` about the tuned model Use asked for, when `source` is it."""
        if self._switching is not None and _same_path(source, self._switching[0]):
            name = self._switching[1]
            self._switching = None
            self._say(lambda: tr(key, name=name))

    def _why_lora_only(self) -> str:
        """Why the chosen base model is tuned with LoRA only ("" when every method applies,
        or no model is chosen): Whisper, whose job is LoRA (engine.tune.whisper_job)."""
        base = self.sources.model()
        return capabilities(base, self.loaded).why_not("ctc_tuning") if base else ""

    def _update_tunable(self) -> None:
        why = self._why_lora_only()
        self.sources.set_model_note(why)
        self.how.set_lora_only(why)

    def open_training_set(self, folder: str | Path) -> None:
        """Select a training set made on the Review page and check it (its "Tune now")."""
        self.sources.refresh()
        self.sources.name_edit.setText(Path(folder).name)
        self.sources.select_source(Path(folder) / "manifest.tsv")
        self.check()

    def _base_config(self, output_dir: str = ""):
        """The form's config for the chosen model and data (FormError says what is wrong)."""
        sources = self.sources.sources()
        if not sources:
            raise FormError(partial(tr, "tune.no_data"))
        if not self.sources.model():
            raise FormError(partial(tr, "tune.no_model"))
        return self.how.form.config(self.sources.model(), sources[0], output_dir)

    def _check_key(self) -> tuple:
        config = self._base_config()
        settings = tuple(getattr(config, name) for name in _CHECKED_SETTINGS)
        return (tuple(self.sources.sources()), config.model, config.normalize, settings)

    def check(self) -> None:
        """Check the chosen data as the job would (in the supervisor's thread)."""
        try:
            config, key = self._base_config(), self._check_key()
        except FormError as e:
            self._say(e.message)
            return
        self._checked_key = key
        self._check_request = CheckRequest(tuple(self.sources.sources()), config)
        self.checker.show_checking()
        self.show_step("check")
        self.handle.check.emit(self._check_request)

    def _checked(self, request: CheckRequest, check: Any) -> None:
        """Show the verdict on the data last asked about; an earlier one, arriving late, is
        dropped (it still says "checking…" until the latest arrives)."""
        if request == self._check_request:
            self.checker.show_check(check)

    def _add_vocabulary(self) -> None:
        self.how.form.set_value("extend_vocab", True)
        self.check()

    def _failed(self, error: object) -> None:
        """Something could not run (`error`: an error, worded in the UI language, or a
        one-line reason). A source that no longer reads (deleted or changed since its check,
        so the job folder could not be made) is checked again: the old verdict is not ready."""
        self._say(lambda: error_text(error))
        self._starting = None  # (a job folder that could not be made, a child not started)
        self.checker.stop_checking()  # a check that could not run
        self.how.set_measuring(False)  # (a measurement that could not start)
        if isinstance(error, DatasetError):
            self.check()

    # ---- how: estimate, start ------------------------------------------------------------
    def _new_job(self, kind: str) -> NewJob | None:
        """What to create for `kind`, or None (and why, said) when the data must be checked
        (again) first."""
        try:
            config, key = self._base_config(), self._check_key()
        except FormError as e:
            self._say(e.message)
            return None
        if key != self._checked_key or not self.checker.ready():
            self._say(lambda: tr("tune.check_first"))
            if key != self._checked_key:
                self.check()
            else:
                self.show_step("check")
            return None
        root = self.root / ESTIMATES if kind == "estimate" else self.root
        name = self.sources.job_name() or "job"
        return NewJob(str(root), name, tuple(self.sources.sources()), config, kind)

    def measure(self) -> None:
        """Measure time and memory from a few warm-up steps, in a child process."""
        request = self._new_job("estimate")
        if request is not None:
            self.how.show_measuring()
            self.handle.start_new.emit(request)

    def start_job(self) -> None:
        request = self._new_job("run")
        if request is not None:
            self._say(str)
            self._starting = request.name
            self.handle.start_new.emit(request)

    def resume(self, job: JobFolder | None) -> None:
        """Continue `job` from its last checkpoint (same data order and optimizer state). The
        page shows it once its child starts: refused, the offer and the Watch step stay."""
        if job is not None:
            self._starting = _job_name(job)
            self.handle.start.emit(str(job.path), "run", True)

    def cancel(self) -> None:
        """Stop after the current step; the child saves a checkpoint first."""
        self.handle.cancel()
        self.watch.say(lambda: tr("tune.watch.cancelling"))

    def _show_job(self, job: JobFolder) -> int:
        """Put `job` on the Watch step with everything it reported so far; returns how far into
        its events file that is (where following it goes on)."""
        self.job = job
        replayed = EventLog(job.events_path())
        self.events = replayed.read_new()
        self.over = False
        self.watch.reset()
        for event in self.events:
            self.watch.add(event)
        self._offer(None)
        self.show_step("watch")
        return replayed.offset

    # ---- the supervisor's reports --------------------------------------------------------
    def _set_busy(self, busy: bool) -> None:
        """While a child runs (a job or a measurement) Resume waits, as Start does: a second
        child would be refused."""
        for button in (self.resume_button, self.watch.resume_button):
            button.setEnabled(not busy)

    def _started(self, folder: str, kind: str, pid: int) -> None:
        self._set_busy(True)
        if kind != "run":
            return
        self._starting = None
        self._show_job(JobFolder(folder))  # new, or resumed: with what its earlier runs did
        self.watch.set_running(True)
        self.watch.say(lambda: tr("tune.watch.starting", pid=pid))

    def _event(self, folder: str, event: Any) -> None:
        if self.job is None or self.job.path != Path(folder):
            return
        self.events.append(event)
        self.watch.add(event)
        self.over = self.over or isinstance(event, TERMINAL)
        if isinstance(event, JobFinished):
            self._show_result(self.job, event.result, self.events)

    def _show_result(self, job: JobFolder, result: JobResult, events: list[Any]) -> None:
        self.result_job = job  # Use and Export act on it, also once another job runs
        self.result.show_result(result, compare_heldout(events, result.best_step))
        self.refresh_models()
        self.show_step("result")

    def _ended(self, folder: str, kind: str, status: int, tail: str) -> None:
        """The child ended without its last event: say how, and what is kept, in a sentence
        or two. Killed after saving the tuned model, the job is finished all the same."""
        key, values = status_key(status)
        if kind == "estimate":
            self.how.say(lambda: tr("tune.how.failed", message=tr(key, **values)))
            return
        job = JobFolder(folder)
        card, steps = read_card(job.model_dir), job.checkpoint_steps()
        if card is not None:
            path = str(job.model_dir)
            raw = partial(tr, "tune.died.uncalibrated", path=path) if not card.calibration else str
            kept = _joined(partial(tr, "tune.died.saved"), raw)
        elif steps:
            kept = partial(tr, "tune.died.kept", step=steps[-1])
        else:
            kept = partial(tr, "tune.died.nothing")
        self.watch.say(_joined(partial(tr, key, **values), kept))
        log.warning("tuning process for %s ended with status %s: %s", folder, status, tail)
        if card is not None:
            self._show_result(job, _saved_result(job, card), job.events())

    def _finished(self, folder: str, kind: str) -> None:
        self._set_busy(False)
        if kind == "estimate":
            self.how.set_measuring(False)
        if kind == "run":
            job = JobFolder(folder)
            self.watch.set_running(False, can_resume=job.state() == "stopped")
            self.refresh_models()
        # Stopped jobs (this one, cancelled or failed, included) are offered again, those with
        # a checkpoint first; so is the one a "one job at a time" refusal left waiting.
        offered = self._offerable()
        if self._refusal_shown or (kind == "run" and offered):
            self._offer_first(offered)

    def _estimated(self, _folder: str, estimate: Any) -> None:
        self.how.show_estimate(estimate)

    def _estimate_failed(self, _folder: str, failed: Any) -> None:
        self.how.say(lambda: tr("tune.how.failed", message=failure_text(failed)))

    def _refused(self, folder: str) -> None:
        """Another child runs: said after the offer, which stays for later."""
        self._starting = None
        name = _job_name(JobFolder(folder))
        stopped = [self.stopped] if self.stopped is not None else []
        self._offer_first(stopped, partial(tr, "tune.one_job", name=name))
        self._refusal_shown = True
        self.how.set_measuring(False)

    # ---- jobs found on disk --------------------------------------------------------------
    def scan_jobs(self) -> None:
        """Follow a job still running from an earlier session, or offer a stopped one (for
        resume, or for discard when it stopped before its first checkpoint), after showing the
        result of the newest job that finished in the background while the app was closed."""
        jobs = find_jobs(self.root)
        left = [j for j in jobs if (j.path / LEFT_RUNNING).is_file()]
        for job in left:  # said once: followed, shown or offered below
            try:
                (job.path / LEFT_RUNNING).unlink(missing_ok=True)
            except OSError as e:  # said again at the next start, no worse
                log.warning("%s: cannot remove %s: %s", job.path, LEFT_RUNNING, e)
        running = next((j for j in jobs if j.state() == "running"), None)
        if running is not None:
            shown = self._show_job(running)  # its status as its events left it
            pid = running.starting_pid()  # looked at after them: what it writes next is relayed
            self.handle.attach.emit(str(running.path), shown, pid is not None)
            self.watch.set_running(True)
            if pid is not None:  # they are an earlier run's (a resumed run still loading)
                self.watch.say(lambda: tr("tune.watch.starting", pid=pid))
            self._set_busy(True)
            name = _job_name(running)
            self._say(lambda: tr("tune.attached", name=name))
            return
        note: Message = str
        done = next((j for j in left if j.state() == "finished"), None)
        if done is not None and self._show_finished(done):
            name = _job_name(done)
            note = partial(tr, "tune.finished_while_closed", name=name)
        self._offer_first(self._offerable(jobs), note)

    def _show_finished(self, job: JobFolder) -> bool:
        """Show a finished job's result on the Result step, from its JobFinished or, killed
        after saving its model, its card; False when it has neither (nothing to show)."""
        events = job.events()
        result = next((e.result for e in reversed(events) if isinstance(e, JobFinished)), None)
        card = read_card(job.model_dir) if result is None else None
        if card is not None:
            result = _saved_result(job, card)
        if result is None:
            return False
        self._show_result(job, result, events)
        return True

    def _offerable(self, jobs: list[JobFolder] | None = None) -> list[JobFolder]:
        """The jobs to offer in the notice (of `jobs`, else of every job folder), stopped ones
        that can be resumed first: a newer one with nothing to resume does not hide them."""
        found = find_jobs(self.root) if jobs is None else jobs
        waiting = [j for j in found if j.state() in ("stopped", "new")]
        return sorted(waiting, key=lambda j: j.state() != "stopped")  # stable: newest first

    def _offer_first(self, jobs: list[JobFolder], note: Message = str) -> None:
        """Offer the first of `jobs` that can be read, with `note` after it. One whose folder
        cannot be read is left out, logged and named in the notice: the page opens all the
        same."""
        unreadable: list[str] = []
        for job in jobs:
            try:
                self._offer(job, _joined(note, _unreadable_note(unreadable)))
                return
            except UNREADABLE as e:
                log.warning("tuning job %s cannot be read; not offered: %s", job.path, e)
                unreadable.append(str(job.path))
        self._offer(None, _joined(note, _unreadable_note(unreadable)))

    def _discard_stopped(self) -> None:
        job = self.stopped
        if job is None:
            return
        key = "tune.confirm_discard" if job.checkpoint_steps() else "tune.confirm_discard_new"
        if self._confirm(tr(key, name=_job_name(job))):
            try:
                delete_job(job)
            except (OSError, ValueError) as e:  # still running, or a folder that resists
                self._say(lambda error=e: error_text(error))
                return
            self._offer_first(self._offerable())  # the next one, if any

    # ---- models --------------------------------------------------------------------------
    def refresh_models(self) -> None:
        """List the tuned models again; the Result step lets go of a job that is gone."""
        self.models.show_models(tuned_models(self.root))
        if self.result_job is not None and not self.result_job.path.is_dir():
            self.result_job = None
            self.result.show_result(None, [])

    def _present(self, folder: Path) -> bool:
        """Whether `folder` (a job's, or its model's) is still there; if it went (deleted or
        moved outside Tingxie, or by another window) say so and list what is left."""
        if folder.is_dir():
            return True
        self._say(lambda: tr("tune.gone", path=str(folder)))
        self.refresh_models()
        return False

    def use_model(self, job: JobFolder | None) -> None:
        """Switch transcription to the job's tuned model (the window loads and remembers it)."""
        if job is not None and self._present(job.model_dir):
            name = _job_name(job)
            self._switching = (str(job.model_dir), name)
            self._say(lambda: tr("tune.using", name=name))
            self.use_model_requested.emit(str(job.model_dir))

    def export(self, job: JobFolder | None) -> None:
        """Export the job's tuned model (merged model, adapter, ONNX, int8) in the window's
        Export dialog, the one every export goes through."""
        if job is not None and self._present(job.path):
            self.export_requested.emit(str(job.path))

    def _rename(self, folder: str) -> None:
        job = JobFolder(folder)
        if not self._present(job.path):
            return
        name, ok = QInputDialog.getText(
            self, tr("tune.models.rename"), tr("tune.rename_to"), text=_job_name(job)
        )
        if ok and name.strip() and self._present(job.path):
            try:
                rename_job(job, name)
            except UNREADABLE as e:
                self._say(lambda error=e: error_text(error))
            self.refresh_models()

    def _delete(self, folder: str) -> None:
        """Delete a tuned model after asking. The one in use is named so in the question, and
        transcription goes back to the model it was tuned from (remembered, as a model chosen
        is; the window says so if that cannot be loaded either)."""
        job = JobFolder(folder)
        if not self._present(job.path):
            return
        tuned = self._model_in_use(job)
        question = tr("tune.confirm_delete", name=_job_name(job), path=str(job.path))
        if tuned is not None:
            from engine.model import DEFAULT_MODEL

            # neither card nor job.json read: the base is unknown, so the default model
            back_to = tuned.base_model or DEFAULT_MODEL
            base = model_display_name(back_to)
            question = f"{tr('tune.delete_in_use', name=tuned.name, base=base)}\n\n{question}"
        if not self._confirm(question):
            return
        try:
            delete_job(job)
        except (OSError, ValueError) as e:
            self._say(lambda error=e: error_text(error))
        else:
            if tuned is not None:
                self._say(lambda: tr("tune.switched_back", name=tuned.name, base=base))
                self.use_model_requested.emit(back_to)
        self.refresh_models()

    def _model_in_use(self, job: JobFolder) -> TunedModel | None:
        """The listed model of `job` when the window transcribes with it, else None."""
        source = getattr(self.loaded, "source", "")
        if not source:
            return None
        try:
            used = Path(source).expanduser().resolve().is_relative_to(job.path.resolve())
        except OSError:
            return None
        return next((m for m in self.models.models if m.job == job), None) if used else None

    def _confirm(self, text: str) -> bool:
        answer = QMessageBox.question(self, tr("page.tune"), literal(text))
        return answer == QMessageBox.StandardButton.Yes

    # ---- closing -------------------------------------------------------------------------
    def confirm_close(self) -> bool:
        """Asked by the window before it closes: with a job running, stop it (a checkpoint is
        kept for resume) or let it finish in the background (its result is here at the next
        start); with a Start or Resume still on its way, close without starting it. False: the
        user changed their mind. Only the choice is kept: the window may still stay (a later
        question), so nothing is stopped before `close_now`."""
        self._stop_on_close = False
        running = self.handle.running_kind() == "run" and self.job is not None and not self.over
        if not running and self._starting is None:
            return True  # nothing running, an estimate (stopped with the window), or done
        box = plain(QMessageBox(self))  # names the job
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(tr("page.tune"))
        if running:
            box.setText(tr("tune.close.question", name=_job_name(self.job)))
            stop = box.addButton(tr("tune.close.stop"), QMessageBox.ButtonRole.DestructiveRole)
            box.addButton(tr("tune.close.background"), QMessageBox.ButtonRole.AcceptRole)
        else:  # its child may be launched meanwhile: then it is stopped as a running one is
            box.setText(tr("tune.close.starting", name=self._starting))
            stop = box.addButton(tr("tune.close.dont_start"), QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.exec()
        if box.clickedButton() is cancel:
            return False
        self._stop_on_close = box.clickedButton() is stop or not running
        return True

    def close_now(self) -> None:
        """The window closes (every question answered): no child is launched from now on, the
        job the user chose to stop is asked to (it keeps a checkpoint), and one left to finish
        in the background has its result shown at the next start (`LEFT_RUNNING`)."""
        self.handle.supervisor.close()
        if self._stop_on_close:
            self.handle.cancel()
        running = self.handle.running_kind() == "run" and self.job is not None and not self.over
        if running and not self._stop_on_close:
            try:
                (self.job.path / LEFT_RUNNING).touch()
            except OSError as e:  # the job runs on all the same; followed again at the start
                log.warning("%s: cannot mark it left running: %s", self.job.path, e)

    def shutdown(self) -> None:
        self.handle.stop()
