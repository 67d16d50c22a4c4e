"""The same tuning job data-parallel: 2 CPU processes (gloo) under `accelerate launch`, and
the faults of multi-process tuning, each with the test that failed before its fix (a job run by
tests/ddp_job.py, which can make one process differ from the other)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from engine.errors import TingxieError
from engine.model import LoadOptions, load_model
from engine.testmodels import build_model
from engine.tune.batching import Cursor, steps_from
from engine.tune.config import TuneConfig
from engine.tune.events import JobFailed, JobFinished, StepProgress
from engine.tune.loop import Job, run_job
from engine.tune.testdata import tone_corpus

ROOT = Path(__file__).resolve().parents[1]
STEPS = 3
# Weights after STEPS steps of two processes vs one: the difference of their updates relative
# to the update itself. Measured 3e-6 (full) and 5e-7 (lora): summation order, DDP averages
# two partial gradients. Both processes training on the same half of each step gives 0.34.
UPDATE_TOLERANCE = 1e-3
# A guard, not a measure: a launch here takes 10 to 40 s on a shared 2-core machine, processes
# that wait on each other (a deadlock) would otherwise wait for gloo's 30 minutes.
LAUNCH_SECONDS = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _deterministic_model(folder: Path) -> None:
    """The tiny model without dropout, so that which process runs a batch changes nothing."""
    build_model(folder, "tiny", chars="天地人和")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    for key in list(config):
        if key.endswith("dropout") or key == "layerdrop":
            config[key] = 0.0
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")


def _weights(model_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(model_dir / "model.safetensors")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["full", "lora"])  # lora also trains from cached features
def test_two_processes_train_as_one_process_on_the_combined_batch(tmp_path, method):
    """Two processes, each on its half of every step's micro-batches, end with the weights and
    step losses of one process over all of them (no dropout or masking, so only the split
    differs), and agree with each other exactly.

    Mutations tried, each failing this test: every process training on all micro-batches
    (`share = step.micro_batches`: losses doubled; Adam hides the doubled gradient, so the
    weights alone would not tell) and both processes training on the same half
    (`step.micro_batches[: len // world]`: weights off by 34 % of the update and losses off,
    though the two processes still agree with each other — the old test's only check)."""
    _deterministic_model(tmp_path / "base")
    # 16 clips of 0.39 s: two per 1 s micro-batch, two micro-batches per 1.5 s step
    manifest = tone_corpus(tmp_path / "data", 16, min_chars=3, max_chars=3, char_seconds=0.1)
    job = tmp_path / "job.yaml"
    job.write_text(
        f"model: base\ndata: data/manifest.tsv\noutput_dir: two\nmethod: {method}\n"
        f"steps: {STEPS}\nlearning_rate: 0.003\nbatch_seconds: 1.5\nmicro_batch_seconds: 1.0\n"
        "min_seconds: 0.1\nheldout_fraction: 0.0\neval_every: 0\nmask_time_prob: 0.0\n"
        "lora_dropout: 0.0\nprecision: fp32\ndevice: cpu\n",
        encoding="utf-8",
    )
    # Precondition: one process batches the steps as two do (else the runs could not agree).
    lengths = [sf.info(manifest.parent / row.split("\t")[0]).frames for row in _rows(manifest)]
    plans = [_plan(lengths, processes) for processes in (1, 2)]
    assert plans[0] == plans[1] and all(len(step) % 2 == 0 for step in plans[0])

    done = _launch("-m", "engine.cli.tune", str(job))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "cpu fp32 × 2" in output
    hashes = dict(re.findall(r"process (\d): weights sha256 ([0-9a-f]{64})", output))
    assert set(hashes) == {"0", "1"}, output[-3000:]
    assert hashes["0"] == hashes["1"]
    two_losses = _step_losses(done.stderr)

    one = dataclasses.replace(TuneConfig.load(job), output_dir=str(tmp_path / "one"))
    events = list(run_job(one))
    assert isinstance(events[-1], JobFinished), events[-1]
    one_losses = [e.loss for e in events if isinstance(e, StepProgress)]
    assert len(one_losses) == STEPS
    assert two_losses == pytest.approx(one_losses, abs=1.5e-3)  # the bar shows 3 decimals

    base, two, single = (_weights(tmp_path / name) for name in ("base", "two/model", "one/model"))
    update = np.concatenate([(single[k] - base[k]).ravel() for k in sorted(single)])
    apart = np.concatenate([(two[k] - single[k]).ravel() for k in sorted(single)])
    assert np.linalg.norm(update) > 0
    assert np.linalg.norm(apart) <= UPDATE_TOLERANCE * np.linalg.norm(update)
    loaded = load_model(tmp_path / "two" / "model", LoadOptions(precision="fp32"))
    assert loaded.vocab[5:] == list("天地人和")


def _launch(*command: str) -> subprocess.CompletedProcess:
    """`command` run by two CPU processes under `accelerate launch`. The time limit only ends
    a job whose processes wait on each other for ever (gloo would wait 30 minutes): the
    launcher and its processes are stopped and the test fails."""
    launch = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(ROOT / "packaging" / "accelerate" / "ddp.yaml"),
        "--num_processes", "2",
        "--main_process_port", str(_free_port()),
        *command,
    ]  # fmt: skip
    with subprocess.Popen(
        launch, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    ) as process:
        try:
            out, err = process.communicate(timeout=LAUNCH_SECONDS)
        except subprocess.TimeoutExpired:
            process.terminate()  # the launcher ends its processes (each in a session of its own)
            out, err = process.communicate()
            pytest.fail(f"the processes still ran after {LAUNCH_SECONDS} s:\n{err[-3000:]}")
    return subprocess.CompletedProcess(launch, process.returncode, out, err)


