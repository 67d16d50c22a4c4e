"""Tuning jobs on a 2-layer random model and a synthetic tone corpus (seconds per job)."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.model import LoadOptions, load_model
from engine.testmodels import build_model
from engine.tune import wire
from engine.tune.config import PRESETS, TuneConfig, settings_help
from engine.tune.events import (
    CheckpointSaved,
    Evaluated,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    StepProgress,
)
from engine.tune.export import read_card
from engine.tune.loop import MIN_SPLIT_ROWS, run_job
from engine.tune.testdata import tone_corpus

CHARS = "天地人和"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    """(base model folder, manifest) shared by this module's jobs."""
    root = tmp_path_factory.mktemp("tune")
    model = build_model(root / "base", "tiny", chars=CHARS, seed=0)
    return model, tone_corpus(root / "data", 16, char_seconds=0.1, seed=0)


def _config(corpus, out: Path, **overrides) -> TuneConfig:
    model, manifest = corpus
    settings = dict(
        model=str(model),
        data=str(manifest),
        output_dir=str(out),
        method="full",
        steps=6,
        learning_rate=3e-3,
        batch_seconds=2.0,
        micro_batch_seconds=1.0,
        min_seconds=0.1,
        heldout_fraction=0.2,
        eval_every=0,
        mask_time_prob=0.0,
        precision="fp32",
        device="cpu",
    )
    settings.update(overrides)
    return TuneConfig(**settings)


def _run(config, **kw) -> list:
    events = list(run_job(config, **kw))
    failed = [e for e in events if isinstance(e, JobFailed)]
    assert not failed, failed[0].message
    return events


def _cancelled_after(config, step: int) -> list:
    """The events of a job cancelled once `step` is done (it saves and stops there)."""
    cancel, events = threading.Event(), []
    for event in run_job(config, cancel=cancel):
        events.append(event)
        if isinstance(event, StepProgress) and event.step == step:
            cancel.set()
    assert isinstance(events[-1], JobCancelled) and events[-1].step == step
    return events


def _losses(events) -> list[float]:
    return [e.loss for e in events if isinstance(e, StepProgress)]


# ---- config --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_round_trip_with_relative_paths(tmp_path, suffix):
    (tmp_path / "data.tsv").write_text("path\ttext\n", encoding="utf-8")
    config = TuneConfig(model="m", data="data.tsv", output_dir="out", steps=42, method="partial")
    path = config.save(tmp_path / f"job{suffix}")
    loaded = TuneConfig.load(path)
    assert loaded.steps == 42 and loaded.method == "partial"
    assert loaded.data == str(tmp_path / "data.tsv")
    assert loaded.domain_text is None
    with_text = TuneConfig(model="m", data="data.tsv", output_dir="out", domain_text="ward.txt")
    assert TuneConfig.load(with_text.save(tmp_path / f"text{suffix}")).domain_text == str(
        tmp_path / "ward.txt"
    )
    assert loaded.output_dir == str(tmp_path / "out")
    assert loaded.model == "m"  # not a folder here: kept (a Hub id)
    assert loaded.normalize == config.normalize


def test_config_errors_name_the_setting(tmp_path):
    bad = tmp_path / "job.json"
    bad.write_text(json.dumps({"model": "m", "data": "d", "output_dir": "o", "stpes": 3}))
    with pytest.raises(ValueError, match="stpes"):
        TuneConfig.load(bad)
    with pytest.raises(ValueError, match="method='qlora'"):
        TuneConfig(model="m", data="d", output_dir="o", method="qlora")
    with pytest.raises(ValueError, match="mask_time_prob"):
        TuneConfig(model="m", data="d", output_dir="o", mask_time_prob=1.5)
    with pytest.raises(ValueError, match="normalize"):
        TuneConfig(model="m", data="d", output_dir="o", normalize={"nope": True})


