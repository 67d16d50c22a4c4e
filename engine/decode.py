"""CTC greedy decoding: frame log-probabilities → characters with times, confidence, alternatives.

Decoding. Each frame's best token is taken; runs of the same token collapse to one emission;
blank, special tokens and the word delimiter emit no character (the delimiter still separates
two runs of the same character). Between two characters of scripts written with spaces (Latin
letters, digits: "hello world") the delimiter becomes a space, the first one's `Char.after`, as
the writers keep spaces; Chinese text gets none.

Time convention. A character spans its run of frames: from the start of its first frame to the
end of its last one, i.e. up to the frame where the next emission or a blank run begins. Frame
f covers [offset + f * frame_seconds, offset + (f + 1) * frame_seconds). Blank frames belong to
no character, so the gap between two characters is the silence between them, which is what
pause-based segmentation measures.

Confidence. Each frame of a character's run gets a score in [0, 1] from its posterior
distribution, and the frame scores are aggregated (min, mean, max or product) over the run
(blank frames excluded, as NeMo's ``exclude_blank``). The frame measures are those NeMo
implements (``asr_confidence_utils.get_confidence_measure_bank``), after Laptev & Ginsburg,
"Fast entropy-based methods of word-level confidence estimation for end-to-end ASR" (SLT 2022).
With V the number of model outputs, p the frame posterior and α > 0:

- ``max_prob``: (V^α · max(p)^α − 1) / (V^α − 1) — the normalized top probability.
- Gibbs (Shannon) entropy H = −Σ p log p; Tsallis H_α = (1 − Σ p^α) / (α − 1); Rényi
  H_α = log(Σ p^α) / (1 − α). Each is mapped to [0, 1] (1 = one-hot, 0 = uniform) either
  linearly (``_lin``: 1 − H / H_max) or exponentially (``_exp``: (e^−H − e^−H_max) /
  (1 − e^−H_max)); α = 1 gives the Gibbs measures for every family.

Default: ``max_prob`` with α = 1 and ``mean`` aggregation, chosen by measurement. NeMo's default
(``entropy_tsallis_exp`` α = 0.33, ``min``) is the best error detector in Laptev & Ginsburg's
measurements on large, well-trained models. On the committed demo model (`bench/bench_accuracy.py`,
200 held-out sentences) the two rank wrong characters below right ones about equally well (AUROC
0.884 for NeMo's default, 0.898 for max_prob mean; an earlier, less trained model gave 0.66
against 0.91), but the exponential entropy maps sit near 0 for every character of a less peaky
model (ECE 0.875 against 0.083), which paints a whole transcript red in the app. With α = 1,
max_prob is a plain linear rescaling of the mean top posterior, so the number a user sees reads
as a probability. The choice is a setting
(`ConfidenceMethod.parse("entropy_tsallis_exp:0.33:min")` etc.); re-measure with
`tingxie-cli evaluate` when moving to another checkpoint.

Alternatives. For each character the mean posterior over its frames is computed for every
character token; the best ``top_k`` other than the emitted one are its alternatives.

Beam search (engine.lm) reuses all of this through `chars_from_runs`: its best beam's path gives
the runs, the posteriors at their frames give confidence and alternatives, and the characters
other beams put there are listed first among the alternatives.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

import numpy as np

from .results import Alternative, Char

__all__ = [
    "CONFIDENCE_MEASURES",
    "ConfidenceMethod",
    "aggregate",
    "chars_from_runs",
    "ctc_greedy",
    "frame_confidence",
    "silent_ids",
    "word_spaces",
]

MeasureName = Literal[
    "max_prob",
    "entropy_gibbs_lin",
    "entropy_gibbs_exp",
    "entropy_tsallis_lin",
    "entropy_tsallis_exp",
    "entropy_renyi_lin",
    "entropy_renyi_exp",
]
Aggregation = Literal["min", "mean", "max", "prod"]

_Measure = Callable[[np.ndarray, int, float], np.ndarray]


def _sum_p_alpha(lp: np.ndarray, a: float) -> np.ndarray:
    return np.exp(lp * a).sum(-1)


def _max_prob(lp: np.ndarray, v: int, a: float) -> np.ndarray:
    return (np.exp(lp.max(-1) * a) * v**a - 1) / (v**a - 1)


def _gibbs_lin(lp: np.ndarray, v: int, a: float) -> np.ndarray:
    # Σ p^α log p, scaled by the value at the uniform distribution (−log V · V^(1−α))
    return 1 + (np.exp(lp * a) * lp).sum(-1) / math.log(v) / v ** (1 - a)


def _gibbs_exp(lp: np.ndarray, v: int, a: float) -> np.ndarray:
    floor = v ** (-a * v ** (1 - a))  # e^(−α·H_max) at the uniform distribution
    return (np.exp((np.exp(lp * a) * lp).sum(-1) * a) - floor) / (1 - floor)


def _tsallis_lin(lp: np.ndarray, v: int, a: float) -> np.ndarray:
    if a == 1:
        return _gibbs_lin(lp, v, a)
    return 1 + (1 - _sum_p_alpha(lp, a)) / (v ** (1 - a) - 1)


def _tsallis_exp(lp: np.ndarray, v: int, a: float) -> np.ndarray:
    if a == 1:
        return _gibbs_exp(lp, v, a)
    floor = math.exp((1 - v ** (1 - a)) / (1 - a))
    return (np.exp((1 - _sum_p_alpha(lp, a)) / (1 - a)) - floor) / (1 - floor)


def _renyi_lin(lp: np.ndarray, v: int, a: float) -> np.ndarray:
    if a == 1:
        return _gibbs_lin(lp, v, a)
    return 1 + np.log2(_sum_p_alpha(lp, a)) / (a - 1) / math.log2(v)


def _renyi_exp(lp: np.ndarray, v: int, a: float) -> np.ndarray:
    if a == 1:
        return _gibbs_exp(lp, v, a)
    return (_sum_p_alpha(lp, a) ** (1 / (a - 1)) * v - 1) / (v - 1)


# name -> frame measure f(log_probs (frames, V), V, alpha) -> (frames,) scores
CONFIDENCE_MEASURES: dict[str, _Measure] = {
    "max_prob": _max_prob,
    "entropy_gibbs_lin": _gibbs_lin,
    "entropy_gibbs_exp": _gibbs_exp,
    "entropy_tsallis_lin": _tsallis_lin,
    "entropy_tsallis_exp": _tsallis_exp,
    "entropy_renyi_lin": _renyi_lin,
    "entropy_renyi_exp": _renyi_exp,
}


@dataclass(frozen=True, slots=True)
class ConfidenceMethod:
    """How a character's confidence is computed (see the module docstring for the formulas).

    measure: the per-frame measure. alpha: its power scale α > 0 (1 = Gibbs/Shannon).
    aggregation: how frame scores combine over the character's frames.
    """

    measure: MeasureName = "max_prob"
    alpha: float = 1.0
    aggregation: Aggregation = "mean"

    def __post_init__(self) -> None:
        if self.measure not in CONFIDENCE_MEASURES:
            raise ValueError(
                f"confidence measure {self.measure!r}: choose one of "
                f"{', '.join(CONFIDENCE_MEASURES)}"
            )
        if not (self.alpha > 0 and math.isfinite(self.alpha)):
            raise ValueError(f"confidence alpha={self.alpha}: must be a positive number")
        if self.aggregation not in get_args(Aggregation):
            raise ValueError(
                f"confidence aggregation {self.aggregation!r}: choose one of "
                f"{', '.join(get_args(Aggregation))}"
            )

    @property
    def name(self) -> str:
        """`measure:alpha:aggregation`, the form `parse` reads back."""
        return f"{self.measure}:{self.alpha:g}:{self.aggregation}"

    @classmethod
    def parse(cls, text: str) -> ConfidenceMethod:
        """Read `measure[:alpha[:aggregation]]`, e.g. "max_prob" or "entropy_renyi_exp:0.5:mean"."""
        parts = text.strip().split(":")
        if len(parts) > 3 or not parts[0]:
            raise ValueError(f"confidence {text!r}: write measure[:alpha[:aggregation]]")
        kwargs: dict = {"measure": parts[0]}
        if len(parts) > 1:
            try:
                kwargs["alpha"] = float(parts[1])
            except ValueError as e:
                raise ValueError(f"confidence {text!r}: alpha {parts[1]!r} is not a number") from e
        if len(parts) > 2:
            kwargs["aggregation"] = parts[2]
        return cls(**kwargs)


def frame_confidence(log_probs: np.ndarray, method: ConfidenceMethod) -> np.ndarray:
    """Per-frame scores in [0, 1] from (frames, V) log-probabilities."""
    v = np.shape(log_probs)[-1]
    if v < 2:
        return np.ones(np.shape(log_probs)[:-1])
    if method.measure == "max_prob":  # reads each frame's maximum alone: no float64 copy of all V
        lp = np.asarray(log_probs).max(-1, keepdims=True).astype(np.float64)
    else:
        lp = np.asarray(log_probs, dtype=np.float64)
    scores = CONFIDENCE_MEASURES[method.measure](lp, v, method.alpha)
    return np.clip(np.nan_to_num(scores, nan=0.0), 0.0, 1.0)


def aggregate(scores: np.ndarray, starts: np.ndarray, how: Aggregation) -> np.ndarray:
    """Combine consecutive groups of `scores` beginning at indices `starts` (ascending)."""
    if how == "mean":
        lengths = np.diff(np.append(starts, len(scores)))
        return np.add.reduceat(scores, starts) / lengths
    ufunc = {"min": np.minimum, "max": np.maximum, "prod": np.multiply}[how]
    return ufunc.reduceat(scores, starts)


def _runs(best: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) frame of each run of equal best tokens."""
    change = np.flatnonzero(best[1:] != best[:-1]) + 1
    return np.concatenate([[0], change]), np.concatenate([change, [len(best)]])


