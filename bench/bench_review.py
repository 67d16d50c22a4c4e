"""Does guided review pay off? Errors found per minute of listening, guided against straight
through, on real speech with real errors.

    .venv/bin/python bench/bench_review.py [--model DIR] [--manifest TSV] [--thresholds ...]

Transcribes every clip of a manifest (default: the real clips of ../shared/audio) with a model
(default: Whisper-base from `make whisper-model`, whose errors on those clips are real; else the
demo model), aligns each transcript with its reference (minimum edit) and places every error in
the transcript: a substituted or inserted character at that character, a deleted one at the gap
where it is missing. Both texts are normalized first as `evaluate` and bench_whisper score them
(`engine.normalize.normalize_text`: Simplified, no punctuation or spaces), so Whisper writing 線
for 线 is no error, and the CER printed is `engine.metrics.cer` on those texts. Two simulated
reviewers who catch every error they hear:

- **straight through** listens to the recordings from the start, at 1x;
- **guided** listens to the doubtful spans Tingxie ranks (`engine.library.review.find_spans`,
  lowest confidence first, across all clips), each span once with 0.3 s of context either side,
  as the Review page plays it. It catches the errors on the span's characters and at its edges.

Reported for each review threshold: the ranked list (spans, listening minutes, errors on it),
and the errors each reviewer has found after listening for 10 %, 25 % and 50 % as long as the
audio lasts: the same listening time, so their ratio is the ratio of errors found per minute of
listening (target: >= 2x; n/a where neither found any). A guided list shorter than the budget
stops where it ends. The decision time a real reviewer adds per span (`estimate_review_seconds`)
is printed apart: it is not listening. Last line: `guided review: X.Xx the errors per listening
minute at 25 % ...` for --headline, one of --thresholds.
"""

from __future__ import annotations

import argparse
import bisect
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from engine.cli import positive_int
from engine.library.review import ReviewOptions, estimate_review_seconds, find_spans
from engine.loader import load_model, transcriber_for
from engine.metrics import cer
from engine.model import DEMO_MODEL_DIR, LoadOptions
from engine.normalize import NormalizeOptions, convert_in_phrase, normalize_text
from engine.results import Segment
from engine.tune.data import from_manifest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MANIFEST = ROOT.parent / "shared" / "audio" / "manifest.tsv"
WHISPER_BASE = ROOT / ".cache" / "models" / "whisper-base"
MARGIN = 0.3  # seconds of context the Review page plays either side of a span
BUDGETS = (0.10, 0.25, 0.50)


@dataclass(frozen=True, slots=True)
class Clip:
    reference: str
    segments: list[Segment]
    duration: float


@dataclass(frozen=True, slots=True)
class Error:
    clip: int
    position: int  # index of the wrong character; a deletion: index of the character after it
    deletion: bool
    time: float  # seconds into the clip where a listener hears it


def transcribe_all(model_dir: Path, manifest: Path, limit: int) -> list[Clip]:
    transcriber = transcriber_for(load_model(model_dir, LoadOptions(device="cpu")))
    clips = []
    for example in from_manifest(manifest).examples[:limit]:
        items, info = transcriber.transcribe(example.audio)
        segments = [s for s in items if isinstance(s, Segment)]
        clips.append(Clip(example.text, segments, info.duration))
    return clips


def scored_texts(clip: Clip) -> tuple[str, str, list[int]]:
    """The reference and the transcript as `evaluate` scores them (`normalize_text`), and for
    each scored transcript character the index of the `Char` it comes from, so that an error
    found in the scored text is placed at a character the reviewer hears.

    Each character is normalized alone but for the script: Traditional to Simplified runs over
    the whole transcript (`convert_in_phrase`), as OpenCC picks characters by phrase."""
    chars = [c for s in clip.segments for c in s.chars]
    local = NormalizeOptions(to_simplified=False)
    pieces = [normalize_text(c.text, local) for c in chars]
    script = NormalizeOptions(  # Traditional to Simplified only
        half_width=False, remove_punctuation=False, remove_spaces=False, lowercase=False
    )
    pieces = convert_in_phrase(pieces, lambda text: normalize_text(text, script))
    owner = [k for k, piece in enumerate(pieces) for _ in piece]
    return normalize_text(clip.reference), "".join(pieces), owner


def errors_of(index: int, clip: Clip) -> list[Error]:
    """Every error of a transcript, placed at a character (or the gap) and a time. Both texts
    are normalized as `evaluate` scores them (`scored_texts`): punctuation (Whisper writes it)
    and a Traditional form of the right character are no errors."""
    chars = [c for s in clip.segments for c in s.chars]
    reference, hypothesis, owner = scored_texts(clip)

    def gap(k: int) -> tuple[int, float]:  # the character after the gap, and when it is heard
        if k < len(owner):
            return owner[k], chars[owner[k]].start
        return len(chars), chars[-1].end if chars else 0.0

    found = []
    for op in Levenshtein.opcodes(reference, hypothesis):
        if op.tag == "delete":
            position, time = gap(op.dest_start)
            found += [Error(index, position, True, time)] * (op.src_end - op.src_start)
        elif op.tag != "equal":  # replace, insert: the characters shown wrongly
            found += [
                Error(index, owner[k], False, chars[owner[k]].start)
                for k in range(op.dest_start, op.dest_end)
            ]
    return found


@dataclass(frozen=True, slots=True)
class Listen:
    """One span the guided reviewer plays: clip, characters [first, stop), seconds heard."""

    clip: int
    first: int
    stop: int
    seconds: float
    confidence: float