def test_config_values_take_their_settings_types(tmp_path):
    """YAML 1.1 (PyYAML) reads 1e-4 as a string, and a `normalize:` block whose lines are all
    commented out as null. (Before: the first failed with a TypeError that named no setting,
    the second with an AttributeError once the model had loaded.)"""
    from engine.normalize import NormalizeOptions

    job = tmp_path / "job.yaml"
    job.write_text(
        "model: m\ndata: d\noutput_dir: o\nlearning_rate: 1e-4\nsteps: 1e3\n"
        "batch_seconds: 30\nnormalize:\n#  remove_spaces: false\n",
        encoding="utf-8",
    )
    config = TuneConfig.load(job)
    assert (config.learning_rate, config.steps, config.batch_seconds) == (1e-4, 1000, 30.0)
    assert type(config.steps) is int and type(config.batch_seconds) is float
    assert config.normalize == NormalizeOptions()


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"steps": "abc"}, "steps='abc': expected a whole number"),
        ({"steps": 2.5}, "steps=2.5: expected a whole number"),
        ({"learning_rate": "fast"}, "learning_rate='fast': expected a number"),
        ({"batch_seconds": float("nan")}, "batch_seconds=nan: must be a finite number"),
        ({"extend_vocab": "yes"}, "extend_vocab='yes': expected true or false"),
        ({"lora_dropout": None}, "lora_dropout is empty"),
        ({"normalize": {"lowercase": "no"}}, "normalize.lowercase='no': expected true or false"),
        ({"normalize": 5}, "normalize=5: expected a mapping"),
        ({"seed": -1}, "seed=-1: must be 0 or more"),
        ({"warmup_steps": -3}, "warmup_steps=-3: must be 0 or more"),
        ({"lora_alpha": -1}, "lora_alpha=-1.0: must be more than 0"),
        ({"mask_time_length": 0}, "mask_time_length=0: must be at least 1"),
        ({"min_seconds": 5, "max_seconds": 2}, "min_seconds=5.0 is above max_seconds=2.0"),
    ],
    ids=str,
)
def test_a_config_value_of_the_wrong_type_or_range_is_refused_by_name(setting, message):
    """Refused where the config is made, before any model loads. (Before: these failed with a
    TypeError or ran: seed -1 failed after set-up, min above max skipped every row as
    too_short, NaN failed converting to an integer, a negative alpha or warmup trained.)"""
    with pytest.raises(ValueError, match=re.escape(message)):
        TuneConfig(model="m", data="d", output_dir="o", **setting)


def test_presets_fill_only_what_is_left_empty():
    quick = TuneConfig(model="m", data="d", output_dir="o", preset="quick").resolved()
    assert quick.steps == PRESETS["quick"]["steps"]
    assert quick.learning_rate == PRESETS["quick"]["learning_rate"]["lora"]
    assert quick.lora_alpha == 2 * quick.lora_rank
    assert quick.freeze_feature_encoder is True
    mine = TuneConfig(
        model="m", data="d", output_dir="o", preset="thorough", method="full", steps=7
    ).resolved()
    assert mine.steps == 7 and mine.freeze_feature_encoder is False
    assert mine.mask_time_prob == PRESETS["thorough"]["mask_time_prob"]


def test_every_setting_is_documented():
    rows = settings_help()
    assert [r[0] for r in rows] == list(TuneConfig.__dataclass_fields__)
    assert all(meaning for _, _, meaning in rows)


# ---- methods -------------------------------------------------------------------------


@pytest.mark.parametrize("method, lr", [("full", 3e-3), ("partial", 3e-3), ("lora", 2e-2)], ids=str)
def test_each_method_reduces_training_loss(corpus, tmp_path, method, lr):
    events = _run(_config(corpus, tmp_path / method, method=method, learning_rate=lr, steps=6))
    started = next(e for e in events if isinstance(e, JobStarted))
    losses = _losses(events)
    assert len(losses) == 6
    assert np.mean(losses[-2:]) < 0.9 * np.mean(losses[:2])
    assert started.trainable_parameters < started.total_parameters or method == "full"
    finished = events[-1]
    assert isinstance(finished, JobFinished)
    loaded = load_model(finished.result.model_dir, LoadOptions(precision="fp32"))
    assert loaded.vocab[5:] == list(CHARS)
    assert (finished.result.model_dir / "README.md").read_text(encoding="utf-8").count("CER")


