"""Cost of saving one review decision in a long transcript, and how much of it the search index
takes: the store rewrites the transcript's one index row (its whole text, normalized) at every
edit, against a baseline of the same store with that re-indexing left out, in the same run on
the same database.

    .venv/bin/python bench/bench_store.py [--chars 40000] [--edits 30]

Each side saves --edits decisions through `EditSession.apply` (as the review page does) on its
own copy of the transcript; the difference between them is what keeping search current costs
per edit at this length.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from engine.cli import positive_int
from engine.library import store as store_mod
from engine.library.review import EditOp
from engine.library.store import EditSession, Store
from engine.results import Char, Segment
from engine.testmodels import COMMON_CHARS

CHARS_PER_SEGMENT = 40  # ~8 s of speech at 5 characters per second


def transcript(chars: int, seed: int = 0) -> list[Segment]:
    rng = random.Random(seed)
    segments, t = [], 0.0
    for i in range(chars // CHARS_PER_SEGMENT):
        cs = tuple(
            Char(rng.choice(COMMON_CHARS), t + 0.2 * k, t + 0.2 * k + 0.15, rng.random())
            for k in range(CHARS_PER_SEGMENT)
        )
        segments.append(Segment(i, t, t + 0.2 * CHARS_PER_SEGMENT, cs))
        t += 0.2 * CHARS_PER_SEGMENT + 1.0
    return segments


def transcript_chars(text: str) -> int:
    """An argparse type for --chars: at least one segment's worth (`transcript` builds whole
    segments of CHARS_PER_SEGMENT characters; fewer would be an empty transcript)."""
    value = positive_int(text)
    if value < CHARS_PER_SEGMENT:
        raise argparse.ArgumentTypeError(
            f"{text!r}: at least {CHARS_PER_SEGMENT} characters (one segment)"
        )
    return value


@contextlib.contextmanager
def index_left_out() -> Iterator[None]:
    """The store with its search re-indexing replaced by nothing: the baseline."""
    index = store_mod._index
    store_mod._index = lambda conn, tid, segments: None
    try:
        yield
    finally:
        store_mod._index = index


def per_edit(session: EditSession, edits: int) -> float:
    """Seconds per decision saved through the session, as the review page saves them."""
    n = len(session.segments)
    start = time.perf_counter()
    for k in range(edits):
        session.apply(EditOp((k * 7) % n, 3, 4, "改", "fix"))
    return (time.perf_counter() - start) / edits


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=transcript_chars, default=40_000, help="transcript length")
    parser.add_argument("--edits", type=positive_int, default=30, help="decisions saved, each side")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    segments = transcript(args.chars)
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "bench.db") as db:
        store = per_edit(EditSession(db, db.add_transcript(segments)), args.edits)
        with index_left_out():
            baseline = per_edit(EditSession(db, db.add_transcript(segments)), args.edits)
    hours = len(segments) * (0.2 * CHARS_PER_SEGMENT + 1.0) / 3600
    index = store - baseline
    print(f"transcript: {args.chars} characters (~{hours:.1f} h of speech), {args.edits} edits")
    print(f"baseline (no search re-index):        {baseline * 1000:8.1f} ms per edit")
    print(f"store (whole transcript re-indexed):  {store * 1000:8.1f} ms per edit")
    print(f"search re-index: {index * 1000:.1f} ms per edit ({index / store:.0%} of an edit)")


if __name__ == "__main__":
    main()
