"""Whisper in the app: the model chooser offers it, and the worker runs it for files and live
audio through engine.loader (real Whisper-base where packaging/fetch-whisper-base.py put it)."""

from __future__ import annotations

import numpy as np
import pytest
from app_fakes import emitted
from PySide6.QtWidgets import QPushButton

from app.i18n import tr
from app.modeldialog import ModelDialog
from app.worker import EngineWorker, WorkerHandle
from engine.audio import load_audio
from engine.registry import WHISPER
from engine.whisper import WHISPER_BASE_DIR
from engine.whisper_stream import WhisperStreamer

CLIP = "fireredasr2s_hello_zh.wav"  # 你好世界, 2.3 s


def _buttons(dialog) -> dict[str, QPushButton]:
    return {b.text(): b for b in dialog.findChildren(QPushButton)}


def test_the_model_chooser_offers_whisper_base_when_the_cache_has_it(qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr("app.demo.whisper_model_dir", lambda: str(tmp_path / "whisper-base"))
    dialog = ModelDialog("some/model")
    qtbot.addWidget(dialog)
    _buttons(dialog)[tr("action.use_whisper")].click()
    assert dialog.source() == str(tmp_path / "whisper-base")
    monkeypatch.setattr("app.demo.whisper_model_dir", lambda: None)
    without = ModelDialog("some/model")
    qtbot.addWidget(without)
    assert tr("action.use_whisper") not in _buttons(without)


@pytest.fixture
def worker(qtbot):
    handle = WorkerHandle(EngineWorker())
    handle.start()
    yield handle
    handle.stop()


@pytest.mark.slow
def test_the_worker_runs_whisper_for_files_and_live_audio(qtbot, worker, shared_audio):
    if not (WHISPER_BASE_DIR / "model.bin").is_file():
        pytest.skip(f"{WHISPER_BASE_DIR} is absent: run packaging/fetch-whisper-base.py")
    w = worker.worker
    summary = emitted(
        qtbot, w.model_loaded, lambda: worker.load_model.emit(str(WHISPER_BASE_DIR)), 120_000
    )[0]
    assert summary.features == WHISPER.features and not summary.is_demo
    segments = []
    w.file_segment.connect(lambda job, s: segments.append(s))
    emitted(
        qtbot, w.file_done, lambda: worker.enqueue_file.emit(1, str(shared_audio / CLIP)), 120_000
    )
    assert "你好" in "".join(s.text for s in segments)
    # The live path: the worker's streamer is the LocalAgreement one; feed it the clip.
    streamer = w._streamer
    assert isinstance(streamer, WhisperStreamer)
    audio = load_audio(shared_audio / CLIP)
    audio = np.concatenate([audio, np.zeros(8000, np.float32)])
    updates = [u for i in range(0, len(audio), 4000) for u in streamer.push(audio[i : i + 4000])]
    updates += streamer.finish()
    streamer.reset()
    text = "".join(c.text for u in updates for c in u.committed)
    assert "你好" in text and "世界" in text
