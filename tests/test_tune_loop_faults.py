"""Faults found in the tuning loop (engine.tune.loop, jobs, methods, data, cli.tune), each with
the test that failed before its fix: a 2-layer random model and a tone corpus, seconds a job."""

from __future__ import annotations

import errno
import json
import os
import signal
import threading
from pathlib import Path

import pytest
import test_train
from safetensors.torch import load_file

from engine.tune.config import TuneConfig
from engine.tune.data import Example, TuneDataset
from engine.tune.events import (
    CheckpointSaved,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    StepProgress,
)
from engine.tune.jobs import checkpoint_dirs, claim_output_dir
from engine.tune.loop import Job, run_job
from engine.tune.testdata import tone_corpus

# test_train's base model and tone corpus (bound by name, as pytest finds fixtures), and its job
# settings, here four steps long.
corpus = test_train.corpus


def _config(corpus, out: Path, **overrides) -> TuneConfig:
    return test_train._config(corpus, out, **{"steps": 4, **overrides})


def _stopped(config: TuneConfig, step: int = 1) -> Path:
    """Run `config` until `step` is done, cancel (a checkpoint is kept); its output_dir."""
    cancel = threading.Event()
    for event in run_job(config, cancel=cancel):
        if isinstance(event, StepProgress) and event.step == step:
            cancel.set()
    assert isinstance(event, JobCancelled), event
    return Path(config.output_dir)


def _failure(config: TuneConfig, resume: bool = False) -> JobFailed:
    events = list(run_job(config, resume=resume))
    assert isinstance(events[-1], JobFailed), events[-1]
    return events[-1]


# ---- 1+6: a resumed run with other settings or data -------------------------------------------


def test_resume_refuses_changed_settings_naming_each_old_and_new(corpus, tmp_path):
    """Before: a new learning rate was printed and ignored, another LoRA rank failed with a
    bare "Error(s) in loading state_dict for PeftModel", other data resumed silently."""
    kw = dict(method="lora", preset="quick", learning_rate=None)
    out = _stopped(_config(corpus, tmp_path / "o", **kw))
    failed = _failure(_config(corpus, out, **kw, lora_rank=16), resume=True)
    assert failed.code == "tune.resume_changed"
    assert "lora_rank 8 → 16" in failed.message and "lora_alpha 16.0 → 32.0" in failed.message
    assert "set them back" in failed.message and "new output_dir" in failed.message
    failed = _failure(_config(corpus, out, **{**kw, "learning_rate": 1e-5}), resume=True)
    assert "learning_rate 0.001 → 1e-05" in failed.message and "lora_rank" not in failed.message
    fewer = tmp_path / "fewer.tsv"
    rows = Path(corpus[1]).read_text(encoding="utf-8").splitlines()
    fewer.write_text("\n".join(rows[:-4]).replace("clips/", f"{corpus[1].parent}/clips/") + "\n")
    failed = _failure(_config(corpus, out, **kw, data=str(fewer)), resume=True)
    assert f"data {corpus[1]} → {fewer}" in failed.message
    assert "train_examples" in failed.message
    # steps, evaluations and checkpoints may change: the job goes on to the new end
    events = list(run_job(_config(corpus, out, **kw, steps=6, eval_every=2), resume=True))
    assert isinstance(events[-1], JobFinished) and events[-1].result.steps == 6
    assert next(e for e in events if isinstance(e, JobStarted)).resumed_from_step == 1


