"""Speed of Tingxie against the Hugging Face ASR pipeline on the same long file, in one run.

    .venv/bin/python bench/bench_transcribe.py            # ~4 minutes of speech
    .venv/bin/python bench/bench_transcribe.py --minutes 1

Builds a random checkpoint with the exact architecture of the default model (XLSR-53 large,
cached in bench/.cache/), loops the real clips of ../shared/audio into one long file, and runs
each side in its own subprocess (clean peak memory, no shared caches):

- pipeline: `transformers.pipeline("automatic-speech-recognition", chunk_length_s=...)` with
  its defaults (fp32, batch 1, strides of chunk/6 on each side), as a user would call it;
- tingxie: `Transcriber` with default options and automatic precision (bf16 on CPUs with
  AVX512-BF16/AMX), batched chunks;
- tingxie-fp32 (unless --skip-fp32): the same in fp32, to separate the precision gain from the
  rest and to check that decoding agrees with the pipeline when both compute in fp32.

Prints wall-clock and CPU-time throughput ratios (CPU time is steadier when other processes
share the machine), real-time factors, peak resident memory and the character agreement of
the texts (1 − CER of each text against the pipeline's). Random weights sit near ties, so bf16
flips some argmaxes: agreement here measures plumbing, not accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"
SHARED_AUDIO = ROOT.parent / "shared" / "audio"
SR = 16_000
# Audio decoded in one pass (no chunks) to measure how chunking changes the text.
SINGLE_PASS_SECONDS = 60.0


class PeakRss:
    """Samples this process's resident memory every 50 ms (torch allocates outside Python's
    tracemalloc), reporting the peak while active."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def build_full_model() -> Path:
    """The full-size random checkpoint, built once into bench/.cache."""
    from engine.testmodels import build_model

    path = CACHE / "xlsr53-large-random"
    if (path / "model.safetensors").is_file():
        return path
    tmp = CACHE / "xlsr53-large-random.partial"
    print(f"building the full-size random model in {path} (once) …", flush=True)
    build_model(tmp, "full", seed=0)
    tmp.rename(path)
    return path


def build_long_audio(minutes: float) -> Path:
    """The shared clips, resampled to 16 kHz and looped with 0.4 s gaps to `minutes`."""
    import numpy as np

    from engine.audio import load_audio, write_wav

    path = CACHE / f"long-{minutes:g}min.wav"
    if path.is_file():
        return path
    rows = (SHARED_AUDIO / "manifest.tsv").read_text(encoding="utf-8").splitlines()[1:]
    clips = [load_audio(SHARED_AUDIO / row.split("\t")[0]) for row in rows if row.strip()]
    gap = np.zeros(int(0.4 * SR), np.float32)
    pieces, total, want = [], 0, int(minutes * 60 * SR)
    while total < want:
        for clip in clips:
            pieces += [clip, gap]
            total += len(clip) + len(gap)
    write_wav(path, np.concatenate(pieces)[:want])
    return path


def run_pipeline(model: Path, audio_path: Path, chunk_seconds: float) -> tuple[str, dict]:
    from transformers import pipeline

    from engine.audio import load_audio

    asr = pipeline("automatic-speech-recognition", model=str(model), chunk_length_s=chunk_seconds)
    audio = load_audio(audio_path)
    asr(audio[: 2 * SR].copy())  # warm-up (one-time kernel set-up)
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    text = asr(audio.copy())["text"]
    return text, {"seconds": time.perf_counter() - t0, "cpu_seconds": _cpu_seconds() - cpu0}


def chunk_agreement(t, audio_path: Path, seconds: float, options) -> float:
    """1 − CER of the chunked text against one pass over the first `seconds` of the file."""
    from engine.audio import load_audio
    from engine.results import Segment

    x = load_audio(audio_path)[: int(seconds * SR)]
    single = "".join(c.text for c in t.chars(t.log_probs([x])[0]))
    chunked = "".join(s.text for s in t.transcribe(x, options)[0] if isinstance(s, Segment))
    return agreement(single, chunked)


