"""Streaming latency and agreement, against a naive sliding-window baseline in the same run.

Audio (real Mandarin clips from ../shared/audio, joined) is played to each strategy as a live
session would: a block every `--block` seconds of simulated clock, and compute time counts
(while a strategy computes, audio keeps arriving; it takes all that arrived at its next step).

- stream L/R: engine.stream.StreamingTranscriber (bounded left context L s, commit after R s
  of right context, reused convolutional features, catch-up), for each --contexts pair.
- naive: every hop, re-decode the last `--naive-window` seconds from scratch.

Latency of a character = the clock when it first shows (text equal, start within 2 frames of
the offline decode's character) minus the moment its audio ended. Agreement = 1 - CER of the
committed stream against the offline decode (engine.transcribe) of the same audio. Random
weights sit near ties, so agreement is only meaningful with a trained model (`--model demo`).

    .venv/bin/python bench/bench_stream.py                   # full-size random XLSR-53 model
    .venv/bin/python bench/bench_stream.py --model demo      # resources/demo-model
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
from engine.stream import StreamingTranscriber, StreamOptions  # noqa: E402
from engine.transcribe import Transcriber  # noqa: E402

SR = 16_000
CACHE = ROOT / "bench" / ".cache"
AUDIO = ROOT.parent / "shared" / "audio"
Process = Callable[[np.ndarray | None], list[list[Char]]]  # samples (None: end) -> views


def model_path(name: str) -> Path:
    if name == "demo":
        if not DEMO_MODEL_DIR.is_dir():
            sys.exit(f"{DEMO_MODEL_DIR} does not exist yet; build the demo model first")
        return DEMO_MODEL_DIR
    if name == "full":
        path = CACHE / "full-model"
        if not (path / "model.safetensors").is_file():
            from engine.testmodels import build_model

            print(f"building the full-size random model in {path} ...", flush=True)
            build_model(path, "full", seed=0)
        return path
    return Path(name)


def speech(seconds: float, manifest: Path) -> np.ndarray:
    """Clips listed in a manifest (TSV with a `file` or `path` column, relative to it) joined
    with 0.5 s pauses, cut to `seconds`."""
    from engine.audio import load_audio

    if not manifest.is_file():
        sys.exit(f"{manifest} not found: pass --audio with a manifest of Mandarin clips")
    with open(manifest, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    names = [row.get("file") or row.get("path") for row in rows]
    parts, total = [], 0
    for name in names:
        parts += [load_audio(manifest.parent / name), np.zeros(SR // 2, np.float32)]
        total += len(parts[-2]) + SR // 2
        if total >= seconds * SR:
            break
    return np.concatenate(parts)[: round(seconds * SR)]


def simulate(
    process: Process, audio: np.ndarray, block: float, timer: Callable[[], float]
) -> tuple[list, float]:
    """Feed `audio` in real time with a simulated clock that advances by the compute time
    `timer` measures; returns [(clock, view)] and the compute seconds spent."""
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
        events += [(clock, v) for v in views]
        if final:
            return events, compute
        pos = arrived


def streaming(transcriber: Transcriber, options: StreamOptions) -> tuple[Process, list[Char]]:
    stream = StreamingTranscriber(transcriber, options)
    committed: list[Char] = []

    def process(samples: np.ndarray | None) -> list[list[Char]]:
        updates = stream.finish() if samples is None else stream.push(samples)
        views = []
        for u in updates:
            committed.extend(u.committed)
            views.append([*committed, *u.tail])
        return views

    return process, committed


def naive(transcriber: Transcriber, window: float, hop: float) -> Process:
    """Re-decode the last `window` seconds every `hop` (catching up like the streamer)."""
    frame = transcriber.geometry.hop
    state = {"audio": np.zeros(0, np.float32), "done": 0}
    hop_n, win_n = round(hop * SR), round(window * SR) // frame * frame

    def process(samples: np.ndarray | None) -> list[list[Char]]:
        if samples is not None:
            state["audio"] = np.concatenate([state["audio"], samples])
        audio = state["audio"]
        if samples is not None and len(audio) - state["done"] < hop_n:
            return []
        state["done"] = len(audio)
        start = max(0, (len(audio) - win_n) // frame * frame)
        lp = transcriber.log_probs([audio[start:]])[0]
        return [transcriber.chars(lp, start / SR)]

    return process


def latencies(events: list, reference: list[Char], frame: float) -> np.ndarray:
    """Seconds from each reference character's end to its first sighting (nan: never)."""
    out = np.full(len(reference), np.nan)
    for i, ref in enumerate(reference):
        for clock, view in events:
            if any(c.text == ref.text and abs(c.start - ref.start) <= 2 * frame for c in view):
                out[i] = clock - ref.end
                break
    return out


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


def report(name: str, lat: np.ndarray, compute: float, seconds: float, extra: str = "") -> float:
    seen = lat[~np.isnan(lat)]
    p50, p95 = np.percentile(seen, [50, 95]) if len(seen) else (np.nan, np.nan)
    print(
        f"{name:<10} p50 {p50 * 1000:6.0f} ms  p95 {p95 * 1000:6.0f} ms  "
        f"seen {len(seen)}/{len(lat)}  compute/audio {compute / seconds:5.2f}{extra}"
    )
    return p50


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
    ap.add_argument("--naive-window", type=float, default=4.0)
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
    audio = speech(args.seconds, args.audio)
    seconds = len(audio) / SR
    cpu = platform.processor() or platform.machine()
    print(
        f"model {args.model} ({loaded.dtype}), {seconds:.1f} s of {args.audio}, "
        f"{os.cpu_count()} cores ({cpu}), torch threads {torch.get_num_threads()}, load average "
        f"{os.getloadavg()[0]:.1f}, block {args.block * 1000:.0f} ms, {args.clock} clock"
    )
    print(f"streaming hop {args.hop} s, reuse_features {args.reuse_features}")
    reference, offline_s = offline(transcriber, audio, timer)
    print(f"offline decode: {len(reference)} characters, compute/audio {offline_s / seconds:.2f}")
    frame = transcriber.frame_seconds

    # The baseline first: the streamer freezes the weight norm of the shared model.
    base_events, base_compute = simulate(
        naive(transcriber, args.naive_window, args.hop), audio, args.block, timer
    )
    base_p50 = report("naive", latencies(base_events, reference, frame), base_compute, seconds)

    for contexts in args.contexts.split(","):
        left, right = (float(x) for x in contexts.split(":"))
        options = StreamOptions(
            hop_seconds=args.hop,
            left_context_seconds=left,
            right_context_seconds=right,
            reuse_features=args.reuse_features,
        )
        process, committed = streaming(transcriber, options)
        events, compute = simulate(process, audio, args.block, timer)
        agree = agreement(reference, committed)
        lat = latencies(events, reference, frame)
        ratio = base_p50 / np.nanmedian(lat) if np.any(~np.isnan(lat)) else float("nan")
        extra = f"  agreement {agree * 100:5.1f} %  p50 ratio naive/this {ratio:.2f}x"
        report(f"stream {left}/{right}", lat, compute, seconds, extra)
    print("targets: p50 <= 300 ms, p95 <= 600 ms, agreement >= 99 % (trained model)")


if __name__ == "__main__":
    main()