def test_an_old_checkpoint_resumes_and_a_changed_shape_is_named(corpus, tmp_path):
    """A checkpoint written before settings were kept: resumed as before; with another LoRA
    rank its weights do not fit, worded as a changed setting naming the checkpoint."""
    kw = dict(method="lora", learning_rate=1e-3)
    out = _stopped(_config(corpus, tmp_path / "o", **kw))
    state_file = next((out / "checkpoints").glob("step-*")) / "state.json"
    state = json.loads(state_file.read_text(encoding="utf-8"))
    state.pop("settings", None)  # as an earlier version wrote it
    state_file.write_text(json.dumps(state), encoding="utf-8")
    failed = _failure(_config(corpus, out, **kw, lora_rank=4), resume=True)
    assert failed.code == "tune.checkpoint_mismatch"
    assert str(state_file.parent) in failed.message and "lora_rank" in failed.message
    assert "size mismatch" in failed.message
    events = list(run_job(_config(corpus, out, **kw), resume=True))
    assert isinstance(events[-1], JobFinished)


# ---- 3: a cancel while the last checkpoint is written -----------------------------------------


def test_a_cancel_during_the_last_checkpoint_finishes_the_job(corpus, tmp_path, monkeypatch):
    """Before: the job ended after the checkpoint with neither its model nor JobCancelled, and
    the CLI exited 0 saying nothing."""
    save, cancel = Job._save_checkpoint, threading.Event()

    def pressed_while_saving(self, best):
        if self.state.step == self.cfg.steps:
            cancel.set()
        return save(self, best)

    monkeypatch.setattr(Job, "_save_checkpoint", pressed_while_saving)
    config = _config(corpus, tmp_path / "o")
    events = list(run_job(config, cancel=cancel))
    assert isinstance(events[-2], CheckpointSaved) and isinstance(events[-1], JobFinished)
    assert (tmp_path / "o" / "model" / "model.safetensors").is_file()


# ---- 4: two runs in one output_dir ------------------------------------------------------------


def test_a_second_job_in_the_same_output_dir_is_refused_at_once(corpus, tmp_path):
    """Before: both ran, overwriting each other's checkpoints, and one died of a bare errno."""
    out = tmp_path / "o"
    held = claim_output_dir(out, resume=False)  # as a running job holds it
    try:
        (failed,) = run_job(_config(corpus, out, steps=1))
    finally:
        held.close()
    assert isinstance(failed, JobFailed) and failed.code == "tune.output_in_use"
    assert f"output_dir {out} is in use by another tuning job (pid {os.getpid()})" in (
        failed.message
    )
    assert not (out / "checkpoints" / "step-0000001").exists()
    # once it ends, the folder is free: a job runs, and another after it
    for resume in (False, True):
        events = list(run_job(_config(corpus, out, steps=1 + resume), resume=resume))
        assert isinstance(events[-1], JobFinished), events[-1]


# ---- 5: LoRA with the feature encoder not frozen ----------------------------------------------


def test_lora_trains_the_feature_encoder_when_it_is_not_frozen(corpus, tmp_path):
    """The help promises it; before, the setting was silently ignored under LoRA."""
    out = tmp_path / "o"
    config = _config(
        corpus, out, method="lora", steps=2, learning_rate=1e-2, freeze_feature_encoder=False
    )
    events = list(run_job(config))
    assert isinstance(events[-1], JobFinished), events[-1]
    checkpoint = sorted((out / "checkpoints").glob("step-*"))[-1]
    trained = [
        k for k in load_file(checkpoint / "trainable.safetensors") if "feature_extractor" in k
    ]
    assert trained
    base, tuned = (load_file(m / "model.safetensors") for m in (corpus[0], out / "model"))
    conv = next(k for k in base if "feature_extractor" in k and k.endswith("weight"))
    assert not (base[conv] == tuned[conv]).all()  # the merged model holds the trained encoder
    adapter = load_file(out / "adapter" / "adapter_model.safetensors")
    assert any("feature_extractor" in k for k in adapter)  # and so does the adapter


# ---- 7: an output_dir that cannot be written --------------------------------------------------


