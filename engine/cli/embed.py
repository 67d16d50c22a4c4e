"""`tingxie-cli embed`: the model's vectors for audio files, per frame (with times) or per file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import ALLOW_PICKLE_HELP

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "embed",
        help="write the model's hidden states for audio files (per frame or per file)",
        description="For each FILE, write the hidden states of one layer of the model: one "
        "vector per 20 ms frame with its start and end time (--pool none), or their mean "
        "(--pool mean). npy: OUT/STEM.npy and OUT/STEM.times.npy; parquet: OUT/STEM.parquet "
        "with columns start, end, vector (STEM-2, STEM-3… for files that share a name, or "
        "where such a file is there already: it is kept unless --overwrite).",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="audio or video files")
    p.add_argument("--model", required=True, help="model folder or Hub id")
    p.add_argument("--layer", type=int, default=-1, help="0 = transformer input, -1 = last")
    p.add_argument("--pool", choices=("none", "mean"), default="none")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--format", choices=("npy", "parquet"), default="npy")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--allow-pickle", action="store_true", help=ALLOW_PICKLE_HELP)
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files already in OUT named like the vectors (default: such a file, "
        "your own or an earlier run's, is kept and the vectors go to STEM-2…)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.audio import AudioError
    from engine.embed import (
        EmbedOptions,
        TakenBases,
        embed,
        embedding_files,
        ensure_format_available,
        write_embedding,
    )
    from engine.loader import is_whisper
    from engine.model import LoadOptions, ModelLoadError, load_model
    from engine.registry import is_onnx_export
    from engine.watch import unique_base

    from .transcribe import OutputError, _check_folder, failure_line, summary

    try:
        options = EmbedOptions(layer=args.layer, pool=args.pool)
        ensure_format_available(args.format)  # as the options are: before the model loads
        if is_onnx_export(args.model):  # as engine.embed says it of a loaded ONNX export
            raise ValueError(
                f"{args.model}: an ONNX export holds only the logits; embed with the PyTorch "
                "model it was exported from"
            )
        if is_whisper(args.model):  # as the app's tooltip says it (feature.embeddings)
            raise ValueError(
                f"{args.model}: embeddings come from the layers of a wav2vec2-family (CTC) "
                "model and this is a Whisper model; give a CTC model's folder or Hub id"
            )
        load = LoadOptions(device=args.device, backend="torch", allow_pickle=args.allow_pickle)
        model = load_model(args.model, load)
        # Once, as the option it is, rather than as each file's failure.
        layers = int(model.model.config.num_hidden_layers)
        if not -layers - 1 <= args.layer <= layers:
            raise ValueError(f"--layer {args.layer}: this model has layers 0-{layers} (-1 = last)")
        if args.out is not None:
            _check_folder(args.out)  # found before the model runs, not after
    except (ValueError, ModelLoadError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failed = []
    written: set[Path] = set()
    for name in args.files:
        source = Path(name)
        # This run's files are never replaced, even with --overwrite (inputs that share a
        # name); write_embedding keeps those there before (unless --overwrite).
        taken = TakenBases(args.format, written, on_disk=False)
        base = unique_base((args.out or source.parent) / source.stem, taken)
        try:
            result = embed(model, name, options)
            path = write_embedding(
                result, base.parent, args.format, base.name, overwrite=args.overwrite
            )
        except (AudioError, ValueError, OSError) as e:
            print(failure_line(name, e), file=sys.stderr)
            failed.append(name)
            continue
        written.update(embedding_files(path.with_suffix(""), args.format))
        shape = "x".join(map(str, result.vectors.shape))
        print(f"{name}: {shape} vectors of layer {args.layer} -> {path}")
    return summary(failed)
