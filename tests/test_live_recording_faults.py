"""The live microphone path's faults a bug hunt found (each test failed on the code before its
fix): a microphone lost during a model load told only once the load ended, a failed live stream
handing its left-over audio to the next recording, the recordings folder's start-up errors
titled "Microphone problem", and Stop saying "saved" before the worker had said so."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf
import test_app_live_faults
import test_app_window
import test_app_worker
from app_fakes import emitted, recorder_factory, tone
from PySide6.QtCore import QObject, Slot
from test_app_live_faults import _Held
from test_app_window import _engine

from app.i18n import tr
from app.worker import WorkerHandle
from engine.errors import TingxieError
from engine.recorder import MicrophoneError

# Shared fixtures, bound by name as pytest finds them.
_ui_as_the_tests_expect = test_app_live_faults._ui_as_the_tests_expect
dialogs = test_app_window.dialogs
library = test_app_window.library
make_window = test_app_live_faults.make_window
started = test_app_worker.start  # started(engine) -> a running WorkerHandle


class _Heard(QObject):
    """What a signal sent, as this (the UI) thread hears it: a lambda's slot would run in
    the worker's thread, which the model load holds."""

    def __init__(self, signal) -> None:
        super().__init__()
        self.got: list[tuple] = []
        signal.connect(self.hear)

    @Slot()
    def hear(self, *args) -> None:
        self.got.append(args)


def _record(qtbot, handle: WorkerHandle, folder) -> None:
    start = lambda: handle.start_recording.emit(str(folder))  # noqa: E731
    emitted(qtbot, handle.worker.recording_started, start)


# ---- 1: a microphone lost while the worker loads a model -----------------------------------


def test_a_microphone_lost_during_a_model_load_is_told_and_stopped_at_once(
    qtbot, started, tmp_path
):
    """The loss was queued to the worker's thread: no error and no stop until the load ended
    (minutes on a download), while nothing was recorded. Now both come at once, and what was
    recorded before the loss is in the file."""
    held = _Held()
    signal = tone(1.0)
    lost = MicrophoneError("microphone.disappeared", device="USB Mic", path=tmp_path / "x.wav")
    make = recorder_factory(signal=signal, realtime=0.5, lose_device=lost)
    handle = started(_engine(load_model=held, recorder=make))
    errors, saved = _Heard(handle.worker.error), _Heard(handle.worker.recording_saved)
    _record(qtbot, handle, tmp_path)
    handle.load_model.emit("big/model")
    assert held.begun.wait(5)
    try:
        qtbot.waitUntil(make.made[0].fed, timeout=10_000)
        lost_at = time.monotonic()
        qtbot.waitUntil(lambda: bool(errors.got), timeout=1000)
        assert time.monotonic() - lost_at < 1.0
        assert errors.got == [("microphone", lost)] and make.made[0]._stop.is_set()
        assert saved.got == []  # the live stream's end waits for the load
    finally:
        held.release()
    qtbot.waitUntil(lambda: bool(saved.got), timeout=10_000)
    audio, _ = sf.read(saved.got[0][0], dtype="float32")
    assert len(audio) == len(signal)


def test_the_window_stops_recording_when_the_microphone_is_lost_during_a_load(
    qtbot, make_window, dialogs
):
    """The window said "Recording…", Stop enabled, until the load ended."""
    held = _Held()
    lost = MicrophoneError("microphone.disappeared", device="USB Mic", path="x.wav")
    make = recorder_factory(signal=tone(0.5), realtime=0.5, lose_device=lost)
    window = make_window(_engine(load_model=held, recorder=make))
    window.start()
    qtbot.waitUntil(held.begun.is_set)
    try:
        window.record_action.trigger()
        qtbot.waitUntil(make.made[0].fed, timeout=10_000)
        qtbot.waitUntil(lambda: not window.stop_action.isEnabled(), timeout=1000)
        path = str(make.made[0].path)
        assert window.statusBar().currentMessage() == tr("status.stopping", path=path)
        assert [title for title, _ in dialogs] == [tr("dialog.microphone")]
    finally:
        held.release()
    qtbot.waitUntil(window.record_action.isEnabled, timeout=10_000)


