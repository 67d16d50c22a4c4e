"""Transcripts to files: TXT, SRT, VTT and JSON.

TXT has one segment per line. SRT and VTT cues come from `plan_cues`: a cue never spans two
segments (they end at pauses in the audio), and a segment too long for one cue is cut after a
mark, else where its characters leave the widest gap, never before a mark nor inside a Latin
word that fits a line (`_cut` at `_breaks`). A cue is shown long enough to read (`CueLimits`)
but never after the next one starts. JSON keeps everything, a segment a line: the info record,
segments, and for every character its times, confidence, alternatives and the punctuation mark
after it. Marks (`Char.after`) are written after their characters; a segment's text is the
same in every format (`Segment.punctuated`), and a subtitle line drops a trailing ，、。 as
Chinese subtitles do. Files are written atomically: a crash or a full disk leaves either the
old file or the new one, never half of one; the formats of one transcript are written together
(`write_all`): all new, or none.

Speakers (Segment.speaker, engine.speakers) are named where the speaker changes in TXT
(说话人 1：), before each SRT cue's text (SRT has no voice tag; the name is text there, so it
takes its room on the cue's first line, `_label_room`), in a WebVTT voice tag (<v 说话人 1>,
which players do not draw as text) and on each JSON segment; a renamed speaker by its name
everywhere.
"""

from __future__ import annotations

import json
import math
import os
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .atomic import atomic_write_files, atomic_write_text
from .punctuation import is_latin, is_mark
from .results import Char, Segment, TranscriptionInfo, speaker_name

__all__ = [
    "FORMATS",
    "Cue",
    "CueLimits",
    "json_text",
    "plan_cues",
    "render",
    "timestamp",
    "write",
    "write_all",
]

FORMATS = ("txt", "srt", "vtt", "json")


_SURROGATE = re.compile(r"[\ud800-\udfff]")  # a name's bytes that are not UTF-8, as os.fsdecode


