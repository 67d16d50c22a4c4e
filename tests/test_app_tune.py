"""The Tune page end to end: corrections become a training set, a job runs from the page in a
child process, and the next recordings come out better; a killed job is resumed after the
window is made again. On the demo model (synthetic Mandarin, espeak-ng) and, for the kill, a
tiny random model; CPU only, a few dozen steps."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from app_fakes import FakePlayer, emitted
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox

from app import i18n, settings
from app.i18n import tr
from app.main import build_window
from app.worker import DatasetRequest, Engine
from engine.library.review import EditOp
from engine.library.store import Store
from engine.metrics import cer
from engine.model import DEMO_MODEL_DIR
from engine.tune.data import load_dataset
from engine.tune.events import CheckpointSaved, JobFinished
from engine.tune.jobs import find_jobs, tuned_models

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "resources" / "corpus"
# The quick job the page runs: few steps, a high learning rate, no masking (what
# tests/test_demo_model.py measured to teach the demo model medical words in seconds).
QUICK = dict(
    steps=24,
    learning_rate=5e-3,
    lora_rank=16,
    batch_seconds=8.0,
    micro_batch_seconds=8.0,
    mask_time_prob=0.0,
    heldout_fraction=0.15,
    eval_every=12,
    save_every=12,
)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
needs_demo = pytest.mark.skipif(
    not (DEMO_MODEL_DIR / "model.safetensors").is_file(), reason="no demo model committed"
)


@pytest.fixture(autouse=True)
def _chinese_ui_after_each_test():
    yield
    from app import i18n

    i18n.set_language("zh")


@pytest.fixture
def library(tmp_path):
    with Store(tmp_path / "data" / "library.db") as store:
        yield store


@pytest.fixture(autouse=True)
def dialogs(monkeypatch) -> list[str]:
    """Message boxes the window would show, answered by nobody (a modal box would wait for a
    click forever here); tests that answer one patch QMessageBox.exec themselves."""
    shown: list[str] = []

    def capture(parent, title, text, *args, **kwargs):
        shown.append(text)
        return QMessageBox.StandardButton.Ok

    def unanswered(box) -> int:
        shown.append(box.text())
        return 0

    monkeypatch.setattr(QMessageBox, "warning", capture)
    monkeypatch.setattr(QMessageBox, "exec", unanswered)
    return shown


def _window(qtbot, tmp_path: Path, library: Store):
    ini = settings.open_settings(tmp_path / "settings.ini")
    ini.setValue("recordings_dir", str(tmp_path / "recordings"))
    engine = Engine(list_devices=lambda: [], find_unfinished=lambda folder: [])
    window = build_window(ini, engine, library=library, player=FakePlayer())
    qtbot.addWidget(window)
    window.show()
    return window


def _synth(folder: Path, sentences: list[str], seed: int) -> dict[str, str]:
    """Synthetic recordings of `sentences`: {audio path: text}."""
    from engine.tune.synth import SynthOptions, synthesize

    for _ in synthesize(sentences, folder, SynthOptions(seed=seed)):
        pass
    return {str(e.audio): e.text for e in load_dataset(folder / "manifest.tsv").examples}


def _transcribe(qtbot, window, clips: dict[str, str]) -> dict[str, str]:
    """Queue the files in the window; {audio path: text the loaded model wrote}."""
    texts: dict[str, str] = {}

    def done(audio: str, segments: list, info) -> None:
        texts[audio] = "".join(s.text for s in segments)

    window.transcript_ready.connect(done)
    window.add_files(list(clips))
    failed: list[str] = []
    window.worker.file_failed.connect(lambda job, message: failed.append(message))
    qtbot.waitUntil(lambda: len(texts) == len(clips) or bool(failed), timeout=300_000)
    assert not failed
    window.transcript_ready.disconnect(done)
    return texts


def _cer(clips: dict[str, str], texts: dict[str, str]) -> float:
    return cer([clips[a] for a in clips], [texts[a] for a in clips]).cer


def _fix_everything(library: Store, clips: dict[str, str]) -> list[int]:
    """What a reviewer does, through the review API: each one-segment transcript's text is
    replaced by what was said. Returns the fixed transcripts."""
    fixed = []
    for row in library.list_transcripts():
        segments = library.segments(row.id)
        reference = clips[str(library.audio_path(row.id))]
        if len(segments) != 1:
            continue  # a reviewer would split the text; this test keeps it simple
        library.add_edit(row.id, EditOp(0, 0, len(segments[0].chars), reference, "fix"))
        fixed.append(row.id)
    return fixed


def _click_tune_now(monkeypatch) -> list[str]:
    """Answer the training set's summary box with its "Tune now" button."""
    shown = []

    def answer(box) -> int:
        shown.append(box.text())
        next(b for b in box.buttons() if b.text() == tr("dataset.tune_now")).click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", answer)
    return shown


def _set(page, **values) -> None:
    for name, value in values.items():
        page.how.form.set_value(name, value)


def _stall_meter() -> tuple[QTimer, list[float]]:
    """Ticks of a 20 ms timer in the UI thread: the gaps between them are its stalls."""
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    return timer, ticks


