"""Cost of saving one review decision in a long transcript: the store re-indexes only the
segments an edit touched, against a baseline that re-indexes the whole transcript (what a
per-transcript search index costs), measured in the same run on the same database.

    .venv/bin/python bench/bench_store.py [--chars 40000] [--edits 30]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

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


def per_edit(session: EditSession, edits: int, full_reindex: bool) -> float:
    n = len(session.segments)
    start = time.perf_counter()
    for k in range(edits):
        session.apply(EditOp((k * 7) % n, 3, 4, "改", "fix"))
        if full_reindex:
            with session.store._write() as conn:
                store_mod._index_segments(conn, session.tid, session.segments, range(n))
    return (time.perf_counter() - start) / edits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=40_000, help="transcript length")
    parser.add_argument("--edits", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "bench.db") as db:
        segments = transcript(args.chars)
        tid = db.add_transcript(segments)
        incremental = per_edit(EditSession(db, tid), args.edits, full_reindex=False)
        baseline = per_edit(EditSession(db, tid), args.edits, full_reindex=True)
    hours = len(segments) * (0.2 * CHARS_PER_SEGMENT + 1.0) / 3600
    print(f"transcript: {args.chars} characters (~{hours:.1f} h of speech), {args.edits} edits")
    print(f"baseline (whole transcript re-indexed): {baseline * 1000:8.1f} ms per edit")
    print(f"store (touched segments only):          {incremental * 1000:8.1f} ms per edit")
    print(f"speed-up: {baseline / incremental:.1f}x")


if __name__ == "__main__":
    main()
