"""Language-model beam search for CTC models: a model folder's n-gram, domain text, hotwords.

A CTC model scores each frame alone, so it cannot tell homophones apart (医/一, 事/是); a
language model over the characters it writes can. The beam search is flashlight-text's
lexicon-free CTC decoder (`flashlight.lib.text.decoder.LexiconFreeDecoder`, the decoder
torchaudio's `ctc_decoder` wraps; a C++ beam search in a binary wheel for Linux, macOS and
Windows). It asks a Python `LM` object for each extension's score, and that object combines:

- the model folder's character n-gram (`lm/`, see `ModelLM`), weighted by `lm_weight`;
- optionally a domain n-gram built from a plain text file (`domain_lm`, cached by the file's
  content hash), linearly interpolated with it (weight `domain_weight`);
- a per-character insertion bonus `char_bonus` (an LM favours short outputs);
- optionally hotwords (`read_hotwords`): each character that extends a hotword in progress earns
  its weight, and a partial match that breaks gives back what it earned, so only completed
  hotwords keep a bonus (contextual biasing as in icefall's ContextGraph).

Results are the same `Char` records as greedy decoding: each character of the best beam spans
its run of frames in that beam's path, its confidence is computed from the CTC posteriors at
those frames (the same measure as greedy decoding), and its alternatives are first the
characters other beams put at that time, then the next most probable characters at its frames.

A model folder's `lm/lm.json`:

    {"type": "char-ngram", "file": "char-4gram.arpa.gz", "lm_weight": 0.5, "char_bonus": 0.5}

names an ARPA file (engine.ngram reads it; any character-level ARPA works, KenLM's lmplz
output included) and the weights the search starts from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .decode import (
    ConfidenceMethod,
    aggregate,
    chars_from_runs,
    delimited_runs,
    frame_confidence,
    silent_ids,
    word_spaces,
)
from .errors import TingxieError
from .homophones import HomophoneGroups
from .ngram import BOS, EOS, CharNgram, Interpolated, LanguageModel, read_arpa, split_sentences
from .ngram import train_ngram as _train
from .normalize import NormalizeOptions, is_simplified_vocab, normalize_text
from .results import Char
from .user_cache import user_cache_dir

__all__ = [
    "DOMAIN_FILE",
    "DOMAIN_ORDER",
    "EVIDENCE",
    "LM_CONFIG",
    "LM_FOLDER",
    "MAX_CHAR_BONUS",
    "MAX_HOTWORD_CHARS",
    "MAX_HOTWORD_WEIGHT",
    "BeamDecoder",
    "BeamOptions",
    "Hotword",
    "LmError",
    "ModelLM",
    "add_domain_lm",
    "beam_agreement",
    "build_model_lm",
    "check_decoding_files",
    "decoder_chars",
    "describe_decoder",
    "domain_lm",
    "lm_cache_dir",
    "neighbour_min",
    "read_hotwords",
    "searched_frames",
    "text_sentences",
]

log = logging.getLogger("tingxie.lm")

LM_FOLDER = "lm"
LM_CONFIG = "lm.json"
DOMAIN_ORDER = 4  # the domain model's order (a few hundred sentences: 4-grams still help)
# Bumped when the estimator or the text's normalization changes, so cached domain models are
# rebuilt (2: text kept Traditional for a model that writes Traditional characters).
_ESTIMATOR_VERSION = 2
# What `BeamDecoder.evidence` measures of each character of the best beam, in its columns: the
# raw confidence measure (log), the CTC posterior of the chosen character itself (log; lower
# than the frames' best where the LM overrode the acoustics), the beams' agreement on it, its
# LM log-probability after the characters before it, the margin between its frames' two most
# probable outputs (log), and the lower of its neighbours' LM log-probabilities and log
# confidences (errors come in runs: a misheard syllable drags the LM's choice of the next).
# The acoustic measure alone ranks errors poorly after beam search, because an LM's homophone
# choice leaves the frames' posteriors unchanged; engine.calibration maps these to a probability.
EVIDENCE = (
    "log_confidence",
    "log_chosen",
    "beam_agreement",
    "lm_logprob",
    "log_margin",
    "neighbour_lm_logprob",
    "neighbour_log_confidence",
)
_LOG_FLOOR = 1e-4  # probabilities are clipped here before the log
# flashlight's search orders equal-scored candidates by their states' memory addresses, so
# exact ties (common in bf16 logits) made one output decode to different texts from one call to
# the next. Each score gets a fixed pseudo-random offset below this many nats first: every tie
# is then broken the same way each time, and no real difference is (at most 1e-3 nats over a
# hundred frames).
_TIE_BREAK = 1e-5
_TIE_ROWS = 256
# Bounds of the weights a user may set (lm.json, a hotword list), in nats. A character's
# acoustic log-probability spans about 0 to -10 nats, so a bonus beyond these outweighs all
# the audio says: tens of nats per character wrote other characters than spoken, and 1e308
# overflowed to inf, then NaN, and the search wrote nothing.
MAX_CHAR_BONUS = 10.0
MAX_HOTWORD_WEIGHT = 100.0
# The longest hotword, in characters once normalized: room for a long name or term, a Latin one
# spelled out included. The search keeps every prefix of every term, memory quadratic in a
# term's length: a line of 8 000 characters (running text pasted into the list) took 0.26 GB,
# one of 200 000 had the process killed. Running text belongs in the domain text.
MAX_HOTWORD_CHARS = 50
# Characters of a too-long term a message quotes.
_TERM_SHOWN = 20
# Share of a model's characters its LM must know (have a unigram of) to be its LM: below it
# the file is over another vocabulary (pinyin syllables, words, another model's characters)
# and would score every character by its floor.
_MIN_COVERAGE = 0.5


class LmError(TingxieError, ValueError):
    """A language model, domain text or hotword list could not be used."""


@dataclass(frozen=True, slots=True)
class BeamOptions:
    """How the beam search weighs the language model and how wide it searches."""

    # Weight of the LM's natural-log probability against the acoustic log-probabilities (α).
    lm_weight: float = 0.5
    # Added per character written (β, nats): offsets the LM's preference for short outputs.
    char_bonus: float = 0.5
    # Share of the domain model in the mixture with the general one (when domain text is given).
    domain_weight: float = 0.5
    # Share of a tuned model's own domain n-gram (its training transcripts, `add_domain_lm`).
    # Chosen on the 25 medicine dev sentences, decoded by three models tuned by bench_learn.py
    # with the n-gram of the corrections alone (2026-12-04; base 35.2 %): CER 23.7 / 23.3 /
    # 27.0 % at 0.25, 23.0 / 23.3 / 25.9 % at 0.5, 24.1 % at 0.75 (the first); general dev
    # 0.2 % at both. 0.25 had been chosen (2026-12-02) when that n-gram also held the 480
    # general sentences the bench replays, which the domain's own n-gram should not.
    tuned_domain_weight: float = 0.5
    # Hotword bonus per character (nats) where the hotword list gives no weight of its own.
    # Chosen on the medicine dev sentences with the stage-8 demo model (bench_lm's hotwords:
    # missed terms 14 -> 6 of 19 at 5, 9 at 3 and 4); the general held-out CER moves by +0.05
    # points with the list on (as at 3), +0.15 at 6.
    hotword_weight: float = 5.0
    # Homophone search (engine.homophones; on with domain text): a character's toneless
    # homophones are offered at this many nats below the best of them. Chosen on the 25 medicine
    # dev sentences with the stage-8 demo model and its domain text: CER 33.3 % without, 22.2 %
    # at 0.5, 26.3 % at 1, 26.7 % at 2, 30.0 % at 3.
    homophone_penalty: float = 0.5
    # Hypotheses kept per frame, characters tried per hypothesis and frame, and the score
    # margin below the best hypothesis beyond which one is dropped.
    beam_size: int = 16
    beam_size_token: int = 8
    beam_threshold: float = 25.0
    # Other beams consulted for each character's alternatives and its beam agreement.
    nbest: int = 16
    # Frames whose blank probability is at least this are searched as one frame per run
    # (`searched_frames`): every beam writes blank there, and most of speech is such frames.
    # 1.0: search every frame.
    blank_skip: float = 0.999

    def __post_init__(self) -> None:
        # Out of these ranges a search writes nothing or garbage: a negative lm_weight rewards
        # unlikely text, beam_threshold ≤ 0 prunes every hypothesis.
        _check_range("lm_weight", self.lm_weight, 0.0, math.inf)
        _check_range("char_bonus", self.char_bonus, -MAX_CHAR_BONUS, MAX_CHAR_BONUS)
        _check_range("hotword_weight", self.hotword_weight, -MAX_HOTWORD_WEIGHT, MAX_HOTWORD_WEIGHT)
        _check_range("beam_threshold", self.beam_threshold, 0.0, math.inf, above=True)
        _check_range("homophone_penalty", self.homophone_penalty, 0.0, math.inf)
        for name in ("domain_weight", "tuned_domain_weight"):
            _check_range(name, getattr(self, name), 0.0, 1.0)
        _check_range("blank_skip", self.blank_skip, 0.0, 1.0, above=True)
        for name in ("beam_size", "beam_size_token", "nbest"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name}={value!r}: must be a whole number ≥ 1")


def _check_range(name: str, value: object, low: float, high: float, *, above: bool = False) -> None:
    """ValueError naming the setting unless `value` is a finite number in [low, high] (with
    `above`: greater than low): a hand-edited lm.json may hold anything."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and math.isfinite(value) and low <= value <= high and not (above and value == low):
        return
    if high == math.inf:
        what = f"{'>' if above else '≥'} {low:g}"
    else:
        what = f"in {'(' if above else '['}{low:g}, {high:g}]"
    raise ValueError(f"{name}={value!r}: must be a number {what}")


