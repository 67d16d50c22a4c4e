"""Measure a model on a manifest: CER, real-time factor and the quality of its confidences.

Why confidence quality is measured: the review screen trusts per-character confidence to point
at the characters worth checking. Two numbers say whether it does. AUROC: the chance that a
correctly recognized character gets a higher confidence than a wrong one (after aligning the
hypothesis to the reference; 0.5 = no better than chance, 1 = perfect separation). Expected
calibration error (ECE): how far, on average over confidence bins weighted by their size, the
stated confidence is from the observed accuracy. Several confidence measures are scored from
the same model outputs (one forward pass per utterance), so they can be compared fairly.

Decoding is the transcriber's (`TranscribeOptions.decoder`): with a model folder's language
model, beam search (engine.lm), and the greedy CER of the same forward pass is reported beside
it. Utterances are decoded whole (evaluation sets are utterance-level); the math (`auroc`,
`expected_calibration_error`, `reliability`, `summarize`) is pure and tested on hand-made data.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.calibration import (
    CALIBRATION_FILE,
    Calibration,
    cross_fitted,
    cross_fitted_beam,
    fit_beam,
    fit_platt,
)
from engine.decode import ConfidenceMethod
from engine.extras import install_hint
from engine.lm import EVIDENCE
from engine.loader import load_model
from engine.metrics import CerResult, align, cer
from engine.model import LoadedModel, LoadOptions
from engine.normalize import NormalizeOptions, convert_in_phrase, normalize_text
from engine.results import Char
from engine.transcribe import TranscribeOptions, Transcriber
from engine.whisper import (
    DEFAULT_MEASURE,
    MEASURES,
    LoadedWhisper,
    WhisperTranscriber,
    measure_name,
    word_chars,
)

if TYPE_CHECKING:
    from .data import Example, Finding

__all__ = [
    "COMPARED_MEASURES",
    "CalibrationFit",
    "EvalOptions",
    "EvalReport",
    "EvalRow",
    "MeasureScore",
    "ReliabilityBin",
    "auroc",
    "calibrate_rows",
    "calibrated_measure",
    "calibration_ece",
    "calibration_outcome",
    "ctc_measures",
    "describe",
    "ensure_plot_available",
    "evaluate",
    "expected_calibration_error",
    "fit_calibration",
    "iter_rows",
    "read_examples",
    "refit_calibration",
    "reliability",
    "score_examples",
    "summarize",
    "whisper_measures",
    "write_reliability_png",
]

log = logging.getLogger("tingxie.evaluate")

# Fewer held-out characters than this give a Platt fit too noisy to trust (and to measure).
MIN_CALIBRATION_CHARACTERS = 200
# The wrong characters are what tells one calibration from another: with k of them, the error
# rate of a confidence bin is known to about ±1/√k of itself (Poisson), ±20 % at 25. With fewer,
# two maps' ECEs differ by chance (3 wrong of 398 characters: ±58 %, and a held-out ECE of
# 0.001 that says nothing), so `evaluate --calibrate` does not replace a folder's calibration
# on them.
MIN_WRONG_TO_REPLACE = 25
# Measures scored beside the primary one: the plain top probability and the three entropy
# families of engine.decode, each with the α NeMo and Laptev & Ginsburg found useful.
COMPARED_MEASURES = (
    "max_prob:1:min",
    "max_prob:1:mean",
    "entropy_gibbs_exp:1:min",
    "entropy_tsallis_exp:0.33:min",
    "entropy_tsallis_exp:0.33:mean",
    "entropy_renyi_exp:0.25:min",
)


@dataclass(frozen=True, slots=True)
class EvalOptions:
    """What to measure and how."""

    # The confidence measure whose AUROC / ECE / reliability are the headline (the one the
    # transcriber uses by default), and others scored from the same outputs for comparison.
    confidence: str = TranscribeOptions().confidence
    compare: tuple[str, ...] = COMPARED_MEASURES
    bins: int = 10  # equal-width confidence bins for ECE and the reliability diagram
    limit: int | None = None  # evaluate only the first N rows of the manifest
    max_seconds: float = 60.0  # longer rows are refused: cut them into utterances first
    normalize: NormalizeOptions = field(default_factory=NormalizeOptions)
    load: LoadOptions = field(default_factory=LoadOptions)
    # CTC decoding as in TranscribeOptions: auto (the model's LM when it has one), greedy or
    # beam, and a domain text file and hotword file for the beam search.
    decoder: str = "auto"
    domain_text: str | None = None
    hotwords: str | None = None

    def __post_init__(self) -> None:
        for text in (self.confidence, *self.compare):
            ConfidenceMethod.parse(text)  # raises a ValueError naming the bad measure
        if self.bins < 1:
            raise ValueError(f"bins={self.bins}: must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit={self.limit}: must be at least 1 (or None for all rows)")
        if self.max_seconds <= 0:
            raise ValueError(f"max_seconds={self.max_seconds}: must be positive")
        self.transcribe_options  # noqa: B018 (checks the decoder's name)

    @property
    def transcribe_options(self) -> TranscribeOptions:
        """The decoding settings as the transcriber takes them."""
        return TranscribeOptions(
            confidence=self.confidence,
            decoder=self.decoder,
            domain_text=self.domain_text,
            hotwords=self.hotwords,
        )

    @property
    def measures(self) -> tuple[ConfidenceMethod, ...]:
        """The primary measure first, then the compared ones (duplicates dropped)."""
        parsed = [ConfidenceMethod.parse(t) for t in (self.confidence, *self.compare)]
        return tuple(dict.fromkeys(parsed))


@dataclass(frozen=True, slots=True)
class EvalRow:
    """One utterance: texts after normalization and, per hypothesis character, whether it
    matches the reference and its confidence under each measure (`EvalOptions.measures`)."""

    audio: str
    reference: str
    hypothesis: str
    seconds: float  # audio duration
    compute_seconds: float  # model forward + decoding
    correct: tuple[bool, ...]
    confidences: tuple[tuple[float, ...], ...]
    # The measures' names, where the model family scores its own (Whisper); empty: the
    # EvalOptions measures
    measures: tuple[str, ...] = ()
    # With beam search: the greedy decoding of the same forward pass (normalized), and the
    # seconds the beam search itself took.
    greedy_hypothesis: str | None = None
    beam_seconds: float = 0.0
    # With beam search, per hypothesis character, what the search saw of it (engine.lm.EVIDENCE):
    # what a calibration's beam map is fitted on.
    evidence: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """Characters whose confidence falls in [lower, upper): how many, how sure, how right."""

    lower: float
    upper: float
    count: int
    mean_confidence: float
    accuracy: float


@dataclass(frozen=True, slots=True)
class MeasureScore:
    """How well one confidence measure separates right from wrong characters."""

    measure: str
    auroc: float | None  # None when every character is right (or every one wrong)
    ece: float


@dataclass(frozen=True, slots=True)
class EvalReport:
    model: str
    manifest: str
    cer: CerResult
    audio_seconds: float
    compute_seconds: float
    confidence_measure: str
    auroc: float | None
    ece: float
    characters: int  # hypothesis characters scored
    wrong_characters: int
    reliability: tuple[ReliabilityBin, ...]
    measures: tuple[MeasureScore, ...]
    rows: tuple[EvalRow, ...]
    # How the CER above was decoded (engine.lm.describe_decoder) and, with beam search, the
    # greedy CER of the same outputs.
    decoder: str = "greedy"
    greedy_cer: CerResult | None = None

    @property
    def rtf(self) -> float:
        """Real-time factor: compute seconds per second of audio (lower is faster)."""
        return self.compute_seconds / self.audio_seconds if self.audio_seconds else 0.0

    def to_dict(self) -> dict:
        """Plain data for JSON: NaN (the means of an empty reliability bin) becomes None,
        since `NaN` is not JSON and strict readers refuse the whole document."""
        d = asdict(self)
        d["rtf"] = self.rtf
        return _json_safe(d)


def _json_safe(value):
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def auroc(scores: Sequence[float] | np.ndarray, positive: Sequence[bool] | np.ndarray):
    """Area under the ROC curve of `scores` for telling `positive` items from the others: the
    probability that a random positive outscores a random negative, ties counting one half
    (Mann-Whitney U over average ranks). None when either class is empty."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    if s.shape != pos.shape:
        raise ValueError(f"auroc: {s.shape} scores but {pos.shape} labels; pass one per item")
    _check_finite(s, "auroc")
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # average ranks (1-based) over runs of tied scores
    bounds = np.flatnonzero(np.diff(sorted_s)) + 1
    starts, ends = np.concatenate([[0], bounds]), np.concatenate([bounds, [len(s)]])
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = (a + 1 + b) / 2
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def _check_finite(values: np.ndarray, what: str) -> None:
    """NaN falls in no bin and sorts anywhere: a score over it would look perfect (ECE 0)."""
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"{what}: {int(bad.sum())} of {values.size} confidences are not finite numbers "
            "(NaN or infinite); the measure, or the model folder's calibration.json, is broken"
        )