@pytest.mark.parametrize(
    "error, code",
    [(errno.EROFS, "tune.output_unwritable"), (errno.ENOSPC, "tune.output_full")],
)
def test_an_unwritable_or_full_output_dir_is_worded_before_the_model_loads(
    corpus, tmp_path, monkeypatch, error, code
):
    """Before: a full disk said only "[Errno 28] No space left on device"."""
    import engine.tune.jobs as jobs

    def refused(path, text):
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(jobs, "atomic_write_text", refused)
    monkeypatch.setattr(Job, "_load_base", lambda self: pytest.fail("the model was loaded"))
    out = tmp_path / "o"
    (failed,) = run_job(_config(corpus, out))
    assert failed.code == code and f"output_dir {out}" in failed.message
    assert "choose another output_dir" in failed.message
    if error == errno.ENOSPC:
        assert "no space left" in failed.message and "twice the base model" in failed.message


def test_a_stopped_job_whose_checkpoints_cannot_be_written_stops_before_its_steps(
    corpus, tmp_path, monkeypatch
):
    """A resumed job on a read-only folder. Before: it found out at its first checkpoint, the
    steps since lost, and advised freeing space."""
    out = _stopped(_config(corpus, tmp_path / "o"))
    write_bytes = Path.write_bytes

    def read_only(path, data):
        if Path(out / "checkpoints") in path.parents:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", read_only)
    events = list(run_job(_config(corpus, out), resume=True))
    assert not any(isinstance(e, StepProgress) for e in events)
    assert events[-1].code == "tune.output_unwritable"
    assert "not writable" in events[-1].message and "free" not in events[-1].message


# ---- 8: a one-row dataset ---------------------------------------------------------------------


def test_the_only_row_trains_rather_than_being_held_out(corpus, tmp_path):
    """Before: it went to the held-out side, the base model was evaluated, then "no training
    examples to batch"."""
    alone = [Example(tmp_path / "u0000.wav", "天")]
    assert TuneDataset(alone).split(0.999) == (alone, [])
    one = tmp_path / "one.tsv"
    first = Path(corpus[1]).read_text(encoding="utf-8").splitlines()[:2]
    one.write_text("\n".join(first).replace("clips/", f"{corpus[1].parent}/clips/") + "\n")
    events = list(run_job(_config(corpus, tmp_path / "o", data=str(one), heldout_fraction=0.9)))
    started = next(e for e in events if isinstance(e, JobStarted))
    assert (started.train_examples, started.heldout_examples) == (1, 0)
    assert isinstance(events[-1], JobFinished), events[-1]


# ---- 9: clips shorter than a SpecAugment mask -------------------------------------------------


def test_clips_shorter_than_a_time_mask_are_refused_naming_the_settings(tmp_path, corpus):
    """One-character clips (0.13 s) with the presets' masking (10 frames, 0.2 s). Before:
    transformers failed mid-job: "`mask_length` has to be smaller than `sequence_length`"."""
    short = tone_corpus(tmp_path / "short", 8, min_chars=1, max_chars=1, char_seconds=0.1)
    config = _config(corpus, tmp_path / "o", data=str(short), mask_time_prob=None)
    events = list(run_job(config))
    assert not any(isinstance(e, StepProgress | JobStarted) for e in events)
    failed = events[-1]
    assert failed.code == "dataset.clips_shorter_than_mask"
    assert "min_seconds=0.1" in failed.message and "mask_time_length=10" in failed.message
    assert "raise min_seconds to 0.21" in failed.message


# ---- 10: Ctrl+C twice -------------------------------------------------------------------------


