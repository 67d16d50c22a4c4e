"""`tingxie-cli`: the command-line front end of the engine.

The only part of `engine/` that prints or draws progress bars. Each subcommand lives in its
own module exposing `add_parser(subparsers)` and `run(args) -> int` (the exit status).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys

from engine import version
from engine.model import CONVERT_MIN_BYTES

__all__ = ["main"]

# Shared by the subcommands that load a model (transcribe, evaluate, export, embed).
ALLOW_PICKLE_HELP = (
    "load a model folder whose only weights are pytorch_model.bin: a pickle, which can run code"
    " when read; only for a folder from a source you trust (safetensors are always preferred)"
)

# What backend and precision auto together run on a CPU without native bf16
# (engine.model._int8_copy), as the README's Performance section measures it.
INT8_AUTO_HELP = (
    f"an fp32 checkpoint of {CONVERT_MIN_BYTES // 1_000_000} MB or more (the default model: "
    "1.26 GB) on a CPU without native bf16 runs as its int8 ONNX copy, made once into the "
    "weights cache on its first load (about a minute)"
)

BACKEND_HELP = (
    "torch, or ONNX Runtime on the folder's model.onnx (tingxie-cli export --format onnx); "
    "auto: onnx when the folder holds only ONNX weights; with precision auto too, "
    f"{INT8_AUTO_HELP}; --backend torch keeps fp32"
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


def positive_int(text: str) -> int:
    """An argparse type: a whole number ≥ 1, refused when the command line is read, naming the
    option (`argument --limit: '0' is not …`) rather than the engine's field."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number ≥ 0 (a seed), refused as `positive_int` refuses."""
    return _whole_number(text, 0)


def _whole_number(text: str, lowest: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = lowest - 1
    if value < lowest:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number ≥ {lowest}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; its exit status. Ctrl+C ends any of them with one line (status 130),
    but a continuous `watch`, whose normal end it is (0, or 1 when files failed: `watch` says
    which); a reader that stops early (`| head`) ends it quietly (141, as a shell reports
    SIGPIPE)."""
    _readable_output()
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )
        status = int(args.run(args) or 0)
        if sys.stdout is not None:  # a reader gone is found here, not in the exit's flush
            sys.stdout.flush()
        return status
    except KeyboardInterrupt:  # transcribe's loop and tune say more, and return 130 themselves
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _discard_stdout()
        return 141


def _readable_output() -> None:
    """Make stdout and stderr take Chinese: one that cannot (Windows' cp1252 where output is
    redirected) fails on the first character, --help included. A file or pipe gets UTF-8, so
    the text stays readable; a terminal keeps its encoding and shows escapes (\\u542c)."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if encoding is None or not hasattr(stream, "reconfigure") or _encodes(encoding):
            continue
        if stream.isatty():
            stream.reconfigure(errors="backslashreplace")
        else:
            stream.reconfigure(encoding="utf-8")


def _encodes(encoding: str) -> bool:
    try:
        "听写".encode(encoding)
    except (LookupError, UnicodeEncodeError):
        return False
    return True


def _discard_stdout() -> None:
    """Point stdout at the null device once its reader is gone: the interpreter flushes it on
    the way out, which would raise (and print) the broken pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):  # no file descriptor (stdout replaced)
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
