"""Whisper models through faster-whisper (CTranslate2), behind the same API as the CTC models.

A Whisper folder in CTranslate2 format (model.bin, config.json, tokenizer.json and
vocabulary.*), or a Hub id naming one (Systran/faster-whisper-small), loads into a
`LoadedWhisper`; `WhisperTranscriber.transcribe` yields the same `Segment` / `Char` records and
`Progress` as `engine.transcribe.Transcriber`, cut at the same pauses (engine.vad).

Characters come from faster-whisper's word timestamps. For Mandarin a "word" is the text of
one or a few tokens that decode to whole characters (one character, or a pair such as 我们, or
one character spelled by two byte tokens), with its time span (cross-attention alignment) and
its probability (the mean of its tokens' probabilities). Its characters share the span
evenly and the probability as `MEASURES` say; its punctuation goes into the `after` of the
character before it, as the punctuation model's marks do (`word_chars`). The language is
forced to Mandarin; `TranscribeOptions.initial_prompt` steers the script and punctuation, and
the text is converted to Simplified (OpenCC) whatever the model wrote. CTranslate2 does not
expose the runner-up tokens, so characters have no alternatives.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import audio
from .calibration import Calibration, read_calibration
from .model import (
    LoadOptions,
    ModelLoadError,
    _download_finished,
    _read_json,
    hub_failure,
    hub_offline,
)
from .normalize import NormalizeOptions, convert_in_phrase, is_han_char, normalize_text
from .punctuation import ends_latin_word, is_latin, is_mark
from .registry import WHISPER, Family, _model_type, family_of, model_path
from .results import Char, Progress, Segment, TranscriptionInfo
from .transcribe import TranscribeOptions, split_segments
from .vad import PauseDetector

__all__ = [
    "DEFAULT_MEASURE",
    "MEASURES",
    "WHISPER_BASE_DIR",
    "LoadedWhisper",
    "WhisperTranscriber",
    "checked_folder",
    "is_ctranslate2",
    "is_prompt_echo",
    "is_unplaced",
    "is_whisper",
    "load_whisper",
    "measure_name",
    "word_chars",
]

log = logging.getLogger("tingxie.whisper")

# Where packaging/fetch-whisper-base.py assembles Whisper-base (the app offers it on an offline
# first start; the real-speech tests and bench use it).
WHISPER_BASE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "models" / "whisper-base"
LANGUAGE = "zh"
# Audio kept around speech where silence is skipped: by faster-whisper's filter in files
# (WhisperTranscriber._decoded, which says how it was chosen) and live (engine.whisper_stream).
SPEECH_PAD_SECONDS = 1.0
SAMPLE_RATE = audio.SAMPLE_RATE

# How a word's probability p becomes the confidence of each of its n characters (punctuation
# not counted): "shared" gives each p; "root" gives each p^(1/n), so that the n characters
# together are as likely as the word (independent characters); "power" gives each p^n.
# Measured on the 23 real clips of ../shared/audio with Whisper-base (891 characters, 98
# wrong): AUROC 0.783 root, 0.760 shared, 0.730 power; ECE 0.050, 0.069, 0.093.
MEASURES: dict[str, Callable[[float, int], float]] = {
    "root": lambda p, n: p ** (1.0 / n),
    "shared": lambda p, n: p,
    "power": lambda p, n: p**n,
}
DEFAULT_MEASURE = "root"


def measure_name(measure: str) -> str:
    """A sharing's name in reports and calibration files ("root" → "whisper_word_root")."""
    return f"whisper_word_{measure}"


