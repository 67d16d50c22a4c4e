"""What ten minutes of corrections buy for Whisper-base, the model the app runs offline.

The same story as `bench_learn.py` (the CTC demo model), told for Whisper:

1. The same ten minutes of synthetic medicine audio (espeak-ng) stand in for a user's
   corrections: a voice and a domain Whisper-base hears badly.
2. One tuning job (`engine.tune.loop.run_job`, which runs `engine.tune.whisper_job`: LoRA on the
   CTranslate2 folder the app runs, converted back), capped at --budget minutes of this CPU by
   its time limit (the learning rate reaches 0 at the limit).
3. CER before and after, by the transcriber users get, on *different* recordings of sentences
   written independently of every tuning sentence (`independent-test.txt`, as bench_learn), and
   on the real Mandarin clips of ../shared/audio (other voices, other text: what the tuning
   must not break).

    .venv/bin/python bench/bench_learn_whisper.py [--split dev|test] [--budget 10] [--lr 1e-3]
        [--replay N]   # N general synthetic utterances mixed in against forgetting

Every option is checked before any audio is made. Last line:
`relative CER cut: X %  (tuning N.N min, real voices +/-P pt)`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench_accuracy import REPLAY_LIMIT, ROOT, manifest_rows, replay_count, synth_text
from bench_learn import (
    MANY_VOICES,
    MEDICINE,
    TUNE_SECONDS,
    checked_settings,
    corrections,
    tune,
    tuning_data,
)

if TYPE_CHECKING:
    from engine.tune.config import TuneConfig

REAL = ROOT.parent / "shared" / "audio" / "manifest.tsv"


def whisper_cer(model: Path, manifest: Path) -> tuple[float, float]:
    """CER of a Whisper folder on a manifest's rows (CTranslate2, the app's decoding and the
    tuning jobs' normalization) and the seconds it took."""
    from engine.loader import load_model
    from engine.metrics import cer
    from engine.tune.data import load_dataset
    from engine.tune.evaluate import EvalOptions, score_examples

    began = time.perf_counter()
    rows = list(score_examples(load_model(model), load_dataset(manifest).examples, EvalOptions()))
    result = cer([r.reference for r in rows], [r.hypothesis for r in rows])
    return result.cer, time.perf_counter() - began


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, TuneConfig]:
    """The command line and the tuning job's settings, every option checked before any audio
    is made (a refused setting named by its option: bench_learn.checked_settings)."""
    from engine.whisper import WHISPER_BASE_DIR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("dev", "test"), default="test")
    parser.add_argument("--budget", type=float, default=10.0, help="tuning cap in minutes")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank")
    parser.add_argument(
        "--replay",
        type=replay_count,
        default=0,
        help=f"general synthetic utterances mixed in, 0 (none) to {REPLAY_LIMIT}",
    )
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "bench-learn")
    args = parser.parse_args(argv)
    out = args.work / f"whisper-lora-{args.lr:g}-r{args.rank}-replay{args.replay}"
    settings = checked_settings(
        parser, model=str(WHISPER_BASE_DIR), output_dir=str(out), method="lora",
        steps=100_000, max_minutes=args.budget, learning_rate=args.lr, lora_rank=args.rank,
        heldout_fraction=0.0, save_every=0, seed=0,
    )  # fmt: skip
    return args, settings


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args, settings = parse_args(argv)
    base = Path(settings.model)
    if not (base / "model.bin").is_file():
        sys.exit(f"{base} is absent: run packaging/fetch-whisper-base.py")
    if not REAL.is_file():
        sys.exit(f"{REAL} is absent: the real clips are the check on what tuning breaks")
    work = args.work
    # The published figures used the many-voice corrections (bench_learn's default).
    domain, seconds = corrections(work, TUNE_SECONDS, MANY_VOICES)
    test = synth_text(MEDICINE / f"independent-{args.split}.txt", work, 1, 41)
    print(
        f"corrections: {len(manifest_rows(domain))} utterances, {seconds / 60:.1f} min of "
        f"synthetic audio; medicine {args.split}: {len(manifest_rows(test))} recordings of "
        "independently written sentences; real voices: ../shared/audio"
    )
    d_before, d_time = whisper_cer(base, test)
    g_before, g_time = whisper_cer(base, REAL)
    print(f"Whisper-base: medicine {args.split} CER {d_before:.2%} ({d_time:.0f} s), real "
          f"voices {g_before:.2%} ({g_time:.0f} s)")  # fmt: skip

    data = tuning_data(work, domain, args.replay, repeat=1) if args.replay else domain
    shutil.rmtree(settings.output_dir, ignore_errors=True)
    tuned, steps, seconds = tune(dataclasses.replace(settings, data=str(data)), every=5)
    minutes = seconds / 60
    d_after, _ = whisper_cer(tuned, test)
    g_after, _ = whisper_cer(tuned, REAL)
    cut = 1 - d_after / d_before if d_before else 0.0
    rise = (g_after - g_before) * 100
    replay = f", {args.replay} general utterances replayed" if args.replay else ""
    print(f"LoRA (rank {args.rank}, lr {args.lr:g}{replay}): {steps} steps of 8 utterances in "
          f"{minutes:.1f} min (limit {args.budget:g} min, export included)")  # fmt: skip
    print(f"medicine {args.split} CER {d_before:.2%} -> {d_after:.2%}: {cut:.1%} relative cut")
    print(f"real voices CER {g_before:.2%} -> {g_after:.2%}: {rise:+.2f} points")
    print(f"relative CER cut: {cut * 100:.0f} %  (tuning {minutes:.1f} min, real voices "
          f"{rise:+.1f} pt)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
