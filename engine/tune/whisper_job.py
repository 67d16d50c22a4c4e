"""A tuning job on a Whisper model: the same config, events and outputs as the CTC jobs of
`engine.tune.loop`, so the CLI, the app's Tune page and its child process run it unchanged.

Whisper learns by LoRA through `engine.tune.whisper_lora` (the base may be the CTranslate2 folder
the app runs), and is measured before and after on the held-out rows by the transcriber users
get (`engine.tune.evaluate.score_examples`: CTranslate2, the same decoding and normalization).
What the CTC loop has and this job has not yet: checkpoints to resume from (a cancelled job
starts again), partial or full tuning, several processes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.audio import SAMPLE_RATE
from engine.metrics import cer
from engine.normalize import describe
from engine.registry import WHISPER, model_path

from .config import TuneConfig
from .data import Example, load_dataset, load_example_audio
from .evaluate import EvalOptions, score_examples
from .events import (
    Evaluated,
    JobCancelled,
    JobEvent,
    JobFinished,
    JobResult,
    JobStarted,
    StepProgress,
)
from .export import ModelCard
from .prepare import Prepared, validate_for_model

if TYPE_CHECKING:
    from .whisper_lora import WhisperLoraOptions

__all__ = ["WhisperSetup", "heldout_cer", "prepare_job", "run_whisper_job"]

log = logging.getLogger("tingxie.train")

_WINDOW = WHISPER.window_seconds  # Whisper hears 30 s windows: longer audio would be cut
_BATCH = 8  # utterances per step: each is a full 30 s window to Whisper whatever its length


def heldout_cer(model_dir: str | Path, heldout: list[Example], config: TuneConfig) -> Evaluated:
    from engine.loader import load_model

    rows = list(
        score_examples(load_model(model_dir), heldout, EvalOptions(normalize=config.normalize))
    )
    refs, hyps = [r.reference for r in rows], [r.hypothesis for r in rows]
    result = cer(refs, hyps)
    return Evaluated(0, result.cer, result, tuple(zip(refs[:3], hyps[:3], strict=True)))


@dataclass(frozen=True, slots=True)
class WhisperSetup:
    """What a job (or its estimate) trains and measures on, before any model loads."""

    base: str  # the model folder (a tuning job's folder stands for its model) or Hub id
    prepared: Prepared
    examples: list[tuple[np.ndarray, str]]  # the training audio and text
    seconds: float  # of training audio
    options: WhisperLoraOptions


def prepare_job(config: TuneConfig) -> WhisperSetup:
    from .whisper_lora import WhisperLoraOptions

    if config.method != "lora":
        raise ValueError(
            f"method={config.method}: Whisper models are tuned with LoRA here; choose lora"
        )
    prepared = validate_for_model(load_dataset(config.data), None, config, 0.02, _WINDOW)
    if not prepared.train:
        raise ValueError(
            f"{config.data}: every usable utterance is held out ({len(prepared.heldout)}); "
            "add recordings or lower heldout_fraction"
        )
    examples = [(load_example_audio(e), e.text) for e in prepared.train]
    options = WhisperLoraOptions(
        steps=int(config.steps),
        learning_rate=float(config.learning_rate),
        rank=int(config.lora_rank),
        alpha=int(config.lora_alpha),
        batch_size=_BATCH,
        seed=config.seed,
    )
    return WhisperSetup(
        base=str(model_path(config.model)) if Path(config.model).is_dir() else config.model,
        prepared=prepared,
        examples=examples,
        seconds=sum(len(audio) for audio, _ in examples) / SAMPLE_RATE,
        options=options,
    )


def run_whisper_job(
    config: TuneConfig, cancel: threading.Event, resume: bool = False
) -> Iterator[JobEvent]:
    """Run `config` (resolved) on a Whisper base, yielding the CTC jobs' events."""
    from .whisper_lora import tune_whisper_lora

    if resume:
        raise ValueError(
            "a Whisper job keeps no checkpoints to resume from: start it again (same settings)"
        )
    out = Path(config.output_dir)
    if (out / "model").exists():
        raise ValueError(f"{out} already holds a tuned model; choose another output_dir")
    began = time.monotonic()
    setup = prepare_job(config)
    prepared, examples, seconds = setup.prepared, setup.examples, setup.seconds
    train, heldout, base = prepared.train, prepared.heldout, setup.base
    limit = None if config.max_minutes is None else config.max_minutes * 60

    def seconds_left() -> float:
        return limit - (time.monotonic() - began)

    steps = tune_whisper_lora(
        base, examples, out, setup.options, seconds_left=None if limit is None else seconds_left
    )
    ready = next(steps)  # the model loaded, with its adapters
    yield JobStarted(
        config=config,
        train_examples=len(train),
        heldout_examples=len(heldout),
        train_seconds=seconds,
        validation=prepared.report.table(),
        skipped_rows=len(prepared.report.skipped),
        normalization=tuple(describe(prepared.normalize)),
        added_chars="",
        # Whisper hears every utterance as a 30 s window: the rest is padding, and time
        padding_fraction=1 - seconds / (_WINDOW * len(examples)),
        trainable_parameters=ready.trainable_parameters,
        total_parameters=ready.total_parameters,
        device="cpu",
        precision="fp32",
        processes=1,
        resumed_from_step=0,
    )
    before = after = None
    if heldout:
        before = heldout_cer(base, heldout, config)
        yield before
    done = 0
    for step in steps:
        done = step.step
        yield StepProgress(
            step=step.step,
            total_steps=step.total_steps,
            loss=step.loss,
            learning_rate=step.learning_rate,
            samples_per_second=step.examples / max(step.seconds, 1e-9),
            eta_seconds=step.seconds * (step.total_steps - step.step),
            epoch=step.step * _BATCH // len(examples),
            examples=step.examples,
            seconds=step.seconds,
        )
        if cancel.is_set():
            steps.close()  # nothing of the training is written
            yield JobCancelled(done, None)
            return
    if heldout:
        after = dataclasses.replace(heldout_cer(out / "model", heldout, config), step=done)
        yield after
    card = ModelCard(
        base_model=config.model,
        method="lora",
        steps=done,
        train_examples=len(train),
        train_seconds=seconds,
        heldout_examples=len(heldout),
        cer_before=before.cer if before else None,
        cer_after=after.cer if after else None,
        data=config.data,
        normalization=tuple(describe(prepared.normalize)),
        family="whisper",
    )
    for folder in (out / "model", out / "adapter"):
        card.write(folder)
    yield JobFinished(
        JobResult(
            model_dir=out / "model",
            adapter_dir=out / "adapter",
            cer_before=before.cer if before else None,
            cer_after=after.cer if after else None,
            best_step=done,
            steps=done,
            fingerprint=hashlib.sha256((out / "model" / "model.bin").read_bytes()).hexdigest(),
        )
    )
