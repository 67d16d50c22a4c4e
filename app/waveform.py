"""The live waveform and level meter.

Audio blocks arrive at whatever rate the worker emits them; drawing once per block would tie the
frame rate to the audio rate. Instead blocks go into a ring buffer of decimated envelope points
and a QTimer redraws at a steady rate when something changed.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QProgressBar, QVBoxLayout, QWidget

from .levels import ENVELOPE_RATE, RingBuffer

__all__ = ["WaveformView"]

_FRAME_MS = 33  # ~30 frames per second
_WINDOW_SECONDS = 10.0


class WaveformView(QWidget):
    """Scrolling waveform of the last 10 s plus a level meter, redrawn at a steady rate."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.buffer = RingBuffer(int(_WINDOW_SECONDS * ENVELOPE_RATE))
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMenuEnabled(False)  # pyqtgraph's own menu is English only
        self.plot.hideButtons()
        self.plot.setYRange(-1.0, 1.0)
        self.plot.setXRange(-_WINDOW_SECONDS, 0)
        self.plot.getPlotItem().hideAxis("left")
        self.plot.setMinimumHeight(120)
        self.plot.setMaximumHeight(220)
        self.curve = self.plot.plot(pen=pg.mkPen("#1565c0", width=1))
        self.meter = QProgressBar()
        self.meter.setRange(0, 100)
        self.meter.setTextVisible(False)
        self.meter.setMaximumHeight(10)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(self.meter)
        self._dirty = False
        self.frames_drawn = 0
        self.timer = QTimer(self)
        self.timer.setInterval(_FRAME_MS)
        self.timer.timeout.connect(self.redraw)
        self.timer.start()

    def add_envelope(self, points: np.ndarray, level: int) -> None:
        """Queue decimated points (from `envelope`) for the next frame; cheap, any thread rate."""
        self.buffer.extend(points)
        self.meter.setValue(level)
        self._dirty = True

    def reset(self) -> None:
        self.buffer.clear()
        self.meter.setValue(0)
        self._dirty = True

    def redraw(self) -> None:
        if not self._dirty:
            return
        y = self.buffer.values()
        x = (np.arange(len(y), dtype=np.float32) - len(y)) / ENVELOPE_RATE
        self.curve.setData(x, y)
        self._dirty = False
        self.frames_drawn += 1
