"""Pure review logic: which text is doubtful, in what order to check it, how long that takes,
and what a human decision turns into (edited characters and verified training pairs).

No I/O and no Qt: the store replays edits through `apply_edit`, the app walks `find_spans`.
"""

from __future__ import annotations

import math
import re
import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import Literal

from engine.punctuation import ends_latin_word, is_latin, is_mark, split_marks
from engine.results import Char, Segment

__all__ = [
    "DEFAULT_THRESHOLD",
    "CheckedStretch",
    "DoubtfulSpan",
    "EditKind",
    "EditOp",
    "Occurrence",
    "ReviewOptions",
    "VerifiedPair",
    "apply_edit",
    "apply_edits",
    "audio_window",
    "checked_chars",
    "checked_stretches",
    "decision_pace",
    "estimate_review_seconds",
    "find_occurrences",
    "find_spans",
    "replace_ops",
    "split_typed",
    "stretch",
    "trusted_chars",
    "verified_pair",
    "verified_pairs",
]

Order = Literal["risk", "time"]
# accept: the text is right as it is; fix: typed text; alternative: one of the model's choices;
# replace: a fix carried over to the same text elsewhere ("fix all occurrences"), which nobody
# listened to, so it changes the text but is no verified training pair.
EditKind = Literal["accept", "fix", "alternative", "replace"]
EDIT_KINDS: tuple[str, ...] = EditKind.__args__

# Characters with confidence below this are doubtful: the review's spans, the app's red band and
# its "doubt below" box all start here (the one default; the user's choice is an app setting).
# 0.6 is the value the app has always colored with; bench/bench_review.py measures what other
# thresholds would catch and cost.
DEFAULT_THRESHOLD = 0.6
# Confidence given to a character a person has checked (accepted or typed).
VERIFIED_CONFIDENCE = 1.0
# Seconds a person takes to decide on a span once heard, until their own pace is measured.
DEFAULT_SECONDS_PER_DECISION = 2.5
# Longer than this on one span is a break, not review work.
_MAX_DECISION_SECONDS = 60.0
# The shortest stretch played for a span: 50 ms, a few pitch periods of speech, what a click
# on a character placed with no duration (Whisper's, start == end) still lets be heard.
MIN_WINDOW_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class ReviewOptions:
    """How doubtful spans are found and ordered."""

    # Characters with confidence strictly below this are doubtful.
    threshold: float = DEFAULT_THRESHOLD
    # Two doubtful runs separated by at most this many confident characters become one span
    # (one listen covers both).
    merge_gap_chars: int = 1
    # "risk": lowest confidence first; "time": in reading order.
    order: Order = "risk"

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold={self.threshold}: choose a value between 0 and 1")
        if self.merge_gap_chars < 0:
            raise ValueError(f"merge_gap_chars={self.merge_gap_chars}: must be 0 or more")
        if self.order not in Order.__args__:
            raise ValueError(f"order={self.order!r}: choose one of {', '.join(Order.__args__)}")


@dataclass(frozen=True, slots=True)
class DoubtfulSpan:
    """Characters [first, stop) of segment `segment` (an index into the list), to be checked."""

    segment: int
    first: int
    stop: int
    start: float
    end: float
    text: str
    confidence: float  # the lowest character confidence inside


@dataclass(frozen=True, slots=True)
class EditOp:
    """One human decision on characters [first, stop) of one segment, replayable in order."""

    segment: int
    first: int
    stop: int
    text: str
    kind: EditKind

    def __post_init__(self) -> None:
        if self.kind not in EDIT_KINDS:
            raise ValueError(f"kind={self.kind!r}: choose one of {', '.join(EDIT_KINDS)}")
        if self.segment < 0 or not 0 <= self.first <= self.stop:
            raise ValueError(
                f"segment={self.segment}, first={self.first}, stop={self.stop}: "
                "need 0 <= first <= stop and segment >= 0"
            )


@dataclass(frozen=True, slots=True)
class VerifiedPair:
    """A stretch of audio (seconds) whose text a person has checked."""

    start: float
    end: float
    text: str


