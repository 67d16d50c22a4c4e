"""Tuning audio and features stream from an on-disk store (engine.tune.cache), so a job's memory
does not grow with its data: exact round trips, reuse by key, a full disk, and the job itself."""

from __future__ import annotations

import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import engine.tune.loop
from engine.audio import load_audio
from engine.testmodels import build_model
from engine.tune.cache import (
    DiskSpaceError,
    RowStore,
    dequantize,
    examples_key,
    open_rows,
    quantize,
    write_rows,
)
from engine.tune.config import TuneConfig
from engine.tune.data import Example, from_manifest
from engine.tune.events import JobCancelled, JobFailed, JobFinished, StepProgress
from engine.tune.loop import Job, run_job
from engine.tune.testdata import tone_corpus

CHARS = "天地人和"


# ---- the store ---------------------------------------------------------------------------


def test_16_bit_audio_round_trips_exactly_and_other_audio_within_its_rounding():
    rng = np.random.default_rng(0)
    pcm = rng.integers(-32768, 32768, 1000).astype(np.float32) / 32768  # as decoders return it
    samples, scale = quantize(pcm)
    assert samples.dtype == np.int16 and np.array_equal(dequantize(samples, scale), pcm)
    quiet = (0.01 * rng.standard_normal(1000)).astype(np.float32)  # not 16-bit values
    samples, scale = quantize(quiet)
    peak = np.abs(quiet).max()
    assert np.abs(samples).max() == 32767  # scaled to its own peak, not to full scale
    assert np.abs(dequantize(samples, scale) - quiet).max() <= 0.51 * peak / 32767
    loud = np.array([1.5, -0.25, 0.0], dtype=np.float32)  # beyond full scale: no wrap-around
    assert np.allclose(dequantize(*quantize(loud)), loud, atol=1.5 / 32767)


def test_rows_round_trip_exactly_and_are_reused_only_under_their_key(tmp_path):
    manifest = tone_corpus(tmp_path / "data", 5, char_seconds=0.1, seed=0)
    examples = from_manifest(manifest).examples
    key = examples_key(examples)
    audio = write_rows(
        tmp_path / "audio", key, (load_audio(e.audio) for e in examples), quantized=True,
        what="the audio",
    )  # fmt: skip
    again = open_rows(tmp_path / "audio", key)
    assert isinstance(again, RowStore) and len(again) == 5
    for i, e in enumerate(examples):  # the WAVs are 16-bit: every sample comes back as decoded
        assert np.array_equal(again[i], load_audio(e.audio))
    assert again.lengths == [len(load_audio(e.audio)) for e in examples] == audio.lengths
    assert (tmp_path / "audio" / "rows.bin").stat().st_size == 2 * sum(again.lengths)
    rng = np.random.default_rng(1)
    features = [rng.standard_normal((n, 3)).astype(np.float32) for n in (4, 0, 7)]
    stored = write_rows(tmp_path / "f", "k", iter(features), quantized=False, what="features")
    assert all(np.array_equal(stored[i], f) for i, f in enumerate(features))
    assert open_rows(tmp_path / "f", "another key") is None
    with open(tmp_path / "f" / "rows.bin", "r+b") as f:  # cut short: not a whole store
        f.truncate(8)
    assert open_rows(tmp_path / "f", "k") is None
    with pytest.raises(IndexError):
        audio[5]


def test_the_key_changes_when_an_audio_file_or_a_span_does(tmp_path):
    manifest = tone_corpus(tmp_path / "data", 2, char_seconds=0.1, seed=0)
    examples = from_manifest(manifest).examples
    key = examples_key(examples)
    assert examples_key(list(examples)) == key
    first = examples[0]
    assert examples_key([Example(first.audio, first.text, 0.0, 0.2), examples[1]]) != key
    first.audio.write_bytes(first.audio.read_bytes() + b"\0\0")  # edited (size and time)
    assert examples_key(examples) != key


def test_a_full_disk_leaves_no_partial_store_and_says_what_to_do(tmp_path, small_disk):
    disk = small_disk(1024 * 1024)
    rows = (np.zeros(64_000, dtype=np.float32) for _ in range(100))  # 12.8 MB as int16
    with pytest.raises(DiskSpaceError) as caught:
        write_rows(disk / "cache" / "train", "k", rows, quantized=True, what="the decoded audio")
    message = str(caught.value)
    assert str(disk / "cache" / "train") in message and "the decoded audio" in message
    assert "free some space" in message
    assert list((disk / "cache").iterdir()) == []  # the temporary folder is gone too