# Files are read in windows of at most this much audio, cut at a pause where there is one:
# Whisper decodes 30 s at a time anyway, and hours of audio never sit in memory at once.
_WINDOW_SECONDS = 300.0
_SIMPLIFIED = NormalizeOptions(
    half_width=False, remove_punctuation=False, remove_spaces=False, lowercase=False
)
# A word shorter than this took no time: its alignment found no audio for it.
_UNPLACED_SECONDS = 0.02
# Speech (by the voice detector) between placed words, or after the last, that the decode
# passed over is decoded again where there is at least this much of it (WhisperTranscriber.
# _passed_over): more than a filler word Whisper leaves out (嗯, 啊), or a word's edges that its
# times miss.
_PASSED_OVER_SECONDS = 1.0
# A word placed over more than this per spoken character was stretched by the aligner over
# speech the decode passed over (two joined clips: 觉 at 6.48-9.44 s and 得 at 9.44-12.40 s lay
# over a whole lost sentence); one said slowly takes well under it.
_STRETCHED_SECONDS_PER_CHAR = 1.0
# How many tokens one decode may write, by the audio it is given: Mandarin said fast is about
# 7 characters a second (the fastest of the shared clips 6.9), a character one or two tokens,
# with marks and timestamps besides; where Whisper loops on a short tail (0.38 s after the text
# of one 3.5 s clip) it wrote 448 tokens at each temperature it tried, 17 s of decoding. From
# _MAX_NEW_TOKENS on (about 8 s of audio) faster-whisper's own limit applies: the model's 448
# with the prompt, which may take up to 224.
_NEW_TOKENS_PER_SECOND = 20
_MIN_NEW_TOKENS = 32
_MAX_NEW_TOKENS = 200
_COMPUTE_TYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
# What a CTranslate2 Whisper folder needs: faster-whisper looks a missing tokenizer.json up on
# the Hub (offline: "check your connection"), CTranslate2 reads its vocabulary from one of
# _VOCABULARIES (without: "Cannot load the vocabulary from the model directory"), and
# preprocessor_config.json where the model takes other than 80 mel bins (`_check_mels`).
_CT2_FILES = ("model.bin", "config.json", "tokenizer.json")
_VOCABULARIES = ("vocabulary.json", "vocabulary.txt", "vocabulary")


class WordLike(Protocol):
    """What `word_chars` reads from a faster-whisper `Word`."""

    word: str
    start: float
    end: float
    probability: float


@dataclass(slots=True)
class LoadedWhisper:
    """A faster-whisper model ready for inference, with what the app and CLI show about it."""

    model: Any  # faster_whisper.WhisperModel
    source: str  # the id or folder as given
    path: Path  # the local folder actually loaded
    device: str  # cpu or cuda
    compute_type: str  # CTranslate2's: float32, int8, float16…
    calibration: Calibration | None = None  # from the folder's calibration.json
    family: Family = WHISPER
    sampling_rate: int = SAMPLE_RATE
    attention: str = "ctranslate2"
    # What runs it (engine.model.LoadedModel.runtime names torch, onnx or onnx-int8 there):
    # always CTranslate2, whatever LoadOptions.backend asked for.
    runtime: str = "ctranslate2"

    @property
    def precision(self) -> str:
        return self.compute_type

    @property
    def dtype(self) -> str:
        return self.compute_type


