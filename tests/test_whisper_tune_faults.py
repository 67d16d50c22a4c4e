"""Faults in the Whisper tuning job (engine.tune.whisper_job, whisper_lora) found by reading it
against the wav2vec2 job's hardening (tests/test_tune_loop_faults.py), each with the test that
failed before its fix: a tiny random Whisper in a CTranslate2 folder and a tone corpus with no
held-out rows (nothing to transcribe), seconds a job."""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import test_calibration_faults

from engine.tune.config import TuneConfig
from engine.tune.events import (
    CheckpointSaved,
    CheckpointSetAside,
    Evaluated,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    StepProgress,
)
from engine.tune.jobs import OutputDirError, checkpoint_dirs, claim_output_dir
from engine.tune.loop import run_job
from engine.tune.testdata import tone_corpus


@pytest.fixture(scope="module")
def whisper_corpus(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny Whisper as the app runs Whisper (a CTranslate2 folder) and a manifest of eight
    tone clips: (base, manifest)."""
    from engine.tune.whisper_lora import build_tiny_whisper, convert_for_ctranslate2

    tokenizer = test_calibration_faults._need_whisper()
    where = tmp_path_factory.mktemp("whisper-tune")
    base = convert_for_ctranslate2(build_tiny_whisper(where / "hf", tokenizer), where / "base")
    return base, tone_corpus(where / "tones", 8)


def _config(whisper_corpus, out: Path, **overrides) -> TuneConfig:
    base, manifest = whisper_corpus
    settings = {"data": str(manifest), "steps": 1, "learning_rate": 1e-3, "heldout_fraction": 0.0}
    return TuneConfig(model=str(base), output_dir=str(out), **{**settings, **overrides})


def _stopped(config: TuneConfig) -> Path:
    """Run `config` until its first step is done, cancel (a checkpoint is kept); its
    output_dir."""
    cancel = threading.Event()
    for event in run_job(config, cancel=cancel):
        if isinstance(event, StepProgress):
            cancel.set()
    assert isinstance(event, JobCancelled) and event.checkpoint is not None, event
    return Path(config.output_dir)


# ---- 1: two jobs in one output_dir ------------------------------------------------------------


@pytest.mark.slow
def test_a_running_whisper_job_holds_its_output_dir_until_it_ends(whisper_corpus, tmp_path):
    """Before: the job dropped the lock claim_output_dir gave it, so a second job was let into
    the folder at once and the two overwrote each other's checkpoints."""
    out = tmp_path / "o"
    events = run_job(_config(whisper_corpus, out))
    assert isinstance(next(events), JobStarted)  # the job runs, its model loaded
    with pytest.raises(OutputDirError) as refused:
        claim_output_dir(out, resume=False)
    assert refused.value.code == "tune.output_in_use"
    assert f"(pid {os.getpid()})" in str(refused.value)
    assert isinstance(list(events)[-1], JobFinished)
    claim_output_dir(out, resume=True).close()  # once it ends, the folder is free
    # and so after a cancel, and after a run abandoned midway (Ctrl+C twice, a failure)
    cancel = threading.Event()
    cancel.set()  # Ctrl+C while the model loads
    cancelled = tmp_path / "c"
    *_, last = run_job(_config(whisper_corpus, cancelled), cancel=cancel)
    assert isinstance(last, JobCancelled)
    claim_output_dir(cancelled, resume=True).close()
    abandoned = tmp_path / "a"
    events = run_job(_config(whisper_corpus, abandoned))
    next(events)
    events.close()
    claim_output_dir(abandoned, resume=False).close()


# ---- 2: a resumed run with other settings or data ---------------------------------------------


@pytest.mark.slow
def test_a_resumed_whisper_job_names_each_changed_setting_and_lets_steps_change(
    whisper_corpus, tmp_path
):
    """Before: any change was refused as "saved by a job with other data or settings" without
    saying which, once the model had loaded; a new step count, which a wav2vec2 job takes on
    resume, among them."""
    out = _stopped(_config(whisper_corpus, tmp_path / "o", steps=3))

    def refused(**changed) -> str:
        events = list(run_job(_config(whisper_corpus, out, **changed), resume=True))
        assert not any(isinstance(e, JobStarted) for e in events)  # before the model loads
        failed = events[-1]
        assert isinstance(failed, JobFailed) and failed.code == "tune.resume_changed", failed
        assert str(out) in failed.message and "new output_dir" in failed.message
        return failed.message

    message = refused(learning_rate=1e-2, lora_rank=4)
    assert "learning_rate 0.001 → 0.01" in message and "lora_rank 16 → 4" in message
    assert "lora_alpha 32.0 → 8.0" in message and "set them back" in message
    manifest = whisper_corpus[1]
    fewer = tmp_path / "fewer.tsv"
    rows = manifest.read_text(encoding="utf-8").splitlines()
    fewer.write_text("\n".join(rows[:-2]).replace("clips/", f"{manifest.parent}/clips/") + "\n")
    message = refused(data=str(fewer))
    assert f"data {manifest} → {fewer}" in message and "train_examples 8 rows" in message
    assert "learning_rate" not in message
    events = list(run_job(_config(whisper_corpus, out, steps=2), resume=True))
    assert next(e for e in events if isinstance(e, JobStarted)).resumed_from_step == 1
    assert [e.step for e in events if isinstance(e, StepProgress)] == [2]
    assert isinstance(events[-1], JobFinished) and events[-1].result.steps == 2


# ---- 3: a full disk when the tuned model is written -------------------------------------------


@pytest.mark.slow
def test_a_full_disk_at_the_tuned_whisper_model_keeps_the_last_checkpoint_to_resume(
    whisper_corpus, tmp_path, monkeypatch
):
    """Every step trained and checkpointed, then no room for the model. Before: the job said
    only "[Errno 28] No space left on device", not what was kept nor how to go on."""
    from engine.tune import whisper_lora

    write = whisper_lora.atomic_folder

    def full(target: Path, what):
        if target.name in ("adapter", "hf", "model"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write(target, what)

    monkeypatch.setattr(whisper_lora, "atomic_folder", full)
    config = _config(whisper_corpus, tmp_path / "o")
    *_, saved, failed = run_job(config)
    assert isinstance(saved, CheckpointSaved) and isinstance(failed, JobFailed)
    assert failed.code == "tune.checkpoint_full"
    assert "the tuned model could not be written" in failed.message
    assert "(step-0000001) is kept; free some space, then resume the job" in failed.message
    monkeypatch.setattr(whisper_lora, "atomic_folder", write)  # space freed: resume finishes
    events = list(run_job(config, resume=True))
    assert isinstance(events[-1], JobFinished) and events[-1].result.steps == 1


# ---- 4: device, precision and the CTC loop's settings -----------------------------------------


@pytest.mark.slow
def test_a_whisper_job_honours_device_and_precision_or_says_why_not(
    whisper_corpus, tmp_path, monkeypatch
):
    """Before: the job trained on "cpu fp32" whatever `device` and `precision` said, without a
    word (device=cuda on a machine without one included)."""
    import torch

    *_, last = run_job(_config(whisper_corpus, tmp_path / "fp16", precision="fp16"))
    assert isinstance(last, JobFailed) and "precision=fp16" in last.message, last
    started = next(run_job(_config(whisper_corpus, tmp_path / "bf16", precision="bf16")))
    assert isinstance(started, JobStarted) and started.precision == "bf16", started
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    *_, last = run_job(_config(whisper_corpus, tmp_path / "cuda", device="cuda"))
    assert isinstance(last, JobFailed) and last.code == "model.no_cuda", last
    assert "device=cuda" in last.message


def test_a_whisper_job_names_the_settings_it_does_not_use(whisper_corpus, tmp_path, caplog):
    """Before: lora_dropout, weight_decay, gradient_checkpointing and the other settings of the
    CTC loop were taken and ignored without a word."""
    from engine.tune.whisper_job import unused_settings

    assert unused_settings(_config(whisper_corpus, tmp_path / "d").resolved()) == []
    config = _config(
        whisper_corpus,
        tmp_path / "o",
        lora_dropout=0.5,
        weight_decay=0.1,
        gradient_checkpointing=True,
        warmup_steps=0,
    )
    named = ["lora_dropout", "warmup_steps", "weight_decay", "gradient_checkpointing"]
    assert unused_settings(config.resolved()) == named
    events = run_job(config)
    assert isinstance(next(events), JobStarted)
    events.close()
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "lora_dropout=0.5" in warning and "gradient_checkpointing=True" in warning, warning


# ---- 5: a damaged last checkpoint -------------------------------------------------------------


def _stopped_after_two(config: TuneConfig) -> list[Path]:
    """Run `config` (save_every=1) until its second step is done and cancel; its two
    checkpoints."""
    cancel = threading.Event()
    for event in run_job(config, cancel=cancel):
        if isinstance(event, StepProgress) and event.step == 2:
            cancel.set()
    found = checkpoint_dirs(Path(config.output_dir) / "checkpoints")
    assert [p.name for p in found] == ["step-0000001", "step-0000002"], found
    return found


def _emptied(path: Path) -> None:
    path.write_bytes(b"")


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("optimizer.pt", _emptied),
        ("trainable.safetensors", _cut_in_half),
        ("state.json", _cut_in_half),
    ],
    ids=["optimizer-emptied", "weights-cut-short", "state-cut-short"],
)
def test_a_damaged_last_whisper_checkpoint_resumes_from_the_one_before(
    whisper_corpus, tmp_path, name, damage
):
    """As a CTC job does (tests/test_durable_faults2.py). Before: the resume failed ("a damaged
    checkpoint (…); start the job again in a new folder", or "not a state Tingxie wrote") while
    the checkpoint before it was whole."""
    config = _config(whisper_corpus, tmp_path / "o", steps=3, save_every=1, keep_checkpoints=2)
    _, last = _stopped_after_two(config)
    damage(last / name)
    events = list(run_job(config, resume=True))
    assert isinstance(events[-1], JobFinished), events[-1]
    started, told = events[:2]
    assert isinstance(started, JobStarted) and started.resumed_from_step == 1
    # told right after the start: which checkpoint, where it is kept, the step resumed from
    (kept,) = (tmp_path / "o" / "checkpoints").glob("damaged-step-0000002-*")
    assert told == CheckpointSetAside(last, kept, told.problem, 1), told
    assert told.problem.startswith(f"{name}: ")
    assert [e.step for e in events if isinstance(e, StepProgress)] == [2, 3]
    assert [p.name for p in checkpoint_dirs(tmp_path / "o" / "checkpoints")] == [
        "step-0000002",
        "step-0000003",
    ]


