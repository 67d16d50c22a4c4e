"""Tuning Whisper with LoRA end to end (engine.tune.whisper_lora): a tiny random Whisper the
project builds (with Whisper-base's tokenizer, so the test skips without the fixture) learns a
real clip's text, the merged model is converted by CTranslate2's converter, and the result
loads and transcribes through the same engine API."""

from __future__ import annotations

import pytest

from engine.audio import load_audio
from engine.loader import load_model, transcriber_for
from engine.results import Progress, Segment
from engine.tune.whisper_lora import WhisperLoraOptions, build_tiny_whisper, tune_whisper_lora
from engine.whisper import WHISPER_BASE_DIR, LoadedWhisper


@pytest.mark.slow
def test_whisper_lora_trains_converts_and_transcribes(tmp_path, shared_audio):
    if not (WHISPER_BASE_DIR / "tokenizer.json").is_file():
        pytest.skip(f"{WHISPER_BASE_DIR} is absent: run packaging/fetch-whisper-base.py")
    base = build_tiny_whisper(tmp_path / "base", WHISPER_BASE_DIR)
    audio = load_audio(shared_audio / "fireredasr2s_hello_zh.wav")
    options = WhisperLoraOptions(steps=10, learning_rate=2e-2)
    steps = list(tune_whisper_lora(base, [(audio, "你好世界")], tmp_path / "job", options))
    assert [s.step for s in steps] == list(range(1, 11))
    assert steps[-1].loss < 0.7 * steps[0].loss  # it learns the text (measured 12.8 → 6.3)
    ct2 = tmp_path / "job" / "ct2"
    assert (ct2 / "model.bin").is_file() and (ct2 / "tokenizer.json").is_file()
    model = load_model(ct2)
    assert isinstance(model, LoadedWhisper)
    items, info = transcriber_for(model).transcribe(audio)
    records = list(items)
    assert isinstance(records[-1], Progress) and records[-1].fraction == 1.0
    assert info.attention == "ctranslate2"
    for segment in (r for r in records if isinstance(r, Segment)):
        assert all(0 <= c.confidence <= 1 and c.start <= c.end for c in segment.chars)
