"""Explicit transcript normalization before training and scoring.

Every step is an option the user sees (`describe`), never a silent rewrite: full-width to
half-width, punctuation and space removal, Latin lower-casing, Traditional to Simplified
(OpenCC) where the model writes Simplified.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache

__all__ = [
    "NormalizeOptions",
    "convert_in_phrase",
    "describe",
    "is_simplified_vocab",
    "normalize_text",
]


@dataclass(frozen=True, slots=True)
class NormalizeOptions:
    """Which rewrites apply to transcripts. All on by default: character CTC models for Mandarin
    write neither punctuation nor spaces."""

    # full-width ASCII forms (ＡＢＣ１２３) and the ideographic space become half-width
    half_width: bool = True
    # drop Unicode punctuation and symbols (，。！？“”…、《》 and ASCII ones)
    remove_punctuation: bool = True
    # drop all whitespace (Mandarin is written without spaces; word-segmented corpora add them)
    remove_spaces: bool = True
    # lower-case Latin letters
    lowercase: bool = True
    # convert Traditional to Simplified characters with OpenCC (t2s)
    to_simplified: bool = True


@cache
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def _is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"


def normalize_text(text: str, options: NormalizeOptions | None = None) -> str:
    """Apply the chosen rewrites in a fixed order (width, simplified, case, punctuation, space)."""
    options = options or NormalizeOptions()
    if options.half_width:
        text = unicodedata.normalize("NFKC", text)
    if options.to_simplified:
        text = _t2s().convert(text)
    if options.lowercase:
        text = text.lower()
    if options.remove_punctuation:
        text = "".join(" " if _is_punctuation(c) else c for c in text)
    text = "".join(text.split()) if options.remove_spaces else " ".join(text.split())
    return text


def describe(options: NormalizeOptions) -> list[str]:
    """One human-readable line per rewrite that is switched on (shown before training)."""
    lines = {
        "half_width": "full-width letters, digits and spaces → half-width (ＡＢ１ → AB1)",
        "to_simplified": "Traditional → Simplified characters (OpenCC t2s: 漢語 → 汉语)",
        "lowercase": "Latin letters lower-cased",
        "remove_punctuation": "punctuation and symbols removed (，。！？“” …)",
        "remove_spaces": "spaces removed",
    }
    return [line for name, line in lines.items() if getattr(options, name)]


def is_han_char(token: str) -> bool:
    """One character of the CJK Unified Ideographs block (what the vocabularies write)."""
    return len(token) == 1 and "\u4e00" <= token <= "\u9fff"


def is_simplified_vocab(chars: Iterable[str], threshold: float = 0.02) -> bool:
    """Whether a character vocabulary writes Simplified Chinese: few of its Han characters
    change under Traditional→Simplified conversion. True without Han characters (nothing for
    the conversion to break)."""
    han = [c for c in chars if is_han_char(c)]
    if not han:
        return True
    converter = _t2s()
    changed = sum(converter.convert(c) != c for c in han)
    return changed / len(han) <= threshold


def convert_in_phrase(pieces: Sequence[str], convert: Callable[[str], str]) -> list[str]:
    """Each of `pieces` (a segment's character texts, some of several letters such as "ok")
    through a script conversion, in its phrase: converted joined (OpenCC picks characters by
    phrase: 头发 → 頭髮, not 頭發) and cut back by each piece's length; where the conversion
    changes the length, each piece alone instead."""
    joined = "".join(pieces)
    whole = convert(joined)
    if len(whole) != len(joined):
        return [convert(p) for p in pieces]
    out, at = [], 0
    for p in pieces:
        out.append(whole[at : at + len(p)])
        at += len(p)
    return out