@dataclass(frozen=True, slots=True)
class CtcVocab:
    """What CTC decoding needs to know about a tokenizer: id → token, the blank, the special ids
    and the word delimiter. Built once by the loader and by the tuning loop, so the CER printed
    while training comes from the same decoding as transcription."""

    tokens: list[str]
    blank_id: int
    special_ids: frozenset[int]
    word_delimiter: str = "|"

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, blank_id: int | None = None) -> CtcVocab:
        """From a transformers CTC tokenizer; `blank_id` defaults to its pad token."""
        vocab_map = tokenizer.get_vocab()
        tokens = [""] * (max(vocab_map.values()) + 1)
        for tok, i in vocab_map.items():
            tokens[i] = tok
        specials = {tokenizer.convert_tokens_to_ids(t) for t in tokenizer.all_special_tokens}
        return cls(
            tokens=tokens,
            blank_id=int(tokenizer.pad_token_id if blank_id is None else blank_id),
            special_ids=frozenset(specials),
            word_delimiter=getattr(tokenizer, "word_delimiter_token", "|") or "|",
        )


def silent_ids(
    vocab: Sequence[str], n_out: int, blank_id: int, special_ids: frozenset[int], delim: str
) -> np.ndarray:
    """Boolean mask over the `n_out` model outputs: True where an output never becomes a
    character (blank, special tokens, the word delimiter, ids beyond the vocabulary)."""
    silent = np.ones(n_out, dtype=bool)
    for i, tok in enumerate(vocab[:n_out]):
        silent[i] = not tok or tok == delim
    silent[[i for i in (*special_ids, blank_id) if 0 <= i < n_out]] = True
    return silent


