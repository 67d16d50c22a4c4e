"""`tingxie-cli watch`: transcribe every new audio or video file that appears in a folder."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .transcribe import add_transcription_options, prepare

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "watch",
        help="transcribe new files as they appear in a folder",
        description="Watch FOLDER (and its subfolders) and transcribe each new audio or video "
        "file once it has stopped growing (a recorder or a copy still writing it keeps it "
        "waiting). Finished files are remembered in OUT/.tingxie-watch.json, so a restart does "
        "not redo them; a file replaced by a new version is done again. Files whose "
        "transcripts would share a name (talk.wav, talk.flac) get talk, talk-2, …, kept across "
        "restarts. Ctrl+C stops.",
    )
    p.add_argument("folder", type=Path, help="folder to watch")
    p.add_argument("--top-only", action="store_true", help="ignore subfolders")
    p.add_argument(
        "--name",
        default="{stem}",
        help="output file name pattern: {stem} (the file's name), {date}, {time} of the "
        "transcription (default: %(default)s)",
    )
    p.add_argument("--settle", type=float, default=2.0, help="seconds unchanged before a file "
                   "counts as complete (default: %(default)s)")  # fmt: skip
    p.add_argument("--poll", type=float, default=1.0, help="seconds between looks")
    p.add_argument(
        "--once", action="store_true", help="transcribe what is there, then exit (no watching)"
    )
    add_transcription_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.watch import FolderWatch, WatchOptions, WatchSpec

    from .transcribe import _transcribe_one, failure_line, summary

    try:
        options = WatchOptions(not args.top_only, args.settle, args.poll)
        spec = WatchSpec(str(args.folder), args.format, str(args.out or ""), args.name)
        watch = FolderWatch(args.folder, spec.state_file, options)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    prepared = prepare(args)
    if isinstance(prepared, int):
        return prepared
    transcriber, transcribe_options, punctuator = prepared
    print(f"watching {args.folder} ({watch.pending()} files to do); Ctrl+C stops", file=sys.stderr)
    failures: list[str] = []
    try:
        while True:
            for path in watch.ready():
                base = None
                try:
                    base = spec.base(path, watch.names(path))
                    written = _transcribe_one(transcriber, path, transcribe_options, base,
                                              args.format, punctuator, args.speakers)  # fmt: skip
                    print("wrote " + ", ".join(map(str, written)), file=sys.stderr)
                except Exception as e:  # one bad file must not stop the watch
                    print(failure_line(path, e), file=sys.stderr)
                    failures.append(str(path))
                try:  # a failed file waits for a new version, not the next look
                    watch.done(path, base)
                except OSError as e:
                    print(_unrecorded(watch.state_file, path, e), file=sys.stderr)
                    return 1
            if args.once and not watch.pending():
                return summary(failures)
            time.sleep(args.poll)
    except KeyboardInterrupt:
        print("stopped: finished files are remembered", file=sys.stderr)
        return 0


def _unrecorded(state_file: Path, path: Path, error: OSError) -> str:
    """Why the watch stops when it cannot record a finished file (a full disk), and what to do."""
    return (
        f"error: {state_file}: could not record {path} as finished ({error.strerror or error}); "
        "free some space or make that folder writable, then start the watch again (it "
        "transcribes the files it did not record)"
    )