def test_partial_freezes_the_feature_encoder_and_lower_layers(corpus, tmp_path):
    events = _run(_config(corpus, tmp_path / "p", method="partial", freeze_layers=1, steps=1))
    base = load_model(corpus[0], LoadOptions(precision="fp32")).model.state_dict()
    tuned = load_model(events[-1].result.model_dir, LoadOptions(precision="fp32")).model
    tuned = tuned.state_dict()
    for name in ("wav2vec2.feature_extractor.conv_layers.0.conv.weight",
                 "wav2vec2.encoder.layers.0.attention.q_proj.weight"):  # fmt: skip
        assert torch.equal(base[name], tuned[name]), name
    name = "wav2vec2.encoder.layers.1.attention.q_proj.weight"
    assert not torch.equal(base[name], tuned[name])


def test_merged_model_equals_base_plus_adapter(corpus, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCTC

    config = _config(corpus, tmp_path / "l", method="lora", learning_rate=2e-2, steps=4)
    config.gradient_checkpointing = True  # exercised here too: must not break the adapter
    events = _run(config)
    result = events[-1].result
    merged = load_model(result.model_dir, LoadOptions(precision="fp32", attention="eager"))
    base = AutoModelForCTC.from_pretrained(corpus[0], attn_implementation="eager")
    combined = PeftModel.from_pretrained(base, result.adapter_dir).eval()
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 16000)).astype(np.float32))
    with torch.no_grad():
        want = combined(input_values=x).logits
        got = merged.model(input_values=x).logits
        plain = AutoModelForCTC.from_pretrained(corpus[0]).eval()(input_values=x).logits
    assert torch.allclose(got, want, atol=1e-4)
    assert not torch.allclose(got, plain, atol=1e-3)  # the adapter changed something


@pytest.mark.parametrize("method", ["full", "lora"])
def test_vocabulary_extension_reloads_as_a_normal_checkpoint(corpus, tmp_path, method):
    """A job that grows the vocabulary finishes with a model that writes the new character; a
    LoRA job also saves its adapter, the grown CTC head inside (peft, left to itself, asked a
    wav2vec2 model for input embeddings it has not got, and the job failed at its end)."""
    data = tone_corpus(tmp_path / "d", 12, chars="天地人龙", char_seconds=0.1, seed=1)
    job = run_job(_config(corpus, tmp_path / "no", data=str(data), steps=2))
    started = next(job)  # closing the generator after the first event: nothing trains
    job.close()
    assert isinstance(started, JobStarted)
    assert "龙" in started.validation and started.skipped_rows > 0
    config = _config(corpus, tmp_path / "yes", data=str(data), extend_vocab=True, steps=2)
    events = _run(replace(config, method=method))
    assert next(e for e in events if isinstance(e, JobStarted)).added_chars == "龙"
    assert isinstance(events[-1], JobFinished), events[-1]
    loaded = load_model(events[-1].result.model_dir, LoadOptions(precision="fp32"))
    assert loaded.vocab[-1] == "龙"
    assert loaded.model.lm_head.out_features == len(loaded.vocab) == 10
    if method == "lora":
        from safetensors import safe_open

        with safe_open(events[-1].result.adapter_dir / "adapter_model.safetensors", "pt") as f:
            heads = [f.get_slice(k).get_shape() for k in f.keys() if "lm_head" in k]  # noqa: SIM118
        assert heads and all(shape[0] == 10 for shape in heads), heads


def test_extend_vocabulary_keeps_old_outputs():
    from transformers import AutoModelForCTC, AutoProcessor

    from engine.tune.vocab import extend_vocabulary

    folder = build_model(Path(__import__("tempfile").mkdtemp()) / "m", "tiny", chars=CHARS)
    model = AutoModelForCTC.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder)
    x = torch.randn(1, 8000)
    with torch.no_grad():
        before = model(input_values=x).logits
    added, grown = extend_vocabulary(model, processor, "天龙凤龙", seed=0)
    with torch.no_grad():
        after = model(input_values=x).logits
    assert added == ["龙", "凤"]
    assert grown.tokenizer.convert_tokens_to_ids("凤") == 10
    assert torch.equal(after[..., :9], before)
    assert (after[..., 9:].max(-1).values <= before.max(-1).values).all()  # never preferred yet
    # invisible and blank characters are never learned (before: a BOM or zero-width space in a
    # transcript became one of the tuned model's characters)
    added, _ = extend_vocabulary(model, grown, "\ufeff龟\u200b \u3000\x07", seed=0)
    assert added == ["龟"]


