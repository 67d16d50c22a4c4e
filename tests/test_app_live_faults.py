"""Recording while the worker is busy or the window closes, recordings folders that cannot be
written, a microphone back under a new ALSA card number, undo per transcript, and what a stopped
recording reports (its info, why it has no live text): the faults bug hunters reproduced in the
live path (each test failed on the code before its fix)."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import test_app_window
from app_fakes import FakeDevice, FakePlayer, emitted, recorder_factory, tone
from PySide6.QtCore import Qt
from test_app_window import _engine, _FakeStreamer
from test_recorder import FakeSoundDevice, FakeStream, device

from app import settings
from app.errors import error_text
from app.i18n import tr
from app.main import build_window
from app.window import LIVE
from app.worker import EngineWorker, WorkerHandle
from engine import recorder as rec
from engine.library.store import Store, default_path
from engine.model import ModelLoadError


@pytest.fixture(autouse=True)
def _ui_as_the_tests_expect(monkeypatch):
    """No Whisper-base or demo model standing in (the tests choose the models), and the
    default language (Chinese) again after each test."""
    monkeypatch.setattr("app.demo.whisper_model_dir", lambda: None)
    monkeypatch.setattr("app.demo.demo_model_dir", lambda: None)
    yield
    from app import i18n

    i18n.set_language("zh")


# The window tests' own fixtures, shared rather than copied (bound by name, as pytest finds them).
dialogs = test_app_window.dialogs
library = test_app_window.library


@pytest.fixture
def make_window(qtbot, tmp_path, dialogs):
    """make_window(engine, library=…, **prefs); library None: the window opens the user's
    own (in $TINGXIE_DATA_DIR) and closes it when it closes, as the app's does."""

    def make(engine, library: Store | None = None, **prefs):
        store = settings.open_settings(tmp_path / "settings.ini")
        if prefs:
            settings.save(store, replace(settings.load(store), **prefs))
        store.setValue("recordings_dir", str(tmp_path / "recordings"))
        window = build_window(store, engine, library=library, player=FakePlayer())
        qtbot.addWidget(window)
        window.show()
        return window

    return make


class _Held:
    """A model load that waits until `release()` (a download, a large checkpoint)."""

    def __init__(self) -> None:
        self.begun, self._release = threading.Event(), threading.Event()

    def __call__(self, source, tqdm):
        self.begun.set()
        self._release.wait(60)
        return object()

    def release(self) -> None:
        self._release.set()


def _no_model(source, tqdm):
    raise ModelLoadError(
        "model.not_cached", source=source, detail="LocalEntryNotFoundError", cache="/hf/hub"
    )


# ---- closing the window while recording -----------------------------------------------------


def test_closing_while_recording_keeps_the_live_transcript_in_the_library(
    qtbot, make_window, dialogs, monkeypatch, tmp_path
):
    """The worker's recording_saved came after closeEvent had closed the library: the live
    transcript was lost, with a "Cannot operate on a closed database" dialog."""
    monkeypatch.setenv("TINGXIE_DATA_DIR", str(tmp_path / "data"))
    make = recorder_factory(signal=tone(2.0), realtime=0.2)
    window = make_window(_engine(recorder=make))  # the window's own library
    emitted(qtbot, window.worker.model_loaded, window.start)
    window.record_action.trigger()
    qtbot.waitUntil(lambda: bool(make.made) and make.made[0].fed(), timeout=10_000)
    qtbot.waitUntil(lambda: "字" in window.transcript.toPlainText(), timeout=10_000)
    window.close()
    qtbot.wait(100)  # whatever the worker sent late would arrive now
    assert dialogs == []
    with Store(default_path()) as kept:
        (row,) = kept.list_transcripts()
        assert "字" in "".join(s.text for s in kept.segments(row.id))
        assert kept.audio_path(row.id) == make.made[0].path.resolve()
    assert rec.find_unfinished(tmp_path / "recordings") == []  # nothing to offer back


def test_a_recording_not_transcribed_before_closing_is_offered_back_at_the_next_start(
    qtbot, make_window, library, tmp_path
):
    """Recorded with no model: its file was queued for one, the close cancelled that, and
    nothing offered it again. Now the next start finds it as it finds a crashed recording."""
    make = recorder_factory(signal=tone(1.0))
    window = make_window(_engine(load_model=_no_model, recorder=make), library=library)
    emitted(qtbot, window.worker.model_failed, window.start)
    window.record_action.trigger()
    qtbot.waitUntil(lambda: bool(make.made) and make.made[0].fed(), timeout=10_000)
    emitted(qtbot, window.worker.recording_saved, window.stop_action.trigger)
    window.close()
    assert library.list_transcripts() == []
    assert rec.find_unfinished(tmp_path / "recordings") == [make.made[0].path]