@pytest.mark.slow
@needs_espeak
@needs_demo
def test_corrections_teach_the_model_from_the_tune_page(
    qtbot, tmp_path, library, monkeypatch, dialogs
):
    medicine = (CORPUS / "medicine" / "train.txt").read_text(encoding="utf-8").split()
    heldout = (CORPUS / "medicine" / "heldout.txt").read_text(encoding="utf-8").split()
    train_clips = _synth(tmp_path / "mine", medicine[:32], seed=5)
    new_clips = _synth(tmp_path / "later", heldout[:8], seed=6)  # other sentences, same domain

    window = _window(qtbot, tmp_path, library)
    emitted(qtbot, window.worker.model_loaded, lambda: window.load_model(str(DEMO_MODEL_DIR)))
    before = _cer(new_clips, _transcribe(qtbot, window, new_clips))
    assert dialogs == []
    for row in library.list_transcripts():
        library.delete_transcript(row.id)  # the measurement is not the user's audio
    _transcribe(qtbot, window, train_clips)
    fixed = _fix_everything(library, train_clips)
    assert len(fixed) >= 28

    page = window.tune_page
    _set(page, preset="quick", device="cpu", **QUICK)  # settings the check depends on, first
    # Make training set… ends with "Tune now": the page opens with the set checked.
    shown = _click_tune_now(monkeypatch)
    window.handle.build_dataset.emit(
        DatasetRequest(library, tuple(fixed), "clinic", str(DEMO_MODEL_DIR))
    )
    qtbot.waitUntil(lambda: page.checker.check is not None, timeout=60_000)
    assert "clinic" in shown[0] and window.pages.currentWidget() is page
    made = library.path.parent / "corrections" / "clinic"
    assert page.sources.sources() == [str(made / "manifest.tsv")]
    assert page.sources.model() == str(DEMO_MODEL_DIR)
    check = page.checker.check
    assert not check.blocking and check.train_examples + check.heldout_examples == len(fixed)
    assert not page.checker.next_button.isEnabled() or not check.warnings
    page.checker.accept_box.setChecked(True)  # a small set: warnings expected
    assert page.checker.next_button.isEnabled()
    page.checker.next_button.click()

    timer, ticks = _stall_meter()
    page.how.start_button.click()
    qtbot.waitUntil(lambda: page.stack.currentWidget() is page.result, timeout=600_000)
    timer.stop()
    stall = max(np.diff(ticks))
    print(f"longest UI stall during the job: {1000 * stall:.0f} ms over {len(ticks)} ticks")
    # The UI thread kept turning while the job trained: a loop blocked for whole training
    # steps (each far longer than the 20 ms tick) would tick about once in all. A count, not
    # a time limit, so that a loaded machine cannot fail it.
    assert len(ticks) > QUICK["steps"]
    assert page.watch.steps[-1] == QUICK["steps"] and len(page.watch.cer_steps) == 3
    assert page.watch.checkpoints.count() >= 2
    qtbot.waitUntil(lambda: page.handle.running_kind() is None, timeout=30_000)  # exited
    assert page.confirm_close()  # nothing left to ask about
    result = page.result.result
    assert result.cer_after < result.cer_before
    assert page.result.comparison is not None

    # Use this model: transcription switches, and the choice is remembered.
    summaries = emitted(qtbot, window.worker.model_loaded, page.result.use_button.click, 60_000)
    assert summaries[0].source == str(page.job.model_dir)
    assert window.prefs.model == str(page.job.model_dir) and window.prefs.model_chosen
    stored = settings.load(settings.open_settings(tmp_path / "settings.ini"))
    assert stored.model == str(page.job.model_dir)  # what the next start loads
    after = _cer(new_clips, _transcribe(qtbot, window, new_clips))
    print(f"CER on new recordings of the domain: {before:.1%} -> {after:.1%}")
    assert after < before
    (model,) = tuned_models(page.root)
    assert model.name == "clinic" and model.cer_after == result.cer_after


@pytest.mark.slow
def test_a_killed_job_leaves_its_checkpoint_and_resumes_in_a_new_window(
    qtbot, tmp_path, library, monkeypatch
):
    from engine.testmodels import build_model
    from engine.tune.testdata import tone_corpus

    chars = "天地人和"
    model = build_model(tmp_path / "base", "tiny", chars=chars, seed=0)
    manifest = tone_corpus(tmp_path / "tones", 24, chars=chars, char_seconds=0.1, seed=0)
    window = _window(qtbot, tmp_path, library)
    page = window.tune_page
    window.pages.setCurrentWidget(page)
    page.sources.set_current_model(str(model))
    page.sources.model_box.setCurrentText(str(model))
    page.sources.select_source(manifest)
    page.sources.name_edit.setText("tones")
    quick = dict(steps=40, learning_rate=3e-3, batch_seconds=2.0, micro_batch_seconds=1.0)
    _set(
        page,
        min_seconds=0.1,
        heldout_fraction=0.2,
        eval_every=0,
        save_every=2,
        device="cpu",
        mask_time_prob=0.0,
        **quick,
    )
    page.check()
    qtbot.waitUntil(lambda: page.checker.check is not None, timeout=60_000)
    page.checker.accept_box.setChecked(True)
    saved = []
    page.handle.supervisor.event.connect(
        lambda folder, event: saved.append(event) if isinstance(event, CheckpointSaved) else None
    )
    page.how.start_button.click()
    qtbot.waitUntil(lambda: bool(saved), timeout=120_000)
    pid = page.handle.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: page.watch.resume_button.isVisible(), timeout=30_000)
    job = page.job
    assert job.state() == "stopped" and job.checkpoint_steps()
    kept = job.checkpoint_steps()[-1]
    said = page.watch.status.text()  # one sentence on what happened; the app is up
    assert said == f"{tr('tune.died.killed')} {tr('tune.died.kept', step=kept)}"
    window.close()

    again = _window(qtbot, tmp_path, library)  # as after a restart
    page = again.tune_page
    again.pages.setCurrentWidget(page)
    assert page.stopped == job and page.resume_button.isVisible()
    assert "tones" in page.notice.text()
    page.resume_button.click()
    qtbot.waitUntil(lambda: page.stack.currentWidget() is page.result, timeout=300_000)
    qtbot.waitUntil(lambda: page.handle.running_kind() is None, timeout=30_000)  # exited
    events = job.events()
    assert isinstance(events[-1], JobFinished) and job.state() == "finished"
    resumed = [e for e in events if type(e).__name__ == "JobStarted"][-1]
    assert resumed.resumed_from_step == kept
    assert [m.name for m in tuned_models(page.root)] == ["tones"]
    assert find_jobs(page.root) == [job]


# ---- the page's parts, without training ---------------------------------------------------