@dataclass(frozen=True, slots=True)
class CueLimits:
    """Subtitle conventions, after Netflix's Simplified Chinese timed-text guide (16
    characters a line, two lines, 9 characters a second, at most 7 s on screen)."""

    # A cue stays up at least this long (seconds), and long enough to read at
    # reading_chars_per_second, unless the next cue starts sooner.
    min_seconds: float = 1.0
    reading_chars_per_second: float = 9.0
    # Speech longer than this (seconds, first character's start to last one's end) is cut.
    max_seconds: float = 7.0
    line_chars: int = 16
    max_lines: int = 2  # 1 or 2: a cue's text is halved at most once

    def __post_init__(self) -> None:
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ValueError(
                f"CueLimits: need 0 < min_seconds ({self.min_seconds}) <= max_seconds "
                f"({self.max_seconds})"
            )
        if self.reading_chars_per_second <= 0 or self.line_chars < 1:
            raise ValueError("CueLimits: reading_chars_per_second and line_chars must be positive")
        if self.max_lines not in (1, 2):
            raise ValueError(f"CueLimits.max_lines={self.max_lines!r}: use 1 or 2")


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle: on screen from start to end (seconds), its characters in lines."""

    start: float
    end: float
    lines: tuple[tuple[Char, ...], ...]
    speaker: int | None = None  # the segment's (engine.speakers)

    @property
    def chars(self) -> tuple[Char, ...]:
        return tuple(c for line in self.lines for c in line)

    @property
    def text(self) -> str:
        return "\n".join(_line_text(line) for line in self.lines)


# Marks a subtitle line does not end with (question and exclamation marks stay).
_LINE_END_DROPPED = "，、。"


def _line_text(line: Sequence[Char]) -> str:
    """A line as shown: as a segment is written (`Segment.punctuated`: a line cut between two
    Latin words ends with the space between them), less a trailing ，、。"""
    return "".join(c.text + c.after for c in line).strip().rstrip(_LINE_END_DROPPED)


def timestamp(seconds: float, sep: str = ",") -> str:
    """HH:MM:SS,mmm (SRT; pass sep="." for VTT), rounded to the millisecond."""
    ms = max(0, _ms(seconds))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _cut(
    chars: Sequence[Char],
    breaks: Sequence[int],
    fits: Callable[[int, int], bool],
    i: int,
    j: int,
) -> list[tuple[int, int]]:
    """Split chars[i:j] at `breaks` (`_breaks`) into pieces [a, b) that each `fits(a, b)`; a
    piece with no break inside is never cut, whatever its length. Among cuts near the middle
    whose two sides both fit, else anywhere both fit, else near the middle (and then each side
    again), the cut goes just after a mark (a line or cue ends with a clause), else where the
    characters leave the widest gap, else nearest the middle."""

    def inside(i: int, j: int) -> Sequence[int]:
        return breaks[bisect_right(breaks, i) : bisect_left(breaks, j)]

    def whole(i: int, j: int) -> bool:  # one piece that cannot be cut, or one that fits
        return not inside(i, j) or fits(i, j)

    def rank(k: int, i: int, j: int) -> tuple[bool, float, int]:
        after_mark = bool(chars[k - 1].after) or _is_mark_char(chars[k - 1])
        gap = round(chars[k].start - chars[k - 1].end, 3)  # whole ms: float noise breaks no tie
        return after_mark, gap, -abs(2 * k - i - j)

    def split(i: int, j: int) -> list[tuple[int, int]]:
        within = inside(i, j)
        if not within or fits(i, j):
            return [(i, j)]
        n = j - i
        middle = [k for k in within if n // 4 <= k - i <= n - n // 4]
        candidates = (
            [k for k in middle if whole(i, k) and whole(k, j)]
            or [k for k in within if whole(i, k) and whole(k, j)]
            or middle
            or within
        )
        k = max(candidates, key=lambda k: rank(k, i, j))
        return split(i, k) + split(k, j)

    return split(i, j) if i < j else []


def _breaks(chars: Sequence[Char], line_chars: int) -> list[int]:
    """Where chars may be cut: before any character but a mark of its own (Whisper's,
    engine.whisper: it stays with the character before it, so no line starts with one), and
    not inside a Latin word or number ("Lea|rning", "20|24"), as subtitles never split a word,
    unless the word is longer than a line, which leaves no other way."""
    spans = _latin_words(chars)
    unbroken = {k for a, b in spans if b - a <= line_chars for k in range(a + 1, b)}
    return [k for k in range(1, len(chars)) if not _is_mark_char(chars[k]) and k not in unbroken]


def _latin_words(chars: Sequence[Char]) -> list[tuple[int, int]]:
    """Spans [a, b) of Latin letters and digits with no space between them (a typed fix keeps
    the space between two words as the first one's `after`, engine.library.review)."""
    spans, a = [], 0
    for k in range(1, len(chars) + 1):
        joined = k < len(chars) and not chars[k - 1].after
        if not (joined and _is_latin(chars[k - 1]) and _is_latin(chars[k])):
            if k - a > 1:
                spans.append((a, k))
            a = k
    return spans


def _is_latin(char: Char) -> bool:
    """A Char of Latin letters or digits, the characters an English word or a number is of."""
    return bool(char.text) and all(is_latin(ch) for ch in char.text)


def _is_mark_char(char: Char) -> bool:
    """A Char that is punctuation only: how Whisper's transcripts stored before marks went into
    `after` hold them."""
    return bool(char.text) and all(is_mark(ch) for ch in char.text)


def plan_cues(
    segments: Sequence[Segment],
    limits: CueLimits | None = None,
    end: float = math.inf,
    label: Callable[[int], str] | None = None,
) -> list[Cue]:
    """Subtitle cues for segments: every character in exactly one cue, in order; a cue starts
    at its first character and ends at or after its last one, before the next cue starts, and
    is held for reading no later than `end`, the recording's (players show a cue past the end
    of a video as a frozen last frame, and some refuse the file). An `end` before the last
    character's is a length estimated wrong (an MP3's from its bit rate) and is ignored. Every
    cue lasts at least a millisecond as written (`timestamp`): one whose characters take no
    time (Whisper's symbols) ends a millisecond after it starts, and the next starts no
    sooner, as players skip a cue of no length and some editors refuse it. `label(speaker)`
    is the text shown before a speaker's cue (SRT's 说话人 1：): it shares the first line, which
    holds that many fewer characters, or has that line to itself (`_label_room`)."""
    limits = limits or CueLimits()
    most = limits.line_chars
    groups: list[tuple[tuple[Char, ...], ...]] = []
    speakers = []
    for seg in segments:
        chars = seg.chars
        breaks = _breaks(chars, most)
        first, count = most, limits.max_lines
        if label is not None and seg.speaker is not None:
            room = _label_room(label(seg.speaker), limits)
            first, count = (room, count) if room else (most, max(count - 1, 1))
        fits = _cue_fits(chars, breaks, limits, first, count)
        for i, j in _cut(chars, breaks, fits, 0, len(chars)):
            lines = _cut(chars, breaks, _line_fits(i, first, most), i, j)
            groups.append(tuple(tuple(chars[a:b]) for a, b in lines))
            speakers.append(seg.speaker)
    if groups and end < groups[-1][-1][-1].end:
        end = math.inf
    cues, floor = [], -math.inf
    for n, lines in enumerate(groups):
        start, last, count = max(lines[0][0].start, floor), lines[-1][-1], sum(map(len, lines))
        following = groups[n + 1][0][0].start if n + 1 < len(groups) else end
        readable = max(limits.min_seconds, count / limits.reading_chars_per_second)
        stop = max(last.end, min(start + readable, following))
        if _ms(stop) <= _ms(start):
            stop = floor = (_ms(start) + 1) / 1000
        cues.append(Cue(start, stop, lines, speakers[n]))
    return cues


def _line_fits(start: int, first: int, most: int) -> Callable[[int, int], bool]:
    """Whether chars[a:b] fit a line of the cue that starts at `start`: its first line holds
    `first` characters (less beside a speaker's name), the others `most`."""
    return lambda a, b: b - a <= (first if a == start else most)


def _ms(seconds: float) -> int:
    """A time as `timestamp` writes it, in whole milliseconds."""
    return round(seconds * 1000)


def _cue_fits(
    chars: Sequence[Char], breaks: Sequence[int], limits: CueLimits, first: int, lines: int
) -> Callable[[int, int], bool]:
    """Whether chars[i:j] fit one cue: short enough in time, and few enough for its first line
    (`first` characters), or, when it has two `lines`, for two cut at a break that leaves the
    first at most `first` and the second at most line_chars (a cue of 32 characters whose only
    such cut is inside a word is two cues)."""
    most = limits.line_chars

    def fits(i: int, j: int) -> bool:
        if chars[j - 1].end - chars[i].start > limits.max_seconds:
            return False
        if j - i <= first or lines == 1:
            return j - i <= first
        # a break inside the cue in [j - most, i + first]; none when j - i > first + most
        return bisect_left(breaks, max(j - most, i + 1)) < bisect_right(breaks, i + first)

    return fits


def _label_room(label: str, limits: CueLimits) -> int:
    """The characters a cue's first line holds beside `label`, a name shown before its text:
    the rest of the line, or 0 when that is under half a line, and the name has the line to
    itself (a long rename: two characters beside it read poorly, and a name longer than the
    line would leave none). A name longer than the line is still shown whole."""
    room = limits.line_chars - len(label)
    return room if 2 * room >= limits.line_chars else 0


def _srt_label(speaker: int, names: Mapping[int, str] | None) -> str:
    """A speaker's name as SRT shows it before a cue's text, one for planning and writing."""
    return f"{speaker_name(speaker, names)}："


def _voice(cue: Cue, vtt: bool, names: Mapping[int, str] | None, limits: CueLimits) -> str:
    """Who speaks a cue: a WebVTT voice tag (<v 说话人 1>), or in SRT, which has none, the
    name before the text (说话人 1：), on a line of its own when it is long (`_label_room`);
    nothing when speakers were not told apart."""
    if cue.speaker is None:
        return ""
    if vtt:
        return f"<v {_vtt_escaped(speaker_name(cue.speaker, names))}>"
    label = _srt_label(cue.speaker, names)
    return label if _label_room(label, limits) else f"{label}\n"


def _vtt_escaped(text: str) -> str:
    """Text as WebVTT reads it back: a '<' would open a tag, an '&' an entity, and '-->' in a
    cue's text would make a timing line of it (escaping '>' covers that)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _subtitles(
    segments: Sequence[Segment],
    vtt: bool,
    names: Mapping[int, str] | None = None,
    end: float = math.inf,
) -> str:
    """SRT or WebVTT text; SRT's speaker names take room on the lines (`plan_cues`' label),
    WebVTT's voice tags do not: players do not draw them as text."""
    sep = "." if vtt else ","
    limits = CueLimits()
    label = None if vtt else lambda speaker: _srt_label(speaker, names)
    blocks = []
    cues = plan_cues(segments, limits, end, label)
    shown = [cue for cue in cues if cue.text]  # not a lone ，、。
    for n, cue in enumerate(shown, start=1):
        times = f"{timestamp(cue.start, sep)} --> {timestamp(cue.end, sep)}"
        text = _vtt_escaped(cue.text) if vtt else cue.text
        blocks.append(f"{n}\n{times}\n{_voice(cue, vtt, names, limits)}{text}\n")
    body = "\n".join(blocks)
    return f"WEBVTT\n\n{body}" if vtt else body


