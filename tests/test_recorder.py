"""Recorder: rate fallback, errors, pause, writing as captured, and recovery after a kill.

PortAudio is replaced by a fake whose stream the test drives block by block (or, in the kill
test, a subprocess feeds in real time); the real PortAudio path is in test_e2e_microphone.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import sounddevice as sd
import soundfile as sf

from engine import recorder as rec
from engine.audio import load_audio

SR = 16_000


def known_signal(n: int, rate: int = SR, start: int = 0) -> np.ndarray:
    """A deterministic, non-periodic-looking test signal: sample i depends only on i."""
    t = (np.arange(start, start + n) / rate).astype(np.float64)
    return (0.4 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 37 * t**1.5)).astype(
        np.float32
    )


class FakeStream:
    """An sd.InputStream whose audio the test pushes with `feed` (or a thread, realtime)."""

    made: ClassVar[list[FakeStream]] = []

    def __init__(self, samplerate, device, channels, dtype, callback, finished_callback):
        self.samplerate, self.device, self.channels = samplerate, device, channels
        self.callback, self.finished_callback = callback, finished_callback
        self.fed = 0
        self.started = self.closed = False
        FakeStream.made.append(self)

    def start(self):
        self.started = True

    def stop(self):
        self.started = False

    def close(self):
        self.closed = True

    def feed(self, seconds: float, block: int = 1024) -> np.ndarray:
        """Deliver `seconds` of the known signal (at the stream's rate and channels)."""
        n = round(seconds * self.samplerate)
        mono = known_signal(n, self.samplerate, self.fed)
        data = np.repeat(mono[:, None], self.channels, axis=1)
        for i in range(0, n, block):
            self.callback(data[i : i + block], len(data[i : i + block]), None, None)
        self.fed += n
        return mono

    def lose_device(self):
        self.finished_callback()


class FakeSoundDevice:
    """What engine.recorder uses of sounddevice: devices, settings check, streams."""

    def __init__(self, devices, *, accepts=None, open_error=None, default=0):
        self.devices = devices
        self.accepts = accepts  # predicate (rate, channels) -> bool; None: anything
        self.open_error = open_error
        self.default = type("Default", (), {"device": [default, default]})()

    def query_devices(self):
        return self.devices

    def check_input_settings(self, device, samplerate, channels, dtype):
        if self.accepts is not None and not self.accepts(samplerate, channels):
            raise sd.PortAudioError("Invalid sample rate [PaErrorCode -9997]")

    def InputStream(self, **kwargs):
        if self.open_error is not None:
            raise self.open_error
        return FakeStream(**kwargs)

    PortAudioError = sd.PortAudioError


def device(name, inputs=2, rate=48_000.0):
    return {
        "name": name,
        "hostapi": 0,
        "max_input_channels": inputs,
        "max_output_channels": 2,
        "default_samplerate": rate,
    }


@pytest.fixture
def fake_sd(monkeypatch):
    def install(*devices, **kwargs) -> FakeSoundDevice:
        fake = FakeSoundDevice(list(devices), **kwargs)
        monkeypatch.setattr(rec, "sd", fake)
        FakeStream.made.clear()
        return fake

    return install


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.01)


def frames_on_disk(path: Path) -> int:
    try:
        return sf.info(path).frames
    except sf.LibsndfileError:  # header not written yet
        return 0


def test_device_list_has_inputs_only_and_a_default(fake_sd):
    fake_sd(device("Speakers", inputs=0), device("USB mic", 1), device("Webcam", 2), default=2)
    devices = rec.list_input_devices()
    assert [(d.index, d.name, d.is_default) for d in devices] == [
        (1, "USB mic", False),
        (2, "Webcam", True),
    ]
    assert rec.default_input_device().name == "Webcam"


def test_no_microphone_is_a_clear_error(fake_sd, tmp_path):
    fake_sd(device("Speakers", inputs=0))
    assert rec.default_input_device() is None
    with pytest.raises(rec.MicrophoneError, match="no microphone found; connect one"):
        rec.Recorder(tmp_path / "a.wav").start()
    assert not (tmp_path / "a.wav").exists()


