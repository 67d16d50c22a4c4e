"""Is reviewing doubtful spans faster than re-listening, and does it catch the errors?

    .venv/bin/python bench/bench_review.py [--model DIR] [--manifest TSV] [--thresholds ...]

Transcribes every clip of a manifest (default: ../shared/audio) with a model (default: the
demo model in resources/demo-model, else a random tiny model, whose confidences mean nothing),
then for each confidence threshold reports:

- errors caught: the share of wrong hypothesis characters (substituted or inserted, by a
  minimum-edit alignment with the reference) that fall inside a doubtful span; deletions leave
  no character to flag, so they are counted apart;
- review time: `engine.review.estimate_review_seconds` (each span heard once with 0.3 s of
  context either side at 1x, plus 2.5 s per decision) against the baseline of re-listening the
  whole recording once at 1x, measured on the same clips in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from engine.library.review import ReviewOptions, estimate_review_seconds, find_spans
from engine.metrics import align
from engine.model import DEMO_MODEL_DIR, LoadOptions, load_model
from engine.results import Segment
from engine.transcribe import Transcriber
from engine.tune.data import from_manifest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MANIFEST = ROOT.parent / "shared" / "audio" / "manifest.tsv"


def transcribe_all(
    model_dir: Path, manifest: Path, heldout: float, limit: int
) -> list[tuple[str, list[Segment], float]]:
    """(reference, segments, duration) per clip; with `heldout`, only the clips a tuning job
    with that held-out fraction never trains on."""
    transcriber = Transcriber(load_model(model_dir, LoadOptions(device="cpu")))
    dataset = from_manifest(manifest)
    examples = dataset.split(heldout)[1] if heldout else dataset.examples
    rows = []
    for example in examples[:limit]:
        items, info = transcriber.transcribe(example.audio)
        segments = [s for s in items if isinstance(s, Segment)]
        rows.append((example.text, segments, info.duration))
    return rows


def score(rows: list[tuple[str, list[Segment], float]], threshold: float) -> dict[str, float]:
    caught = wrong = deleted = 0
    review = listen = 0.0
    for reference, segments, duration in rows:
        chars = [c for s in segments for c in s.chars]
        hypothesis = "".join(c.text for c in chars)
        flagged = [c.confidence < threshold for c in chars]
        pairs = align(reference, hypothesis)
        wrong += sum(not p.correct for p in pairs)
        caught += sum(not p.correct and flagged[p.index] for p in pairs)
        covered = sum(bool(p.reference) for p in pairs)  # reference chars matched or replaced
        deleted += len(reference) - covered
        spans = find_spans(segments, ReviewOptions(threshold=threshold))
        review += estimate_review_seconds(spans)
        listen += duration
    return {
        "caught": caught / wrong if wrong else 1.0,
        "wrong": wrong,
        "deleted": deleted,
        "review": review,
        "listen": listen,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model folder (default: the demo model)")
    parser.add_argument("--manifest", type=Path, default=SHARED_MANIFEST)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.5, 0.7, 0.9])
    parser.add_argument(
        "--heldout", type=float, default=0.0, help="use only this held-out share (training data)"
    )
    parser.add_argument("--limit", type=int, default=200, help="at most this many clips")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None and (DEMO_MODEL_DIR / "config.json").is_file():
            model = DEMO_MODEL_DIR
        if model is None:
            from engine.testmodels import build_model

            print("no demo model: a RANDOM tiny model (confidences meaningless; plumbing only)")
            model = build_model(Path(tmp) / "tiny", "tiny")
        rows = transcribe_all(model, args.manifest, args.heldout, args.limit)
    print(f"model {model}; {len(rows)} clips, {sum(r[2] for r in rows):.1f} s of audio")
    print("threshold  errors caught  wrong  deleted  review s  re-listen s  review/re-listen")
    for t in args.thresholds:
        s = score(rows, t)
        print(
            f"{t:9.2f}  {s['caught']:12.0%}  {s['wrong']:5d}  {s['deleted']:7d}  "
            f"{s['review']:8.1f}  {s['listen']:11.1f}  {s['review'] / s['listen']:16.2f}"
        )


if __name__ == "__main__":
    main()
