"""How the app follows tuning jobs, on faults a bug hunt found: the window closed while the Tune
page checks data, a resumed job followed again after a restart (then killed, or still loading),
a Resume refused while another child runs, and a child killed after it saved the tuned model."""

from __future__ import annotations

from test_app_flow_faults import ends_cleanly
from test_app_tune import _fake_child, _job, _page, _stopped
from test_tune_supervision_faults import _append, _child_runs, _step

from app.i18n import tr
from engine.tune.config import TuneConfig
from engine.tune.events import CheckpointSaved, JobCancelled, JobStarted
from engine.tune.export import ModelCard

# ---- closing the window while the data check runs -------------------------------------------

_CLOSE_WHILE_CHECKING = """
import sys, threading
from pathlib import Path
sys.path.insert(0, {tests!r})
from PySide6.QtCore import QMetaObject, Qt
from app_fakes import FakePlayer
from test_app_window import _engine
import app.main
from app import settings
from app.tune.supervisor import CheckRequest, SupervisorHandle
from engine.tune import prepare

stop = SupervisorHandle.stop
SupervisorHandle.stop = lambda self, timeout_ms=300: stop(self, timeout_ms)  # the 5 s wait, cut
windows = []

def checking(sources, config):  # a training set so large that its check outlives the window
    QMetaObject.invokeMethod(windows[0], "close", Qt.ConnectionType.QueuedConnection)
    threading.Event().wait()

prepare.check_data = checking
real = app.main.build_window

def build_window():
    store = settings.open_settings(Path({data!r}) / "settings.ini")
    windows.append(real(store, _engine(), player=FakePlayer()))
    windows[0].tune_page.handle.check.emit(CheckRequest((), None))  # the user pressed Check
    return windows[0]

app.main.build_window = build_window
sys.exit(app.main.main(["tingxie"]))
"""


def test_closing_the_window_while_the_tune_page_checks_data_ends_the_app_cleanly(tmp_path):
    """Old: the process aborted as main returned (SIGABRT, "QThread: Destroyed while thread
    'tingxie-tune' is still running"): only the engine's thread was let go of."""
    ends_cleanly(_CLOSE_WHILE_CHECKING, tmp_path)


# ---- a resumed job followed again after a restart ---------------------------------------------


def _started(resumed_from_step: int) -> JobStarted:
    config = TuneConfig(model="m", data="x", output_dir="y", steps=10).resolved()
    return JobStarted(
        config, 8, 1, 60.0, "", 0, (), "", 0.1, 1, 2, "cpu", "fp32", 1, resumed_from_step
    )


def test_a_resumed_job_followed_again_and_then_killed_is_said_so(qtbot, tmp_path):
    """Old: the first run's JobCancelled, earlier in the same events file, counted as the
    resumed run's end: its kill was never said, and the Watch step read "Starting the tuning
    process" all along."""
    job = _stopped(tmp_path, "clinic")
    checkpoint = job.path / "checkpoints" / "step-4"
    first = [_started(0), _step(4), CheckpointSaved(4, checkpoint, True)]
    first.append(JobCancelled(4, checkpoint))  # the first run: Cancel
    _append(job, *first, _started(4), _step(5))  # resumed, still running as the app restarts
    child = _fake_child(job)
    try:
        page = _page(qtbot, tmp_path)  # as after a restart: it follows the job again
        assert page.job == job and page.handle.running_kind() == "run"
        assert page.watch.status.text() == tr("tune.watch.resumed", step=4)
        assert page.watch.cancel_button.isEnabled()
    finally:
        child.kill()  # the out-of-memory killer
        child.wait()
    qtbot.waitUntil(lambda: page.handle.running_kind() is None, timeout=10_000)
    said = f"{tr('tune.died.vanished')} {tr('tune.died.kept', step=4)}"
    assert page.watch.status.text() == said
    assert not page.watch.resume_button.isHidden()


def _resumed_while_closed(tmp_path):
    """A job cancelled at step 4, then resumed just before the app closed: its child is still
    loading the model (nothing written yet) as the app starts again. Returns it and its child."""
    job = _stopped(tmp_path, "clinic")
    checkpoint = job.path / "checkpoints" / "step-4"
    saved = CheckpointSaved(4, checkpoint, True)
    _append(job, _started(0), _step(4), saved, JobCancelled(4, checkpoint))
    return job, _fake_child(job, loading=True)