def _alternatives(
    mean_probs: np.ndarray,
    chosen: np.ndarray,
    silent: np.ndarray,
    vocab: Sequence[str],
    k: int,
    preferred: Sequence[Sequence[int]] | None = None,
) -> list[tuple[Alternative, ...]]:
    """The `k` most probable other characters of each position (mean posterior over its
    frames; of equal ones the lower id first); `preferred` ids of a position (other beams'
    characters there) come first."""
    if k <= 0:
        return [()] * len(chosen)
    rows = np.arange(len(chosen))
    probs = np.where(silent, -1.0, mean_probs)  # -1: never an alternative
    probs[rows, chosen] = -1.0
    first = (
        [
            [(i, float(probs[n, i])) for i in ids if probs[n, i] >= 0]
            for n, ids in enumerate(preferred)
        ]
        if preferred is not None
        else None
    )
    # k passes of argmax: a vectorized maximum, many times faster than argpartition over a
    # large vocabulary, and already in order
    k = min(k, probs.shape[1])
    top = np.empty((len(chosen), k), np.intp)
    values = np.empty((len(chosen), k), probs.dtype)
    for j in range(k):
        top[:, j] = probs.argmax(axis=1)
        values[:, j] = probs[rows, top[:, j]]
        probs[rows, top[:, j]] = -2.0
    out = []
    for n, pairs in enumerate(zip(top.tolist(), values.tolist(), strict=True)):
        ranked = list(zip(*pairs, strict=True))
        if first is not None and first[n]:
            ranked = list(dict(first[n] + ranked).items())  # preferred first, each id once
        alts = (Alternative(vocab[i], round(v, 4)) for i, v in ranked[:k] if v >= 0)
        out.append(tuple(alts))
    return out


