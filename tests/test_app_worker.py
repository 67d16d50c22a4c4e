"""The engine worker in its own thread: signals for model, files, recording and errors.

Model loading, file transcription and streaming use the real engine with the tiny random model;
only the microphone is faked (tests/app_fakes.py) — the PulseAudio test covers the real one.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from app_fakes import FakeDevice, emitted, recorder_factory, tone
from PySide6.QtCore import QObject, QTimer, Slot

from app.worker import Engine, EngineWorker, ModelSummary, WorkerHandle
from engine.results import Progress, Segment


@pytest.fixture
def start(qtbot):
    """start(engine) -> a running WorkerHandle, stopped at teardown."""
    handles = []

    def run(engine: Engine | None = None) -> WorkerHandle:
        handle = WorkerHandle(EngineWorker(engine))
        handle.start()
        handles.append(handle)
        return handle

    yield run
    for handle in handles:
        handle.stop()


def _load(qtbot, handle: WorkerHandle, source) -> ModelSummary:
    loaded = emitted(
        qtbot, handle.worker.model_loaded, lambda: handle.load_model.emit(str(source)), 60_000
    )
    return loaded[0]


def test_load_model_and_transcribe_a_file(qtbot, start, tiny_model_dir, tmp_path):
    handle = start()
    w = handle.worker
    loading = []
    w.model_loading.connect(loading.append)
    summary = _load(qtbot, handle, tiny_model_dir)
    assert summary.source == str(tiny_model_dir) and summary.device == "cpu"
    assert not summary.is_demo
    wav = tmp_path / "tone.wav"
    sf.write(wav, tone(3.0), 16_000)
    progress, segments = [], []
    w.file_progress.connect(lambda j, f: progress.append((j, f)))
    w.file_segment.connect(lambda j, s: segments.append((j, s)))
    done = emitted(qtbot, w.file_done, lambda: handle.enqueue_file.emit(7, str(wav)), 60_000)
    job, info = done
    assert job == 7 and info.duration == pytest.approx(3.0, abs=0.01)
    assert progress and progress[-1] == (7, 1.0)
    assert all(j == 7 and isinstance(s, Segment) for j, s in segments)
    assert loading == [str(tiny_model_dir)]


def test_a_file_done_says_the_length_read_not_the_headers_guess(
    qtbot, start, tiny_model_dir, tmp_path
):
    """An MP3 FFmpeg guesses at 13.5 s holds 5.2 s: the info the window writes and stores says
    5.2 s (before: 13.5 s, and its subtitles held the last cue past the end of the audio)."""
    from audio_fixtures import mp3_longer_by_its_header

    from engine.audio import load_audio

    handle = start()
    _load(qtbot, handle, tiny_model_dir)
    path = mp3_longer_by_its_header(tmp_path)
    done = emitted(
        qtbot, handle.worker.file_done, lambda: handle.enqueue_file.emit(3, str(path)), 60_000
    )
    assert done[1].duration == len(load_audio(path)) / 16_000


def test_the_int8_copy_a_load_makes_shows_its_stages_and_its_precision(
    qtbot, start, tiny_model_dir, tmp_path, monkeypatch
):
    """Where bf16 is not native (oneDNN held to AVX2 here) a large checkpoint's first load makes
    its int8 copy (engine.model): the window's progress bar hears the stages through to the end,
    and the summary names the precision it runs in. The tiny model counts as large here."""
    import shutil

    import engine.model as model_module

    monkeypatch.setattr(model_module, "CONVERT_MIN_BYTES", 0)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("TINGXIE_WEIGHTS_CACHE", str(tmp_path / "weights"))
    source = tmp_path / "model"
    shutil.copytree(tiny_model_dir, source)
    handle = start()
    fractions, preparing = [], []
    handle.worker.model_progress.connect(fractions.append)
    handle.worker.model_preparing.connect(lambda: preparing.append(True))
    summary = _load(qtbot, handle, source)
    assert summary.dtype == "int8" and summary.device == "cpu"
    assert fractions == pytest.approx([1 / 3, 2 / 3, 1.0]) and preparing == [True]
    assert _load(qtbot, handle, source).dtype == "int8" and preparing == [True]  # made once


def test_bad_file_fails_with_its_name_and_next_job_still_runs(
    qtbot, start, tiny_model_dir, tmp_path
):
    handle = start()
    _load(qtbot, handle, tiny_model_dir)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wav")
    good = tmp_path / "good.wav"
    sf.write(good, tone(1.0), 16_000)
    w = handle.worker
    failed = []
    w.file_failed.connect(lambda j, m: failed.append((j, m)))
    for job, path in enumerate([bad, tmp_path / "missing.flac", good], start=1):
        handle.enqueue_file.emit(job, str(path))
    done = emitted(qtbot, w.file_done, timeout=60_000)
    assert done[0] == 3
    assert [j for j, _ in failed] == [1, 2]
    assert "broken.wav" in str(failed[0][1]) and "\n" not in str(failed[0][1])
    assert failed[1][1].code == "audio.missing"  # the error itself: the window words it


def test_files_wait_for_a_model_and_can_be_cancelled_meanwhile(qtbot, start):
    transcriber = _SlowTranscriber(step_seconds=0.01)
    handle = start(_fake_engine(transcriber=lambda m: transcriber))
    w = handle.worker
    started, cancelled = [], []
    w.file_started.connect(started.append)
    w.file_cancelled.connect(cancelled.append)
    handle.enqueue_file.emit(4, "a.wav")
    handle.enqueue_file.emit(5, "b.wav")
    qtbot.wait(300)
    assert started == []  # no model yet: the files wait (they are not failed)
    handle.cancel_file(4)
    qtbot.waitUntil(lambda: cancelled == [4], timeout=5000)
    emitted(qtbot, w.model_loaded, lambda: handle.load_model.emit("fake"))
    qtbot.waitUntil(lambda: started == [5], timeout=5000)
    handle.cancel_all()
    qtbot.waitUntil(lambda: cancelled == [4, 5], timeout=5000)


class _SlowTranscriber:
    """Yields progress forever, slowly, and records whether it was closed (cancelled)."""

    def __init__(self, step_seconds: float = 0.05) -> None:
        self.closed: list[str] = []
        self.step = step_seconds

    def transcribe(self, path):
        def items():
            try:
                i = 0
                while True:
                    time.sleep(self.step)
                    i += 1
                    yield Progress(done=i, total=1000)
            finally:
                self.closed.append(path)

        return items(), None


def _fake_engine(**kwargs) -> Engine:
    defaults = dict(
        load_model=lambda source, tqdm: object(),
        transcriber=lambda model: _SlowTranscriber(),
        streamer=lambda t: None,
        recorder=recorder_factory(),
        list_devices=lambda: [FakeDevice("Mic A"), FakeDevice("Mic B", 1)],
        find_unfinished=lambda folder: [],
        recover=lambda path: path,
    )
    defaults.update(kwargs)
    return Engine(**defaults)


def test_cancel_stops_the_running_and_queued_jobs(qtbot, start):
    transcriber = _SlowTranscriber()
    handle = start(_fake_engine(transcriber=lambda m: transcriber))
    w = handle.worker
    emitted(qtbot, w.model_loaded, lambda: handle.load_model.emit("fake"))
    cancelled, started = [], []
    w.file_cancelled.connect(cancelled.append)
    w.file_started.connect(started.append)
    for job in (1, 2, 3):
        handle.enqueue_file.emit(job, f"f{job}.wav")
    emitted(qtbot, w.file_progress, timeout=5000)
    handle.cancel_file(3)  # waiting: its row says so at once, not when its turn comes
    qtbot.waitUntil(lambda: cancelled == [3], timeout=2000)
    assert started == [1] and "f3.wav" not in transcriber.closed
    handle.cancel_file(1)
    qtbot.waitUntil(lambda: cancelled == [3, 1], timeout=5000)
    assert transcriber.closed == ["f1.wav"]  # the engine's generator was closed
    qtbot.waitUntil(lambda: started == [1, 2], timeout=5000)
    handle.cancel_all()
    qtbot.waitUntil(lambda: sorted(cancelled) == [1, 2, 3], timeout=5000)
    assert "f3.wav" not in transcriber.closed  # never started, so never ran
    assert started == [1, 2]


def test_slow_model_load_does_not_block_the_ui_thread(qtbot, start):
    def slow_load(source, tqdm_class):
        bar = tqdm_class(total=100, unit="B")
        for _ in range(10):
            time.sleep(0.1)
            bar.update(10)
        return object()

    handle = start(_fake_engine(load_model=slow_load))
    ticks = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    fractions = []
    handle.worker.model_progress.connect(fractions.append)
    t0 = time.monotonic()
    emitted(qtbot, handle.worker.model_loaded, lambda: handle.load_model.emit("slow"), 10_000)
    elapsed = time.monotonic() - t0
    timer.stop()
    assert elapsed >= 1.0
    # A blocked event loop would tick once or twice; a free one ~every 20 ms.
    assert len(ticks) >= 0.5 * elapsed / 0.02
    assert max(np.diff(ticks)) < 0.5
    assert fractions[-1] == pytest.approx(1.0) and fractions == sorted(fractions)


def test_model_failure_is_reported_not_raised(qtbot, start, tmp_path):
    handle = start()
    failed = emitted(
        qtbot,
        handle.worker.model_failed,
        lambda: handle.load_model.emit(str(tmp_path / "nowhere")),
        30_000,
    )
    assert failed[0].code == "model.folder_missing"
    assert "nowhere" in str(failed[0]) and "does not exist" in str(failed[0])


def test_recording_streams_every_sample_and_saves_the_file(qtbot, start, tiny_model_dir, tmp_path):
    signal = tone(2.0, amplitude=0.5)
    make = recorder_factory(signal=signal, realtime=0.2)
    handle = start(Engine(recorder=make))
    w = handle.worker
    _load(qtbot, handle, tiny_model_dir)
    levels, partials = [], []
    w.audio_level.connect(lambda points, level, seconds: levels.append((points, level, seconds)))
    w.partial.connect(lambda committed, tail: partials.append((committed, tail)))
    started = emitted(
        qtbot, w.recording_started, lambda: handle.start_recording.emit(str(tmp_path / "rec"))
    )
    make.made[0].wait_fed()
    saved = emitted(qtbot, w.recording_saved, handle.stop_recording.emit, 30_000)
    path = Path(saved[0])
    assert path == Path(started[0]) and path.parent == tmp_path / "rec"
    assert saved[1] == "live"  # transcribed live, with the recording's info
    assert saved[2].source == str(path) and saved[2].duration == pytest.approx(2.0)
    audio, rate = sf.read(path, dtype="float32")
    assert rate == 16_000 and len(audio) == len(signal)
    assert levels[-1][2] == pytest.approx(2.0)  # every sample reached the worker
    points = np.concatenate([p for p, _, _ in levels])
    assert len(points) == pytest.approx(2.0 * 400, abs=2)
    assert points.max() == pytest.approx(0.5, abs=0.01)
    assert max(level for _, level, _ in levels) > 80
    assert partials, "the streaming transcriber produced no update"


def test_microphone_errors_and_devices(qtbot, start, tmp_path):
    make = recorder_factory(fail_start=RuntimeError("no input device found; plug one in"))
    handle = start(_fake_engine(recorder=make))
    w = handle.worker
    listed = emitted(qtbot, w.devices_listed, handle.list_devices.emit)
    assert [d.name for d in listed[0]] == ["Mic A", "Mic B"]
    error = emitted(qtbot, w.error, lambda: handle.start_recording.emit(str(tmp_path)))
    assert error[0] == "microphone" and str(error[1]) == "no input device found; plug one in"


def test_unfinished_recordings_are_found_and_recovered(qtbot, start, tmp_path):
    """The worker with the engine's real recorder functions (Engine's defaults): a recording a
    crash cut mid-sample (header never updated, marker of a dead process) is found, repaired in
    place and reads back whole; a file that is not a recording is refused by name while the
    next path still recovers.

    Mutations tried, each failing this test and passing the old one (which injected stand-in
    lambdas for both functions): Engine's default `recover` wired to `find_unfinished`, and
    the worker's recover slot returning at the first failure."""
    import json

    from engine import recorder

    sent = tone(1.0, amplitude=0.5)
    cut = tmp_path / "recording-1.wav"
    wav = recorder._WavAppender(cut)
    wav.append(sent)
    wav._fh.write(b"\x01")  # half a sample, as a kill mid-write leaves; header says 0 bytes
    wav._fh.close()
    (tmp_path / "recording-1.wav.recording").write_text(json.dumps({"pid": 2**22 + 12345}))
    bogus = tmp_path / "notes.wav"
    bogus.write_bytes(b"not audio at all, just text")
    handle = start(Engine())
    found = emitted(
        qtbot, handle.worker.unfinished_found, lambda: handle.scan_unfinished.emit(str(tmp_path))
    )
    assert found[0] == [str(cut)]
    errors, recovered = [], []
    handle.worker.error.connect(lambda kind, e: errors.append((kind, str(e))))
    handle.worker.recovered.connect(recovered.append)
    handle.recover.emit([str(bogus), *found[0]])
    qtbot.waitUntil(lambda: bool(recovered and errors), timeout=10_000)
    assert recovered == [str(cut)]
    assert errors[0][0] == "recordings" and "notes.wav" in errors[0][1]
    audio, rate = sf.read(cut, dtype="float32")
    assert rate == 16_000
    np.testing.assert_allclose(audio, sent, atol=1 / 16_000)
    assert recorder.find_unfinished(tmp_path) == []


