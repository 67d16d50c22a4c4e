"""`tingxie-cli synth`: render sentences into a synthetic Mandarin speech corpus."""

from __future__ import annotations

import argparse
import math
import sys
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from engine.atomic import folder_problem

from . import non_negative_int

if TYPE_CHECKING:
    from engine.tune.synth import SynthOptions

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="synthesize Mandarin speech (espeak-ng) from a text file, with augmentation",
        description="Render each line of TEXT as 16 kHz speech with espeak-ng's pinyin voice, "
        "varying speed, pitch, voice, reverberation and noise, and write OUT/wav/*.wav plus "
        "OUT/manifest.tsv (columns path, text). The same seed gives the same corpus. The wavs "
        "are rendered into a hidden folder beside OUT/wav and put in its place with the "
        "manifest once every utterance is rendered; Ctrl+C (or a failure) removes them and "
        "leaves OUT as it was.",
    )
    p.add_argument("text", type=Path, help="UTF-8 text file, one sentence per line")
    p.add_argument("out", type=Path, help="output folder (created)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a dataset already in OUT: its manifest.tsv and its whole wav/ folder, "
        "once the new corpus is rendered, kept until then (default: an OUT holding "
        "manifest.tsv or files in wav/, your own recordings or an earlier corpus, is refused "
        "before anything is rendered)",
    )
    p.add_argument("--copies", type=int, default=1, help="renderings per sentence (default 1)")
    p.add_argument(
        "--seed", type=non_negative_int, default=0, help="random seed, 0 or more (default 0)"
    )
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


def _range(option: str, text: str, kind: type, lowest: float, highest: float = math.inf) -> tuple:
    """MIN-MAX as typed for `option`, with lowest <= MIN <= MAX <= highest."""
    try:
        low, high = (kind(x) for x in text.split("-"))
    except ValueError as e:
        raise ValueError(f"{option} {text!r}: give MIN-MAX, e.g. {option} 1-3") from e
    if not lowest <= low <= high <= highest:
        bounds = f"{lowest:g} <= MIN <= MAX" + (f" <= {highest:g}" if highest < math.inf else "")
        raise ValueError(f"{option} {text}: give MIN-MAX with {bounds}, e.g. {option} 1-3")
    return low, high


def _snrs(text: str) -> tuple[float | None, ...]:
    """The SNRs as typed; nan or inf, which float() takes, rendered clips of NaN samples (or
    crashed a worker), so they are refused with the rest."""
    try:
        snrs = tuple(None if s.strip() == "clean" else float(s) for s in text.split(","))
    except ValueError:
        snrs = (math.nan,)
    if not all(s is None or math.isfinite(s) for s in snrs):
        raise ValueError(f"--snr {text!r}: give finite numbers in dB or 'clean', comma-separated")
    return snrs


def _options(args: argparse.Namespace) -> SynthOptions:
    """The options as typed, each error naming its option (SynthOptions' name its fields)."""
    from engine.tune.synth import SynthOptions

    if args.copies < 1:
        raise ValueError(f"--copies {args.copies}: give 1 or more renderings per sentence")
    if not 0.0 <= args.reverb <= 1.0:
        raise ValueError(f"--reverb {args.reverb:g}: give the share of renderings, 0 to 1")
    return SynthOptions(
        seed=args.seed,
        copies=args.copies,
        snr_choices=_snrs(args.snr),
        reverb_probability=args.reverb,
        sentences_range=_range("--sentences", args.sentences, int, 1),
        silence_range=_range("--silence", args.silence, float, 0, 30),
        workers=args.workers,
    )


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse, before anything is rendered, an OUT that holds a dataset (the user's own
    recordings and manifest, an earlier corpus) unless --overwrite, or cannot take files."""
    held = ["manifest.tsv"] if (out / "manifest.tsv").exists() else []
    if (out / "wav").is_dir() and any((out / "wav").iterdir()):
        held.append("files in wav/")
    if held and not overwrite:
        raise ValueError(
            f"{out} already holds a dataset ({', '.join(held)}); add --overwrite to replace "
            "it, or give another OUT folder"
        )
    problem = folder_problem(out)
    if problem:
        raise ValueError(f"{out}: {problem}; give another OUT folder")


def run(args: argparse.Namespace) -> int:
    from engine.tune.synth import SynthError, read_sentences

    try:
        options = _options(args)
        sentences = read_sentences(args.text)
        _check_out(args.out, args.overwrite)
        total, seconds = _render(sentences, args.out, options)
    except (ValueError, SynthError, OSError) as e:
        print(f"tingxie-cli synth: {e}", file=sys.stderr)
        return 2
    print(f"{total} utterances, {seconds / 3600:.2f} h of audio -> {args.out}/manifest.tsv")
    return 0


def _render(sentences: list[str], out: Path, options: SynthOptions) -> tuple[int, float]:
    """Render the corpus with a progress bar: utterances and seconds of audio. Ctrl+C is said
    in one line, saying what was left, and goes on to engine.cli's main (status 130)."""
    from tqdm import tqdm

    from engine.tune.synth import synthesize

    total, seconds = 0, 0.0
    try:
        with (
            tqdm(unit="utt", file=sys.stderr, mininterval=1.0) as bar,
            closing(synthesize(sentences, out, options)) as rendering,
        ):
            for progress in rendering:
                total, seconds = progress.total, seconds + progress.seconds
                bar.total = total
                bar.update(1)
    except KeyboardInterrupt:
        print(f"tingxie-cli synth: stopped: the wavs rendered are removed and {out} is left "
              "as it was", file=sys.stderr)  # fmt: skip
        raise
    return total, seconds
