"""Transcripts to files: TXT, SRT, VTT and JSON.

TXT has one segment per line. SRT and VTT cues follow the segments (cut at pauses by the
transcriber) and are split further so no cue is longer than `max_cue_seconds` or
`max_cue_chars` characters; a cue's lines hold at most `line_chars` characters (16 is the usual
limit for Chinese subtitles). JSON keeps everything: the info record, segments, and for every
character its times, confidence and alternatives. Files are written atomically: a crash or a
full disk leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from .atomic import atomic_write_text
from .results import Char, Segment, TranscriptionInfo

__all__ = ["FORMATS", "render", "split_cues", "timestamp", "write"]

FORMATS = ("txt", "srt", "vtt", "json")

# Subtitle limits (see the module docstring).
MAX_CUE_SECONDS = 7.0
MAX_CUE_CHARS = 32
LINE_CHARS = 16


def timestamp(seconds: float, sep: str = ",") -> str:
    """HH:MM:SS,mmm (SRT; pass sep="." for VTT), rounded to the millisecond."""
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def split_cues(
    segments: Sequence[Segment],
    *,
    max_seconds: float = MAX_CUE_SECONDS,
    max_chars: int = MAX_CUE_CHARS,
) -> list[tuple[Char, ...]]:
    """Subtitle cues: each segment's characters, cut where a cue would grow past a limit."""
    cues: list[tuple[Char, ...]] = []
    for seg in segments:
        cue: list[Char] = []
        for c in seg.chars:
            if cue and (len(cue) >= max_chars or c.end - cue[0].start > max_seconds):
                cues.append(tuple(cue))
                cue = []
            cue.append(c)
        if cue:
            cues.append(tuple(cue))
    return cues


def _lines(text: str, width: int) -> str:
    return "\n".join(text[i : i + width] for i in range(0, len(text), width))


def _subtitles(segments: Sequence[Segment], vtt: bool) -> str:
    sep = "." if vtt else ","
    blocks = []
    for n, cue in enumerate(split_cues(segments), start=1):
        times = f"{timestamp(cue[0].start, sep)} --> {timestamp(cue[-1].end, sep)}"
        text = _lines("".join(c.text for c in cue), LINE_CHARS)
        blocks.append(f"{n}\n{times}\n{text}\n")
    body = "\n".join(blocks)
    return f"WEBVTT\n\n{body}" if vtt else body


def _json(segments: Sequence[Segment], info: TranscriptionInfo | None) -> str:
    doc = {
        "info": asdict(info) if info is not None else None,
        "text": "\n".join(s.text for s in segments),
        "segments": [s.to_dict() | {"confidence": s.confidence} for s in segments],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def render(segments: Sequence[Segment], fmt: str, info: TranscriptionInfo | None = None) -> str:
    """The transcript as text in one of FORMATS."""
    if fmt == "txt":
        return "".join(s.text + "\n" for s in segments)
    if fmt in ("srt", "vtt"):
        return _subtitles(segments, vtt=fmt == "vtt")
    if fmt == "json":
        return _json(segments, info)
    raise ValueError(f"format {fmt!r} is not supported; choose one of {', '.join(FORMATS)}")


def write(
    segments: Sequence[Segment],
    path: str | os.PathLike,
    fmt: str | None = None,
    info: TranscriptionInfo | None = None,
) -> Path:
    """Render and write atomically (temp file in the same folder, then rename); the format
    comes from the file's suffix unless given."""
    path = Path(path)
    fmt = fmt or path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}; "
            f"name the file .{' / .'.join(FORMATS)} or pass fmt"
        )
    atomic_write_text(path, render(segments, fmt, info))
    return path
