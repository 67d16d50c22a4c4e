"""`tingxie-cli corrections NAME`: turn reviewed transcripts into a tuning dataset and print
the `tingxie-cli tune` command that trains on it."""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path

from engine.library.review import DEFAULT_THRESHOLD

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "corrections",
        help="make a tuning dataset from the text you checked in review",
        description="Collect the accepted and corrected spans of reviewed transcripts into a "
        "dataset folder (clips, manifest.tsv, tune.yaml) and print the tuning command.",
    )
    p.add_argument("name", help="dataset name (letters, digits, '-', '_', '.')")
    p.add_argument(
        "-t",
        "--transcript",
        type=int,
        action="append",
        default=[],
        metavar="ID",
        help="a transcript id from `tingxie-cli library` (repeat; default: every transcript, "
        "leaving out, with a warning, those whose recording is gone; where two transcripts of "
        "one recording checked the same audio, the newer check is used; a check is never "
        "replaced by text nobody checked)",
    )
    p.add_argument("--model", help="model to tune (Hub id or folder; default: the default model)")
    p.add_argument(
        "--scope",
        choices=("segment", "span"),
        default="segment",
        help="segment: whole segments whose text is all checked or confident (default), the "
        "checked stretches of the others; span: checked stretches only",
    )
    p.add_argument(
        "--threshold",
        type=_threshold,
        default=DEFAULT_THRESHOLD,
        help="confidence below which text nobody checked is doubtful and keeps its segment from "
        f"going in whole (the app's review threshold; default {DEFAULT_THRESHOLD})",
    )
    p.add_argument("--folder", type=Path, help="where the dataset goes (default: beside the store)")
    p.add_argument(
        "--db",
        type=Path,
        help="an existing store (default: the one in the user's data folder, made if new)",
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="rebuild a training set of this name (without it, a name in use is refused)",
    )
    p.set_defaults(run=run)


def _threshold(text: str) -> float:
    """--threshold: a confidence from 0 to 1, refused when the command line is read (status 2),
    naming the option rather than CorrectionOptions' field."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a confidence from 0 to 1")
    return value


def run(args: argparse.Namespace) -> int:
    from engine.errors import MESSAGES
    from engine.library.corrections import (
        CorrectionOptions,
        CorrectionsError,
        build_dataset,
        existing_set,
    )
    from engine.library.store import Store, StoreError
    from engine.model import DEFAULT_MODEL, model_vocab

    from .library import check_transcript_id

    model = args.model or DEFAULT_MODEL
    vocab = model_vocab(model)
    try:
        # A --db that does not exist is a typo, never a new (empty) library.
        with Store(args.db, create=args.db is None) as store:
            where = None if args.replace else existing_set(store, args.name, args.folder)
            if where is not None:
                print(
                    f"error: a training set named {args.name!r} exists ({where}); choose "
                    "another name, or add --replace to rebuild it from these transcripts",
                    file=sys.stderr,
                )
                return 1
            for tid in args.transcript:
                check_transcript_id(tid)
            # Each transcript once however often it is named (`-t 1 -t 1`).
            ids = list(dict.fromkeys(args.transcript)) or [
                t.id for t in store.list_transcripts(limit=1_000_000)
            ]
            summary = build_dataset(
                store,
                ids,
                args.name,
                model=model,
                vocab=vocab or (),
                folder=args.folder,
                options=CorrectionOptions(scope=args.scope, threshold=args.threshold),
                skip_missing=not args.transcript,  # only those named must all be there
            )
    except KeyError as e:
        print(f"error: {e.args[0]}; `tingxie-cli library` lists the ids", file=sys.stderr)
        return 1
    except CorrectionsError as e:
        print(f"error: {e}", file=sys.stderr)
        if e.code == "dataset.not_recorded":
            print(f"  to record it: {_rebuild_command(args)}", file=sys.stderr)
        return 1
    except (StoreError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for tid, path in summary.left_out:
        gone = MESSAGES["dataset.recording_missing"].format(transcript=tid, path=path)
        print(f"warning: {gone}; this set is built without it", file=sys.stderr)
    new = ("".join(summary.new_chars) or "none") if vocab else "unknown"
    print(f"dataset {summary.folder}")
    print(
        f"  {summary.examples} clips, {summary.hours:.3f} h, {summary.corrections} corrections, "
        f"{summary.accepted} accepted, from {len(summary.transcripts)} transcript(s)"
    )
    if summary.trimmed or summary.skipped:
        print(
            f"  {summary.trimmed} segment(s) only as their checked stretches, {summary.skipped} "
            "left out: they still hold text nobody checked, doubtful spans or places changed by "
            "fix all occurrences (accept or fix the spans, check the places again, to use them "
            "whole)"
        )
    print(f"  characters new to the model: {new}")
    print(f"tune with:\n  {summary.command}")
    return 0


def _rebuild_command(args: argparse.Namespace) -> str:
    """This command again with --replace, quoted for a shell: it rebuilds the set it wrote but
    could not record (a name in use is refused without --replace)."""
    argv = ["tingxie-cli", "corrections", args.name]
    for tid in dict.fromkeys(args.transcript):
        argv += ["-t", str(tid)]
    for option, value in (("--db", args.db), ("--model", args.model), ("--folder", args.folder)):
        if value is not None:
            argv += [option, str(value)]
    if args.scope != "segment":
        argv += ["--scope", args.scope]
    if args.threshold != DEFAULT_THRESHOLD:
        argv += ["--threshold", str(args.threshold)]
    return shlex.join([*argv, "--replace"])
