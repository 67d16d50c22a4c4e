"""Stand-ins for the parts of the engine a test cannot run for real (no microphone here).

Not a test module (no test functions): the app tests import these.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from PySide6.QtCore import QCoreApplication, QObject, Signal


@dataclass
class FakeDevice:
    name: str
    index: int = 0


@dataclass
class FakeRecorder:
    """Feeds `signal` to `on_audio` from its own thread, as PortAudio's callback would, and
    writes it to `path` on stop."""

    path: Path
    device: str | None = None
    on_audio: object = None
    on_error: object = None
    signal: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    block: int = 1600
    realtime: float = 0.0  # seconds of sleep per second of audio (0: as fast as possible)
    fail_start: Exception | None = None
    # After feeding the signal, report the device lost (as the real Recorder does).
    lose_device: Exception | None = None

    def start(self) -> None:
        if self.fail_start is not None:
            raise self.fail_start
        self._stop = threading.Event()
        self._fed: list[np.ndarray] = []
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        for i in range(0, len(self.signal), self.block):
            if self._stop.is_set():
                return
            block = self.signal[i : i + self.block].copy()
            self._fed.append(block)
            self.on_audio(block)
            time.sleep(self.realtime * len(block) / 16_000)
        if self.lose_device is not None:
            self.on_error(self.lose_device)

    def wait_fed(self, timeout: float = 10.0) -> None:
        self._thread.join(timeout)

    def fed(self) -> bool:
        """All of the signal was delivered (poll this to keep the UI thread's loop running)."""
        return not self._thread.is_alive()

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def stop(self) -> Path:
        self._stop.set()
        self._thread.join()
        audio = np.concatenate(self._fed) if self._fed else np.zeros(0, np.float32)
        sf.write(self.path, audio, 16_000)
        if self.lose_device is not None:
            raise self.lose_device
        return self.path


def recorder_factory(**settings):
    """An Engine.recorder that builds FakeRecorders with `settings`, listed in `.made`."""
    made: list[FakeRecorder] = []

    def make(path, device=None, on_audio=None, on_error=None):
        rec = FakeRecorder(Path(path), device, on_audio, on_error=on_error, **settings)
        made.append(rec)
        return rec

    make.made = made
    return make


class FakePlayer(QObject):
    """Records what it was asked to play or draw instead of making sound."""

    position = Signal(float)
    loaded = Signal(float, object)
    finished = Signal()
    failed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, float, float, float]] = []
        self.previews: list[tuple[str, float, float]] = []  # drawn, not played
        self.stops = 0

    def play(self, path: str, start: float, end: float, speed: float = 1.0) -> None:
        self.calls.append((path, round(start, 3), round(end, 3), speed))

    def preview(self, path: str, start: float, end: float) -> None:
        self.previews.append((path, round(start, 3), round(end, 3)))

    def stop(self) -> None:
        self.stops += 1


def tone(seconds: float, freq: float = 440.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * 16_000)) / 16_000
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def emitted(qtbot, signal, action=None, timeout: int = 60_000) -> tuple:
    """Run `action`, wait until `signal` is emitted and return its arguments.

    Unlike qtbot.waitSignal this is safe for signals emitted in the worker's thread: the slot
    only appends to a list (pytest-qt's blocker would stop its timer from the wrong thread).
    The generous default timeout is for loaded machines (loading a model took >10 s at load 6).
    """
    got: list[tuple] = []
    signal.connect(lambda *args: got.append(args))
    if action is not None:
        action()
    qtbot.waitUntil(lambda: bool(got), timeout=timeout)
    # The list is filled in the emitting thread at once, the app's own slots of the same emission
    # are queued to this one: deliver them before the caller looks at what they do.
    QCoreApplication.processEvents()
    return got[0]
