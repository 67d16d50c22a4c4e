"""Confidence bands and their colors: pure helpers the transcript view and legend share.

One threshold `t` (the user's "doubt below" slider) defines three bands so a single control
moves all of them: doubtful below `t`, "check" from `t` to halfway between `t` and 1, sure above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.library.review import DEFAULT_THRESHOLD
from engine.results import Char

__all__ = [
    "BAND_COLORS",
    "DEFAULT_THRESHOLD",
    "LOW_BACKGROUND",
    "Band",
    "Bands",
    "char_tooltip",
    "tail_color",
]

Band = Literal["high", "medium", "low"]

# Text colors per band, readable on a white background (WCAG AA contrast for "low" and "high").
BAND_COLORS: dict[Band, str] = {"high": "#1b1b1b", "medium": "#b35c00", "low": "#c62828"}
# Doubtful characters also get a faint background so they stand out in a long text.
LOW_BACKGROUND = "#fdecea"
# How far the unstable streaming tail is blended toward white: same hue, visibly "not final".
_TAIL_BLEND = 0.55


@dataclass(frozen=True, slots=True)
class Bands:
    """The band limits derived from the doubt threshold (a probability in [0, 1])."""

    threshold: float = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold={self.threshold}: choose a value between 0 and 1")

    @property
    def high(self) -> float:
        """Lower limit of the "sure" band: halfway from the threshold to 1."""
        return self.threshold + (1.0 - self.threshold) / 2

    def band(self, confidence: float) -> Band:
        if confidence < self.threshold:
            return "low"
        if confidence < self.high:
            return "medium"
        return "high"

    def color(self, confidence: float) -> str:
        return BAND_COLORS[self.band(confidence)]


def tail_color(color: str) -> str:
    """`color` (#rrggbb) blended toward white, for characters that may still change."""
    rgb = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    mixed = [round(c + (255 - c) * _TAIL_BLEND) for c in rgb]
    return "#" + "".join(f"{c:02x}" for c in mixed)


def char_tooltip(char: Char) -> str:
    """Hover text: the character, its confidence, its time span and the model's alternatives."""
    from .i18n import tr

    head = tr(
        "tooltip.char",
        text=char.text,
        confidence=char.confidence,
        start=char.start,
        end=char.end,
    )
    if not char.alternatives:
        return f"{head}\n{tr('tooltip.no_alternatives')}"
    items = "  ".join(f"{a.text} {a.prob:.0%}" for a in char.alternatives)
    return f"{head}\n{tr('tooltip.alternatives', items=items)}"