def test_a_resumed_job_followed_again_while_its_child_loads_says_it_is_starting(qtbot, tmp_path):
    """Old: the Watch step said the earlier run's end ("Stopped at step 4 …") while the
    resumed child loaded, until its JobStarted came."""
    job, child = _resumed_while_closed(tmp_path)
    try:
        page = _page(qtbot, tmp_path)  # as after a restart: it follows the job again
        assert page.job == job and page.handle.running_kind() == "run"
        assert page.watch.status.text() == tr("tune.watch.starting", pid=child.pid)
        assert page.watch.cancel_button.isEnabled()
        _append(job, _started(4))  # the model is loaded
        qtbot.waitUntil(lambda: len(page.events) == 5, timeout=10_000)
        assert page.watch.status.text() == tr("tune.watch.resumed", step=4)
    finally:
        child.kill()
        child.wait()
    qtbot.waitUntil(lambda: page.handle.running_kind() is None, timeout=10_000)


def test_a_resumed_child_that_dies_loading_after_a_restart_is_said_so(qtbot, tmp_path):
    """Old: the earlier run's JobCancelled counted as this child's end: its death was never
    said, and the Watch step went on saying the job had stopped as asked."""
    _, child = _resumed_while_closed(tmp_path)
    try:
        page = _page(qtbot, tmp_path)
    finally:
        child.kill()  # the out-of-memory killer, as it loads the model
        child.wait()
    qtbot.waitUntil(lambda: page.handle.running_kind() is None, timeout=10_000)
    said = f"{tr('tune.died.vanished')} {tr('tune.died.kept', step=4)}"
    assert page.watch.status.text() == said
    assert not page.watch.resume_button.isHidden()


# ---- Resume while another child runs ----------------------------------------------------------


def test_resume_waits_while_a_measurement_runs(qtbot, tmp_path):
    """Old: Resume stayed clickable while an estimate measured; the click was refused and the
    offer was gone for the session, under an "already running" notice that outlived it."""
    job = _stopped(tmp_path, "clinic")
    page = _page(qtbot, tmp_path)
    offer = tr("tune.offer_resume", name="clinic", step=4, total=10)
    estimate = str(tmp_path / ".estimates" / "ward")
    page.handle.supervisor.started.emit(estimate, "estimate", 1)
    assert not page.resume_button.isEnabled()
    page.resume_button.click()
    assert page.notice.text() == offer and page.stopped == job
    page.handle.supervisor.finished.emit(estimate, "estimate")
    assert page.resume_button.isEnabled() and not page.resume_button.isHidden()
    assert page.notice.text() == offer


def test_a_refused_resume_keeps_the_offer_and_the_refusal_goes_with_the_other_job(qtbot, tmp_path):
    """Old: Resume showed the job on the Watch step (the offer withdrawn, the Watch step's own
    Resume hidden) before the supervisor answered; refused, both were gone for the session."""
    job = _stopped(tmp_path, "clinic")
    page = _page(qtbot, tmp_path)
    offer = tr("tune.offer_resume", name="clinic", step=4, total=10)
    other = _job(tmp_path / ".estimates", "ward")  # a measurement another session left running
    child = _fake_child(other)
    try:
        page.resume_button.click()  # refused: one child at a time
    finally:
        child.kill()
        child.wait()
    assert page.notice.text() == f"{offer} {tr('tune.one_job', name='ward')}"
    assert page.stopped == job and not page.resume_button.isHidden()
    assert page.job is None and page.stack.currentWidget() is not page.watch
    page.handle.supervisor.finished.emit(str(other.path), "estimate")  # the other one is done
    assert page.notice.text() == offer and page.resume_button.isEnabled()


# ---- a child killed after it saved the tuned model ----------------------------------------


def test_a_child_killed_after_saving_its_model_says_the_model_is_kept(qtbot, tmp_path, monkeypatch):
    """Old: killed while the confidence calibration was refitted (model/ and its card saved, no
    JobFinished yet), it was said to be resumable from its checkpoint, with no Resume to press
    and nothing on the Result step."""
    page = _page(qtbot, tmp_path)
    job = _stopped(tmp_path, "clinic")
    job.model_dir.mkdir()
    ModelCard("m", "lora", 10, 8, 30.0, 2, 0.5, 0.25, "x").write(job.model_dir)  # uncalibrated
    (job.path / "cache" / "train").mkdir(parents=True)
    _child_runs(monkeypatch, "import os; os.kill(os.getpid(), 9)")
    with qtbot.waitSignal(page.handle.supervisor.finished, timeout=30_000):
        page.handle.supervisor.start(str(job.path), "run", True)
    raw = tr("tune.died.uncalibrated", path=str(job.model_dir))
    saved = f"{tr('tune.died.saved')} {raw}"
    assert page.watch.status.text() == f"{tr('tune.died.killed', signal=9)} {saved}"
    assert page.watch.resume_button.isHidden()
    assert page.stack.currentWidget() is page.result and page.result_job == job
    assert page.result.result.cer_after == 0.25 and page.result.use_button.isEnabled()
    assert page.models.table.rowCount() == 1
    assert not (job.path / "cache").exists()  # nothing resumes from it
