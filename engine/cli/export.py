"""`tingxie-cli export`: a model in another form — Hugging Face folder, LoRA adapter or ONNX
(fp32 / int8) — checked against the PyTorch model before it is called done."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import ALLOW_PICKLE_HELP, positive_int

__all__ = ["add_parser", "run"]

_WROTE = {"hf": "Hugging Face layout, safetensors", "adapter": "LoRA adapter", "onnx": "ONNX"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a model as a Hugging Face folder, a LoRA adapter or ONNX (checked)",
        description="Write MODEL (a model folder, a Hub id, or a tuning job's output folder) to "
        "OUT. hf: merged weights as safetensors with processor and card; adapter: the LoRA "
        "adapter of a tuning output; onnx: model.onnx with a dynamic batch and time axis "
        "(--quantize int8: int8 weights through ONNX Runtime's quantizer), checked against "
        "PyTorch on reference audio: logit difference (fp32) or mean per-frame posterior "
        "difference (int8) within a bound, and greedy-text agreement; and CER on --check "
        "MANIFEST. The figures go into OUT/README.md; an export that fails the "
        "check is kept apart as OUT.parity-failed (never as OUT) and exits 1.",
    )
    p.add_argument("model", help="model folder, Hub id, or a tuning job's output folder")
    p.add_argument(
        "out",
        type=Path,
        help="output folder, used when new or empty; otherwise the export goes into a new "
        "subfolder MODEL-FORMAT inside it (as `cp -r` does), never over files already there",
    )
    p.add_argument("--format", choices=("hf", "adapter", "onnx"), default="hf")
    p.add_argument("--quantize", choices=("none", "int8"), default="none", help="onnx only")
    p.add_argument(
        "--check",
        type=Path,
        metavar="MANIFEST",
        help="onnx only: also compare CER on these utterances",
    )
    p.add_argument(
        "--check-limit", type=positive_int, default=100, metavar="N", help="rows of MANIFEST used"
    )
    p.add_argument("--allow-pickle", action="store_true", help=ALLOW_PICKLE_HELP)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.errors import TingxieError
    from engine.model import ModelLoadError
    from engine.tune.data import DatasetError
    from engine.tune.formats import ExportOptions, ExportResult, export_target, iter_export

    try:
        options = ExportOptions(
            args.format, args.quantize, args.check, args.check_limit, args.allow_pickle
        )
        # OUT holding the source model or other files (the model's own folder, its parent, a
        # documents folder) gets a subfolder: an export never mixes its files with others.
        out = export_target(args.out, args.model, options)
    except (TingxieError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if options.check is not None:
        try:
            _read_check(options.check, options.check_limit)
        except DatasetError as e:  # the data, as a bad file for transcribe: status 1
            if e.report is not None:
                print(e.report.table(), file=sys.stderr)
            print(f"error: {e}", file=sys.stderr)
            return 1
    try:
        result = next(
            i for i in iter_export(args.model, out, options) if isinstance(i, ExportResult)
        )
    except (TingxieError, ModelLoadError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in result.lines:
        print(line)
    if not result.passed:
        print(
            f"error: the export does not match PyTorch (see above), so it was not put in {out}: "
            f"it is kept in {result.out} to look at; do not use it as a model",
            file=sys.stderr,
        )
        return 1
    print(f"wrote {result.out} ({_WROTE[result.format]})")
    return 0


def _read_check(manifest: Path, limit: int) -> None:
    """Read the check manifest before the model loads, and name each of its rows left out (the
    check runs on the others; the figures say how many)."""
    from engine.tune.formats import read_check_manifest

    for finding in read_check_manifest(manifest, limit).skipped:
        print(f"warning: {finding.origin}: {finding.detail}; row skipped", file=sys.stderr)