def test_unknown_device_names_the_choices(fake_sd, tmp_path):
    fake_sd(device("USB mic", 1))
    with pytest.raises(rec.MicrophoneError, match=r"'Headset' is not connected.*USB mic"):
        rec.Recorder(tmp_path / "a.wav", device="Headset").start()


def test_permission_denied_is_a_clear_error(fake_sd, tmp_path):
    fake_sd(device("USB mic", 1), open_error=sd.PortAudioError("Device unavailable [-9985]"))
    with pytest.raises(rec.MicrophoneError, match=r"refused access.*allow this app"):
        rec.Recorder(tmp_path / "a.wav").start()


def test_an_existing_file_is_never_overwritten(fake_sd, tmp_path):
    fake_sd(device("USB mic", 1, rate=16_000.0))
    (tmp_path / "a.wav").write_bytes(b"earlier recording")
    with pytest.raises(FileExistsError):
        rec.Recorder(tmp_path / "a.wav").start()
    assert (tmp_path / "a.wav").read_bytes() == b"earlier recording"
    assert FakeStream.made[-1].closed


def test_records_16k_directly_and_streams_the_same_audio(fake_sd, tmp_path):
    fake_sd(device("USB mic", 1, rate=16_000.0))
    got = []
    r = rec.Recorder(tmp_path / "a.wav", on_audio=got.append)
    r.start()
    stream = FakeStream.made[-1]
    assert (stream.samplerate, stream.channels) == (SR, 1)
    sent = stream.feed(1.5)
    assert r.stop() == tmp_path / "a.wav"
    audio, rate = sf.read(tmp_path / "a.wav", dtype="float32")
    assert rate == SR and len(audio) == len(sent)
    np.testing.assert_allclose(audio, sent, atol=1 / 16000)
    np.testing.assert_array_equal(np.concatenate(got), audio)  # what the file holds
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in got)
    assert rec.find_unfinished(tmp_path) == []  # a clean stop leaves no marker
    assert stream.closed


