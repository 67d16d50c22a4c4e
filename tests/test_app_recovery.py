"""Recovery end to end: the app's worker records from the virtual microphone in another process,
that process is killed (SIGKILL) mid-recording, and the next window start offers the recording
back, repaired, with the audio captured up to about a second before the kill.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtWidgets import QMessageBox
from virtual_mic import virtual_mic  # noqa: F401  (fixture)

from app import settings
from app.main import build_window

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLIP = "funasr_asr_example_zh.wav"
KILL_AFTER = 3.0  # seconds of playback before the kill

# The recording process: the real worker and Recorder, no window; prints the WAV path.
_RECORD = """
import sys
from PySide6.QtCore import QCoreApplication
from app.worker import EngineWorker, WorkerHandle
qt = QCoreApplication([])
handle = WorkerHandle(EngineWorker())
handle.worker.recording_started.connect(lambda p: print(p, flush=True))
handle.worker.error.connect(lambda k, m: print("ERROR", m, flush=True))
handle.start()
handle.set_input_device.emit("pulse")
handle.start_recording.emit(sys.argv[1])
qt.exec()
"""


def test_killed_recording_is_offered_back_repaired(
    qtbot,
    virtual_mic,  # noqa: F811
    shared_audio,
    tiny_model_dir,
    tmp_path,
    monkeypatch,
):
    folder = tmp_path / "recordings"
    recorder = subprocess.Popen(
        [sys.executable, "-c", _RECORD, str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    try:
        line = recorder.stdout.readline().strip()
        assert line and not line.startswith("ERROR"), line
        player = virtual_mic.play(shared_audio / CLIP)
        time.sleep(KILL_AFTER)
        recorder.send_signal(signal.SIGKILL)
        recorder.wait(10)
        player.wait(10)
    finally:
        if recorder.poll() is None:
            recorder.kill()

    asked = []

    def yes(parent, title, text, *args, **kwargs):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", yes)
    store = settings.open_settings(tmp_path / "settings.ini")
    prefs = settings.Preferences(
        model=str(tiny_model_dir), model_chosen=True, recordings_dir=str(folder)
    )
    settings.save(store, prefs)
    window = build_window(store)
    qtbot.addWidget(window)
    window.start()
    qtbot.waitUntil(lambda: bool(window.queue.job_ids()), timeout=30_000)
    assert len(asked) == 1
    recovered = window.queue.path(window.queue.job_ids()[0])
    assert recovered == line
    audio, rate = sf.read(recovered, dtype="float32")
    clip, _ = sf.read(shared_audio / CLIP, dtype="float32")
    seconds = len(audio) / rate
    assert KILL_AFTER - 1.2 <= seconds <= KILL_AFTER + 1.0
    # It is the clip's beginning: same loudness contour (10 ms RMS).
    n = len(audio) // 160 * 160
    rec = np.sqrt((audio[:n].reshape(-1, 160) ** 2).mean(axis=1))
    ref = np.sqrt((clip[:n].reshape(-1, 160) ** 2).mean(axis=1))
    shift = max(range(0, 50), key=lambda s: np.corrcoef(rec[s:], ref[: len(rec) - s])[0, 1])
    assert np.corrcoef(rec[shift:], ref[: len(rec) - shift])[0, 1] > 0.8