def _rows(manifest: Path) -> list[str]:
    return manifest.read_text(encoding="utf-8").splitlines()[1:]


def _plan(lengths: list[int], processes: int) -> list[tuple]:
    """The job's first STEPS steps (1 s micro-batches, 1.5 s per step) as micro-batches."""
    steps = steps_from(
        Cursor(0, 0), lengths, max_batch_samples=16_000, step_samples=24_000, seed=0,
        multiple_of=processes,
    )  # fmt: skip
    return [step.micro_batches for step in islice(steps, STEPS)]


def _step_losses(stderr: str) -> list[float]:
    """Each step's loss from the main process's progress bar (redrawn, so deduplicated)."""
    shown = [float(x) for x in re.findall(r"loss (\d+\.\d{3})", stderr)]
    return [x for i, x in enumerate(shown) if i == 0 or x != shown[i - 1]]


# ---- faults of multi-process tuning ------------------------------------------------------------


def _ddp_job(tmp_path: Path, **settings) -> Path:
    """A job file (the tiny model, 16 tone clips, LoRA from cached features) with `settings`."""
    if not (tmp_path / "base").is_dir():
        _deterministic_model(tmp_path / "base")
        tone_corpus(tmp_path / "data", 16, min_chars=3, max_chars=3, char_seconds=0.1)
    job = {
        "model": "base", "data": "data/manifest.tsv", "output_dir": "out", "method": "lora",
        "learning_rate": 0.003, "batch_seconds": 1.5, "micro_batch_seconds": 1.0,
        "min_seconds": 0.1, "heldout_fraction": 0.0, "eval_every": 0, "save_every": 0,
        "precision": "fp32", "device": "cpu", **settings,
    }  # fmt: skip
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job), encoding="utf-8")
    return path


def _run(job: Path, *options: str) -> list[list[dict]]:
    """Each process's events of `job` run by tests/ddp_job.py under `accelerate launch`."""
    events = job.parent / "events"
    shutil.rmtree(events, ignore_errors=True)
    done = _launch(str(ROOT / "tests" / "ddp_job.py"), str(job), str(events), *options)
    assert done.returncode == 0, done.stderr[-3000:]
    return [
        [json.loads(line) for line in (events / f"events-{rank}.jsonl").read_text().splitlines()]
        for rank in (0, 1)
    ]


@pytest.mark.slow
def test_a_stop_or_an_evaluation_apart_on_one_process_stops_none_alone(tmp_path):
    """A cancel that process 1 alone hears (Ctrl+C sent to one process, a cancel file polled
    by each, another machine) and held-out CERs that differ between the processes (machines
    whose arithmetic differs). Before: the process that stopped, or found a best checkpoint,
    waited for the other to save while the other went on to its next step; both waited for
    ever, leaving checkpoints/.tmp-step-N. Now both stop at the step process 1 was cancelled
    after, with a checkpoint that resumes (here on one process)."""
    # 8 held-out rows (their content keys hash below 0.55): split, 4 report (`Evaluated.cer`)
    # and 4 choose (`selection_cer`)
    job = _ddp_job(tmp_path, steps=8, heldout_fraction=0.55, eval_every=2)
    first, second = _run(job, "--cancel-on", "1", "5", "--disagree")
    assert first == second
    saved = tmp_path / "out" / "checkpoints" / "step-0000005"
    assert first[-1] == {"event": "JobCancelled", "step": 5, "checkpoint": str(saved)}
    # process 0's evaluations (its CER falls at each: the report share's 9, 7, 5, the
    # selection share's 8, 6, 4), the best checkpoints of both
    assert [e["cer"] for e in first if e["event"] == "Evaluated"] == [9.0, 7.0, 5.0]
    best = [e["step"] for e in first if e["event"] == "CheckpointSaved" and e["best"]]
    assert best == [2, 4]
    assert sorted(p.name for p in saved.iterdir()) == [
        "optimizer.pt", "rng-0.json", "rng-1.json", "state.json", "trainable.safetensors",
    ]  # fmt: skip
    events = list(run_job(TuneConfig.load(job), resume=True))
    assert isinstance(events[-1], JobFinished) and events[-1].result.steps == 8, events[-1]