def test_the_form_shows_every_setting_and_builds_the_config_it_shows(qtbot):
    from dataclasses import fields

    from app.tune.form import ConfigForm
    from engine.tune.config import PRESETS, TuneConfig

    form = ConfigForm()
    qtbot.addWidget(form)
    shown = {*form.fields, "normalize"}
    assert shown == {f.name for f in fields(TuneConfig)} - {"model", "data", "output_dir"}
    assert form.config("m", "d", "o") == TuneConfig(model="m", data="d", output_dir="o")
    form.set_value("preset", "quick")
    steps = form.fields["steps"].widget
    assert steps.text() == "" and steps.placeholderText() == str(PRESETS["quick"]["steps"])
    steps.setText("35")
    form.set_value("method", "full")
    form.set_value("freeze_feature_encoder", False)
    form.normalize["lowercase"].setChecked(False)
    config = form.config("m", "d", "o")
    assert (config.steps, config.method, config.preset) == (35, "full", "quick")
    assert config.freeze_feature_encoder is False and config.normalize.lowercase is False
    assert config.learning_rate is None  # left to the preset
    form.set_value("steps", 35)  # placeholders follow what the preset derives from steps
    assert form.fields["warmup_steps"].widget.placeholderText() == "3"
    form.fields["learning_rate"].widget.setText("fast")
    with pytest.raises(ValueError, match="learning_rate"):
        form.config("m", "d", "o")
    changed = dict(steps=7, max_minutes=9.5, lora_dropout=0.1, extend_vocab=True, device="cpu")
    other = TuneConfig(model="m", data="d", output_dir="o", **changed)
    form.set_config(other)
    assert form.config("m", "d", "o") == other


def test_the_base_model_follows_each_switch_unless_the_user_chose_another(qtbot):
    """It stayed on the first model of the session: after Whisper stood in at start and the
    user chose a CTC model, the next job would have tuned Whisper."""
    from app.tune.sources import SourcesPanel

    panel = SourcesPanel(list)
    qtbot.addWidget(panel)
    panel.set_current_model("models/whisper-base")
    panel.set_current_model("models/my-ctc")
    assert panel.model() == "models/my-ctc"
    panel.model_box.setCurrentText("me/hub-model")  # typed by the user: kept
    panel.set_current_model("models/other")
    assert panel.model() == "me/hub-model"


def test_how_a_child_ended_is_said_in_one_sentence():
    from app.tune.supervisor import status_key

    assert status_key(-9) == ("tune.died.killed", {"signal": 9})  # what the OOM killer sends
    assert status_key(-15) == ("tune.died.signal", {"signal": 15})
    assert status_key(1) == ("tune.died.crashed", {"status": 1})
    assert status_key(0) == ("tune.died.vanished", {})
    for status in (-9, -15, 1, 0):
        key, values = status_key(status)
        assert tr(key, **values)


def _page(qtbot, root: Path):
    """A Tune page on a supervisor that runs in the UI thread (no child is started here)."""
    from app.tune.page import TunePage
    from app.tune.supervisor import SupervisorHandle, TuneSupervisor

    page = TunePage(SupervisorHandle(TuneSupervisor(root)), root)
    qtbot.addWidget(page)
    return page


def _fake_child(job, loading: bool = False) -> subprocess.Popen:
    """A process that looks like a tuning child working on `job` (its pid file written): the
    one that wrote the events there, or, `loading`, one started after them that has written
    none yet (a resumed run loading its model). A child writes its pid file before its first
    event, so the pid file is dated an hour before the events file, or (`loading`) after it."""
    from engine.tune.jobs import _is_job_process

    command = [sys.executable, "-c", "import time; time.sleep(60)", "engine.tune.child"]
    child = subprocess.Popen(command)
    for _ in range(500):  # until its command line shows (a loaded machine may be slow to)
        if _is_job_process(child.pid):
            break
        time.sleep(0.01)
    pid_file = job.path / "child.pid"
    pid_file.write_text(str(child.pid))
    earlier = time.time() - 3600
    os.utime(job.events_path() if loading else pid_file, (earlier, earlier))
    return child


def _job(root: Path, name: str = "j"):
    from engine.tune.config import TuneConfig
    from engine.tune.jobs import JobFolder

    config = TuneConfig(model="m", data="x", output_dir="y", steps=10)
    return JobFolder.create(root, name, [str(root / "a.tsv")], config)


def test_one_job_at_a_time_and_a_running_one_is_followed_again(qtbot, tmp_path):
    running = _job(tmp_path, "earlier")
    child = _fake_child(running)
    try:
        page = _page(qtbot, tmp_path)  # as after a restart: the job is shown, not offered
        assert page.job == running and page.handle.running_kind() == "run"
        assert page.stack.currentWidget() is page.watch and "earlier" in page.notice.text()
        page.handle.supervisor.start_new(None)  # a second job is refused before anything
        assert page.notice.text() == tr("tune.one_job", name="earlier")
        page.cancel()
        assert running.cancel_requested()  # the running child is asked through its folder
    finally:
        child.kill()
        child.wait()
    qtbot.waitUntil(lambda: page.handle.running_kind() is None, timeout=5000)
    assert page.watch.status.text().startswith(tr("tune.died.vanished"))