# ---- the job -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return build_model(tmp_path_factory.mktemp("cache") / "base", "tiny", chars=CHARS, seed=0)


def _config(model: Path, manifest: Path, out: Path, **overrides) -> TuneConfig:
    settings = dict(
        model=str(model), data=str(manifest), output_dir=str(out), method="lora", steps=2,
        learning_rate=1e-2, batch_seconds=2.0, micro_batch_seconds=1.0, min_seconds=0.1,
        heldout_fraction=0.2, eval_every=0, save_every=1, mask_time_prob=0.0, precision="fp32",
        device="cpu",
    )  # fmt: skip
    settings.update(overrides)
    return TuneConfig(**settings)


def _decodes(monkeypatch) -> list[Path]:
    """The files the job decodes, from now on."""
    seen: list[Path] = []
    real = engine.tune.loop.load_example_audio

    def counting(example):
        seen.append(example.audio)
        return real(example)

    monkeypatch.setattr(engine.tune.loop, "load_example_audio", counting)
    return seen


def test_a_job_decodes_once_resumes_from_the_store_and_removes_it(model, tmp_path, monkeypatch):
    manifest = tone_corpus(tmp_path / "data", 10, char_seconds=0.1, seed=0)
    decoded = _decodes(monkeypatch)
    cancel = threading.Event()
    out = tmp_path / "job"
    for event in run_job(_config(model, manifest, out), cancel=cancel):
        if isinstance(event, StepProgress):
            cancel.set()
    assert isinstance(event, JobCancelled)
    assert sorted(decoded) == sorted(e.audio for e in from_manifest(manifest).examples)
    assert {p.name for p in (out / "cache").iterdir()} == {"train", "heldout", "features"}
    decoded.clear()
    events = list(run_job(_config(model, manifest, out), resume=True))
    assert isinstance(events[-1], JobFinished), events[-1]
    assert decoded == []  # the resumed job read the store its first run wrote
    assert not (out / "cache").exists()  # the tuned model is saved: the store is not needed


def test_not_enough_disk_for_the_decoded_audio_fails_before_decoding(model, tmp_path, monkeypatch):
    manifest = tone_corpus(tmp_path / "data", 4, char_seconds=0.1, seed=0)
    decoded = _decodes(monkeypatch)
    monkeypatch.setattr(engine.tune.loop, "free_bytes", lambda path: (tmp_path, 50_000))
    events = list(run_job(_config(model, manifest, tmp_path / "job", method="full")))
    assert isinstance(events[-1], JobFailed) and decoded == []
    assert "decoded audio" in events[-1].message and "GB free" in events[-1].message


def _setup_memory(model: Path, manifest: Path, out: Path) -> tuple[Job, int, int]:
    """A job set up and one step trained: (job, bytes Python still holds, peak bytes), as
    tracemalloc counts them (NumPy's buffers included, torch's not)."""
    job = Job(_config(model, manifest, out).resolved(), threading.Event(), resume=False)
    tracemalloc.start()
    try:
        job._setup()
        job._train_step(next(job._steps()))
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return job, held, peak


def test_memory_does_not_grow_with_the_data(model, tmp_path):
    """20 utterances of 10 s cost the job no more memory than 4 of them: audio and features
    are read from their stores a batch at a time. (Holding the decoded audio in lists, as
    before the stores, adds the other 16's 10 MB to both figures.)"""
    warm = tone_corpus(tmp_path / "warm", 2, char_seconds=0.1)
    few = tone_corpus(tmp_path / "few", 4, min_chars=75, max_chars=75, char_seconds=0.1)
    many = tone_corpus(tmp_path / "many", 20, min_chars=75, max_chars=75, char_seconds=0.1)
    _setup_memory(model, warm, tmp_path / "warm-job")  # one-time costs (lazy imports) paid here
    job, held_few, peak_few = _setup_memory(model, few, tmp_path / "a")
    few_bytes = 4 * sum(job.train_lengths)
    job, held_many, peak_many = _setup_memory(model, many, tmp_path / "b")
    more = 4 * sum(job.train_lengths) - few_bytes
    assert more > 5e6
    assert isinstance(job.audio.train, RowStore) and isinstance(job.features, RowStore)
    assert held_many - held_few < 0.05 * more
    assert peak_many - peak_few < 0.05 * more
    for i, example in enumerate(job.data.train):  # what the job reads is what was decoded
        assert np.array_equal(job.audio.train[i], load_audio(example.audio))