@pytest.mark.slow
def test_no_readable_whisper_checkpoint_names_each_file_and_the_way_out(whisper_corpus, tmp_path):
    config = _config(whisper_corpus, tmp_path / "o", steps=3, save_every=1, keep_checkpoints=2)
    first, last = _stopped_after_two(config)
    _emptied(last / "trainable.safetensors")
    (first / "optimizer.pt").unlink()
    failed = list(run_job(config, resume=True))[-1]
    assert isinstance(failed, JobFailed) and failed.code == "tune.checkpoints_unreadable", failed
    assert failed.message.startswith(f"{tmp_path / 'o'}: no checkpoint there can be read")
    assert str(last / "trainable.safetensors") in failed.message
    assert str(first / "optimizer.pt") in failed.message and "afresh" in failed.message
    assert checkpoint_dirs(tmp_path / "o" / "checkpoints") == [first, last]  # left as they were


# ---- resume with nothing to resume; the card's held-out rows -----------------------------------


@pytest.mark.slow
def test_resuming_a_whisper_job_without_a_checkpoint_is_refused_before_any_work(
    whisper_corpus, tmp_path
):
    """Before: refused only once the audio was decoded and the model loaded, and the mistyped
    output_dir was made. Now refused first, as a CTC job is, naming the folder."""
    out = tmp_path / "typo"
    events = list(run_job(_config(whisper_corpus, out), resume=True))
    assert len(events) == 1 and events[0].code == "tune.nothing_to_resume", events
    assert str(out) in events[0].message and "without --resume" in events[0].message
    assert not out.exists()


