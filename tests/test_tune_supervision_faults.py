"""How the app follows tuning jobs when things go wrong: a job followed again after a restart,
a Cancel pressed at once, a job that stopped before its first checkpoint, a start that fails,
and an estimate counted as the one job at a time. Children are short Python processes or, once,
a tiny job on a tiny random model (engine.testmodels)."""

from __future__ import annotations

import sys

import pytest
from test_app_tune import _fake_child, _job, _page, _stopped
from test_tune_jobs import _config, corpus  # noqa: F401 (a fixture)

from app.i18n import tr
from app.tune import supervisor as supervisor_module
from app.tune.supervisor import NewJob, TuneSupervisor
from engine.metrics import cer
from engine.tune import child as child_module
from engine.tune.events import (
    CheckpointSaved,
    Evaluated,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobResult,
    StepProgress,
)
from engine.tune.jobs import JobFolder, running_job
from engine.tune.wire import encode


def _append(job: JobFolder, *events) -> None:
    """Append `events` to the job's events file, as its child does."""
    with job.events_path().open("a", encoding="utf-8") as f:
        f.write("".join(encode(e) + "\n" for e in events))


def _step(step: int) -> StepProgress:
    return StepProgress(step, 10, 2.0, 1e-3, 1.0, 9.0, 0)


def _child_runs(monkeypatch, code: str) -> None:
    """Children the supervisor starts run `code` (in the job folder) instead of a job."""
    command = [sys.executable, "-c", code]
    monkeypatch.setattr(supervisor_module, "child_command", lambda *args: command)


# ---- following a job again after a restart -------------------------------------------------


def test_a_job_followed_again_after_a_restart_shows_each_event_once(qtbot, tmp_path):
    job = _job(tmp_path, "earlier")
    checkpoint = job.path / "checkpoints" / "step-2"
    _append(
        job,
        _step(1),
        Evaluated(2, 0.5, cer(["天地"], ["天人"])),
        CheckpointSaved(2, checkpoint, True),
    )
    child = _fake_child(job)
    try:
        page = _page(qtbot, tmp_path)  # as after a restart: the page shows what was written
        assert page.job == job and len(page.events) == 3
        _append(job, _step(3))  # the job goes on
        qtbot.waitUntil(lambda: len(page.events) >= 4, timeout=10_000)
        assert [getattr(e, "step", None) for e in page.events] == [1, 2, 2, 3]
        assert page.watch.checkpoints.count() == 1 and page.watch.cer_steps == [2]
    finally:
        child.kill()
        child.wait()
    qtbot.waitUntil(lambda: page.handle.running_kind() is None, timeout=10_000)


def test_a_job_that_ends_as_it_is_followed_again_ends_with_its_result(qtbot, tmp_path):
    """Its last event already shown, or written after that: either way it ends as finished, not
    as a child that vanished, and nothing shown is relayed again."""
    job = _job(tmp_path, "done")
    finished = JobFinished(JobResult(job.model_dir, None, 0.5, 0.25, 10, 10))
    _append(job, _step(1))
    shown = job.events_path().stat().st_size
    _append(job, finished)
    supervisor = TuneSupervisor(tmp_path)
    relayed, ended = [], []
    supervisor.event.connect(lambda folder, event: relayed.append(event))
    supervisor.ended.connect(lambda *args: ended.append(args))
    with qtbot.waitSignal(supervisor.finished, timeout=10_000):
        supervisor.attach(str(job.path), shown, False)  # its child is gone by now
    assert relayed == [finished] and ended == []

    child = _fake_child(job)  # the last event shown already, the child still exiting
    try:
        starting = job.starting_pid() is not None  # no: it wrote them, as the page finds
        supervisor.attach(str(job.path), job.events_path().stat().st_size, starting)
    finally:
        child.kill()
        child.wait()
    qtbot.waitUntil(lambda: supervisor.running_kind() is None, timeout=10_000)
    assert relayed == [finished] and ended == []


# ---- Cancel ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_cancel_pressed_as_a_job_starts_stops_it(qtbot, tmp_path, corpus):  # noqa: F811
    supervisor = TuneSupervisor(tmp_path)
    events = []
    supervisor.started.connect(lambda folder, kind, pid: supervisor.cancel())  # at once
    supervisor.event.connect(lambda folder, event: events.append(event))
    request = NewJob(str(tmp_path), "quick", (str(corpus[1]),), _config(corpus, steps=8), "run")
    with qtbot.waitSignal(supervisor.finished, timeout=300_000):
        supervisor.start_new(request)
    assert isinstance(events[-1], JobCancelled) and events[-1].step < 8


