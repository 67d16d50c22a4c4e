"""Output script: Simplified or Traditional Chinese (OpenCC), for display and export only.

The stored transcript is never converted; callers convert a copy of the segments on the way
to the screen or a file, character by character so times and confidences stay attached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Literal

from engine.normalize import convert_in_phrase
from engine.results import Alternative, Segment, TranscriptionInfo, speaker_name

__all__ = [
    "SCRIPTS",
    "Script",
    "SegmentConverter",
    "convert_pieces",
    "convert_segments",
    "convert_text",
    "export",
    "render",
]

# original: as the model or the editor wrote it; taiwan / hongkong: Traditional with regional
# character standards.
Script = Literal["original", "simplified", "traditional", "taiwan", "hongkong"]
SCRIPTS: tuple[str, ...] = Script.__args__
# OpenCC configurations: phrase-aware, so e.g. 头发 → 頭髮 but 发展 → 發展.
_CONFIGS = {"simplified": "t2s", "traditional": "s2t", "taiwan": "s2tw", "hongkong": "s2hk"}


def _check(script: str) -> None:
    if script not in SCRIPTS:
        raise ValueError(f"script={script!r}: choose one of {', '.join(SCRIPTS)}")


@cache
def _converter(script: str):
    import opencc

    return opencc.OpenCC(_CONFIGS[script])


def convert_text(text: str, script: Script) -> str:
    """`text` in `script` ("original" returns it unchanged)."""
    _check(script)
    return text if script == "original" or not text else _converter(script).convert(text)


def convert_pieces(pieces: Sequence[str], script: Script) -> list[str]:
    """Each of `pieces` (a segment's `Char` texts, or the characters of a typed fix) in
    `script`, converted in its phrase (engine.normalize.convert_in_phrase)."""
    return convert_in_phrase(pieces, lambda p: convert_text(p, script))


def convert_segments(segments: Sequence[Segment], script: Script) -> list[Segment]:
    """Copies of `segments` in `script`, each character converted in its phrase
    (`convert_pieces`)."""
    _check(script)
    if script == "original":
        return list(segments)
    return [_convert_segment(seg, script) for seg in segments]


class SegmentConverter:
    """`convert_segments` for a transcript that changes a little at a time, as a review does:
    a segment equal to the one at its place in the previous call keeps that one's copy. Such a
    segment is mostly the same object (`apply_edit` keeps every segment it does not touch),
    so the check is cheap; converting every segment again (OpenCC on each character and
    alternative) took 1.3 s a decision on a 3-hour transcript."""

    def __init__(self, script: Script) -> None:
        _check(script)
        self.script = script
        self._last: list[tuple[Segment, Segment]] = []  # (segment, its copy), in order

    def convert(self, segments: Sequence[Segment]) -> list[Segment]:
        """`convert_segments(segments, self.script)`, converting only the segments that
        changed since the previous call."""
        if self.script == "original":
            return list(segments)
        last = self._last
        self._last = [
            last[i]
            if i < len(last) and (last[i][0] is seg or last[i][0] == seg)
            else (seg, _convert_segment(seg, self.script))
            for i, seg in enumerate(segments)
        ]
        return [copy for _, copy in self._last]


def _convert_segment(seg: Segment, script: Script) -> Segment:
    """A copy of `seg` in `script`: its characters converted in their phrase, times and
    confidences kept."""
    texts = convert_pieces([c.text for c in seg.chars], script)
    chars = tuple(
        replace(c, text=t, alternatives=_alternatives(t, c.alternatives, script))
        for c, t in zip(seg.chars, texts, strict=True)
    )
    return replace(seg, chars=chars)


def _alternatives(
    chosen: str, alternatives: Sequence[Alternative], script: Script
) -> tuple[Alternative, ...]:
    """`alternatives` in `script`, without the `chosen` character (converted) and each once:
    two characters one converts to (于 and 於 → 於) are one choice on screen. Their mean
    posteriors add up, as those of two outputs of one distribution do: the sum is that
    character's posterior (keeping the larger would understate it). Order of first appearance."""
    probs: dict[str, float] = {}
    for a in alternatives:
        text = convert_text(a.text, script)
        if text != chosen:
            probs[text] = probs.get(text, 0.0) + a.prob
    return tuple(Alternative(text, prob) for text, prob in probs.items())


def render(
    segments: Sequence[Segment],
    fmt: str,
    *,
    script: Script = "original",
    info: TranscriptionInfo | None = None,
    speakers: Mapping[int, str] | None = None,
) -> str:
    """The text of an export format (for the clipboard) in `script`; `speakers`: the names
    given to speakers (engine.writers.render)."""
    from engine import writers

    converted, names = convert_segments(segments, script), _names(segments, speakers, script)
    return writers.render(converted, fmt, info=info, speakers=names)


def export(
    segments: Sequence[Segment],
    path: str | Path,
    *,
    fmt: str | None = None,
    script: Script = "original",
    info: TranscriptionInfo | None = None,
    speakers: Mapping[int, str] | None = None,
) -> Path:
    """Write `segments` in `script` to `path` (format from the suffix unless given), atomically."""
    from engine import writers

    converted, names = convert_segments(segments, script), _names(segments, speakers, script)
    return writers.write(converted, path, fmt=fmt, info=info, speakers=names)


def _names(
    segments: Sequence[Segment], speakers: Mapping[int, str] | None, script: Script
) -> Mapping[int, str] | None:
    """Every speaker's name in `script`, default names (说话人 1) included: the labels are
    text of the export like the characters."""
    if script == "original":
        return speakers
    ids = {seg.speaker for seg in segments if seg.speaker is not None}
    return {i: convert_text(speaker_name(i, speakers), script) for i in sorted(ids)}
