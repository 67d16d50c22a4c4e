"""`tingxie-cli library [QUERY]`: list (or search) the saved transcripts; `--export ID FILE`
writes one as edited, in Simplified or Traditional script."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    from engine.library.script import SCRIPTS

    p = subparsers.add_parser(
        "library",
        help="list, search and export saved transcripts (with your edits)",
        description="List the transcripts in the store, newest first; QUERY keeps those whose "
        "text or title contains it.",
    )
    p.add_argument("query", nargs="?", default="", help="text to search for")
    p.add_argument(
        "--export",
        nargs=2,
        metavar=("ID", "FILE"),
        help="write transcript ID to FILE (format from the suffix: txt, srt, vtt, json)",
    )
    p.add_argument("--script", choices=SCRIPTS, default="original", help="output script")
    p.add_argument("--db", type=Path, help="the store (default: in the user's data folder)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.library.script import export
    from engine.library.store import Store, StoreError

    try:
        with Store(args.db) as store:
            if args.export:
                tid, path = int(args.export[0]), args.export[1]
                written = export(
                    store.segments(tid),
                    path,
                    script=args.script,
                    info=store.info(tid),
                    speakers=store.speaker_names(tid),
                )
                print(f"wrote {written}")
                return 0
            for t in store.list_transcripts(args.query):
                print(f"{t.id:>5}  {t.updated_at[:16]}  {t.edits:>4} edits  {t.title}  {t.preview}")
    except KeyError as e:
        print(f"error: {e.args[0]}; `tingxie-cli library` lists the ids", file=sys.stderr)
        return 1
    except (StoreError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
