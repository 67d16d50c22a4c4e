"""Character n-gram language models: estimation, ARPA files, interpolation.

A Mandarin character CTC model writes one character per token, so its language model is a
character n-gram: P(next character | the previous n − 1). This module estimates one from plain
sentences in well under a second for thousands of sentences (a demo model's training text, a
user's domain text), reads and writes it as an ARPA file (the standard back-off format KenLM,
SRILM and every decoder read), and mixes several by linear interpolation.

Estimation: interpolated Kneser-Ney (Chen & Goodman, "An empirical study of smoothing
techniques for language modeling", 1998, eq. 7-9) with one absolute discount per order,
D = n1 / (n1 + 2·n2) (n1, n2: how many n-grams of that order occur once, twice). The highest
order uses counts; lower orders use continuation counts (how many distinct characters precede
an n-gram), except n-grams that start at the sentence start, which nothing can precede. The
unigram level is interpolated with a uniform distribution over the vocabulary (every character
the decoder can write, seen in the text or not), so no character gets probability 0.

Back-off form: an interpolated model is stored exactly as an ARPA model. For a seen n-gram
(h, w) the table holds its interpolated probability; for a context h the back-off weight
γ(h) = D·N1+(h•) / c(h•); an unseen (h, w) gets γ(h)·P(w | h without its first character).

Sentences are wrapped in <s> … </s>; the decoder scores </s> when an utterance ends.
"""

from __future__ import annotations

import gzip
import io
import math
import re
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import atomic_write_text

if TYPE_CHECKING:
    from .normalize import NormalizeOptions

__all__ = [
    "BOS",
    "EOS",
    "UNK",
    "CharNgram",
    "Interpolated",
    "LanguageModel",
    "read_arpa",
    "split_sentences",
    "train_ngram",
]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
_LOG10 = math.log(10.0)
# The floor where a token is not even in the vocabulary (log10 ARPA convention: −99 = never).
_NEVER = -99.0
_NEVER_P = 10.0**_NEVER
# The largest log10 value a float holds as a power of 10 (10 ** 308.25 is the largest float).
_LOG10_MAX = 308.0
# Sentence ends in running text: a domain text may be a document, not one sentence a line.
_SENTENCE_END = re.compile(r"[。！？；!?;\n\r…]+")


class LanguageModel:
    """What the beam search asks of a language model."""

    order: int

    def logprob(self, context: tuple[str, ...], token: str) -> float:
        """Natural-log P(token | context); `context` ends with the previous token and starts
        with BOS at a sentence start (only its last order − 1 tokens matter)."""
        raise NotImplementedError


class CharNgram(LanguageModel):
    """A back-off n-gram (ARPA semantics): `probs[ngram]` and `backoffs[context]` are linear
    probabilities and weights, n-grams and contexts are tuples of tokens."""

    def __init__(self, order: int, probs: dict[tuple, float], backoffs: dict[tuple, float]):
        if order < 1:
            raise ValueError(f"order={order}: an n-gram has order 1 or more")
        self.order = order
        self.probs = probs
        self.backoffs = backoffs
        # What a token the table lacks gets: <unk>'s probability, or where the file has no
        # <unk> (SRILM without -unk) the lowest unigram's (<s> and "never" aside), so an unknown
        # character is unlikely, not impossible (a log10 P near -228 made the search drop it).
        unk = probs.get((UNK,))
        if unk is None:
            seen = (p for g, p in probs.items() if len(g) == 1 and g != (BOS,) and p > _NEVER_P)
            unk = min(seen, default=0.0)
        self._unk = unk

    @property
    def vocab(self) -> set[str]:
        return {g[0] for g in self.probs if len(g) == 1}

    def prob(self, context: tuple[str, ...], token: str) -> float:
        """Linear P(token | context) by back-off."""
        h = tuple(context[-(self.order - 1) :]) if self.order > 1 else ()
        weight = 1.0
        probs, backoffs = self.probs, self.backoffs
        while True:
            p = probs.get((*h, token))
            if p is not None:
                return weight * p
            if not h:
                return weight * self._unk
            weight *= backoffs.get(h, 1.0)
            h = h[1:]

    def logprob(self, context: tuple[str, ...], token: str) -> float:
        p = self.prob(context, token)
        return math.log(p) if p > 0 else _NEVER * _LOG10

    # ---- ARPA ------------------------------------------------------------------------------
    def arpa(self) -> str:
        """The model as ARPA text (log10 probabilities and back-off weights)."""
        by_order: list[list[tuple]] = [[] for _ in range(self.order)]
        for g in self.probs:
            by_order[len(g) - 1].append(g)
        has_bow = {h for h in self.backoffs if len(h) < self.order}
        out = io.StringIO()
        out.write("\\data\\\n")
        for k, grams in enumerate(by_order, 1):
            out.write(f"ngram {k}={len(grams)}\n")
        for k, grams in enumerate(by_order, 1):
            out.write(f"\n\\{k}-grams:\n")
            for g in sorted(grams):
                p = self.probs[g]
                lp = math.log10(p) if p > 0 else _NEVER
                line = f"{lp:.6f}\t{' '.join(g)}"
                if g in has_bow and k < self.order:
                    line += f"\t{math.log10(max(self.backoffs[g], 1e-99)):.6f}"
                out.write(line + "\n")
        out.write("\n\\end\\\n")
        return out.getvalue()

    def write_arpa(self, path: str | Path) -> Path:
        """Write the ARPA file atomically (gzip-compressed when the name ends in .gz)."""
        path = Path(path)
        text = self.arpa()
        if path.suffix == ".gz":
            tmp = path.with_name(f".{path.name}.tmp")
            try:
                with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=9) as f:
                    f.write(text)
                tmp.replace(path)
            except BaseException:  # a full disk: no partial file left behind
                tmp.unlink(missing_ok=True)
                raise
            return path
        return atomic_write_text(path, text)