@pytest.mark.slow
def test_a_cli_run_on_a_job_is_followed_and_cancelled_from_the_page(qtbot, tmp_path):
    """`tingxie-cli tune` on a job's config, found running by the page: its steps arrive, Cancel
    stops it after the current step and the page says so. Before: the CLI wrote no events (a
    frozen page) and left cancel.request unread, and the page said it ended without its last
    report."""
    from engine.testmodels import build_model
    from engine.tune.config import TuneConfig
    from engine.tune.events import JobCancelled, StepProgress
    from engine.tune.jobs import JobFolder
    from engine.tune.testdata import tone_corpus

    chars = "天地人和"
    model = build_model(tmp_path / "base", "tiny", chars=chars, seed=0)
    manifest = tone_corpus(tmp_path / "tones", 16, chars=chars, char_seconds=0.1, seed=0)
    config = TuneConfig(
        model=str(model),
        data=str(manifest),
        output_dir="unused",
        steps=10_000,  # ends by the page's Cancel only
        learning_rate=3e-3,
        batch_seconds=2.0,
        micro_batch_seconds=1.0,
        min_seconds=0.1,
        heldout_fraction=0.2,
        eval_every=0,
        save_every=0,
        mask_time_prob=0.0,
        device="cpu",
    )
    root = tmp_path / "jobs"
    job = JobFolder.create(root, "tones", [str(manifest)], config)
    command = [sys.executable, "-m", "engine.cli.tune", str(job.config_path)]
    cli = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        qtbot.waitUntil(lambda: job.running_pid() == cli.pid, timeout=120_000)  # it holds the job
        page = _page(qtbot, root)  # as the app opened meanwhile: the job is followed
        assert page.job == job and page.handle.running_kind() == "run"
        steps = lambda: any(isinstance(e, StepProgress) for e in page.events)  # noqa: E731
        qtbot.waitUntil(steps, timeout=120_000)
        page.cancel()
        qtbot.waitUntil(lambda: page.handle.running_kind() is None, timeout=120_000)
        assert cli.wait(timeout=60) == 130, cli.stderr.read()[-2000:]
    finally:
        cli.kill()
        cli.wait()
    last = page.events[-1]
    assert isinstance(last, JobCancelled) and last.checkpoint is not None
    assert page.watch.status.text() == tr("tune.watch.cancelled", step=last.step)
    assert job.state() == "stopped" and not page.watch.resume_button.isHidden()  # Resume offered


def test_a_checkpoint_a_resumed_job_could_not_read_is_said_on_the_watch_step(qtbot, tmp_path):
    """Relayed from the child's events file as the supervisor relays every event. Before: said
    only in the job's log; the Watch step showed "Resumed at step 1." as if nothing happened."""
    from app import i18n
    from engine.tune.config import TuneConfig
    from engine.tune.events import CheckpointSetAside, JobStarted
    from engine.tune.wire import encode

    job = _job(tmp_path, "clinic")
    config = TuneConfig(model="m", data="x", output_dir="y", steps=10).resolved()
    started = JobStarted(config, 8, 1, 60.0, "", 0, (), "", 0.1, 1, 2, "cpu", "fp32", 1, 1)
    job.events_path().write_text(encode(started) + "\n", encoding="utf-8")
    checkpoint = job.path / "checkpoints" / "step-0000002"
    kept = job.path / "checkpoints" / "damaged-step-0000002-20250101-120000"
    told = CheckpointSetAside(checkpoint, kept, "optimizer.pt: EOFError", 1)
    child = _fake_child(job)
    try:
        page = _page(qtbot, tmp_path)  # follows the running job
        assert page.job == job and page.watch.set_aside.isHidden()
        with job.events_path().open("a", encoding="utf-8") as events:  # as the child writes
            events.write(encode(told) + "\n")
        qtbot.waitUntil(lambda: bool(page.watch.set_aside.text()), timeout=5000)
    finally:
        child.kill()
        child.wait()
    assert not page.watch.set_aside.isHidden()
    zh = page.watch.set_aside.text()
    assert str(checkpoint) in zh and str(kept) in zh and "第 1 步" in zh, zh
    qtbot.waitUntil(lambda: page.handle.running_kind() is None, timeout=5000)
    assert page.watch.set_aside.text() == zh  # still said once the child has ended
    i18n.set_language("en")
    page.retranslate()
    assert page.watch.set_aside.text() == (
        f"Checkpoint {checkpoint} could not be read (optimizer.pt: EOFError), so the job resumed "
        f"from step 1; the damaged checkpoint is kept as {kept}."
    )


def test_closing_with_a_job_running_asks_to_stop_it_or_let_it_finish(qtbot, tmp_path, monkeypatch):
    page = _page(qtbot, tmp_path)
    assert page.confirm_close()  # nothing runs: no question
    page.job = _job(tmp_path)
    monkeypatch.setattr(page.handle, "running_kind", lambda: "run")
    cancelled = []
    monkeypatch.setattr(page.handle, "cancel", lambda: cancelled.append(True))
    answers = iter([tr("tune.close.stop"), tr("tune.close.background"), None])
    asked = []

    def answer(box) -> int:
        asked.append(box.text())
        text = next(answers)
        button = next(b for b in box.buttons() if text is None or b.text() == text)
        if text is None:
            button = box.button(QMessageBox.StandardButton.Cancel)
        button.click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", answer)
    assert page.confirm_close() and cancelled == []  # stop: only once the window closes
    page.close_now()
    assert cancelled == [True]  # a checkpoint is kept
    assert page.confirm_close() and cancelled == [True]  # let it finish in the background
    assert not page.confirm_close()  # the user stays
    assert len(asked) == 3 and "j" in asked[0]
    monkeypatch.setattr(page.handle, "running_kind", lambda: "estimate")
    assert page.confirm_close()  # an estimate is not worth a question


def test_the_check_blocks_warns_and_grows_the_vocabulary(qtbot, tmp_path):
    from engine.testmodels import build_model
    from engine.tune.testdata import tone_corpus

    chars = "天地人和"
    model = build_model(tmp_path / "base", "tiny", chars=chars, seed=0)
    manifest = tone_corpus(tmp_path / "tones", 8, chars=chars, char_seconds=0.1, seed=0)
    extra = tmp_path / "extra.tsv"
    extra.write_text(f"path\ttext\n{manifest.parent / 'clips' / 'u0000.wav'}\t天龘\n")
    page = _page(qtbot, tmp_path / "tuning")  # its supervisor checks in this thread
    checker = page.checker
    page.sources.model_box.setCurrentText(str(model))
    page.sources.select_source(manifest)
    page.sources.select_source(extra, only=False)
    page.how.form.set_value("min_seconds", 0.1)
    assert checker.histogram.isHidden()  # no durations before a check
    page.check()
    assert checker.check.histogram and not checker.histogram.isHidden()
    kinds = {i.kind for i in checker.check.issues}
    assert {"unknown_chars", "little_data"} <= kinds and not checker.check.blocking
    assert checker.table.rowCount() == len(checker.check.report.findings) == 1
    assert not checker.vocab_button.isHidden() and not checker.next_button.isEnabled()
    checker.accept_box.setChecked(True)  # warnings can be accepted
    assert checker.next_button.isEnabled()
    checker.vocab_button.click()  # checks again with the vocabulary growing
    assert page.how.form.value("extend_vocab") is True
    assert "unknown_chars" not in {i.kind for i in checker.check.issues}
    assert checker.check.train_examples + checker.check.heldout_examples == 9

    page.sources.select_source(tmp_path / "nowhere.tsv")  # only a missing file: blocked
    page.check()
    assert checker.check.blocking and not checker.next_button.isEnabled()
    assert checker.accept_box.isHidden()  # a blocking problem cannot be accepted
    page.sources.select_source(manifest)
    page.start_job()  # the data changed since the check: it is checked again, nothing starts
    assert page.notice.text() == tr("tune.check_first") and page.handle.running_kind() is None
    assert page.checker.check.sources == (str(manifest),)


