"""Closing the app around a tuning job, and what the Tune page says afterwards: a Stop chosen
at the close question waits until the close is certain, a Start still on its way is asked about
and not launched, a job left to finish in the background has its result shown at the next
start, stopped jobs stay offered after a discard or another job, and "Use this model" says when
the switch is done or failed."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_fakes import emitted
from PySide6.QtWidgets import QMessageBox
from test_app_tune import _fake_child, _finish, _finished, _job, _page, _result, _stopped, _window

from app.i18n import tr
from engine.library.store import Store
from engine.tune.events import JobFinished
from engine.tune.wire import encode


@pytest.fixture(autouse=True)
def dialogs(monkeypatch) -> list[str]:
    """Message boxes answered by nobody (tests that answer one patch QMessageBox.exec)."""
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text, *a, **k: shown.append(text))
    monkeypatch.setattr(QMessageBox, "critical", lambda _p, _t, text, *a, **k: shown.append(text))
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append(box.text()) or 0)
    return shown


def _answer(monkeypatch, button_text: str, asked: list[str]) -> None:
    """Every question box is answered by clicking the button saying `button_text`."""

    def answer(box) -> int:
        asked.append(box.text())
        next(b for b in box.buttons() if b.text() == button_text).click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", answer)


def test_stop_chosen_at_the_close_waits_until_the_window_really_closes(
    qtbot, tmp_path, monkeypatch
):
    """Old: "Stop" cancelled the job at once, and the user, staying at the Review page's
    question, found the job they still watched stopped."""
    library = Store(tmp_path / "data" / "library.db")
    job = _job(tmp_path / "data" / "tuning", "tones")
    child = _fake_child(job)
    try:
        w = _window(qtbot, tmp_path, library)
        page = w.tune_page
        qtbot.waitUntil(lambda: page.handle.running_kind() == "run", timeout=10_000)
        asked: list[str] = []
        _answer(monkeypatch, tr("tune.close.stop"), asked)
        monkeypatch.setattr(w.review_panel, "settle_typing", lambda: False)  # the user stays
        w.quit()
        assert w.isVisible() and asked == [tr("tune.close.question", name="tones")]
        assert not job.cancel_requested()  # still tuning while the user stays
        monkeypatch.setattr(w.review_panel, "settle_typing", lambda: True)
        w.quit()
        assert not w.isVisible() and job.cancel_requested()  # stopped once the window closed
        assert not (job.path / "left-running").exists()
    finally:
        child.kill()
        child.wait()
        library.close()


def test_a_start_still_on_its_way_is_asked_about_and_not_launched(qtbot, tmp_path, monkeypatch):
    """Old: between Start and its child's launch nothing was asked at the close, and the child
    was launched after it, tuning for hours with no window."""
    job = _stopped(tmp_path, "clinic")
    page = _page(qtbot, tmp_path)
    page.handle.blockSignals(True)  # the Resume waits in the supervisor's queue
    page.resume(job)
    page.handle.blockSignals(False)
    asked: list[str] = []
    _answer(monkeypatch, tr("tune.close.dont_start"), asked)
    assert page.confirm_close() and asked == [tr("tune.close.starting", name="clinic")]
    started: list[str] = []
    page.handle.supervisor.started.connect(lambda folder, *_: started.append(folder))
    page.close_now()
    page.handle.supervisor.start(str(job.path), "run", True)  # the queued Resume arrives
    assert started == [] and page.handle.running_kind() is None and job.state() == "stopped"


def test_a_new_job_started_as_the_app_closes_is_neither_launched_nor_left_behind(tmp_path):
    from app.tune.supervisor import NewJob, SupervisorHandle, TuneSupervisor
    from engine.tune.config import TuneConfig
    from engine.tune.jobs import find_jobs

    supervisor = TuneSupervisor(tmp_path)
    started: list[str] = []
    supervisor.started.connect(lambda folder, *_: started.append(folder))
    SupervisorHandle(supervisor).stop()  # the app closes
    config = TuneConfig(model="m", data="x", output_dir="y", steps=10)
    supervisor.start_new(NewJob(str(tmp_path), "late", (str(tmp_path / "a.tsv"),), config, "run"))
    assert started == [] and find_jobs(tmp_path) == []


def test_a_job_left_to_finish_in_the_background_shows_its_result_at_the_next_start(
    qtbot, tmp_path, monkeypatch
):
    """Old: the close promised "its result is here next time", but the next start said nothing
    and the Result step said no job had finished."""
    job = _job(tmp_path, "tones")
    child = _fake_child(job)
    try:
        page = _page(qtbot, tmp_path)  # follows the running job
        _answer(monkeypatch, tr("tune.close.background"), [])
        assert page.confirm_close()
        page.close_now()
        page.shutdown()
    finally:
        child.kill()
        child.wait()
    finished = _finished(tmp_path / "other", "x")  # a model and card where the job saves them
    finished.model_dir.rename(job.model_dir)
    job.events_path().write_text(encode(JobFinished(_result(job, 0.5, 0.2))) + "\n", "utf-8")
    page = _page(qtbot, tmp_path)  # the next start
    assert page.stack.currentWidget() is page.result and page.result_job == job
    assert page.result.result.cer_after == 0.2
    assert page.notice.text() == tr("tune.finished_while_closed", name="tones")
    page = _page(qtbot, tmp_path)  # said once
    assert page.notice.text() == "" and page.result_job is None


def test_an_older_resumable_job_is_offered_before_newer_ones_and_after_each_discard(
    qtbot, tmp_path, monkeypatch
):
    """Old: only the newest stopped job was offered, and after Discard nothing was, so the
    checkpoints of an older one looked lost until a restart."""
    older = _stopped(tmp_path, "older")
    newer, newest = _job(tmp_path, "newer"), _job(tmp_path, "newest")  # nothing to resume
    page = _page(qtbot, tmp_path)
    assert page.stopped == older and not page.resume_button.isHidden()
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
    page.resume_button.setVisible(False)
    page._offer(newest)  # as after a job that failed at its start
    page.discard_button.click()
    assert not newest.path.exists() and page.stopped == older
    assert page.notice.text() == tr("tune.offer_resume", name="older", step=4, total=10)
    page.discard_button.click()
    assert page.stopped == newer and page.notice.text() == tr("tune.offer_discard", name="newer")


def test_stopped_jobs_are_offered_again_once_another_job_ends(qtbot, tmp_path):
    """Old: a job shown on the Watch step took the offer away for the rest of the session."""
    _stopped(tmp_path, "older")
    page = _page(qtbot, tmp_path)
    done = _finished(tmp_path, "done")
    _finish(page, done)
    assert page.stopped is None  # the offer gives way while the job is watched
    page.handle.supervisor.finished.emit(str(done.path), "run")
    assert page.stopped is not None and page.stopped.spec.name == "older"


def _tuned(root: Path, model: Path):
    """A finished job (listed in My models) whose tuned model is a copy of `model`."""
    import shutil

    job = _finished(root, "tones")
    shutil.copytree(model, job.model_dir, dirs_exist_ok=True)
    return job


def test_use_this_model_says_when_the_switch_is_done_or_failed(qtbot, tmp_path):
    """Old: "Switching transcription to “tones”…" stayed in the notice after the model loaded
    (or failed to)."""
    from engine.testmodels import build_model

    model = build_model(tmp_path / "base", "tiny", chars="天地人和", seed=0)
    library = Store(tmp_path / "data" / "library.db")
    try:
        w = _window(qtbot, tmp_path, library)
        page = w.tune_page
        job = _tuned(page.root, model)
        page.refresh_models()
        emitted(qtbot, w.worker.model_loaded, lambda: page.use_model(job), 60_000)
        assert page.notice.text() == tr("tune.now_using", name="tones")
        (job.model_dir / "config.json").write_text("{not json", encoding="utf-8")
        emitted(qtbot, w.worker.model_failed, lambda: page.use_model(job), 60_000)
        assert page.notice.text() == tr("tune.use_failed", name="tones")
        w.close()
    finally:
        library.close()
