"""Playing a stretch of a recording for review, with the playing position reported.

PySide6-Essentials has no QtMultimedia, so audio goes out through sounddevice (PortAudio),
already used for the microphone. The span is read (engine.audio.read_span seeks, it does not
decode the whole file) in one background thread, the latest play and the latest preview asked
for: one superseded before its turn is dropped, so stepping quickly through spans reads two at
most, not each one passed. A timer in the UI thread reports the position.
Speed keeps the pitch (WSOLA time stretching, `time_stretch`): Mandarin tones must still
sound right at 1.5×. sounddevice is imported on first play: its import loads the PortAudio
library, and where that is missing (libportaudio2 not installed) playing says so on `failed`.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from engine.errors import TingxieError

from ..errors import error_text
from ..i18n import tr
from . import strings  # noqa: F401  (registers the strings used below)

log = logging.getLogger("tingxie.review")

__all__ = ["SoundDevicePlayer", "time_stretch"]

_TICK_MS = 30  # position updates ~33 times a second
# WSOLA at 16 kHz: 32 ms frames overlapping by half, each placed within ±8 ms where it best
# continues the previous one (a pitch period of speech is 2.5-12 ms).
_FRAME = 512
_SEARCH = 128


def time_stretch(samples: np.ndarray, speed: float) -> np.ndarray:
    """`samples` played `speed` times faster at the same pitch (WSOLA). Output length is
    len(samples) / speed."""
    if speed <= 0:
        raise ValueError(f"speed={speed}: must be above 0")
    x = np.asarray(samples, dtype=np.float32)
    n_out = int(len(x) / speed)
    if abs(speed - 1.0) < 1e-6:
        return x
    if len(x) < _FRAME + 2 * _SEARCH:  # too short to stretch: plain resampling
        return np.interp(np.arange(n_out) * speed, np.arange(len(x)), x).astype(np.float32)
    hop = _FRAME // 2
    window = np.hanning(_FRAME).astype(np.float32)
    out = np.zeros(n_out + _FRAME, np.float32)
    weight = np.zeros_like(out)
    follow = None  # what would naturally come after the frame just placed
    for k in range(n_out // hop + 1):
        nominal = min(int(k * hop * speed), len(x) - _FRAME)
        if follow is None:
            best = nominal
        else:
            lo = max(0, nominal - _SEARCH)
            hi = min(len(x) - _FRAME, nominal + _SEARCH)
            corr = np.correlate(x[lo : hi + _FRAME], follow, mode="valid")
            best = lo + int(np.argmax(corr))
        out[k * hop : k * hop + _FRAME] += x[best : best + _FRAME] * window
        weight[k * hop : k * hop + _FRAME] += window
        follow = x[best + hop : best + hop + _FRAME]
        if len(follow) < _FRAME:
            break
    return (out / np.maximum(weight, 1e-3))[:n_out]


class SoundDevicePlayer(QObject):
    """Plays [start, end] seconds of an audio file at `speed`, or reads them to be drawn."""

    position = Signal(float)  # seconds in the recording
    loaded = Signal(float, object)  # start seconds, the 16 kHz samples read (played or not)
    finished = Signal()
    failed = Signal(str)  # one-line reason, in the UI language
    _ready = Signal(object, object)  # ticket, samples (from the reading thread)
    _error = Signal(object, object)  # ticket, the exception reading raised

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._number = 0  # each play() gets a number; results of older ones are dropped
        self._previews = 0  # likewise for preview(), which a later play() also overrides
        self._start = self._end = 0.0
        self._speed = 1.0
        self._began = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(_TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._ready.connect(self._arrived)
        self._error.connect(self._failed)
        self._lock = threading.Lock()
        self._pending: dict[str, tuple] = {}  # "play", "preview" → the latest (ticket, path, span)
        self._reader: threading.Thread | None = None

    def play(self, path: str, start: float, end: float, speed: float = 1.0) -> None:
        self.stop()
        self._number += 1
        self._start, self._end, self._speed = start, end, speed
        self._read(("play", self._number), path, start, end)

    def preview(self, path: str, start: float, end: float) -> None:
        """Read [start, end] and announce it on `loaded` without a sound, so that a span's
        waveform is on screen before it is heard; whatever plays meanwhile is not stopped."""
        self._previews += 1
        self._read(("preview", self._number, self._previews, start), path, start, end)

    def _read(self, ticket: tuple, path: str, start: float, end: float) -> None:
        with self._lock:
            self._pending[ticket[0]] = (ticket, path, start, end)  # one not begun is dropped
            if self._reader is None:
                self._reader = threading.Thread(
                    target=self._reading, daemon=True, name="review-read"
                )
                self._reader.start()

    def _reading(self) -> None:
        """The reading thread: the pending play first, then the pending preview, until none."""
        from engine.audio import read_span

        while True:
            with self._lock:
                if not self._pending:
                    self._reader = None
                    return
                ticket, path, start, end = self._pending.pop(
                    "play" if "play" in self._pending else "preview"
                )
            try:
                self._ready.emit(ticket, read_span(path, start, end))
            except (OSError, ValueError) as e:  # AudioError is a ValueError
                self._error.emit(ticket, e)
            except Exception as e:  # a decoder's own (PyAV's BugError...): this read fails alone
                log.exception("reading %s [%.2f, %.2f] failed", path, start, end)
                self._error.emit(ticket, TingxieError("audio.span_unreadable", path=path, detail=e))

    def _current(self, ticket: tuple) -> bool:
        if ticket[0] == "preview":
            return ticket[1:3] == (self._number, self._previews)
        return ticket[1] == self._number

    def _arrived(self, ticket: tuple, samples) -> None:
        if not self._current(ticket):
            return
        if ticket[0] == "preview":
            self.loaded.emit(ticket[3], samples)
            return
        from engine.audio import SAMPLE_RATE

        self.loaded.emit(self._start, samples)  # drawn even where no sound can be played
        try:
            import sounddevice as sd
        except OSError:  # "PortAudio library not found": libportaudio2 is not installed
            self.failed.emit(error_text(TingxieError("audio.no_portaudio")))
            return
        try:
            sd.play(time_stretch(samples, self._speed), samplerate=SAMPLE_RATE)
        except (sd.PortAudioError, ValueError) as e:
            self.failed.emit(tr("player.no_output", detail=str(e)))
            return
        self._began = time.monotonic()
        self._timer.start()

    def _failed(self, ticket: tuple, error: Exception) -> None:
        if ticket[0] == "play" and self._current(ticket):  # a preview fails quietly: play says why
            self.failed.emit(error_text(error))

    def _tick(self) -> None:
        now = self._start + (time.monotonic() - self._began) * self._speed
        if now >= self._end:
            self._timer.stop()
            self.position.emit(self._end)
            self.finished.emit()
        else:
            self.position.emit(now)

    def stop(self) -> None:
        self._number += 1
        with self._lock:
            self._pending.pop("play", None)
        if self._timer.isActive():
            import sounddevice as sd

            self._timer.stop()
            sd.stop()
