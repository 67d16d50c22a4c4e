"""Time to show a review decision in a long transcript: the review page redraws only the
segment that changed, against a baseline that redraws the whole transcript, in the same run.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_review_ui.py [--chars 8000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store import transcript, transcript_chars

from app.review.page import ReviewPanel
from engine.cli import positive_int
from engine.library.store import Store


class _Player(QObject):
    position = Signal(float)
    loaded = Signal(float, object)
    finished = Signal()

    def play(self, *args) -> None:
        pass

    def preview(self, *args) -> None:
        pass

    def stop(self) -> None:
        pass


def per_decision(panel: ReviewPanel, qt: QApplication, decisions: int, full: bool) -> float:
    if full:  # the baseline: every change redraws everything
        panel._stack_moved = lambda _index: panel._refresh(full=True)
        panel.undo_stack.indexChanged.disconnect()
        panel.undo_stack.indexChanged.connect(panel._stack_moved)
    start = time.perf_counter()
    for _ in range(decisions):
        panel.fix_span("改")
        qt.processEvents()
    return (time.perf_counter() - start) / decisions


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=transcript_chars, default=8000, help="transcript length")
    parser.add_argument("--decisions", type=positive_int, default=15)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    qt = QApplication.instance() or QApplication([])
    results = {}
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "b.db") as store:
        for name, full in (("incremental", False), ("full redraw", True)):
            tid = store.add_transcript(transcript(args.chars))
            panel = ReviewPanel(store, _Player())
            panel.show()
            panel.open(tid)
            qt.processEvents()
            results[name] = per_decision(panel, qt, args.decisions, full)
            panel.undo_stack.indexChanged.disconnect()
            panel.close()
    print(f"transcript: {args.chars} characters, {args.decisions} decisions")
    print(f"baseline (whole transcript redrawn): {results['full redraw'] * 1000:8.1f} ms")
    print(f"review page (changed segment only):  {results['incremental'] * 1000:8.1f} ms")
    print(f"speed-up: {results['full redraw'] / results['incremental']:.1f}x")


if __name__ == "__main__":
    main()
