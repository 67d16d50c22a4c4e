"""Typed records produced by transcription: characters inside segments.

Small frozen dataclasses, never bare dicts, so every caller (CLI, app, writers, store) sees the
same fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["Alternative", "Char", "Progress", "Segment", "TranscriptionInfo"]


@dataclass(frozen=True, slots=True)
class Alternative:
    """A character the model also considered for a position, with its mean posterior."""

    text: str
    prob: float


@dataclass(frozen=True, slots=True)
class Char:
    """One output character: its time span in seconds, a confidence in [0, 1] and the
    model's runner-up characters (best first)."""

    text: str
    start: float
    end: float
    confidence: float
    alternatives: tuple[Alternative, ...] = ()


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of speech between pauses (or cut at a maximum length)."""

    id: int
    start: float
    end: float
    chars: tuple[Char, ...]

    @property
    def text(self) -> str:
        return "".join(c.text for c in self.chars)

    @property
    def confidence(self) -> float:
        """The lowest character confidence: one doubtful character makes a doubtful segment."""
        return min((c.confidence for c in self.chars), default=1.0)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["text"] = self.text
        return d


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


@dataclass(frozen=True, slots=True)
class Progress:
    """Seconds of audio decoded so far out of the total (for progress bars)."""

    done: float
    total: float
    extra: dict = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)