def read_arpa(path: str | Path) -> CharNgram:
    """Read an ARPA file (plain or .gz); tokens are whatever the file's n-grams are made of.
    ValueError for anything that is not a whole ARPA file: damaged compression, a line that is
    not an n-gram, no \\end\\ line or fewer n-grams than its \\data\\ header counts (a copy
    cut short would otherwise read as a smaller model)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:  # utf-8-sig: a byte-order mark (Notepad's "UTF-8 with BOM") is not part of \data\
        with opener(path, "rt", encoding="utf-8-sig") as f:
            model = _parse_arpa(f, path)
            f.read()  # on to the end, where gzip checks the data against its CRC
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:  # a damaged or cut-short .gz
        raise ValueError(f"{path}: damaged or cut short ({e})") from e
    return model


def _parse_arpa(lines: Iterable[str], path: Path) -> CharNgram:
    """The model in an ARPA file's lines, checked against the counts of its header; a
    ValueError names the line (numbered from 1) of what does not read."""
    declared: dict[int, int] = {}  # the \data\ header's count of each order
    read: dict[int, int] = defaultdict(int)
    probs: dict[tuple, float] = {}
    backoffs: dict[tuple, float] = {}
    section: int | None = None  # None: before \data\ (comments), 0: in it, k: the k-grams
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if line == "\\end\\":
            break
        if line.startswith("\\"):
            m = re.fullmatch(r"\\(\d+)-grams:", line)
            if line != "\\data\\" and not m:
                raise ValueError(f"{path}: {line!r} is not an ARPA section")
            section = int(m.group(1)) if m else 0
            continue
        if section == 0:
            m = re.fullmatch(r"ngram\s+(\d+)\s*=\s*(\d+)", line)
            if m:
                declared[int(m.group(1))] = int(m.group(2))
            continue
        if section is None:
            continue
        parts = line.split()
        if len(parts) < 1 + section:
            raise ValueError(f"{path} line {number}: bad {section}-gram line {line!r}")
        gram = tuple(parts[1 : 1 + section])
        probs[gram] = _power10(parts[0], path, number)
        if len(parts) > 1 + section:
            backoffs[gram] = _power10(parts[1 + section], path, number)
        read[section] += 1
    else:  # the lines ran out before \end\
        raise ValueError(f"{path}: no \\end\\ line: the file is cut short")
    order = max((k for k, n in declared.items() if n > 0), default=0)
    if order == 0:
        raise ValueError(f"{path}: no n-gram counts in a \\data\\ header (not an ARPA file?)")
    for k in sorted(set(declared) | set(read)):
        if read[k] != declared.get(k, 0):
            raise ValueError(
                f"{path}: {read[k]} {k}-grams where its header counts {declared.get(k, 0)}: "
                "the file is damaged or cut short"
            )
    return CharNgram(order, probs, backoffs)


def _power10(text: str, path: Path, line: int) -> float:
    """10 ** an ARPA log10 value; ValueError naming the file and line for what is not one
    (not a number, nan, or beyond a float)."""
    try:
        value = float(text)
    except ValueError as e:
        raise ValueError(f"{path} line {line}: {text!r} is not a number") from e
    if math.isnan(value) or value > _LOG10_MAX:
        raise ValueError(
            f"{path} line {line}: {text!r} is not a log10 probability or back-off weight"
        )
    return 10.0**value


def split_sentences(text: str, options: NormalizeOptions | None = None) -> list[str]:
    """Sentences of a plain text, normalized as transcripts are (engine.normalize: punctuation
    and spaces removed, Traditional → Simplified, …; `options`: other rewrites, e.g. none to
    Simplified for a model that writes Traditional): split at lines and sentence-ending marks."""
    from .normalize import normalize_text

    out = []
    for piece in _SENTENCE_END.split(text):
        s = normalize_text(piece, options)
        if s:
            out.append(s)
    return out


def _discount(counts: Iterable[int]) -> float:
    n1 = n2 = 0
    for c in counts:
        if c == 1:
            n1 += 1
        elif c == 2:
            n2 += 1
    if n1 == 0:
        return 0.5
    return min(0.95, max(0.05, n1 / (n1 + 2 * n2)))


def train_ngram(
    sentences: Iterable[str | Sequence[str]], order: int = 4, vocab: Iterable[str] = ()
) -> CharNgram:
    """Interpolated Kneser-Ney n-gram of `order` over the characters of `sentences` (each a
    string, one token per character, or a sequence of tokens). `vocab`: further tokens the
    model must give a probability (the decoder's characters), beside those seen."""
    if order < 1:
        raise ValueError(f"order={order}: an n-gram has order 1 or more")
    counts: list[dict[tuple, int]] = [defaultdict(int) for _ in range(order + 1)]
    for sentence in sentences:
        toks = (BOS, *sentence, EOS)
        if len(toks) == 2:
            continue
        for i in range(1, len(toks)):
            for k in range(1, min(order, i + 1) + 1):
                counts[k][toks[i - k + 1 : i + 1]] += 1
    # continuation counts: N1+(• g) = distinct tokens seen before g
    continuation: list[dict[tuple, int]] = [defaultdict(int) for _ in range(order + 1)]
    for k in range(2, order + 1):
        for g in counts[k]:
            continuation[k - 1][g[1:]] += 1
    words = {g[0] for g in counts[1]} | set(vocab)
    words -= {BOS, UNK}
    words.add(EOS)
    n_vocab = len(words)  # <unk> gets the floor too, outside the normalized vocabulary
    probs: dict[tuple, float] = {}
    backoffs: dict[tuple, float] = {}
    model = CharNgram(order, probs, backoffs)
    for k in range(1, order + 1):
        if k == order:
            c = {g: n for g, n in counts[k].items() if g[-1] != BOS}
        else:  # n-grams at the sentence start have no left context: their own counts
            c = {
                g: (n if g[0] == BOS else continuation[k][g])
                for g, n in counts[k].items()
                if g[-1] != BOS
            }
        total: dict[tuple, int] = defaultdict(int)
        types: dict[tuple, int] = defaultdict(int)
        for g, n in c.items():
            total[g[:-1]] += n
            types[g[:-1]] += 1
        d = _discount(c.values())
        gamma = {h: d * types[h] / t for h, t in total.items()}
        if k == 1:
            floor = gamma.get((), 1.0) / n_vocab
            for w in words:
                probs[(w,)] = max(c.get((w,), 0) - d, 0) / total[()] + floor if c else floor
            probs[(UNK,)] = floor
            probs[(BOS,)] = 0.0
            model._unk = floor
        else:
            new = {
                g: max(n - d, 0) / total[g[:-1]] + gamma[g[:-1]] * model.prob(g[1:-1], g[-1])
                for g, n in c.items()
            }
            probs.update(new)
        for h, value in gamma.items():
            if h:
                backoffs[h] = value
    for g in list(probs):  # every context in the table can be extended: give it a weight
        if len(g) < order and g not in backoffs and g[-1] != EOS:
            backoffs[g] = 1.0
    return model


class Interpolated(LanguageModel):
    """Linear interpolation P = Σ λ_i P_i of models over the same tokens (weights normalized to
    sum 1): how a domain model is mixed with a general one (each sees its own order)."""

    def __init__(self, parts: Sequence[tuple[CharNgram | Interpolated, float]]):
        parts = [(lm, float(w)) for lm, w in parts if w > 0]
        if not parts:
            raise ValueError("Interpolated: give at least one model with a positive weight")
        total = sum(w for _, w in parts)
        self.parts = [(lm, w / total) for lm, w in parts]
        self.order = max(lm.order for lm, _ in parts)

    def prob(self, context: tuple[str, ...], token: str) -> float:
        """Linear P(token | context): a mixture can itself be mixed (a tuned model's own
        domain model, then the user's domain text)."""
        return sum(w * lm.prob(context, token) for lm, w in self.parts)

    def logprob(self, context: tuple[str, ...], token: str) -> float:
        p = self.prob(context, token)
        return math.log(p) if p > 0 else _NEVER * _LOG10