# ---- jobs ----------------------------------------------------------------------------


def _final_weights(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    last = sorted((out / "checkpoints").glob("step-*"))[-1]
    return load_file(last / "trainable.safetensors")


def test_cancel_then_resume_equals_an_uninterrupted_run(corpus, tmp_path):
    # dropout and SpecAugment on: resume must restore the random state too
    kw = dict(steps=4, mask_time_prob=0.2, mask_time_length=2, save_every=2)
    straight = _run(_config(corpus, tmp_path / "a", **kw))
    first = _cancelled_after(_config(corpus, tmp_path / "b", **kw), step=1)
    assert first[-1].checkpoint.name == "step-0000001"
    again = _run(_config(corpus, tmp_path / "b", **kw), resume=True)
    assert next(e for e in again if isinstance(e, JobStarted)).resumed_from_step == 1
    assert _losses(first) + _losses(again) == pytest.approx(_losses(straight), rel=1e-6)
    a, b = _final_weights(tmp_path / "a"), _final_weights(tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight[-1].result.fingerprint == again[-1].result.fingerprint


@pytest.fixture
def ten_second_steps(monkeypatch):
    """The job's clock made a fake one on which set-up takes no time and each step 10 s."""
    from engine.tune import loop

    clock = [0.0]
    monkeypatch.setattr(loop, "_now", lambda: clock[0])
    step = loop.Job._train_step

    def slow(self, s):
        clock[0] += 10.0
        return step(self, s)

    monkeypatch.setattr(loop.Job, "_train_step", slow)
    return clock


def test_a_time_limit_ends_the_job_with_the_learning_rate_at_zero(corpus, tmp_path,
                                                                  ten_second_steps):  # fmt: skip
    config = _config(corpus, tmp_path / "t", steps=100, warmup_steps=0, max_minutes=1.0)
    events = _run(config)
    progress = [e for e in events if isinstance(e, StepProgress)]
    # 60 s of 10 s steps: six, the rate falling linearly in time to 0 at the limit
    assert [e.step for e in progress] == [1, 2, 3, 4, 5, 6]
    assert [e.total_steps for e in progress] == [6] * 6
    assert [e.eta_seconds for e in progress] == pytest.approx([50, 40, 30, 20, 10, 0])
    rates = [e.learning_rate / config.learning_rate for e in progress]
    assert rates == pytest.approx([5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6, 0])
    assert isinstance(events[-1], JobFinished) and events[-1].result.steps == 6


def test_a_time_limited_job_resumes_with_the_time_it_had_left(corpus, tmp_path,
                                                             ten_second_steps):  # fmt: skip
    kw = dict(steps=100, warmup_steps=2, max_minutes=1.0, save_every=2, mask_time_prob=0.2,
              mask_time_length=2)  # fmt: skip
    straight = _run(_config(corpus, tmp_path / "a", **kw))
    first = _cancelled_after(_config(corpus, tmp_path / "b", **kw), step=3)
    ten_second_steps[0] += 3600.0  # an hour with the app closed does not count
    again = _run(_config(corpus, tmp_path / "b", **kw), resume=True)
    rates = [e.learning_rate for e in straight if isinstance(e, StepProgress)]
    resumed = [e.learning_rate for e in first + again if isinstance(e, StepProgress)]
    assert len(rates) == 6 and resumed == pytest.approx(rates)
    assert _losses(first) + _losses(again) == pytest.approx(_losses(straight), rel=1e-6)
    assert straight[-1].result.fingerprint == again[-1].result.fingerprint


def test_an_estimate_counts_the_steps_that_fit_a_time_limit(corpus, tmp_path, monkeypatch):
    from engine.tune.estimate import estimate
    from engine.tune.events import steps_due
    from engine.tune.loop import Job

    refitted = []
    calibrate = Job._calibrate
    monkeypatch.setattr(Job, "_calibrate", lambda job, f: refitted.append(f) or calibrate(job, f))
    config = _config(corpus, tmp_path, steps=100_000, eval_every=5, save_every=7, max_minutes=0.5)
    e = estimate(config)
    assert 0 < e.steps < 100_000
    assert e.evaluations == 2 + (e.steps - 1) // 5
    # the checkpoints and the finish are measured and counted too (before: left out)
    assert e.save_seconds > 0 and e.saves == steps_due(1, e.steps, 7)
    # the finish: the model's write and the calibration refit, measured on the model written
    # (before: reckoned as one evaluation, a quarter to a fifteenth of it)
    assert len(refitted) == 1 and refitted[0].name == "model"
    assert e.finish_seconds > e.refit_seconds > 0
    one_more = e.seconds_per_step + e.eval_seconds + e.save_seconds
    assert 30.0 - one_more < e.total_seconds <= 30.0


def test_a_time_limit_must_be_positive(corpus, tmp_path):
    with pytest.raises(ValueError, match="max_minutes=0"):
        _config(corpus, tmp_path, max_minutes=0)


def test_checkpoints_rotate_and_keep_the_best(corpus, tmp_path):
    # 0.56: 8 of the 16 clips held out (their content keys hash below it), enough to split
    events = _run(_config(corpus, tmp_path / "r", steps=4, save_every=1, eval_every=2,
                          keep_checkpoints=1, heldout_fraction=0.56))  # fmt: skip
    evals = {e.step: e for e in events if isinstance(e, Evaluated)}
    assert next(e for e in events if isinstance(e, JobStarted)).heldout_examples >= MIN_SPLIT_ROWS
    assert set(evals) == {0, 2, 4}
    saved = [e for e in events if isinstance(e, CheckpointSaved)]
    assert [e.step for e in saved] == [1, 2, 3, 4]
    best = events[-1].result.best_step  # chosen by the held-out rows that report no CER
    assert min(evals[2].selection_cer, evals[4].selection_cer) == evals[best].selection_cer
    assert events[-1].result.cer_after == evals[best].cer
    left = sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir())
    assert left == sorted({"step-0000004", f"step-{best:07d}"})


def test_too_few_heldout_rows_keep_the_last_checkpoint_only(corpus, tmp_path):
    events = _run(_config(corpus, tmp_path / "r", steps=4, save_every=1, eval_every=2,
                          keep_checkpoints=1))  # fmt: skip
    evals = {e.step: e for e in events if isinstance(e, Evaluated)}
    assert next(e for e in events if isinstance(e, JobStarted)).heldout_examples < MIN_SPLIT_ROWS
    assert all(e.selection_cer is None for e in evals.values())
    result = events[-1].result
    assert (result.best_step, result.cer_after) == (4, evals[4].cer)
    assert not [e for e in events if isinstance(e, CheckpointSaved) and e.best]
    assert sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir()) == ["step-0000004"]