# ---- Record, Pause and Stop while the worker is busy ---------------------------------------


def test_record_during_a_model_load_starts_at_once_and_the_text_catches_up(qtbot, make_window):
    """Record pressed while the model loaded was queued behind the load: nothing was recorded
    (and nothing said) until it ended. Now capture begins at once; the live stream of the
    model takes every sample once it is loaded."""
    held, streamer = _Held(), _FakeStreamer()
    signal = tone(1.0)
    make = recorder_factory(signal=signal)
    window = make_window(_engine(load_model=held, recorder=make, streamer=lambda t: streamer))
    loaded = []
    window.worker.model_loaded.connect(lambda summary: loaded.append(summary))
    window.start()
    qtbot.waitUntil(held.begun.is_set)
    try:
        window.record_action.trigger()
        assert window.stop_action.isEnabled() and not window.record_action.isEnabled()
        assert len(make.made) == 1  # the microphone is open, the model still loading
        qtbot.waitUntil(make.made[0].fed, timeout=10_000)
    finally:
        held.release()
    qtbot.waitUntil(lambda: bool(loaded), timeout=10_000)
    _, how, _ = emitted(qtbot, window.worker.recording_saved, window.stop_action.trigger)
    assert how == "live" and streamer.received == len(signal)
    assert "字" in window.documents[LIVE].segments[0].text


def test_stop_and_pause_during_a_model_load_take_effect_at_once(qtbot, make_window):
    """Stop pressed while another model loaded: the microphone went on until the load ended,
    and what it heard after Stop was saved in the recording. Pause waited the same way."""
    held = _Held()
    loads = iter([lambda s, t: object(), held])
    signal = tone(30.0)
    make = recorder_factory(signal=signal, realtime=1.0)
    window = make_window(_engine(load_model=lambda s, t: next(loads)(s, t), recorder=make))
    emitted(qtbot, window.worker.model_loaded, window.start)
    window.record_action.trigger()
    qtbot.waitUntil(lambda: bool(make.made), timeout=10_000)
    recorder = make.made[0]
    paused, saved = [], []
    recorder.pause = lambda: paused.append(True)
    window.worker.recording_saved.connect(lambda path, live: saved.append(path))
    window.load_model("another/model")
    qtbot.waitUntil(held.begun.is_set)
    try:
        window.pause_action.trigger()
        assert paused == [True]
        window.stop_action.trigger()
        assert recorder._stop.is_set() and recorder.path.is_file()  # stopped, file complete
        assert not window.stop_action.isEnabled() and not window.pause_action.isEnabled()
    finally:
        held.release()
    qtbot.waitUntil(window.record_action.isEnabled, timeout=10_000)  # once saved
    assert len(sf.read(saved[0])[0]) < len(signal)  # not the audio after Stop


# ---- recordings folders that cannot be written ---------------------------------------------


@pytest.fixture
def fake_sd(monkeypatch):
    fake = FakeSoundDevice([device("USB mic", 1, rate=16_000.0)])
    monkeypatch.setattr(rec, "sd", fake)
    FakeStream.made.clear()
    return fake