@dataclass(frozen=True, slots=True)
class ModelLM:
    """A model folder's language model (`lm/lm.json` and the ARPA file it names), and the
    domain n-gram a tuned model carries of the text it was tuned on (`"domain"` in lm.json),
    mixed in with `options.tuned_domain_weight`: tuning teaches the acoustic model new
    characters and terms, and a general n-gram that gives them only its floor probability would
    vote them down again."""

    ngram: CharNgram
    options: BeamOptions
    path: Path
    domain: CharNgram | None = None

    def language_model(self, share: float | None = None) -> LanguageModel:
        """What the beam search scores with: the n-gram, mixed with the domain one if any
        (its share: `share`, by default the folder's `tuned_domain_weight`)."""
        w = self.options.tuned_domain_weight if share is None else share
        if self.domain is None or w <= 0:
            return self.ngram
        return Interpolated([(self.ngram, 1 - w), (self.domain, w)])

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> ModelLM | None:
        """The LM in `folder/lm/`, or None when the folder has none. LmError when it cannot
        be read (lm.bad_folder), when an n-gram knows under half the characters of the
        folder's model (its vocab.json; lm.other_vocabulary), or when a setting of lm.json is
        out of range (lm.bad_setting)."""
        folder = Path(folder)
        config_path = folder / LM_FOLDER / LM_CONFIG
        if not config_path.is_file():
            return None
        try:
            config = _read_config(config_path)
            if config.get("type", "char-ngram") != "char-ngram":
                raise ValueError(f"type {config.get('type')!r} is not char-ngram")
            paths = [config_path.parent / config["file"]]
            if config.get("domain"):
                paths.append(config_path.parent / config["domain"]["file"])
            ngram, *domain = [_read_arpa_cached_at(path) for path in paths]
            chars = _vocab_chars(folder) if (folder / "vocab.json").is_file() else []
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise LmError("lm.bad_folder", path=config_path.parent, detail=e) from e
        for path, model in zip(paths, (ngram, *domain), strict=True):
            _check_coverage(model, chars, path)
        known = {f for f in BeamOptions.__dataclass_fields__ if f in config}
        try:
            options = BeamOptions(**{f: config[f] for f in known})
        except ValueError as e:
            raise LmError("lm.bad_setting", path=config_path, detail=e) from e
        return cls(ngram, options, config_path.parent, domain[0] if domain else None)

    def write(self, folder: str | os.PathLike, extra: dict | None = None) -> Path:
        """Write the n-gram and its settings into `folder/lm/` (a model folder)."""
        target = Path(folder) / LM_FOLDER
        target.mkdir(parents=True, exist_ok=True)
        name = f"char-{self.ngram.order}gram.arpa.gz"
        self.ngram.write_arpa(target / name)
        o = self.options
        config = {
            "type": "char-ngram",
            "file": name,
            "order": self.ngram.order,
            "lm_weight": o.lm_weight,
            "char_bonus": o.char_bonus,
            "domain_weight": o.domain_weight,
            "tuned_domain_weight": o.tuned_domain_weight,
            "beam_size": o.beam_size,
            "beam_size_token": o.beam_size_token,
            **(extra or {}),
        }
        from .atomic import atomic_write_text

        return atomic_write_text(
            target / LM_CONFIG, json.dumps(config, ensure_ascii=False, indent=2) + "\n"
        )


