"""Streaming latency and agreement, against a naive sliding-window baseline in the same run.

Audio (real Mandarin clips from ../shared/audio, joined) is played to each strategy as a live
session would: a block every `--block` seconds of simulated clock, and compute time counts
(while a strategy computes, audio keeps arriving; it takes all that arrived at its next step).

- stream L/R: engine.stream.StreamingTranscriber (bounded left context L s, commit after R s
  of right context, reused convolutional features, catch-up), for each --contexts pair.
- two-pass: engine.twopass.TwoPassTranscriber, whose first pass (--partials: left and right
  context and hop, by default the app's, engine.twopass.PARTIAL_OPTIONS) streams segments
  (ended by a pause or max length) that are decoded again as files and replaced by their
  finals; the finals' compute counts on the same clock, in the same step.
- naive: every hop, re-decode the last W seconds from scratch; characters that slide out of
  the window are kept as the last decode showed them (its transcript). W is `--naive-window`,
  by default the longest of 4, 3, 2, 1.5 and 1 s whose decode, timed here before the run, takes
  at most 80 % of a hop: a baseline that keeps up with real time (a slower one falls behind and
  its latency grows without bound). Each row says whether it kept up.

Latency of a character = the clock when it first shows (text equal, start within 2 frames of
the offline decode's character) minus the moment its audio ended. Characters of the offline
decode that never show that way are counted and printed ("unshown"): p50/p95 are over the shown
ones, and p95 all counts the unshown as never arriving (∞ once more than 5 % are unshown).
Agreement (every row) = 1 - CER of the strategy's final transcript against the offline decode
(engine.transcribe) of the same audio; for two-pass, of its finals. Random weights sit near
ties, so agreement is only meaningful with a trained model (`--model demo`). Final latency =
the clock when a final appears minus the end of its segment's speech: where the sound of its
last character ends in the samples (`sound_end`); also printed from that character's end as
the model times it, which comes earlier. The two-pass row counts a character as shown when
a partial or a final shows it; the row under it, `its partials`, counts the partials only (with
the finals' compute on the same clock), and its p50/p95 are the last line's. The last line:
`finals agreement: X %  partial p50/p95: A/B ms  final p95: C ms`.

`--passages N` streams N held-out passages of 3-5 sentences with 0.5-1.5 s pauses, synthesized
with espeak-ng (engine.tune.synth; cached in bench/.cache), instead of --audio's clips.

    .venv/bin/python bench/bench_stream.py                   # full-size random XLSR-53 model
    .venv/bin/python bench/bench_stream.py --model demo      # resources/demo-model
    .venv/bin/python bench/bench_stream.py --model demo --passages 6 --seconds 120
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.model import DEMO_MODEL_DIR, LoadOptions, load_model  # noqa: E402
from engine.results import Char, Segment  # noqa: E402
from engine.stream import SegmentFinal, StreamingTranscriber, StreamOptions  # noqa: E402
from engine.transcribe import Transcriber  # noqa: E402
from engine.twopass import PARTIAL_OPTIONS, TwoPassTranscriber  # noqa: E402

SR = 16_000
CACHE = ROOT / "bench" / ".cache"
AUDIO = ROOT.parent / "shared" / "audio"
CORPUS = ROOT / "resources" / "corpus" / "general" / "heldout.txt"
# samples (None: end) -> [(view, the final shown by it or None)]
Process = Callable[[np.ndarray | None], list[tuple[list[Char], SegmentFinal | None]]]


def model_path(name: str) -> Path:
    if name == "demo":
        if not DEMO_MODEL_DIR.is_dir():
            sys.exit(f"{DEMO_MODEL_DIR} does not exist yet; build the demo model first")
        return DEMO_MODEL_DIR
    if name == "full":
        path = CACHE / "xlsr53-large-random"  # the one bench_transcribe.py builds
        if not (path / "model.safetensors").is_file():
            from engine.testmodels import build_model

            print(f"building the full-size random model in {path} ...", flush=True)
            build_model(path, "full", seed=0)
        return path
    return Path(name)


def speech(seconds: float, manifest: Path) -> tuple[np.ndarray, str | None]:
    """Clips listed in a manifest (TSV with a `file` or `path` column, relative to it) joined
    with 0.5 s pauses, cut to `seconds`, and their joined `text` (None: the manifest has none,
    or the last clip was cut)."""
    from engine.audio import load_audio

    if not manifest.is_file():
        sys.exit(f"{manifest} not found: pass --audio with a manifest of Mandarin clips")
    with open(manifest, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    parts, total, texts = [], 0, []
    for row in rows:
        clip = load_audio(manifest.parent / (row.get("file") or row.get("path")))
        parts += [clip, np.zeros(SR // 2, np.float32)]
        total += len(parts[-2]) + SR // 2
        texts.append(row.get("text"))
        if total >= seconds * SR:
            break
    whole = total - SR // 2 <= seconds * SR and None not in texts
    return np.concatenate(parts)[: round(seconds * SR)], "".join(texts) if whole else None


def passages(n: int) -> Path:
    """A manifest of `n` synthesized passages of 3-5 held-out sentences with pauses (cached)."""
    from engine.tune.synth import SynthOptions, read_sentences, synthesize

    out = CACHE / f"stream-passages-{n}"
    if not (out / "manifest.tsv").is_file():
        print(f"synthesizing {n} passages into {out} ...", flush=True)
        options = SynthOptions(seed=14, sentences_range=(3, 5), silence_range=(0.5, 1.5))
        for _ in synthesize(read_sentences(CORPUS)[: 5 * n], out, options):
            pass
    return out / "manifest.tsv"


def simulate(
    process: Process, audio: np.ndarray, block: float, timer: Callable[[], float]
) -> tuple[list, float]:
    """Feed `audio` in real time with a simulated clock that advances by the compute time
    `timer` measures; returns [(clock, view, final or None)] and the compute seconds spent."""
    clock, pos, events, compute = 0.0, 0, [], 0.0
    step = round(block * SR)
    while True:
        arrived = min(len(audio), int(clock * SR + 1e-6) // step * step)
        if arrived <= pos and pos < len(audio):
            clock = (pos // step + 1) * step / SR
            continue
        final = pos >= len(audio)
        t0 = timer()
        views = process(None if final else audio[pos:arrived])
        dt = timer() - t0
        clock, compute = clock + dt, compute + dt
        events += [(clock, v, f) for v, f in views]
        if final:
            return events, compute
        pos = arrived


def streaming(transcriber: Transcriber, options: StreamOptions) -> tuple[Process, list[Char]]:
    stream = StreamingTranscriber(transcriber, options)
    committed: list[Char] = []

    def process(samples: np.ndarray | None) -> list[tuple[list[Char], None]]:
        updates = stream.finish() if samples is None else stream.push(samples)
        views = []
        for u in updates:
            committed.extend(u.committed)
            views.append(([*committed, *u.tail], None))
        return views

    return process, committed


def two_pass(transcriber: Transcriber, options: StreamOptions) -> tuple[Process, list[Char]]:
    """The two-pass view: finals, then streamed characters not yet replaced, then the tail.
    Returns the process and the finals' characters."""
    stream = TwoPassTranscriber(transcriber, options)
    finals: list[Char] = []
    streamed: list[Char] = []  # committed, not yet replaced by a final
    tail: list[Char] = []

    def process(samples: np.ndarray | None) -> list[tuple[list[Char], SegmentFinal | None]]:
        updates = stream.finish() if samples is None else stream.push(samples)
        views = []
        for u in updates:
            if isinstance(u, SegmentFinal):
                del streamed[: u.replaces]
                finals.extend(u.segment.chars)
            else:
                streamed.extend(u.committed)
                tail[:] = u.tail
            views.append(([*finals, *streamed, *tail], u if isinstance(u, SegmentFinal) else None))
        return views

    return process, finals