@pytest.mark.slow
def test_a_whisper_card_says_which_rows_measured_its_cer(whisper_corpus, tmp_path):
    """Before: its card gave no cer_rows, so it did not say the CER was measured on held-out
    rows that chose nothing (a Whisper job measures once, at the end)."""
    from engine.tune.export import read_card

    out = tmp_path / "o"
    events = list(run_job(_config(whisper_corpus, out, heldout_fraction=0.25)))
    assert isinstance(events[-1], JobFinished), events[-1]
    heldout = next(e for e in events if isinstance(e, JobStarted)).heldout_examples
    card = read_card(out / "model")
    assert heldout > 0 and card.cer_rows == heldout
    assert f"on {heldout} rows not used to choose the checkpoint" in card.cer_line()


@pytest.mark.slow
def test_a_whisper_estimate_counts_its_checkpoints_and_fits_its_time_limit(
    whisper_corpus, tmp_path
):
    """Before: no checkpoint or model write in its total, "cpu" whatever the job trained on,
    and under a time limit one evaluation taken from the limit but two counted, so the total
    passed it."""
    from engine.tune.estimate import estimate
    from engine.tune.events import steps_due
    from engine.tune.whisper_job import runtime

    config = _config(
        whisper_corpus, tmp_path / "e", steps=100_000, save_every=50, heldout_fraction=0.25
    )
    measured = estimate(replace(config, max_minutes=0.5), steps=2)
    assert measured.device == runtime(config.resolved())[0]
    # the base's pass, and the same pass on the tuned model: the refit, a part of the finish
    assert measured.measured_steps == 2 and measured.evaluations == 1
    assert measured.refit_seconds == measured.eval_seconds > 0
    # the tuned model's write, reckoned as the base's load (a part of the setup), then the refit
    assert 0 < measured.finish_seconds - measured.refit_seconds <= measured.setup_seconds
    assert measured.save_seconds > 0
    assert measured.saves == steps_due(1, measured.steps, 50)
    assert 0 < measured.steps < 100_000 and measured.total_seconds <= 30.0
    assert not (tmp_path / "e").exists()  # measured in a scratch folder