def _run_sums(rows: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sum of each run of `lengths[i]` rows from `starts[i]`, added in row order (what
    np.add.reduceat gives, several times faster for the many runs of one or two frames)."""
    total = rows[starts]
    for j in range(1, int(lengths.max())):
        longer = np.flatnonzero(lengths > j)
        total[longer] += rows[starts[longer] + j]
    return total


def greedy_text(log_probs: np.ndarray, ctc: CtcVocab) -> str:
    """The text `ctc_greedy` decodes, without times or alternatives (held-out CER)."""
    chars = ctc_greedy(
        log_probs,
        vocab=ctc.tokens,
        blank_id=ctc.blank_id,
        special_ids=ctc.special_ids,
        word_delimiter=ctc.word_delimiter,
        frame_seconds=0.0,
        top_k=0,
    )
    return "".join(c.text for c in chars)


def ctc_greedy(
    log_probs: np.ndarray,
    *,
    vocab: Sequence[str],
    blank_id: int,
    special_ids: frozenset[int],
    word_delimiter: str,
    frame_seconds: float,
    offset_seconds: float = 0.0,
    top_k: int = 3,
    confidence: ConfidenceMethod | None = None,
) -> list[Char]:
    """Greedy CTC decoding of one (frames, V) log-softmax array into characters.

    `offset_seconds` is the time of frame 0; `top_k` the number of alternatives per character.
    """
    lp = np.asarray(log_probs, dtype=np.float32)
    if lp.ndim != 2:
        raise ValueError(f"log_probs has shape {lp.shape}; expected (frames, vocab)")
    if lp.shape[0] == 0:
        return []
    silent = silent_ids(vocab, lp.shape[1], blank_id, special_ids, word_delimiter)
    best = lp.argmax(axis=1)
    starts, ends = _runs(best)
    ids = best[starts]
    keep = ~silent[ids]
    chars = chars_from_runs(
        lp,
        ids[keep],
        starts[keep],
        ends[keep],
        vocab=vocab,
        silent=silent,
        frame_seconds=frame_seconds,
        offset_seconds=offset_seconds,
        top_k=top_k,
        confidence=confidence,
    )
    return word_spaces(chars, delimited_runs(ids, keep, vocab[: lp.shape[1]], word_delimiter))


def delimited_runs(
    ids: np.ndarray, keep: np.ndarray, vocab: Sequence[str], word_delimiter: str
) -> np.ndarray:
    """`word_spaces`' flags for a CTC path's runs `ids` (outputs), of which `keep` become
    characters: whether a word delimiter run lies between each kept run and the next. Greedy
    and beam search share it, so both space one path alike."""
    seen = np.cumsum([i < len(vocab) and vocab[i] == word_delimiter for i in ids])
    kept = np.flatnonzero(keep)
    return seen[kept[1:]] > seen[kept[:-1]]


def _spaceless(text: str) -> bool:
    """Whether a character of `text` is of a script written without spaces between words
    (Chinese, Japanese: the wide characters, but Hangul, which Korean spaces)."""
    return any(
        unicodedata.east_asian_width(ch) in ("W", "F")
        and not unicodedata.name(ch, "").startswith("HANGUL")
        for ch in text
    )


def word_spaces(chars: list[Char], delimited: np.ndarray) -> list[Char]:
    """`chars` with a space after each one a word delimiter follows (`delimited[k]`: one
    between characters k and k + 1) where neither neighbour is of a script written without
    spaces (`_spaceless`). The characters, their times and confidences stay as they are."""
    pairs = zip(chars[:-1], chars[1:], delimited, strict=True)
    spaced = [
        replace(c, after=" ") if gap and not _spaceless(c.text[-1] + n.text[0]) else c
        for c, n, gap in pairs
    ]
    return spaced + chars[-1:]


def chars_from_runs(
    log_probs: np.ndarray,
    ids: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    *,
    vocab: Sequence[str],
    silent: np.ndarray,
    frame_seconds: float,
    offset_seconds: float = 0.0,
    top_k: int = 3,
    confidence: ConfidenceMethod | None = None,
    preferred: Sequence[Sequence[int]] | None = None,
) -> list[Char]:
    """Characters from a CTC path's runs: output `ids` over frames [starts, ends). Times,
    confidence and alternatives as in `ctc_greedy` (which calls this with the greedy path;
    the beam search, engine.lm, with its best beam's and `preferred` alternatives)."""
    lp = np.asarray(log_probs, dtype=np.float32)
    if len(ids) == 0:
        return []
    method = confidence or ConfidenceMethod()
    lengths = ends - starts
    group_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    frames = np.repeat(starts - group_starts, lengths) + np.arange(group_starts[-1] + lengths[-1])
    char_lp = lp[frames]
    conf = aggregate(frame_confidence(char_lp, method), group_starts, method.aggregation)
    mean_probs = _run_sums(np.exp(char_lp), group_starts, lengths) / lengths[:, None]
    alts = _alternatives(mean_probs, ids, silent, vocab, top_k, preferred)
    return [
        Char(
            text=vocab[i],
            start=round(float(offset_seconds + s * frame_seconds), 3),
            end=round(float(offset_seconds + e * frame_seconds), 3),
            confidence=round(float(c), 4),
            alternatives=a,
        )
        for i, s, e, c, a in zip(ids, starts, ends, conf, alts, strict=True)
    ]