def naive(transcriber: Transcriber, window: float, hop: float) -> tuple[Process, list[Char]]:
    """Re-decode the last `window` seconds every `hop` (catching up like the streamer). Its
    transcript: characters of each decode that start before the next decode's window (they
    are never decoded again), then all of the last decode."""
    frame = transcriber.geometry.hop
    state = {"audio": np.zeros(0, np.float32), "done": 0, "view": []}
    hop_n, win_n = round(hop * SR), round(window * SR) // frame * frame
    transcript: list[Char] = []

    def process(samples: np.ndarray | None) -> list[tuple[list[Char], None]]:
        if samples is not None:
            state["audio"] = np.concatenate([state["audio"], samples])
        audio = state["audio"]
        if samples is not None and len(audio) - state["done"] < hop_n:
            return []
        state["done"] = len(audio)
        start = max(0, (len(audio) - win_n) // frame * frame)
        transcript.extend(c for c in state["view"] if c.start < start / SR)
        lp = transcriber.log_probs([audio[start:]])[0]
        state["view"] = [c for c in transcriber.chars(lp, start / SR) if c.start >= start / SR]
        if samples is None:
            transcript.extend(state["view"])
        return [([*transcript, *state["view"]], None)]

    return process, transcript


def keeping_up_window(
    transcriber: Transcriber, audio: np.ndarray, hop: float, timer: Callable[[], float]
) -> float:
    """The longest naive window whose decode takes at most 80 % of a hop (best of 2 timings)."""
    for window in (4.0, 3.0, 2.0, 1.5):
        x = audio[: round(window * SR)]
        cost = []
        for _ in range(2):
            t0 = timer()
            transcriber.log_probs([x])
            cost.append(timer() - t0)
        if min(cost) <= 0.8 * hop:
            return window
    return 1.0


def latencies(events: list, reference: list[Char], frame: float) -> np.ndarray:
    """Seconds from each reference character's end to its first sighting (nan: never)."""
    out = np.full(len(reference), np.nan)
    for i, ref in enumerate(reference):
        for clock, view, _ in events:
            if any(c.text == ref.text and abs(c.start - ref.start) <= 2 * frame for c in view):
                out[i] = clock - ref.end
                break
    return out


def partial_events(events: list) -> list:
    """The two-pass events as the streaming pass alone shows them: each partial view without
    the finals before it (a character a final shows first is not a partial's)."""
    out, replaced = [], 0
    for clock, view, final in events:
        if final is not None:
            replaced += len(final.segment.chars)
        else:
            out.append((clock, view[replaced:], None))
    return out


def final_latencies(events: list, audio: np.ndarray | None = None) -> np.ndarray:
    """Seconds from the end of each final's last character to the final; with `audio`, from
    the end of the sound that character belongs to (`sound_end`)."""
    return np.array(
        [
            clock - (f.segment.chars[-1].end if audio is None else sound_end(audio, f))
            for clock, _, f in events
            if f and f.segment.chars
        ]
    )


def sound_end(audio: np.ndarray, final: SegmentFinal) -> float:
    """Where the speech of a final's last character ends in the audio: the start of the first
    0.2 s of silence (20 ms frames below -40 dBFS) from the character's start on. A CTC model
    times a character by the frames it fires on, which end before its syllable does (on the
    synthesized passages, whose pauses are digital silence, by ~0.3 s); worked out here from
    the samples alone, apart from the stream's own voice-activity detector."""
    frame = SR // 50
    start = int(final.segment.chars[-1].start * SR) // frame * frame
    x = audio[start : start + 10 * SR]
    n = len(x) // frame
    rms = np.sqrt(np.mean(np.square(x[: n * frame].reshape(n, frame), dtype=np.float64), axis=1))
    silent = 20 * np.log10(np.maximum(rms, 1e-10)) <= -40
    run = 10  # frames: 0.2 s
    for i in range(n - run + 1):
        if silent[i : i + run].all():
            return (start + i * frame) / SR
    return (start + n * frame) / SR


def agreement(reference: list[Char], committed: list[Char]) -> float:
    import jiwer

    ref = "".join(c.text for c in reference)
    hyp = "".join(c.text for c in committed)
    if not ref:
        return float("nan")
    return max(0.0, 1.0 - jiwer.cer(" ".join(ref), " ".join(hyp) or "∅"))


def offline(
    transcriber: Transcriber, audio: np.ndarray, timer: Callable[[], float]
) -> tuple[list[Char], float]:
    t0 = timer()
    items, _ = transcriber.transcribe(audio)
    chars = [c for item in items if isinstance(item, Segment) for c in item.chars]
    return chars, timer() - t0


def cer(text: str, chars: list[Char]) -> float:
    """Character error rate (%) of `chars` against a reference text."""
    return 100 * (1 - agreement([Char(t, 0, 0, 1) for t in text], chars))


def _ms(value: float) -> str:
    return "∞" if value == np.inf else f"{value:.0f}"


def _spread(seconds: np.ndarray) -> str:
    """p50/p95/max of latencies in seconds, as milliseconds."""
    ms = [np.percentile(seconds, 50), np.percentile(seconds, 95), seconds.max()]
    return "/".join(_ms(v * 1000) for v in ms)


HEADER = (
    f"{'strategy':<18}{'p50 ms':>7}{'p95 ms':>7}{'p95 all':>8}{'unshown':>10}"
    f"{'compute/audio':>14}{'keeps up':>9}{'agreement':>10}{'p50 naive/this':>15}"
)


def report(
    name: str,
    lat: np.ndarray,
    compute: float,
    seconds: float,
    agree: float,
    base_p50: float | None,
) -> float:
    """One row; returns the p50 and p95 (ms) of the shown characters. `base_p50` is the
    baseline's p50 (None: this row is the baseline); the ratio is n/a where either side
    showed no character, not a 1.00x that reads as "as fast"."""
    shown = lat[~np.isnan(lat)]
    p50, p95 = np.percentile(shown, [50, 95]) * 1000 if len(shown) else (np.nan, np.nan)
    everything = np.where(np.isnan(lat), np.inf, lat)
    p95_all = np.percentile(everything, 95, method="higher") * 1000 if len(lat) else np.nan
    unshown = f"{len(lat) - len(shown)}/{len(lat)}"
    if base_p50 is None:
        ratio = f"{1:14.2f}x"
    elif np.isfinite(base_p50) and np.isfinite(p50) and p50 > 0:
        ratio = f"{base_p50 / p50:14.2f}x"
    else:
        ratio = f"{'n/a':>15}"
    keeps_up = "yes" if compute < seconds else "NO"
    print(
        f"{name:<18}{p50:7.0f}{p95:7.0f}{_ms(p95_all):>8}{unshown:>10}{compute / seconds:14.2f}"
        f"{keeps_up:>9}{agree * 100:9.1f}%{ratio}"
    )
    return p50, p95


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="full", help="full | demo | a checkpoint folder")
    ap.add_argument("--seconds", type=float, default=20.0, help="audio to stream")
    ap.add_argument(
        "--audio",
        type=Path,
        default=AUDIO / "manifest.tsv",
        help="manifest of clips to stream (default: the shared real Mandarin clips; for the "
        "demo model, a synthetic set such as out/synth/gh/manifest.tsv)",
    )
    ap.add_argument(
        "--passages",
        type=int,
        default=0,
        help="stream N synthesized held-out passages with pauses instead of --audio",
    )
    ap.add_argument("--block", type=float, default=0.05, help="microphone block (s)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: cores usable)")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    ap.add_argument("--hop", type=float, default=0.3)
    ap.add_argument(
        "--contexts",
        default="1.0:0.6,0.5:0.3,0.3:0.2",
        help="streaming settings to compare, LEFT:RIGHT context seconds, comma-separated "
        "(the first is StreamOptions' default)",
    )
    ap.add_argument(
        "--partials",
        default=f"{PARTIAL_OPTIONS.left_context_seconds:g}:"
        f"{PARTIAL_OPTIONS.right_context_seconds:g}:{PARTIAL_OPTIONS.hop_seconds:g}",
        help="the two-pass run's first pass, LEFT:RIGHT:HOP seconds (default: the app's, "
        "engine.twopass.PARTIAL_OPTIONS)",
    )
    ap.add_argument(
        "--naive-window",
        type=float,
        default=0.0,
        help="seconds the naive baseline re-decodes every hop (0: the longest that keeps up)",
    )
    ap.add_argument(
        "--reuse-features",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="StreamOptions.reuse_features (off: per-window normalization, as offline)",
    )
    ap.add_argument(
        "--clock",
        default="wall",
        choices=("wall", "cpu"),
        help="wall: elapsed time (counts other programs' load); cpu: this thread's CPU time, "
        "i.e. a dedicated core (forces --threads 1)",
    )
    args = ap.parse_args()
    if args.clock == "cpu":
        args.threads = 1
    timer = time.thread_time if args.clock == "cpu" else time.perf_counter

    import torch

    loaded = load_model(model_path(args.model), LoadOptions(precision=args.precision))
    transcriber = Transcriber(loaded)
    if args.threads:
        torch.set_num_threads(args.threads)
    manifest = passages(args.passages) if args.passages else args.audio
    audio, text = speech(args.seconds, manifest)
    seconds = len(audio) / SR
    cpu = platform.processor() or platform.machine()
    print(
        f"model {args.model} ({loaded.precision}, {loaded.attention}), {seconds:.1f} s of "
        f"{manifest}, "
        f"{os.cpu_count()} cores ({cpu}), torch threads {torch.get_num_threads()}, load average "
        f"{os.getloadavg()[0]:.1f}, block {args.block * 1000:.0f} ms, {args.clock} clock"
    )
    print(
        f"streaming hop {args.hop} s, reuse_features {args.reuse_features}; the two-pass "
        f"run's first pass (left:right:hop) {args.partials}"
    )
    reference, offline_s = offline(transcriber, audio, timer)
    print(f"offline decode: {len(reference)} characters, compute/audio {offline_s / seconds:.2f}")
    frame = transcriber.frame_seconds

    window = args.naive_window or keeping_up_window(transcriber, audio, args.hop, timer)
    print(HEADER)
    process, transcript = naive(transcriber, window, args.hop)
    base_events, base_compute = simulate(process, audio, args.block, timer)
    base_lat = latencies(base_events, reference, frame)
    agree = agreement(reference, transcript)
    base_p50, _ = report(f"naive {window:g} s", base_lat, base_compute, seconds, agree, None)

    contexts = [tuple(float(x) for x in pair.split(":")) for pair in args.contexts.split(",")]
    options = [
        StreamOptions(
            hop_seconds=args.hop,
            left_context_seconds=left,
            right_context_seconds=right,
            reuse_features=args.reuse_features,
        )
        for left, right in contexts
    ]
    streamed = []
    for (left, right), o in zip(contexts, options, strict=True):
        process, committed = streaming(transcriber, o)
        streamed.append(committed)
        events, compute = simulate(process, audio, args.block, timer)
        agree = agreement(reference, committed)
        lat = latencies(events, reference, frame)
        report(f"stream {left}/{right}", lat, compute, seconds, agree, base_p50)
    left, right, hop = (float(x) for x in args.partials.split(":"))
    first_pass = StreamOptions(
        hop_seconds=hop,
        left_context_seconds=left,
        right_context_seconds=right,
        reuse_features=args.reuse_features,
    )
    process, finals = two_pass(transcriber, first_pass)
    events, compute = simulate(process, audio, args.block, timer)
    agree = agreement(reference, finals)
    lat = latencies(events, reference, frame)
    name = f"two-pass {left:g}/{right:g}"
    report(name, lat, compute, seconds, agree, base_p50)
    # Its partials alone: latency of what the streaming pass shows while the finals share the
    # clock; what only a final shows counts as unshown here (the final latency is its own).
    partial_lat = latencies(partial_events(events), reference, frame)
    p50, p95 = report("  its partials", partial_lat, compute, seconds, agree, base_p50)
    by_char, final_lat = final_latencies(events), final_latencies(events, audio)
    print(
        f"two-pass: {len(final_lat)} finals; final latency p50/p95/max after the end of the "
        f"segment's speech {_spread(final_lat)} ms, after its last character's end "
        f"{_spread(by_char)} ms"
    )
    if text is not None:
        print(
            f"against the manifest's text, CER: offline {cer(text, reference):.1f} %, "
            f"stream {contexts[0][0]}/{contexts[0][1]} {cer(text, streamed[0]):.1f} %, "
            f"two-pass finals {cer(text, finals):.1f} %"
        )
    print(
        "targets: partial p50 <= 300 ms, p95 <= 600 ms (full-size); finals vs offline >= 98 %, "
        "final p95 <= 1000 ms (trained model)"
    )
    print(
        f"finals agreement: {agree * 100:.1f} %  partial p50/p95: {p50:.0f}/{p95:.0f} ms  "
        f"final p95: {np.percentile(final_lat, 95) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