def test_device_lost_mid_recording_keeps_the_audio_and_says_so(qtbot, start, tmp_path):
    lost = RuntimeError("microphone 'USB' disappeared mid-recording; the recording so far is saved")
    make = recorder_factory(signal=tone(0.5), lose_device=lost)
    handle = start(_fake_engine(recorder=make, streamer=lambda t: None))
    w = handle.worker
    saved = []
    w.recording_saved.connect(lambda path, live: saved.append(path))
    error = emitted(qtbot, w.error, lambda: handle.start_recording.emit(str(tmp_path)))
    assert error == ("microphone", lost)
    qtbot.waitUntil(lambda: len(saved) == 1, timeout=5000)
    audio, _ = sf.read(saved[0], dtype="float32")
    assert len(audio) == 8000  # everything captured before the loss is in the file


def test_a_recording_begun_without_a_model_says_it_has_no_text(qtbot, start, tmp_path):
    """Bug 6 (worker side): a recording begun with no model is reported as not transcribed,
    also when a model loads while it runs (a streamer joining mid-way would miss the beginning).
    Old behaviour caught: recording_saved said nothing of it, and the window showed no text,
    no warning and made no library entry."""
    pushed = []
    streamer = _SlowCountingStreamer(delay=0.0)
    streamer.push = lambda samples: pushed.append(len(samples)) or []
    make = recorder_factory(signal=tone(1.0), realtime=0.5)
    handle = start(_fake_engine(recorder=make, streamer=lambda t: streamer))
    w = handle.worker
    emitted(qtbot, w.recording_started, lambda: handle.start_recording.emit(str(tmp_path)))
    emitted(qtbot, w.model_loaded, lambda: handle.load_model.emit("fake"))  # mid-recording
    qtbot.waitUntil(make.made[0].fed, timeout=10_000)
    path, how, info = emitted(qtbot, w.recording_saved, handle.stop_recording.emit, 10_000)
    assert how == "no_model" and info is None and pushed == [] and Path(path).is_file()
    emitted(qtbot, w.recording_started, lambda: handle.start_recording.emit(str(tmp_path)))
    qtbot.waitUntil(make.made[1].fed, timeout=10_000)
    path, how, _ = emitted(qtbot, w.recording_saved, handle.stop_recording.emit, 10_000)
    assert how == "live" and sum(pushed) == 16_000  # the next one, begun with the model, is