def test_an_earlier_run_is_not_overwritten_without_resume(corpus, tmp_path):
    _run(_config(corpus, tmp_path / "o", steps=1))
    events = list(run_job(_config(corpus, tmp_path / "o", steps=1)))
    assert isinstance(events[-1], JobFailed) and "--resume" in events[-1].message


def test_a_folder_holding_other_files_is_refused_before_anything_is_written(corpus, tmp_path):
    """`output_dir: .` in a project folder holding the base model at ./model and the user's
    ./cache. (Before: the job replaced ./model with the tuned model and deleted ./cache.)"""
    import shutil

    project = tmp_path / "project"
    shutil.copytree(corpus[0], project / "model")
    (project / "cache").mkdir()
    (project / "cache" / "my-notes.txt").write_text("mine", encoding="utf-8")
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    config = _config(corpus, project, model=str(project / "model"), steps=1)
    (failed,) = run_job(config)
    assert isinstance(failed, JobFailed)
    assert f"output_dir {project} already holds cache, model" in failed.message
    assert "choose an empty or new folder" in failed.message
    (failed,) = run_job(config, resume=True)  # no checkpoints/: nothing to resume, said first
    assert isinstance(failed, JobFailed) and failed.code == "tune.nothing_to_resume"
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before


def test_a_job_runs_again_in_the_folder_it_made(corpus, tmp_path):
    """A run that failed (here: no such data) leaves its folder the job's own: fixed, the job
    runs there again."""
    out = tmp_path / "o"
    failed = list(run_job(_config(corpus, out, data=str(tmp_path / "nope.tsv"))))
    assert isinstance(failed[-1], JobFailed) and "nope.tsv" in failed[-1].message
    assert isinstance(_run(_config(corpus, out, steps=1))[-1], JobFinished)