def _bin_index(confidences: np.ndarray, bins: int) -> np.ndarray:
    return np.minimum((confidences * bins).astype(int), bins - 1)


def reliability(
    confidences: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray, bins: int = 10
) -> list[ReliabilityBin]:
    """Equal-width confidence bins over [0, 1] (the last one closed) with count, mean
    confidence and accuracy; empty bins have count 0 and NaN means. A confidence that is not a
    finite number raises ValueError."""
    c = np.asarray(confidences, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    if c.shape != ok.shape:
        raise ValueError(f"reliability: {c.shape} confidences but {ok.shape} labels")
    _check_finite(c, "reliability")
    c = np.clip(c, 0.0, 1.0)
    index = _bin_index(c, bins)
    out = []
    for b in range(bins):
        members = index == b
        n = int(members.sum())
        out.append(
            ReliabilityBin(
                lower=b / bins,
                upper=(b + 1) / bins,
                count=n,
                mean_confidence=float(c[members].mean()) if n else float("nan"),
                accuracy=float(ok[members].mean()) if n else float("nan"),
            )
        )
    return out


def expected_calibration_error(
    confidences: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray, bins: int = 10
) -> float:
    """Σ over bins of (share of items in the bin) × |accuracy − mean confidence| (Guo et al.
    2017, equal-width bins). 0 for no items."""
    table = reliability(confidences, correct, bins)
    total = sum(b.count for b in table)
    if total == 0:
        return 0.0
    return float(
        sum(b.count / total * abs(b.accuracy - b.mean_confidence) for b in table if b.count)
    )


def _score_row(
    transcriber: Transcriber,
    audio: np.ndarray,
    reference: str,
    options: EvalOptions,
) -> tuple[str, tuple[bool, ...], tuple[tuple[float, ...], ...], float, dict]:
    """Decode once (greedy or one beam search) from one forward pass, score every measure on
    its characters, and align the hypothesis to the reference."""
    began = time.perf_counter()
    (lp,) = transcriber.log_probs([audio])
    measures = options.measures
    beam = transcriber.beam_decoder(options.transcribe_options)
    extra: dict = {}
    evidence = None  # what the beam map reads (beam search only)
    if beam is None:
        decoded = [transcriber.chars(lp, top_k=0, confidence=m, calibrate=False) for m in measures]
    else:
        searched = time.perf_counter()
        paths = beam.paths(lp)
        extra["beam_seconds"] = time.perf_counter() - searched
        fs = transcriber.frame_seconds
        decoded = [
            beam.chars(lp, frame_seconds=fs, top_k=0, confidence=m, paths=paths) for m in measures
        ]
        evidence = beam.evidence(lp, paths, measures[0])
    calibration = transcriber.calibration(measures[0])
    if calibration is not None:  # the calibrated primary measure first, then the raw ones
        raw = np.array([c.confidence for c in decoded[0]])
        mapped = calibration.shown(raw, evidence)
        decoded.insert(
            0, [replace(c, confidence=float(p)) for c, p in zip(decoded[0], mapped, strict=True)]
        )
    elapsed = time.perf_counter() - began
    if beam is not None:
        greedy = "".join(c.text for c in transcriber.chars(lp, top_k=0))
        extra["greedy_hypothesis"] = normalize_text(greedy, options.normalize)
        kept, _ = _normalized_pieces(decoded[0], options)
        extra["evidence"] = tuple(tuple(float(x) for x in evidence[i]) for i in kept)
    return (*_align_decoded(decoded, reference, options), elapsed, extra)


def ctc_measures(transcriber: Transcriber, options: EvalOptions) -> tuple[str, ...]:
    """The confidences scored for a CTC model when its folder calibrates the primary measure:
    that measure calibrated (`+beam`: by its beam map, after a beam search), then every
    measure raw; () when it does not (the options' names)."""
    names = tuple(m.name for m in options.measures)
    calibration = transcriber.calibration(options.measures[0])
    if calibration is None:
        return ()
    beam = transcriber.beam_decoder(options.transcribe_options) is not None
    return (f"{names[0]}+{'beam' if beam and calibration.beam else 'platt'}", *names)


def whisper_measures(model: LoadedWhisper) -> tuple[str, ...]:
    """The confidences scored for a Whisper model: its calibrated default (when the folder has
    a calibration), then each raw way of sharing a word's probability (engine.whisper)."""
    raw = tuple(measure_name(name) for name in MEASURES)
    return (f"{raw[0]}+platt", *raw) if model.calibration is not None else raw


def _score_whisper_row(
    transcriber: WhisperTranscriber, audio: np.ndarray, reference: str, options: EvalOptions
) -> tuple[str, tuple[bool, ...], tuple[tuple[float, ...], ...], float]:
    """One decode (Mandarin forced, the default prompt); its words give every measure."""
    began = time.perf_counter()
    words = [w for s in transcriber.segments(audio, TranscribeOptions()) for w in s.words or ()]
    calibration = transcriber.model.calibration
    decoded = [word_chars(words, measure=name) for name in MEASURES]
    if calibration is not None:
        decoded.insert(0, word_chars(words, measure=DEFAULT_MEASURE, calibration=calibration))
    elapsed = time.perf_counter() - began
    return (*_align_decoded(decoded, reference, options), elapsed, {})


def _align_decoded(
    decoded: list[list[Char]], reference: str, options: EvalOptions
) -> tuple[str, tuple[bool, ...], tuple[tuple[float, ...], ...]]:
    """The normalized hypothesis, each of its characters right or wrong against the reference,
    and their confidences under each decoding (same characters, other measures)."""
    keep, pieces = _normalized_pieces(decoded[0], options)
    hypothesis = "".join(pieces)
    correct = tuple(p.correct for p in align(reference, hypothesis))
    if len(correct) != len(keep):  # a character that normalizes to several characters
        raise ValueError(f"cannot align {hypothesis!r}: a vocabulary entry is not one character")
    confidences = tuple(tuple(chars[i].confidence for i in keep) for chars in decoded)
    return hypothesis, correct, confidences


def _normalized_pieces(chars: list[Char], options: EvalOptions) -> tuple[list[int], list[str]]:
    """The characters that survive normalization (punctuation and spaces, which drop out, are
    judged alone) and their normalized texts, converted together in their phrase as the
    reference is: OpenCC picks Simplified characters by phrase (乾隆 keeps 乾, which alone
    becomes 干), so a hypothesis converted one character at a time would be charged for
    writing exactly the reference. Dropping the punctuation first keeps the phrase's length,
    which `convert_in_phrase` needs to cut it back into characters."""
    keep = [i for i, c in enumerate(chars) if normalize_text(c.text, options.normalize)]
    texts = [chars[i].text for i in keep]
    return keep, convert_in_phrase(texts, lambda t: normalize_text(t, options.normalize))


def read_examples(
    source: str | Path, options: EvalOptions | None = None
) -> tuple[list[Example], list[Finding]]:
    """The rows of `source` to score (the first `options.limit`), and those left out, each a
    finding named by its row: rows the importer cannot read, and rows whose reference
    normalizes to nothing (blank, or punctuation only), which have no CER (or add all their
    characters to the corpus CER as insertions). `source` is any data `tingxie-cli tune`
    reads (`engine.tune.data.load_dataset`: a manifest, a folder holding manifest.tsv, ...),
    read without a model, so a wrong one is told before one loads. DatasetError when it is
    none of those (a recording given by mistake), or no row is left to score (its `report`
    then lists the rows left out)."""
    from .data import DatasetError, ValidationReport, empty_text, load_dataset

    options = options or EvalOptions()
    dataset = load_dataset(source)
    rows = dataset.examples[: options.limit] if options.limit else dataset.examples
    examples, skipped = [], list(dataset.import_problems)
    for e in rows:
        if empty := empty_text(e, options.normalize):
            skipped.append(empty)
        else:
            examples.append(e)
    if not examples and not skipped:
        raise DatasetError("dataset.no_rows_to_score", source=source)
    if not examples:
        error = DatasetError("dataset.none_to_score", source=source, skipped=len(skipped))
        error.report = ValidationReport([], skipped, len(skipped))
        raise error
    return examples, skipped


def iter_rows(
    model: LoadedModel | LoadedWhisper, manifest: str | Path, options: EvalOptions | None = None
) -> Iterator[EvalRow]:
    """Transcribe and score each row of `manifest` (any data `read_examples` reads) in order
    (lazy: stop iterating to cancel); the rows left out are logged."""
    options = options or EvalOptions()
    examples, skipped = read_examples(manifest, options)
    for finding in skipped:
        log.warning("%s: %s (row skipped)", finding.origin, finding.detail)
    yield from score_examples(model, examples, options)


def score_examples(
    model: LoadedModel | LoadedWhisper, examples: Sequence[Example], options: EvalOptions
) -> Iterator[EvalRow]:
    """Transcribe and score each example in order, as `iter_rows` does a manifest's rows."""
    from .data import load_example_audio

    whisper = isinstance(model, LoadedWhisper)
    transcriber = WhisperTranscriber(model) if whisper else Transcriber(model)
    score = _score_whisper_row if whisper else _score_row
    measures = whisper_measures(model) if whisper else ctc_measures(transcriber, options)
    sr = model.sampling_rate
    for example in examples:
        audio = np.asarray(load_example_audio(example), dtype=np.float32)
        seconds = len(audio) / sr
        if seconds > options.max_seconds:
            raise ValueError(
                f"{example.audio}: {seconds:.0f} s is longer than max_seconds="
                f"{options.max_seconds:g}; cut the recording into utterances"
            )
        reference = normalize_text(example.text, options.normalize)
        hyp, correct, confidences, elapsed, extra = score(transcriber, audio, reference, options)
        yield EvalRow(
            str(example.audio),
            reference,
            hyp,
            seconds,
            elapsed,
            correct,
            confidences,
            measures,
            **extra,
        )


def summarize(
    rows: Iterable[EvalRow],
    options: EvalOptions | None = None,
    *,
    model: str = "",
    manifest="",
    decoder: str = "beam search",
) -> EvalReport:
    """Corpus CER, real-time factor and confidence quality of scored rows."""
    options = options or EvalOptions()
    rows = tuple(rows)
    if not rows:
        raise ValueError("summarize: no rows to summarize")
    names = list(rows[0].measures) or [m.name for m in options.measures]
    correct = np.array([ok for r in rows for ok in r.correct], dtype=bool)
    scores = []
    for k, name in enumerate(names):
        conf = np.array([c for r in rows for c in r.confidences[k]], dtype=np.float64)
        scores.append(
            MeasureScore(name, auroc(conf, correct), expected_calibration_error(conf, correct))
        )
    primary = np.array([c for r in rows for c in r.confidences[0]], dtype=np.float64)
    beam = all(r.greedy_hypothesis is not None for r in rows)
    greedy = cer([r.reference for r in rows], [r.greedy_hypothesis or "" for r in rows])
    # CTC rows without a greedy text were decoded greedily; Whisper's (which score their own
    # measures) by its own beam search, as `decoder` (`describe`) says
    own = bool(rows[0].measures)
    return EvalReport(
        model=str(model),
        manifest=str(manifest),
        cer=cer([r.reference for r in rows], [r.hypothesis for r in rows]),
        audio_seconds=float(sum(r.seconds for r in rows)),
        compute_seconds=float(sum(r.compute_seconds for r in rows)),
        confidence_measure=names[0],
        auroc=scores[0].auroc,
        ece=scores[0].ece,
        characters=len(correct),
        wrong_characters=int((~correct).sum()),
        reliability=tuple(reliability(primary, correct, options.bins)),
        measures=tuple(scores),
        rows=rows,
        decoder=decoder if beam or own else "greedy",
        greedy_cer=greedy if beam else None,
    )


@dataclass(frozen=True, slots=True)
class CalibrationFit:
    """A calibration fitted on evaluated rows, with the honest view of what it achieves."""

    calibration: Calibration  # fitted on every row (what a model folder keeps)
    raw_ece: float  # ECE of the raw measure on these rows
    held_out_ece: float  # ECE when each row's map was fitted without it (folds by row)
    folds: int
    # AUROC within each fold, averaged over the folds (`_fold_auroc`), of the raw measure and
    # of the held-out view: the beam map's with beam-searched rows (it reorders characters, so
    # AUROC moves), else the Platt map's (monotone: the same as raw)
    raw_auroc: float | None = None
    held_out_auroc: float | None = None
    # Why rows that were beam-searched got no beam map (a fold of utterances with no wrong
    # character, or no right one, to fit on), or None: the Platt map alone then describes them.
    no_beam_map: str | None = None


def _scored(
    rows: Sequence[EvalRow], measure: str, options: EvalOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`measure`'s raw confidences over every character of `rows`, whether each is right, and
    the row each belongs to (ValueError naming the measures scored when it is not one)."""
    names = (list(rows[0].measures) or [m.name for m in options.measures]) if rows else []
    if measure not in names:
        raise ValueError(f"fit_calibration: {measure!r} is not scored here; choose from {names}")
    k = names.index(measure)
    conf = np.array([c for r in rows for c in r.confidences[k]], dtype=np.float64)
    ok = np.array([x for r in rows for x in r.correct], dtype=bool)
    groups = np.array([i for i, r in enumerate(rows) for _ in r.correct])
    return conf, ok, groups


def _beam_searched(rows: Sequence[EvalRow]) -> bool:
    """Whether `rows` were decoded by a beam search (each character carries its evidence)."""
    return all(len(r.evidence) == len(r.correct) for r in rows) and any(r.evidence for r in rows)


def fit_calibration(
    rows: Sequence[EvalRow], measure: str, options: EvalOptions | None = None, folds: int = 2
) -> CalibrationFit:
    """Fit a Platt map (engine.calibration) to the raw confidences of `measure` in `rows`.
    The held-out ECE comes from cross-fitting over `folds` folds of rows (row i in fold i %
    folds): with a few hundred characters, the in-sample ECE of a fit flatters it."""
    options = options or EvalOptions()
    conf, ok, groups = _scored(rows, measure, options)
    calibration = fit_platt(conf, ok, measure)
    held_out = cross_fitted(conf, ok, groups, measure, folds)
    no_beam_map = None
    if _beam_searched(rows):
        evidence = np.array([e for r in rows for e in r.evidence], dtype=np.float64)
        try:
            beam_held_out = cross_fitted_beam(evidence, ok, groups, EVIDENCE, folds)
        except ValueError:  # a fold with only right or only wrong characters
            no_beam_map = (
                f"no beam map fitted: it needs right and wrong characters in each of {folds} "
                f"folds of utterances, and {np.count_nonzero(~ok)} of {len(ok)} characters "
                "are wrong; evaluate more rows"
            )
            log.info("%s", no_beam_map)
        else:
            held_out = beam_held_out
            calibration = replace(calibration, beam=fit_beam(evidence, ok, EVIDENCE))
    return CalibrationFit(
        calibration=calibration,
        raw_ece=expected_calibration_error(conf, ok, options.bins),
        held_out_ece=expected_calibration_error(held_out, ok, options.bins),
        folds=folds,
        raw_auroc=_fold_auroc(conf, ok, groups % folds),
        held_out_auroc=_fold_auroc(held_out, ok, groups % folds),
        no_beam_map=no_beam_map,
    )


def calibration_ece(
    calibration: Calibration,
    rows: Sequence[EvalRow],
    beam: bool,
    options: EvalOptions | None = None,
) -> float:
    """The ECE on `rows` of `calibration`'s measure as it maps it: with `beam` (rows that were
    beam-searched), as their characters show it (its beam map, else its Platt map); without,
    by its Platt map alone. A new fit is judged against a folder's calibration like with like:
    a beam map against what beam-searched characters show, a Platt map against a Platt map."""
    options = options or EvalOptions()
    conf, ok, _ = _scored(rows, calibration.measure, options)
    evidence = np.array([e for r in rows for e in r.evidence], dtype=np.float64) if beam else None
    return expected_calibration_error(calibration.shown(conf, evidence), ok, options.bins)


def _fold_auroc(scores: np.ndarray, ok: np.ndarray, fold: np.ndarray) -> float | None:
    """The mean over folds of the AUROC within each (None where no fold has right and wrong
    characters). A fold's held-out scores come from one map; pooled, two maps' scales mix, and
    the AUROC moves though each map keeps the ranking (one run: 0.684 raw, 0.565 pooled)."""
    within = [auroc(scores[fold == k], ok[fold == k]) for k in np.unique(fold)]
    known = [a for a in within if a is not None]
    return float(np.mean(known)) if known else None


def evaluate(
    model: LoadedModel | LoadedWhisper | str | Path,
    manifest: str | Path,
    options: EvalOptions | None = None,
) -> EvalReport:
    """Load the model if given a folder or id, transcribe every manifest row, and report."""
    options = options or EvalOptions()
    loaded = (
        model if isinstance(model, LoadedModel | LoadedWhisper) else load_model(model, options.load)
    )
    rows = list(iter_rows(loaded, manifest, options))
    return summarize(
        rows, options, model=loaded.source, manifest=manifest, decoder=describe(loaded, options)
    )


def refit_calibration(
    folder: str | Path,
    examples: Sequence[Example],
    load: LoadOptions | None = None,
    min_characters: int = MIN_CALIBRATION_CHARACTERS,
) -> CalibrationFit | None:
    """Fit the confidence calibration of the model in `folder` on `examples` (a tuning job's
    held-out rows, decoded as transcription decodes them) and write it there when the
    cross-fitted ECE beats the raw one (`calibrate_rows`). A stale calibration.json is removed
    first: the fit is of the raw confidences, and a map of another model's confidences does
    not describe this one's."""
    folder = Path(folder)
    (folder / CALIBRATION_FILE).unlink(missing_ok=True)
    options = EvalOptions(load=load or LoadOptions())
    model = load_model(folder, options.load)
    rows = list(score_examples(model, examples, options))
    return calibrate_rows(folder, rows, calibrated_measure(model, options), options, min_characters)


def calibrated_measure(model: LoadedModel | LoadedWhisper, options: EvalOptions) -> str:
    """The measure a model folder's calibration maps: Whisper's default, or a CTC model's
    primary measure."""
    if isinstance(model, LoadedWhisper):
        return measure_name(DEFAULT_MEASURE)
    return options.measures[0].name


def calibrate_rows(
    folder: str | Path,
    rows: Sequence[EvalRow],
    measure: str,
    options: EvalOptions | None = None,
    min_characters: int = MIN_CALIBRATION_CHARACTERS,
    folds: int = 2,
) -> CalibrationFit | None:
    """Fit `measure`'s calibration on rows the model in `folder` scored raw (held-out rows) and
    write it there when the cross-fitted ECE beats the raw one; None when there are too few
    characters (or rows, for `folds`), or no right or no wrong one, to fit."""
    folder = Path(folder)
    correct = [x for r in rows for x in r.correct]
    if len(correct) < min_characters or len(rows) < folds or all(correct) or not any(correct):
        log.info(
            "%s: confidence not calibrated (%d held-out characters in %d rows, %d wrong; a fit"
            " needs %d characters in %d rows or more, some right and some wrong)",
            folder,
            len(correct),
            len(rows),
            correct.count(False),
            min_characters,
            folds,
        )
        return None
    options = options or EvalOptions()
    fit = fit_calibration(rows, measure, options, folds)
    if fit.held_out_ece < fit.raw_ece:
        fit.calibration.write(folder)
    log.info(
        "%s: confidence calibration on %d held-out characters: ECE %.3f raw, %.3f calibrated"
        " (cross-fitted)%s",
        folder,
        len(correct),
        fit.raw_ece,
        fit.held_out_ece,
        "" if fit.held_out_ece < fit.raw_ece else "; not kept, it does not help",
    )
    return fit


def calibration_outcome(fit: CalibrationFit | None) -> str:
    """What a tuned model's card says of its calibration after `calibrate_rows`."""
    if fit is None:
        return (
            "not refitted (too few held-out characters, or none right or none wrong, to fit "
            "one); confidences shown raw"
        )
    figures = (
        f"on {fit.calibration.characters} held-out characters, ECE {fit.raw_ece:.3f} raw, "
        f"{fit.held_out_ece:.3f} calibrated (cross-fitted)"
    )
    if fit.held_out_ece < fit.raw_ece:
        return f"refitted {figures}"
    return f"not kept, it did not help {figures}; confidences shown raw"


def describe(model: LoadedModel | LoadedWhisper, options: EvalOptions) -> str:
    """How `iter_rows` decodes with this model and these options (one line)."""
    if isinstance(model, LoadedWhisper):  # `_score_whisper_row`: the transcriber's defaults
        return f"Whisper beam search (beam {TranscribeOptions().beam_size}, no language model)"
    from engine.lm import describe_decoder

    return describe_decoder(Transcriber(model).beam_decoder(options.transcribe_options))


def ensure_plot_available() -> None:
    """Raise ImportError, saying what to install, when matplotlib (the plot extra) is missing:
    checked before an evaluation, not once its report is done."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ImportError(
            "the reliability diagram needs the optional package matplotlib, which is not "
            f"installed; install it by running {install_hint('plot')} in the Tingxie source "
            "folder"
        )


def write_reliability_png(report: EvalReport, path: str | Path) -> Path:
    """Draw the reliability diagram (accuracy per confidence bin against the diagonal, with the
    share of characters per bin) to a PNG, atomically. Needs matplotlib (the `plot` extra)."""
    ensure_plot_available()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    bins = [b for b in report.reliability if b.count]
    total = max(1, sum(b.count for b in bins))
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    width = report.reliability[0].upper - report.reliability[0].lower
    top.bar([b.lower for b in bins], [b.accuracy for b in bins], width=width, align="edge",
            edgecolor="black", color="#4c72b0", label="accuracy")  # fmt: skip
    top.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    top.set_ylabel("accuracy")
    auc = "n/a" if report.auroc is None else f"{report.auroc:.3f}"
    top.set_title(f"{report.confidence_measure}\nAUROC {auc}, ECE {report.ece:.3f}", fontsize=9)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar([b.lower for b in bins], [b.count / total for b in bins], width=width,
               align="edge", edgecolor="black", color="#999999")  # fmt: skip
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("share")
    bottom.set_xlim(0, 1)
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
