"""Data for a job, checked before any time is spent: several sources combined into one, and
the validation a job will do, run ahead of it with the verdict spelled out (`check_data`).

`validate_for_model` is the one place that decides which rows train and which are held out: the
training loop calls it, and so does the check, so what the check shows is what the job does.
No torch here beyond what `engine.model` imports to read a model's files.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from engine.atomic import atomic_write_text
from engine.audio import SAMPLE_RATE
from engine.chunking import FrameGeometry
from engine.errors import TingxieError
from engine.normalize import NormalizeOptions, is_simplified_vocab

from .config import TuneConfig
from .data import (
    MIN_SPLIT_ROWS,
    DatasetError,
    Example,
    Finding,
    SplitBy,
    TuneDataset,
    ValidationOptions,
    ValidationReport,
    heldout_shares,
    load_dataset,
    manifest_text,
    source_kind,
    validate,
    write_import_problems,
)

__all__ = [
    "DataCheck",
    "Issue",
    "Prepared",
    "check_data",
    "check_time_masks",
    "combine_sources",
    "duration_histogram",
    "load_sources",
    "model_geometry",
    "source_kind",
    "validate_for_model",
]

log = logging.getLogger("tingxie.train")

# Below this much training audio a job rarely changes the model measurably.
LITTLE_DATA_SECONDS = 60.0
# Fewer held-out utterances measuring the result (`DataCheck.report_examples`) than this make
# the before/after CER a coin toss.
SMALL_HELDOUT = 5
# wav2vec2's feature encoder (kernels, strides: a 320-sample hop, 20 ms), when the model's
# config is not at hand
_DEFAULT_CONVS = ((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2))

IssueKind = Literal[
    # the data cannot be read at all, no row is usable, or rows the job would refuse (blocking)
    "unusable",
    "no_model",  # the base model is a folder path the loader refuses (blocking)
    "skipped_rows",  # some rows will not train (missing audio, too long, …)
    "unknown_chars",  # characters the model cannot write: rows skipped unless the vocabulary grows
    "no_vocabulary",  # the model's vocabulary is not at hand: unknown characters not checked
    "conflicting",  # rows giving one clip different transcripts: all of them train
    "little_data",
    "small_heldout",
    "no_heldout",  # no held-out CER before and after
    "one_row",  # a single usable row: none can be held out, whatever heldout_fraction is
]


@dataclass(frozen=True, slots=True)
class Issue:
    """One thing the user should know before starting; a blocking one stops the start.
    `detail` is English (or a name: the model, the characters); `code` and `params`, when the
    detail is an error's message, are its `engine.errors` code and parameters, for a front end
    to word in its own language."""

    kind: IssueKind
    blocking: bool = False
    count: int = 0
    detail: str = ""
    code: str = ""
    params: Mapping[str, object] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a job trains on: the usable rows split into train and held out."""

    report: ValidationReport
    train: list[Example]
    heldout: list[Example]
    normalize: NormalizeOptions  # as applied (to_simplified dropped for Traditional models)


@dataclass(frozen=True, slots=True)
class DataCheck:
    """The verdict on a job's data before it runs."""

    sources: tuple[str, ...]
    report: ValidationReport | None  # None when nothing could be read
    train_examples: int
    heldout_examples: int
    train_seconds: float
    heldout_seconds: float
    histogram: tuple[tuple[float, float, int], ...]  # (from s, to s, utterances) of usable rows
    issues: tuple[Issue, ...]
    # The held-out rows whose CER will choose the checkpoint (engine.tune.data.heldout_shares);
    # 0 when none will: too few held out to split (the last step is kept), or a Whisper job.
    selection_examples: int = 0

    @property
    def report_examples(self) -> int:
        """The held-out rows whose CER before → after will measure the result."""
        return self.heldout_examples - self.selection_examples

    @property
    def blocking(self) -> bool:
        return any(i.blocking for i in self.issues)

    @property
    def warnings(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if not i.blocking)


def load_sources(sources: Sequence[str | Path]) -> TuneDataset:
    """Several datasets (manifests, audio + .txt folders, Common Voice folders) as one, each row
    keeping where it came from; DatasetError names the source that cannot be read."""
    if not sources:
        raise DatasetError("dataset.none_chosen")
    examples, problems = [], []
    for source in sources:
        dataset = load_dataset(source)
        examples += dataset.examples
        problems += dataset.import_problems
    return TuneDataset(examples, ", ".join(str(s) for s in sources), problems)


def _manifest_rows(examples: Sequence[Example]) -> str:
    def row(e: Example) -> tuple[str, ...]:
        span = ("", "") if e.start is None else (f"{e.start:.3f}", f"{e.end:.3f}")
        return (str(e.audio.resolve()), e.text, *span)

    return manifest_text(map(row, examples), header=("path", "text", "start", "end"))


