"""Runs tuning jobs and estimates in a child process and relays what they report.

`TuneSupervisor` lives in a thread of its own (a sibling of the engine worker, which stays free
for transcription): it starts `python -m engine.tune.child` in a session of its own, follows the
events the child appends to the job folder (`engine.tune.jobs`) on a timer, and emits them as
the engine's typed records. The child writing to a file rather than to a pipe is what lets the
app close while a job goes on, and find it again after a restart (`attach`).

When a child ends without its last event (a crash, an out-of-memory kill, `kill -9`), `ended`
says so with its exit status; the checkpoints it saved stay in the job folder for resume.
One child at a time per machine: a second request is answered by `refused`.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Signal, Slot

from engine.tune.config import TuneConfig
from engine.tune.events import Estimate, JobFailed, JobStarted
from engine.tune.jobs import ChildKind, EventLog, JobFolder, child_command, running_job
from engine.tune.wire import TERMINAL

from ..i18n import tr
from . import strings  # noqa: F401  (registers the strings used below)

__all__ = [
    "CheckRequest",
    "NewJob",
    "SupervisorHandle",
    "TuneSupervisor",
    "run_over",
    "status_key",
]

log = logging.getLogger("tingxie.app.tune")

_POLL_MS = 100  # how often the followed events file and the child are looked at
_PROJECT = Path(__file__).resolve().parents[2]  # so the child imports this checkout's engine


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """Check `sources` for a job with `config` (engine.tune.prepare.check_data)."""

    sources: tuple[str, ...]
    config: TuneConfig


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job folder to create (combining the sources, which reads them) and run `kind` on."""

    root: str  # where the folder goes
    name: str
    sources: tuple[str, ...]
    config: TuneConfig
    kind: str  # "run", or "estimate" (the folder is removed once it is measured)


@dataclass(slots=True)
class _Followed:
    job: JobFolder
    kind: ChildKind
    events: EventLog
    process: subprocess.Popen | None  # None: a child an earlier app session started
    over: bool = False  # its last event arrived
    scratch: bool = False  # remove the folder when the child is done