def test_falls_back_to_the_native_rate_and_resamples(fake_sd, tmp_path):
    fake_sd(device("Built-in", 2, rate=48_000.0), accepts=lambda rate, ch: rate == 48_000)
    r = rec.Recorder(tmp_path / "a.wav", device="Built-in")
    r.start()
    stream = FakeStream.made[-1]
    assert stream.samplerate == 48_000 and r.sample_rate == 48_000
    stream.feed(2.0)
    r.stop()
    audio, rate = sf.read(tmp_path / "a.wav", dtype="float32")
    assert rate == SR
    assert abs(len(audio) - 2 * SR) <= 2
    expected = known_signal(2 * SR)
    middle = slice(SR // 4, -SR // 4)  # away from the resampler's edges
    np.testing.assert_allclose(audio[middle], expected[middle], atol=0.02)


def test_stereo_only_device_is_mixed_down(fake_sd, tmp_path):
    fake_sd(device("Line in", 2, rate=44_100.0), accepts=lambda rate, ch: (rate, ch) == (44_100, 2))
    r = rec.Recorder(tmp_path / "a.wav")
    r.start()
    stream = FakeStream.made[-1]
    assert (stream.samplerate, stream.channels) == (44_100, 2)
    stream.feed(1.0)
    r.stop()
    audio, rate = sf.read(tmp_path / "a.wav", dtype="float32")
    assert rate == SR and audio.ndim == 1 and abs(len(audio) - SR) <= 2
    middle = slice(SR // 4, -SR // 4)
    np.testing.assert_allclose(audio[middle], known_signal(SR)[middle], atol=0.02)


@pytest.mark.parametrize("rate", [16_000, 48_000])
def test_live_audio_is_the_files_audio_sample_for_sample(fake_sd, tmp_path, rate):
    """`on_audio` gets the samples transcribing the file reads back (16-bit / 32768), not the
    float32 the file was rounded from: live text and the file's text come from the same audio.
    (Before: up to 1/30000 apart, enough to move a pause or a character.)"""
    fake_sd(device("USB mic", 1, rate=float(rate)), accepts=lambda r, ch: r == rate)
    got = []
    r = rec.Recorder(tmp_path / "a.wav", on_audio=got.append)
    r.start()
    FakeStream.made[-1].feed(1.0)
    r.stop()
    live = np.concatenate(got)
    assert live.dtype == np.float32 and abs(len(live) - SR) <= 2
    np.testing.assert_array_equal(live, load_audio(tmp_path / "a.wav"))


def test_a_device_that_takes_only_its_own_channel_count_is_mixed_down(fake_sd, tmp_path):
    """A microphone array (ReSpeaker-style) opens with all its 6 channels or not at all.
    (Before: only 1 or 2 channels were tried, and it could not be opened.)"""
    name = "ReSpeaker 4 Mic Array (UAC1.0): USB Audio (hw:2,0)"
    fake_sd(device(name, 6, rate=16_000.0), accepts=lambda rate, ch: ch == 6)
    r = rec.Recorder(tmp_path / "a.wav")
    r.start()
    stream = FakeStream.made[-1]
    assert (stream.samplerate, stream.channels) == (SR, 6)
    sent = stream.feed(1.0)
    r.stop()
    audio, rate = sf.read(tmp_path / "a.wav", dtype="float32")
    assert rate == SR and audio.ndim == 1
    np.testing.assert_allclose(audio, sent, atol=1 / 16000)


def test_a_failing_listener_does_not_stop_the_recording(fake_sd, tmp_path):
    fake_sd(device("USB mic", 1, rate=16_000.0))

    def broken(block):
        raise ZeroDivisionError("listener bug")

    r = rec.Recorder(tmp_path / "a.wav", on_audio=broken)
    r.start()
    sent = FakeStream.made[-1].feed(1.0)
    r.stop()
    assert r.error is None
    assert sf.info(tmp_path / "a.wav").frames == len(sent)


def test_pause_drops_audio_until_resume(fake_sd, tmp_path):
    fake_sd(device("USB mic", 1, rate=16_000.0))
    r = rec.Recorder(tmp_path / "a.wav")
    r.start()
    stream = FakeStream.made[-1]
    first = stream.feed(1.0)
    r.pause()
    assert r.paused
    stream.feed(0.5)
    r.resume()
    last = stream.feed(1.0)
    r.stop()
    audio, _ = sf.read(tmp_path / "a.wav", dtype="float32")
    np.testing.assert_allclose(audio, np.concatenate([first, last]), atol=1 / 16000)


def test_audio_is_on_disk_while_recording(fake_sd, tmp_path):
    fake_sd(device("USB mic", 1, rate=16_000.0))
    r = rec.Recorder(tmp_path / "a.wav")
    r.start()
    stream = FakeStream.made[-1]
    sent = stream.feed(2.2)
    # a reader (or a crash) sees a valid WAV at most SYNC_SECONDS behind the microphone
    wait_for(lambda: frames_on_disk(tmp_path / "a.wav") >= len(sent) - rec.SYNC_SECONDS * SR)
    marker = json.loads((tmp_path / "a.wav.recording").read_text())
    assert marker["pid"] == os.getpid()
    assert rec.find_unfinished(tmp_path) == []  # still being recorded by this process
    r.stop()
    assert not (tmp_path / "a.wav.recording").exists()


def test_device_lost_mid_recording_keeps_the_audio(fake_sd, tmp_path):
    fake_sd(device("USB mic", 1, rate=16_000.0))
    errors = []
    r = rec.Recorder(tmp_path / "a.wav", on_error=errors.append)
    r.start()
    stream = FakeStream.made[-1]
    sent = stream.feed(1.0)
    stream.lose_device()
    wait_for(lambda: errors)
    with pytest.raises(rec.MicrophoneError, match=r"disappeared mid-recording.*saved in"):
        r.stop()
    assert errors[0] is r.error
    audio, _ = sf.read(tmp_path / "a.wav", dtype="float32")
    np.testing.assert_allclose(audio, sent, atol=1 / 16000)
    # the app saves and transcribes it now: the next start must not offer it back
    assert rec.find_unfinished(tmp_path) == []


def test_disk_full_mid_recording_keeps_what_was_written_and_says_how_much(fake_sd, small_disk):
    """On a 128 KiB filesystem a 16 kHz recording fills the disk after ~4 s. The WAV keeps every
    whole sample that reached the disk, its header says exactly that, and the error says how
    many seconds were kept. (Before: the header claimed every sample counted, longer than the
    data, and the message did not say what was kept.)"""
    folder = small_disk(128 * 1024)
    fake_sd(device("USB mic", 1, rate=16_000.0))
    errors = []
    r = rec.Recorder(folder / "a.wav", on_error=errors.append)
    r.start()
    sent = FakeStream.made[-1].feed(10.0)
    wait_for(lambda: errors)
    with pytest.raises(rec.MicrophoneError):
        r.stop()
    audio, rate = sf.read(folder / "a.wav", dtype="float32")
    kept = len(audio) / rate
    assert 3.0 < kept < 4.1  # 128 KiB at 32 kB/s, less the header and the page rounding
    assert f"the first {kept:.1f} s are saved" in str(errors[0])
    assert "free some space" in str(errors[0])
    assert np.allclose(audio, sent[: len(audio)], atol=1 / 32767)
    assert (folder / "a.wav").stat().st_size == 44 + 2 * len(audio)


def test_silent_device_counts_as_lost(fake_sd, tmp_path, monkeypatch):
    monkeypatch.setattr(rec, "LOST_AFTER_SECONDS", 0.2)
    monkeypatch.setattr(rec, "FIRST_BLOCK_SECONDS", 0.2)
    fake_sd(device("USB mic", 1, rate=16_000.0))
    r = rec.Recorder(tmp_path / "a.wav")
    r.start()
    FakeStream.made[-1].feed(0.3)
    wait_for(lambda: r.error is not None)
    assert "stopped delivering audio" in str(r.error)
    with pytest.raises(rec.MicrophoneError):
        r.stop()


def _recovers_whole(path: Path, sent: np.ndarray) -> None:
    """`path` is offered as unfinished, repaired, holds every sample of `sent`, and is no
    longer offered."""
    assert rec.find_unfinished(path.parent) == [path]
    assert rec.recover(path) == path
    audio, rate = sf.read(path, dtype="float32")
    assert rate == SR
    np.testing.assert_allclose(audio, sent, atol=1 / 16000)
    assert rec.find_unfinished(path.parent) == []


def test_recover_repairs_a_file_cut_mid_sample(tmp_path):
    path = tmp_path / "cut.wav"
    sent = known_signal(SR)
    w = rec._WavAppender(path)
    w.append(sent)
    w._fh.write(b"\x01")  # half a sample, as a kill mid-write leaves
    w._fh.flush()  # header still says 0 bytes: never synced
    (tmp_path / "cut.wav.recording").write_text(json.dumps({"pid": 2**22 + 12345}))
    _recovers_whole(path, sent)


def test_a_kill_before_the_first_block_leaves_nothing_to_offer(tmp_path):
    path = tmp_path / "early.wav"
    w = rec._WavAppender(path)  # the process dies here: nothing flushed by a close
    assert path.stat().st_size == 44  # a valid, empty WAV on disk already
    (tmp_path / "early.wav.recording").write_text(json.dumps({"pid": 2**22 + 12345}))
    assert rec.find_unfinished(tmp_path) == []  # offered at every start before, unrepairable
    assert os.listdir(tmp_path) == []
    w._fh.close()


def test_a_reused_pid_does_not_hide_a_crashed_recording(tmp_path):
    """After a crash and a reboot the marker's pid may name another process: its start time
    tells them apart."""
    path = tmp_path / "crashed.wav"
    w = rec._WavAppender(path)
    w.append(known_signal(SR))
    w.sync()
    w._fh.close()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = rec._process_started(other.pid)
        marker = tmp_path / "crashed.wav.recording"
        marker.write_text(json.dumps({"pid": other.pid, "started": started - 3600.0}))
        assert rec.find_unfinished(tmp_path) == [path]
        marker.write_text(json.dumps({"pid": other.pid, "started": started}))
        assert rec.find_unfinished(tmp_path) == []  # that process may still be recording
    finally:
        other.kill()
        other.wait()


def test_recover_leaves_alone_a_file_that_is_not_a_recording(tmp_path):
    """No WAV header and no marker: nothing says it is a recording, so nothing is rewritten."""
    path = tmp_path / "x.wav"
    path.write_bytes(b"not audio at all, just text")
    with pytest.raises(rec.MicrophoneError, match=r"x.wav: not a Tingxie recording"):
        rec.recover(path)
    assert path.read_bytes() == b"not audio at all, just text"


def _crashed(folder: Path, sent: np.ndarray) -> Path:
    """A recording whose process died (its marker names a dead one), `sent` in it."""
    path = folder / "recording-x.wav"
    w = rec._WavAppender(path)
    w.append(sent)
    w.sync()
    w._fh.close()
    (folder / "recording-x.wav.recording").write_text(json.dumps({"pid": 2**22 + 12345}))
    return path


def test_a_recording_whose_header_was_lost_is_recovered_whole(tmp_path):
    """Its header block zeroed by a crash: recover refused it as "not a Tingxie recording"
    and kept its marker, so every start offered it back and failed again. The header is
    rebuilt from the format the recorder writes, and every sample is kept."""
    sent = known_signal(SR)
    path = _crashed(tmp_path, sent)
    with open(path, "r+b") as fh:
        fh.write(bytes(44))
    _recovers_whole(path, sent)


def test_a_recording_that_cannot_be_repaired_now_is_kept_and_offered_again(tmp_path, monkeypatch):
    """A repair that fails (a read-only disk, another program holding the file) keeps the
    audio and the marker: the cause may pass, and the next start offers it again. The
    message says so and how to open the audio meanwhile."""
    path = _crashed(tmp_path, known_signal(SR))
    before = path.read_bytes()

    def read_only(fh, size):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(rec, "_fit_header", read_only)
    with pytest.raises(rec.MicrophoneError, match=r"audio is kept there.*offered again"):
        rec.recover(path)
    assert rec.find_unfinished(tmp_path) == [path]
    assert path.read_bytes() == before


# The kill test: a child process records from a fake stream fed in real time, reports how much
# it has fed, and is killed with SIGKILL; the parent recovers the file.
_CHILD = """
import sys, threading, time
sys.path.insert(0, {tests!r})
import numpy as np
import test_recorder as t
from engine import recorder as rec

fake = t.FakeSoundDevice([t.device("mic", 1, rate=16000.0)])
rec.sd = fake
r = rec.Recorder({path!r})
r.start()
stream = t.FakeStream.made[-1]
while True:
    stream.feed(0.1, block=1600)
    print("fed", stream.fed, flush=True)
    time.sleep(0.1)
"""


@pytest.mark.slow
def test_kill_mid_recording_loses_at_most_a_second(tmp_path):
    path = tmp_path / "killed.wav"
    code = _CHILD.format(tests=str(Path(__file__).parent), path=str(path))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    fed = 0
    timer = threading.Timer(60, child.kill)  # never hang the suite
    timer.start()
    try:
        for line in child.stdout:
            fed = int(line.split()[1])
            if fed >= 3 * SR:
                break
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        timer.cancel()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL and fed >= 3 * SR
    assert rec.find_unfinished(tmp_path) == [path]
    rec.recover(path)
    audio, rate = sf.read(path, dtype="float32")
    assert rate == SR
    assert len(audio) >= fed - SR, f"lost {(fed - len(audio)) / SR:.2f} s"
    np.testing.assert_allclose(audio, known_signal(len(audio)), atol=1 / 16000)
