"""End to end through the real PortAudio path: PulseAudio virtual microphone → sounddevice →
Recorder → WAV on disk and StreamingTranscriber updates; and a recording process killed
mid-recording whose audio comes back.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from virtual_mic import virtual_mic  # noqa: F401  (fixture)

from engine.audio import load_audio
from engine.recorder import Recorder, find_unfinished, recover

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SR = 16_000
CLIP = "aishell1_BAC009S0724W0121.wav"
BIN = 320  # 20 ms envelope bins


def envelope(audio: np.ndarray) -> np.ndarray:
    n = len(audio) // BIN
    return np.sqrt(np.mean(np.square(audio[: n * BIN].reshape(n, BIN)), axis=1))


def envelope_match(recorded: np.ndarray, source: np.ndarray) -> tuple[float, int]:
    """Best Pearson correlation of the two energy envelopes over all lags, and that lag
    (in bins): the recording starts at an unknown moment before the playback."""
    rec, src = envelope(recorded), envelope(source)
    best = (-1.0, 0)
    for lag in range(0, len(rec) - len(src) + 1):
        r = float(np.corrcoef(rec[lag : lag + len(src)], src)[0, 1])
        best = max(best, (r, lag))
    return best


def play_and_wait(mic, path: Path, timeout: float = 30.0) -> None:
    player = mic.play(path)
    try:
        _, err = player.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        player.kill()
        raise
    assert player.returncode == 0, f"paplay failed: {err.decode(errors='replace')}"


def test_records_speech_played_into_the_virtual_microphone(
    virtual_mic,  # noqa: F811
    shared_audio,
    tiny_model_dir,
    tmp_path,
):
    from engine.model import load_model
    from engine.stream import StreamingTranscriber, StreamOptions
    from engine.transcribe import Transcriber

    source = load_audio(shared_audio / CLIP)
    blocks: queue.Queue = queue.Queue()
    recorder = Recorder(tmp_path / "mic.wav", device="pulse", on_audio=blocks.put)
    recorder.start()
    assert recorder.sample_rate == SR  # PulseAudio accepts 16 kHz directly
    time.sleep(0.3)
    play_and_wait(virtual_mic, shared_audio / CLIP)
    time.sleep(0.5)
    path = recorder.stop()

    recorded, rate = sf.read(path, dtype="float32")
    assert rate == SR
    assert len(recorded) >= len(source)
    corr, lag = envelope_match(recorded, source)
    assert corr > 0.9, f"the recording does not hold the played speech (r={corr:.2f})"
    assert lag * BIN / SR < 3.0

    # what on_audio delivered is what was written
    delivered = []
    while not blocks.empty():
        delivered.append(blocks.get())
    streamed = np.concatenate(delivered)
    np.testing.assert_allclose(streamed, recorded, atol=1 / 16000)

    stream = StreamingTranscriber(Transcriber(load_model(tiny_model_dir)), StreamOptions())
    updates = []
    for block in delivered:
        updates += stream.push(block)
    updates += stream.finish()
    assert len(updates) >= len(recorded) / SR / 0.3
    assert updates[-1].audio_seconds == pytest.approx(len(recorded) / SR)
    assert any(u.committed for u in updates)
    assert any(u.segment is not None for u in updates)


_CHILD = """
import threading, time
from engine.recorder import Recorder, list_input_devices
list_input_devices(refresh=True)
first = threading.Event()
r = Recorder({path!r}, device="pulse", on_audio=lambda block: first.set())
r.start()
first.wait(30)
print("recording", flush=True)
time.sleep(600)
"""


def test_killed_recording_process_comes_back(virtual_mic, shared_audio, tmp_path):  # noqa: F811
    path = tmp_path / "killed.wav"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(path=str(path))],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        # PulseAudio takes about a second to deliver the first block; count from there
        assert child.stdout.readline().strip() == "recording"
        started = time.monotonic()
        player = virtual_mic.play(shared_audio / CLIP)
        time.sleep(3.0)
        os.kill(child.pid, signal.SIGKILL)
        recorded_for = time.monotonic() - started
        child.wait(timeout=10)
        player.wait(timeout=30)
    finally:
        child.kill()
        child.stdout.close()
    assert find_unfinished(tmp_path) == [path]
    recover(path)
    audio, rate = sf.read(path, dtype="float32")
    assert rate == SR
    assert len(audio) / SR >= recorded_for - 1.0, "more than a second was lost"
    source = load_audio(shared_audio / CLIP)
    part = source[: len(audio) - SR // 2]  # the speech played before the kill
    corr, _ = envelope_match(audio, part[: 2 * SR])
    assert corr > 0.9


def test_system_audio_is_recorded_from_an_outputs_monitor(virtual_mic, shared_audio, tmp_path):  # noqa: F811
    """A call or a video playing on the machine: audio played into an output (a second null
    sink, not the one behind the default microphone) is listed as system audio, recorded from
    that output's monitor and transcribed."""
    from engine.model import DEMO_MODEL_DIR, load_model
    from engine.recorder import list_input_devices
    from engine.transcribe import Transcriber

    virtual_mic.pactl("load-module", "module-null-sink", "sink_name=tingxie_call", "rate=16000",
                      "channels=1", "sink_properties=device.description=Call")  # fmt: skip
    devices = list_input_devices(refresh=True)
    monitor = next(d for d in devices if d.source == "tingxie_call.monitor")
    assert monitor.is_system_audio and monitor.name == "System audio: Monitor of Call"
    recorder = Recorder(tmp_path / "call.wav", device=monitor.name)
    recorder.start()
    time.sleep(0.3)
    player = subprocess.run(["paplay", "--device=tingxie_call", str(shared_audio / CLIP)],
                            env={**os.environ, **virtual_mic.env}, capture_output=True,
                            timeout=60)  # fmt: skip
    assert player.returncode == 0, player.stderr
    time.sleep(0.5)
    path = recorder.stop()
    assert "PULSE_SOURCE" not in os.environ  # only while the device opened
    recorded, _ = sf.read(path, dtype="float32")
    corr, _ = envelope_match(recorded, load_audio(shared_audio / CLIP))
    assert corr > 0.9, f"the recording does not hold the played audio (r={corr:.2f})"
    items, _ = Transcriber(load_model(DEMO_MODEL_DIR)).transcribe(path)
    assert "".join(getattr(i, "text", "") for i in items)