def test_low_disk_space_fails_with_the_numbers(corpus, tmp_path, monkeypatch):
    import shutil

    import engine.tune.loop

    usage = shutil.disk_usage(tmp_path)._replace(free=1000)
    monkeypatch.setattr(engine.tune.loop.shutil, "disk_usage", lambda path: usage)
    events = list(run_job(_config(corpus, tmp_path / "full")))
    assert isinstance(events[-1], JobFailed)
    assert "GB free" in events[-1].message and "output_dir" in events[-1].message


def test_a_damaged_base_model_fails_with_its_code_for_the_app_to_word(corpus, tmp_path):
    """The job's own load met transformers' SafetensorError, which reached the Tune page as
    'SafetensorError: Error while deserializing header' (no file named, English in the
    Chinese UI): it is the loader's model.bad_weights, carried with its code to the app."""
    from app.errors import failure_text
    from app.i18n import language, set_language

    base = tmp_path / "base"
    shutil.copytree(corpus[0], base)
    weights = base / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    events = list(run_job(_config(corpus, tmp_path / "o", model=str(base), steps=1)))
    failed = events[-1]
    assert isinstance(failed, JobFailed) and failed.code == "model.bad_weights"
    assert str(weights) in failed.message and "copy the model again" in failed.message
    before = language()
    try:
        set_language("zh")
        worded = failure_text(wire.decode(wire.encode(failed)))  # as the app reads it back
    finally:
        set_language(before)
    assert str(weights) in worded and "已损坏或不完整" in worded


def test_bad_data_fails_cleanly(corpus, tmp_path):
    events = list(run_job(_config(corpus, tmp_path / "x", data=str(tmp_path / "nope.tsv"))))
    assert len(events) == 1 and isinstance(events[0], JobFailed)
    assert "nope.tsv" in events[0].message


def test_cli_help_explains_every_setting(capsys):
    from engine.cli import tune

    with pytest.raises(SystemExit):
        tune.main(["--help"])
    text = capsys.readouterr().out
    for name, _, meaning in settings_help():
        assert f"  {name} " in text and meaning.split()[0] in text, name
    assert "--resume" in text and "quick" in text


def test_cli_writes_a_config_then_reports_bad_settings(tmp_path, capsys, monkeypatch):
    from engine.cli import tune

    monkeypatch.chdir(tmp_path)  # the paths typed are read from the current folder
    job = tmp_path / "job.yaml"
    assert tune.main([str(job), "--write-config", "m", "d", "o"]) == 0
    assert TuneConfig.load(job).output_dir == str(tmp_path / "o")
    assert tune.main([str(job), "--set", "steps=0"]) == 2
    assert "steps=0" in capsys.readouterr().err
    assert tune.main([str(job), "--set", "steps=abc"]) == 2  # before: a TypeError traceback
    assert "--set: steps='abc': expected a whole number" in capsys.readouterr().err
    assert tune.main([str(job), "--set", "steps=["]) == 2  # before: a YAML traceback
    assert "--set steps=[: the value is not valid YAML" in capsys.readouterr().err
    job.write_text("# my job, edited by hand\n" + job.read_text(encoding="utf-8"), "utf-8")
    assert tune.main([str(job), "--write-config", "m2", "d", "o"]) == 2  # never replaced
    assert f"{job} exists" in capsys.readouterr().err
    assert job.read_text(encoding="utf-8").startswith("# my job, edited by hand")