@pytest.mark.slow
def test_a_time_limited_whisper_job_finishes_within_its_limit(
    whisper_corpus, tmp_path, monkeypatch
):
    """Before: steps ran while one more fitted in max_minutes, and the last checkpoint, the
    tuned model's write and its held-out pass and calibration ran past it (67 s of a 60 s limit
    here). Now the steps stop where the finish, as timed so far, still fits. On a fake clock:
    10 s a step (four forward passes of 2.5 s), 1 s a checkpoint, 8 s a held-out pass."""
    from types import SimpleNamespace

    from engine.tune import whisper_job, whisper_lora

    clock = [0.0]
    fake = SimpleNamespace(monotonic=lambda: clock[0])
    monkeypatch.setattr(whisper_job, "time", fake)
    monkeypatch.setattr(whisper_lora, "time", fake)

    def taking(seconds: float, work):
        def timed(*args, **kw):
            clock[0] += seconds
            return work(*args, **kw)

        return timed

    batch, save, rows = whisper_lora._batch, whisper_lora._save, whisper_job.heldout_rows
    monkeypatch.setattr(whisper_lora, "_batch", taking(2.5, batch))  # 7 or 8 utterances, by 2
    monkeypatch.setattr(whisper_lora, "_save", taking(1.0, save))
    monkeypatch.setattr(whisper_job, "heldout_rows", taking(8.0, rows))
    config = _config(whisper_corpus, tmp_path / "o", steps=100, max_minutes=1.0, save_every=0,
                     heldout_fraction=0.25)  # fmt: skip
    events = list(run_job(config))
    assert isinstance(events[-1], JobFinished), events[-1]
    progress = [e for e in events if isinstance(e, StepProgress)]
    # the base's pass 8 s; 4 steps (48 s); the last's checkpoint 1 s, the tuned model's pass 8 s
    assert [e.step for e in progress] == [1, 2, 3, 4] and clock[0] == pytest.approx(57.0)
    assert progress[-1].eta_seconds == pytest.approx(8.0)  # the refit; no checkpoint timed yet