def _runs(chars: Sequence[Char], threshold: float, gap: int) -> list[tuple[int, int]]:
    """Index ranges of doubtful runs, merging runs at most `gap` characters apart.

    >>> # confidences .9 .2 .9 .3 .9 .9 .1, gap 1  ->  [(1, 4), (6, 7)]
    """
    runs: list[tuple[int, int]] = []
    for i, c in enumerate(chars):
        if c.confidence >= threshold:
            continue
        if runs and i - runs[-1][1] <= gap:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def stretch(segment: Segment, index: int, first: int, stop: int) -> DoubtfulSpan:
    """Characters [first, stop) of `segment` (the transcript's `index`-th) as a span to decide
    on: a doubtful run, or one the user puts in hand again (the Review page's Check again)."""
    chars = segment.chars[first:stop]
    return DoubtfulSpan(
        segment=index,
        first=first,
        stop=stop,
        start=chars[0].start,
        end=chars[-1].end,
        text="".join(c.text for c in chars),
        confidence=min(c.confidence for c in chars),
    )


def find_spans(
    segments: Sequence[Segment], options: ReviewOptions | None = None
) -> list[DoubtfulSpan]:
    """Doubtful spans of a transcript, in the order the options ask for."""
    options = options or ReviewOptions()
    spans = []
    for si, seg in enumerate(segments):
        for a, b in _runs(seg.chars, options.threshold, options.merge_gap_chars):
            spans.append(stretch(seg, si, a, b))
    if options.order == "risk":
        spans.sort(key=lambda s: (s.confidence, s.start))
    return spans


def audio_window(
    start: float, end: float, margin: float, duration: float | None = None
) -> tuple[float, float]:
    """The stretch to play for [start, end]: `margin` seconds of context each side, clamped to
    the recording, and at least `MIN_WINDOW_SECONDS` long where the recording allows (centred
    on the span: a character Whisper gave no duration, heard with no context, is not nothing).
    A span after the end of the recording stays there (reading it says so).

    >>> # 0.25-0.25 s, margin 0  ->  (0.225, 0.275); with duration 0.26  ->  (0.21, 0.26)
    """
    if margin < 0:
        raise ValueError(f"margin={margin}: must be 0 or more seconds")
    lo = max(0.0, start - margin)
    hi = end + margin
    if hi - lo < MIN_WINDOW_SECONDS:
        lo = max(0.0, (start + end) / 2 - MIN_WINDOW_SECONDS / 2)
        hi = lo + MIN_WINDOW_SECONDS
    if duration is not None and lo < duration < hi:  # ends with the recording, still as long
        lo, hi = max(0.0, min(lo, duration - MIN_WINDOW_SECONDS)), duration
    return lo, hi


def estimate_review_seconds(
    spans: Sequence[DoubtfulSpan],
    *,
    margin: float = 0.3,
    speed: float = 1.0,
    seconds_per_decision: float = DEFAULT_SECONDS_PER_DECISION,
) -> float:
    """Seconds left to review `spans`: each is heard once at `speed` (with its margin) and then
    decided on. `seconds_per_decision` should be the user's measured pace once there is one."""
    if speed <= 0:
        raise ValueError(f"speed={speed}: must be above 0")
    listen = sum((s.end - s.start + 2 * margin) / speed for s in spans)
    return listen + seconds_per_decision * len(spans)


def decision_pace(gaps: Sequence[float], default: float = DEFAULT_SECONDS_PER_DECISION) -> float:
    """Seconds per decision from what a person took on recent spans beyond hearing each once
    (`gaps`): the median, so one slow span does not skew it, with breaks left out; `default`
    until three are known."""
    work = [g for g in gaps if 0 < g <= _MAX_DECISION_SECONDS]
    return statistics.median(work) if len(work) >= 3 else default


# Spaces typed between two characters; kept only between Latin letters or digits (`is_latin`):
# "New York" is two words, "纽 约" is one.
_WORD_SPACE = re.compile(r"(?<=\S)\s+(?=\S)")


def split_typed(typed: str) -> tuple[str, list[str]]:
    """`split_marks` of a typed fix, keeping one space where it separates two Latin words or
    numbers (`engine.punctuation.ends_latin_word`), after the mark typed after the first one where
    there is one: "New York" and "Hello, world" are stored and exported as typed, while
    Chinese is written without spaces, so a stray one there is dropped.

    >>> # "去New  York 2。"  ->  "去NewYork2", a space after "w" and after "k", "。" after "2"
    >>> # "Hello, world"  ->  "Helloworld", ", " after "o"
    """
    chars, marks = split_marks(typed)
    for gap in _WORD_SPACE.finditer(typed):
        before = typed[: gap.start()]
        if is_latin(typed[gap.end()]) and ends_latin_word(before):
            marks[len(split_marks(before)[0]) - 1] += " "
    return chars, marks