def _vocab_chars(folder: Path) -> list[str]:
    """The characters of the model in `folder` (its vocab.json, less special tokens and the
    word delimiter): what its LM must predict. ValueError when vocab.json is no token map."""
    vocab_map = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    if not isinstance(vocab_map, dict):
        raise ValueError("vocab.json holds no JSON object {token: id}")
    specials = {"<pad>", "<s>", "</s>", "<unk>", "|"}
    return [
        t
        for t, i in vocab_map.items()
        if isinstance(i, int) and t not in specials and not t.startswith("<")
    ]


def _check_coverage(ngram: CharNgram, chars: Sequence[str], path: Path) -> None:
    """LmError naming `path` when its n-gram knows under _MIN_COVERAGE of the model's `chars`
    (none given: nothing to compare): an LM over another vocabulary would give each character
    only its floor, and the search would write what the audio says or drop it, unguided."""
    if not chars:
        return
    known = len(ngram.vocab.intersection(chars))
    if known < _MIN_COVERAGE * len(chars):
        percent = round(100 * known / len(chars))
        raise LmError(
            "lm.other_vocabulary", path=path, known=known, total=len(chars), percent=percent
        )


@lru_cache(maxsize=4)
def _read_arpa_cached(path: str, _mtime: int) -> CharNgram:
    return read_arpa(path)


def _read_arpa_cached_at(path: Path) -> CharNgram:
    return _read_arpa_cached(str(path), path.stat().st_mtime_ns)


def _read_config(path: Path) -> dict[str, Any]:
    """An lm.json's settings (a byte-order mark, as Notepad saves one, allowed); ValueError
    when it holds no JSON object."""
    config = json.loads(path.read_text(encoding="utf-8-sig"))
    if not isinstance(config, dict):
        raise ValueError(f"{path.name} holds no JSON object {{…}} of settings")
    return config


def _normalization(vocab: Sequence[str] | None) -> NormalizeOptions:
    """How domain text and hotwords are normalized for a model that writes `vocab`: as
    transcripts are, but kept Traditional where the model writes Traditional characters (as
    engine.tune.prepare keeps its transcripts); None: any model (Simplified)."""
    return NormalizeOptions(to_simplified=vocab is None or is_simplified_vocab(vocab))


DOMAIN_FILE = f"domain-{DOMAIN_ORDER}gram.arpa.gz"


def add_domain_lm(
    lm_folder: str | os.PathLike, sentences: Sequence[str], vocab: Sequence[str]
) -> Path | None:
    """Give the LM in `lm_folder` (a copy of the base model's `lm/`) a domain n-gram of the
    text a model was tuned on, over `vocab` (the tuned model's characters, new ones included),
    recorded in its lm.json. Repeated sentences count once (a job may repeat its domain rows
    against a replayed general set). Returns the domain file, or None when no sentence is left
    (the LM is then left as it was)."""
    from .atomic import atomic_write_text

    folder = Path(lm_folder)
    normalize = _normalization(vocab)
    unique = list(dict.fromkeys(s for text in sentences for s in split_sentences(text, normalize)))
    if not unique:
        return None
    model = _train(unique, DOMAIN_ORDER, vocab)
    path = model.write_arpa(folder / DOMAIN_FILE)
    config_path = folder / LM_CONFIG
    config = _read_config(config_path)
    config["domain"] = {"file": DOMAIN_FILE, "order": DOMAIN_ORDER, "sentences": len(unique)}
    atomic_write_text(config_path, json.dumps(config, ensure_ascii=False, indent=2) + "\n")
    return path


def lm_cache_dir() -> Path:
    """Where domain models built from text are kept (the user's cache folder, or
    TINGXIE_LM_CACHE)."""
    return user_cache_dir("lm", "TINGXIE_LM_CACHE")


def domain_lm(
    text_file: str | os.PathLike, vocab: Sequence[str], order: int = DOMAIN_ORDER
) -> CharNgram:
    """A character n-gram of a plain text file (sentences split at lines and sentence marks,
    normalized as transcripts are), over `vocab` (the decoder's characters). Built once per
    content: the ARPA file is cached under `lm_cache_dir()` by the SHA-256 of the text, the
    order, the vocabulary and the estimator version. A text with no character of `vocab` is
    refused (LmError): its model would give each character the same probability."""
    path = Path(text_file)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise LmError("lm.domain_unreadable", path=path, detail=e) from e
    digest = hashlib.sha256()
    for part in (data, f"|{order}|{_ESTIMATOR_VERSION}|".encode(), "".join(vocab).encode()):
        digest.update(part)
    cached = lm_cache_dir() / f"domain-{digest.hexdigest()[:24]}.arpa.gz"
    if cached.is_file():
        try:
            return _read_arpa_cached(str(cached), cached.stat().st_mtime_ns)
        except (OSError, ValueError):
            log.warning("cached domain model %s unreadable: rebuilding it", cached)
    sentences = split_sentences(text, _normalization(vocab))
    if not sentences:
        raise LmError("lm.domain_empty", path=path)
    known = set(vocab)
    if not any(c in known for s in sentences for c in s):  # English notes, pinyin, …
        raise LmError("lm.domain_unusable", path=path)
    model = _train(sentences, order, vocab)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        model.write_arpa(cached)
    except OSError as e:  # a read-only cache costs a rebuild next time, nothing more
        log.warning("could not cache the domain model in %s: %s", cached.parent, e)
    log.info("domain model: %d sentences of %s, cached as %s", len(sentences), path, cached)
    return model