class TuneSupervisor(QObject):
    """Slots in, typed signals out (see the module docstring)."""

    event = Signal(str, object)  # job folder, a JobEvent of a run
    estimated = Signal(str, object)  # job folder, engine.tune.events.Estimate
    estimate_failed = Signal(str, object)  # job folder, its JobFailed
    started = Signal(str, str, int)  # job folder, kind, pid: a child this session started
    ended = Signal(str, str, int, str)  # job folder, kind, exit status, log tail: no last event
    finished = Signal(str, str)  # job folder, kind: the child is gone (after its events)
    refused = Signal(str)  # folder of the job already running
    checked = Signal(object, object)  # the CheckRequest, its engine.tune.prepare.DataCheck
    # What went wrong (a check that could not run, a job folder that could not be made): the
    # error itself, which the page words in the UI language, or a one-line reason.
    failed = Signal(object)

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = Path(root)
        self._followed: _Followed | None = None
        self._timer = QTimer(self)  # moves to the supervisor's thread with it
        self._timer.setInterval(_POLL_MS)
        self._timer.timeout.connect(self._poll)
        # Set once the app is closing (`close`): nothing is launched after it, so no child
        # runs on with no window that the user was not asked about. The lock makes a launch
        # and a close one before the other: a child launched first is followed, and cancelled.
        self._closing = False
        self._lock = threading.Lock()

    # ---- children ------------------------------------------------------------------------
    @Slot(object)
    def start_new(self, request: NewJob) -> None:
        """Create the job folder, then start its child."""
        busy = self._busy()
        if busy is not None:
            self.refused.emit(str(busy.path))
            return
        try:
            job = JobFolder.create(
                Path(request.root), request.name, request.sources, request.config
            )
        except (OSError, ValueError) as e:  # a coded DatasetError: a source gone since its check
            self.failed.emit(e)
            return
        if not self._launch(job, request.kind, resume=False, scratch=request.kind == "estimate"):
            shutil.rmtree(job.path, ignore_errors=True)  # made for a start the close called off

    @Slot(str, str, bool)
    def start(self, folder: str, kind: str, resume: bool) -> None:
        """Start a child for `kind` ("run" or "estimate") on the job in `folder`."""
        busy = self._busy()
        if busy is not None:
            self.refused.emit(str(busy.path))
            return
        self._launch(JobFolder(folder), kind, resume, scratch=False)

    def _launch(self, job: JobFolder, kind: str, resume: bool, scratch: bool) -> bool:
        """Start the child; False when the app is closing (nothing started, nothing said)."""
        with self._lock:
            if self._closing:
                log.info("%s: not started, the app is closing", job.path)
                return False
            return self._launch_now(job, kind, resume, scratch)

    def _launch_now(self, job: JobFolder, kind: str, resume: bool, scratch: bool) -> bool:
        job = JobFolder(job.path.absolute())  # the child runs in it: a relative path would move
        command = child_command(kind, job.path, resume)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT), env.get("PYTHONPATH")]))
        events = EventLog(job.events_path(kind))
        if resume:  # relay only this run's events (the page shows the earlier ones itself)
            events.offset = _size(job.events_path(kind))
        else:
            job.events_path(kind).unlink(missing_ok=True)
        job.clear_cancel()  # left from an earlier run; a Cancel from now on is this run's
        try:
            with job.log_path.open("a", encoding="utf-8") as log_file:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=job.path,
                    start_new_session=True,  # the app's closing or Ctrl+C does not reach it
                )
        except OSError as e:
            self.failed.emit(tr("tune.start_failed", path=str(job.path), detail=str(e)))
            return True
        self._follow(_Followed(job, kind, events, process, scratch=scratch))  # type: ignore[arg-type]
        self.started.emit(str(job.path), kind, process.pid)
        return True

    @Slot(str, int, bool)
    def attach(self, folder: str, shown: int, starting: bool) -> None:
        """Follow a job whose child an earlier session of the app left running, relaying its
        events from byte `shown` of its events file on (those before it are on the page). A
        child gone by now ends it at the first look, with what it wrote after `shown`. Nothing
        is started, so `started` is not emitted: the page shows the job as its events left it.

        `starting`: the child had written none of the events shown (`JobFolder.starting_pid`,
        as the page found it after reading them): they end as an earlier run ended, and this
        run ends only with an event still to come, or, gone without one, as `ended` says."""
        if self._followed is not None:
            return
        job = JobFolder(folder)
        events = EventLog(job.events_path("run"))
        over = not starting and run_over(events.read_new())  # shown or still to come
        events.offset = shown
        self._follow(_Followed(job, "run", events, None, over=over))

    def cancel(self) -> None:
        """Thread-safe: ask the running child to stop after its current step (it saves a
        checkpoint first). Only a file is written: it answers at once."""
        followed = self._followed
        if followed is not None:
            followed.job.request_cancel()

    def close(self) -> None:
        """Thread-safe: the app is closing, so no child is launched from now on. Once it
        returns, a child launched by a start still pending is followed (`cancel` reaches it)."""
        with self._lock:
            self._closing = True

    def pid(self) -> int | None:
        """Thread-safe: the pid of the child being followed."""
        followed = self._followed
        if followed is None:
            return None
        return followed.process.pid if followed.process else followed.job.running_pid()

    def busy(self) -> bool:
        """Thread-safe: a child is being followed."""
        return self._followed is not None

    def running_kind(self) -> str | None:
        """Thread-safe: "run" or "estimate" while a child is followed, else None."""
        followed = self._followed
        return followed.kind if followed is not None else None

    def _busy(self) -> JobFolder | None:
        if self._followed is not None:
            return self._followed.job
        return running_job(self.root)

    def _follow(self, followed: _Followed) -> None:
        self._followed = followed
        self._timer.start()

    def _poll(self) -> None:
        followed = self._followed
        if followed is None:
            self._timer.stop()
            return
        self._relay(followed)
        if followed.process is not None:
            status = followed.process.poll()
        else:
            status = None if followed.job.running_pid() is not None else 0
        if status is None:
            return
        self._relay(followed)  # what it wrote before it ended
        self._followed = None
        self._timer.stop()
        folder = str(followed.job.path)
        if not followed.over:
            self.ended.emit(folder, followed.kind, status, followed.job.log_tail())
        if followed.kind == "run":  # the child cannot, when it was killed
            followed.job.drop_unresumable_cache()
        if followed.scratch:
            shutil.rmtree(followed.job.path, ignore_errors=True)
        self.finished.emit(folder, followed.kind)

    def _relay(self, followed: _Followed) -> None:
        folder = str(followed.job.path)
        events = followed.events.read_new()
        followed.over = run_over(events, followed.over)
        for event in events:
            if followed.kind == "run":
                self.event.emit(folder, event)
            elif isinstance(event, Estimate):
                self.estimated.emit(folder, event)
            elif isinstance(event, JobFailed):
                self.estimate_failed.emit(folder, event)

    # ---- quick work that must not run in the UI thread -------------------------------------
    @Slot(object)
    def check(self, request: CheckRequest) -> None:
        """Validate the data as the job would (reads every audio file's header)."""
        from engine.tune.prepare import check_data

        try:
            self.checked.emit(request, check_data(request.sources, request.config))
        except Exception as e:  # an engine bug must not end this thread
            log.exception("data check failed")
            self.failed.emit(tr("tune.check_failed", detail=str(e)))

    @Slot()
    def shutdown(self) -> None:
        """Stop following and end this thread. A tuning child goes on by itself (the window
        asked the user first); an estimate is only worth its answer, so it is stopped."""
        self._timer.stop()
        followed, self._followed = self._followed, None
        if followed is not None and followed.kind == "estimate" and followed.process:
            followed.process.kill()
            followed.process.wait()
            shutil.rmtree(followed.job.path, ignore_errors=True)
        app = QCoreApplication.instance()
        if app is not None and self.thread() is not app.thread():
            self.thread().quit()  # this thread's loop ends once this slot returns


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class SupervisorHandle(QObject):
    """Lives in the UI thread: emitting its signals queues the supervisor's slots in its
    thread (the engine worker's `WorkerHandle` pattern)."""

    start_new = Signal(object)
    start = Signal(str, str, bool)
    attach = Signal(str, int, bool)
    check = Signal(object)
    shutdown = Signal()

    def __init__(self, supervisor: TuneSupervisor) -> None:
        super().__init__()
        self.supervisor = supervisor
        for name in ("start_new", "start", "attach", "check", "shutdown"):
            getattr(self, name).connect(getattr(supervisor, name))
        self.thread: QThread | None = None

    def cancel(self) -> None:
        self.supervisor.cancel()

    def pid(self) -> int | None:
        return self.supervisor.pid()

    def busy(self) -> bool:
        return self.supervisor.busy()

    def running_kind(self) -> str | None:
        return self.supervisor.running_kind()

    def start_thread(self) -> None:
        self.thread = QThread()
        self.thread.setObjectName("tingxie-tune")
        self.supervisor.moveToThread(self.thread)
        self.thread.start()

    def stop(self, timeout_ms: int = 5000) -> None:
        """End the supervisor's thread; a running child is left to finish on its own."""
        self.supervisor.close()  # a start still queued launches nothing
        if self.thread is None:
            return
        self.shutdown.emit()
        if not self.thread.wait(timeout_ms):  # a data check or a new job's sources still read
            log.warning("tuning thread still busy after %d ms; closing anyway", timeout_ms)
            return  # keep the QThread referenced: destroying a running one aborts (app.main)
        self.thread = None


def run_over(events: list[Any], over: bool = False) -> bool:
    """Whether the last run in `events` has ended (`over`: whether it had before them). A
    resumed run appends to its job's events file, so an earlier run's JobCancelled or JobFailed
    is followed by the next run's JobStarted: only a last event after that ends this one."""
    for event in events:
        over = (over or isinstance(event, TERMINAL)) and not isinstance(event, JobStarted)
    return over


def status_key(status: int) -> tuple[str, dict[str, Any]]:
    """The i18n key and values that say in one sentence how a child ended without its last
    event: killed by a signal (SIGKILL is what the out-of-memory killer sends) or crashed."""
    if status < 0:
        number = -status
        key = "tune.died.killed" if number == 9 else "tune.died.signal"
        return key, {"signal": number}
    if status == 0:  # a child of an earlier session, whose status is not ours to read
        return "tune.died.vanished", {}
    return "tune.died.crashed", {"status": status}