def _finished(root: Path, name: str):
    """A job folder as a finished run leaves it (model card, model, adapter), untrained."""
    from engine.tune.export import ModelCard

    job = _job(root, name)
    for folder in (job.model_dir, job.adapter_dir):
        folder.mkdir()
        ModelCard("m", "lora", 10, 8, 30.0, 2, 0.5, 0.25, "x").write(folder)
    return job


def _result(job, before: float = 0.5, after: float = 0.25):
    from engine.tune.events import JobResult

    return JobResult(job.model_dir, job.adapter_dir, before, after, 10, 10)


def _finish(page, job) -> None:
    """`job` runs and finishes as the supervisor reports it: its result is on the Result step."""
    page.handle.supervisor.started.emit(str(job.path), "run", 1)
    page.handle.supervisor.event.emit(str(job.path), JobFinished(_result(job)))


def _stopped(root: Path, name: str):
    """A job folder as a cancelled or killed run leaves it: a checkpoint, no model."""
    from engine.tune.jobs import CHECKPOINT_STATE

    job = _job(root, name)
    step = job.path / "checkpoints" / "step-4"
    step.mkdir(parents=True)
    (step / CHECKPOINT_STATE).write_text("{}")
    return job


def test_my_models_names_a_local_base_as_the_status_bar_does(qtbot, tmp_path):
    """A base model folder by its last two parts (its whole path on hover), as the status bar
    names models; a Hub id as it is."""
    from app.tune.models import ModelsPanel
    from engine.tune.jobs import JobFolder, TunedModel

    base = tmp_path / "deep" / "models" / "base"
    base.mkdir(parents=True)
    panel = ModelsPanel()
    qtbot.addWidget(panel)

    def tuned(i: int, base_model: str) -> TunedModel:
        job = JobFolder(tmp_path / f"j{i}")
        when = "2026-12-03T10:00:00"
        return TunedModel(
            job, f"m{i}", base_model, ("x/manifest.tsv",), when, "lora", 10, 0.5, 0.25
        )

    rows = [tuned(0, str(base)), tuned(1, "org/hub-model")]
    panel.show_models(rows)
    assert panel.table.item(0, 1).text() == "models/base"
    assert panel.table.item(0, 1).toolTip() == str(base)
    assert panel.table.item(1, 1).text() == "org/hub-model"
    assert panel.table.item(0, 2).text() == "x"


def test_my_models_lists_a_model_whose_card_cannot_be_read_saying_so(qtbot, tmp_path):
    """Before: such a model was not listed, so it could be neither used nor deleted here."""
    from engine.tune.export import CARD_FILE

    job = _finished(tmp_path / "tuning", "clinic")
    (job.model_dir / CARD_FILE).write_text("{not json", encoding="utf-8")
    page = _page(qtbot, tmp_path / "tuning")
    table = page.models.table
    assert table.rowCount() == 1 and table.item(0, 0).text() == "clinic"
    assert [table.item(0, c).text() for c in (4, 5, 6)] == [tr("tune.models.no_card"), "—", "—"]
    note = tr("tune.models.no_card_tip", path=str(job.model_dir / CARD_FILE))
    assert all(table.item(0, c).toolTip() == note for c in (4, 5, 6))
    table.selectRow(0)
    assert all(b.isEnabled() for b in page.models.buttons.values())
    language = i18n.language()
    try:
        i18n.set_language("zh" if language == "en" else "en")
        page.retranslate()
        assert table.item(0, 4).text() == tr("tune.models.no_card")
        assert table.item(0, 4).text() != i18n.STRINGS["tune.models.no_card"][language == "zh"]
    finally:
        i18n.set_language(language)


def test_my_models_lists_a_model_whose_card_holds_a_figure_as_text(qtbot, tmp_path):
    """Before: "cer_before": "0.25" raised ValueError while the page was made (no window)."""
    import json

    from engine.tune.export import CARD_FILE

    job = _finished(tmp_path / "tuning", "clinic")
    record = json.loads((job.model_dir / CARD_FILE).read_text(encoding="utf-8"))
    record["cer_before"] = "0.25"
    (job.model_dir / CARD_FILE).write_text(json.dumps(record), encoding="utf-8")
    table = _page(qtbot, tmp_path / "tuning").models.table
    assert table.rowCount() == 1 and table.item(0, 0).text() == "clinic"
    assert [table.item(0, c).text() for c in (4, 5, 6)] == [tr("tune.models.no_card"), "—", "—"]