def test_cli_shows_the_rows_when_none_is_usable(corpus, tmp_path, capsys):
    """The error said "fix the rows the validation table lists" and no table was shown."""
    from engine.cli import tune

    manifest = tmp_path / "m.tsv"
    manifest.write_text("path\ttext\ngone-1.wav\t天\ngone-2.wav\t地\n", encoding="utf-8")
    job = tmp_path / "job.yaml"
    _config(corpus, tmp_path / "o", data=str(manifest)).save(job)
    assert tune.main([str(job)]) == 1
    err = capsys.readouterr().err
    assert "gone-1.wav" in err and "gone-2.wav" in err  # each row, and what is wrong with it
    assert err.index("gone-2.wav") < err.index("error: ") and "none of 2 rows" in err


def test_traditional_model_keeps_traditional_transcripts(tmp_path):
    chars = "們這說話"
    model = build_model(tmp_path / "m", "tiny", chars=chars)
    data = tone_corpus(tmp_path / "d", 4, chars=chars, char_seconds=0.1)
    config = TuneConfig(model=str(model), data=str(data), output_dir=str(tmp_path / "o"))
    config.min_seconds = 0.1
    job = run_job(config)
    started = next(job)  # stop before any training
    job.close()
    assert isinstance(started, JobStarted), started
    assert started.skipped_rows == 0  # 們 was not rewritten to 们 (unknown to this model)
    assert not any("Simplified" in line for line in started.normalization)


def test_settings_help_reads_field_metadata_not_source(monkeypatch):
    """`tune --help` must work when only bytecode is installed: with inspect unable to read any
    source, every setting still has its meaning (the old parser read the module's text)."""
    import inspect

    def no_source(*args, **kwargs):
        raise OSError("could not get source code")

    monkeypatch.setattr(inspect, "getsource", no_source)
    monkeypatch.setattr(inspect, "getsourcelines", no_source)
    rows = dict((name, meaning) for name, _, meaning in settings_help())
    assert rows["steps"] == "optimizer steps"
    assert "lora" in rows["method"] and all(rows.values())


def test_disk_full_mid_job_keeps_the_last_checkpoint_and_resumes(corpus, tmp_path, small_disk):
    """Another program fills the disk after the first checkpoint: the job ends with one line
    that names the step it could not save and the checkpoint it kept, leaves no partial copy
    behind, and after space is freed `resume` finishes the job. (Before: a bare "[Errno 28]"
    line and a half-written .tmp-step folder holding the space.)"""
    disk = small_disk(24 * 1024 * 1024)
    out = disk / "job"
    filler = disk / "filler"
    events = []
    for event in run_job(_config(corpus, out, steps=3, save_every=1)):
        events.append(event)
        if isinstance(event, CheckpointSaved) and event.step == 1:
            # fill the disk to the last byte
            with open(filler, "wb", buffering=0) as fh, contextlib.suppress(OSError):
                while fh.write(b"\0" * 4096):
                    pass
    assert isinstance(events[-1], JobFailed)
    message = events[-1].message
    assert "checkpoint of step 2" in message and "step-0000001" in message
    assert "resume" in message
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-0000001"]
    filler.unlink()
    again = _run(_config(corpus, out, steps=3, save_every=1), resume=True)
    assert next(e for e in again if isinstance(e, JobStarted)).resumed_from_step == 1
    assert isinstance(again[-1], JobFinished) and (out / "model" / "model.safetensors").is_file()


def test_a_tuned_models_lm_learns_the_training_rows_never_the_heldout_ones(corpus, tmp_path):
    """A base model with an LM (lm/): the tuned model's LM gains a domain n-gram of exactly the
    job's training transcripts (engine.tune.loop passes data.train, never data.heldout, to
    save_merged). Passing every row, or none, fails the sentence count below."""
    import shutil

    from engine.lm import ModelLM, build_model_lm
    from engine.ngram import split_sentences
    from engine.tune.data import from_manifest

    model, _ = corpus
    # 12 rows with distinct transcripts (seed 1), so the sentence count tells the rows apart
    manifest = tone_corpus(tmp_path / "data", 12, chars=CHARS, char_seconds=0.1, seed=1)
    base = tmp_path / "base-lm"
    shutil.copytree(model, base)
    text = tmp_path / "general.txt"
    text.write_text("天地\n人和\n", encoding="utf-8")
    build_model_lm(base, [text], order=2)
    events = _run(_config((base, manifest), tmp_path / "out", steps=1))
    started = next(e for e in events if isinstance(e, JobStarted))
    tuned = ModelLM.from_folder(events[-1].result.model_dir)
    assert tuned is not None and tuned.domain is not None
    rows = from_manifest(manifest).examples
    every = {s for e in rows for s in split_sentences(e.text)}
    config = json.loads((events[-1].result.model_dir / "lm" / "lm.json").read_text("utf-8"))
    assert len(every) == len(rows)
    assert started.heldout_examples > 0
    assert config["domain"]["sentences"] == len(rows) - started.heldout_examples


