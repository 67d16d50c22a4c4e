"""A tuning job on a Whisper model: the same config, events and outputs as the CTC jobs of
`engine.tune.loop`, so the CLI, the app's Tune page and its child process run it unchanged.

Whisper learns by LoRA through `engine.tune.whisper_lora` (the base may be the CTranslate2 folder
the app runs), and is measured before and after on the held-out rows by the transcriber users
get (`engine.tune.evaluate.score_examples`: CTranslate2, the same decoding and normalization);
the tuned model's confidence calibration is refitted on the same held-out rows, as a CTC job's.
Checkpoints are saved every `save_every` steps, on a cancel and after the last step, in the CTC
jobs' layout, so `resume` (the CLI's `--resume`, the Tune page's Resume) continues a stopped job
with the same data order and optimizer state. What the CTC loop has and this job has not yet:
partial or full tuning, several processes (under `accelerate launch` it stops at once, saying
so), a held-out evaluation during training, fp16, and the settings `_UNUSED` names (the job
names in a warning those set away from their defaults).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.atomic import atomic_write_text
from engine.audio import SAMPLE_RATE
from engine.calibration import CALIBRATION_FILE
from engine.metrics import cer
from engine.normalize import describe
from engine.registry import WHISPER, model_path

from .config import TuneConfig
from .data import Example, load_dataset, load_example_audio
from .evaluate import EvalOptions, EvalRow, calibrate_rows, calibration_outcome, score_examples
from .events import (
    Cadence,
    CheckpointSaved,
    Evaluated,
    JobCancelled,
    JobEvent,
    JobFinished,
    JobResult,
    JobStarted,
    PhaseSeconds,
    StepProgress,
    seconds_left,
    steps_that_fit,
)
from .export import ModelCard, read_card
from .jobs import (
    JobError,
    check_resumable,
    checkpoint_dirs,
    claim_output_dir,
    data_setting,
    examples_digest,
    resumed_split,
)
from .prepare import Prepared, validate_for_model

if TYPE_CHECKING:
    from .whisper_lora import WhisperLoraOptions

__all__ = [
    "WhisperSetup",
    "heldout_cer",
    "heldout_rows",
    "prepare_job",
    "run_whisper_job",
    "runtime",
    "unused_settings",
]

log = logging.getLogger("tingxie.train")

_WINDOW = WHISPER.window_seconds  # Whisper hears 30 s windows: longer audio would be cut
_BATCH = 8  # utterances per step: each is a full 30 s window to Whisper whatever its length
# The base's held-out CER, what it was measured on and the seconds its pass took (a resumed job
# reads them when the held-out rows are still those: the pass's seconds are its refit's prior)
_BEFORE = "cer-before.json"
# The settings a resumed run must share with the run that wrote its checkpoints, as a CTC job's
# (engine.tune.loop): those a Whisper job trains with (`_settings` adds the normalization and
# the training rows). The others may change on resume: steps and max_minutes, checkpoints, and
# the held-out rows (training does not read them; the base is measured again on new ones).
_RESUME_SETTINGS = (
    "model", "data", "method", "learning_rate", "lora_rank", "lora_alpha", "seed",
    "heldout_fraction", "min_seconds", "max_seconds",
)  # fmt: skip
# The CTC loop's settings a Whisper job does not read: its warmup is a tenth of the steps, AdamW
# at torch's defaults without clipping or dropout, 8 utterances a step (`_BATCH`), byte-level
# tokens (nothing to extend) and no feature encoder to freeze or cache
_UNUSED = (
    "lora_dropout", "freeze_layers", "freeze_feature_encoder", "extend_vocab", "domain_text",
    "warmup_steps", "weight_decay", "max_grad_norm", "batch_seconds", "micro_batch_seconds",
    "mask_time_prob", "mask_time_length", "mask_feature_prob", "layerdrop",
    "gradient_checkpointing", "cache_features", "eval_every",
)  # fmt: skip


class _Stopped(Exception):
    """A cancel heard between two held-out rows."""


def heldout_cer(
    model_dir: str | Path,
    heldout: list[Example],
    config: TuneConfig,
    stop: Callable[[], bool] | None = None,
) -> Evaluated:
    """The held-out CER of the model in `model_dir`, as step 0's evaluation (`_Stopped` when
    `stop` says so between two rows: a Whisper base takes seconds a row on a CPU)."""
    return _evaluated(heldout_rows(model_dir, heldout, config, stop=stop))


def heldout_rows(
    model_dir: str | Path,
    heldout: list[Example],
    config: TuneConfig,
    stop: Callable[[], bool] | None = None,
) -> list[EvalRow]:
    """The held-out rows transcribed and scored by the model in `model_dir`, as users get it."""
    from engine.loader import load_model

    options = EvalOptions(normalize=config.normalize)
    rows = []
    for row in score_examples(load_model(model_dir), heldout, options):
        if stop is not None and stop():
            raise _Stopped
        rows.append(row)
    return rows


def _evaluated(rows: list[EvalRow], step: int = 0) -> Evaluated:
    refs, hyps = [r.reference for r in rows], [r.hypothesis for r in rows]
    result = cer(refs, hyps)
    return Evaluated(step, result.cer, result, tuple(zip(refs[:3], hyps[:3], strict=True)))


@dataclass(frozen=True, slots=True)
class WhisperSetup:
    """What a job (or its estimate) trains and measures on, before any model loads."""

    base: str  # the model folder (a tuning job's folder stands for its model) or Hub id
    prepared: Prepared
    examples: list[tuple[np.ndarray, str]]  # the training audio and text
    seconds: float  # of training audio
    options: WhisperLoraOptions


def runtime(config: TuneConfig) -> tuple[str, str]:
    """The device and precision a Whisper job trains in, from `device` and `precision`: auto
    is a CUDA GPU when present, in bf16 where it runs it, else fp32 (on a CPU too, as a CTC job:
    no reliable gain there). `device: cuda` without one is refused, naming the setting."""
    import torch

    from engine.model import pick_device

    device = pick_device(config.device)  # device=cuda without a GPU: model.no_cuda
    if config.precision != "auto":  # fp16: refused by WhisperLoraOptions
        return device.type, config.precision
    fast = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return device.type, "bf16" if fast else "fp32"


def unused_settings(config: TuneConfig) -> list[str]:
    """The settings of `config` (resolved) that a Whisper job does not read (the CTC loop's),
    where they differ from what the same job resolves them to by default: what a user set
    for nothing."""
    default = TuneConfig(
        model=config.model,
        data=config.data,
        output_dir=config.output_dir,
        method=config.method,
        preset=config.preset,
        steps=config.steps,
    ).resolved()
    return [name for name in _UNUSED if getattr(config, name) != getattr(default, name)]


def prepare_job(config: TuneConfig) -> WhisperSetup:
    from .whisper_lora import WhisperLoraOptions
    from .whisper_text import token_limit

    if config.method != "lora":
        raise ValueError(
            f"method={config.method}: Whisper models are tuned with LoRA here; choose lora"
        )
    base = str(model_path(config.model)) if Path(config.model).is_dir() else config.model
    dataset = load_dataset(config.data)
    prepared = validate_for_model(
        dataset, None, config, None, _WINDOW, token_limit(base), split_by=resumed_split
    )
    if not prepared.train:
        raise ValueError(
            f"{config.data}: every usable utterance is held out ({len(prepared.heldout)}); "
            "add recordings or lower heldout_fraction"
        )
    examples = [(load_example_audio(e), e.text) for e in prepared.train]
    device, precision = runtime(config)
    options = WhisperLoraOptions(
        steps=int(config.steps),
        learning_rate=float(config.learning_rate),
        rank=int(config.lora_rank),
        alpha=int(config.lora_alpha),
        batch_size=_BATCH,
        seed=config.seed,
        device=device,
        precision=precision,
    )
    return WhisperSetup(
        base=base,
        prepared=prepared,
        examples=examples,
        seconds=sum(len(audio) for audio, _ in examples) / SAMPLE_RATE,
        options=options,
    )


def _heldout_key(base: str, heldout: list[Example], config: TuneConfig) -> str:
    """What the base's held-out CER was measured on: the base, the held-out rows (the key that
    put each on the held-out side, and its text) and the normalization of both texts."""
    digest = hashlib.sha256(f"{base}\n{describe(config.normalize)}\n".encode())
    for example in heldout:
        digest.update(f"{example.split_key}\t{example.text}\n".encode())
    return digest.hexdigest()


def _settings(config: TuneConfig, train: list[Example]) -> dict:
    """What this job trains with, as its checkpoints keep it: a resume compares it with
    `engine.tune.jobs.check_resumable`, which names each setting changed since."""

    settings = {name: getattr(config, name) for name in _RESUME_SETTINGS}
    settings["data"] = data_setting(config)  # a moved job's own data.tsv
    settings["normalize"] = asdict(config.normalize)
    settings["train_examples"] = examples_digest(train)
    return settings


def _measured_before(out: Path, key: str) -> tuple[float, float | None] | None:
    """The base's held-out CER an earlier run of this job measured, and the seconds its pass
    took (None: a file of a version before they were kept), if it did so on the same held-out
    rows (`_heldout_key`): a corrected transcript, or other rows, measure it again."""
    try:
        data = json.loads((out / _BEFORE).read_text(encoding="utf-8"))
        if data["heldout"] != key:
            log.info("%s: the held-out rows changed since; the base is measured again", out)
            return None
        seconds = data.get("seconds")
        return float(data["cer"]), None if seconds is None else float(seconds)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _calibrate(folder: Path, rows: list[EvalRow], config: TuneConfig) -> str:
    """Fit the tuned model's confidence calibration on its held-out rows, as a CTC job does
    (`engine.tune.evaluate.calibrate_rows`: kept only where it lowers the cross-fitted ECE),
    and say what became of it, for its card. The base's calibration.json is not carried over:
    it maps the base's confidences. The model is saved already: a failure here is logged and
    leaves its confidences raw."""
    from engine.whisper import DEFAULT_MEASURE, measure_name

    try:
        options = EvalOptions(normalize=config.normalize)
        return calibration_outcome(
            calibrate_rows(folder, rows, measure_name(DEFAULT_MEASURE), options)
        )
    except Exception as e:  # the job's result stands without it
        log.warning("%s: confidence calibration not refitted (%s)", folder, e)
        return f"not refitted ({e}); confidences shown raw"


def _launched_processes() -> int:
    """The processes a launcher (`accelerate launch`, torchrun, mpirun) started for this job."""
    from accelerate.utils import get_int_from_env

    return get_int_from_env(
        ["WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"], 1
    )


def run_whisper_job(
    config: TuneConfig, cancel: threading.Event, resume: bool = False
) -> Iterator[JobEvent]:
    """Run `config` (resolved) on a Whisper base, yielding the CTC jobs' events. The output_dir
    is locked while it runs (`claim_output_dir`): a second job there is refused."""
    processes = _launched_processes()
    if processes > 1:  # its loop neither splits the steps nor averages gradients
        raise JobError("tune.whisper_one_process", processes=processes)
    unused = unused_settings(config)
    if unused:
        log.warning(
            "a Whisper job does not use these settings; they are ignored: %s",
            ", ".join(f"{name}={getattr(config, name)}" for name in unused),
        )
    out = Path(config.output_dir)
    # A model without its card was written by a run that died before measuring it: resumed
    # from its last checkpoint, the job writes it again and finishes.
    if read_card(out / "model") is not None:
        raise ValueError(f"{out} already holds a tuned model; choose another output_dir")
    if resume and not checkpoint_dirs(out / "checkpoints"):  # before the folder is made
        raise JobError("tune.nothing_to_resume", path=out, checkpoints=out / "checkpoints")
    held = claim_output_dir(out, resume)
    try:
        yield from _run_claimed(config, cancel, resume)
    finally:  # ended, cancelled, failed or abandoned: the next run may have the folder
        if held is not None:
            held.close()


def _run_claimed(config: TuneConfig, cancel: threading.Event, resume: bool) -> Iterator[JobEvent]:
    """`run_whisper_job` in its claimed output_dir."""
    from .whisper_lora import WhisperCheckpoints, WhisperSaved, tune_whisper_lora

    out = Path(config.output_dir)
    began = time.monotonic()
    setup = prepare_job(config)
    prepared, examples, seconds = setup.prepared, setup.examples, setup.seconds
    train, heldout, base = prepared.train, prepared.heldout, setup.base
    settings = _settings(config, train)
    if resume:  # refused before the model loads, naming what changed
        check_resumable(checkpoint_dirs(out / "checkpoints")[-1], settings)
    checkpoints = WhisperCheckpoints(
        out / "checkpoints",
        every=config.save_every,
        keep=config.keep_checkpoints,
        settings=settings,
    )
    limit = None if config.max_minutes is None else config.max_minutes * 60
    earlier = 0.0  # seconds the job trained in earlier runs (when resumed)
    # for the time left (`seconds_left`) and what a time limit leaves for steps
    phases, cadence = PhaseSeconds(step=0.0), Cadence(config.save_every)

    def fitting(done: int, step_time: float) -> int:
        """The steps after `done` that end, with the finish, before the time limit."""
        left = limit - (earlier + time.monotonic() - began)
        most = setup.options.steps - done
        return steps_that_fit(done, most, replace(phases, step=step_time), cadence, left)

    loading = time.monotonic()
    steps = tune_whisper_lora(
        base,
        examples,
        out,
        setup.options,
        steps_that_fit=None if limit is None else fitting,
        checkpoints=checkpoints,
        stop=cancel.is_set,
        resume=resume,
    )
    ready = next(steps)  # the model loaded, with its adapters (and its checkpoint, resumed)
    earlier = ready.resumed_seconds
    # priors until measured: the finish's write does the load's work the other way (merged, and
    # converted where the base is a CTranslate2 model); its refit loads a model and passes the
    # held-out rows (a floor: the pass is timed on the base below, or kept from an earlier run)
    load = time.monotonic() - loading
    phases = replace(phases, write=load, refit=load if heldout else 0.0)
    yield JobStarted(
        config=config,
        train_examples=len(train),
        heldout_examples=len(heldout),
        train_seconds=seconds,
        validation=prepared.report.table(),
        skipped_rows=prepared.report.left_out,
        normalization=tuple(describe(prepared.normalize)),
        added_chars="",
        # Whisper hears every utterance as a 30 s window: the rest is padding, and time
        padding_fraction=1 - seconds / (_WINDOW * len(examples)),
        trainable_parameters=ready.trainable_parameters,
        total_parameters=ready.total_parameters,
        device=setup.options.device,
        precision=setup.options.precision,
        processes=1,
        resumed_from_step=ready.resumed_step,
    )
    yield from ready.set_aside  # newer checkpoints it could not read

    def cancelled() -> JobCancelled:
        steps.close()
        saved = checkpoint_dirs(checkpoints.folder)  # a resumed job's: the one it continues
        return JobCancelled(ready.resumed_step, saved[-1] if saved else None)

    if cancel.is_set():  # asked to stop while the model loaded: not after measuring the base
        yield cancelled()
        return
    key = _heldout_key(base, heldout, config)
    kept = _measured_before(out, key) if resume else None
    before = None if kept is None else kept[0]
    if kept is not None and kept[1] is not None:
        phases = replace(phases, refit=kept[1])
    if heldout and before is None:
        try:
            started = time.monotonic()
            measured = heldout_cer(base, heldout, config, stop=cancel.is_set)
            # the finish's pass over the tuned model, as measured on the base: the same work
            passed = time.monotonic() - started
            phases = replace(phases, refit=passed)
        except _Stopped:  # nothing measured is kept: a resume measures the base whole
            yield cancelled()
            return
        out.mkdir(parents=True, exist_ok=True)
        record = {"cer": measured.cer, "heldout": key, "seconds": passed}
        atomic_write_text(out / _BEFORE, json.dumps(record))
        before = measured.cer
        yield measured
    after = None
    done = ready.resumed_step
    asked = time.monotonic()
    for step in steps:
        if isinstance(step, WhisperSaved):  # written since its step was reported
            phases = replace(phases, save=time.monotonic() - asked)
            if step.stopped:
                yield JobCancelled(step.step, step.folder)
                return
            yield CheckpointSaved(step.step, step.folder, best=False)
            asked = time.monotonic()
            continue
        done = step.step
        yield StepProgress(
            step=step.step,
            total_steps=step.total_steps,
            loss=step.loss,
            learning_rate=step.learning_rate,
            samples_per_second=step.examples / max(step.seconds, 1e-9),
            eta_seconds=seconds_left(
                step.step, step.total_steps - step.step, replace(phases, step=step.seconds), cadence
            ),
            epoch=step.step * _BATCH // len(examples),
            examples=step.examples,
            seconds=step.seconds,
        )
        asked = time.monotonic()
    if heldout:
        (out / "model" / CALIBRATION_FILE).unlink(missing_ok=True)  # the rows are scored raw
        rows = heldout_rows(out / "model", heldout, config)
        after = _evaluated(rows, step=done)
        yield after
        calibration = _calibrate(out / "model", rows, config)
    else:
        calibration = "not refitted (no held-out rows); confidences shown raw"
    card = ModelCard(
        base_model=config.model,
        method="lora",
        steps=done,
        train_examples=len(train),
        train_seconds=seconds,
        heldout_examples=len(heldout),
        cer_before=before,
        cer_after=after.cer if after else None,
        data=config.data,
        normalization=tuple(describe(prepared.normalize)),
        family="whisper",
        cer_rows=len(heldout) if heldout else None,  # measured once, at the end
    )
    replace(card, calibration=calibration).write(out / "model")
    card.write(out / "adapter")
    yield JobFinished(
        JobResult(
            model_dir=out / "model",
            adapter_dir=out / "adapter",
            cer_before=before,
            cer_after=after.cer if after else None,
            best_step=done,
            steps=done,
            fingerprint=hashlib.sha256((out / "model" / "model.bin").read_bytes()).hexdigest(),
        )
    )