def _json_segment(s: Segment, names: Mapping[int, str] | None) -> dict:
    """A segment's record; `speaker` is its speaker's name (null when speakers were not told
    apart), `speaker_id` the number behind it (0 for 说话人 1)."""
    speaker = None if s.speaker is None else speaker_name(s.speaker, names)
    return s.to_dict() | {"confidence": s.confidence, "speaker": speaker, "speaker_id": s.speaker}


def json_text(data: object) -> str:
    """`data` as JSON on one line, by json's C encoder (`indent` takes its pure-Python one,
    5 times slower: 2.4 s for a 3-hour transcript), as UTF-8 text whatever the file names in
    it. A name whose bytes are not UTF-8 (a Latin-1 réunion.wav from an old Windows share) is
    text with lone surrogates (os.fsdecode), which UTF-8 cannot encode: they are written as
    JSON's \\udcXX escapes, which read back as the same text (os.fsencode gives its bytes
    again). Other text stays readable."""
    text = json.dumps(data, ensure_ascii=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def _json(
    segments: Sequence[Segment],
    info: TranscriptionInfo | None,
    names: Mapping[int, str] | None = None,
) -> str:
    """The transcript's JSON with each field on a line of its own and each segment on one:
    readable, and every line written by the C encoder (`json_text`)."""
    ids = sorted({s.speaker for s in segments if s.speaker is not None})
    head = {
        "info": asdict(info) if info is not None else None,
        "text": "\n".join(s.punctuated for s in segments if s.chars),  # as TXT: `_txt`
        "speakers": {str(k): speaker_name(k, names) for k in ids},
    }
    fields = "".join(f"{json_text(key)}: {json_text(value)},\n" for key, value in head.items())
    records = ",\n".join(json_text(_json_segment(s, names)) for s in segments)
    return f'{{\n{fields}"segments": [\n{records}\n]\n}}\n'


def _txt(segments: Sequence[Segment], names: Mapping[int, str] | None) -> str:
    """One segment a line; where the speaker changes, a blank line, and the speaker's name
    before the turn's first line (说话人 1：……). Speakers are told apart by name: two given one
    name (a voice split in two, merged by the user) are one person. A segment emptied in review
    has no line (nor a turn), as it has no cue."""
    out, previous = [], None
    for s in segments:
        if not s.chars:
            continue
        name = None if s.speaker is None else speaker_name(s.speaker, names)
        if name is not None and name != previous:
            out.append(("\n" if out else "") + f"{name}：")
        previous = name
        out.append(s.punctuated + "\n")
    return "".join(out)


def render(
    segments: Sequence[Segment],
    fmt: str,
    info: TranscriptionInfo | None = None,
    speakers: Mapping[int, str] | None = None,
) -> str:
    """The transcript as text in one of FORMATS; `speakers` names speakers (by
    Segment.speaker) that were renamed, the others are 说话人 N."""
    if fmt == "txt":
        return _txt(segments, speakers)
    if fmt in ("srt", "vtt"):
        end = info.duration if info is not None and info.duration > 0 else math.inf
        return _subtitles(segments, fmt == "vtt", speakers, end)
    if fmt == "json":
        return _json(segments, info, speakers)
    raise ValueError(f"format {fmt!r} is not supported; choose one of {', '.join(FORMATS)}")


def write(
    segments: Sequence[Segment],
    path: str | os.PathLike,
    fmt: str | None = None,
    info: TranscriptionInfo | None = None,
    speakers: Mapping[int, str] | None = None,
) -> Path:
    """Render and write atomically (temp file in the same folder, then rename); the format
    comes from the file's suffix unless given."""
    path = Path(path)
    atomic_write_text(path, render(segments, _format(path, fmt), info, speakers))
    return path


def write_all(
    segments: Sequence[Segment],
    paths: Sequence[str | os.PathLike],
    info: TranscriptionInfo | None = None,
    replace: bool = True,
) -> list[Path]:
    """Write one transcript in several formats (each by its file's suffix) together, through
    `atomic_write_files`: when one cannot be written (a full disk on the third), none is new
    and the files there stay as they were, so a folder never holds a mix of two versions. An
    OSError says why; a suffix that is no format raises ValueError before anything is
    written; without `replace`, a file there already raises FileExistsError naming it (none
    written). The CLI and the app's watch folders both write through this, as soon as a
    transcript is ready: before any speaker could be renamed, so speakers are 说话人 N."""
    files = [Path(p) for p in paths]
    texts = [render(segments, _format(p), info).encode("utf-8") for p in files]
    atomic_write_files(
        [(p, lambda f, text=text: f.write(text)) for p, text in zip(files, texts, strict=True)],
        replace=replace,
    )
    return files


def _format(path: Path, fmt: str | None = None) -> str:
    """`fmt` (any case: "TXT" is "txt"), or the one `path`'s suffix names; ValueError naming
    the option, or the file, when that is not one of FORMATS."""
    if fmt is not None:
        if fmt.lower() not in FORMATS:
            raise ValueError(f"fmt={fmt!r} is not a format; choose one of {', '.join(FORMATS)}")
        return fmt.lower()
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}; "
            f"name the file .{' / .'.join(FORMATS)}"
        )
    return fmt