def _respread(chars: Sequence[Char], typed: str, lo: float, hi: float) -> tuple[Char, ...]:
    """New verified characters for the `typed` text over [lo, hi]: keep each old time where the
    length is unchanged, otherwise share the stretch evenly. Punctuation typed after a
    character becomes its mark (`Char.after`), never a character (typed before the first one,
    `apply_edit` puts it after the character before the span), as does a space between Latin
    words (`split_typed`); the mark that followed the old text stays after the new text unless
    the typed text ends with one of its own."""
    text, marks = split_typed(typed)
    if text and chars and not is_mark(typed.rstrip()[-1]):
        marks[-1] = chars[-1].after
    if len(text) == len(chars):
        times = [(c.start, c.end) for c in chars]
    else:
        step = (hi - lo) / len(text) if text else 0.0
        times = [(lo + i * step, lo + (i + 1) * step) for i in range(len(text))]
    return tuple(
        Char(t, start, end, VERIFIED_CONFIDENCE, after=mark)
        for t, (start, end), mark in zip(text, times, marks, strict=True)
    )


def _leading_marks(typed: str) -> str:
    """The punctuation typed before the first character ("，走" -> "，")."""
    lead = ""
    for ch in typed:
        if ch.isspace():
            continue
        if not is_mark(ch):
            break
        lead += ch
    return lead


def apply_edit(segments: Sequence[Segment], op: EditOp) -> list[Segment]:
    """The transcript after one edit. Raises IndexError when the op does not fit (the store
    checks ops against the text they were made on)."""
    if op.segment >= len(segments):
        raise IndexError(f"segment {op.segment} is out of range ({len(segments)} segments)")
    seg = segments[op.segment]
    if op.stop > len(seg.chars):
        raise IndexError(
            f"characters {op.first}:{op.stop} are out of range in segment {op.segment} "
            f"({len(seg.chars)} characters)"
        )
    old = seg.chars[op.first : op.stop]
    before = seg.chars[: op.first]
    if op.kind == "accept":
        new = tuple(replace(c, confidence=VERIFIED_CONFIDENCE, alternatives=()) for c in old)
    else:
        lo, hi = _gap(seg, op.first, op.stop)
        new = _respread(old, op.text, lo, hi)
        lead = _leading_marks(op.text)
        if lead and before:  # typed before the new text: the mark after what precedes it
            before = (*before[:-1], replace(before[-1], after=lead))
        if not new and old and old[-1].after.strip() and before and not before[-1].after:
            # A deleted stretch's closing mark stays in the text, after what preceded it.
            before = (*before[:-1], replace(before[-1], after=old[-1].after))
    chars = before + new + seg.chars[op.stop :]
    out = list(segments)
    out[op.segment] = replace(seg, chars=chars)
    return out


def apply_edits(segments: Sequence[Segment], ops: Sequence[EditOp]) -> list[Segment]:
    """Replay edits in order on the model's original output."""
    out = list(segments)
    for op in ops:
        out = apply_edit(out, op)
    return out


def _gap(seg: Segment, first: int, stop: int) -> tuple[float, float]:
    """Time stretch of characters [first, stop); for an empty range, the gap between neighbours."""
    chars = seg.chars
    if stop > first:
        return chars[first].start, chars[stop - 1].end
    lo = chars[first - 1].end if first > 0 else seg.start
    hi = chars[first].start if first < len(chars) else seg.end
    return lo, max(lo, hi)


def _stretch(segment: Segment, first: int, stop: int) -> tuple[float, float]:
    """Seconds of characters [first, stop) for a clip: to halfway towards each neighbouring
    character (to the segment's edge when there is none), unrounded."""
    chars = segment.chars
    if not 0 <= first < stop <= len(chars):
        raise IndexError(f"characters {first}:{stop} are out of range ({len(chars)} characters)")
    lo = chars[first].start
    hi = chars[stop - 1].end
    start = (chars[first - 1].end + lo) / 2 if first > 0 else min(segment.start, lo)
    end = (chars[stop].start + hi) / 2 if stop < len(chars) else max(segment.end, hi)
    return start, end