@pytest.mark.parametrize("stopped_before", [False, True], ids=["new", "resumed"])
def test_ctrl_c_twice_names_the_last_checkpoint_in_one_line(
    corpus, tmp_path, monkeypatch, capsys, stopped_before
):
    """Before: a 33-line traceback and no word of what there was to resume from."""
    from engine.cli import tune

    out = tmp_path / "o"
    if stopped_before:
        _stopped(_config(corpus, out))
    load = Job._load_base

    def pressed_twice(self):
        os.kill(os.getpid(), signal.SIGINT)  # stop after this step…
        os.kill(os.getpid(), signal.SIGINT)  # …no: abort
        return load(self)

    monkeypatch.setattr(Job, "_load_base", pressed_twice)
    job = tmp_path / "job.yaml"
    _config(corpus, out).save(job)
    try:
        status = tune.main([str(job), *(["--resume"] if stopped_before else [])])
    except KeyboardInterrupt:
        pytest.fail("the second Ctrl+C ended in a traceback")
    assert status == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = [line for line in err.splitlines() if line.strip()][-1]
    if stopped_before:
        checkpoint = out / "checkpoints" / "step-0000001"
        resume = f"aborted; the last complete checkpoint is {checkpoint}: continue with --resume"
        assert last == resume
    else:
        assert last.startswith("aborted before any checkpoint was written")


def test_ctrl_c_on_a_process_other_than_the_main_stops_it_saying_nothing(
    corpus, tmp_path, monkeypatch, capsys
):
    """Under `accelerate launch` Ctrl+C reaches every process and all stop at the same step.
    Before: each printed "stopping after this step…" and "stopped at step N; …": the lines
    doubled; now the main process alone says them."""
    from engine.cli import tune

    load = Job._load_base

    def pressed(self):
        os.kill(os.getpid(), signal.SIGINT)  # stop after this step
        return load(self)

    monkeypatch.setattr(Job, "_load_base", pressed)
    job = tmp_path / "job.yaml"
    _config(corpus, tmp_path / "o").save(job)
    said = {}
    for rank in ("1", "0"):
        monkeypatch.setenv("RANK", rank)
        assert tune.main([str(job), *(["--resume"] if rank == "0" else [])]) == 130
        captured = capsys.readouterr()
        said[rank] = (captured.out + captured.err).strip()
    assert said["1"] == ""
    assert "stopping after this step" in said["0"] and "stopped at step 2" in said["0"], said


# ---- 11: the cache/ of a failed CLI run -------------------------------------------------------


@pytest.mark.parametrize("failed_at", [0, 2], ids=["before-a-checkpoint", "after-one"])
def test_a_failed_cli_run_drops_its_cache_unless_a_checkpoint_resumes_with_it(
    corpus, tmp_path, monkeypatch, capsys, failed_at
):
    """As the app does after its child (`drop_unresumable_cache`). Before: the CLI left cache/
    (the decoded audio and features, up to gigabytes) behind a run that failed before its first
    checkpoint, where nothing resumes from it."""
    from engine.cli import tune

    evaluate = Job._evaluate

    def failing(self):
        assert (self.out / "cache").is_dir()  # written before the held-out evaluation
        if self.state.step == failed_at:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return evaluate(self)

    monkeypatch.setattr(Job, "_evaluate", failing)
    out, job = tmp_path / "o", tmp_path / "job.yaml"
    _config(corpus, out, eval_every=2, save_every=1).save(job)
    assert tune.main([str(job)]) == 1
    assert "error: CUDA error: an illegal memory access" in capsys.readouterr().err
    saved = [p.name for p in checkpoint_dirs(out / "checkpoints")]
    if failed_at == 0:
        assert saved == [] and not (out / "cache").exists()
        return
    assert saved == ["step-0000001"] and (out / "cache").is_dir()  # resume reads it again
    monkeypatch.undo()
    assert tune.main([str(job), "--resume"]) == 0
    assert "resumed at step 1" in capsys.readouterr().out and not (out / "cache").exists()


