"""Punctuation for transcripts: which mark (，。？！、 or none) follows each character.

A small character-level tagger the project trains itself (`engine.tune.punctuation_train`,
shipped in `resources/punctuation/`): character embeddings and the pause after each character
(the gap to the next one, from the characters' times) go through a bidirectional GRU that
scores the marks. It never changes a character: the marks land in `Char.after`, so the
characters, their times and confidences stay exactly the model's, and every writer and view
shows `text + after`.

    segments = Punctuator.load().punctuate(segments)           # a whole transcript
    for item in punctuate_stream(stream, punctuator): ...      # segments as they are made

Each segment is punctuated inside a window: the end of the previous segment before it and the
start of the next after it, so the mark after a segment's last character knows both the pause
that follows and how the speech goes on. Segments that already hold punctuation characters
(Whisper writes its own) are left alone; `without_marks` takes those out where a transcript of
characters alone is asked for (`--no-punctuation`).

Torch is imported only when a model is built, so the pure helpers (`split_marks`, `is_mark`,
`without_marks`, `gap_features`) cost nothing to import.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import statistics
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from .errors import TingxieError
from .results import Char, Segment
from .shipped import resource

__all__ = [
    "DEFAULT_DIR",
    "MARKS",
    "NetworkShape",
    "PunctuationError",
    "Punctuator",
    "Vocabulary",
    "build_network",
    "default_punctuator",
    "ends_latin_word",
    "gap_features",
    "is_latin",
    "is_mark",
    "latin_word_start",
    "mark_of",
    "punctuate_stream",
    "split_marks",
    "without_marks",
]

log = logging.getLogger("tingxie.punctuation")

# The trained model the app and the CLI use (weights as safetensors, vocabulary and settings
# as JSON; see its README.md).
DEFAULT_DIR = resource("punctuation")
WEIGHTS = "model.safetensors"
CONFIG = "config.json"

# Class 0 is "no mark"; the others are the marks the model restores.
MARKS: tuple[str, ...] = ("", "，", "。", "？", "！", "、")
# Other punctuation in training text, mapped to the mark a transcript would show.
_MAP = {
    ",": "，", "﹐": "，", "；": "，", ";": "，", "：": "，", ":": "，", "—": "，", "～": "，",
    ".": "。", "｡": "。", "…": "。",
    "?": "？", "!": "！", "､": "、",
}  # fmt: skip
# When several marks follow one character ("？！", "。”"), the strongest is kept.
_STRENGTH = {"": 0, "、": 1, "，": 2, "。": 3, "！": 4, "？": 5}

# Pause features. Gaps are clipped at _MAX_GAP seconds and scaled as log1p(gap / _GAP_UNIT),
# divided by its value at _MAX_GAP so they lie in [0, 1].
_MAX_GAP = 5.0
_GAP_UNIT = 0.1
_GAP_SCALE = math.log1p(_MAX_GAP / _GAP_UNIT)
N_FEATURES = 3  # timed (0/1), the gap, the gap beyond the window's median gap
# The pause assumed after the last character of a transcript (or of a live segment, which a
# pause of at least engine.vad's pause_seconds closed): the speech has stopped.
END_GAP = 1.0
# Characters of the neighbouring segments each window holds.
LEFT_CONTEXT = 48
RIGHT_CONTEXT = 24
# Longest window the network reads at once; longer segments are read in overlapping pieces.
_MAX_WINDOW = 400
_PIECE_OVERLAP = 48


class PunctuationError(TingxieError, RuntimeError):
    """The punctuation model cannot be loaded; the message names the folder and what to do."""


def is_mark(ch: str) -> bool:
    """Whether `ch` is punctuation (a Unicode P* category): written after characters, never
    one of them."""
    return len(ch) == 1 and unicodedata.category(ch).startswith("P")


def is_latin(ch: str) -> bool:
    """Whether `ch` is a Latin letter or a digit, what an English word or a number is written
    in: spaces between two such are kept in a typed fix, and subtitles never cut inside them."""
    return ch.isdigit() or unicodedata.name(ch, "").startswith("LATIN")


# Punctuation a space may follow between two Latin words ("Hello, world", "Mr. Smith"); a
# full-width mark (，。) has the width of a character and is followed by none.
_ASCII_MARKS = "".join(ch for ch in map(chr, range(128)) if is_mark(ch))


def ends_latin_word(text: str) -> bool:
    """Whether `text` ends with a Latin word or number, maybe followed by ASCII punctuation
    ("Deep", "Hello,", "2024."): a space after it stays before another such word ("Hello,
    world"), one after Chinese or a full-width mark is dropped, as Mandarin is written. The one
    rule for Whisper's words, a typed fix (engine.library.review.split_typed) and the live
    stream (engine.whisper_stream)."""
    word = text.rstrip(_ASCII_MARKS)
    return bool(word) and is_latin(word[-1])


def latin_word_start(chars: Sequence[Char]) -> int:
    """Where the Latin word or number that ends `chars` starts, the ASCII marks after it
    included ("Learning,"); len(chars) where they end otherwise (in Chinese, a full-width
    mark). A space after such a word stays before the next one (`ends_latin_word`).

    >>> c = lambda t, after="": Char(t, 0.0, 0.0, 1.0, after=after)
    >>> latin_word_start([c("学"), c("A", " "), c("I"), c("D"), c(",")])
    2
    >>> latin_word_start([c("A"), c("I"), c("。")]), latin_word_start([c("用"), c(",")])
    (3, 2)
    """
    k = len(chars)
    while k and (k == len(chars) or not chars[k - 1].after) and _spelled(chars[k - 1].text):
        k -= 1
    return k if ends_latin_word("".join(c.text for c in chars[k:])) else len(chars)


def _spelled(text: str) -> bool:
    """Whether `text` is of Latin letters, digits and ASCII punctuation: part of a word or a
    number and its marks."""
    return bool(text) and all(is_latin(ch) or ch in _ASCII_MARKS for ch in text)


def mark_of(punctuation: str) -> str:
    """The one mark of MARKS that a run of punctuation stands for ("" for quotes, brackets)."""
    best = ""
    for ch in punctuation:
        mark = _MAP.get(ch, ch)
        if mark in _STRENGTH and _STRENGTH[mark] > _STRENGTH[best]:
            best = mark
    return best


def split_marks(text: str) -> tuple[str, list[str]]:
    """Characters and the punctuation after each: "好吗？对。" -> ("好吗对", ["", "？", "。"]).
    Punctuation before the first character and whitespace are dropped; runs of punctuation
    are kept as typed."""
    chars: list[str] = []
    after: list[str] = []
    for ch in text:
        if ch.isspace():
            continue
        if is_mark(ch):
            if chars:
                after[-1] += ch
        else:
            chars.append(ch)
            after.append("")
    return "".join(chars), after


def without_marks(segments: Iterable[Segment]) -> list[Segment]:
    """`segments` as characters alone: the punctuation a model writes itself (Whisper's, in
    each character's `after`; as characters of no length in transcripts made before) removed,
    a space between two Latin words kept, the characters with their times and confidences
    unchanged; a segment of punctuation alone is left out."""
    out = []
    for segment in segments:
        chars = tuple(
            replace(c, after="".join(ch for ch in c.after if not is_mark(ch)))
            for c in segment.chars
            if not is_mark(c.text)
        )
        if chars == segment.chars:
            out.append(segment)
        elif chars:
            out.append(replace(segment, chars=chars))
    return out


def _has_marks(chars: Iterable[Char]) -> bool:
    """Whether `chars` hold punctuation already: a model's own (Whisper's, in `after`; as
    characters in transcripts made before)."""
    return any(is_mark(ch) for c in chars for ch in c.text + c.after)


def gap_features(gaps: Sequence[float] | None, n: int) -> list[tuple[float, float, float]]:
    """The network's pause input for `n` characters: (timed, gap, gap beyond the median), each
    in [0, 1]. `gaps[i]` is the silence in seconds after character i; None: no times known
    (text alone), which the network was trained to read too."""
    if gaps is None:
        return [(0.0, 0.0, 0.0)] * n
    if len(gaps) != n:
        raise ValueError(f"{len(gaps)} gaps for {n} characters: give one per character")
    clipped = [min(max(float(g), 0.0), _MAX_GAP) for g in gaps]
    median = statistics.median(clipped) if clipped else 0.0
    return [
        (
            1.0,
            math.log1p(g / _GAP_UNIT) / _GAP_SCALE,
            math.log1p(max(0.0, g - median) / _GAP_UNIT) / _GAP_SCALE,
        )
        for g in clipped
    ]


def _spell_out(tokens: Sequence[str], gaps: Sequence[float]) -> tuple[str, list[float], list[int]]:
    """Tokens (a model's characters, some of them several letters long, as "ok" in a bilingual
    vocabulary) as the network reads text, one character at a time: each token spelled out, no
    pause inside it, its own pause after its last character, where its mark is read. Returns
    the text, its gaps and the index in the text of each token's last character.

    >>> _spell_out(["我", "ok", "吧"], [0.1, 0.2, 1.0])
    ('我ok吧', [0.1, 0.0, 0.2, 1.0], [0, 2, 3])
    """
    text: list[str] = []
    spelled: list[float] = []
    ends: list[int] = []
    for token, gap in zip(tokens, gaps, strict=True):
        letters = token or " "  # an empty token still holds its place (read as unknown)
        text.append(letters)
        spelled += [0.0] * (len(letters) - 1) + [gap]
        ends.append(len(spelled) - 1)
    return "".join(text), spelled, ends


@dataclass(frozen=True, slots=True)
class NetworkShape:
    """The tagger's size (saved in config.json beside the weights)."""

    vocab_size: int
    embed: int = 64
    hidden: int = 128
    # One layer: a second costs 3x the training time on one CPU core (measured: 0.43 s against
    # ~0.13 s a step of 64 windows) for the ~20-minute budget the model is trained in.
    layers: int = 1
    dropout: float = 0.1


@cache
def _network_class():
    import torch
    from torch import nn

    class PunctuationNet(nn.Module):
        """Embeddings + pause features -> bidirectional GRU -> a score per mark."""

        def __init__(self, shape: NetworkShape) -> None:
            super().__init__()
            self.embed = nn.Embedding(shape.vocab_size, shape.embed, padding_idx=0)
            self.rnn = nn.GRU(
                shape.embed + N_FEATURES,
                shape.hidden,
                num_layers=shape.layers,
                batch_first=True,
                bidirectional=True,
                dropout=shape.dropout if shape.layers > 1 else 0.0,
            )
            self.drop = nn.Dropout(shape.dropout)
            self.out = nn.Linear(2 * shape.hidden, len(MARKS))

        def forward(self, ids: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
            """ids (batch, length) int64, features (batch, length, N_FEATURES) -> logits
            (batch, length, len(MARKS))."""
            x = torch.cat([self.drop(self.embed(ids)), features], dim=-1)
            h, _ = self.rnn(x)
            return self.out(self.drop(h))

    return PunctuationNet


def build_network(shape: NetworkShape):
    """A fresh (untrained) tagger of `shape` (the training script starts from it)."""
    return _network_class()(shape)


class Vocabulary:
    """Characters -> ids: 0 pads, 1 stands for any character not in the list."""

    UNK = 1

    def __init__(self, chars: Iterable[str]) -> None:
        self.chars = list(chars)
        self._ids = {c: i + 2 for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars) + 2

    def ids(self, text: str) -> list[int]:
        return [self._ids.get(unicodedata.normalize("NFKC", c), self.UNK) for c in text]


class Punctuator:
    """A loaded punctuation model. Thread-safe for inference (no state between calls)."""

    def __init__(self, net, vocab: Vocabulary, bias: Sequence[float] | None = None) -> None:
        import torch

        self.net = net.eval()
        self.vocab = vocab
        # Added to each mark's score before the arg max (tuned for F1 on the training source's
        # development split when the model was trained).
        self.bias = torch.tensor(list(bias) if bias is not None else [0.0] * len(MARKS))

    @classmethod
    def load(cls, folder: str | Path = DEFAULT_DIR) -> Punctuator:
        """The model in `folder` (config.json + model.safetensors)."""
        folder = Path(folder)
        try:
            config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
            from safetensors.torch import load_file

            state = load_file(folder / WEIGHTS)
            shape = NetworkShape(**config["shape"])
            net = build_network(shape)
            net.load_state_dict({k: v.float() for k, v in state.items()})
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
            raise PunctuationError("punctuation.load_failed", path=folder, detail=e) from e
        return cls(net, Vocabulary(config["vocab"]), config.get("bias"))

    # ---- text ------------------------------------------------------------------------------
    def marks(self, text: str, gaps: Sequence[float] | None = None) -> list[str]:
        """The mark after each character of `text` ("" for none). `gaps[i]`: seconds of
        silence after character i (None: text alone)."""
        if not text:
            return []
        if len(text) > _MAX_WINDOW:
            return self._marks_in_pieces(text, gaps)
        import torch

        ids = torch.tensor([self.vocab.ids(text)], dtype=torch.long)
        feats = torch.tensor([gap_features(gaps, len(text))], dtype=torch.float32)
        with torch.inference_mode():
            scores = self.net(ids, feats)[0] + self.bias
        return [MARKS[i] for i in scores.argmax(dim=-1).tolist()]

    def _marks_in_pieces(self, text: str, gaps: Sequence[float] | None) -> list[str]:
        """Overlapping windows; each character keeps the mark of the window where it lies
        furthest from an edge."""
        out: list[str] = []
        step = _MAX_WINDOW - 2 * _PIECE_OVERLAP
        for start in range(0, len(text), step):
            lo = max(0, start - _PIECE_OVERLAP)
            hi = min(len(text), start + step + _PIECE_OVERLAP)
            piece = self.marks(text[lo:hi], None if gaps is None else gaps[lo:hi])
            out += piece[start - lo : start - lo + min(step, len(text) - start)]
        return out

    def punctuate_text(self, text: str) -> str:
        """`text` with a mark added after each character that has no punctuation after it.
        Nothing typed is removed or moved (50%, 马丁·路德, don't, quotes, spaces): the model
        reads the characters alone, and punctuation already there is the writer's."""
        chars, typed = split_marks(text)
        added = iter(m if not t else "" for m, t in zip(self.marks(chars), typed, strict=True))
        return "".join(c if c.isspace() or is_mark(c) else c + next(added) for c in text)

    # ---- segments --------------------------------------------------------------------------
    def punctuate(self, segments: Sequence[Segment]) -> list[Segment]:
        """Copies of `segments` with `Char.after` set; characters and times unchanged."""
        return [
            self.punctuate_one(
                seg,
                segments[i - 1] if i > 0 else None,
                segments[i + 1] if i + 1 < len(segments) else None,
            )
            for i, seg in enumerate(segments)
        ]

    def punctuate_one(
        self, segment: Segment, before: Segment | None = None, after: Segment | None = None
    ) -> Segment:
        """`segment` punctuated with the end of `before` and the start of `after` as context;
        `after` None: the speech stopped after it (the end of a file or a live segment)."""
        if not segment.chars or _has_marks(segment.chars):
            return segment
        left = list(before.chars[-LEFT_CONTEXT:]) if before is not None else []
        right = list(after.chars[:RIGHT_CONTEXT]) if after is not None else []
        if _has_marks(left + right):
            left, right = [], []  # a Whisper neighbour: its own marks, not our context
        window = left + list(segment.chars) + right
        gaps = [b.start - a.end for a, b in itertools.pairwise(window)]
        gaps.append(END_GAP)
        text, spelled_gaps, ends = _spell_out([c.text for c in window], gaps)
        spelled_marks = self.marks(text, spelled_gaps)
        marks = [spelled_marks[i] for i in ends]
        mine = marks[len(left) : len(left) + len(segment.chars)]
        chars = tuple(
            replace(c, after=_kept(c, m)) for c, m in zip(segment.chars, mine, strict=True)
        )
        return replace(segment, chars=chars)


def _kept(char: Char, mark: str) -> str:
    """What follows `char` once punctuated: the mark, else the space it held (between two Latin
    words, engine.library.review.split_typed, engine.whisper), never an earlier mark."""
    return mark or (char.after if char.after.isspace() else "")


def punctuate_stream(items: Iterator, punctuator: Punctuator | None) -> Iterator:
    """`items` (segments among other records, e.g. Progress) with every Segment punctuated.
    Each segment is held back until the next one arrives (its pause and continuation are
    then known), so a segment comes out one segment later; the last when the stream ends.
    Returns what the stream returns. None: `items` unchanged."""
    if punctuator is None:
        return (yield from items)
    before: Segment | None = None
    held: Segment | None = None
    try:
        while True:
            try:
                item = next(items)
            except StopIteration as stop:
                if held is not None:
                    yield punctuator.punctuate_one(held, before, None)
                return stop.value
            if not isinstance(item, Segment):
                yield item
                continue
            if held is not None:
                yield punctuator.punctuate_one(held, before, item)
            before, held = held, item
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


@cache
def default_punctuator() -> Punctuator:
    """The shipped model, loaded once per process."""
    return Punctuator.load(DEFAULT_DIR)