def run_tingxie(
    model: Path, audio_path: Path, precision: str, chunk_seconds: float, batch_size: int
) -> tuple[str, dict]:
    import numpy as np

    from engine.model import LoadOptions, load_model
    from engine.results import Segment
    from engine.transcribe import TranscribeOptions, Transcriber

    loaded = load_model(model, LoadOptions(precision=precision))
    t = Transcriber(loaded)
    options = TranscribeOptions(chunk_seconds=chunk_seconds, batch_size=batch_size)
    list(t.transcribe(np.zeros(2 * SR, np.float32), options)[0])  # warm-up
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    stream, _ = t.transcribe(audio_path, options)
    text = "".join(s.text for s in stream if isinstance(s, Segment))
    figures = {"seconds": time.perf_counter() - t0, "cpu_seconds": _cpu_seconds() - cpu0}
    figures.update(
        precision=loaded.precision,
        attention=loaded.attention,
        chunk_agreement=chunk_agreement(t, audio_path, SINGLE_PASS_SECONDS, options),
    )
    return text, figures


def worker(args: argparse.Namespace) -> None:
    """One side, in its own process; writes its figures as JSON."""
    import torch

    from engine.audio import probe

    with PeakRss() as mem:
        if args.side == "pipeline":
            text, figures = run_pipeline(args.model, args.audio, args.chunk_seconds)
        else:
            precision = "fp32" if args.side == "tingxie-fp32" else "auto"
            text, figures = run_tingxie(
                args.model, args.audio, precision, args.chunk_seconds, args.batch_size
            )
    figures.update(
        side=args.side,
        text=text,
        audio_seconds=probe(args.audio).duration,
        peak_rss_mb=mem.peak / 2**20,
        threads=torch.get_num_threads(),
    )
    args.result.write_text(json.dumps(figures, ensure_ascii=False), encoding="utf-8")


def run_side(side: str, model: Path, audio: Path, args: argparse.Namespace) -> dict:
    result = CACHE / f"result-{side}.json"
    result.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        __file__,
        "--side",
        side,
        "--model",
        str(model),
        "--audio",
        str(audio),
        "--result",
        str(result),
        "--chunk-seconds",
        str(args.chunk_seconds),
        "--batch-size",
        str(args.batch_size),
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    print(f"running {side} …", flush=True)
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    return json.loads(result.read_text(encoding="utf-8"))


def agreement(reference: str, hypothesis: str) -> float:
    import jiwer

    # the pipeline's text keeps <unk> and spaces (word delimiters); Tingxie emits neither
    ref, hyp = (re.sub(r"<[^>]*>|\s", "", t) for t in (reference, hypothesis))
    return max(0.0, 1 - jiwer.cer(ref, hyp)) if ref else float(not hyp)


def report(results: list[dict]) -> None:
    base = results[0]
    print()
    print(
        f"audio: {base['audio_seconds']:.1f} s; CPU: {_cpu_name()}; torch threads: "
        f"{base['threads']}; load average at the end: {os.getloadavg()[0]:.1f}"
    )
    header = f"{'side':<14}{'wall s':>8}{'RTF':>8}{'×wall':>8}{'CPU s':>8}{'×CPU':>7}"
    print(header + f"{'peak MB':>9}{'chars':>7}{'agree':>8}")
    for r in results:
        print(
            f"{r['side']:<14}{r['seconds']:>8.1f}{r['seconds'] / r['audio_seconds']:>8.3f}"
            f"{base['seconds'] / r['seconds']:>8.2f}{r['cpu_seconds']:>8.1f}"
            f"{base['cpu_seconds'] / r['cpu_seconds']:>7.2f}{r['peak_rss_mb']:>9.0f}"
            f"{len(''.join(r['text'].split())):>7}{agreement(base['text'], r['text']):>8.3f}"
        )
    print(
        "×wall / ×CPU: throughput relative to the pipeline (higher is faster); "
        "agree: 1 − CER against the pipeline's text"
    )
    for r in results[1:]:
        print(
            f"{r['side']}: chunked vs one-pass text on the first {SINGLE_PASS_SECONDS:g} s: "
            f"{r['chunk_agreement']:.3f} (1 − CER)"
        )


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=4.0, help="length of the test file")
    p.add_argument("--chunk-seconds", type=float, default=20.0, help="chunk length, both sides")
    p.add_argument("--batch-size", type=int, default=4, help="Tingxie's chunks per forward pass")
    p.add_argument("--skip-fp32", action="store_true", help="skip the Tingxie fp32 run")
    p.add_argument(
        "--side", choices=("pipeline", "tingxie", "tingxie-fp32"), help=argparse.SUPPRESS
    )
    p.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    sys.path.insert(0, str(ROOT))
    if args.side:
        worker(args)
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    model, audio = build_full_model(), build_long_audio(args.minutes)
    sides = ["pipeline", "tingxie"] + ([] if args.skip_fp32 else ["tingxie-fp32"])
    report([run_side(side, model, audio, args) for side in sides])


if __name__ == "__main__":
    main()