def test_a_cli_run_refused_its_output_dir_leaves_the_cache_there(corpus, tmp_path, capsys):
    """A folder that is no job's (its cache/ is someone's own), or one another job runs in
    before its first checkpoint: the refused run has no cache/ of its own to remove."""
    from engine.cli import tune

    job = tmp_path / "job.yaml"
    mine = tmp_path / "mine"
    (mine / "cache").mkdir(parents=True)
    (mine / "cache" / "notes.txt").write_text("mine", encoding="utf-8")
    _config(corpus, mine).save(job)
    assert tune.main([str(job)]) == 1
    assert "not written by a tuning job" in capsys.readouterr().err
    assert (mine / "cache" / "notes.txt").is_file()
    busy = tmp_path / "busy"
    held = claim_output_dir(busy, resume=False)  # as a running job holds it
    try:
        (busy / "cache" / "train").mkdir(parents=True)
        _config(corpus, busy).save(job)
        assert tune.main([str(job)]) == 1
        assert "in use by another tuning job" in capsys.readouterr().err
        assert (busy / "cache" / "train").is_dir()
    finally:
        held.close()


# ---- the held-out CER of a model whose output padding changes ---------------------------------


@pytest.mark.parametrize("kind", ["data2vec-audio", "group-norm wav2vec2"])
def test_the_heldout_cer_is_measured_as_transcription_runs_the_model(tmp_path, kind):
    """data2vec-audio's positional convolutions carry padding into the last real frames, and a
    group-norm feature encoder normalizes over the padding too: the transcriber runs such a
    model on each length apart, but the held-out rows ran padded into batches, so the CER
    before and after tuning was not the one the user gets, and changed with
    micro_batch_seconds. Measured with each row alone, the base model's CER is the same."""
    from engine.testmodels import build_model
    from engine.tune.events import Evaluated

    model_type = "data2vec-audio" if kind == "data2vec-audio" else "wav2vec2"
    base = build_model(tmp_path / "base", "tiny", chars="天地人和", model_type=model_type, seed=0)
    if kind.startswith("group"):
        config = json.loads((base / "config.json").read_text(encoding="utf-8"))
        config.update(feat_extract_norm="group", do_stable_layer_norm=False)
        (base / "config.json").write_text(json.dumps(config), encoding="utf-8")
    # clips of 0.6-1.2 s: a micro-batch of 1 s holds one, one of 8 s holds the held-out rows
    manifest = tone_corpus(tmp_path / "data", 24, char_seconds=0.3, seed=1)
    measured = []
    for limit in (8.0, 1.0):
        out = tmp_path / f"out-{limit}"
        events = list(
            run_job(
                _config(
                    (base, manifest), out, steps=1, micro_batch_seconds=limit, heldout_fraction=0.5
                )
            )
        )
        before = next(e for e in events if isinstance(e, Evaluated) and e.step == 0)
        measured.append((before.result, before.samples))
    assert measured[0] == measured[1]


# ---- resume with nothing to resume --------------------------------------------------------------


def test_resume_without_a_checkpoint_is_refused_before_any_work(corpus, tmp_path, monkeypatch):
    """Before: `tune --resume` into an output_dir without checkpoints (a mistyped path) started
    a new job from step 0, minutes of work the user did not ask for. Now it is refused, naming
    the folder, before the model loads or the folder is made."""
    loaded = []
    monkeypatch.setattr(Job, "_load_base", lambda self: loaded.append(self) or 1 / 0)
    out = tmp_path / "typo"
    events = list(run_job(_config(corpus, out), resume=True))
    assert len(events) == 1 and events[0].code == "tune.nothing_to_resume", events
    assert str(out) in events[0].message and "without --resume" in events[0].message
    assert not loaded and not out.exists()
    (out / "checkpoints").mkdir(parents=True)  # a job that stopped before its first checkpoint
    events = list(run_job(_config(corpus, out), resume=True))
    assert len(events) == 1 and events[0].code == "tune.nothing_to_resume", events
    assert not loaded


# ---- the time a running job has left ----------------------------------------------------------


@pytest.fixture
def fake_clock(monkeypatch):
    """The job's clock made a fake one, and `take(seconds, name)` makes Job's method `name`
    take that many seconds of it. The model's write is reckoned as the timed work its prior
    scales (the base's load, a checkpoint's write), bytes aside."""
    from engine.tune import loop

    clock = [0.0]
    monkeypatch.setattr(loop, "_now", lambda: clock[0])
    monkeypatch.setattr(loop, "_scaled", lambda seconds, bytes_to, bytes_from: seconds)

    def take(seconds: float, name: str) -> None:
        work = getattr(Job, name)

        def timed(self, *args):
            clock[0] += seconds
            return work(self, *args)

        monkeypatch.setattr(Job, name, timed)

    return clock, take


