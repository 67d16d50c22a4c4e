"""Whisper-base through Tingxie against plain faster-whisper on the real clips, in one run.

    .venv/bin/python bench/bench_whisper.py [--repeat 2] [--model DIR] [--data MANIFEST]

Both sides transcribe the same files of ../shared/audio/manifest.tsv (23 clips, ~3.6 min of
real Mandarin) with the same model and decoding (float32 on the CPU, every usable core,
Mandarin forced, beam 5, the same initial prompt, word timestamps on, no conditioning on the
previous text), each in its own subprocess (clean peak memory):

- plain: `faster_whisper.WhisperModel.transcribe(path, ...)`, reading the files itself, the
  segments consumed as a caller would;
- tingxie: `engine.loader` → `WhisperTranscriber.transcribe(path)`: the same decoding plus
  what Tingxie adds (engine.audio reading, pause detection with silero-vad, characters with
  times and confidences, Simplified conversion, the hallucination filter, segments).

Prints the CER of each (after OpenCC to Simplified and the normalization `evaluate` uses),
wall-clock and CPU-time throughput (CPU time is steadier when other work shares the machine;
with --repeat, the best of the interleaved runs), peak resident memory, and a last line with
the wrapper's cost (1 − Tingxie's CPU-time throughput / plain's; target ≤ 5 %) and Tingxie's
CER (target ≤ 15 %). These clips are not in Whisper's published training sets as far as their
sources say (AISHELL-1 test/dev and demo clips of open-source projects); Whisper's training
data is not public, so independence cannot be checked.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# engine.whisper.WHISPER_BASE_DIR, not imported: the plain side's process must not load
# Tingxie's modules (nor torch through them), or its memory and start-up would include them.
WHISPER_BASE_DIR = ROOT / ".cache" / "models" / "whisper-base"
MANIFEST = ROOT.parent / "shared" / "audio" / "manifest.tsv"


def _rows(manifest: Path) -> list[dict]:
    with open(manifest, encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _plain(model_dir: Path, files: list[Path], prompt: str) -> list[str]:
    from faster_whisper import WhisperModel

    model = WhisperModel(
        str(model_dir),
        device="cpu",
        compute_type="float32",
        cpu_threads=len(os.sched_getaffinity(0)),
    )
    texts = []
    for path in files:
        segments, _ = model.transcribe(
            str(path),
            language="zh",
            beam_size=5,
            initial_prompt=prompt,
            word_timestamps=True,
            condition_on_previous_text=False,
        )
        texts.append("".join(s.text for s in segments))
    return texts


def _tingxie(model_dir: Path, files: list[Path], prompt: str) -> list[str]:
    from engine.loader import load_model, transcriber_for
    from engine.results import Segment
    from engine.transcribe import TranscribeOptions

    transcriber = transcriber_for(load_model(model_dir))
    options = TranscribeOptions(initial_prompt=prompt)
    texts = []
    for path in files:
        items, _ = transcriber.transcribe(path, options)
        texts.append("".join(s.text for s in items if isinstance(s, Segment)))
    return texts


def _child(variant: str, model_dir: Path, manifest: Path, prompt: str) -> None:
    """Run one side and print its figures as one JSON line."""
    files = [manifest.parent / r["file"] for r in _rows(manifest)]
    began_wall, began_cpu = time.perf_counter(), time.process_time()
    texts = (_plain if variant == "plain" else _tingxie)(model_dir, files, prompt)
    wall, cpu = time.perf_counter() - began_wall, time.process_time() - began_cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"wall": wall, "cpu": cpu, "peak": peak, "texts": texts}, ensure_ascii=False))


def _run(variant: str, model_dir: Path, manifest: Path, prompt: str) -> dict:
    command = [sys.executable, __file__, "--child", variant, "--model", str(model_dir)]
    done = subprocess.run(
        [*command, "--data", str(manifest), "--prompt", prompt],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cer(rows: list[dict], texts: list[str]):
    from engine.metrics import cer
    from engine.normalize import normalize_text

    refs = [normalize_text(r["text_for_scoring"]) for r in rows]
    return cer(refs, [normalize_text(t) for t in texts])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (no engine.cli.positive_int: the plain side's process parses it too, and
    importing `engine` sets oneDNN's cache sizes for CTranslate2 as well)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=WHISPER_BASE_DIR)
    parser.add_argument(
        "--data",
        type=Path,
        default=MANIFEST,
        help="manifest.tsv of the clips (file, text_for_scoring and duration_s columns)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="interleaved runs; best kept")
    parser.add_argument("--child", choices=("plain", "tingxie"), help=argparse.SUPPRESS)
    parser.add_argument("--prompt", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"argument --repeat: {args.repeat} is not a whole number ≥ 1")
    if not args.data.is_file():
        parser.error(
            f"--data {args.data}: no such manifest; give a manifest.tsv with file, "
            f"text_for_scoring and duration_s columns (default: {MANIFEST})"
        )
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        _child(args.child, args.model, args.data, args.prompt)
        return
    from engine.transcribe import TranscribeOptions

    prompt = TranscribeOptions().initial_prompt
    if not (args.model / "model.bin").is_file():
        sys.exit(f"{args.model}: no Whisper model; run packaging/fetch-whisper-base.py")
    rows = _rows(args.data)
    seconds = sum(float(r["duration_s"]) for r in rows)
    best: dict[str, dict] = {}
    for _ in range(args.repeat):
        for variant in ("plain", "tingxie"):
            result = _run(variant, args.model, args.data, prompt)
            if variant not in best or result["cpu"] < best[variant]["cpu"]:
                best[variant] = result
    print(f"{len(rows)} clips, {seconds:.0f} s of audio, {len(os.sched_getaffinity(0))} cores")
    print(f"{'':8} {'CER':>7} {'wall s':>7} {'RTF':>6} {'CPU s':>7} {'peak RSS':>9}")
    cers = {}
    for variant, r in best.items():
        cers[variant] = _cer(rows, r["texts"]).cer
        print(
            f"{variant:8} {cers[variant]:7.2%} {r['wall']:7.1f} {r['wall'] / seconds:6.2f} "
            f"{r['cpu']:7.1f} {r['peak'] / 1e9:8.2f}G"
        )
    plain, ours = best["plain"], best["tingxie"]
    cost_cpu = 1 - plain["cpu"] / ours["cpu"]
    cost_wall = 1 - plain["wall"] / ours["wall"]
    print(
        f"whisper-base: Tingxie CER {cers['tingxie']:.2%} (target <= 15 %), plain "
        f"{cers['plain']:.2%}; wrapper cost {cost_cpu:.1%} CPU time, {cost_wall:.1%} wall "
        f"(target <= 5 %); peak RSS {ours['peak'] / 1e9:.2f} vs {plain['peak'] / 1e9:.2f} GB"
    )


if __name__ == "__main__":
    main()