def test_domain_text_replaces_the_training_rows_in_the_tuned_models_lm(corpus, tmp_path):
    """TuneConfig.domain_text: the tuned model's domain n-gram is built from that file alone
    (general speech mixed into the training rows must not dilute it); a file that cannot be
    read stops the job before its first step, naming the file."""
    import shutil

    from engine.lm import build_model_lm
    from engine.tune.data import from_manifest

    model, manifest = corpus
    base = tmp_path / "base-lm"
    shutil.copytree(model, base)
    general = tmp_path / "general.txt"
    general.write_text("天地\n人和\n", encoding="utf-8")
    build_model_lm(base, [general], order=2)
    domain = tmp_path / "domain.txt"
    domain.write_text("天地人。人和天\n\n和天地\n", encoding="utf-8")
    config = _config((base, manifest), tmp_path / "out", steps=1, domain_text=str(domain))
    events = _run(config)
    lm = json.loads((events[-1].result.model_dir / "lm" / "lm.json").read_text("utf-8"))
    assert lm["domain"]["sentences"] == 3
    # the training rows, 80 % of these, would count more than 3
    assert len({e.text for e in from_manifest(manifest).examples}) >= 8

    missing = tmp_path / "nowhere.txt"
    config = _config((base, manifest), tmp_path / "out2", steps=1, domain_text=str(missing))
    events = list(run_job(config))
    assert isinstance(events[-1], JobFailed) and str(missing) in events[-1].message
    assert not any(isinstance(e, StepProgress) for e in events)


def test_a_finished_job_refits_the_calibration_on_its_heldout_rows_only(
    corpus, tmp_path, monkeypatch
):
    """The tuned model's confidence calibration is refitted on exactly the job's held-out rows
    (engine.tune.evaluate.refit_calibration, tested on the demo model in
    test_ctc_calibration.py), and a failure there leaves the job finished, its model saved."""
    import engine.tune.evaluate as evaluate_module
    from engine.tune.data import from_manifest

    calls = []

    def refit(folder, examples, load=None):
        calls.append((Path(folder), list(examples)))
        raise RuntimeError("no calibration today")

    monkeypatch.setattr(evaluate_module, "refit_calibration", refit)
    config = _config(corpus, tmp_path / "out", steps=1)
    events = _run(config)
    started = next(e for e in events if isinstance(e, JobStarted))
    assert isinstance(events[-1], JobFinished)
    (folder, examples), *more = calls
    assert not more and folder == events[-1].result.model_dir
    assert (folder / "model.safetensors").is_file()
    # its card says what became of the calibration (it did not say whether one was fitted)
    said = "not refitted (no calibration today); confidences shown raw"
    assert read_card(folder).calibration == said
    assert f"- confidence calibration: {said}" in (folder / "README.md").read_text("utf-8")
    assert 0 < len(examples) == started.heldout_examples
    # the job's own held-out rows, not as many other ones
    _, heldout = from_manifest(config.data).split(config.heldout_fraction)
    assert sorted(e.audio for e in examples) == sorted(e.audio for e in heldout)
    # nor does a failed import of the fitting code (a bundle without it, a changed install)
    monkeypatch.setitem(sys.modules, "engine.tune.evaluate", None)
    events = _run(_config(corpus, tmp_path / "again", steps=1))
    assert isinstance(events[-1], JobFinished)
    assert (events[-1].result.model_dir / "model.safetensors").is_file()
