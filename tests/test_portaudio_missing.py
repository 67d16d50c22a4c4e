"""Without the PortAudio library (libportaudio2 not installed), `import sounddevice` raises
OSError("PortAudio library not found"). Only sound itself may fail then, each time with one
message saying what to install; the crash-recovery scan only reads files and must work.

The missing library is simulated as sounddevice meets it: its import raises that OSError.
Old: engine.recorder imported sounddevice with the module, so every start showed a raw error
for the scan too, and the review player raised the OSError from a slot instead of `failed`.
"""

from __future__ import annotations

import importlib.abc
import json
import struct
import sys

import numpy as np
import pytest

from app.i18n import STRINGS
from engine.errors import MESSAGES

SR = 16_000


class _NoPortAudio(importlib.abc.MetaPathFinder):
    """Imports sounddevice as a machine without libportaudio2 does."""

    def find_spec(self, name, path=None, target=None):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return None


@pytest.fixture
def no_portaudio(monkeypatch):
    """No PortAudio, and engine.recorder imported afresh (as in a new process); both put
    back afterwards."""
    import engine
    from engine import recorder  # noqa: F401  (so that the original is put back)

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.delitem(sys.modules, "engine.recorder")
    monkeypatch.delattr(engine, "recorder")
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio(), *sys.meta_path])
    with pytest.raises(OSError, match="PortAudio library not found"):
        import sounddevice  # noqa: F401


def _crashed_recording(path, seconds=0.5):
    """A WAV as a kill mid-recording leaves it: audio on disk, its header still saying 0 bytes,
    and the marker of a process that is gone."""
    pcm = (0.3 * np.sin(np.arange(round(seconds * SR)) / 5) * 32767).astype("<i2").tobytes()
    header = (
        struct.pack("<4sI4s", b"RIFF", 36, b"WAVE")
        + struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, SR, SR * 2, 2, 16)
        + struct.pack("<4sI", b"data", 0)
    )
    path.write_bytes(header + pcm)
    path.with_name(path.name + ".recording").write_text(json.dumps({"pid": 2**22 + 12345}))
    return len(pcm)


def test_the_unfinished_recordings_scan_works_without_portaudio(qapp, no_portaudio, tmp_path):
    """What the window asks at every start, through the worker as the app does."""
    from app.worker import EngineWorker

    path = tmp_path / "crashed.wav"
    data = _crashed_recording(path)
    worker = EngineWorker()
    found, recovered, errors = [], [], []
    worker.unfinished_found.connect(found.append)
    worker.recovered.connect(recovered.append)
    worker.error.connect(lambda kind, e: errors.append(e))
    worker.scan_unfinished(str(tmp_path))
    assert errors == [] and found == [[str(path)]]
    worker.recover(found[0])
    assert errors == [] and recovered == [str(path)]
    assert struct.unpack("<I", path.read_bytes()[40:44]) == (data,)  # the header is repaired
    assert not path.with_name("crashed.wav.recording").exists()


def test_recording_without_portaudio_says_what_to_install(qapp, no_portaudio, tmp_path):
    from app.errors import error_text
    from app.worker import EngineWorker
    from engine import recorder

    errors = []
    worker = EngineWorker()
    worker.error.connect(lambda kind, e: errors.append((kind, e)))
    worker.start_recording(str(tmp_path / "recordings"))
    assert len(errors) == 1, errors  # one message, nothing recorded
    kind, error = errors[0]
    assert kind == "microphone"
    assert isinstance(error, recorder.MicrophoneError) and error.code == "microphone.no_portaudio"
    text = error_text(error)
    assert "PortAudio" in text and "libportaudio2" in text and "make system-deps" in text
    assert list((tmp_path / "recordings").iterdir()) == []
    # the device list (asked at start-up) says the same, not a raw OSError
    with pytest.raises(recorder.MicrophoneError) as listing:
        recorder.list_input_devices(refresh=True)
    assert listing.value.code == "microphone.no_portaudio"


def test_playing_without_portaudio_fails_with_one_message(qtbot, no_portaudio, tmp_path):
    from app.review.player import SoundDevicePlayer
    from engine.audio import write_wav

    path = tmp_path / "tone.wav"
    write_wav(path, (0.3 * np.sin(np.arange(SR) / 5)).astype(np.float32))
    player = SoundDevicePlayer()
    loaded, failed = [], []
    player.loaded.connect(lambda start, samples: loaded.append(len(samples)))
    player.failed.connect(failed.append)
    with qtbot.waitSignal(player.failed, timeout=5000):
        player.play(str(path), 0.0, 0.5)
    qtbot.wait(100)
    assert loaded == [SR // 2]  # the stretch is drawn all the same
    assert len(failed) == 1 and "libportaudio2" in failed[0] and "PortAudio" in failed[0]
    player.stop()  # nothing plays: nothing to stop, no import tried


@pytest.mark.parametrize("code", ["microphone.no_portaudio", "audio.no_portaudio"])
def test_the_portaudio_messages_name_the_package_in_both_languages(code):
    en, zh = STRINGS[f"error.{code}"]
    assert en == MESSAGES[code]
    for text in (en, zh):
        assert "PortAudio" in text and "libportaudio2" in text and "make system-deps" in text