def test_my_models_use_rename_export_and_delete(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    job = _finished(tmp_path / "tuning", "clinic")
    page = _page(qtbot, tmp_path / "tuning")
    models = page.models
    assert models.table.rowCount() == 1 and models.table.item(0, 0).text() == "clinic"
    assert [models.table.item(0, c).text() for c in (5, 6)] == ["50.0 %", "25.0 %"]
    models.table.selectRow(0)
    used = []
    page.use_model_requested.connect(used.append)
    models.buttons["use"].click()
    assert used == [str(job.model_dir)]
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("clinic, May", True))
    models.buttons["rename"].click()
    assert models.table.item(0, 0).text() == "clinic, May" and job.spec.name == "clinic, May"
    # Export: the job goes to the window's Export dialog (tests/test_app_export.py), from My
    # models and from the Result step alike.
    exports = []
    page.export_requested.connect(exports.append)
    models.buttons["export"].click()
    _finish(page, job)
    page.result.export_button.click()
    assert exports == [str(job.path), str(job.path)]
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.No)
    models.buttons["delete"].click()
    assert job.path.is_dir()  # not confirmed: kept
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
    models.buttons["delete"].click()
    assert not job.path.exists() and models.table.rowCount() == 0


@pytest.mark.slow
def test_measure_runs_warm_up_steps_in_a_child(qtbot, tmp_path):
    from app.tune.how import estimate_text
    from engine.testmodels import build_model
    from engine.tune.testdata import tone_corpus

    chars = "天地人和"
    model = build_model(tmp_path / "base", "tiny", chars=chars, seed=0)
    manifest = tone_corpus(tmp_path / "tones", 12, chars=chars, char_seconds=0.1, seed=0)
    page = _page(qtbot, tmp_path / "tuning")
    page.sources.model_box.setCurrentText(str(model))
    page.sources.select_source(manifest)
    _set(page, steps=30, min_seconds=0.1, batch_seconds=2.0, micro_batch_seconds=1.0)
    _set(page, device="cpu")
    page.check()
    page.checker.accept_box.setChecked(True)
    measured = []
    page.handle.supervisor.estimated.connect(lambda folder, e: measured.append(e))
    page.how.estimate_button.click()
    assert page.how.estimate.text() == tr("tune.how.measuring")
    buttons = (page.how.estimate_button, page.how.start_button)
    qtbot.waitUntil(lambda: bool(measured), timeout=120_000)
    if page.handle.running_kind() is not None:  # its process still ends: no second job yet
        assert not any(b.isEnabled() for b in buttons)
    qtbot.waitUntil(lambda: page.handle.running_kind() is None, timeout=120_000)
    qtbot.waitUntil(lambda: all(b.isEnabled() for b in buttons), timeout=5_000)
    (estimate,) = measured
    assert estimate.steps == 30 and estimate.seconds_per_step > 0 and estimate.device == "cpu"
    assert page.how.estimate.text() == estimate_text(estimate)
    assert not any((tmp_path / "tuning" / ".estimates").iterdir())  # the scratch job is gone
    assert find_jobs(tmp_path / "tuning") == [] and page.models.table.rowCount() == 0


def test_the_result_marks_wrong_characters_and_says_when_nothing_improved(qtbot, tmp_path):
    from app.tune.result import ResultPanel, marked_html
    from engine.tune.events import JobResult
    from engine.tune.jobs import Comparison

    assert marked_html("天地人", "天人人") == '天<b style="color:#c62828">人</b>人'
    panel = ResultPanel()
    qtbot.addWidget(panel)
    assert not panel.use_button.isEnabled()  # nothing to use yet
    better = JobResult(tmp_path / "model", None, 0.5, 0.25, 20, 20)
    panel.show_result(better, [Comparison("天地人", "天人人", "天地人")])
    assert panel.use_button.isEnabled() and tr("tune.result.not_better") not in panel.cer.text()
    assert "50.0" in panel.cer.text() and "25.0" in panel.cer.text()
    html = panel.sample.toHtml()
    assert "#c62828" in html and html.count("天") == 3
    worse = JobResult(tmp_path / "model", None, 0.25, 0.3, 20, 20)
    panel.show_result(worse, [])
    assert panel.cer.text().endswith(tr("tune.result.not_better"))


def test_the_stats_line_shows_a_new_cer_at_once(qtbot):
    """Before: the line changed only with the next step, so right after an evaluation it
    still showed the previous CER while the plot showed the new one."""
    from app.tune.watch import WatchPanel
    from engine.metrics import CerResult
    from engine.tune.events import Evaluated, StepProgress

    view = WatchPanel()
    qtbot.addWidget(view)
    view.add(StepProgress(step=5, total_steps=40, loss=2.5, learning_rate=1e-3,
                          samples_per_second=3.0, eta_seconds=60.0, epoch=0))  # fmt: skip
    view.add(Evaluated(step=5, cer=0.4155, result=CerResult(0.4155, 20, 10, 2, 77, 45)))
    assert "41.5 %" in view.stats.text() or "41.6 %" in view.stats.text()


# ---- faults a QA pass found, each test failing before its fix ------------------------------


@pytest.mark.parametrize("damage", ["truncated", "newer"])
def test_a_stopped_job_that_cannot_be_read_is_left_out_and_named(qtbot, tmp_path, damage):
    """Old: reading its config.json raised in the page's constructor, so the window failed at
    every start (truncated by a power cut, or with a setting of a newer Tingxie)."""
    import json

    older = _stopped(tmp_path, "older")
    bad = _stopped(tmp_path, "clinic")  # the newest: offered first
    config = json.loads(bad.config_path.read_text())
    text = "" if damage == "truncated" else json.dumps({**config, "from_a_newer_tingxie": 1})
    bad.config_path.write_text(text)
    page = _page(qtbot, tmp_path)
    note = tr("tune.unreadable_jobs", folders=str(bad.path))
    offer = tr("tune.offer_resume", name="older", step=4, total=10)
    assert page.stopped == older and page.notice.text() == f"{offer} {note}"
    shutil.rmtree(older.path)
    page.scan_jobs()
    assert page.stopped is None and page.resume_button.isHidden()
    assert page.notice.text() == note


def test_a_check_that_could_not_run_stops_saying_it_checks(qtbot, tmp_path):
    page = _page(qtbot, tmp_path)
    page.checker.show_checking()
    assert page.checker.summary.text() == tr("tune.check.running")
    page.handle.supervisor.failed.emit("corrections/x: cannot read the folder")
    assert page.checker.summary.text() == ""
    assert "cannot read the folder" in page.notice.text()


