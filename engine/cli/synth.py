"""`tingxie-cli synth`: render sentences into a synthetic Mandarin speech corpus."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="synthesize Mandarin speech (espeak-ng) from a text file, with augmentation",
        description="Render each line of TEXT as 16 kHz speech with espeak-ng's pinyin voice, "
        "varying speed, pitch, voice, reverberation and noise, and write OUT/wav/*.wav plus "
        "OUT/manifest.tsv (columns path, text). The same seed gives the same corpus.",
    )
    p.add_argument("text", type=Path, help="UTF-8 text file, one sentence per line")
    p.add_argument("out", type=Path, help="output folder (created)")
    p.add_argument("--copies", type=int, default=1, help="renderings per sentence (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--snr",
        type=str,
        default="clean,30,20,10",
        help="comma-separated SNRs in dB to draw from; 'clean' for none (default clean,30,20,10)",
    )
    p.add_argument(
        "--reverb", type=float, default=0.5, help="share of renderings with reverberation"
    )
    p.add_argument(
        "--sentences",
        default="1-1",
        help="passages: sentences per utterance, MIN-MAX consecutive lines joined by pauses "
        "(default 1-1: one sentence each)",
    )
    p.add_argument(
        "--silence",
        default="0-0",
        help="seconds of silence before and after each utterance, MIN-MAX (default 0-0)",
    )
    p.add_argument("--workers", type=int, default=2, choices=(1, 2), help="processes (default 2)")
    p.set_defaults(run=run)


def _range(option: str, text: str, kind: type) -> tuple:
    try:
        low, high = (kind(x) for x in text.split("-"))
    except ValueError as e:
        raise ValueError(f"{option} {text!r}: give MIN-MAX, e.g. {option} 1-3") from e
    return low, high


def _snrs(text: str) -> tuple[float | None, ...]:
    try:
        return tuple(None if s.strip() == "clean" else float(s) for s in text.split(","))
    except ValueError as e:
        raise ValueError(f"--snr {text!r}: give numbers in dB or 'clean', comma-separated") from e


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.tune.synth import SynthError, SynthOptions, read_sentences, synthesize

    try:
        options = SynthOptions(
            seed=args.seed,
            copies=args.copies,
            snr_choices=_snrs(args.snr),
            reverb_probability=args.reverb,
            sentences_range=_range("--sentences", args.sentences, int),
            silence_range=_range("--silence", args.silence, float),
            workers=args.workers,
        )
        sentences = read_sentences(args.text)
        seconds = 0.0
        with tqdm(unit="utt", file=sys.stderr, mininterval=1.0) as bar:
            for progress in synthesize(sentences, args.out, options):
                seconds += progress.seconds
                bar.total = progress.total
                bar.update(1)
    except (ValueError, SynthError, OSError) as e:
        print(f"tingxie-cli synth: {e}", file=sys.stderr)
        return 2
    print(
        f"{progress.total} utterances, {seconds / 3600:.2f} h of audio -> {args.out}/manifest.tsv"
    )
    return 0