def verified_pair(segment: Segment, first: int, stop: int) -> VerifiedPair:
    """The audio of characters [first, stop) and their text, for training.

    The stretch runs to halfway towards each neighbouring character (to the segment's edge when
    there is none), so the clip holds the whole span and no neighbour's sound.
    """
    start, end = _stretch(segment, first, stop)
    text = "".join(c.text for c in segment.chars[first:stop])
    # Whole milliseconds, rounded outwards so the clip never cuts into the span (the inner
    # round keeps float noise such as 600.0000001 ms from adding a millisecond).
    return VerifiedPair(
        math.floor(round(start * 1000, 6)) / 1000, math.ceil(round(end * 1000, 6)) / 1000, text
    )


@dataclass(frozen=True, slots=True)
class CheckedStretch:
    """A heard decision still in effect on segment `segment`: the audio it was made on
    (unrounded seconds [lo, hi]), its kind, and the pair it gives for training (None for a
    deletion, which teaches nothing alone but is checked text all the same)."""

    segment: int
    lo: float
    hi: float
    kind: EditKind
    pair: VerifiedPair | None


def checked_stretches(segments: Sequence[Segment], ops: Sequence[EditOp]) -> list[CheckedStretch]:
    """Every accept, fix or deletion in `ops` replayed on the original `segments`, where a later
    decision covers the same audio, only the later one, in segment and time order. A
    "replace" (fix all occurrences) was never heard: it only ends older stretches.

    Overlaps are judged on the unrounded stretches: two neighbouring decisions share a boundary
    that `verified_pair` rounds outwards, so their rounded pairs may overlap by a millisecond.
    """
    found: list[CheckedStretch] = []
    current = list(segments)
    for op in ops:
        previous, current = current, apply_edit(current, op)
        stop = op.stop if op.kind == "accept" else op.first + len(split_marks(op.text)[0])
        if stop > op.first:
            pair = verified_pair(current[op.segment], op.first, stop)
            lo, hi = _stretch(current[op.segment], op.first, stop)
        elif op.stop > op.first:  # a deletion: the audio of the text it removed
            removed = previous[op.segment].chars[op.first : op.stop]
            pair, lo, hi = None, removed[0].start, removed[-1].end
        else:
            continue  # nothing removed, nothing typed
        found = [f for f in found if f.segment != op.segment or f.hi <= lo or f.lo >= hi]
        if op.kind != "replace":
            found.append(CheckedStretch(op.segment, lo, hi, op.kind, pair))
    return sorted(found, key=lambda f: (f.segment, f.lo))


def verified_pairs(
    segments: Sequence[Segment], ops: Sequence[EditOp]
) -> list[tuple[int, VerifiedPair]]:
    """(segment index, pair) for every accept or fix in `ops` replayed on the original
    `segments` (`checked_stretches` that teach a text); where a later decision covers the same
    audio, only the later one counts. A later deletion ends the pairs over the audio it removed
    text from (and makes none)."""
    return [(f.segment, f.pair) for f in checked_stretches(segments, ops) if f.pair is not None]


def checked_chars(segments: Sequence[Segment], ops: Sequence[EditOp]) -> list[list[bool]]:
    """For each character of `apply_edits(segments, ops)`: whether a person checked it (an
    accept, fix or picked alternative still in effect). A "replace" (fix all occurrences) was
    never heard, so its characters are not checked. From the history, not the confidence: the
    model itself may give a character the full confidence a checked one gets."""
    return _replay_checks([[False] * len(seg.chars) for seg in segments], ops)


def trusted_chars(
    segments: Sequence[Segment], ops: Sequence[EditOp], threshold: float
) -> list[list[bool]]:
    """`checked_chars`, with the model's own characters at or above `threshold` trusted too:
    what a training label may hold. A "replace" put text there nobody heard, whatever the
    model's confidence in what it replaced."""
    return _replay_checks([[c.confidence >= threshold for c in seg.chars] for seg in segments], ops)


