"""`tingxie-cli embed`: the model's vectors for audio files, per frame (with times) or per file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "embed",
        help="write the model's hidden states for audio files (per frame or per file)",
        description="For each FILE, write the hidden states of one layer of the model: one "
        "vector per 20 ms frame with its start and end time (--pool none), or their mean "
        "(--pool mean). npy: OUT/STEM.npy and OUT/STEM.times.npy; parquet: OUT/STEM.parquet "
        "with columns start, end, vector (STEM-2, STEM-3… for files that share a name).",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="audio or video files")
    p.add_argument("--model", required=True, help="model folder or Hub id")
    p.add_argument("--layer", type=int, default=-1, help="0 = transformer input, -1 = last")
    p.add_argument("--pool", choices=("none", "mean"), default="none")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--format", choices=("npy", "parquet"), default="npy")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.audio import AudioError
    from engine.embed import EmbedOptions, embed, write_embedding
    from engine.model import LoadOptions, ModelLoadError, load_model
    from engine.registry import is_onnx_export
    from engine.watch import unique_base

    from .transcribe import OutputError, _check_folder, failure_line, summary

    try:
        options = EmbedOptions(layer=args.layer, pool=args.pool)
        if is_onnx_export(args.model):  # as engine.embed says it of a loaded ONNX export
            raise ValueError(
                f"{args.model}: an ONNX export holds only the logits; embed with the PyTorch "
                "model it was exported from"
            )
        model = load_model(args.model, LoadOptions(device=args.device, backend="torch"))
        if args.out is not None:
            _check_folder(args.out)  # found before the model runs, not after
    except (ValueError, ModelLoadError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failed = []
    written: set[Path] = set()
    for name in args.files:
        source = Path(name)
        taken = _Taken(written, args.format)
        base = unique_base((args.out or source.parent) / source.stem, taken)
        written.update(taken.files(base))
        try:
            result = embed(model, name, options)
            path = write_embedding(result, base.parent, args.format, base.name)
        except (AudioError, ValueError, OSError) as e:
            print(failure_line(name, e), file=sys.stderr)
            failed.append(name)
            continue
        shape = "x".join(map(str, result.vectors.shape))
        print(f"{name}: {shape} vectors of layer {args.layer} -> {path}")
    return summary(failed)


class _Taken:
    """An output base is taken when any file it would write is written already in this run:
    a source named one.times.wav writes one.times.npy, which is one.wav's times file."""

    def __init__(self, written: set[Path], fmt: str) -> None:
        self.written, self.fmt = written, fmt

    def files(self, base: Path) -> tuple[Path, ...]:
        if self.fmt == "npy":
            return base.with_name(f"{base.name}.npy"), base.with_name(f"{base.name}.times.npy")
        return (base.with_name(f"{base.name}.parquet"),)

    def __contains__(self, base: object) -> bool:
        return isinstance(base, Path) and any(f in self.written for f in self.files(base))