def _timed_job(config: TuneConfig, clock: list[float]) -> tuple[JobStarted, list, list, float]:
    """The job's JobStarted and StepProgress events, the clock's time at each StepProgress,
    and its time when the job ends."""
    progress, at = [], []
    for event in run_job(config):
        assert not isinstance(event, JobFailed), event.message
        if isinstance(event, JobStarted):
            started = event
        if isinstance(event, StepProgress):
            progress.append(event)
            at.append(clock[0])
    assert isinstance(event, JobFinished), event
    return started, progress, at, clock[0]


def test_the_time_left_counts_evaluations_checkpoints_and_the_finish(corpus, tmp_path,
                                                                   fake_clock):  # fmt: skip
    """Before: StepProgress.eta_seconds was the steps' time alone, 0 s at the last step while
    its evaluation, its checkpoint and the finish were still to run (57 s in a small job).
    On a fake clock: 10 s a step, 3 s an evaluation, 1 s a checkpoint."""
    _, take = fake_clock
    take(10.0, "_train_step")
    take(3.0, "_measure")
    take(1.0, "_rotate")
    config = _config(corpus, tmp_path / "o", eval_every=2, save_every=3)
    progress = [e for e in run_job(config) if isinstance(e, StepProgress)]
    assert [e.step for e in progress] == [1, 2, 3, 4]
    # step 1: steps 2-4 (30 s), evaluations at 2 and 4 and the refit's prior (9 s, the base
    # model's load taking none of this clock); no checkpoint timed yet
    assert progress[0].eta_seconds == pytest.approx(39.0)
    # the last step: its evaluation and the refit, its checkpoint and the model's write
    assert progress[-1].eta_seconds == pytest.approx(2 * 3.0 + 2 * 1.0)


def test_the_calibration_refit_is_timed_as_its_own_part(corpus, tmp_path, fake_clock):
    """Before: the refit at the finish was reckoned as one evaluation (3 s here) though it
    loads the saved model again and transcribes the rows as users get them (4-15x one,
    measured). Until it runs, it is reckoned as a load (5 s) and an evaluation (3 s)."""
    clock, take = fake_clock
    take(10.0, "_train_step")
    take(3.0, "_measure")
    take(5.0, "_load_base")
    take(8.0, "_calibrate")
    take(5.0, "_write_model")
    config = _config(corpus, tmp_path / "o", steps=2, save_every=0)
    _, progress, at, end = _timed_job(config, clock)
    # the last step's evaluation (3 s), the model's write (its prior: the load, 5 s), then the
    # refit (5 + 3 s); no checkpoint timed yet
    assert progress[-1].eta_seconds == pytest.approx(3.0 + 5.0 + 8.0)
    assert end - at[-1] == pytest.approx(3.0 + 5.0 + 8.0)  # the fake checkpoints take no time


def test_a_new_best_steps_checkpoint_is_counted_in_the_time_left(corpus, tmp_path, fake_clock):
    """Before: checkpoints were counted every save_every steps only, not those a new best step
    adds at an evaluation between them (each 1 s here): the time left ran short of the time
    the job then took."""
    clock, take = fake_clock
    take(10.0, "_train_step")
    take(1.0, "_rotate")
    # 0.56: 8 of the 16 clips held out, enough to split (their keys hash below it)
    config = _config(corpus, tmp_path / "o", heldout_fraction=0.56, eval_every=1, save_every=0)
    started, progress, at, end = _timed_job(config, clock)
    assert started.selection_examples > 0  # split: an evaluation may choose a best step
    # step 2 of 4 (step 1's checkpoint timed: the first evaluation finds a best step): steps 3
    # and 4, a checkpoint each may add after 2, 3 and 4, and the tuned model's write
    assert progress[1].eta_seconds == pytest.approx(20.0 + 4 * 1.0)
    assert all(end - t <= e.eta_seconds for e, t in zip(progress[1:], at[1:], strict=True))