def test_a_cancel_request_left_from_an_earlier_run_does_not_stop_the_next(
    qtbot, tmp_path, monkeypatch
):
    job = _stopped(tmp_path, "again")
    job.request_cancel()  # the earlier run ended before it read this
    _child_runs(
        monkeypatch, "import os, sys; sys.exit(3 if os.path.exists('cancel.request') else 0)"
    )
    supervisor = TuneSupervisor(tmp_path)
    ended = []
    supervisor.ended.connect(lambda folder, kind, status, tail: ended.append(status))
    with qtbot.waitSignal(supervisor.finished, timeout=30_000):
        supervisor.start(str(job.path), "run", True)
    assert ended == [0]  # the child found no request


# ---- a job that stopped before its first checkpoint ----------------------------------------


def test_a_job_stopped_before_its_first_checkpoint_is_offered_for_discard(
    qtbot, tmp_path, monkeypatch
):
    job = _job(tmp_path, "big job")
    _append(job, _step(1))
    (job.path / "cache" / "train").mkdir(parents=True)  # as a kill -9 leaves it
    page = _page(qtbot, tmp_path)  # as after a restart
    assert page.notice.text() == tr("tune.offer_discard", name="big job")
    assert not page.discard_button.isHidden() and page.resume_button.isHidden()
    monkeypatch.setattr(page, "_confirm", lambda text: True)
    page.discard_button.click()
    assert not job.path.exists() and page.notice.text() == ""


@pytest.mark.parametrize(
    ("last", "checkpoint", "kept"),
    [
        (JobFailed("out of memory"), False, False),
        (JobCancelled(1, None), False, False),
        (JobCancelled(4, None), True, True),  # resume reads it
    ],
)
def test_a_run_ends_with_its_cache_only_when_it_can_resume(
    tmp_path, monkeypatch, last, checkpoint, kept
):
    job = _stopped(tmp_path, "j") if checkpoint else _job(tmp_path)

    def events(kind, job, cancel, resume):
        (job.path / "cache" / "train").mkdir(parents=True)
        yield _step(1)
        yield last

    monkeypatch.setattr(child_module, "_events", events)
    child_module.run("run", job.path, resume=checkpoint)
    assert job.events()[-1] == last
    assert (job.path / "cache").exists() is kept


def test_a_child_killed_before_its_first_checkpoint_leaves_no_cache(qtbot, tmp_path, monkeypatch):
    page = _page(qtbot, tmp_path)
    job = _job(tmp_path, "big job")
    _child_runs(monkeypatch, "import os; os.makedirs('cache/train'); os.kill(os.getpid(), 9)")
    with qtbot.waitSignal(page.handle.supervisor.finished, timeout=30_000):
        page.handle.supervisor.start(str(job.path), "run", False)
    assert not (job.path / "cache").exists()
    assert page.watch.status.text().startswith(tr("tune.died.killed", signal=9))
    assert page.notice.text() == tr("tune.offer_discard", name="big job")


# ---- a start that fails ----------------------------------------------------------------------


def test_a_job_whose_sources_cannot_be_read_leaves_no_folder(qtbot, tmp_path):
    root = tmp_path / "jobs"
    supervisor = TuneSupervisor(root)
    sources = (str(tmp_path / "here.tsv"), str(tmp_path / "gone.tsv"))
    request = NewJob(str(root), "gone", sources, _config((tmp_path, sources[0])), "run")
    with qtbot.waitSignal(supervisor.failed, timeout=1_000) as failed:
        supervisor.start_new(request)
    assert "here.tsv" in str(failed.args[0])
    assert list(root.iterdir()) == []


# ---- one job at a time -----------------------------------------------------------------------


def test_a_running_estimate_counts_as_the_one_job(qtbot, tmp_path):
    estimate = _job(tmp_path / ".estimates", "measured")  # where the page measures
    child = _fake_child(estimate)
    try:
        assert running_job(tmp_path) == estimate
        page = _page(qtbot, tmp_path)  # another window on the same jobs
        page.handle.supervisor.start_new(None)  # refused before anything
        assert page.notice.text() == tr("tune.one_job", name="measured")
    finally:
        child.kill()
        child.wait()
