"""`tingxie-cli watch`: transcribe every new audio or video file that appears in a folder."""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

from engine.errors import TingxieError
from engine.punctuation import Punctuator
from engine.registry import local_path
from engine.transcribe import TranscribeOptions, Transcriber
from engine.watch import FolderWatch, WatchOptions, WatchSpec

from .transcribe import (
    OutputError,
    _transcribe_one,
    add_transcription_options,
    failure_line,
    prepare,
    summary,
    write_transcripts,
)

__all__ = ["add_parser", "run"]

_Prepared = tuple[Transcriber, TranscribeOptions, Punctuator | None]  # what `prepare` loads
_GONE = "folder is gone (renamed or unmounted)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "watch",
        help="transcribe new files as they appear in a folder",
        description="Watch FOLDER (and its subfolders) and transcribe each new audio or video "
        "file once it has stopped growing (a recorder or a copy still writing it keeps it "
        "waiting). Finished files are remembered in OUT/.tingxie-watch.json, so a restart does "
        "not redo them; a file replaced by a new version is done again. Files whose "
        "transcripts would share a name (talk.wav, talk.flac) get talk, talk-2, …, kept across "
        "restarts; so does a transcript whose name a file already has (your own talk.txt). "
        "A file that fails waits for a new version (--retry-failed tries it again now). "
        "Ctrl+C stops the watch: exit status 1 when files failed, else 0; with --once, "
        "before all are done: 130.",
    )
    p.add_argument("folder", type=local_path, help="folder to watch")
    p.add_argument("--top-only", action="store_true", help="ignore subfolders")
    p.add_argument(
        "--name",
        default="{stem}",
        help="output file name pattern: {stem} (the file's name), {date}, {time} of the "
        "transcription (default: %(default)s)",
    )
    p.add_argument("--settle", type=_seconds, default=2.0, help="seconds unchanged before a "
                   "file counts as complete (default: %(default)s)")  # fmt: skip
    p.add_argument("--poll", type=functools.partial(_seconds, above_zero=True), default=1.0,
                   help="seconds between looks (default: %(default)s)")  # fmt: skip
    p.add_argument(
        "--once", action="store_true", help="transcribe what is there, then exit (no watching)"
    )
    p.add_argument("--retry-failed", action="store_true", help="transcribe again the files "
                   "that failed before and have not changed since")  # fmt: skip
    add_transcription_options(p)
    p.set_defaults(run=run)