def test_a_recordings_folder_that_cannot_be_made_is_named_not_blamed_on_the_microphone(
    qtbot, start, tmp_path
):
    """It came as the raw "[Errno 20] Not a directory" under 麦克风问题 (Microphone problem)."""
    from app.errors import error_text

    (tmp_path / "Recordings").write_text("a file in the way", encoding="utf-8")
    folder = tmp_path / "Recordings" / "Tingxie"
    make = recorder_factory(signal=tone(1.0), realtime=0.5)
    handle = start(_fake_engine(recorder=make))
    kind, error = emitted(
        qtbot, handle.worker.error, lambda: handle.start_recording.emit(str(folder))
    )
    assert kind != "microphone" and error.code == "recording.folder"
    assert str(folder) in error_text(error) and not make.made  # nothing was started


def test_a_live_model_that_fails_is_reported_once_and_the_recording_transcribed_whole(
    qtbot, start, tmp_path
):
    """A push that fails every time (out of GPU memory): an error was sent for every block, a
    modal dialog each, about ten a second, until the user stopped."""

    class Failing:
        def push(self, samples):
            raise RuntimeError("CUDA out of memory")

        def finish(self):
            raise AssertionError("never asked to finish once it failed")

        def reset(self):
            pass

    make = recorder_factory(signal=tone(2.0), realtime=1.0)
    handle = start(_fake_engine(recorder=make, streamer=lambda t: Failing()))
    w = handle.worker
    emitted(qtbot, w.model_loaded, lambda: handle.load_model.emit("fake"))
    errors = []
    w.error.connect(lambda kind, error: errors.append(str(error)))
    emitted(qtbot, w.recording_started, lambda: handle.start_recording.emit(str(tmp_path)))
    qtbot.waitUntil(make.made[0].fed, timeout=10_000)
    path, how, info = emitted(qtbot, w.recording_saved, handle.stop_recording.emit, 10_000)
    assert len(errors) == 1 and "CUDA out of memory" in errors[0]
    assert "transcribed from its file" in errors[0]
    assert how == "live_failed" and info is None  # not "no model was loaded"
    assert Path(path).is_file()  # the window queues it as a file