def check_decoding_files(
    decoder: str, domain_text: str | os.PathLike | None, hotwords: str | os.PathLike | None
) -> None:
    """Raise the LmError that using these files would, before a model loads: a typo was told
    only once the model had loaded (a minute for the default one). The hotwords are read (a
    short list); the domain text is only opened, as a long corpus is read once, when used.
    Nothing for the greedy `decoder`, which reads neither (the CLI says they go unused)."""
    if decoder == "greedy":
        return
    if hotwords:
        read_hotwords(hotwords)
    if domain_text:
        try:
            with open(domain_text, "rb"):  # a folder fails here too (IsADirectoryError)
                pass
        except OSError as e:
            raise LmError("lm.domain_unreadable", path=Path(domain_text), detail=e) from e


@dataclass(frozen=True, slots=True)
class Hotword:
    """A term to favour, and its bonus per character (None: BeamOptions.hotword_weight)."""

    text: str
    weight: float | None = None


# A Chinese term, a space and a number: a weight after a space, as this app's own tip showed
# until 2026-12 (a tab now); read as part of the term it made one no model can write.
_SPACED_WEIGHT = re.compile(r"^.*[\u3400-\u9fff].*\s[-+]?(\d+\.?\d*|\.\d+)$")


def read_hotwords(
    path: str | os.PathLike, vocab: Sequence[str] | None = None
) -> tuple[Hotword, ...]:
    """One term per line (at most MAX_HOTWORD_CHARS characters), optionally followed by a tab
    and a weight (nats per character, at most MAX_HOTWORD_WEIGHT either way); only a tab, so
    that a number ending a term ("COVID 19", "B超2") stays in it; a Chinese term, a space and a
    number is refused (LmError "lm.hotword_space_weight") as the weight it was meant to be.
    Blank lines and lines starting with # are skipped. Terms are normalized as transcripts are
    (punctuation and spaces removed, Simplified characters), but stay Traditional for a model
    whose characters `vocab` are Traditional."""
    normalize = _normalization(vocab)
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise LmError("lm.hotwords_unreadable", path=path, detail=e) from e
    out: dict[str, Hotword] = {}
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        text, tab, written = line.rpartition("\t")
        weight = None
        if not tab:
            text = line
            if _SPACED_WEIGHT.match(line):
                raise LmError("lm.hotword_space_weight", path=path, line=n, text=line)
        else:
            try:
                weight = float(written)
            except ValueError:
                weight = math.nan
            if not math.isfinite(weight):
                raise LmError("lm.hotword_weight", path=path, line=n, text=line)
            if abs(weight) > MAX_HOTWORD_WEIGHT:  # 1e308 overflowed the search to NaN
                raise LmError(
                    "lm.hotword_weight_range",
                    path=path,
                    line=n,
                    text=line,
                    limit=MAX_HOTWORD_WEIGHT,
                )
        term = normalize_text(text, normalize)
        if len(term) > MAX_HOTWORD_CHARS:
            shown = term[:_TERM_SHOWN] + "…"
            raise LmError(
                "lm.hotword_too_long",
                path=path,
                line=n,
                text=shown,
                length=len(term),
                limit=MAX_HOTWORD_CHARS,
            )
        if term:
            out[term] = Hotword(term, weight)
    return tuple(out.values())


def _writable_hotwords(
    hotwords: Sequence[Hotword], chars: Sequence[str], source: object
) -> tuple[Hotword, ...]:
    """The hotwords the model can write with `chars` (`decoder_chars`). A term with a character
    it lacks (B超 on a model without Latin letters) could never match: it is left out, with a
    warning naming it and those characters, rather than counted as in use."""
    known = set(chars)
    kept, unwritable = [], []
    for hw in hotwords:
        missing = "".join(dict.fromkeys(c for c in hw.text if c not in known))
        if missing:
            unwritable.append(f"{hw.text} ({missing})")
        else:
            kept.append(hw)
    if unwritable:
        log.warning(
            "%s: hotwords not used, the model cannot write them (the characters in brackets): "
            "%s; write them in characters the model has, or remove them",
            source,
            ", ".join(unwritable),
        )
    return tuple(kept)