# ---- 2: a live stream that failed, then the next recording ---------------------------------


class _FailsOnce:
    """A live stream whose first push fails (out of GPU memory once); it counts what it took
    since its last reset, and what it held at each finish."""

    def __init__(self) -> None:
        self.pushes = self.received = 0
        self.finished_with: list[int] = []

    def push(self, samples):
        self.pushes += 1
        self.received += len(samples)
        if self.pushes == 1:
            raise RuntimeError("CUDA out of memory")
        return []

    def finish(self):
        self.finished_with.append(self.received)
        return []

    def reset(self):
        self.received = 0


def test_the_recording_after_a_failed_live_stream_starts_at_time_zero(qtbot, started, tmp_path):
    """The failed stream was never reset: the next recording's text began with the last one's
    audio, and each of its times was late by that much (review, subtitles, the library)."""
    streamer = _FailsOnce()
    signal = tone(0.5)
    make = recorder_factory(signal=signal)
    handle = started(_engine(recorder=make, streamer=lambda t: streamer))
    emitted(qtbot, handle.worker.model_loaded, lambda: handle.load_model.emit("fake"))
    hows = []
    for i in range(2):
        _record(qtbot, handle, tmp_path)
        qtbot.waitUntil(make.made[i].fed, timeout=10_000)
        _, how, _ = emitted(qtbot, handle.worker.recording_saved, handle.stop_recording.emit)
        hows.append(how)
    assert hows == ["live_failed", "live"]
    assert streamer.finished_with == [len(signal)]  # the second recording's audio, only it


# ---- 4: the recordings folder's start-up errors ---------------------------------------------


def _os_error(*args):
    raise OSError(13, "Permission denied")


def _unrepairable(path):
    raise MicrophoneError("recording.repair_failed", path=path, detail="read-only")


@pytest.mark.parametrize(
    ("engine", "ask", "code"),
    [
        (dict(find_unfinished=_os_error), "scan", "recording.scan_failed"),
        (dict(recover=_unrepairable), "recover", "recording.repair_failed"),
        (dict(recover=_os_error), "recover", "recording.recover_failed"),
    ],
    ids=["scan", "repair", "recover"],
)
def test_the_start_up_scan_and_recovery_do_not_blame_the_microphone(
    qtbot, started, tmp_path, engine, ask, code
):
    """They came under "Microphone problem" (kind "microphone")."""
    handle = started(_engine(**engine))
    if ask == "scan":
        send = lambda: handle.scan_unfinished.emit(str(tmp_path))  # noqa: E731
    else:
        send = lambda: handle.recover.emit([str(tmp_path / "recording-x.wav")])  # noqa: E731
    kind, error = emitted(qtbot, handle.worker.error, send)
    assert kind == "recordings" and isinstance(error, TingxieError) and error.code == code
    assert str(tmp_path) in str(error)


# ---- 5: what Stop says --------------------------------------------------------------------


def test_stop_says_saved_only_once_the_worker_saved_the_recording(qtbot, make_window):
    """Stop said "Recording saved to …" before the worker had said anything (it may yet say
    the file could not be written)."""
    make = recorder_factory(signal=tone(0.3))
    window = make_window(_engine(recorder=make))
    emitted(qtbot, window.worker.model_loaded, window.start)
    window.record_action.trigger()
    qtbot.waitUntil(lambda: bool(make.made) and make.made[0].fed(), timeout=10_000)
    path = str(make.made[0].path)
    said = []

    def stop() -> None:
        window.stop_action.trigger()
        said.append(window.statusBar().currentMessage())

    emitted(qtbot, window.worker.recording_saved, stop)
    assert said == [tr("status.stopping", path=path)]
    assert window.statusBar().currentMessage() == tr("status.saved", path=path)
    assert np.asarray(sf.read(path)[0]).size > 0