def guided_plan(clips: list[Clip], threshold: float) -> list[Listen]:
    """The spans of every clip, lowest confidence first, with their character ranges in the
    clip's flat character list."""
    plan = []
    for index, clip in enumerate(clips):
        offsets = [0]
        for seg in clip.segments:
            offsets.append(offsets[-1] + len(seg.chars))
        for span in find_spans(clip.segments, ReviewOptions(threshold=threshold)):
            base = offsets[span.segment]
            heard = span.end - span.start + 2 * MARGIN
            plan.append(Listen(index, base + span.first, base + span.stop, heard, span.confidence))
    return sorted(plan, key=lambda listen: listen.confidence)


def caught(listen: Listen, error: Error) -> bool:
    if error.clip != listen.clip:
        return False
    if error.deletion:  # heard at an edge or inside
        return listen.first <= error.position <= listen.stop
    return listen.first <= error.position < listen.stop


def guided_curve(plan: list[Listen], errors: list[Error]) -> tuple[list[float], list[int]]:
    """Cumulative listening seconds and errors found after each span of the plan."""
    seconds, found, left = [0.0], [0], list(errors)
    for listen in plan:
        hit = [e for e in left if caught(listen, e)]
        left = [e for e in left if not caught(listen, e)]
        seconds.append(seconds[-1] + listen.seconds)
        found.append(found[-1] + len(hit))
    return seconds, found


def straight_found(clips: list[Clip], errors: list[Error], seconds: float) -> int:
    """Errors heard by a reviewer who listened to `seconds` of the clips in order."""
    starts, total = [], 0.0
    for clip in clips:
        starts.append(total)
        total += clip.duration
    return sum(starts[e.clip] + e.time <= seconds for e in errors)


def at(curve: tuple[list[float], list[int]], seconds: float) -> int:
    """Errors the guided reviewer found within `seconds` of listening."""
    times, found = curve
    return found[bisect.bisect_right(times, seconds) - 1]


def ratio_text(guided: int, straight: int) -> str:
    """Guided against straight-through errors found, as printed: n/a when neither found any (no
    ratio to speak of), inf when only the guided reviewer did."""
    if straight:
        return f"{guided / straight:.1f}x"
    return "inf" if guided else "n/a"


def review_threshold(text: str) -> float:
    """An argparse type: a review threshold, refused as `ReviewOptions` refuses it."""
    try:
        return ReviewOptions(threshold=float(text)).threshold
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: a threshold between 0 and 1") from e


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; --headline must be one of --thresholds (its ratios are the last
    line's)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, help="model folder (default: Whisper-base, else demo)"
    )
    parser.add_argument("--manifest", type=Path, default=SHARED_MANIFEST)
    parser.add_argument("--thresholds", type=review_threshold, nargs="+", default=[0.6, 0.8, 0.9])
    parser.add_argument(
        "--headline",
        type=review_threshold,
        default=0.9,
        help="threshold of the last line, one of --thresholds",
    )
    parser.add_argument("--limit", type=positive_int, default=200, help="at most this many clips")
    args = parser.parse_args(argv)
    if args.headline not in args.thresholds:
        listed = " ".join(f"{t:g}" for t in args.thresholds)
        parser.error(
            f"--headline {args.headline:g} is not among --thresholds {listed}: add it there "
            "or choose one of them"
        )
    return args


def main() -> None:
    args = parse_args()
    model = args.model or (WHISPER_BASE if (WHISPER_BASE / "model.bin").is_file() else None)
    model = model or DEMO_MODEL_DIR
    clips = transcribe_all(model, args.manifest, args.limit)
    errors = [e for i, clip in enumerate(clips) for e in errors_of(i, clip)]
    audio = sum(c.duration for c in clips)
    scored = [scored_texts(c) for c in clips]
    rate = cer([r for r, _, _ in scored], [h for _, h, _ in scored])
    print(f"model {model}; {len(clips)} clips of {args.manifest}, {audio / 60:.1f} min of audio")
    print(
        f"{rate.errors} errors in {rate.reference_chars} reference characters (CER "
        f"{rate.cer:.1%}, normalized as evaluate scores it)"
    )
    print(f"straight through: {len(errors) / (audio / 60):.1f} errors per listening minute")
    budgets = "".join(f"   {b:4.0%} of audio: guided / straight" for b in BUDGETS)
    print(f"threshold  spans  list min  found  decide min {budgets}")
    ratios: dict[float, list[str]] = {}
    for threshold in args.thresholds:
        plan = guided_plan(clips, threshold)
        curve = guided_curve(plan, errors)
        decide = (
            sum(
                estimate_review_seconds(find_spans(c.segments, ReviewOptions(threshold=threshold)))
                for c in clips
            )
            - curve[0][-1]
        )
        cells, ratios[threshold] = "", []
        for budget in BUDGETS:
            guided = at(curve, budget * audio)
            straight = straight_found(clips, errors, budget * audio)
            ratios[threshold].append(ratio_text(guided, straight))
            cells += f"   {guided:4d} / {straight:3d} = {ratios[threshold][-1]:>5}          "
        print(
            f"{threshold:9.2f}  {len(plan):5d}  {curve[0][-1] / 60:8.2f}  {curve[1][-1]:5d}  "
            f"{decide / 60:10.2f} {cells}"
        )
    head = ratios[args.headline]
    print(
        f"guided review: {head[1]} the errors per listening minute at 25 % of the audio "
        f"(10 %: {head[0]}, 50 %: {head[2]}; threshold {args.headline:g})"
    )


if __name__ == "__main__":
    main()
