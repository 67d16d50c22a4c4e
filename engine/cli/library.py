"""`tingxie-cli library [QUERY]`: list (or search) the saved transcripts; `--export ID FILE`
writes one as edited, in Simplified or Traditional script."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.library.store import Store

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    from engine.library.script import SCRIPTS

    p = subparsers.add_parser(
        "library",
        help="list, search and export saved transcripts (with your edits)",
        description="List the transcripts in the store, newest first (local time of the last "
        "change); QUERY keeps those whose title contains it, or whose text does in either "
        "script, punctuation and spaces aside.",
    )
    p.add_argument("query", nargs="?", default="", help="text to search for")
    p.add_argument(
        "--export",
        nargs=2,
        metavar=("ID", "FILE"),
        help="write transcript ID to FILE (format from the suffix: txt, srt, vtt, json)",
    )
    p.add_argument(
        "--script", choices=SCRIPTS, default="original", help="script of the listing or export"
    )
    p.add_argument(
        "--db",
        type=Path,
        help="an existing store (default: the one in the user's data folder, made if new)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.library.store import Store, StoreError

    try:
        # A --db that does not exist is a typo, never a new library.
        with Store(args.db, create=args.db is None) as store:
            if args.export:
                return _export(store, *args.export, script=args.script)
            _list(store, args.query, args.script)
    except KeyError as e:
        print(f"error: {e.args[0]}; `tingxie-cli library` lists the ids", file=sys.stderr)
        return 1
    except (StoreError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _list(store: Store, query: str, script: str) -> None:
    """Every transcript matching `query` (all of them: a listing to read or grep, where a cut
    would hide the oldest without a word), one a line; when there are none a line on stderr
    says so (stdout stays the listing)."""
    from engine.library.script import convert_text
    from engine.library.store import local_time

    rows = store.list_transcripts(query, limit=None)
    for t in rows:
        title, preview = convert_text(t.title, script), convert_text(t.preview, script)
        print(f"{t.id:>5}  {local_time(t.updated_at)}  {t.edits:>4} edits  {title}  {preview}")
    if not rows:
        said = f"no transcript contains “{query.strip()}”" if query.strip() else "no transcripts"
        print(said, file=sys.stderr)


def _export(store: Store, tid: str, file: str, script: str) -> int:
    """Write transcript `tid` to `file`; 1 with a message for an id that is not a number or
    a folder that does not exist."""
    from engine.library.script import export

    try:
        number = int(tid)
    except ValueError:
        print(
            f"error: {tid!r} is not a transcript id (a number); `tingxie-cli library "
            f"{shlex.quote(tid)}` lists the matching transcripts, their ids first",
            file=sys.stderr,
        )
        return 1
    path = Path(file).expanduser()
    if not path.parent.is_dir():
        print(
            f"error: {path.parent}: no such folder; create it first "
            f"(mkdir -p {shlex.quote(str(path.parent))}), or name a FILE in an existing folder",
            file=sys.stderr,
        )
        return 1
    written = export(
        store.segments(number),
        path,
        script=script,
        info=store.info(number),
        speakers=store.speaker_names(number),
    )
    print(f"wrote {written}")
    return 0
