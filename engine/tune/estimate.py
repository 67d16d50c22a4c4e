"""What a tuning job will cost on this machine, measured rather than guessed: the job's own setup
(model, audio, feature cache) and a few of its optimizer steps and one held-out evaluation, run
in a scratch folder that is removed afterwards. Meant for a process of its own (the app runs it
in `engine.tune.child`), so the peak memory it reports is the job's."""

from __future__ import annotations

import logging
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import torch

from .config import TuneConfig
from .events import Estimate
from .loop import Job

__all__ = ["estimate"]

log = logging.getLogger("tingxie.train")


def _peak_rss_bytes() -> int:
    """This process's peak resident memory (0 where the platform does not say)."""
    try:
        import resource
    except ImportError:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def estimate(config: TuneConfig, steps: int = 4) -> Estimate:
    """Set the job up and time `steps` optimizer steps (the first, which pays one-time costs,
    is left out of the per-step figure when there are more) and one evaluation."""
    if steps < 1:
        raise ValueError(f"steps={steps}: measure at least one step")
    from engine.registry import WHISPER, family_of

    if family_of(config.model) is WHISPER:
        return _estimate_whisper(config.resolved(), steps)
    scratch = tempfile.mkdtemp(prefix="tingxie-estimate-")
    cfg = replace(config.resolved(), output_dir=scratch)
    job = Job(cfg, threading.Event(), resume=False)
    try:
        started = time.perf_counter()
        job._setup()
        setup = time.perf_counter() - started
        stream, times = job._steps(), []
        for _ in range(min(steps, cfg.steps)):
            started = time.perf_counter()
            job._train_step(next(stream))
            times.append(time.perf_counter() - started)
        eval_seconds = 0.0
        if job.data.heldout:
            started = time.perf_counter()
            job._evaluate()
            eval_seconds = time.perf_counter() - started
        per_step = statistics.median(times[1:] or times)
        planned = cfg.steps
        if cfg.max_minutes is not None:  # the steps that fit the time limit, evaluations included
            per_eval = eval_seconds / cfg.eval_every if cfg.eval_every else 0.0
            room = cfg.max_minutes * 60 - setup - 2 * eval_seconds
            planned = min(planned, max(0, int(room / (per_step + per_eval))))
        evaluations = 0
        if job.data.heldout:  # the base model's, every eval_every steps, and the last step's
            evaluations = 2 + max(0, planned - 1) // cfg.eval_every if cfg.eval_every else 2
        cuda = job.device.type == "cuda"
        return Estimate(
            setup_seconds=setup,
            seconds_per_step=per_step,
            eval_seconds=eval_seconds,
            steps=planned,
            evaluations=evaluations,
            peak_memory_bytes=_peak_rss_bytes(),
            device_memory_bytes=torch.cuda.max_memory_allocated() if cuda else 0,
            device=str(job.device),
            measured_steps=len(times),
        )
    finally:
        if job._claim is not None:  # the scratch output_dir's lock file
            job._claim.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _estimate_whisper(config: TuneConfig, steps: int) -> Estimate:
    """`engine.tune.estimate.estimate` for a Whisper base: the set-up (data, conversion, model
    load) and `steps` training steps timed in a scratch folder, and the base model's held-out
    evaluation (a job runs two: before and after)."""
    from .whisper_job import heldout_cer, prepare_job
    from .whisper_lora import tune_whisper_lora

    scratch = Path(tempfile.mkdtemp(prefix="tingxie-estimate-"))
    try:
        started = time.perf_counter()
        setup = prepare_job(config)
        run = tune_whisper_lora(setup.base, setup.examples, scratch, setup.options)
        next(run)  # loaded
        setup_seconds = time.perf_counter() - started
        times = []
        for _ in range(min(steps, setup.options.steps)):
            started = time.perf_counter()
            next(run)
            times.append(time.perf_counter() - started)
        run.close()
        eval_seconds = 0.0
        if setup.prepared.heldout:
            started = time.perf_counter()
            heldout_cer(setup.base, setup.prepared.heldout, config)
            eval_seconds = time.perf_counter() - started
        per_step = statistics.median(times[1:] or times)
        planned = setup.options.steps
        if config.max_minutes is not None:
            room = config.max_minutes * 60 - setup_seconds - eval_seconds
            planned = min(planned, max(0, int(room / per_step)))
        return Estimate(
            setup_seconds=setup_seconds,
            seconds_per_step=per_step,
            eval_seconds=eval_seconds,
            steps=planned,
            evaluations=2 if setup.prepared.heldout else 0,
            peak_memory_bytes=_peak_rss_bytes(),
            device_memory_bytes=0,
            device="cpu",
            measured_steps=len(times),
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