def combine_sources(sources: Sequence[str | Path], manifest: Path) -> str:
    """The `data` setting for a job on `sources`: the source itself when there is one, else one
    manifest (absolute paths, spans kept) written to `manifest`, with the rows the sources
    could not import kept beside it (`write_import_problems`): the job lists them as the check
    did."""
    if len(sources) == 1:
        return str(sources[0])
    dataset = load_sources(sources)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    write_import_problems(manifest, dataset.import_problems)
    atomic_write_text(manifest, _manifest_rows(dataset.examples))
    return str(manifest)


def validate_for_model(
    dataset: TuneDataset,
    vocab: Sequence[str] | None,
    config: TuneConfig,
    frame_seconds: float | None,
    window_seconds: float | None = None,
    token_limit: tuple[Callable[[str], int], int] | None = None,
    split_by: Callable[[TuneDataset, TuneConfig], SplitBy] | None = None,
) -> Prepared:
    """Normalize, validate against the model's vocabulary and limits, and split (by a hash of
    each clip's content, `TuneDataset.split`, so the held-out rows are the same in the check
    and in the job, and in a later job on more or rebuilt sets; `split_by`: how, for a job
    that may have been started before, `engine.tune.jobs.resumed_split`). `vocab`
    None: the model writes any character (Whisper's byte-level tokens); `frame_seconds` None:
    not a CTC model; `window_seconds`: the longest audio the model hears at once
    (`Family.window_seconds`), longer rows are skipped; `token_limit`: a decoder's limit on a
    transcript (`ValidationOptions.token_limit`)."""
    if window_seconds is not None:
        config = replace(config, max_seconds=min(config.max_seconds, window_seconds))
    normalize = config.normalize
    if vocab is not None and normalize.to_simplified and not is_simplified_vocab(vocab):
        log.info("the model writes Traditional characters: transcripts stay as they are")
        normalize = replace(normalize, to_simplified=False)
    dataset = dataset.normalized(normalize)
    options = ValidationOptions(
        config.min_seconds,
        config.max_seconds,
        frame_seconds,
        config.extend_vocab,
        token_limit,
        normalize,
    )
    report = validate(dataset, None if vocab is None else [*vocab, " "], options)
    kept = TuneDataset(report.kept, dataset.source)
    by = split_by(kept, config) if split_by else "content"
    train, heldout = kept.split(config.heldout_fraction, by)
    return Prepared(report, train, heldout, normalize)


def model_geometry(model: str) -> FrameGeometry:
    """How `model`'s feature encoder maps samples to output frames (its hop: the seconds per
    frame CTC labels need), from its config, without loading it (wav2vec2's when not at hand)."""
    from engine.model import model_file

    path = model_file(model, "config.json")
    try:
        config = json.loads(path.read_text(encoding="utf-8")) if path else {}
        return FrameGeometry.from_convs(config["conv_kernel"], config["conv_stride"])
    except (OSError, ValueError, KeyError, TypeError):
        return FrameGeometry.from_convs(*_DEFAULT_CONVS)


def check_time_masks(config: TuneConfig, prepared: Prepared, geometry: FrameGeometry) -> None:
    """Refuse training clips shorter than one SpecAugment time mask while time masking is on
    (`mask_time_prob` > 0): transformers cannot place a mask longer than a batch of them and
    fails mid-job. The job calls it once the model is loaded, the check before. The
    DatasetError names the settings to change; its `report` is the validation's plus a finding
    for each such clip (kept by validation: min_seconds let it through)."""
    if not config.resolved().mask_time_prob:
        return
    samples = geometry.receptive_field + (config.mask_time_length - 1) * geometry.hop
    shortest = math.ceil(100 * samples / SAMPLE_RATE) / 100  # whole frames, as min_seconds
    seconds = prepared.report.durations
    short = [e for e in prepared.train if seconds.get(e.id, math.inf) < shortest]
    if not short:
        return
    error = DatasetError(
        "dataset.clips_shorter_than_mask",
        min_seconds=config.min_seconds,
        count=len(short),
        length=config.mask_time_length,
        mask_seconds=shortest,
        example=short[0].where,
        seconds=seconds[short[0].id],
    )
    findings = [
        Finding.coded(
            "dataset.row_shorter_than_mask",
            e.where,
            "too_short",
            False,
            seconds=seconds[e.id],
            length=config.mask_time_length,
            mask_seconds=shortest,
        )
        for e in short
    ]
    error.report = replace(prepared.report, findings=[*prepared.report.findings, *findings])
    raise error


def duration_histogram(
    seconds: Sequence[float], bins: int = 12
) -> tuple[tuple[float, float, int], ...]:
    """(from, to, count) per equal-width bin of durations, for the check's histogram.

    >>> duration_histogram([1.0, 1.5, 3.0], bins=2)
    ((1.0, 2.0, 2), (2.0, 3.0, 1))
    """
    if not len(seconds):
        return ()
    counts, edges = np.histogram(np.asarray(seconds, dtype=float), bins=bins)
    return tuple(
        (float(lo), float(hi), int(n))
        for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=True)
    )