def _seconds(text: str, *, above_zero: bool = False) -> float:
    """--settle and --poll: a finite number of seconds, ≥ 0 (--poll, the pause between looks:
    > 0), refused naming the option, not WatchOptions' fields."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (above_zero and value == 0):
        bound = "> 0" if above_zero else "≥ 0"
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds {bound}")
    return value


def run(args: argparse.Namespace) -> int:
    try:
        options = WatchOptions(not args.top_only, args.settle, args.poll)
        spec = WatchSpec(str(args.folder), args.format, str(args.out or ""), args.name)
        watch = FolderWatch(args.folder, spec.state_file, options, spec=spec)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    prepared = prepare(args)
    if isinstance(prepared, int):
        return prepared
    try:
        held = _held_back(watch, args.retry_failed)
    except OSError as e:
        print(f"error: {watch.state_file}: the failed files cannot be given back "
              f"({e.strerror or e}); make that folder writable", file=sys.stderr)  # fmt: skip
        return 1
    print(f"watching {args.folder} ({watch.pending()} files to do); Ctrl+C stops", file=sys.stderr)
    if held:
        print(held, file=sys.stderr)
    failures: list[str] = []
    gone = False  # the watched folder is away: said once, and again when it is back
    try:
        while True:
            try:
                for path in watch.ready():
                    if not _transcribe_watched(watch, spec, path, args, prepared):
                        failures.append(str(path))
                left = watch.pending()
            except FileNotFoundError:  # renamed, deleted or unmounted while watched
                if args.once:
                    print(f"error: {args.folder}: {_GONE}; bring it back, then start the watch "
                          "again", file=sys.stderr)  # fmt: skip
                    return 1
                if not gone:
                    print(f"{args.folder}: {_GONE}; waiting for it to come back", file=sys.stderr)
                gone = True
            except _Unrecorded as e:
                print(e, file=sys.stderr)
                return 1
            else:
                if gone:
                    print(f"{args.folder}: folder is back; watching it again", file=sys.stderr)
                gone = False
                if args.once and not left:
                    return summary(failures)
            time.sleep(args.poll)
    except KeyboardInterrupt:  # a watch's only end but --once's: status as if done, or 130
        if args.once:
            print("interrupted: finished files are remembered; run it again for the others",
                  file=sys.stderr)  # fmt: skip
            return 130
        print("stopped: finished files are remembered", file=sys.stderr)
        return summary(failures)


def _held_back(watch: FolderWatch, retry: bool) -> str:
    """With `retry`, give back the files that failed before (`FolderWatch.retry_failed`) and
    return ""; else the line that names those held back and how to retry them ("" when none):
    a rerun must not pass them by without a word. Raises OSError when they cannot be given
    back."""
    if retry:
        watch.retry_failed()
        return ""
    failed = watch.failed()
    if not failed:
        return ""
    shown = ", ".join(map(str, failed[:3])) + (", …" if len(failed) > 3 else "")
    held = (
        "1 file that failed before is held back until it changes"
        if len(failed) == 1
        else f"{len(failed)} files that failed before are held back until they change"
    )
    return f"{held}: {shown}; --retry-failed tries again now"


def _transcribe_watched(
    watch: FolderWatch, spec: WatchSpec, path: Path, args: argparse.Namespace, prepared: _Prepared
) -> bool:
    """Transcribe one ready file and write its transcripts; False when that failed (said in one
    line). A file that cannot be transcribed is remembered: it waits for a new version
    (`FolderWatch.fail`: not one moved, renamed or rewritten meanwhile, done when it is back). One
    whose transcripts cannot be written where they go (a file where their folder goes, a
    read-only drive, a name too long) is given back, not remembered: a restart does it again,
    once the output is put right; so is one that cannot be recorded for a reason of its own
    (no failure of one file stops the watch). Its name is kept from before the model runs
    (another watch takes another); one another program took meanwhile is passed by for the
    next, as the app's watch does (`FolderWatch.publish`). Raises _Unrecorded when the state
    file cannot be written (a full disk)."""
    transcriber, options, punctuator = prepared
    base = None
    try:
        _output(spec, path, lambda: watch.base(spec, path))  # named, its folder made: first
        segments, info = _transcribe_one(transcriber, path, options, punctuator, args.speakers)
        written: list[Path] = []

        def write(targets: list[Path], replace: bool) -> None:
            written[:] = write_transcripts(segments, targets, info, replace)

        base = _output(spec, path, lambda: watch.publish(spec, path, write))
    except OutputError as e:
        print(failure_line(path, e), file=sys.stderr)
        watch.release(path)
        return False
    except Exception as e:  # one bad file must not stop the watch
        print(failure_line(path, e), file=sys.stderr)
        base = None  # a failed file waits for a new version, not the next look
    else:
        print("wrote " + ", ".join(map(str, written)), file=sys.stderr)
    try:
        if base is None:  # one moved away or rewritten meanwhile is given back, not held back
            watch.fail(path)
        else:
            watch.done(path, base)
    except OSError as e:
        raise _Unrecorded(_unrecorded(watch.state_file, path, e)) from e
    except Exception as e:  # not recorded: given back (a restart tries it again), said once
        if base is not None:  # a failed transcription was said already
            print(failure_line(path, e), file=sys.stderr)
        watch.release(path)
        return False
    return base is not None


def _output(spec: WatchSpec, path: Path, step: Callable[[], Path]) -> Path:
    """The base `step` returns (`FolderWatch.base`: where `path`'s transcripts go, kept from
    the other watches writing there; `FolderWatch.publish`: where they went); raises
    OutputError saying what to do when it cannot be had (a file where its folder goes, a name
    too long, a folder where a resumed recording's own transcript goes, a name taken again as
    soon as the next was chosen)."""
    try:
        return step()
    except TingxieError as e:
        raise OutputError(str(e)) from e
    except FileExistsError as e:  # `publish`: another program takes each name it chooses
        raise OutputError(
            f"{e.filename}: made by another program while the transcripts of {path} were "
            "written there; stop it writing into that folder, or choose another with --out DIR"
        ) from e
    except OSError as e:
        folder = e.filename or spec.out_folder(path)
        raise OutputError(
            f"{folder}: the folder for the transcripts of {path} cannot be made "
            f"({e.strerror or e}); make it writable, or choose another with --out DIR"
        ) from e


class _Unrecorded(Exception):
    """A finished file could not be recorded in the watch's state: the watch stops."""


def _unrecorded(state_file: Path, path: Path, error: OSError) -> str:
    """Why the watch stops when it cannot record a finished file (a full disk), and what to do."""
    return (
        f"error: {state_file}: could not record {path} as finished ({error.strerror or error}); "
        "free some space or make that folder writable, then start the watch again (it "
        "transcribes the files it did not record)"
    )
