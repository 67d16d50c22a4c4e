"""`tingxie-cli`: the command-line front end of the engine.

The only part of `engine/` that prints or draws progress bars. Each subcommand lives in its
own module exposing `add_parser(subparsers)` and `run(args) -> int` (the exit status).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from engine import version

__all__ = ["main"]

# Shared by the subcommands that load a model (transcribe, evaluate).
ALLOW_PICKLE_HELP = (
    "load a model folder whose only weights are pytorch_model.bin: a pickle, which can run code"
    " when read; only for a folder from a source you trust (safetensors are always preferred)"
)

BACKEND_HELP = (
    "torch, or ONNX Runtime on the folder's model.onnx (tingxie-cli export --format onnx); "
    "auto: onnx when the folder holds only ONNX weights"
)

# Subcommand modules of this package, in the order `--help` lists them.
COMMANDS = (
    "transcribe",
    "tune",
    "library",
    "corrections",
    "synth",
    "evaluate",
    "export",
    "embed",
    "push",
    "watch",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tingxie-cli",
        description="Tingxie (听写): Mandarin speech-to-text with per-character confidence, "
        "and domain fine-tuning of the speech model.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log engine details")
    parser.add_argument("--version", action="version", version=f"tingxie-cli {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