def _replay_checks(flags: list[list[bool]], ops: Sequence[EditOp]) -> list[list[bool]]:
    """`flags` (one per original character) carried through `ops`: a heard decision's
    characters are checked, a replace's are not."""
    for op in ops:
        if op.kind == "accept":
            new = [True] * (op.stop - op.first)
        else:
            new = [op.kind != "replace"] * len(split_marks(op.text)[0])
        flags[op.segment][op.first : op.stop] = new
    return flags


# "Fix all occurrences" is offered for fixes of at least this many characters: one character
# (在 → 再) recurs everywhere in its right sense, a wrong term of two or more rarely does.
MIN_OCCURRENCE_CHARS = 2


@dataclass(frozen=True, slots=True)
class Occurrence:
    """Characters [first, stop) of segment `segment` that spell a searched text."""

    segment: int
    first: int
    stop: int
    start: float
    end: float


def find_occurrences(
    segments: Sequence[Segment],
    text: str,
    *,
    skip: tuple[int, int, int] | None = None,
    min_chars: int = MIN_OCCURRENCE_CHARS,
    checked: Sequence[Sequence[bool]] | None = None,
) -> list[Occurrence]:
    """Where the characters of `text` appear inside one segment with the same punctuation
    between them (the mark after the last one does not count), in reading order, never
    overlapping, and never overlapping `skip` = (segment, first, stop), the stretch just fixed.
    With `checked` (`checked_chars` of the same segments), a stretch holding a character a
    person has accepted or fixed is left out: they said it is right as it stands. None for a
    text shorter than `min_chars` characters.

    >>> # segments "他去公园", "公园公园"; text "公园", skip (0, 2, 4)  ->  (1, 0, 2), (1, 2, 4)
    >>> # segment "其他。门口"; text "他门"  ->  none (a sentence ends between them)
    """
    chars, marks = split_marks(text)
    if len(chars) < max(1, min_chars):
        return []
    inner = marks[:-1]
    found = []
    for si, seg in enumerate(segments):
        spelled = seg.text
        # where each Char begins in `spelled`: a model's Char may be several letters ("ok")
        starts = list(accumulate((len(c.text) for c in seg.chars), initial=0))
        i = spelled.find(chars)
        while i >= 0:
            end = i + len(chars)
            first, stop = bisect_right(starts, i) - 1, bisect_left(starts, end)
            whole = starts[first] == i and starts[stop] == end  # no Char cut in two
            apart = skip is None or skip[0] != si or stop <= skip[1] or first >= skip[2]
            heard = checked is not None and any(checked[si][first:stop])
            if whole and apart and not heard and _marks_inside(seg.chars[first:stop]) == inner:
                start, last = seg.chars[first].start, seg.chars[stop - 1].end
                found.append(Occurrence(si, first, stop, start, last))
                i = spelled.find(chars, end)
            else:
                i = spelled.find(chars, i + 1)
    return found


def _marks_inside(chars: Sequence[Char]) -> list[str]:
    """The punctuation after each letter of `chars` but the last, as `split_marks` gives it
    for their text typed out: none inside a multi-letter Char, and no spaces (a search for
    "New York" finds it written with or without one)."""
    marks = [m for c in chars for m in ("",) * (len(c.text) - 1) + (c.after.strip(),)]
    return marks[:-1]


def inner_text(text: str) -> str:
    """`text` as a fix carries it to other places: its characters and the marks between them,
    not the mark after the last one (each place keeps its own), with its spaces between Latin
    words (`split_typed`). "" for a deletion (no characters, perhaps a mark: "。")."""
    chars, marks = split_typed(text)
    if not chars:
        return ""
    return "".join(c + m for c, m in zip(chars, [*marks[:-1], ""], strict=True))


def replace_ops(occurrences: Sequence[Occurrence], text: str) -> list[EditOp]:
    """One "replace" edit per occurrence putting `inner_text(text)` in its place, each valid
    when the ones before it have been applied (later indices in a segment shift by the change
    in length). `occurrences` as `find_occurrences` gives them: in reading order."""
    text = inner_text(text)
    new_length = len(split_marks(text)[0])
    ops = []
    shift, segment = 0, None
    for occ in occurrences:
        if occ.segment != segment:
            shift, segment = 0, occ.segment
        ops.append(EditOp(occ.segment, occ.first + shift, occ.stop + shift, text, "replace"))
        shift += new_length - (occ.stop - occ.first)
    return ops
