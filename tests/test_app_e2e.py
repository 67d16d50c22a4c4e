"""End to end through the real PortAudio path: a virtual PulseAudio microphone plays a real
Mandarin clip; the window records it through the worker and the engine's Recorder.

Checks that the saved file holds the speech (its loudness contour matches the clip's), that the
waveform was drawn and that transcript events arrived (tiny random model: the text itself is
meaningless, the plumbing is what is tested).
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from virtual_mic import virtual_mic  # noqa: F401  (fixture)

from app import settings
from app.main import build_window

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLIP = "funasr_asr_example_zh.wav"


def _envelope(x: np.ndarray, hop: int = 160) -> np.ndarray:
    """RMS per 10 ms: robust to the resampling and phase changes PulseAudio may apply."""
    n = len(x) // hop
    return np.sqrt((x[: n * hop].reshape(n, hop) ** 2).mean(axis=1))


def _best_correlation(recorded: np.ndarray, clip: np.ndarray) -> float:
    """Correlation of the clip's loudness contour with the recording's, at the best lag."""
    rec, ref = _envelope(recorded), _envelope(clip)
    return max(
        float(np.corrcoef(rec[lag : lag + len(ref)], ref)[0, 1])
        for lag in range(len(rec) - len(ref) + 1)
    )


def test_record_from_virtual_microphone_through_the_window(
    qtbot,
    virtual_mic,  # noqa: F811
    shared_audio,
    tiny_model_dir,
    tmp_path,
    monkeypatch,
):
    monkeypatch.setattr("PySide6.QtWidgets.QMessageBox.warning", _fail_on_dialog)
    store = settings.open_settings(tmp_path / "settings.ini")
    prefs = settings.Preferences(
        model=str(tiny_model_dir),
        model_chosen=True,
        input_device="pulse",
        recordings_dir=str(tmp_path / "recordings"),
    )
    settings.save(store, prefs)
    window = build_window(store)
    qtbot.addWidget(window)
    window.show()
    loaded, partials, segments = [], [], []
    window.worker.model_loaded.connect(loaded.append)
    window.worker.partial.connect(lambda committed, tail: partials.append(len(committed)))
    window.worker.segment.connect(segments.append)
    ready = []
    window.transcript_ready.connect(lambda *args: ready.append(args))
    window.start()
    qtbot.waitUntil(lambda: bool(loaded) and window.device_box.count() > 1, timeout=60_000)
    assert window.device_box.currentText() == "pulse"  # the saved choice, given to the worker

    window.record_action.trigger()
    qtbot.waitUntil(window.stop_action.isEnabled, timeout=10_000)
    qtbot.wait(300)
    player = virtual_mic.play(shared_audio / CLIP)
    qtbot.waitUntil(lambda: player.poll() is not None, timeout=30_000)
    assert player.returncode == 0, player.stderr.read()
    qtbot.wait(500)
    _x, y = window.waveform.curve.getData()
    window.stop_action.trigger()
    qtbot.waitUntil(lambda: len(ready) == 1, timeout=30_000)

    recorded, rate = sf.read(ready[0][0], dtype="float32")
    clip, clip_rate = sf.read(shared_audio / CLIP, dtype="float32")
    assert rate == clip_rate == 16_000
    assert len(recorded) >= len(clip)
    assert _best_correlation(recorded, clip) > 0.9
    assert y is not None and len(y) > 1000 and np.max(np.abs(y)) > 0.05
    assert window.waveform.frames_drawn > 10
    assert len(partials) >= 5  # updates at least every 300 ms of audio while speaking
    assert window.elapsed_label.text().endswith(("00:05", "00:06", "00:07"))


def _fail_on_dialog(parent, title, text, *args, **kwargs):
    raise AssertionError(f"unexpected dialog: {title}: {text}")
