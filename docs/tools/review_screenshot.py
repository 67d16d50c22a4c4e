"""Render the review page to a PNG (run offscreen or under Xvfb), for the README and to check
the layout by eye.

    python docs/tools/review_screenshot.py docs/review.png

Uses a real clip of ../shared/audio and its published transcript with illustrative
confidences and alternatives (no trained model ships yet); the widgets, fonts, waveform and
store are the real ones.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.results import Alternative, Char, Segment

__all__ = ["main"]

_CLIP = Path(__file__).resolve().parents[3] / "shared" / "audio" / "funasr_asr_example_zh.wav"
_TEXT = "欢迎大家来体验达摩院推出的语音识别模型"
# Illustrative: 来体 and 达摩院 doubtful (one review span), with plausible runner-ups.
_LOW = {4: (0.31, "提"), 5: (0.42, "言"), 7: (0.22, "打"), 8: (0.38, "魔"), 9: (0.55, "园")}


class _SilentPlayer(QObject):
    position = Signal(float)
    loaded = Signal(float, object)
    finished = Signal()
    failed = Signal(str)

    def play(self, path: str, start: float, end: float, speed: float = 1.0) -> None:
        from engine.audio import read_span

        self.loaded.emit(start, read_span(path, start, end))
        self.position.emit(start + 0.45 * (end - start))

    def stop(self) -> None:
        pass


def _segments(duration: float) -> list[Segment]:
    step = (duration - 0.6) / len(_TEXT)
    chars = []
    for i, c in enumerate(_TEXT):
        conf, alt = _LOW.get(i, (0.95, "的"))
        start = 0.3 + i * step
        runner_up = Alternative(alt, round(max(0.02, 0.9 - conf), 2))
        chars.append(Char(c, start, start + step * 0.9, conf, (runner_up,)))
    return [Segment(0, chars[0].start, chars[-1].end, tuple(chars))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    from PySide6.QtWidgets import QApplication

    from app.fonts import cjk_font
    from app.review.page import ReviewPanel
    from engine.audio import probe
    from engine.library.store import Store

    qt = QApplication.instance() or QApplication(sys.argv[:1])
    qt.setFont(cjk_font())
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "t.db") as store:
        tid = store.add_transcript(_segments(probe(_CLIP).duration), audio=_CLIP)
        panel = ReviewPanel(store, _SilentPlayer())
        panel.resize(1100, 640)
        panel.show()
        panel.open(tid)
        panel.play_span()
        qt.processEvents()
        panel.grab().save(str(args.out))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
