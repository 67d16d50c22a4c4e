"""Typed records produced by transcription: characters inside segments.

Small frozen dataclasses, never bare dicts, so every caller (CLI, app, writers, store) sees the
same fields.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

__all__ = [
    "Alternative",
    "Char",
    "Progress",
    "Segment",
    "TranscriptionInfo",
    "default_speaker_name",
    "renamed_speakers",
    "speaker_name",
    "tidy_speaker_name",
]

# What speaker k (counting from 0) is called until someone names it.
_SPEAKER_LABEL = "说话人 {n}"


@dataclass(frozen=True, slots=True)
class Alternative:
    """A character the model also considered for a position, with its mean posterior."""

    text: str
    prob: float


@dataclass(frozen=True, slots=True)
class Char:
    """One output character: its time span in seconds, a confidence in [0, 1] and the
    model's runner-up characters (best first). `after` is the punctuation mark that follows it
    in the written text ("" for none; engine.punctuation), kept apart from `text` so the
    characters, their times and confidences stay exactly the model's."""

    text: str
    start: float
    end: float
    confidence: float
    alternatives: tuple[Alternative, ...] = ()
    after: str = ""


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of speech between pauses (or cut at a maximum length, or where the speaker
    changes). `speaker` counts from 0 in the order the voices first speak (engine.speakers);
    None when speakers were not told apart."""

    id: int
    start: float
    end: float
    chars: tuple[Char, ...]
    speaker: int | None = None

    @property
    def text(self) -> str:
        """The characters alone, one per `Char` (what CER, search and edits index)."""
        return "".join(c.text for c in self.chars)

    @property
    def punctuated(self) -> str:
        """The text as written in every format: each character followed by its punctuation
        mark, stripped, as a segment cut between two Latin words (by Whisper, a pause or review)
        ends with the space between them, the first word's `after`."""
        return "".join(c.text + c.after for c in self.chars).strip()

    @property
    def confidence(self) -> float:
        """The lowest character confidence: one doubtful character makes a doubtful segment."""
        return min((c.confidence for c in self.chars), default=1.0)

    def to_dict(self) -> dict:
        """The segment as JSON's plain data, with its text and punctuated text: built field by
        field (dataclasses.asdict's deep copy took 1.4 s of a 3-hour transcript's export)."""
        return {
            "id": self.id,
            "start": self.start,
            "end": self.end,
            "chars": [_char_dict(c) for c in self.chars],
            "speaker": self.speaker,
            "text": self.text,
            "punctuated": self.punctuated,
        }


def _char_dict(c: Char) -> dict:
    """A character as `dataclasses.asdict` gives it, alternatives as lists of records."""
    alternatives = [{"text": a.text, "prob": a.prob} for a in c.alternatives]
    return {"text": c.text, "start": c.start, "end": c.end, "confidence": c.confidence,
            "alternatives": alternatives, "after": c.after}  # fmt: skip


def default_speaker_name(speaker: int) -> str:
    """说话人 1 for speaker 0, and so on."""
    return _SPEAKER_LABEL.format(n=speaker + 1)


def renamed_speakers(names: Mapping[int, str], speaker: int, name: str) -> dict[int, str]:
    """A transcript's speaker names after calling `speaker` `name` (an empty name gives back
    its default one): the one rule the library and a transcript not yet stored both follow."""
    out = dict(names)
    if name := tidy_speaker_name(name):
        out[int(speaker)] = name
    else:
        out.pop(int(speaker), None)
    return out


def speaker_name(speaker: int, names: Mapping[int, str] | None = None) -> str:
    """What a speaker is called in a transcript: the name it was given there (a rename applies
    to every segment of that speaker), else its default name."""
    return tidy_speaker_name((names or {}).get(speaker, "")) or default_speaker_name(speaker)


def tidy_speaker_name(name: str) -> str:
    """A typed speaker name as it is kept: one line with single spaces (a name pasted with a
    line break in it would split a label, a cue's voice tag and a TXT turn in two)."""
    return " ".join(name.split())


@dataclass(frozen=True, slots=True)
class TranscriptionInfo:
    """What was transcribed and how: returned before the segments are produced."""

    source: str
    duration: float
    sampling_rate: int
    model: str
    device: str
    dtype: str
    attention: str
    confidence_measure: str

    def decoded(self, last: Progress | None) -> TranscriptionInfo:
        """This info with the length the transcriber read, its last `Progress`'s total, in
        place of the header's: for MP3 and raw AAC that is FFmpeg's guess from the bit rate,
        seconds off either way, and the writers end the last cue by it. Call it once the items
        ran out (the last record of a cancelled run holds no length); None: as it is."""
        if last is None or last.total <= 0:
            return self
        return replace(self, duration=last.total)


@dataclass(frozen=True, slots=True)
class Progress:
    """Seconds of audio decoded so far out of the total (for progress bars)."""

    done: float
    total: float

    @property
    def fraction(self) -> float:
        """The share decoded; NaN while the total is not known (0: a stream whose header has
        no length), which a progress bar shows as busy rather than as done."""
        return math.nan if self.total <= 0 else min(1.0, self.done / self.total)
