"""Render the review page to a PNG (run offscreen or under Xvfb), for the README and to check
the layout by eye.

    python docs/tools/review_screenshot.py docs/review.png [--model .cache/models/whisper-base]

Transcribes a real clip of ../shared/audio with a real model through the engine (Whisper-base by
default, `make whisper-model`): the confidences, alternatives and times on the page are the
model's own; the widgets, fonts, waveform and store are the real ones.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.results import Segment

__all__ = ["main"]

_ROOT = Path(__file__).resolve().parents[2]
_CLIP = _ROOT.parent / "shared" / "audio" / "funasr_asr_example_zh.wav"


class _SilentPlayer(QObject):
    position = Signal(float)
    loaded = Signal(float, object)
    finished = Signal()
    failed = Signal(str)

    def preview(self, path: str, start: float, end: float) -> None:
        from engine.audio import read_span

        self.loaded.emit(start, read_span(path, start, end))

    def play(self, path: str, start: float, end: float, speed: float = 1.0) -> None:
        self.preview(path, start, end)
        self.position.emit(start + 0.45 * (end - start))

    def stop(self) -> None:
        pass


def _segments(model: Path, clip: Path) -> list[Segment]:
    """The clip as the model transcribes it (the app's engine call, no illustration)."""
    from engine.loader import load_model, transcriber_for

    stream, _ = transcriber_for(load_model(model)).transcribe(clip)
    return [item for item in stream if isinstance(item, Segment)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--model", type=Path, default=_ROOT / ".cache/models/whisper-base")
    parser.add_argument("--clip", type=Path, default=_CLIP)
    args = parser.parse_args(argv)
    from PySide6.QtWidgets import QApplication

    from app.fonts import cjk_font
    from app.review.page import ReviewPanel
    from engine.library.store import Store

    qt = QApplication.instance() or QApplication(sys.argv[:1])
    qt.setFont(cjk_font())
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "t.db") as store:
        tid = store.add_transcript(_segments(args.model, args.clip), audio=args.clip)
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
