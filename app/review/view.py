"""The views of the review mode. `SpanWaveform`: the stretch being played, with the playing
position. `ReviewView`: `TranscriptView` plus in-place replacement of one
segment's characters, so a decision in a long transcript redraws one segment, not all of it
(set_segments on 8 000 characters takes ~0.8 s on a 2-core CPU).

It relies on TranscriptView's bookkeeping (`_chars`, `_starts`, `_committed_end`, `_format`):
tests/test_app_review.py checks that hit testing and selection still line up after
replacements, so a change there shows at once.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction, QKeyEvent, QMouseEvent, QTextCursor
from PySide6.QtWidgets import QMenu, QVBoxLayout, QWidget

from engine.results import Char

from ..transcript import TranscriptView

__all__ = ["ReviewView", "SpanWaveform"]


class ReviewView(TranscriptView):
    """Finished segments only (no streaming tail), each replaceable on its own. `picked`: the
    committed characters [first, stop) the user last selected (mouse or Shift+arrows) or
    clicked, for "Check again" (`check_again_action`, the page's, ends the context menu); the
    page's own selections (the span, playback) are not."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.picked: tuple[int, int] | None = None
        self.check_again_action: QAction | None = None
        flags = Qt.TextInteractionFlag
        self.setTextInteractionFlags(flags.TextSelectableByMouse | flags.TextSelectableByKeyboard)

    def clear(self) -> None:
        super().clear()
        self.picked = None

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            hit = self.char_at(event.position().toPoint())
            if self.textCursor().hasSelection():
                self._pick_selection()
            elif hit is not None and hit[1] is not None:
                self.picked = (hit[1], hit[1] + 1)

    def context_menu(self, point: QPoint) -> QMenu:
        """The transcript's menu and "Check again" for the characters picked, or, outside
        them, the character under the pointer."""
        menu = super().context_menu(point)
        hit = self.char_at(point)
        if hit is not None and hit[1] is not None:
            i, picked = hit[1], self.picked
            if picked is None or not picked[0] <= i < picked[1]:
                self.picked = (i, i + 1)
        if self.check_again_action is not None:
            menu.addSeparator()
            menu.addAction(self.check_again_action)
        return menu

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        super().keyReleaseEvent(event)
        if self.textCursor().hasSelection():
            self._pick_selection()

    def _pick_selection(self) -> None:
        """The characters the text cursor's selection covers, when it covers any."""
        cursor = self.textCursor()
        first = bisect_left(self._starts, cursor.selectionStart())
        stop = bisect_left(self._starts, cursor.selectionEnd())
        if stop > first:
            self.picked = (first, stop)

    def replace_chars(self, first: int, stop: int, chars: Sequence[Char]) -> None:
        """Put `chars` in place of committed characters [first, stop), which must all lie in
        one paragraph (one segment); an empty range inserts at `first`, at the start of that
        segment's paragraph when it has become empty."""
        if not 0 <= first <= stop <= len(self._chars):
            raise IndexError(f"characters {first}:{stop} of {len(self._chars)}")
        if stop > first:
            lo, hi = self._starts[first], self._char_end(stop - 1)
        elif first < len(self._chars):
            lo = hi = self._starts[first]
        else:
            lo = hi = self._committed_end
        cursor = QTextCursor(self.document())
        cursor.beginEditBlock()  # laid out once, not after each character (1 ms each)
        cursor.setPosition(lo)
        cursor.setPosition(hi, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        starts = []
        for char in chars:
            starts.append(cursor.position())
            self._insert(cursor, char)
        cursor.endEditBlock()
        shift = cursor.position() - hi
        self._starts[first:stop] = starts
        self._chars[first:stop] = chars
        self.picked = None  # its characters moved
        if shift:  # (a comprehension: 42 000 starts, per segment replaced)
            after = first + len(chars)
            self._starts[after:] = [s + shift for s in self._starts[after:]]
        self._committed_end += shift


class SpanWaveform(QWidget):
    """The waveform of the stretch being played, the span shaded, the playing position a line."""

    _POINTS = 1000  # peaks drawn across the stretch, whatever its length

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMenuEnabled(False)  # pyqtgraph's own menu is English only
        self.plot.hideButtons()
        self.plot.setYRange(-1.0, 1.0)
        self.plot.getPlotItem().hideAxis("left")
        self.plot.setFixedHeight(80)
        self.curve = self.plot.plot(pen=pg.mkPen("#1565c0", width=1))
        self.region = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(255, 193, 7, 60))
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#d32f2f", width=2))
        self.plot.addItem(self.region)
        self.plot.addItem(self.cursor)
        self.region.hide()  # until there is a span to shade (no transcript open yet)
        self.cursor.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    def show_audio(self, start: float, samples: np.ndarray, rate: int = 16_000) -> None:
        """Draw `samples` (mono) as starting at `start` seconds of the recording."""
        step = max(1, len(samples) // self._POINTS)
        usable = len(samples) // step * step
        peaks = np.abs(samples[:usable]).reshape(-1, step).max(axis=1) if usable else samples
        x = start + np.arange(len(peaks)) * step / rate
        # Peaks mirrored around zero, as waveform editors draw them.
        self.curve.setData(np.repeat(x, 2), np.ravel(np.column_stack([peaks, -peaks])))
        self.plot.setXRange(start, start + len(samples) / rate, padding=0)

    def clear(self) -> None:
        """Nothing drawn: no transcript open, or one without a recording."""
        self.curve.setData([], [])
        self.region.hide()
        self.cursor.hide()

    def set_span(self, start: float, end: float) -> None:
        self.region.setRegion((start, end))
        self.region.show()

    def set_position(self, seconds: float) -> None:
        self.cursor.setValue(seconds)
        self.cursor.show()
