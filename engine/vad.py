"""Pauses in speech, found in the audio by a voice-activity detector (silero-vad, or energy).

Files and the live stream both end segments (the app's paragraphs) at these pauses, so a
transcript reads the same whichever way it was made. The gaps between decoded characters are
no guide: a CTC model leaves long blank runs inside speech wherever it drops characters (a
model unsure of a voice cut "我想喝一杯咖啡" into "喝" and "咖啡"), while the audio shows
whether anyone stopped talking.

A pause is a silence of at least `pause_seconds` after speech. It is reported as one point,
its boundary: the middle of its first `pause_seconds` (on a 20 ms grid). Characters starting
before a boundary belong to the segment it ends, the others to the next. The middle, not the
start, because a CTC model emits a character at or just after its sound, sometimes after the
detector has already heard silence.

silero hears quiet audio raised toward a common level (`_Leveller`), as the speech model,
which normalizes what it decodes, hears it: a speaker far from the microphone after a near
one is speech, not a silence to skip.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .audio import SAMPLE_RATE

__all__ = ["PauseDetector", "PauseOptions", "VadKind", "find_pauses", "find_speech"]

VadKind = Literal["silero", "energy"]
_SILERO_BLOCK = 512  # samples per silero-vad call at 16 kHz (32 ms), fixed by the model
_ENERGY_BLOCK = 320  # 20 ms energy frames
# Boundaries lie on a 20 ms grid, the frame hop of wav2vec2-family models at 16 kHz, so the file
# path's cuts there (TranscribeOptions.cut_at_pauses) and the live finals' segments coincide.
_GRID = 320
# silero judges each window against the level of the audio before it: after speech peaking at
# -10 dBFS, a second speaker peaking at -41 dBFS read as silence (and at -50 dBFS, whole
# sentences of it), though in a recording of its own silero hears it, and the speech model,
# which normalizes each stretch it decodes to its own level, transcribes it. So silero hears
# the audio levelled first (`_Leveller`): each window raised by the gain that brings the level
# of the recent audio (an envelope that follows a louder window at once and falls by
# _RELEASE_DB a second after it) up to _TARGET_DB, by at most _MAX_GAIN_DB. Never lowered:
# speech louder than the target, and the first 0.4 s of a pause after speech at -20 dBFS, are
# heard as they were (on 25 synthetic passages with noise and reverberation, 29 of 13 694
# windows changed, no pause added or lost, none moved by more than 20 ms). Noise is no speech
# to silero at any level (white to brown and speech-shaped noise from -80 to -45 dBFS, and the
# background of the project's real clips raised by up to 45 dB: at most 1 % of windows taken
# for speech), so a pause is still found in faint noise, while the far speaker is heard down
# to -70 dBFS peaks after a near one at -10 (without: -30).
_TARGET_DB = -45.0  # window RMS (dBFS) that quiet audio is raised to
_RELEASE_DB = 60.0  # dB a second the envelope falls after louder audio
_MAX_GAIN_DB = 40.0  # bounds the gain, so the quietest hiss stays quiet


@dataclass(frozen=True, slots=True)
class PauseOptions:
    """What counts as a pause (shared by files and the live stream)."""

    # silero: a small neural detector (robust to noise, ~0.1 % of one core in real time);
    # energy: the RMS level of 20 ms frames against energy_threshold_db (free, quiet rooms).
    vad: VadKind = "silero"
    # A silence this long (seconds) after speech is a pause.
    pause_seconds: float = 0.6
    vad_threshold: float = 0.5  # silero speech probability above which a block is speech
    energy_threshold_db: float = -40.0  # energy: RMS level (dBFS) above which is speech

    def __post_init__(self) -> None:
        if self.vad not in VadKind.__args__:
            raise ValueError(f"PauseOptions.vad={self.vad!r}: choose silero or energy")
        if not (isinstance(self.pause_seconds, int | float) and 0 < self.pause_seconds < math.inf):
            raise ValueError(
                f"PauseOptions.pause_seconds={self.pause_seconds!r}: must be a positive "
                "number of seconds"
            )
        if not 0 < self.vad_threshold < 1:
            raise ValueError(f"PauseOptions.vad_threshold={self.vad_threshold!r}: use (0, 1)")


class PauseDetector:
    """Finds pauses in a 16 kHz stream pushed in blocks of any size.

    `push` returns the sample positions of the boundaries (see the module docstring) of the
    pauses it completed, one per stretch of silence that follows speech. With `onsets`, it
    also notes where speech resumes after each pause (`take_onsets`), so a file's transcription
    can skip the silence between (engine.chunking.iter_chunks).
    """

    def __init__(self, options: PauseOptions | None = None, onsets: bool = False) -> None:
        self.options = options or PauseOptions()
        self._track_onsets = onsets
        self._block = _SILERO_BLOCK if self.options.vad == "silero" else _ENERGY_BLOCK
        self._pause = round(self.options.pause_seconds * SAMPLE_RATE)
        self._silero = _load_silero() if self.options.vad == "silero" else None
        self._leveller = _Leveller()
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0, np.float32)
        self._pos = 0  # sample position of _pending[0]
        self._speech = False  # speech seen since the last pause
        self._silence_start: int | None = None
        self._paused = False  # a pause was reported and no speech has followed it yet
        self._onsets: list[int] = []
        self._leveller.reset()
        if self._silero is not None:
            self._silero.reset_states()

    @property
    def settled(self) -> int:
        """Sample position before which every boundary has been reported: a silence still
        too short to be a pause may yet put one at its middle."""
        pending = self.pending
        return self._pos if pending is None else min(self._pos, pending[0])

    @property
    def pending(self) -> tuple[int, int] | None:
        """(boundary, samples of silence so far) of a silence after speech that is not yet a
        pause: where its boundary will lie if it lasts, so a caller can prepare for it (the
        two-pass stream decodes its segment ahead). None: no such silence."""
        if not (self._speech and self._silence_start is not None):
            return None
        return self._boundary(), self._pos - self._silence_start

    def _boundary(self) -> int:
        """The boundary of the current silence: the middle of its first `pause_seconds`."""
        return (self._silence_start + self._pause // 2) // _GRID * _GRID

    def _speech_blocks(self, samples: np.ndarray) -> np.ndarray:
        """Whether each of the whole blocks of `samples` is speech."""
        blocks = samples.reshape(-1, self._block)
        if self._silero is None:
            return _level_db(blocks) > self.options.energy_threshold_db
        return self._silero.probabilities(self._leveller(samples)) > self.options.vad_threshold

    def push(self, samples: np.ndarray) -> list[int]:
        self._pending = np.concatenate([self._pending, np.asarray(samples, np.float32)])
        n = len(self._pending) // self._block
        boundaries = self._scan(n)
        self._pending = self._pending[n * self._block :]
        self._pos += n * self._block
        return boundaries

    def _scan(self, n: int) -> list[int]:
        boundaries = []
        speech = self._speech_blocks(self._pending[: n * self._block])
        for i in range(n):
            start = self._pos + i * self._block
            if speech[i]:
                if self._paused and self._track_onsets:
                    self._onsets.append(start)
                self._speech, self._silence_start, self._paused = True, None, False
                continue
            if self._silence_start is None:
                self._silence_start = start
            if self._speech and start + self._block - self._silence_start >= self._pause:
                boundaries.append(self._boundary())
                self._speech, self._paused = False, True
        return boundaries

    @property
    def quiet(self) -> bool:
        """No speech heard since the last pause, or since the start (in the audio pushed so
        far, up to `settled`)."""
        return not self._speech

    @property
    def in_pause(self) -> bool:
        """A pause has been reported and no speech heard since (in the audio pushed so far)."""
        return self._paused

    def take_onsets(self) -> list[int]:
        """Where speech resumed after a pause (the sample position of its first speech block),
        found since the last call; every one before `settled` has been found."""
        onsets, self._onsets = self._onsets, []
        return onsets


def find_pauses(audio: np.ndarray, options: PauseOptions | None = None) -> list[float]:
    """The pause boundaries (seconds) of a whole 16 kHz recording."""
    return [p / SAMPLE_RATE for p in PauseDetector(options).push(audio)]


def find_speech(
    audio: np.ndarray,
    *,
    threshold: float = 0.5,
    min_speech_seconds: float = 0.25,
    min_silence_seconds: float = 0.1,
) -> list[tuple[float, float]]:
    """The stretches of speech (start, end in seconds) in a whole 16 kHz recording, by
    silero-vad on the levelled audio (a quiet speaker's too): a stretch is at least
    min_speech_seconds long, and silences shorter than min_silence_seconds do not end one
    (engine.speakers embeds the voices in them)."""
    import torch

    threads = torch.get_num_threads()
    try:
        from silero_vad.utils_vad import get_speech_timestamps_from_probs
    finally:  # importing silero_vad sets the whole process to one torch thread
        torch.set_num_threads(threads)
    audio = np.asarray(audio, np.float32)
    windows = np.zeros(-(-len(audio) // _SILERO_BLOCK) * _SILERO_BLOCK, np.float32)
    windows[: len(audio)] = audio  # the last window padded with silence, as silero_vad does
    stamps = get_speech_timestamps_from_probs(
        _load_silero().probabilities(_Leveller()(windows)).tolist(),
        threshold=threshold,
        sampling_rate=SAMPLE_RATE,
        min_speech_duration_ms=round(min_speech_seconds * 1000),
        min_silence_duration_ms=round(min_silence_seconds * 1000),
        audio_length_samples=len(audio),
    )
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]


def _level_db(blocks: np.ndarray) -> np.ndarray:
    """The RMS level (dBFS) of each row of `blocks`."""
    rms = np.sqrt(np.mean(np.square(blocks, dtype=np.float64), axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-10))


class _Leveller:
    """Raises quiet audio toward _TARGET_DB, window by window, before silero judges it (why,
    and what it leaves alone: the comment at _TARGET_DB). The envelope runs on from call to
    call, so a stream pushed in blocks of any size is levelled as the whole recording is."""

    _STEP_DB = _RELEASE_DB * _SILERO_BLOCK / SAMPLE_RATE  # the envelope's fall a window

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._envelope_db = -np.inf  # a recording's first window sets it

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """`samples` (a whole number of silero windows), each window times its gain."""
        windows = np.asarray(samples, np.float32).reshape(-1, _SILERO_BLOCK)
        if not len(windows):
            return windows.reshape(-1)
        level_db = _level_db(windows)
        # envelope[i] = max(level[i], envelope[i - 1] - step), unrolled: with the fall added
        # back as a ramp, it is a running maximum
        ramp = np.arange(len(windows)) * self._STEP_DB
        raised = level_db + ramp
        raised[0] = max(raised[0], self._envelope_db - self._STEP_DB)
        envelope_db = np.maximum.accumulate(raised) - ramp
        self._envelope_db = float(envelope_db[-1])
        gain_db = np.clip(_TARGET_DB - envelope_db, 0.0, _MAX_GAIN_DB)
        return (windows * (10 ** (gain_db / 20)).astype(np.float32)[:, None]).reshape(-1)


class _Silero:
    """silero-vad's sequence ONNX model, as shipped in the silero-vad wheel (since 6.2.2), on
    ONNX Runtime: the speech probability of each 512-sample window, many windows a call, with
    the recurrent state and the 64 samples of context carried from window to window, as the
    package's SileroVADSequence does. Its probabilities are the streaming model's, bit for bit,
    at 2.4x its speed on a CPU (33 against 77 us a window: one call, not one per 32 ms).

    Not the package's TorchScript model, so that what needs no torch does not import it:
    Whisper files run on CTranslate2, and torch's import alone added 0.27 GB to that path. One
    thread: split over several, these small calls each wait on the others."""

    _CONTEXT = 64
    _MAX_WINDOWS = 512  # a call's windows at most (16 s), bounding its transient memory

    def __init__(self) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(_silero_file()), opts, providers=["CPUExecutionProvider"]
        )
        self.reset_states()

    def reset_states(self) -> None:
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(self._CONTEXT, np.float32)

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Speech probability of each 512-sample window of `samples` (a whole number of
        them), continuing from the windows of the calls before."""
        windows = np.asarray(samples, np.float32).reshape(-1, _SILERO_BLOCK)
        out = [np.zeros(0, np.float32)]
        for first in range(0, len(windows), self._MAX_WINDOWS):
            part = windows[first : first + self._MAX_WINDOWS]
            context = np.concatenate([self._context[None], part[:-1, -self._CONTEXT :]])
            probs, self._h, self._c = self._session.run(
                ["speech_probs", "hn", "cn"],
                {"input": np.concatenate([context, part], axis=1), "h": self._h, "c": self._c},
            )
            self._context = part[-1, -self._CONTEXT :].copy()
            out.append(np.asarray(probs, np.float32).reshape(-1))
        return np.concatenate(out)


def _silero_file() -> Path:
    """The ONNX model inside the installed silero-vad wheel, found without importing the
    package (its __init__ imports torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "PauseOptions.vad='silero' needs the silero-vad package: pip install silero-vad, "
            "or use vad='energy'"
        )
    path = (
        Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad_16k_sequence.onnx"
    )
    if not path.is_file():
        raise ImportError(
            f"{path}: silero-vad's sequence model is missing; pip install 'silero-vad>=6.2.2'"
        )
    return path


def _load_silero() -> _Silero:
    return _Silero()