class _Biasing:
    """Hotword prefixes with the bonus a match of each has earned so far, walked as
    Aho-Corasick walks a trie: the state holds the longest hotword prefix the text ends with, so
    a hotword that begins a longer one (阿司, 阿司匹林) leaves the longer one's match going.

    A match that breaks gives back what it earned beyond what it keeps: the hotwords completed
    inside its text, each character at the weight of the heaviest one that covers it, each term
    at its own weight (血压 0.5 beside 血压计 5 keeps 1 nat, not 血压计's 10), and terms ending
    inside a longer one's unfinished match included (血压 in 高血压 of 高血压药: the output
    links of Aho-Corasick). A state is (the hotword prefix matched so far, the hotword last
    completed while the match since has continued from it): a term repeated back to back earns
    nothing the second time, which keeps a strong bonus from writing a term twice over its one
    stretch of audio."""

    START: tuple[str, str] = ("", "")

    def __init__(self, hotwords: Sequence[Hotword], default_weight: float) -> None:
        self.earned: dict[str, float] = {"": 0.0}
        own: dict[str, float] = {}  # each hotword's own weight per character
        self.open: set[str] = set()  # prefixes a longer hotword goes on from
        for hw in hotwords:
            w = default_weight if hw.weight is None else hw.weight
            for k in range(1, len(hw.text) + 1):
                p = hw.text[:k]
                self.earned[p] = max(self.earned.get(p, -math.inf), w * k)
            own[hw.text] = max(own.get(hw.text, -math.inf), w)
            self.open.update(hw.text[:k] for k in range(len(hw.text)))
        self.complete = set(own)
        # What a match of each prefix keeps when it breaks; while it goes on it holds at least
        # that much.
        self.kept = self._kept(own)
        for p, value in self.kept.items():
            self.earned[p] = max(self.earned[p], value)
        self.longest = max((len(p) for p in self.earned), default=0)

    def _kept(self, own: dict[str, float]) -> dict[str, float]:
        """For each prefix, the bonus of the hotwords completed inside it: each character at
        the weight of the heaviest covering it (阿司 inside 阿司匹林 adds nothing at one
        weight). The completed hotwords ending at a prefix are found through its failure link
        (its longest proper suffix that is a prefix too) and their chain."""
        fail: dict[str, str] = {"": ""}
        ending: dict[str, str] = {"": ""}  # the longest hotword a prefix ends with ("": none)
        for p in sorted(self.earned, key=len)[1:]:
            f = fail[p[:-1]] if len(p) > 1 else None
            while f is not None and f + p[-1] not in self.earned:
                f = fail[f] if f else None
            fail[p] = "" if f is None else f + p[-1]
            ending[p] = p if p in own else ending[fail[p]]
        kept = {"": 0.0}
        for term in own:
            cover: list[float | None] = [None] * len(term)
            total = 0.0
            for k in range(1, len(term) + 1):
                h = ending[term[:k]]
                while h:
                    w = own[h]
                    for i in range(k - len(h), k):
                        if cover[i] is None or w > cover[i]:
                            total += w - (cover[i] or 0.0)
                            cover[i] = w
                    h = ending[fail[h]]
                kept[term[:k]] = total
        return kept

    def step(self, state: tuple[str, str], token: str) -> tuple[tuple[str, str], float]:
        """The state after `token` and the bonus of the step (negative: a partial match broke
        and gives back what it earned; a completed hotword keeps its bonus)."""
        matched, last = state
        candidate = (matched + token)[-self.longest :]
        p = next((candidate[-k:] for k in range(len(candidate), 0, -1)
                  if candidate[-k:] in self.earned), "")  # fmt: skip
        continued = len(p) == len(matched) + 1  # the match grew: nothing was dropped
        through_last = bool(last) and matched.startswith(last)  # the match began with `last`
        since_last = len(matched) - len(last) if through_last else len(matched)
        # the match still runs from `last`: through it, or from where it ended
        after_last = continued or len(p) == since_last + 1
        if p == last and p in self.complete and after_last:  # the same term again, back to back
            # back to what the text kept before this match: the repeat keeps nothing of its own
            repeat = self.earned[p] - self.earned[matched] - (0.0 if through_last else self.kept[p])
            return (p if p in self.open else "", last), repeat
        # a match that broke keeps what it completed, less what its new match (p) began with
        kept = 0.0 if continued else self.kept[matched] - self.kept[p[:-1]]
        bonus = self.earned[p] - self.earned[matched] + kept
        if p in self.complete:
            # a term completed on the way to repeating `last` (阿司 of 阿司匹林阿司匹林) leaves it
            on_the_way = after_last and last.startswith(p)
            return (p if p in self.open else "", last if on_the_way else p), bonus
        return (p, last if after_last else ""), bonus

    def end(self, state: tuple[str, str]) -> float:
        """The bonus of ending in `state`: a match in progress gives back what it earned beyond
        what the hotwords completed inside it keep."""
        return self.kept[state[0]] - self.earned[state[0]]


@cache
def _search_thread() -> ThreadPoolExecutor:
    """The thread flashlight's searches run on. A search releases the GIL and calls the
    Python LM back through pybind11, which takes the GIL with the thread state it stored for
    the thread that first imported flashlight. On the app's engine thread (a QThread) PySide
    enters Python with a new thread state for each queued call and deletes it after, so a
    later search took the GIL with a deleted state: a hang or a segfault in take_gil
    (tests/test_lm.py, tests/test_app_tune.py). On a thread Python started the state lasts
    as long as the thread; searches wait their turn there (they hold the GIL most of their
    time anyway)."""
    return ThreadPoolExecutor(1, thread_name_prefix="tingxie-beam-search")


class _PyLM:
    """Builds the flashlight LM object (imported lazily: the module is optional at import)."""

    cls: Any = None

    @classmethod
    def make(cls, scorer: _Scorer) -> Any:
        if cls.cls is None:
            from flashlight.lib.text.decoder import LM, LMState

            class FlashlightLM(LM):
                def __init__(self, scorer: _Scorer) -> None:
                    LM.__init__(self)
                    self.scorer = scorer
                    self.states: dict[Any, tuple[tuple[str, ...], tuple[str, str]]] = {}

                def start(self, start_with_nothing: bool) -> Any:
                    state = LMState()
                    self.states[state] = ((BOS,), _Biasing.START)
                    return state

                def score(self, state: Any, token: int) -> tuple[Any, float]:
                    out = state.child(token)
                    context, matched = self.states[state]
                    new, value = self.scorer.extend(context, matched, token)
                    self.states.setdefault(out, new)
                    return out, value

                def finish(self, state: Any) -> tuple[Any, float]:
                    context, matched = self.states[state]
                    return state, self.scorer.end(context, matched)

            cls.cls = FlashlightLM
        return cls.cls(scorer)