@pytest.mark.parametrize("resume", [False, True])
def test_a_time_limited_whisper_job_resumed_keeps_room_for_its_finish(
    tmp_path, monkeypatch, resume
):
    """A resumed Whisper job found its base's CER measured by the earlier run and reserved
    nothing for the finish's held-out pass: 145 s of a 120 s limit. The pass's seconds are kept
    beside the CER (`_measured_before`). The job's parts are replaced by a fake clock: a step
    10 s, each held-out pass 30 s, the set-up 5 s, 20 s used before a resume."""
    import types

    from engine.tune import whisper_job as wj
    from engine.tune import whisper_lora as wl

    clock = [0.0]
    monkeypatch.setattr(wj, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))

    def prepare(config):
        clock[0] += 5
        report = types.SimpleNamespace(table=lambda: "", left_out=0)
        prepared = types.SimpleNamespace(
            train=[1] * 8, heldout=[1] * 4, report=report, normalize=None
        )
        options = types.SimpleNamespace(steps=100, device="cpu", precision="fp32")
        return types.SimpleNamespace(
            prepared=prepared, examples=[1] * 8, seconds=10.0, base=tmp_path / "base",
            options=options,
        )  # fmt: skip

    def tune(base, examples, out, options, *, steps_that_fit, checkpoints, stop, resume):
        done = 1 if resume else 0
        yield wl.WhisperReady(1, 2, done, 20.0 if resume else 0.0, ())
        total = options.steps
        while done < total:
            clock[0] += 10
            done += 1
            total = min(options.steps, done + steps_that_fit(done, 10.0))
            yield wl.WhisperStep(done, 1.0, 0.0, 8, total, 10.0)

    def passed(*_args, **_kwargs):
        clock[0] += 30
        return []

    monkeypatch.setattr(wj, "prepare_job", prepare)
    monkeypatch.setattr(wl, "tune_whisper_lora", tune)
    monkeypatch.setattr(wj, "describe", lambda n: ())
    monkeypatch.setattr(
        wj, "heldout_cer", lambda *a, **k: passed() or Evaluated(step=0, cer=0.5, result=None)
    )
    monkeypatch.setattr(wj, "heldout_rows", passed)
    monkeypatch.setattr(wj, "_evaluated", lambda rows, step: Evaluated(step, 0.4, None))
    monkeypatch.setattr(wj, "_calibrate", lambda *a: "none")
    monkeypatch.setattr(wj, "check_resumable", lambda *a: None)
    monkeypatch.setattr(wj, "_settings", lambda *a: {})
    monkeypatch.setattr(wj, "checkpoint_dirs", lambda *a: [tmp_path / "ckpt"])
    monkeypatch.setattr(wj, "_heldout_key", lambda *a: "rows")
    monkeypatch.setattr(wj.ModelCard, "write", lambda self, path: None)
    out = tmp_path / "job"
    (out / "model").mkdir(parents=True)
    (out / "model" / "model.bin").write_bytes(b"the tuned model")  # what the fake tune made
    (out / wj._BEFORE).write_text('{"heldout": "rows", "cer": 0.5, "seconds": 30.0}')
    config = TuneConfig(
        model="whisper-base", data="x", output_dir=str(out), max_minutes=2.0, save_every=0
    )
    events = list(wj._run_claimed(config, threading.Event(), resume))
    steps = [e for e in events if isinstance(e, StepProgress)]
    used_before = 20.0 if resume else 0.0
    assert isinstance(events[-1], JobFinished), events[-1]
    assert used_before + clock[0] <= 120.0  # the finish within the limit
    assert steps[-1].eta_seconds >= 30.0  # the finish's pass still counted at the last step


# ---- a damaged base folder ------------------------------------------------------------------


def _damaged(base: Path, folder: Path, how: str) -> Path:
    """A copy of the CTranslate2 folder `base` with tokenizer.json removed ("notok") or its
    model.bin cut short ("trunc")."""
    import shutil

    shutil.copytree(base, folder)
    if how == "notok":
        (folder / "tokenizer.json").unlink()
    else:
        (folder / "model.bin").write_bytes((folder / "model.bin").read_bytes()[:4096])
    return folder


def test_the_tune_check_blocks_a_whisper_base_missing_a_file(whisper_corpus, tmp_path):
    """Before: the data check let the job start, and it failed after its set-up with "no file
    named model.safetensors, or pytorch_model.bin" (transformers weights, which a CTranslate2
    folder never has)."""
    from engine.tune.prepare import check_data

    base = _damaged(whisper_corpus[0], tmp_path / "notok", "notok")
    config = replace(_config(whisper_corpus, tmp_path / "out"), model=str(base)).resolved()
    blocking = [i for i in check_data([config.data], config).issues if i.blocking]
    assert [(i.kind, i.code) for i in blocking] == [("no_model", "model.whisper_incomplete")]
    assert "missing tokenizer.json" in blocking[0].detail
    [event] = [e for e in run_job(config) if isinstance(e, JobFailed)]
    assert "missing tokenizer.json" in event.message and "safetensors" not in event.message


def test_a_whisper_job_on_a_cut_short_model_bin_says_it_is_damaged(whisper_corpus, tmp_path):
    """Before: numpy's "When changing to a larger dtype, its size must be a divisor…", or
    struct's "unpack_from requires a buffer", named no file."""
    from engine.model import ModelLoadError
    from engine.tune.whisper_lora import read_ctranslate2_weights

    base = _damaged(whisper_corpus[0], tmp_path / "trunc", "trunc")
    with pytest.raises(ModelLoadError) as e:
        read_ctranslate2_weights(base / "model.bin")
    assert e.value.code == "model.whisper_load_failed" and str(base) in str(e.value)
    config = replace(_config(whisper_corpus, tmp_path / "out"), model=str(base))
    [event] = [e for e in run_job(config) if isinstance(e, JobFailed)]
    assert "model.bin is cut short or damaged" in event.message, event.message