class _SlowCountingStreamer:
    """A streaming transcriber whose every push takes `delay` seconds (a slow model)."""

    def __init__(self, delay: float) -> None:
        self.delay, self.received, self.pushes = delay, 0, 0

    def push(self, samples):
        time.sleep(self.delay)
        self.received += len(samples)
        self.pushes += 1
        return []

    def finish(self):
        return []

    def reset(self):
        pass


def test_slow_model_drops_no_audio_and_waveform_keeps_moving(qtbot, start, tmp_path):
    signal = tone(2.0)
    streamer = _SlowCountingStreamer(delay=0.4)
    make = recorder_factory(signal=signal, realtime=1.0)
    handle = start(_fake_engine(recorder=make, streamer=lambda t: streamer))
    w = handle.worker
    emitted(qtbot, w.model_loaded, lambda: handle.load_model.emit("fake"))
    arrivals = _Arrivals()  # lives in this (the UI) thread, like the window
    w.audio_level.connect(arrivals.hit)
    emitted(qtbot, w.recording_started, lambda: handle.start_recording.emit(str(tmp_path)))
    qtbot.waitUntil(make.made[0].fed, timeout=10_000)
    emitted(qtbot, w.recording_saved, handle.stop_recording.emit, 10_000)
    assert streamer.received == len(signal)  # every sample reached the model
    assert streamer.pushes < 10  # slow calls: the backlog was taken in large pieces
    # Waveform points came per 100 ms block, not per 400 ms model call.
    assert len(arrivals.times) == 20 and max(np.diff(arrivals.times)) < 0.3