@pytest.mark.slow
def test_layerdrop_trains_on_two_processes(tmp_path):
    """Before: step 2 failed with "Expected to have finished reduction in the prior iteration":
    a layer that layerdrop skipped left its weights without a gradient, and DDP had not been
    told to look for such weights."""
    first, second = _run(_ddp_job(tmp_path, steps=3, layerdrop=0.5))
    assert first[-1]["event"] == "JobFinished", first[-1]
    assert first[-1] == second[-1]  # the same weights on both


@pytest.mark.parametrize("layerdrop, asked", [(0.0, {}), (0.1, {"find_unused_parameters": True})])
def test_ddp_looks_for_unused_weights_only_under_layerdrop(tmp_path, layerdrop, asked):
    """The search costs a pass over the graph at every step: only where a layer may be skipped."""
    config = TuneConfig(model="m", data="d.tsv", output_dir=str(tmp_path), layerdrop=layerdrop)
    job = Job(config, threading.Event(), resume=False)
    job._setup_runtime()
    assert job.acc.ddp_handler.to_kwargs() == asked


@pytest.mark.slow
def test_machines_without_a_shared_output_dir_checkpoint_on_the_main_and_resume_together(
    tmp_path,
):
    """Process N writes under out/rank-N, as machines that do not share output_dir. Before: each
    process wrote its random state into the main process's unfinished checkpoint, a folder its
    machine does not have ("could not be written … read-only", then a gloo crash). A resume
    there then trained each process from the step it saw (process 1 from the start); now it is
    refused, naming what to do."""
    first, second = _run(_ddp_job(tmp_path, steps=2, save_every=2), "--own-output-dir")
    assert first[-1]["event"] == second[-1]["event"] == "JobFinished", (first[-1], second[-1])
    saved = tmp_path / "out" / "rank-0" / "checkpoints" / "step-0000002"
    states = [json.loads((saved / f"rng-{rank}.json").read_text()) for rank in (0, 1)]
    assert states[0] != states[1]  # each process's own (seeded apart)
    assert not (tmp_path / "out" / "rank-1" / "checkpoints").exists()

    first, second = _run(_ddp_job(tmp_path, steps=4), "--own-output-dir", "--resume")
    assert [e["event"] for e in first + second] == ["JobFailed", "JobFailed"]
    assert {e["code"] for e in first + second} == {"tune.resume_not_shared"}
    message = first[0]["message"]
    assert "process 1 finds no checkpoint" in message and "process 0 finds step-0000002" in message


@pytest.mark.slow
def test_a_whisper_job_under_accelerate_launch_is_refused_once(tmp_path):
    """Before: the second process found the output_dir claimed by the first and said it was
    "in use by another tuning job (pid N)": its own sibling."""
    whisper = tmp_path / "whisper"
    whisper.mkdir()
    (whisper / "model.bin").write_bytes(b"")  # a CTranslate2 folder, refused before it loads
    job = _ddp_job(tmp_path, model="whisper")
    done = _launch("-m", "engine.cli.tune", str(job))
    assert done.returncode != 0
    said = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    refused = TingxieError("tune.whisper_one_process", processes=2)
    assert said == [f"error: {refused}"], done.stderr[-3000:]
    assert not (tmp_path / "out").exists()
    from engine.cli.tune import _settings_epilog  # where `tune --help` recommends the launcher

    assert "a Whisper model is tuned in one process" in " ".join(_settings_epilog().split())


def test_a_failure_every_process_meets_is_printed_once(monkeypatch, capsys):
    """Before: each process printed it (`error: device=cuda was requested …` twice). Asked of
    the launcher's store, here one the test holds; a message one process alone meets is
    printed by that one."""
    from engine.cli import tune

    port = _free_port()
    store = torch.distributed.TCPStore("127.0.0.1", port, is_master=True, wait_for_workers=False)
    for name, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "WORLD_SIZE": 2}.items():
        monkeypatch.setenv(name, str(value))
    for rank, message in [(1, "no GPU"), (0, "no GPU"), (0, "disk full")]:
        monkeypatch.setenv("RANK", str(rank))
        assert tune._consume([JobFailed(message)], None, rank) == 1
    assert capsys.readouterr().err.splitlines() == ["error: no GPU", "error: disk full"]
    del store