def test_discarding_a_stopped_job_that_cannot_be_deleted_says_why(qtbot, tmp_path, monkeypatch):
    """Old: delete_job's refusal (a process still working on it) raised in the slot."""
    import app.tune.page as page_module

    job = _stopped(tmp_path, "clinic")
    page = _page(qtbot, tmp_path)
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)

    def refuse(job):
        raise ValueError(f"{job.path}: a tuning process is still working on it; stop it first")

    monkeypatch.setattr(page_module, "delete_job", refuse)
    page.discard_button.click()
    assert "still working on it" in page.notice.text()
    assert page.stopped == job and job.path.is_dir()


@pytest.mark.parametrize("action", ["use", "rename", "export", "delete"])
def test_a_model_whose_folder_went_is_said_and_the_list_refreshed(
    qtbot, tmp_path, monkeypatch, action
):
    """Old: Rename and Delete raised FileNotFoundError in the slot (nothing said, the stale row
    kept), Use did nothing and Export handed the missing folder to the Export dialog."""
    from PySide6.QtWidgets import QInputDialog

    job = _finished(tmp_path, "clinic")
    page = _page(qtbot, tmp_path)
    page.models.table.selectRow(0)
    shutil.rmtree(job.path)  # in a file manager, or by another Tingxie window
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("new name", True))
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
    asked = []
    page.use_model_requested.connect(asked.append)
    page.export_requested.connect(asked.append)
    page.models.buttons[action].click()
    gone = job.model_dir if action == "use" else job.path
    assert page.notice.text() == tr("tune.gone", path=str(gone))
    assert page.models.table.rowCount() == 0 and asked == []


def test_the_result_acts_on_the_job_it_shows(qtbot, tmp_path, monkeypatch):
    """Old: its Use and Export acted on the job of the Watch step: once the next job started,
    Use did nothing and Export exported that one; a deleted job's result stayed usable."""
    first = _finished(tmp_path, "A")
    page = _page(qtbot, tmp_path)
    _finish(page, first)
    page.handle.supervisor.started.emit(str(_job(tmp_path, "B").path), "run", 2)
    asked = []
    page.use_model_requested.connect(asked.append)
    page.export_requested.connect(asked.append)
    page.result.use_button.click()
    page.result.export_button.click()
    assert asked == [str(first.model_dir), str(first.path)]
    page.models.table.selectRow(0)
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
    page.models.buttons["delete"].click()
    assert not first.path.exists() and page.result.cer.text() == tr("tune.result.none")
    assert not page.result.use_button.isEnabled() and not page.result.export_button.isEnabled()


def test_the_estimate_shows_the_gpu_peak_as_gpu_memory():
    """Old: "GPU memory" showed the larger of the process's peak RAM and the GPU's peak."""
    from app import i18n
    from app.tune.how import estimate_text
    from engine.tune.events import Estimate

    i18n.set_language("en")
    e = Estimate(10, 0.5, 2.0, 100, 3, 6_000_000_000, 1_500_000_000, "cuda", 5)
    assert "peak memory 6.00 GB, GPU memory 1.50 GB" in estimate_text(e)


def test_the_estimate_names_the_calibration_refit_within_the_finish():
    """The refit at the finish reloads the saved model and transcribes every held-out row: it
    is measured apart (Estimate.refit_seconds) and named within the finish, in both languages
    and with or without a GPU; a job without one says nothing of it."""
    from dataclasses import replace

    from app import i18n
    from app.tune.how import estimate_text
    from engine.tune.events import Estimate

    e = Estimate(10, 0.5, 2.0, 100, 3, 6_000_000_000, 0, "cpu", 5, finish_seconds=70.0)
    refit = replace(e, refit_seconds=42.0)
    i18n.set_language("en")
    assert "finishing 1 min 10 s, of which the calibration refit 42 s" in estimate_text(refit)
    assert "calibration refit" not in estimate_text(e)
    gpu = replace(refit, device="cuda", device_memory_bytes=1_500_000_000)
    assert "of which the calibration refit 42 s" in estimate_text(gpu)
    assert "GPU memory 1.50 GB" in estimate_text(gpu)
    i18n.set_language("zh")
    assert "收尾 1 分 10 秒（其中重新拟合置信度校准 42 秒" in estimate_text(refit)


def test_deleting_the_model_in_use_says_so_and_goes_back_to_its_base(qtbot, tmp_path, monkeypatch):
    """Old: no word that it was the model in use, and the window went on remembering the
    deleted folder: the next start failed with an error and no model."""
    from app.worker import ModelSummary

    other = _finished(tmp_path, "other")
    used = _finished(tmp_path, "clinic")  # tuned from "m" (_finished's model card)
    page = _page(qtbot, tmp_path)
    page.set_loaded_model(ModelSummary(str(used.model_dir), "cpu", "float32", False))
    asked, switched = [], []
    monkeypatch.setattr(
        QMessageBox,
        "question",
        lambda parent, title, text: asked.append(text) or QMessageBox.StandardButton.Yes,
    )
    page.use_model_requested.connect(switched.append)
    in_use = tr("tune.delete_in_use", name="clinic", base="m")
    rows = {page.models.table.item(r, 0).text(): r for r in range(2)}
    page.models.table.selectRow(rows["other"])
    page.models.buttons["delete"].click()
    assert not other.path.exists() and in_use not in asked[0] and switched == []
    page.models.table.selectRow(0)
    page.models.buttons["delete"].click()
    assert asked[1].startswith(in_use) and not used.path.exists()
    assert switched == ["m"]  # the window loads and remembers it (as a model chosen)
    assert page.notice.text() == tr("tune.switched_back", name="clinic", base="m")