class _Scorer:
    """Scores of extending an LM state (context, hotword match) by one output id."""

    def __init__(
        self,
        lm: LanguageModel | None,
        vocab: Sequence[str],
        silent: np.ndarray,
        options: BeamOptions,
        hotwords: Sequence[Hotword],
    ) -> None:
        self.lm = lm
        self.vocab = vocab
        self.silent = silent
        self.alpha = options.lm_weight
        self.beta = options.char_bonus
        self.keep = max(1, (lm.order if lm is not None else 1) - 1)
        self.bias = _Biasing(hotwords, options.hotword_weight) if hotwords else None
        self.cache: dict[tuple[tuple[str, ...], str], float] = {}

    def _lm(self, context: tuple[str, ...], token: str) -> float:
        if self.lm is None:
            return 0.0
        key = (context, token)
        value = self.cache.get(key)
        if value is None:
            if len(self.cache) > 2_000_000:
                self.cache.clear()
            value = self.cache[key] = self.alpha * self.lm.logprob(context, token)
        return value

    def extend(
        self, context: tuple[str, ...], matched: tuple[str, str], token: int
    ) -> tuple[tuple[tuple[str, ...], tuple[str, str]], float]:
        if self.silent[token]:  # blank, word delimiter: no character, no score
            return (context, matched), 0.0
        char = self.vocab[token]
        value = self._lm(context, char) + self.beta
        if self.bias is not None:
            matched, bonus = self.bias.step(matched, char)
            value += bonus
        return ((*context, char)[-self.keep :], matched), value

    def end(self, context: tuple[str, ...], matched: tuple[str, str]) -> float:
        value = self._lm(context, EOS)
        if self.bias is not None:
            value += self.bias.end(matched)
        return value


@dataclass(slots=True)
class _Path:
    """One beam's characters: output ids and frame runs [start, end); `delimited[k]`: a word
    delimiter between characters k and k + 1 (decode.word_spaces)."""

    ids: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    score: float
    delimited: np.ndarray


def _path_runs(
    path: np.ndarray, silent: np.ndarray, vocab: Sequence[str], word_delimiter: str
) -> tuple[np.ndarray, ...]:
    """Characters of a frame-level CTC path: (ids, first frame, end frame) of each run, and
    whether a word delimiter lies between each character and the next."""
    if len(path) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0, dtype=bool)
    change = np.flatnonzero(path[1:] != path[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(path)]])
    ids = path[starts]
    keep = ~silent[ids]
    delimited = delimited_runs(ids, keep, vocab[: len(silent)], word_delimiter)
    return ids[keep], starts[keep], ends[keep], delimited


def searched_frames(log_probs: np.ndarray, blank_id: int, blank_skip: float) -> np.ndarray:
    """Indices of the frames a beam search needs: all but the first of each run of frames
    whose blank probability is at least `blank_skip` are dropped. One blank frame of a run
    stays, so a character repeated across it still reads twice; the search's cost is per
    frame (its hypotheses times their extensions, each scored by the LM), and blank-certain
    frames (the silences, and the frames between characters) only ever extend by blank."""
    if blank_skip >= 1.0 or len(log_probs) == 0:
        return np.arange(len(log_probs))
    sure = log_probs[:, blank_id] >= math.log(blank_skip)
    repeat = np.concatenate([[False], sure[1:] & sure[:-1]])
    return np.flatnonzero(~repeat)


@cache
def _tie_offsets(outputs: int, blank_id: int) -> np.ndarray:
    """(_TIE_ROWS, outputs) offsets in [0, _TIE_BREAK), 0 for the blank, made once."""
    rng = np.random.default_rng(0)
    offsets = rng.random((_TIE_ROWS, outputs), dtype=np.float32) * np.float32(_TIE_BREAK)
    if 0 <= blank_id < outputs:
        offsets[:, blank_id] = 0.0
    return offsets


def _break_ties(scores: np.ndarray, frames: np.ndarray, blank_id: int) -> np.ndarray:
    """`scores` (rows: the recording's `frames`) with the tie offsets added, frame f taking row
    f % _TIE_ROWS: the same offset for a frame however many frames around it were skipped and
    whatever was decoded before. The blank keeps its score, so frames searched as blank alone
    (blank_skip) add nothing a full search would not."""
    return scores + _tie_offsets(scores.shape[1], blank_id)[frames % _TIE_ROWS]


