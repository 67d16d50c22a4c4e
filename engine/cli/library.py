"""`tingxie-cli library [QUERY]`: list (or search) the saved transcripts; `--export ID FILE`
writes one as edited, in Simplified or Traditional script."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.library.store import Store

__all__ = ["add_parser", "check_transcript_id", "one_line", "run"]

# SQLite's INTEGER: a signed 64-bit number. sqlite3 refuses a larger one (OverflowError)
# before any look-up, so an id outside it is checked here.
_SQLITE_INTEGERS = range(-(2**63), 2**63)
# The files of a store: its database and those SQLite keeps beside it.
_STORE_SUFFIXES = ("", "-wal", "-shm", "-journal")
# What a terminal acts on rather than shows, in text a listing prints (a title, a search): C0
# and C1 controls (a newline began a fake row, ESC a colour or a terminal command), the line
# and paragraph separators, and the bidirectional marks, embeddings, overrides and isolates
# (U+202E showed the rest of the line backwards).
_UNSHOWN = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


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
        "--overwrite",
        action="store_true",
        help="with --export: replace a FILE that exists (default: it is kept, and nothing is "
        "written)",
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
        # A --db that does not exist is a typo, never a new library. Listing and export
        # write nothing: a library the user cannot write is read all the same.
        with Store(args.db, create=args.db is None, read_only=True) as store:
            if args.export:
                return _export(store, *args.export, script=args.script, overwrite=args.overwrite)
            _list(store, args.query, args.script)
    except KeyError as e:
        print(f"error: {e.args[0]}; `tingxie-cli library` lists the ids", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the listing's reader stopped (`| head`): tingxie-cli ends quietly
        raise
    except (StoreError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def one_line(text: str) -> str:
    """`text` as a listing prints it: each character `_UNSHOWN` matches as an escape that shows
    it (a newline as \\n, ESC as \\x1b, U+202E as \\u202e), so that one item stays one line
    and prints as it is stored."""

    def escape(match: re.Match[str]) -> str:
        c = match.group()
        return _ESCAPES.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")

    return _UNSHOWN.sub(escape, text)


def _list(store: Store, query: str, script: str) -> None:
    """Every transcript matching `query` (all of them: a listing to read or grep, where a cut
    would hide the oldest without a word), one a line; when there are none a line on stderr
    says so (stdout stays the listing)."""
    from engine.library.script import convert_text
    from engine.library.store import local_time

    rows = store.list_transcripts(query, limit=None)
    for t in rows:
        title, preview = (one_line(convert_text(x, script)) for x in (t.title, t.preview))
        print(f"{t.id:>5}  {local_time(t.updated_at)}  {t.edits:>4} edits  {title}  {preview}")
    if not rows:
        asked = one_line(query.strip())
        said = f"no transcript contains “{asked}”" if asked else "no transcripts"
        print(said, file=sys.stderr)


def check_transcript_id(tid: int) -> None:
    """The store's TranscriptNotFound (a KeyError), as for an id it does not hold, for one
    SQLite cannot hold."""
    from engine.library.store import TranscriptNotFound

    if tid not in _SQLITE_INTEGERS:
        raise TranscriptNotFound(tid)


def _file_problem(path: Path) -> str | None:
    """Why `path` cannot be the export's FILE even with --overwrite (None: it can): its folder
    does not exist, or it is a folder itself (writing over one fails: "Is a directory")."""
    from .transcribe import folder_in_the_way

    if not path.parent.is_dir():
        return (
            f"{path.parent}: no such folder; create it first "
            f"(mkdir -p {shlex.quote(str(path.parent))}), or name a FILE in an existing folder"
        )
    return folder_in_the_way(
        [path],
        f"give a file name for the transcript, in it or elsewhere (e.g. {path / 'transcript.txt'})",
    )


def _export(store: Store, tid: str, file: str, script: str, overwrite: bool) -> int:
    """Write transcript `tid` to `file`; 1 with a message for an id that is not a number, a
    FILE that cannot be one (`_file_problem`), that exists (unless `overwrite`) or that is the
    store's own (always: writing it would destroy the library)."""
    from engine.library.script import export

    from .transcribe import OutputError, check_new

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
    problem = _file_problem(path)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    check_transcript_id(number)
    segments, info = store.segments(number), store.info(number)
    own = {store.path.with_name(store.path.name + s).resolve() for s in _STORE_SUFFIXES}
    if path.resolve() in own:
        print(
            f"error: {path}: that is the library's own file ({store.path}); name another FILE",
            file=sys.stderr,
        )
        return 1
    if not overwrite:
        try:
            check_new([path], instead="name another FILE")
        except OutputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    written = export(segments, path, script=script, info=info, speakers=store.speaker_names(number))
    print(f"wrote {written}")
    return 0