class _Arrivals(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    @Slot(object, int, float)
    def hit(self, points, level, seconds) -> None:
        self.times.append(time.monotonic())


def test_stop_does_not_hang_on_a_busy_engine(qtbot):
    loading = threading.Event()

    def slow_load(source, tqdm_class):
        loading.set()
        time.sleep(2.0)
        return object()

    handle = WorkerHandle(EngineWorker(_fake_engine(load_model=slow_load)))
    handle.start()
    handle.load_model.emit("big")
    qtbot.waitUntil(loading.is_set)
    thread = handle.thread
    t0 = time.monotonic()
    handle.stop(timeout_ms=300)
    assert time.monotonic() - t0 < 1.0  # the window can close
    assert thread.wait(10_000)  # and the thread ends once the load returns
    handle.stop()  # the late stop completes cleanly
    assert handle.thread is None


def _logs_traceback(node) -> bool:
    """`node` calls log.exception(...) or a log call with exc_info=…"""
    import ast

    return any(
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and (call.func.attr == "exception" or any(k.arg == "exc_info" for k in call.keywords))
        for call in ast.walk(node)
    )


def test_every_error_reported_to_the_ui_logs_its_traceback():
    """Every except block of the worker that reports an error (a signal, or a failed file job)
    also logs the traceback. Old behaviour caught: eight blocks showed str(e) and logged
    nothing, so a user's report could not be traced to a line."""
    import ast
    import inspect

    import app.worker as worker

    tree = ast.parse(inspect.getsource(worker))
    functions = {f.name: f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}
    assert _logs_traceback(functions["_fail_job"])
    reporting = [
        handler
        for handler in ast.walk(tree)
        if isinstance(handler, ast.ExceptHandler)
        and not (isinstance(handler.type, ast.Name) and handler.type.id == "StopIteration")
        and any(
            isinstance(c, ast.Call)
            and isinstance(c.func, ast.Attribute)
            and c.func.attr in ("emit", "_fail_job")
            for c in ast.walk(handler)
        )
    ]
    assert len(reporting) >= 10
    silent = [h.lineno for h in reporting if not _logs_traceback(h) and not any(
        isinstance(c, ast.Attribute) and c.attr == "_fail_job" for c in ast.walk(h))]  # fmt: skip
    assert silent == [], f"app/worker.py lines {silent} report an error without its traceback"


def test_a_reported_error_leaves_its_traceback_in_the_log(qtbot, start, caplog):
    def no_portaudio():
        raise OSError("PortAudio library not found; install libportaudio2")

    caplog.set_level(logging.DEBUG, logger="tingxie.app.worker")
    handle = start(_fake_engine(list_devices=no_portaudio))
    error = emitted(qtbot, handle.worker.error, handle.list_devices.emit)
    assert error[0] == "microphone"
    assert str(error[1]) == "PortAudio library not found; install libportaudio2"
    (record,) = [r for r in caplog.records if r.exc_info]
    assert isinstance(record.exc_info[1], OSError) and record.exc_info[2] is not None


@pytest.mark.parametrize("real_engine", [True, False])
def test_the_window_imports_the_runtime_ahead_on_the_engine_thread(
    qtbot, tmp_path, monkeypatch, real_engine
):
    """build_window queues engine.model.import_runtime for the remembered model and runtime to
    the engine thread (not a thread of its own: transformers is not safe to import from two),
    before the window is built; the tests' stand-in engines get no such head start."""
    from app_fakes import FakePlayer
    from PySide6.QtCore import QThread

    from app import settings
    from app.main import build_window
    from engine.library.store import Store

    calls = []

    def record(source, backend="auto"):
        calls.append((source, backend, QThread.currentThread().objectName()))

    monkeypatch.setattr("engine.model.import_runtime", record)
    store = settings.open_settings(tmp_path / "settings.ini")
    settings.save(store, settings.Preferences(model="/models/mine", backend="onnx"))
    with Store(tmp_path / "library.db") as library:
        engine = None if real_engine else Engine()
        window = build_window(store, engine, library=library, player=FakePlayer())
        qtbot.addWidget(window)
        if real_engine:
            qtbot.waitUntil(lambda: bool(calls), timeout=5_000)
            assert calls == [("/models/mine", "onnx", "tingxie-engine")]
        else:
            qtbot.wait(200)
            assert calls == []
        window.close()


def test_the_live_stream_tells_when_it_falls_behind_and_catches_up(qtbot):
    """Audio that piled up while the previous push computed is how late the live text is:
    told once past 2 s, then once when back under 0.5 s, and at stop if still behind."""
    worker = EngineWorker(None)
    pushed: list[int] = []

    class Live:
        def push(self, samples):
            pushed.append(len(samples))
            return []

        def finish(self):
            return []

        def reset(self):
            pass

    told: list[float] = []
    worker.live_behind.connect(told.append)
    worker._live = Live()

    def drain(seconds: float) -> None:
        worker._audio.put(np.zeros(round(seconds * 16_000), np.float32))
        worker._drain_audio()

    for seconds in (0.05, 1.0, 2.5, 3.0, 1.0, 0.4, 0.05, 2.2):
        drain(seconds)
    assert told == [2.5, 0.0, 2.2]
    assert sum(pushed) == round(10.2 * 16_000)  # every sample reaches the stream

    class Recorder:
        def stop(self):
            return "take.wav"

    worker._recorder = Recorder()
    worker.stop_recording()  # still behind: the stream's finish() takes the rest
    assert told == [2.5, 0.0, 2.2, 0.0]
