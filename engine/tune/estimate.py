"""What a tuning job will cost on this machine, measured rather than guessed: the job's own setup
(model, audio, feature cache), a few of its optimizer steps, one held-out evaluation, one
checkpoint, the tuned model's write and its calibration refit, run in a scratch folder that is
removed afterwards.
Meant for a process of its own (the app runs it in `engine.tune.child`), so the peak memory it
reports is the job's."""

from __future__ import annotations

import logging
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from .config import TuneConfig
from .events import Estimate, steps_due
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
    is left out of the per-step figure when there are more), one evaluation, one checkpoint,
    the tuned model's write and its calibration refit (4-15x an evaluation: it loads the
    written model again)."""
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
        eval_seconds = _timed(job._evaluate) if job.data.heldout else 0.0
        save_seconds = _timed(lambda: job._save_checkpoint(best=False))
        write_seconds = _timed(lambda: job._write_model(job._card(0)))
        heldout = bool(job.data.heldout)
        refit_seconds = _timed(lambda: job._calibrate(job.out / "model")) if heldout else 0.0
        cuda = job.device.type == "cuda"
        measured = Estimate(
            setup_seconds=setup,
            seconds_per_step=statistics.median(times[1:] or times),
            eval_seconds=eval_seconds,
            steps=cfg.steps,
            evaluations=0,
            peak_memory_bytes=_peak_rss_bytes(),
            device_memory_bytes=torch.cuda.max_memory_allocated() if cuda else 0,
            device=str(job.device),
            measured_steps=len(times),
            save_seconds=save_seconds,
            finish_seconds=write_seconds + refit_seconds,
            refit_seconds=refit_seconds,
        )
        cadence = job._cadence()

        def counts(planned: int) -> tuple[int, int]:
            # the base model's, every eval_every steps and the last step's; checkpoints every
            # save_every steps and the last step's, and a new best step's at an evaluation
            evaluations = 1 + steps_due(1, planned, cadence.eval_every) if heldout else 0
            best = cadence.eval_every if cadence.best_saves else None
            return evaluations, steps_due(1, planned, cadence.save_every, best)

        return _fitting(measured, cfg.max_minutes, counts)
    finally:
        if job._claim is not None:  # the scratch output_dir's lock file
            job._claim.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _timed(work: Callable[[], object]) -> float:
    """The seconds `work` takes."""
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _fitting(
    measured: Estimate, max_minutes: float | None, counts: Callable[[int], tuple[int, int]]
) -> Estimate:
    """`measured` for the most of its steps whose whole job (`Estimate.total_seconds`) fits
    `max_minutes` (all of them without a limit), with the (evaluations, checkpoints) that
    `counts` says that many steps bring."""

    def at(planned: int) -> Estimate:
        evaluations, saves = counts(planned)
        return replace(measured, steps=planned, evaluations=evaluations, saves=saves)

    if max_minutes is None:
        return at(measured.steps)
    low, high = 0, measured.steps  # the total grows with the steps: the last that fits
    while low < high:
        middle = (low + high + 1) // 2
        if at(middle).total_seconds <= max_minutes * 60:
            low = middle
        else:
            high = middle - 1
    return at(low)


def _estimate_whisper(config: TuneConfig, steps: int) -> Estimate:
    """`engine.tune.estimate.estimate` for a Whisper base: the set-up (data, conversion, model
    load), `steps` training steps and a checkpoint timed in a scratch folder, and the base
    model's held-out evaluation (a job runs it before its steps, and again on the tuned model
    for the calibration refit, its own part of the finish). The tuned model's write (merged,
    then converted) comes only after a job's last step: it is reckoned as the model's load, the
    same work the other way, as the job reckons it (`whisper_job`)."""
    from .whisper_job import heldout_cer, prepare_job
    from .whisper_lora import WhisperCheckpoints, WhisperSaved, tune_whisper_lora

    scratch = Path(tempfile.mkdtemp(prefix="tingxie-estimate-"))
    try:
        started = time.perf_counter()
        setup = prepare_job(config)
        loading = time.perf_counter()
        measure = min(steps, setup.options.steps)
        # one checkpoint, after the last measured step
        where = WhisperCheckpoints(scratch / "checkpoints", every=measure)
        run = tune_whisper_lora(
            setup.base, setup.examples, scratch, setup.options, checkpoints=where
        )
        next(run)  # loaded
        load_seconds = time.perf_counter() - loading
        setup_seconds = time.perf_counter() - started
        times: list[float] = []
        save_seconds = None  # after the last measured step
        while save_seconds is None:
            started = time.perf_counter()
            saved = isinstance(next(run), WhisperSaved)
            elapsed = time.perf_counter() - started
            if saved:
                save_seconds = elapsed
            else:
                times.append(elapsed)
        run.close()
        heldout = bool(setup.prepared.heldout)
        eval_seconds = (
            _timed(lambda: heldout_cer(setup.base, setup.prepared.heldout, config))
            if heldout
            else 0.0
        )
        cuda = setup.options.device == "cuda"
        measured = Estimate(
            setup_seconds=setup_seconds,
            seconds_per_step=statistics.median(times[1:] or times),
            eval_seconds=eval_seconds,
            steps=setup.options.steps,
            evaluations=1 if heldout else 0,
            peak_memory_bytes=_peak_rss_bytes(),
            device_memory_bytes=torch.cuda.max_memory_allocated() if cuda else 0,
            device=setup.options.device,
            measured_steps=len(times),
            save_seconds=save_seconds,
            # the tuned model's write, reckoned as the load, and the refit's pass
            finish_seconds=load_seconds + eval_seconds,
            refit_seconds=eval_seconds,
        )
        return _fitting(
            measured,
            config.max_minutes,
            lambda planned: (measured.evaluations, steps_due(1, planned, config.save_every)),
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
