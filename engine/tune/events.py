"""What a running tuning job reports: typed events, yielded by `engine.tune.loop.run_job` in this
order: `JobStarted` (a resumed job's followed by a `CheckpointSetAside` for each checkpoint it
could not read), then `StepProgress` / `Evaluated` / `CheckpointSaved`, and one of
`JobFinished`, `JobCancelled`, `JobFailed` last; and the `Estimate` of what a job will cost
(`engine.tune.estimate`). Imports no torch (the app relays them, see `engine.tune.wire`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import TingxieError
from engine.metrics import CerResult

from .config import TuneConfig


@dataclass(frozen=True, slots=True)
class JobStarted:
    """Everything decided before the first step: what trains on what, and how."""

    config: TuneConfig  # resolved
    train_examples: int
    heldout_examples: int
    train_seconds: float
    validation: str  # the validation table
    skipped_rows: int
    normalization: tuple[str, ...]
    added_chars: str
    padding_fraction: float
    trainable_parameters: int
    total_parameters: int
    device: str
    precision: str
    processes: int
    resumed_from_step: int
    # of the held-out rows, those that choose the checkpoint (the rest measure the CER
    # reported: engine.tune.data.heldout_shares); 0: none chooses
    selection_examples: int = 0


@dataclass(frozen=True, slots=True)
class StepProgress:
    step: int
    total_steps: int
    loss: float
    learning_rate: float
    samples_per_second: float
    eta_seconds: float  # until the job ends: steps, evaluations, checkpoints, finish
    epoch: int
    examples: int = 0  # utterances in this step (all processes)
    seconds: float = 0.0  # wall time of this step


@dataclass(frozen=True, slots=True)
class PhaseSeconds:
    """Measured seconds of one of each of a running job's phases (0: not measured yet), from
    which `seconds_left` reckons the time until it ends."""

    step: float  # one optimizer step
    evaluation: float = 0.0  # one held-out pass while training (0 without held-out rows)
    save: float = 0.0  # one checkpoint written
    # The finish's calibration refit: the saved model loaded again and every held-out row
    # transcribed as users get it, 4-15x an evaluation's time (0 without held-out rows).
    # Until it runs, a prior from what is measured (the load and an evaluation, or a
    # Whisper job's pass over the base).
    refit: float = 0.0
    # The finish's write of the tuned model (a LoRA job's merged model and adapter: many times
    # its checkpoint's bytes). Until it runs, a prior: the base's load, or a checkpoint's
    # write, scaled by bytes (`engine.tune.loop`); a Whisper job's load of its base.
    write: float = 0.0


@dataclass(frozen=True, slots=True)
class Cadence:
    """When a running job evaluates and saves, for `seconds_left`."""

    save_every: int  # a checkpoint every save_every steps and after the last (0: the last)
    # an evaluation every eval_every steps and after the last (0: the last; None: none while
    # training)
    eval_every: int | None = None
    # an evaluation that finds a new best step saves a checkpoint too; which will is not known
    # ahead, so every evaluation step is counted as saving
    best_saves: bool = False


def steps_due(first: int, last: int, every: int | None, or_every: int | None = None) -> int:
    """How many of the steps first..last run something done every `every` steps (or every
    `or_every`) and after the last step (evaluations, checkpoints): the multiples, each once,
    and `last`. None: never; 0: only after the last step.

    >>> steps_due(3, 8, 3)  # after steps 3, 6 and 8
    3
    >>> steps_due(1, 8, 3, 4)  # after steps 3, 4, 6 and 8
    4
    """
    if first > last or (every is None and or_every is None):
        return 0
    periods = [e for e in (every, or_every) if e]

    def multiples(period: int) -> int:
        return last // period - (first - 1) // period

    both = multiples(math.lcm(*periods)) if len(periods) == 2 else 0
    ends_on_one = any(last % e == 0 for e in periods)
    return sum(multiples(e) for e in periods) - both + (not ends_on_one)


def seconds_left(step: int, to_go: int, seconds: PhaseSeconds, cadence: Cadence) -> float:
    """Seconds until a job that has just run `step`, with `to_go` steps after it, ends: those
    steps, the evaluations and checkpoints still due (this step's too: they follow its
    progress; a new best step's counted at every evaluation), and the finish: the tuned
    model's write and the calibration refit.

    >>> seconds_left(8, 0, PhaseSeconds(10, evaluation=2, save=1, refit=9, write=4), Cadence(4, 3))
    16.0
    """
    last = step + to_go
    evaluations = steps_due(step, last, cadence.eval_every)
    best = cadence.eval_every if cadence.best_saves else None
    saves = steps_due(step, last, cadence.save_every, best)
    return float(
        to_go * seconds.step
        + evaluations * seconds.evaluation
        + saves * seconds.save
        + seconds.write
        + seconds.refit
    )


def steps_that_fit(
    step: int, most: int, seconds: PhaseSeconds, cadence: Cadence, budget: float
) -> int:
    """The most steps after `step`, up to `most`, that end with all that follows them (their
    evaluations and checkpoints, the finish: `seconds_left`) within `budget` seconds; 0 when
    even this step's and the finish do not fit: a time limit then stops the job here.

    >>> steps_that_fit(2, 100, PhaseSeconds(step=10, save=1, refit=8, write=1), Cadence(0), 40.0)
    3
    """
    low, high = 0, most  # the time left grows with the steps: the last that fits
    while low < high:
        middle = (low + high + 1) // 2
        if seconds_left(step, middle, seconds, cadence) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


@dataclass(frozen=True, slots=True)
class Evaluated:
    """Held-out CER after `step` optimizer steps (0 = the base model). `cer`, `result` and
    `samples` are the report share's (engine.tune.data.heldout_shares: every held-out row when
    they are too few to split), never used to choose a checkpoint; `selection_cer` is the
    share that chooses it (None: not split, no step is chosen)."""

    step: int
    cer: float
    result: CerResult
    samples: tuple[tuple[str, str], ...] = ()  # a few (reference, hypothesis) pairs
    selection_cer: float | None = None


@dataclass(frozen=True, slots=True)
class CheckpointSaved:
    step: int
    path: Path
    best: bool


@dataclass(frozen=True, slots=True)
class CheckpointSetAside:
    """A resumed job could not read `checkpoint` (`problem`: which file, and what is wrong with
    it: cut short by a power cut, emptied, not a file Tingxie wrote), so it resumed from
    `resumed_step`, its newest readable checkpoint, instead; the unreadable one is kept, for the
    user to look at, as `kept_as` (engine.tune.checkpoints)."""

    checkpoint: Path
    kept_as: Path
    problem: str
    resumed_step: int


@dataclass(frozen=True, slots=True)
class JobResult:
    # merged checkpoint (of best_step), loadable by engine.model.load_model
    model_dir: Path
    adapter_dir: Path | None  # LoRA only
    # held-out CER of the base and of the saved model, on rows that did not choose best_step
    cer_before: float | None
    cer_after: float | None
    best_step: int  # the step the saved model is of: chosen, or the last when none was
    steps: int
    # sha256 of the final trained weights (before export): equal on every data-parallel process
    fingerprint: str = ""
    # held-out rows whose CER chose best_step; 0: none did (too few held out to split, a
    # Whisper job), it is the last step
    selection_rows: int = 0
    # read from a model card written before the held-out rows were split (ModelCard.cer_rows
    # None): which rows measured the figures, and whether they chose the step, is not known
    rows_unknown: bool = False


@dataclass(frozen=True, slots=True)
class JobFinished:
    result: JobResult


@dataclass(frozen=True, slots=True)
class JobCancelled:
    """Stopped on request; `tune --resume` continues from `checkpoint`."""

    step: int
    checkpoint: Path | None


@dataclass(frozen=True, slots=True)
class JobFailed:
    message: str  # one line, says what to do
    # The engine error's code and parameters (engine.errors), where the failure is one: a
    # front end in another process words it in its own language from them.
    code: str = ""
    params: tuple[tuple[str, Any], ...] = ()
    # What the message points to, where it points to more: the validation table of data
    # none of whose rows is usable.
    details: str = ""

    @classmethod
    def of(cls, error: BaseException) -> JobFailed:
        """The event for `error`: its first line, and its code where it has one."""
        text = str(error)
        message = text.splitlines()[0] if text else type(error).__name__
        if not isinstance(error, TingxieError):
            return cls(message)
        params = tuple((k, v if isinstance(v, _JSON) else str(v)) for k, v in error.params.items())
        report = getattr(error, "report", None)  # engine.tune.data.DatasetError's
        return cls(message, error.code, params, report.table() if report is not None else "")


_JSON = (str, int, float, bool, type(None))  # what travels as itself through engine.tune.wire


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a job will cost on this machine, measured by running its setup and a few steps
    (`engine.tune.estimate.estimate`), not guessed: `total_seconds` covers the set-up, the
    steps, the held-out evaluations, the checkpoints and the finish (the tuned model written
    and its calibration refitted)."""

    setup_seconds: float  # loading the model, decoding the audio, caching encoder features
    seconds_per_step: float  # median of the measured steps after the first
    eval_seconds: float  # one held-out evaluation (0 without a held-out set)
    steps: int  # the steps the job will run (fewer than configured when a time limit binds)
    evaluations: int  # held-out evaluations the job will run, the base model's included
    peak_memory_bytes: int  # resident memory of the measuring process at its peak
    device_memory_bytes: int  # peak CUDA memory (0 on CPU)
    device: str
    measured_steps: int
    save_seconds: float = 0.0  # one checkpoint written
    # checkpoints the job will write: every save_every steps and the last, and where a new
    # best step may be chosen, at every evaluation (which will choose one is not known ahead)
    saves: int = 0
    # after the last step: the tuned model's write and the calibration refit
    finish_seconds: float = 0.0
    # of finish_seconds, the calibration refit, measured: the saved model loaded again and the
    # held-out rows transcribed as users get them (0 without held-out rows)
    refit_seconds: float = 0.0

    @property
    def total_seconds(self) -> float:
        return (
            self.setup_seconds
            + self.steps * self.seconds_per_step
            + self.evaluations * self.eval_seconds
            + self.saves * self.save_seconds
            + self.finish_seconds
        )


JobEvent = (
    JobStarted
    | CheckpointSetAside
    | StepProgress
    | Evaluated
    | CheckpointSaved
    | JobFinished
    | JobCancelled
    | JobFailed
)