@dataclass
class BeamDecoder:
    """CTC beam search with a language model, domain text and hotwords over one vocabulary.

    Build one per model and set of options (the n-gram scores are cached across calls); not
    thread-safe."""

    vocab: Sequence[str]
    blank_id: int
    special_ids: frozenset[int]
    word_delimiter: str
    lm: LanguageModel | None = None
    options: BeamOptions = field(default_factory=BeamOptions)
    hotwords: tuple[Hotword, ...] = ()
    # Offer each frame's toneless homophones too (engine.homophones; `for_model`: with domain
    # text).
    homophones: bool = False

    def __post_init__(self) -> None:
        try:
            import flashlight.lib.text.decoder  # noqa: F401
        except ImportError as e:
            raise LmError("lm.no_decoder", detail=e) from e
        self._scorers: dict[int, _Scorer] = {}
        self._groups: dict[int, HomophoneGroups] = {}

    @classmethod
    def for_model(
        cls,
        vocab: Sequence[str],
        blank_id: int,
        special_ids: frozenset[int],
        word_delimiter: str,
        *,
        model_lm: ModelLM | None = None,
        domain_text: str | os.PathLike | None = None,
        hotwords: str | os.PathLike | Sequence[Hotword] | None = None,
        options: BeamOptions | None = None,
        homophones: bool | None = None,
    ) -> BeamDecoder:
        """A decoder from a model's LM, a domain text file and a hotword file (each optional;
        options default to the model LM's). Homophone search is on with domain text unless
        `homophones` says otherwise: measured on medicine sentences written independently of
        the domain text, it took the domain text's cut from 13 % to 28 %, and on the general
        template sentences the model trained on it costs 0.5-0.7 CER points (bench_lm.py), so
        it is for speech whose words the user says are not the model's."""
        options = options or (model_lm.options if model_lm is not None else BeamOptions())
        chars = decoder_chars(vocab, blank_id, special_ids, word_delimiter)
        lm = None if model_lm is None else model_lm.language_model(options.tuned_domain_weight)
        if domain_text is not None:
            domain = domain_lm(domain_text, chars)
            lm = domain if lm is None else Interpolated(
                [(lm, 1 - options.domain_weight), (domain, options.domain_weight)]
            )  # fmt: skip
        path = hotwords if isinstance(hotwords, str | os.PathLike) else None
        if path is not None:
            hotwords = read_hotwords(path, chars)
        homophones = domain_text is not None if homophones is None else homophones
        hot = _writable_hotwords(hotwords or (), chars, "hotwords" if path is None else path)
        if not hot and path is not None:  # a file given, and not one term of it usable
            raise LmError("lm.hotwords_empty", path=path)
        return cls(vocab, blank_id, special_ids, word_delimiter, lm, options, hot, homophones)

    def _scorer(self, n_out: int) -> _Scorer:
        scorer = self._scorers.get(n_out)
        if scorer is None:
            silent = silent_ids(
                self.vocab, n_out, self.blank_id, self.special_ids, self.word_delimiter
            )
            scorer = _Scorer(self.lm, self.vocab, silent, self.options, self.hotwords)
            self._scorers[n_out] = scorer
        return scorer

    def paths(self, log_probs: np.ndarray) -> list[_Path]:
        """The final beams, best first, as character runs."""
        from flashlight.lib.text.decoder import (
            CriterionType,
            LexiconFreeDecoder,
            LexiconFreeDecoderOptions,
        )

        lp = np.asarray(log_probs, dtype=np.float32)
        if lp.ndim != 2:
            raise ValueError(f"log_probs has shape {lp.shape}; expected (frames, vocab)")
        kept = searched_frames(lp, self.blank_id, self.options.blank_skip)
        lp = np.ascontiguousarray(lp[kept])
        frames, n_out = lp.shape
        if frames == 0:
            return []
        if self.homophones:
            groups = self._groups.get(n_out)
            if groups is None:
                groups = self._groups[n_out] = HomophoneGroups.from_vocab(self.vocab, n_out)
            lp = groups.expand(lp, self.options.homophone_penalty)
        lp = _break_ties(lp, kept, self.blank_id)
        scorer = self._scorer(n_out)
        o = self.options
        decoder_options = LexiconFreeDecoderOptions(
            beam_size=o.beam_size,
            beam_size_token=min(o.beam_size_token, n_out),
            beam_threshold=o.beam_threshold,
            lm_weight=1.0,  # the scorer weighs the LM itself
            sil_score=0.0,
            log_add=False,
            criterion_type=CriterionType.CTC,
        )
        delim = self.vocab.index(self.word_delimiter) if self.word_delimiter in self.vocab else -1
        sil = delim if 0 <= delim < n_out else self.blank_id
        lm = _PyLM.make(scorer)  # referenced until the search ends: the decoder calls it
        decoder = LexiconFreeDecoder(decoder_options, lm, sil, self.blank_id, [])
        results = _search_thread().submit(decoder.decode, lp.ctypes.data, frames, n_out).result()
        del decoder, lm
        out: list[_Path] = []
        for result in results[: o.nbest]:
            path = np.asarray(result.tokens, dtype=np.int64)[1 : frames + 1]
            ids, starts, ends, gaps = _path_runs(
                path, scorer.silent, self.vocab, self.word_delimiter
            )
            # runs back on the frames of `log_probs`: from their first searched frame to the
            # end of their last
            out.append(_Path(ids, kept[starts], kept[ends - 1] + 1, float(result.score), gaps))
        return out

    def chars(
        self,
        log_probs: np.ndarray,
        *,
        frame_seconds: float,
        offset_seconds: float = 0.0,
        top_k: int = 3,
        confidence: ConfidenceMethod | None = None,
        paths: list[_Path] | None = None,
    ) -> list[Char]:
        """Decode (frames, V) log-probs into characters (see the module docstring); `paths`
        reuses a search already made (several confidence measures of one decode)."""
        paths = self.paths(log_probs) if paths is None else paths
        if not paths or len(paths[0].ids) == 0:
            return []
        best = paths[0]
        lp = np.asarray(log_probs, dtype=np.float32)
        scorer = self._scorer(lp.shape[1])
        extra = _beam_alternatives(best, paths[1:]) if top_k > 0 else None
        chars = chars_from_runs(
            lp,
            best.ids,
            best.starts,
            best.ends,
            vocab=self.vocab,
            silent=scorer.silent,
            frame_seconds=frame_seconds,
            offset_seconds=offset_seconds,
            top_k=top_k,
            confidence=confidence,
            preferred=extra,
        )
        return word_spaces(chars, best.delimited)

    def evidence(
        self,
        log_probs: np.ndarray,
        paths: list[_Path],
        confidence: ConfidenceMethod | None = None,
    ) -> np.ndarray:
        """(characters of the best beam, len(EVIDENCE)): what engine.calibration's beam map
        reads for each character (see EVIDENCE). `paths` is the search's result (`paths`)."""
        if not paths or len(paths[0].ids) == 0:
            return np.zeros((0, len(EVIDENCE)))
        best = paths[0]
        lp = np.asarray(log_probs, dtype=np.float32)
        groups = np.concatenate([[0], np.cumsum(best.ends - best.starts)[:-1]])
        frames = np.concatenate(
            [np.arange(s, e) for s, e in zip(best.starts, best.ends, strict=False)]
        )
        method = confidence or ConfidenceMethod()
        measure = aggregate(frame_confidence(lp[frames], method), groups, method.aggregation)
        lengths = (best.ends - best.starts)[:, None]
        mean = np.add.reduceat(np.exp(lp[frames]), groups, axis=0) / lengths
        chosen = mean[np.arange(len(best.ids)), best.ids]
        top2 = -np.sort(-mean, axis=1)[:, :2]
        margin = top2[:, 0] - top2[:, 1] if mean.shape[1] > 1 else top2[:, 0]
        lm = np.zeros(len(best.ids))
        if self.lm is not None:
            keep = max(1, self.lm.order - 1)
            context: tuple[str, ...] = (BOS,)
            for i, token in enumerate(best.ids):
                char = self.vocab[token]
                lm[i] = self.lm.logprob(context, char)
                context = (*context, char)[-keep:]
        log_conf = np.log(np.clip(measure, _LOG_FLOOR, 1.0))
        return np.stack(
            [
                log_conf,
                np.log(np.clip(chosen, _LOG_FLOOR, 1.0)),
                beam_agreement(paths),
                lm,
                np.log(np.clip(margin, _LOG_FLOOR, 1.0)),
                neighbour_min(lm),
                neighbour_min(log_conf),
            ],
            axis=1,
        )