def _take_phases(take) -> None:
    """The fake clock's phases of the time-limit tests: a step 10 s, a held-out pass 3 s, a
    checkpoint 1 s, the base's load 5 s, the calibration refit 8 s."""
    take(10.0, "_train_step")
    take(3.0, "_measure")
    take(1.0, "_rotate")
    take(5.0, "_load_base")
    take(8.0, "_calibrate")


def test_a_time_limited_job_finishes_within_its_limit(corpus, tmp_path, fake_clock):
    """Before: steps ran while one more fitted in max_minutes, and the last step's evaluation
    and checkpoint, the tuned model's write and the calibration refit ran past it (70 s of a
    60 s limit here). Now the steps stop where the finish, as timed so far, still fits."""
    clock, take = fake_clock
    _take_phases(take)
    take(5.0, "_write_model")
    config = _config(corpus, tmp_path / "o", steps=100, warmup_steps=0, max_minutes=1.0,
                     save_every=0)  # fmt: skip
    _, progress, _, end = _timed_job(config, clock)
    # set-up 5 s and the base's evaluation 3 s; 3 steps (30 s); the last's evaluation 3 s and
    # checkpoint 1 s, the model's write 5 s, the refit 8 s: 55 s. A fourth would end at 65 s.
    assert [e.step for e in progress] == [1, 2, 3] and end == pytest.approx(55.0)
    assert progress[-1].learning_rate == pytest.approx(0.0, abs=0.2 * config.learning_rate)


def test_a_resumed_time_limited_job_finishes_within_its_limit(corpus, tmp_path, fake_clock):
    """Before: a resumed run skips the base's evaluation, so it had timed no evaluation and no
    refit: it ran past its limit (65 s of 60), its time left read 0 s at the last step while
    12 s remained, and its learning rate did not reach 0. Now a checkpoint keeps its phases'
    seconds, and the resumed run starts from them."""
    clock, take = fake_clock
    _take_phases(take)
    out = _stopped(_config(corpus, tmp_path / "o", steps=100, warmup_steps=0, save_every=0))
    state = json.loads((checkpoint_dirs(out / "checkpoints")[-1] / "state.json").read_text())
    clock[0] = 0.0  # a new process: the job's seconds go on from the checkpoint's
    config = _config(corpus, out, steps=100, warmup_steps=0, save_every=0, max_minutes=1.0)
    progress, at = [], []
    for event in run_job(config, resume=True):
        assert not isinstance(event, JobFailed), event.message
        if isinstance(event, StepProgress):
            progress.append(event)
            at.append(clock[0])
    assert isinstance(event, JobFinished), event
    assert state["seconds"] + clock[0] <= 60.0
    # the last step: its evaluation (3 s), checkpoint (1 s) and the refit (8 s) still to run
    assert progress[-1].eta_seconds >= clock[0] - at[-1] == pytest.approx(12.0)
    assert progress[-1].learning_rate == pytest.approx(0.0, abs=0.2 * config.learning_rate)


def test_a_checkpoint_without_phase_seconds_still_resumes(corpus, tmp_path):
    """A checkpoint of a version before the phases' seconds were kept resumes on priors."""
    out = _stopped(_config(corpus, tmp_path / "o"))
    path = checkpoint_dirs(out / "checkpoints")[-1] / "state.json"
    record = json.loads(path.read_text())
    assert set(record.pop("phases")) == {"evaluation", "refit", "save", "write"}
    path.write_text(json.dumps(record))
    events = list(run_job(_config(corpus, out), resume=True))
    assert isinstance(events[-1], JobFinished), events[-1]
