"""Playing a stretch of a recording for review, with the playing position reported.

PySide6-Essentials has no QtMultimedia, so audio goes out through sounddevice (PortAudio),
already used for the microphone. The span is read (engine.audio.read_span seeks, it does not
decode the whole file) in a background thread; a timer in the UI thread reports the position.
Speed changes the playback rate (pitch moves with it), which keeps playback free of any
processing delay.
"""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QObject, QTimer, Signal

__all__ = ["SoundDevicePlayer"]

_TICK_MS = 30  # position updates ~33 times a second


class SoundDevicePlayer(QObject):
    """Plays [start, end] seconds of an audio file at `speed`."""

    position = Signal(float)  # seconds in the recording
    loaded = Signal(float, object)  # start seconds, the 16 kHz samples about to play
    finished = Signal()
    failed = Signal(str)  # one-line reason
    _ready = Signal(int, object)  # play number, samples (from the reading thread)
    _error = Signal(int, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._number = 0  # each play() gets a number; results of older ones are dropped
        self._start = self._end = 0.0
        self._speed = 1.0
        self._began = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(_TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._ready.connect(self._play_samples)
        self._error.connect(self._failed)

    def play(self, path: str, start: float, end: float, speed: float = 1.0) -> None:
        self.stop()
        self._number += 1
        self._start, self._end, self._speed = start, end, speed
        number = self._number
        threading.Thread(
            target=self._read, args=(number, path, start, end), daemon=True, name="review-read"
        ).start()

    def _read(self, number: int, path: str, start: float, end: float) -> None:
        from engine.audio import read_span

        try:
            self._ready.emit(number, read_span(path, start, end))
        except (OSError, ValueError) as e:  # AudioError is a ValueError
            self._error.emit(number, str(e))

    def _play_samples(self, number: int, samples) -> None:
        if number != self._number:
            return
        import sounddevice as sd

        from engine.audio import SAMPLE_RATE

        try:
            sd.play(samples, samplerate=round(SAMPLE_RATE * self._speed))
        except (sd.PortAudioError, ValueError) as e:
            self._failed(number, f"no audio output ({e}); check the sound settings")
            return
        self._began = time.monotonic()
        self._timer.start()
        self.loaded.emit(self._start, samples)

    def _failed(self, number: int, message: str) -> None:
        if number == self._number:
            self.failed.emit(message)

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
        if self._timer.isActive():
            import sounddevice as sd

            self._timer.stop()
            sd.stop()