def beam_agreement(paths: Sequence[_Path]) -> np.ndarray:
    """For each character of the best beam (paths[0]), the share of the beams' probability
    (softmax of their scores) whose character over most of its frames is the same one."""
    best = paths[0]
    scores = np.array([p.score for p in paths], dtype=np.float64)
    weights = np.exp(scores - scores.max())
    weights /= weights.sum()
    agree = np.zeros(len(best.ids))
    for other, w in zip(paths, weights, strict=True):
        if len(other.ids) == 0:
            continue
        overlap = np.minimum(other.ends[None, :], best.ends[:, None]) - np.maximum(
            other.starts[None, :], best.starts[:, None]
        )
        j = np.argmax(overlap, axis=1)
        same = (overlap[np.arange(len(best.ids)), j] > 0) & (other.ids[j] == best.ids)
        agree += w * same
    return agree


def neighbour_min(values: np.ndarray) -> np.ndarray:
    """Each item's lower neighbour (the one neighbour at either end; itself when alone)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return v.copy()
    left = np.concatenate([v[1:2], v[:-1]])
    right = np.concatenate([v[1:], v[-2:-1]])
    return np.minimum(left, right)


def _beam_alternatives(best: _Path, others: Sequence[_Path]) -> list[list[int]]:
    """For each character of the best beam, the different characters other beams place over
    the most of its frames (best beam first, no repeats)."""
    out: list[list[int]] = [[] for _ in range(len(best.ids))]
    for other in others:
        if len(other.ids) == 0:
            continue
        for i, (s, e, chosen) in enumerate(zip(best.starts, best.ends, best.ids, strict=True)):
            overlap = np.minimum(other.ends, e) - np.maximum(other.starts, s)
            j = int(np.argmax(overlap))
            if overlap[j] > 0:
                cand = int(other.ids[j])
                if cand != chosen and cand not in out[i]:
                    out[i].append(cand)
    return out


def decoder_chars(vocab: Sequence[str], blank_id: int, special_ids: frozenset[int], delim: str):
    """The tokens of a CTC vocabulary that are characters (what an LM over it predicts)."""
    return [
        t
        for i, t in enumerate(vocab)
        if t and t != delim and i != blank_id and i not in special_ids
    ]


def text_sentences(
    texts: Sequence[str | os.PathLike], vocab: Sequence[str] | None = None
) -> list[str]:
    """The sentences of plain text files, split and normalized as in `domain_lm` for a model
    that writes `vocab` (None: Simplified); raises LmError naming the file that cannot be read,
    or all of them when they hold no sentence."""
    normalize = _normalization(vocab)
    sentences: list[str] = []
    for text in texts:
        try:
            sentences += split_sentences(Path(text).read_text(encoding="utf-8-sig"), normalize)
        except (OSError, UnicodeDecodeError) as e:
            raise LmError("lm.domain_unreadable", path=text, detail=e) from e
    if not sentences:
        raise LmError("lm.domain_empty", path=", ".join(str(t) for t in texts))
    return sentences


def build_model_lm(
    folder: str | os.PathLike,
    texts: Sequence[str | os.PathLike],
    *,
    order: int = 4,
    options: BeamOptions | None = None,
) -> Path:
    """Estimate a character n-gram from plain text files (engine.ngram; sentences split and
    normalized as in `domain_lm`) over the characters of the model in `folder`, and write it
    with `options` into `folder/lm/`, in place of what was there (a tuned model's domain
    n-gram included: it belonged to the LM replaced). Returns the written lm.json."""
    folder = Path(folder)
    try:
        chars = _vocab_chars(folder)
    except (OSError, ValueError) as e:
        raise LmError("lm.bad_folder", path=folder, detail=e) from e
    sentences = text_sentences(texts, chars)
    ngram = _train(sentences, order, chars)
    model = ModelLM(ngram, options or BeamOptions(), folder / LM_FOLDER)
    extra = {"trained_on": [Path(t).name for t in texts], "sentences": len(sentences)}
    written = model.write(folder, extra)
    (folder / LM_FOLDER / DOMAIN_FILE).unlink(missing_ok=True)
    return written


def describe_decoder(beam: BeamDecoder | None) -> str:
    """One line saying how a transcription is decoded (the CLI prints it)."""
    if beam is None:
        return "greedy (no language model)"
    o = beam.options
    parts = []
    lm = beam.lm
    if isinstance(lm, Interpolated):
        parts.append(f"{lm.parts[0][0].order}-gram LM mixed with a domain model")
    elif lm is not None:
        parts.append(f"{lm.order}-gram LM")
    if beam.hotwords:
        parts.append(f"{len(beam.hotwords)} hotwords")
    if beam.homophones:
        parts.append(f"homophones (-{o.homophone_penalty:g})")
    what = " + ".join(parts) or "no language model"
    return (
        f"beam search, {what} (lm_weight {o.lm_weight:g}, char_bonus {o.char_bonus:g}, "
        f"beam {o.beam_size})"
    )
