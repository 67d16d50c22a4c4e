"""Recorder faults: the WAV size limit, an unexpected error in the writer thread, and a device
that stalls at a resampled rate. PortAudio is the fake of test_recorder.py."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import soundfile as sf
from test_recorder import FakeStream, device, fake_sd, wait_for  # noqa: F401 (a fixture)

from engine import recorder as rec

SR = 16_000
# A WAV header counts bytes in unsigned 32 bits, the RIFF size being the data's plus 36: at most
# this many 16-bit samples (~37.3 h at 16 kHz), worked out here apart from the recorder's own.
WAV_MAX_FRAMES = (2**32 - 1 - 36) // 2


def pcm(samples: np.ndarray) -> np.ndarray:
    """`samples` as a 16-bit WAV stores them."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")


def test_a_recording_at_the_wav_size_limit_stops_with_everything_kept(
    fake_sd,  # noqa: F811 (the fixture imported above)
    tmp_path,
):
    """At ~37.3 h the next sample would not fit the header: the recording stops with every
    sample that fits saved, and says why and where. The hours are faked by setting the count
    of samples written. (Before: the header overflowed (struct.error), the writer thread died
    unheard, audio piled up in memory, and stop() reported success, leaving the crash
    marker.)"""
    fake_sd(device("USB mic", 1, rate=16_000.0))
    path = tmp_path / "a.wav"
    errors, got = [], []
    r = rec.Recorder(path, on_audio=got.append, on_error=errors.append)
    r.start()
    stream = FakeStream.made[-1]
    first = stream.feed(1.0)
    wait_for(lambda: r.seconds == 1.0)  # the writer waits for the next block now
    room = SR // 2
    r._wav.frames = WAV_MAX_FRAMES - room  # as if ~37 hours were written
    second = stream.feed(1.0)
    wait_for(lambda: errors)
    wait_for(lambda: not r._writer.is_alive())
    waiting = r._queue.qsize()  # the rest of the block that filled it, never to be written
    stream.feed(1.0)  # the device goes on until the app stops it: none of it piles up
    assert r._queue.qsize() == waiting
    with pytest.raises(rec.MicrophoneError) as raised:
        r.stop()
    assert raised.value is errors[0] and raised.value.code == "recording.too_long"
    assert str(path) in str(raised.value) and "start a new recording" in str(raised.value)
    assert not (tmp_path / "a.wav.recording").exists()  # a complete WAV: nothing to recover
    data = path.read_bytes()
    riff, data_bytes = struct.unpack("<4xI32xI", data[:44])
    assert data_bytes == 2 * WAV_MAX_FRAMES and riff == 36 + data_bytes <= 2**32 - 1
    kept = np.concatenate([first, second[:room]])
    np.testing.assert_array_equal(np.frombuffer(data[44:], "<i2"), pcm(kept))
    assert sum(len(b) for b in got) == len(kept)  # nothing live that is not in the file


def test_an_unexpected_error_in_the_writer_reaches_on_error(
    fake_sd,  # noqa: F811 (the fixture imported above)
    tmp_path,
    monkeypatch,
):
    """A bug in the writer thread ends the recording with a message (the audio so far kept),
    never a thread that dies unheard while stop() reports success."""
    fake_sd(device("USB mic", 1, rate=16_000.0))
    path = tmp_path / "a.wav"
    errors = []
    r = rec.Recorder(path, on_error=errors.append)
    r.start()
    stream = FakeStream.made[-1]
    sent = stream.feed(1.0)
    wait_for(lambda: r.seconds == 1.0)

    def broken(block, last=False):
        raise ValueError("a bug")

    monkeypatch.setattr(r._resampler, "process", broken)
    stream.feed(0.5)
    wait_for(lambda: errors)
    with pytest.raises(rec.MicrophoneError, match=r"unexpected error.*a bug.*saved there"):
        r.stop()
    assert errors[0] is r.error and r.error.code == "recording.failed"
    audio, _ = sf.read(path, dtype="float32")
    np.testing.assert_allclose(audio, sent, atol=1 / 16000)
    assert not (tmp_path / "a.wav.recording").exists()


def test_recover_caps_a_file_past_the_wav_size_limit(tmp_path):
    """A recording an earlier version wrote past 4 GiB (sparse here) is repaired to what a WAV
    header can count. (Before: recover raised struct.error, and the file was offered again at
    every start.)"""
    path = tmp_path / "recording-big.wav"
    with open(path, "wb") as fh:
        fh.write(rec._wav_header(4_000_000_000))  # the last header that was written
        fh.truncate(44 + 4_400_000_000)
    (tmp_path / "recording-big.wav.recording").write_text(json.dumps({"pid": 2**22 + 12345}))
    assert rec.find_unfinished(tmp_path) == [path]
    assert rec.recover(path) == path
    assert sf.info(path).frames == WAV_MAX_FRAMES
    assert path.stat().st_size == 44 + 2 * WAV_MAX_FRAMES
    assert rec.find_unfinished(tmp_path) == []


@pytest.mark.parametrize("rate", [44_100, 48_000])
def test_a_stalled_device_keeps_the_resamplers_last_samples(
    fake_sd,  # noqa: F811 (the fixture imported above)
    tmp_path,
    monkeypatch,
    rate,
):
    """A device that stops sending at a rate that is resampled: the resampler's buffered last
    ~21 ms are written as after a clean stop. (Before: 1 s fed kept ~0.978 s.)"""
    monkeypatch.setattr(rec, "LOST_AFTER_SECONDS", 0.2)  # the first block is awaited as usual
    fake_sd(device("mic", 1, rate=float(rate)), accepts=lambda r, ch: r == rate)
    r = rec.Recorder(tmp_path / "a.wav")
    r.start()
    FakeStream.made[-1].feed(1.0, block=rate)  # one block: no stall can come between two
    wait_for(lambda: r.error is not None)
    with pytest.raises(rec.MicrophoneError, match="stopped delivering audio"):
        r.stop()
    assert abs(sf.info(tmp_path / "a.wav").frames - SR) <= 2