def _open_files_under(folder: Path) -> list[str]:
    """The files this process holds open in `folder` (Linux)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed since
            held.append(os.readlink(f"/proc/self/fd/{fd}"))
    return [path for path in held if path.startswith(str(folder))]


def test_a_read_only_recordings_folder_is_named_not_blamed_on_the_microphone(
    qtbot, fake_sd, tmp_path, lock_folder
):
    """It came as the raw "[Errno 30] Read-only file system: …" under "Microphone problem"."""
    read_only_folder = lock_folder(tmp_path / "read-only")
    handle = WorkerHandle(EngineWorker())  # the engine's own Recorder, on the fake PortAudio
    handle.start()
    try:
        kind, error = emitted(
            qtbot, handle.worker.error, lambda: handle.start_recording.emit(str(read_only_folder))
        )
    finally:
        handle.stop()
    assert kind != "microphone" and error.code == "recording.folder"
    assert str(read_only_folder) in error_text(error) and "Errno" not in error_text(error)
    assert list(read_only_folder.iterdir()) == [] and FakeStream.made[-1].closed


def test_a_full_disk_at_start_leaves_no_empty_recording(fake_sd, small_disk):
    """A 0-byte WAV was left behind, and the error was the raw errno."""
    folder = small_disk(4096)
    (folder / "filler").write_bytes(b"x" * 4096)  # the one page there is
    assert os.statvfs(folder).f_bavail == 0
    with pytest.raises(rec.MicrophoneError) as raised:
        rec.Recorder(folder / "a.wav").start()
    assert raised.value.code == "recording.folder" and raised.value.params["path"] == folder
    assert sorted(p.name for p in folder.iterdir()) == ["filler"]
    assert FakeStream.made[-1].closed and _open_files_under(folder) == []


def test_a_marker_that_cannot_be_written_leaves_nothing_open_or_behind(fake_sd, small_disk):
    """Room for the WAV's first page, none for its marker: the stream and the WAV stayed open,
    and a 44-byte WAV and an empty marker were left on the disk."""
    folder = small_disk(8192)
    (folder / "filler").write_bytes(b"x" * 4096)
    with pytest.raises(rec.MicrophoneError) as raised:
        rec.Recorder(folder / "a.wav").start()
    assert raised.value.code == "recording.folder"
    assert sorted(p.name for p in folder.iterdir()) == ["filler"]
    assert FakeStream.made[-1].closed and _open_files_under(folder) == []
    assert rec.find_unfinished(folder) == []


def test_a_disk_filling_mid_recording_is_not_blamed_on_the_microphone(qtbot, tmp_path):
    full = rec.MicrophoneError(
        "recording.write_failed_kept", path=tmp_path / "a.wav", detail="No space", seconds=0.5
    )
    make = recorder_factory(signal=tone(0.5), lose_device=full)
    handle = WorkerHandle(EngineWorker(_engine(recorder=make, streamer=lambda t: None)))
    handle.start()
    try:
        errors = []
        handle.worker.error.connect(lambda kind, error: errors.append((kind, error)))
        emitted(
            qtbot,
            handle.worker.recording_saved,
            lambda: handle.start_recording.emit(str(tmp_path)),
        )
    finally:
        handle.stop()
    assert errors == [("recordings", full)]


# ---- a microphone back under a new ALSA card number ----------------------------------------

OLD = "USB PnP Sound Device: Audio (hw:2,0)"
NEW = "USB PnP Sound Device: Audio (hw:3,0)"


def test_a_saved_microphone_is_found_under_its_new_card_number(monkeypatch, tmp_path):
    listed = [device("HDA Intel PCH: ALC257 Analog (hw:0,0)", 2), device(NEW, 1)]
    monkeypatch.setattr(rec, "sd", FakeSoundDevice(listed))
    FakeStream.made.clear()
    recorder = rec.Recorder(tmp_path / "a.wav", device=OLD)
    recorder.start()
    recorder.stop()
    assert recorder.device.name == NEW and FakeStream.made[-1].device == 1


@pytest.mark.parametrize(
    ("saved", "shown", "recorded_from"),
    [(OLD, NEW, NEW), ("Headset", "", None)],
    ids=["card-number-changed", "not-connected"],
)
def test_the_device_box_shows_what_record_records_from(
    qtbot, make_window, library, saved, shown, recorded_from
):
    """The box showed "System default" for a saved microphone it did not find by its exact
    name, while Record tried that name and failed as not connected."""
    make = recorder_factory(signal=tone(0.2))
    devices = [FakeDevice("HDA Intel PCH: ALC257 Analog (hw:0,0)"), FakeDevice(NEW, 1)]
    engine = _engine(recorder=make, list_devices=lambda: devices)
    window = make_window(engine, library=library, input_device=saved)
    emitted(qtbot, window.worker.model_loaded, window.start)
    qtbot.waitUntil(lambda: window.device_box.count() == 3)
    assert window.device_box.currentData() == shown
    window.record_action.trigger()
    qtbot.waitUntil(lambda: bool(make.made), timeout=10_000)
    assert make.made[0].device == recorded_from
    emitted(qtbot, window.worker.recording_saved, window.stop_action.trigger)
    assert window.prefs.input_device == saved  # the user's choice stays for when it is back


# ---- undo on the transcript shown only -----------------------------------------------------


def test_ctrl_z_undoes_only_in_the_transcript_shown(qtbot, make_window, library):
    """One undo stack served every transcript: Ctrl+Z on one undid a speaker renamed in
    another, unseen (there and in the library)."""
    window = make_window(_engine(), library=library)
    emitted(qtbot, window.worker.model_loaded, window.start)
    ready = []
    window.transcript_ready.connect(lambda *args: ready.append(args))
    first, second = window.add_files(["/data/a.wav", "/data/b.wav"])
    qtbot.waitUntil(lambda: len(ready) == 2, timeout=10_000)
    tid = window.documents[second].tid
    assert window.review_panel.session.tid != tid  # renamed on this page, not on Review
    window.show_document(second)
    window.rename_speaker(1, "王")
    window.show_document(first)
    window.transcript.setFocus()
    qtbot.keyClick(window.transcript, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert library.speaker_names(tid) == {1: "王"}
    assert window.documents[second].speaker_names == {1: "王"}
    window.show_document(second)  # its history is still there
    qtbot.keyClick(window.transcript, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert library.speaker_names(tid) == {} and window.documents[second].speaker_names == {}


# ---- what a stopped recording reports -------------------------------------------------------


def test_a_live_transcript_is_stored_and_saved_with_its_recordings_info(
    qtbot, make_window, library, tiny_model_dir, monkeypatch, tmp_path
):
    """The live transcript had no TranscriptionInfo: the library took its last character's end
    for its length (a 91.8 s recording ending in silence listed as 20.66 s), kept no info, and
    Save wrote "info": null. Now it has the recording's, as a file transcript has."""
    signal = np.concatenate([tone(1.0), np.zeros(4 * 16_000, np.float32)])  # silence after
    make = recorder_factory(signal=signal, realtime=0.1)
    # The real model and transcriber; the live text (_FakeStreamer's) ends at 1.0 s.
    engine = _engine(load_model=None, transcriber=None, recorder=make)
    window = make_window(engine, library=library, model=str(tiny_model_dir), model_chosen=True)
    emitted(qtbot, window.worker.model_loaded, window.start)
    window.record_action.trigger()
    qtbot.waitUntil(lambda: bool(make.made) and make.made[0].fed(), timeout=10_000)
    path = emitted(qtbot, window.worker.recording_saved, window.stop_action.trigger)[0]
    qtbot.waitUntil(lambda: len(library.list_transcripts()) == 1, timeout=10_000)
    seconds = len(signal) / 16_000
    (row,) = library.list_transcripts()
    assert row.duration == pytest.approx(seconds)
    info = library.info(row.id)
    assert info is not None and info.source == path and info.model == str(tiny_model_dir)
    target = tmp_path / "live.json"
    monkeypatch.setattr(
        "app.savedialog.QFileDialog.getSaveFileName",
        lambda *a, **k: (str(target), "JSON (*.json)"),
    )
    window.save_action.trigger()
    saved = json.loads(target.read_text(encoding="utf-8"))
    assert saved["info"]["source"] == path
    assert saved["info"]["duration"] == pytest.approx(seconds)