def _unusable(error: TingxieError, kind: IssueKind = "unusable") -> Issue:
    """The blocking issue that says `error`."""
    return Issue(kind, blocking=True, detail=str(error), code=error.code, params=error.params)


def _unusable_model(config: TuneConfig, whisper: bool) -> Issue | None:
    """The blocking issue for a base model given as a folder path (by the loader's own rule)
    that the job's first step would refuse (`engine.model.resolve_model`): no such folder (a
    typo), a pretrained encoder without a vocabulary, files missing. A CTranslate2 Whisper
    folder is checked as loading it checks it (`engine.whisper.checked_folder`): one missing
    a file passed here, and the job failed after its set-up naming transformers weights. None
    for a CTC folder it accepts, a transformers Whisper folder, or a Hub id (downloaded when
    the job starts)."""
    from engine.model import ModelLoadError, looks_like_path, resolve_model
    from engine.registry import model_path
    from engine.whisper import checked_folder, is_ctranslate2

    if not looks_like_path(config.model):
        return None
    folder = model_path(config.model)
    try:
        if whisper and is_ctranslate2(folder):
            checked_folder(folder)
        elif not (whisper and folder.exists()):
            resolve_model(config.model, allow_pickle=config.allow_pickle)
    except ModelLoadError as e:
        return _unusable(e, "no_model")
    return None


def check_data(sources: Sequence[str | Path], config: TuneConfig) -> DataCheck:
    """Everything `run_job` would find wrong with the data, before it runs: validation against
    `config.model`'s vocabulary, clips too short for its time masks (`check_time_masks`), the
    held-out split, and whether the result can be measured."""
    from engine.model import model_vocab
    from engine.registry import WHISPER, family_of, model_path

    sources = tuple(str(s) for s in sources)
    family = family_of(config.model)
    whisper = family is WHISPER  # writes any character
    vocab = None if whisper else model_vocab(config.model)
    unusable = _unusable_model(config, whisper)
    if unusable is not None:
        issues = [unusable]
    elif vocab is None and not whisper:  # unknown characters cannot be told: the job says
        issues = [Issue("no_vocabulary", detail=config.model)]
    else:
        issues = []
    geometry = None if whisper else model_geometry(config.model)
    try:
        dataset = load_sources(sources)
        if whisper:  # no frame per label; a decoder of so many tokens
            from .whisper_text import token_limit

            folder = model_path(config.model) if Path(config.model).is_dir() else config.model
            limits = (None, family.window_seconds, token_limit(folder))
        else:
            window = family.window_seconds if family else None
            limits = (geometry.hop / SAMPLE_RATE, window, None)
        prepared = validate_for_model(dataset, vocab, config, *limits)
    except DatasetError as e:
        return DataCheck(sources, e.report, 0, 0, 0.0, 0.0, (), (*issues, _unusable(e)))
    report = prepared.report
    if geometry is not None:  # a CTC job masks time; Whisper's does not
        try:
            check_time_masks(config, prepared, geometry)
        except DatasetError as e:  # the rest of the verdict still shows, its rows listed
            report = e.report
            issues.append(_unusable(e))
    durations = report.durations

    def seconds(examples: list[Example]) -> float:
        return sum(durations.get(e.id, 0.0) for e in examples)

    train_seconds, heldout_seconds = seconds(prepared.train), seconds(prepared.heldout)
    # as the job will split them: a CTC job from MIN_SPLIT_ROWS on, a Whisper job never
    split = not whisper and len(prepared.heldout) >= MIN_SPLIT_ROWS
    report_rows, selection_rows = heldout_shares(len(prepared.heldout), split)
    if report.left_out:
        issues.append(Issue("skipped_rows", count=report.left_out))
    if conflicting := sum(f.code == "dataset.row_conflicting" for f in report.findings):
        issues.append(Issue("conflicting", count=conflicting))
    if report.unknown_chars and not config.extend_vocab:
        chars = "".join(c for c, _ in report.unknown_chars.most_common())
        issues.append(Issue("unknown_chars", count=len(chars), detail=chars))
    if train_seconds < LITTLE_DATA_SECONDS:
        issues.append(Issue("little_data", count=round(train_seconds)))
    if len(report.kept) < 2:
        issues.append(Issue("one_row"))
    elif not prepared.heldout:
        issues.append(Issue("no_heldout"))
    elif len(report_rows) < SMALL_HELDOUT:
        issues.append(Issue("small_heldout", count=len(report_rows)))
    return DataCheck(
        sources=sources,
        report=report,
        train_examples=len(prepared.train),
        heldout_examples=len(prepared.heldout),
        train_seconds=train_seconds,
        heldout_seconds=heldout_seconds,
        histogram=duration_histogram([durations.get(e.id, 0.0) for e in report.kept]),
        issues=tuple(issues),
        selection_examples=len(selection_rows),
    )