def _is_ct2_folder(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def is_ctranslate2(path: Path) -> bool:
    """Whether `path` holds a CTranslate2 model (its model.bin): one with other files missing
    is such a folder too, refused by `checked_folder` naming them, never taken for
    transformers weights (a tuning job looked for model.safetensors in it)."""
    return (path / "model.bin").is_file()


def is_whisper(source: str | os.PathLike) -> bool:
    """A CTranslate2 Whisper folder, a transformers Whisper folder (refused with a way forward
    by `load_whisper`), or a Hub id that names Whisper (`engine.registry.family_of`)."""
    return family_of(source) is WHISPER


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _resolve(source: str, options: LoadOptions) -> Path:
    """The local CTranslate2 folder for `source` (downloading a Hub id when allowed); a tuning
    job's folder stands for the model it produced (`engine.registry.model_path`)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return checked_folder(model_path(path))
    from faster_whisper.utils import download_model

    offline = options.local_files_only or hub_offline()
    try:
        folder = Path(download_model(source, local_files_only=offline))
    except Exception as e:  # network, cache and auth failures all mean the same here
        code = "model.whisper_not_cached" if offline else "model.whisper_download_failed"
        raise hub_failure(code, source, e) from e
    with _download_finished(source, offline, "model.whisper_incomplete"):
        return checked_folder(folder)


def checked_folder(path: Path) -> Path:
    """`path` when it is a CTranslate2 Whisper folder, else an error saying what to do: cheap
    (the Tune page's data check runs it too). Its tokenizer.json is read first: cut short, it
    failed inside faster-whisper with a bare Exception ("stream did not contain valid UTF-8")."""
    if not _is_ct2_folder(path) and _model_type(path) == "whisper":
        raise ModelLoadError("model.whisper_transformers", path=path)  # openai/whisper-small
    missing = [f for f in _CT2_FILES if not (path / f).is_file()]
    if not any((path / f).is_file() for f in _VOCABULARIES):
        missing.append("vocabulary.txt (or vocabulary.json)")
    if missing:
        raise ModelLoadError("model.whisper_incomplete", path=path, missing=", ".join(missing))
    _read_json(path / "tokenizer.json")
    return path


def _check_mels(model: Any, path: Path) -> None:
    """Refuse a model whose mel bins the folder's feature settings do not give: without
    preprocessor_config.json faster-whisper computes 80, and a 128-bin model (large-v3) then
    failed on every file with a shape error that blamed the audio."""
    takes = int(model.model.n_mels)
    given = int(model.feature_extractor.mel_filters.shape[0])
    if takes == given:
        return
    if not (path / "preprocessor_config.json").is_file():
        raise ModelLoadError(
            "model.whisper_incomplete", path=path, missing="preprocessor_config.json"
        )
    detail = f"the model takes {takes} mel bins, preprocessor_config.json gives {given}"
    raise ModelLoadError("model.whisper_load_failed", path=path, detail=detail)


def _compute_type(precision: str, device: str) -> str:
    """CTranslate2's compute type for `precision` on `device`: "auto" is float16 on a GPU that
    runs it, else float32. A half precision asked for by name and not run there is refused,
    naming the setting, as faster-whisper and CTranslate2 refuse it (never changed unasked: a
    timing or accuracy measured in it would be another's); before, CTranslate2's refusal was
    reported as a Whisper folder that "could not be loaded"."""
    import ctranslate2

    supported = ctranslate2.get_supported_compute_types(device)
    if precision not in _COMPUTE_TYPES:
        return "float16" if device == "cuda" and "float16" in supported else "float32"
    compute_type = _COMPUTE_TYPES[precision]
    if compute_type not in supported:
        usable = [p for p, t in _COMPUTE_TYPES.items() if t in supported]
        raise ModelLoadError(
            "model.precision_unsupported",
            precision=precision,
            compute_type=compute_type,
            device=device,
            choices=", ".join(["auto", *usable]),
        )
    return compute_type


def load_whisper(source: str | os.PathLike, options: LoadOptions | None = None) -> LoadedWhisper:
    """Load a Whisper model for inference. Device "auto" picks CUDA when CTranslate2 sees a
    GPU; precision "auto" is float32 on CPUs (CTranslate2 has no fast float16 there; int8
    would change the accuracy measured here) and float16 on GPUs that run it (`_compute_type`).
    `options.backend` (torch or ONNX Runtime, for CTC models) does not apply: CTranslate2 is
    Whisper's one runtime."""
    import ctranslate2
    from faster_whisper import WhisperModel

    options = options or LoadOptions()
    path = _resolve(str(source), options)
    gpus = ctranslate2.get_cuda_device_count()
    if options.device == "cuda" and gpus == 0:
        raise ModelLoadError("model.no_cuda")
    device = "cuda" if options.device == "cuda" or (options.device == "auto" and gpus) else "cpu"
    compute_type = _compute_type(options.precision, device)
    try:
        model = WhisperModel(
            str(path), device=device, compute_type=compute_type, cpu_threads=_usable_cores()
        )
    except Exception as e:  # CTranslate2's errors, and tokenizers' bare Exception
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelLoadError("model.whisper_load_failed", path=path, detail=message) from e
    _check_mels(model, path)
    log.info("loaded Whisper %s on %s (%s)", source, device, compute_type)
    return LoadedWhisper(
        model=model,
        source=str(source),
        path=path,
        device=device,
        compute_type=compute_type,
        calibration=read_calibration(path, measure_name(DEFAULT_MEASURE)),
    )


def _is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PSZ"


def _simplified_texts(texts: Sequence[str]) -> list[str]:
    """Each text in Simplified characters, converted in its phrase."""
    return convert_in_phrase(texts, lambda t: normalize_text(t, _SIMPLIFIED))


def _space_before(chars: list[Char], word: str, text: str) -> None:
    """Put a space after the last of `chars` where faster-whisper's `word` (`text`: its
    characters as written) starts a new Latin word or number after one. Whisper starts a word
    that follows a space with one (" Deep", " Learning"), Mandarin words too (" 学习"): the
    space is kept by `ends_latin_word` only, in the `after` of the last Char, behind the marks
    already there ("Hello," is five letters, the comma and then the space in the o's `after`)."""
    if word[:1].isspace() and text and is_latin(text[0]) and chars:
        last = chars[-1]
        if ends_latin_word(last.text + last.after):
            chars[-1] = replace(last, after=last.after + " ")


# Whisper writes ASCII marks in Mandarin now and then (你好,世界。): beside Chinese characters
# they are written full width, as a typed fix and the punctuation model write them, and as the
# subtitle line end (engine.writers) drops them. Between Latin words they stay ("Hello, world").
_FULL_WIDTH = str.maketrans(",?!:;", "，？！：；")


def _full_width_marks(chars: list[Char]) -> list[Char]:
    """`chars` with each ASCII , ? ! : ; in an `after` full width where the character it
    follows or the one after it is Chinese ("你好,世界" → "你好，世界", "Python,很好" →
    "Python，很好"): as one of them it needs no space, and `_space_before` gives it none."""
    out = list(chars)
    for i, c in enumerate(chars):
        wide = c.after.translate(_FULL_WIDTH)
        if wide != c.after and any(is_han_char(n.text) for n in chars[i : i + 2]):
            out[i] = replace(c, after=wide)
    return out


def _is_written_after(ch: str) -> bool:
    """Whether `ch` goes into the `after` of the character before it rather than being one:
    punctuation (`engine.punctuation.is_mark`, as a typed fix splits it) and spaces."""
    return is_mark(ch) or ch.isspace()


def word_chars(
    words: Sequence[WordLike],
    *,
    measure: str = DEFAULT_MEASURE,
    offset: float = 0.0,
    simplified: bool = True,
    calibration: Calibration | None = None,
) -> list[Char]:
    """Characters of faster-whisper words: each word's spoken characters share its span evenly;
    each character's confidence is `MEASURES[measure]` of the word's probability (calibrated
    when given). Punctuation is never a character: a mark goes into the `after` of the
    character before it, in the word or the word before ("大家，", "说“你好”": 说 then “), as
    the punctuation model writes its marks, so `Segment.text` is the characters alone and
    their times, confidences and review spans stay aligned; a mark before the first character
    has none to follow and is dropped (as `engine.punctuation.split_marks` drops a typed one).
    A space between two Latin words is the first one's `after` too (`_space_before`); ASCII
    marks beside Chinese are full width (`_full_width_marks`).

    >>> from types import SimpleNamespace as W
    >>> [(c.text, c.start, c.end, round(c.confidence, 2), c.after) for c in word_chars(
    ...     [W(word="我们", start=1.0, end=1.5, probability=0.64), W(word="好。", start=1.5,
    ...     end=1.7, probability=0.9)])]
    [('我', 1.0, 1.25, 0.8, ''), ('们', 1.25, 1.5, 0.8, ''), ('好', 1.5, 1.7, 0.9, '。')]
    """
    return _word_chars(words, measure, offset, simplified, calibration)[0]


def _word_chars(
    words: Sequence[WordLike],
    measure: str = DEFAULT_MEASURE,
    offset: float = 0.0,
    simplified: bool = True,
    calibration: Calibration | None = None,
) -> tuple[list[Char], list[bool]]:
    """`word_chars`, and for each character whether it starts its word: where a segment may
    be cut (`split_segments`' can_cut)."""
    share = MEASURES[measure]
    texts = [w.word.strip() for w in words]
    if simplified:
        texts = _simplified_texts(texts)
    chars: list[Char] = []
    starts: list[bool] = []
    for w, text in zip(words, texts, strict=True):
        _space_before(chars, w.word, text)
        spoken = sum(not _is_punctuation(c) for c in text)
        confidence = share(min(max(float(w.probability), 0.0), 1.0), max(spoken, 1))
        if calibration is not None:
            confidence = calibration.apply(confidence)
        start = offset + float(w.start)
        step = (max(float(w.end) - float(w.start), 0.0)) / max(spoken, 1)
        k, first = 0, len(chars)  # the index of the word's first character
        for ch in text:
            if _is_written_after(ch):
                if chars:
                    chars[-1] = replace(chars[-1], after=chars[-1].after + ch)
                continue
            t0 = round(start + k * step, 3)
            k += not _is_punctuation(ch)  # a symbol (+, ℃) is a character taking no time
            starts.append(len(chars) == first)
            chars.append(Char(ch, t0, round(start + k * step, 3), confidence))
    return _full_width_marks(chars), starts


def is_unplaced(words: Sequence[WordLike]) -> bool:
    """A decoded segment most of whose words take no time: the aligner found no audio for
    them, which is how Whisper's hallucinations on a short tail of audio look (on one shared
    clip, 0.28 s after the last word became 请留点赞、转发、转发… with 15 of 16 words at
    5.24-5.24 s). Real speech has an odd zero-length word at most (2 of 891 on the clips)."""
    unplaced = sum(float(w.end) - float(w.start) < _UNPLACED_SECONDS for w in words)
    return 2 * unplaced > len(words) > 0


def _letters(text: str) -> str:
    """The letters and digits of `text` (no punctuation, spaces or symbols)."""
    return "".join(c for c in text if unicodedata.category(c)[0] in "LN")


def is_prompt_echo(text: str, prompt: str | None) -> bool:
    """A segment that only repeats the initial prompt: all of it, once or more, or its opening
    (four characters or more), compared in Simplified characters. Whisper writes its prompt
    back on audio it hears poorly (synthetic speech: 以下是普通话的句子 for 医生我这两天一直
    咳嗽晚上睡不好). Other words of the prompt are no echo: a prompt of names and terms makes
    Whisper write them where they are said (with 甚至出现交易几乎停滞的情况 in the prompt, a clip
    saying it came out right, and as an echo decoded again without the prompt, 停制)."""
    said, asked = (_letters(normalize_text(t or "", _SIMPLIFIED)) for t in (text, prompt))
    if not said or not asked:
        return False
    repeated = asked * (len(said) // len(asked) + 1)
    return repeated.startswith(said) and len(said) >= min(len(asked), 4)


def _speech(samples: np.ndarray) -> list[tuple[float, float]]:
    """The stretches of speech (start, end in seconds) in 16 kHz `samples`, as faster-whisper's
    silero filter hears them (the one `TranscribeOptions.skip_silence` applies), unpadded."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(min_silence_duration_ms=100, speech_pad_ms=0)
    stamps = get_speech_timestamps(samples, options, sampling_rate=SAMPLE_RATE)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]


def _speech_between(samples: np.ndarray, start: float, end: float) -> list[tuple[float, float]]:
    """`_speech` between `start` and `end` (seconds into `samples`), in seconds from `start`."""
    return _speech(samples[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)])


def _passed_over_cut(samples: np.ndarray, start: float, end: float) -> int | None:
    """Where to decode again the speech between `start` and `end` (seconds into `samples`)
    that the decode passed over, as a sample index; None where there is too little of it.
    Whisper ends a window with a lone timestamp where it takes the rest for no speech, and
    faster-whisper then goes on after the whole window: one clip said three times came out
    once, the other 12 s of speech lost. Where the voice detector (`_speech`) hears at least
    _PASSED_OVER_SECONDS of speech there, that stretch is decoded on its own, from
    SPEECH_PAD_SECONDS before the speech (never before `start`). Pauses and the silence after
    the last word cost no decode, and audio with no speech in it is never decoded again, where
    Whisper would make text up."""
    if end - start < _PASSED_OVER_SECONDS:
        return None
    speech = _speech_between(samples, start, end)
    if sum(b - a for a, b in speech) < _PASSED_OVER_SECONDS:
        return None
    return round((start + max(0.0, speech[0][0] - SPEECH_PAD_SECONDS)) * SAMPLE_RATE)


def _stretched_run_ends(samples: np.ndarray, words: Sequence[WordLike]) -> list[bool]:
    """For each word, whether it ends a run of stretched words: placed over more than
    _STRETCHED_SECONDS_PER_CHAR per spoken character, with speech under it (_PASSED_OVER_SECONDS
    or more). The aligner spreads the words after speech the decode passed over across it."""

    def stretched(w: WordLike) -> bool:
        spoken = sum(not _is_punctuation(c) for c in w.word.strip())
        if float(w.end) - float(w.start) <= _STRETCHED_SECONDS_PER_CHAR * max(spoken, 1):
            return False
        speech = _speech_between(samples, float(w.start), float(w.end))
        return sum(b - a for a, b in speech) >= _PASSED_OVER_SECONDS

    flags = [stretched(w) for w in words] + [False]
    return [here and not after for here, after in itertools.pairwise(flags)]


def _piece(segment: Any, words: Sequence[Any]) -> Iterator[Any]:
    """The faster-whisper segment itself where `words` are all of its words, else the part of
    it that holds them (none where there are none): `WhisperTranscriber.segments` cuts a
    segment where it decodes passed-over speech inside it."""
    if len(words) == len(segment.words or ()):
        yield segment
    elif words:
        text = "".join(w.word for w in words)
        yield replace(segment, start=words[0].start, end=words[-1].end, text=text, words=words)


def _max_new_tokens(samples: np.ndarray) -> int | None:
    """The most tokens a decode of `samples` may write (None: faster-whisper's own limit).

    >>> _max_new_tokens(np.zeros(16_000 * 3)), _max_new_tokens(np.zeros(16_000 * 30))
    (92, None)
    """
    bound = _MIN_NEW_TOKENS + math.ceil(_NEW_TOKENS_PER_SECOND * len(samples) / SAMPLE_RATE)
    return bound if bound < _MAX_NEW_TOKENS else None


def _shifted(segment: Any, seconds: float) -> Any:
    """A faster-whisper segment (and its words) `seconds` later."""
    words = [replace(w, start=w.start + seconds, end=w.end + seconds) for w in segment.words or ()]
    return replace(
        segment, start=segment.start + seconds, end=segment.end + seconds, words=words or None
    )


def _windows(
    blocks: Iterable[np.ndarray], detector: PauseDetector, window: int
) -> Iterator[tuple[int, np.ndarray, list[int]]]:
    """(first sample, audio, pause boundaries in it) pieces of at most `window` samples, each
    cut at its last pause boundary past the middle, or at `window` when there is none."""
    buf = np.zeros(0, np.float32)
    start = 0
    pauses: list[int] = []
    for block in blocks:
        pauses += detector.push(block)
        buf = np.concatenate([buf, block])
        while len(buf) >= window:
            cuts = [p - start for p in pauses if window // 2 <= p - start <= window]
            cut = cuts[-1] if cuts else window
            yield start, buf[:cut], [p for p in pauses if p < start + cut]
            pauses = [p for p in pauses if p >= start + cut]
            buf, start = buf[cut:], start + cut
    if len(buf):
        yield start, buf, pauses


class WhisperTranscriber:
    """Runs one loaded Whisper model over audio; the `Transcriber` API. Not thread-safe."""

    def __init__(self, model: LoadedWhisper) -> None:
        self.model = model

    @property
    def confidence_measure(self) -> str:
        suffix = "+platt" if self.model.calibration is not None else ""
        return measure_name(DEFAULT_MEASURE) + suffix

    def segments(
        self, samples: np.ndarray, options: TranscribeOptions, prompt: str | None = None
    ) -> Iterator[Any]:
        """faster-whisper's lazy segments (with words) of 16 kHz mono samples, Mandarin forced,
        without those the aligner could not place in the audio (`is_unplaced`). A segment that
        echoes the initial prompt (`is_prompt_echo`) is dropped and its audio decoded again
        without a prompt. (Only the initial prompt counts: the live stream's prompt continues it
        with the text already committed, which its audio repeats.) Speech the decode passed
        over is decoded on its own, in its place (`_passed_over`): after a pause of
        _PASSED_OVER_SECONDS or more before a word, between segments or inside one (a sentence
        lost between 垫。 at 3.72 s and 我觉得 at 10.18 s of one segment), and under stretched
        words (`_stretched_run_ends`), which give way to what it decodes to. A segment cut so
        comes as its pieces (`_piece`)."""
        placed = 0.0  # where the last word placed so far ends (seconds)
        for segment in self._unechoed(samples, options, prompt):
            words = list(segment.words or ())
            if not words:
                yield segment
                continue
            ends = _stretched_run_ends(samples, words)
            start, piece = placed, []  # where the audio of the piece's words begins
            for w, stretched in zip(words, ends, strict=True):
                cut = _passed_over_cut(samples, placed, float(w.start)) if placed else None
                if cut is not None:
                    yield from _piece(segment, piece)
                    yield from self._passed_over(samples, options, cut, float(w.start))
                    start, piece = float(w.start), []
                piece.append(w)
                placed = max(placed, float(w.end))
                # never the same audio again: each decode again is shorter than the one before
                shorter = placed - start <= len(samples) / SAMPLE_RATE - _PASSED_OVER_SECONDS
                if stretched and shorter:
                    cut = _passed_over_cut(samples, start, placed)
                    if cut is not None:
                        yield from self._passed_over(samples, options, cut, placed)
                        start, piece = placed, []
            yield from _piece(segment, piece)
        cut = _passed_over_cut(samples, placed, len(samples) / SAMPLE_RATE) if placed else None
        if cut is not None:
            yield from self._passed_over(samples, options, cut, len(samples) / SAMPLE_RATE)

    def _unechoed(
        self, samples: np.ndarray, options: TranscribeOptions, prompt: str | None
    ) -> Iterator[Any]:
        """`_decoded`'s segments, an echo of the initial prompt (`segments`) decoded again
        without the prompt over its own audio only: the segments after it stand."""
        steer = options.initial_prompt
        prompt = (steer if prompt is None else prompt) or None
        for segment in self._decoded(samples, options, prompt):
            if prompt is None or not is_prompt_echo(segment.text, steer):
                yield segment
                continue
            start, end = float(segment.start), float(segment.end)
            log.info("Whisper echoed its prompt at %.1f-%.1f s: decoding it again", start, end)
            cut = min(len(samples), max(0, round(start * SAMPLE_RATE)))
            last = min(len(samples), round(end * SAMPLE_RATE))
            if last > cut:
                again = self._decoded(samples[cut:last], options, None)
                yield from (_shifted(s, cut / SAMPLE_RATE) for s in again)

    def _passed_over(
        self, samples: np.ndarray, options: TranscribeOptions, cut: int, end: float
    ) -> Iterator[Any]:
        """Segments of the speech the decode passed over, from sample `cut` (`_passed_over_cut`)
        to `end` (seconds into `samples`), decoded on their own, in their place."""
        log.info("Whisper passed over speech at %.1f s: decoding it again", cut / SAMPLE_RATE)
        again = self.segments(samples[cut : round(end * SAMPLE_RATE)], options)
        yield from (_shifted(s, cut / SAMPLE_RATE) for s in again)

    def _decoded(
        self, samples: np.ndarray, options: TranscribeOptions, prompt: str | None
    ) -> Iterator[Any]:
        import ctranslate2

        # Where a decode fails faster-whisper's checks it samples again at a higher temperature
        # (openai/whisper's fallback). CTranslate2's generator is per thread and takes the seed
        # set here only when a thread first samples (src/random.cc), so a process's first
        # sampled decode repeats from run to run and later ones do not: one 2 s live buffer
        # decoded 4 times in a row gave 4 texts (2026-12-05). CTranslate2 takes no seed per call.
        ctranslate2.set_random_seed(0)
        segments, _ = self.model.model.transcribe(
            samples,
            language=LANGUAGE,
            beam_size=options.beam_size,
            initial_prompt=prompt,
            word_timestamps=True,
            condition_on_previous_text=False,
            max_new_tokens=_max_new_tokens(samples),
            # TranscribeOptions.skip_silence by faster-whisper's own silero filter (silences of
            # 2 s or more; timestamps mapped back), keeping SPEECH_PAD_SECONDS around speech: on
            # the 23 shared clips joined by 4 s of near-silence Whisper-base without it dropped
            # whole clips after the silences (CER 23.0 %, 140 deletions), with it 14.8 % (43);
            # the clips alone stay at 13.74 %, where the filter's 0.4 s lost 0.65 points (0.6 s:
            # 0.22; the margin chosen on these same clips, 2026-12-05). Those drops were measured
            # before speech passed over was decoded again (`_passed_over`). Since then, over six
            # joinings of the clips (bench/bench_silence.py --whisper --gap-seconds 2/4/10
            # --gap-noise 0/0.001/0.01, 2026-12-06) the filter reads 14.83-15.16 % and no filter
            # 13.41-16.90 %: 1.4-1.5 points worse with 4 s gaps, 0.9-1.7 points better with 2 s
            # and 10 s ones, the same on average; kept for the bound it gives (README, levers).
            vad_filter=options.skip_silence,
            vad_parameters=(
                {"speech_pad_ms": round(SPEECH_PAD_SECONDS * 1000)}
                if options.skip_silence
                else None
            ),
        )
        return (s for s in segments if not is_unplaced(s.words or ()))

    def decode(
        self,
        samples: np.ndarray,
        options: TranscribeOptions | None = None,
        *,
        offset: float = 0.0,
        prompt: str | None = None,
    ) -> list[Char]:
        """All characters of one piece of audio (the live stream decodes its buffer so)."""
        options = options or TranscribeOptions()
        words = [w for s in self.segments(samples, options, prompt) for w in s.words or ()]
        return word_chars(words, offset=offset, calibration=self.model.calibration)

    def transcribe(
        self, source: str | Path | np.ndarray, options: TranscribeOptions | None = None
    ) -> tuple[Iterator[Segment | Progress], TranscriptionInfo]:
        """Start transcribing a file (any format engine.audio reads) or a 16 kHz mono array;
        errors as `Transcriber.transcribe`."""
        options = options or TranscribeOptions()
        name, duration, blocks = audio.open_source(source, block_seconds=options.block_seconds)
        m = self.model
        info = TranscriptionInfo(
            source=name,
            duration=duration,
            sampling_rate=SAMPLE_RATE,
            model=m.source,
            device=m.device,
            dtype=m.compute_type,
            attention=m.attention,
            confidence_measure=self.confidence_measure,
        )
        return self._run(blocks, options, duration), info

    def _run(
        self, blocks: Iterable[np.ndarray], options: TranscribeOptions, total: float
    ) -> Iterator[Segment | Progress]:
        detector = PauseDetector(options.pauses)
        window = round(_WINDOW_SECONDS * SAMPLE_RATE)
        pending: list[Char] = []
        starts: list[bool] = []  # for each pending character, whether it starts its word
        pauses: list[float] = []
        next_id = 0
        read = 0  # samples decoded: the length, whatever the header said
        try:
            for first, samples, found in _windows(blocks, detector, window):
                offset = first / SAMPLE_RATE
                read = first + len(samples)
                if total > 0:  # MP3 and raw AAC lengths are estimates: may run past
                    total = max(total, read / SAMPLE_RATE)
                pauses += [p / SAMPLE_RATE for p in found]
                for seg in self.segments(samples, options):
                    words = seg.words or ()
                    chars, firsts = _word_chars(
                        words, offset=offset, calibration=self.model.calibration
                    )
                    if chars:  # a space before the segment's first word (`_space_before`)
                        _space_before(pending, words[0].word, chars[0].text)
                    pending += chars
                    starts += firsts
                    done = split_segments(
                        pending,
                        pauses=pauses,
                        max_segment_seconds=options.max_segment_seconds,
                        first_id=next_id,
                        can_cut=starts,
                    )[:-1]  # the last one may still grow
                    yield from done
                    taken = sum(len(s.chars) for s in done)
                    pending, starts = pending[taken:], starts[taken:]
                    next_id += len(done)
                    yield Progress(done=min(total, offset + float(seg.end)), total=total)
            yield from split_segments(
                pending,
                pauses=pauses,
                max_segment_seconds=options.max_segment_seconds,
                first_id=next_id,
                can_cut=starts,
            )
            total = read / SAMPLE_RATE  # TranscriptionInfo.decoded
            yield Progress(done=total, total=total)
        finally:
            close = getattr(blocks, "close", None)
            if close is not None:
                close()