class _FailingStreamer:
    """A live stream whose model fails mid-recording (out of GPU memory)."""

    def push(self, samples):
        raise RuntimeError("CUDA out of memory")

    def finish(self):
        return []

    def reset(self):
        pass


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_recording_whose_live_text_failed_does_not_blame_a_missing_model(
    qtbot, make_window, library, dialogs, language
):
    """With a model loaded, the live stream failed: after Stop the status bar said no model was
    loaded while recording (status.saved_untranscribed). It says the live text failed and the
    file is being transcribed, and the file is queued for that."""
    make = recorder_factory(signal=tone(1.0), realtime=0.1)
    engine = _engine(recorder=make, streamer=lambda t: _FailingStreamer())
    window = make_window(engine, library=library, language=language)
    emitted(qtbot, window.worker.model_loaded, window.start)
    window.record_action.trigger()
    qtbot.waitUntil(lambda: bool(make.made) and make.made[0].fed(), timeout=10_000)
    path = emitted(qtbot, window.worker.recording_saved, window.stop_action.trigger)[0]
    message = window.statusBar().currentMessage()
    assert message != tr("status.saved_untranscribed", path=path)
    assert message == tr("status.saved_live_failed", path=path) and path in message
    (job,) = window.queue.job_ids()
    assert window.queue.path(job) == path  # transcribed from its file
    qtbot.waitUntil(lambda: len(library.list_transcripts()) == 1, timeout=10_000)