def test_after_a_delete_no_other_model_is_selected(qtbot, tmp_path, monkeypatch):
    """Old: the selection stayed on the deleted row's index, i.e. moved silently to another
    model, with Use, Rename, Export and Delete enabled for it."""
    from PySide6.QtWidgets import QInputDialog

    _finished(tmp_path, "older")
    newer = _finished(tmp_path, "newer")
    page = _page(qtbot, tmp_path)
    models = page.models
    models.table.selectRow(0)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("newest", True))
    models.buttons["rename"].click()
    assert models.selected() == str(newer.path)  # still there: still selected
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
    models.buttons["delete"].click()
    assert models.table.rowCount() == 1 and models.selected() is None
    assert not any(b.isEnabled() for b in models.buttons.values())


def test_a_measurement_that_never_ran_leaves_what_was_shown(qtbot, tmp_path):
    """Old: refused (another job runs) or unable to start, it left "Measuring…" on for good."""
    from app.tune.how import estimate_text
    from engine.tune.events import Estimate

    page = _page(qtbot, tmp_path)
    how, supervisor = page.how, page.handle.supervisor
    before = how.estimate.text()
    for report in (
        lambda: supervisor.refused.emit(str(tmp_path / "earlier")),
        lambda: supervisor.failed.emit("the tuning process could not start"),
    ):
        how.show_measuring()
        assert how.estimate.text() == tr("tune.how.measuring")
        report()
        assert how.estimate.text() == before and how.estimate_button.isEnabled()
    how.show_measuring()  # one that measures: its estimate stays once its process is gone
    e = Estimate(10, 0.5, 2.0, 100, 3, 6_000_000_000, 0, "cpu", 5)
    supervisor.estimated.emit(str(tmp_path / "estimate"), e)
    supervisor.finished.emit(str(tmp_path / "estimate"), "estimate")
    assert how.estimate.text() == estimate_text(e) and how.estimate_button.isEnabled()


def test_what_the_page_shows_follows_a_language_switch(qtbot, tmp_path):
    """Old: the resume offer, the Watch step's status, summary, stats and checkpoints, and the
    check table's problems and "left out" stayed Chinese after Language → English."""
    import re

    from app import i18n
    from engine.testmodels import build_model
    from engine.tune.config import TuneConfig
    from engine.tune.events import JobStarted, StepProgress
    from engine.tune.testdata import tone_corpus

    chars = "天地人和"
    model = build_model(tmp_path / "base", "tiny", chars=chars, seed=0)
    manifest = tone_corpus(tmp_path / "tones", 8, chars=chars, char_seconds=0.1, seed=0)
    _stopped(tmp_path / "tuning", "clinic")
    page = _page(qtbot, tmp_path / "tuning")
    page.sources.model_box.setCurrentText(str(model))
    page.sources.select_source(manifest)
    page.check()  # the clips are shorter than min_seconds: the table lists them
    config = TuneConfig(model="m", data="x", output_dir="y", steps=10).resolved()
    watch = page.watch
    watch.add(JobStarted(config, 8, 1, 60.0, "", 0, (), "", 0.1, 1, 2, "cpu", "fp32", 1, 0))
    watch.add(StepProgress(1, 10, 2.0, 1e-3, 3.0, 30.0, 0))
    watch.add(CheckpointSaved(step=1, path=tmp_path / "ck", best=True))
    table = page.checker.table

    def texts() -> list[str]:
        shown = [page.notice.text(), watch.status.text(), watch.about.text(), watch.stats.text()]
        shown.append(watch.checkpoints.item(0).text())
        return shown + [table.item(r, c).text() for r in range(table.rowCount()) for c in (1, 3)]

    chinese = re.compile(r"[\u4e00-\u9fff]")
    assert table.rowCount() > 0 and all(chinese.search(t) for t in texts())
    i18n.set_language("en")
    page.retranslate()  # as the window does on Language → English
    assert not [t for t in texts() if chinese.search(t)]
    assert page.notice.text() == tr("tune.offer_resume", name="clinic", step=4, total=10)


def test_the_form_reads_numbers_as_job_files_do_and_says_what_is_wrong_in_chinese(qtbot):
    """Old: 200.0 or 1e3 for a whole-number setting was "not a number", though a job file
    takes them, and TuneConfig's English ("steps=0: must be at least 1") showed in the
    Chinese UI."""
    import re

    from app.tune.form import ConfigForm

    form = ConfigForm()
    qtbot.addWidget(form)
    for text, steps in (("200.0", 200), ("1e3", 1000)):
        form.fields["steps"].widget.setText(text)
        assert form.config("m", "d", "o").steps == steps
    form.fields["steps"].widget.setText("0")
    with pytest.raises(ValueError) as rejected:
        form.config("m", "d", "o")
    assert str(rejected.value) == "steps=0：至少应为 1"
    form.fields["steps"].widget.setText("")
    chinese = re.compile(r"[\u4e00-\u9fff]")
    wrong = [(name, text) for name in form.fields for text in ("-1", "abc", "nan")]
    wrong = [(n, t) for n, t in wrong if form.fields[n].kind in (int, float)]
    wrong += [("min_seconds", "40"), ("micro_batch_seconds", "0.5")]  # max_seconds is 30
    for name, text in wrong:
        field = form.fields[name].widget
        kept = field.text()
        field.setText(text)
        with pytest.raises(ValueError) as rejected:
            form.config("m", "d", "o")
        said = str(rejected.value)
        assert chinese.search(said) and name in said, (name, text, said)
        field.setText(kept)


def test_the_result_gives_no_relative_change_from_a_cer_of_zero(qtbot, tmp_path):
    """Old: "Held-out CER 0.0 % → 12.5 % (+0 % relative)"."""
    from app import i18n
    from app.tune.result import ResultPanel
    from engine.tune.events import JobResult

    i18n.set_language("en")
    panel = ResultPanel()
    qtbot.addWidget(panel)
    panel.show_result(JobResult(tmp_path / "model", None, 0.0, 0.125, 20, 20), [])
    assert panel.cer.text().startswith("Held-out CER 0.0 % → 12.5 %, the base model")
    panel.show_result(JobResult(tmp_path / "model", None, 0.5, 0.25, 20, 20), [])
    assert "25.0 % (-50 % relative)" in panel.cer.text()
