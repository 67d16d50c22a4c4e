"""Nothing executes from a file Tingxie reads. Each test plants a pickle whose loading would
create a marker file, in a place where Tingxie reads a checkpoint, model or state, and checks
that nothing ran and that the error names the file. (With `weights_only=False` restored in
`Job._restore`, or the pickle-only refusal removed from `engine.model`, these tests fail: the
marker appears.)"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
import torch

from engine.model import LoadOptions, ModelLoadError, load_model
from engine.testmodels import build_model
from engine.tune.config import TuneConfig
from engine.tune.events import JobCancelled, JobFailed, JobStarted, StepProgress
from engine.tune.loop import run_job
from engine.tune.testdata import tone_corpus


class _Planted:
    """Unpickling this creates `marker` (the harmless stand-in for running any code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _plant(path: Path, marker: Path) -> None:
    torch.save({"optimizer": _Planted(marker)}, path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("untrusted")
    model = build_model(root / "base", "tiny", chars="天地人和", seed=0)
    return model, tone_corpus(root / "data", 8, char_seconds=0.1, seed=0)


def _config(corpus, out: Path, **overrides) -> TuneConfig:
    model, manifest = corpus
    settings = dict(model=str(model), data=str(manifest), output_dir=str(out), method="full",
                    steps=3, learning_rate=1e-3, batch_seconds=2.0, micro_batch_seconds=1.0,
                    min_seconds=0.1, heldout_fraction=0.25, eval_every=0, save_every=1,
                    mask_time_prob=0.0, precision="fp32", device="cpu")  # fmt: skip
    settings.update(overrides)
    return TuneConfig(**settings)


def _cancelled_job(corpus, out: Path) -> Path:
    """A job stopped after its first step; returns that checkpoint folder."""
    cancel = threading.Event()
    for event in run_job(_config(corpus, out), cancel=cancel):
        if isinstance(event, StepProgress):
            cancel.set()
        last = event
    assert isinstance(last, JobCancelled), last
    return last.checkpoint


def test_resume_does_not_unpickle_a_planted_optimizer_state(corpus, tmp_path):
    checkpoint = _cancelled_job(corpus, tmp_path / "job")
    marker = tmp_path / "ran"
    _plant(checkpoint / "optimizer.pt", marker)
    events = list(run_job(_config(corpus, tmp_path / "job"), resume=True))
    assert not marker.exists()
    assert isinstance(events[-1], JobFailed)
    assert str(checkpoint / "optimizer.pt") in events[-1].message


def test_resume_ignores_an_old_pickled_random_state(corpus, tmp_path):
    """Checkpoints of earlier versions kept the random state in rng-N.pt (a pickle): it is
    never read; the JSON state is."""
    checkpoint = _cancelled_job(corpus, tmp_path / "job")
    marker = tmp_path / "ran"
    _plant(checkpoint / "rng-0.pt", marker)
    events = list(run_job(_config(corpus, tmp_path / "job"), resume=True))
    assert not marker.exists()
    assert next(e for e in events if isinstance(e, JobStarted)).resumed_from_step == 1
    assert not isinstance(events[-1], JobFailed), events[-1]


def test_a_malformed_random_state_names_its_folder(corpus, tmp_path):
    checkpoint = _cancelled_job(corpus, tmp_path / "job")
    (checkpoint / "rng-0.json").write_text('{"torch": "not a state"}', encoding="utf-8")
    events = list(run_job(_config(corpus, tmp_path / "job"), resume=True))
    assert isinstance(events[-1], JobFailed)
    assert str(checkpoint) in events[-1].message and "afresh" in events[-1].message


def _pickle_only_model(corpus, tmp_path: Path, marker: Path) -> Path:
    folder = tmp_path / "pickled"
    shutil.copytree(corpus[0], folder)
    (folder / "model.safetensors").unlink()
    _plant(folder / "pytorch_model.bin", marker)
    return folder


def test_pickle_only_model_is_refused_for_transcription(corpus, tmp_path):
    marker = tmp_path / "ran"
    folder = _pickle_only_model(corpus, tmp_path, marker)
    with pytest.raises(ModelLoadError) as e:
        load_model(folder, LoadOptions(device="cpu"))
    assert not marker.exists()
    assert str(folder) in str(e.value) and "--allow-pickle" in str(e.value)


def test_pickle_only_model_is_refused_as_a_tuning_base(corpus, tmp_path):
    marker = tmp_path / "ran"
    folder = _pickle_only_model(corpus, tmp_path, marker)
    events = list(run_job(_config(corpus, tmp_path / "job", model=str(folder))))
    assert not marker.exists()
    assert isinstance(events[-1], JobFailed) and str(folder) in events[-1].message
    # worded for a job, whose way to allow it is a setting: `tune` has no --allow-pickle
    assert "allow_pickle: true" in events[-1].message


def test_allowing_pickle_still_reads_weights_only(corpus, tmp_path):
    """Even when the user allows pickle weights, transformers reads them with
    `weights_only=True`: a planted object fails to load instead of running."""
    marker = tmp_path / "ran"
    folder = _pickle_only_model(corpus, tmp_path, marker)
    with pytest.raises(ModelLoadError):
        load_model(folder, LoadOptions(device="cpu", allow_pickle=True))
    assert not marker.exists()


def test_allowing_pickle_loads_genuine_pickle_weights(corpus, tmp_path):
    from safetensors.torch import load_file

    folder = tmp_path / "genuine"
    shutil.copytree(corpus[0], folder)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError):
        load_model(folder, LoadOptions(device="cpu"))
    loaded = load_model(folder, LoadOptions(device="cpu", allow_pickle=True))
    assert loaded.vocab
