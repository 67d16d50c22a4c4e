"""Folders of recordings: the media files in a folder, and a watch folder that hands over each
new file once it has stopped growing, remembering what it finished across restarts.

Polling (a stat per file every `poll_seconds`), not OS file events: it works the same on every
platform and on network shares, and a folder of recordings changes slowly. A file is ready when
its size and modification time have not changed for `settle_seconds` (a recorder or a copy still
writing it keeps changing them). Finished files are kept in a JSON state file, by watched folder
(several may write into one output folder) and by their path in it, with their size and
modification time, so a restart does not redo them and a file replaced by a new version is done
again (one that could not be transcribed too, as failed: it waits for a new version, and a
restart says so and may try it again, `failed`, `retry_failed`); with them the names their
transcripts were given, so two files whose names make one transcript name (talk.wav and
talk.flac, or phone/talk.wav and recorder/talk.wav written into one folder) keep apart ones
(talk, talk-2) across restarts. A transcript never replaces a file that is there, except the
watch's own transcript of an earlier version of the same recording (one it continues: a
recorder that resumed), nor ever a folder (one in the place of that own transcript is told); a
recording that only reuses a name (a recorder's REC001.wav after its card was
emptied) gets a name of its own. A file handed out and given back unfinished
(cancelled, or its transcripts could not be written) is not remembered: a restart hands it out
again, and until then only a new version of it is. A damaged state file is kept aside, never
written over, and what it knew of the folder is rebuilt from the transcripts there.

Several watches may look at one folder (the app's watch folder and `tingxie-cli watch`, two CLI
watches) and several may write into one output folder: they share the state file there, and
change it only under its lock (`_locked`). A file is claimed in it before it is handed out, by
the watch's process (pid@host), and left to that process until it is finished or given back,
or that process is gone (killed too): no file is transcribed twice, none is left forever. The name
chosen for a file's transcripts is kept with its claim, so another watch takes another (talk-2)
before either is written; one taken meanwhile by another program is passed by (`publish`).
A claim of another computer's watch (a shared network folder) cannot be checked: it is left
until that watch lets it go.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import string
import time
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from .atomic import atomic_write_text, left_by_gone_process, staging_tag
from .audio import is_supported
from .errors import TingxieError
from .writers import FORMATS, json_text

try:
    import fcntl
except ImportError:  # Windows: no flock (see `_locked`)
    fcntl = None

__all__ = [
    "STATE_FILE",
    "FolderWatch",
    "WatchOptions",
    "WatchSpec",
    "media_files",
    "overlaps",
    "unique_base",
]

log = logging.getLogger("tingxie.watch")

STATE_FILE = ".tingxie-watch.json"  # in the output folder (or the watched one): what was finished
_LOCK_SUFFIX = ".lock"  # beside the state file, hidden as it is: held while one watch writes it
# 3: by watched folder. 2: one folder's, keyed by the path in it. 1 (no "version"): keyed by the
# path as the watched folder was typed.
_STATE_VERSION = 3

_Stamp = tuple[int, int]  # a file's version: size and modification time (ns)
_Mark = tuple[int, str]  # a sample of a finished version: where in the file, and its digest
_Claim = tuple[str, str]  # the process holding a file (pid@host), its transcripts' name or ""
_MARK_BYTES = 4096  # from the middle of the file: what a recording's continuation still holds
_NAME_FIELDS = ("stem", "date", "time")  # the fields of a file-name pattern
_NAME_MAX = 255  # bytes in a file name on ext4, XFS, Btrfs (NTFS, APFS: 255 characters)


def media_files(
    folder: str | os.PathLike[str],
    recursive: bool = True,
    unreadable: Callable[[OSError], None] | None = None,
) -> list[Path]:
    """Audio and video files in `folder` (by extension; hidden files and folders skipped), in
    name order. A subfolder that cannot be read (a network mount that dropped, no permission)
    is skipped and `unreadable` told (by default a warning naming it): the others are found."""
    return sorted(path for path, _key in _media(folder, recursive, unreadable))


def _media(
    folder: str | os.PathLike[str],
    recursive: bool,
    unreadable: Callable[[OSError], None] | None,
) -> Iterator[tuple[Path, str]]:
    """`media_files`' files, unsorted, each with its path in `folder` as a POSIX path (a watch
    keeps its files by it), joined from the walk's names: working it out from each file's
    path took pathlib a third of a look at thousands of files."""
    for parent, folders, files in os.walk(folder, onerror=unreadable or _warn_unreadable):
        folders[:] = [] if not recursive else [f for f in folders if not f.startswith(".")]
        under = Path(os.path.relpath(parent, folder)).as_posix()  # "." for `folder` itself
        for name in files:
            if name.startswith(".") or not is_supported(name):
                continue
            path = Path(parent, name)
            if path.is_file():
                yield path, name if under == "." else f"{under}/{name}"


def _warn_unreadable(error: OSError) -> None:
    log.warning("%s: cannot be read (%s); its files are skipped", error.filename,
                error.strerror or error)  # fmt: skip


def unique_base(base: Path, taken: Container[Path]) -> Path:
    """`base`, or the first of base-2, base-3… not `taken`: the outputs of inputs that share a
    name (talk.wav and talk.flac, a/one.wav and b/one.wav) must not write over each other."""
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


@dataclass(frozen=True, slots=True)
class WatchOptions:
    recursive: bool = True
    settle_seconds: float = 2.0  # unchanged this long: the writer is done with the file
    poll_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.settle_seconds < 0 or self.poll_seconds <= 0:
            raise ValueError("settle_seconds must be ≥ 0 and poll_seconds > 0")


@dataclass(frozen=True, slots=True)
class WatchSpec:
    """A watched folder and its auto-export template: which transcripts to write for each new
    file, where, and named how (the CLI's `watch` options and the app's watch folders)."""

    folder: str
    formats: tuple[str, ...] = ("txt",)  # from engine.writers.FORMATS
    # Output folder, the watched folder's subfolders kept under it; empty: beside each file.
    out: str = ""
    # File name without suffix: {stem} the recording's name, {date} and {time} of the
    # transcription (2024-05-01, 143005).
    name: str = "{stem}"

    def __post_init__(self) -> None:
        for name in ("folder", "out", "name"):  # hand-edited preferences may hold anything
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"watch folder {self.folder!r}: {name} must be text")
        object.__setattr__(self, "formats", tuple(self.formats))  # a list, from JSON
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise ValueError(
                f"watch folder {self.folder}: unknown export format "
                f"{', '.join(bad) or '(none)'}; choose from {', '.join(FORMATS)}"
            )
        _check_name(self.name)
        sample = self.name.format(stem="x", date="d", time="t")
        # "." and ".." are folders; a name starting with "." would be hidden.
        if not sample.strip() or any(sep in sample for sep in "/\\") or sample.startswith("."):
            raise ValueError(
                f"file-name pattern {self.name!r}: give a file name, not a path, and not one "
                "starting with '.'"
            )

    @property
    def state_file(self) -> Path:
        """Where the watch remembers finished files: with the transcripts it wrote."""
        return Path(self.out or self.folder) / STATE_FILE

    def out_folder(self, path: Path) -> Path:
        """The folder `path`'s transcripts go to."""
        return Path(self.out) / path.parent.relative_to(self.folder) if self.out else path.parent

    def base(
        self,
        path: Path,
        taken: Container[Path] = (),
        own: Path | None = None,
        now: datetime | None = None,
    ) -> Path:
        """Where `path`'s transcripts go, without the format's suffix: the pattern's name, with
        -2, -3… where other files' transcripts have it (`taken`: `FolderWatch.names`) or a file
        of a transcript's name is there (the user's own notes, the transcript of an earlier
        recording that had this name), except `own` (`FolderWatch.own`): this recording's
        earlier transcripts, which its new version replaces. Its folder is made. Raises
        TingxieError when a file is where that folder goes, a name would be too long or a
        folder has `own`'s name (`check_name`), OSError when the folder cannot be made
        otherwise."""
        out, name = self.out_folder(path), self._name(path, now)
        self.check_name(path, out / name)  # before a name too long is looked up
        try:
            out.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as e:  # a file where a folder goes
            raise TingxieError("transcribe.out_is_file", path=str(_file_in(out))) from e
        base = unique_base(out / name, _InUse(self, taken, own))
        self.check_name(path, base, own)  # with its -2
        return base

    def check_name(self, path: Path, base: Path | None = None, own: Path | None = None) -> None:
        """Raise TingxieError when `path`'s transcripts cannot take `base`'s names (by default
        the pattern's now): one is longer than a file name may be, or `base` is `own` (see
        `base`) and a folder has one of its names. Another file's name is passed by (-2), but
        a resumed recording's would leave its earlier transcripts beside new ones, and a
        transcript never replaces a folder. Said before the model runs, and not as "could not
        be written" after it."""
        base = base or self.out_folder(path) / self._name(path)
        longest = max((t.name for t in self.targets(base)), key=lambda n: len(os.fsencode(n)))
        if len(os.fsencode(longest)) > _NAME_MAX:
            raise TingxieError("transcribe.name_too_long", path=str(path), name=longest,
                               length=len(os.fsencode(longest)), limit=_NAME_MAX)  # fmt: skip
        folder = next((t for t in self.targets(base) if t.is_dir()), None) if base == own else None
        if folder is not None:
            raise TingxieError("transcribe.folder_in_the_way", path=str(folder), audio=str(path))

    def _name(self, path: Path, now: datetime | None = None) -> str:
        """The pattern's file name for `path` (transcribed `now`)."""
        now = now or datetime.now()
        return self.name.format(stem=path.stem, date=now.strftime("%Y-%m-%d"),
                                time=now.strftime("%H%M%S"))  # fmt: skip

    def targets(self, base: Path) -> list[Path]:
        """The transcript files of a `base`, one per format."""
        return [base.with_name(f"{base.name}.{fmt}") for fmt in self.formats]

    def transcribed(self, path: Path) -> bool:
        """Whether `path`'s transcripts are all where the pattern names them, none older than
        it: what a watch whose state file was lost had done. A pattern with {date} or {time}
        names them anew each day, and a -2 may be another file's: neither is taken for one."""
        if "{date}" in self.name or "{time}" in self.name:
            return False
        try:
            recorded = path.stat().st_mtime_ns
            targets = self.targets(self.out_folder(path) / self._name(path))
            return all(t.is_file() and t.stat().st_mtime_ns >= recorded for t in targets)
        except OSError:
            return False


@dataclass(frozen=True, slots=True)
class _InUse:
    """The bases `WatchSpec.base` must not take: `taken`, and those with a transcript's file
    name there (a link too, broken or not), except `own`."""

    spec: WatchSpec
    taken: Container[Path]
    own: Path | None

    def __contains__(self, base: Path) -> bool:
        there = base != self.own and any(map(os.path.lexists, self.spec.targets(base)))
        return there or base in self.taken


def _file_in(folder: Path) -> Path:
    """The file that stands where `folder`, or a folder above it, should be."""
    return next((p for p in (folder, *folder.parents) if p.is_file()), folder)


@dataclass(slots=True)
class _Finished:
    """What a watch remembers of one watched folder, by each file's path in it."""

    done: dict[str, _Stamp] = field(default_factory=dict)  # the version finished
    names: dict[str, str] = field(default_factory=dict)  # its transcripts, by the state's folder
    marks: dict[str, _Mark] = field(default_factory=dict)  # a sample of the version named
    claims: dict[str, _Claim] = field(default_factory=dict)  # handed out by a watch, not done
    failed: frozenset[str] = frozenset()  # done in the version `done` holds, without transcripts

    @classmethod
    def read(cls, entry: dict, key: Callable[[str], str] = str) -> _Finished:
        """From the state file's JSON (`key` turns its keys into paths in the folder)."""
        return cls(
            {key(k): (int(v[0]), int(v[1])) for k, v in entry["done"].items()},
            {key(k): str(v) for k, v in entry.get("names", {}).items()},
            {key(k): (int(v[0]), str(v[1])) for k, v in entry.get("marks", {}).items()},
            {key(k): (str(v[0]), str(v[1])) for k, v in entry.get("claims", {}).items()},
            frozenset(map(key, entry.get("failed", []))),
        )

    def taken(self) -> Iterator[tuple[str, str]]:
        """(file, transcript name) of its finished files, and of those a live watch is
        transcribing under a name it chose (`FolderWatch.base`)."""
        yield from self.names.items()
        yield from ((k, name) for k, (tag, name) in self.claims.items() if name and _alive(tag))


class FolderWatch:
    """`ready()` lists the files to do now, claimed for this watch; `base(spec, path)` chooses
    where one's transcripts go (`publish` writes them there); `done(path, base)` records one as
    finished and where its transcripts went, `fail(path)` one that could not be transcribed;
    `release(path)` gives one back unfinished;
    `names(path)` are where the other files' went or go, `own(path)` where its own earlier
    version's did."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        state_file: str | os.PathLike[str],
        options: WatchOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        spec: WatchSpec | None = None,
    ) -> None:
        """`spec`: the transcripts this watch writes, by which a damaged state is rebuilt
        (`_recovered`; without it, the files it had finished are done again)."""
        self.folder = Path(folder)
        if self.folder.is_file():  # FileNotFoundError all the same: callers take it as gone
            raise FileNotFoundError(
                f"{self.folder}: is a file, not a folder; watch the folder it is in "
                f"({self.folder.absolute().parent}), or transcribe the file itself"
            )
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder}: no such folder; choose a folder to watch")
        self._id = str(_real(self.folder))  # the folder in the state, however it was typed
        self.state_file = Path(state_file)
        self.options = options or WatchOptions()
        self._clock = clock
        self._seen: dict[Path, tuple[_Stamp, float]] = {}  # stamp, when first seen
        self._handed: dict[Path, _Stamp] = {}  # the version `ready()` handed out, until done
        self._held: dict[Path, _Stamp] = {}  # given back unfinished: not again in that version
        self._unreadable: set[str] = set()  # subfolders told once that they cannot be read
        self._spec = spec
        self._folders: dict[str, _Finished] = {}  # by watched folder (`_id`), as the state says
        self._read: bytes | None = None  # the state file's content `_folders` was read from
        self._paths: dict[str, Path] = {}  # `_named`'s, by the name in the state
        self._tag = _process()  # this watch's claims in the state
        self._told_unclaimed = False  # the state could not be written to claim files: said once
        self._refresh(recover=True)

    @property
    def _mine(self) -> _Finished:
        return self._folders.get(self._id) or _Finished()

    def _refresh(self, recover: bool = False, held: bool = False) -> None:
        """Take the state file's watched folders into `_folders` when its content is not the
        one last read or written: another watch may write into it (two folders written into
        one, the CLI's and the app's), and parsing the state of thousands of files at every
        file took most of the watch's time. Its bytes are compared, not its size and time,
        which a write may leave as they were. A missing or unreadable state file leaves what
        is known. A damaged one is read again under the state's lock (`held`: the caller holds
        it), as another watch may have put it right meanwhile; still damaged, it is moved aside
        (`_keep`) and, with `recover` (a watch starting, knowing nothing yet), this folder's is
        rebuilt (`_recovered`): no other watch writes between, nor has its new state moved
        aside as the damaged one."""
        try:
            content = self.state_file.read_bytes()
        except FileNotFoundError:
            return
        except OSError as e:
            log.warning("%s: unreadable watch state (%s); finished files may be done again",
                        self.state_file, e.strerror or e)  # fmt: skip
            return
        if content == self._read:
            return
        try:
            folders = _folders_in(json.loads(content.decode("utf-8")), self._id)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            if not held:
                with _locked(self.state_file):
                    self._refresh(recover, held=True)
            elif self._keep() and recover:
                self._folders = self._recovered()
            return
        self._folders, self._read = folders, content

    def _keep(self) -> bool:
        """Move the damaged state file aside (<name>.damaged-<time>), where it can be looked
        into, instead of writing over it; False when it cannot be (then it may be)."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        name = self.state_file.with_name(f"{self.state_file.name}.damaged-{stamp}")
        try:
            aside = unique_base(name, set(self.state_file.parent.iterdir()))
            os.rename(self.state_file, aside)
        except FileNotFoundError:  # moved by another folder's watch meanwhile
            return True
        except OSError as e:
            log.warning("%s: unreadable watch state, and it cannot be moved aside (%s); "
                        "finished files may be done again", self.state_file,
                        e.strerror or e)  # fmt: skip
            return False
        then = ("finished files may be done again" if self._spec is None
                else "files whose transcripts are there are taken as finished")  # fmt: skip
        log.warning("%s: unreadable watch state; kept as %s, and a new one is started: %s",
                    self.state_file, aside, then)  # fmt: skip
        return True

    def _recovered(self) -> dict[str, _Finished]:
        """This folder's finished files as its transcripts tell (`WatchSpec.transcribed`), in
        their present versions, when the state was lost; saved at once, so that a restart finds
        them (under the state's lock, held by `_refresh`). Where their transcripts went is not
        known: a file that grows gets names of its own, not those (they may be someone's
        notes)."""
        if self._spec is None:
            return {}
        found = media_files(self.folder, self.options.recursive, self._tell_unreadable)
        stamps = {self._key(p): self._stamp(p) for p in found if self._spec.transcribed(p)}
        done = {key: stamp for key, stamp in stamps.items() if stamp is not None}
        folders = {self._id: _Finished(done)}
        log.info("%s: %d finished files found by their transcripts", self.folder, len(done))
        with contextlib.suppress(OSError):  # not saved: `done` says so at the first file
            self._save(folders)
        return folders

    def _key(self, path: Path) -> str:
        """`path` as the state knows it: in the watched folder, however that was named."""
        return _relative(path, self.folder)

    @staticmethod
    def _stamp(path: Path) -> _Stamp | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def _to_do(self) -> Iterator[tuple[Path, _Stamp]]:
        """The files present that are not finished in their current version, with it. An empty
        file has none yet (a recorder has just made it): it is taken once it has content. The
        state file, even in the watched folder, is never one: hidden (`STATE_FILE`) and .json,
        it is no media file. Raises FileNotFoundError when the watched folder is gone (renamed,
        unmounted)."""
        if not self.folder.is_dir():
            raise FileNotFoundError(errno.ENOENT, "folder is gone (renamed or unmounted)",
                                    str(self.folder))  # fmt: skip
        done = self._mine.done
        found = _media(self.folder, self.options.recursive, self._tell_unreadable)
        for path, key in sorted(found, key=lambda pair: pair[0]):
            stamp = self._stamp(path)
            if stamp is not None and stamp[0] > 0 and done.get(key) != stamp:
                yield path, stamp

    def _tell_unreadable(self, error: OSError) -> None:
        """A subfolder that cannot be read is said once, not at every look."""
        if error.filename not in self._unreadable:
            self._unreadable.add(error.filename)
            _warn_unreadable(error)

    def ready(self) -> list[Path]:
        """Files not finished in their current version that have stopped changing. Raises
        FileNotFoundError when the watched folder is gone."""
        now, ready, seen, held = self._clock(), {}, {}, {}
        for path, stamp in self._to_do():
            if self._held.get(path) == stamp:
                held[path] = stamp
                continue
            previous = self._seen.get(path)
            if previous is None or previous[0] != stamp:
                seen[path] = (stamp, now)  # new or still changing: wait
                continue
            seen[path] = previous
            if now - previous[1] >= self.options.settle_seconds:
                ready[path] = stamp
        self._seen, self._held = seen, held
        self._claim({p: s for p, s in ready.items() if p not in self._handed})
        return [path for path in ready if path in self._handed]

    def _claim(self, files: dict[Path, _Stamp]) -> None:
        """Hand out (`_handed`) the settled `files` no other live watch holds nor has finished
        in that version, claimed for this one in the state, under its lock. A state that
        cannot be written (a read-only or full drive, a name it cannot encode) hands them out
        unclaimed, said once:
        finishing them then says it cannot be recorded."""
        free = files
        if not files:
            return
        try:
            with _locked(self.state_file):
                self._refresh(held=True)
                mine = self._mine
                free = {p: s for p, s in files.items() if self._free(mine, self._key(p), s)}
                if free:
                    claims = {**mine.claims, **{self._key(p): (self._tag, "") for p in free}}
                    self._save({**self._folders, self._id: replace(mine, claims=claims)})
        except (OSError, ValueError) as e:  # ValueError: a file name the state cannot encode
            self._tell_unclaimed(e)
        for path, stamp in free.items():
            # The first version handed out, until done: a queue may hand a file over again
            # after it changed, and only the version first seen is sure to be transcribed.
            self._handed.setdefault(path, stamp)

    def _tell_unclaimed(self, error: OSError | ValueError) -> None:
        """The state cannot be written to claim files or names: said once, not at each file."""
        if not self._told_unclaimed:
            detail = getattr(error, "strerror", None) or error
            log.warning("%s: files cannot be claimed (%s); another watch of %s may do them "
                        "too", self.state_file, detail, self.folder)  # fmt: skip
        self._told_unclaimed = True

    def _free(self, finished: _Finished, key: str, stamp: _Stamp) -> bool:
        """Whether this watch may take file `key` in version `stamp`: not finished in it, and
        claimed by no other process but one that is gone. Watches of one process (the app's)
        keep apart their files themselves."""
        tag = finished.claims.get(key, (self._tag, ""))[0]
        return finished.done.get(key) != stamp and (tag == self._tag or not _alive(tag))

    def pending(self) -> int:
        """Files present that are not finished in their current version (ready or settling),
        less those given back in it (not handed out again until a new version or a restart).
        Raises FileNotFoundError when the watched folder is gone."""
        return sum(1 for path, stamp in self._to_do() if self._held.get(path) != stamp)

    def failed(self) -> list[Path]:
        """The files that failed (`done` without a base) and are held back in that version,
        as the state file says now: a new version of one is done again, `retry_failed` gives
        them back now. A restart says them, not passes them by without a word."""
        self._refresh()
        return self._failed()

    def _failed(self) -> list[Path]:
        """`failed` as last read."""
        mine = self._mine
        paths = ((self.folder / key, key) for key in sorted(mine.failed))
        return [path for path, key in paths if self._stamp(path) == mine.done.get(key)]

    def retry_failed(self) -> list[Path]:
        """Forget the `failed` files, under the state's lock, so that `ready()` hands them out
        again (a model since made better, a file put right in place); they are returned.
        Raises OSError when the state cannot be written."""
        with _locked(self.state_file):
            self._refresh(held=True)
            failed = self._failed()
            if failed:
                keys = {self._key(path) for path in failed}
                mine = self._mine
                done = {k: v for k, v in mine.done.items() if k not in keys}
                forgotten = replace(mine, done=done, failed=mine.failed - keys)
                self._save({**self._folders, self._id: forgotten})
        return failed

    def names(self, path: Path) -> set[Path]:
        """Where the transcripts of the finished files other than `path` went, or those being
        transcribed go (without their suffixes), those of the other folders written into the
        state's folder too, as the state file says now: `WatchSpec.base`'s `taken`."""
        self._refresh()
        return self._taken(path)

    def _taken(self, path: Path) -> set[Path]:
        """`names` as last read."""
        me = (self._id, self._key(path))
        return {
            self._named(name)
            for folder, finished in self._folders.items()
            for key, name in finished.taken()
            if (folder, key) != me
        }

    def base(self, spec: WatchSpec, path: Path, now: datetime | None = None) -> Path:
        """Where `path`'s transcripts go (`WatchSpec.base`, given `names` and `own`), chosen
        under the state's lock and kept with its claim until `done`: another watch writing
        into the same folder takes another name even before these are written (two talk.wav
        written into one folder at once: talk, talk-2, not one over the other). Raises as
        `WatchSpec.base` does. A state that cannot be written (a full disk, a name it
        cannot encode) keeps no name: said once, as `done` then says the file cannot be
        recorded."""
        with _locked(self.state_file):
            self._refresh(held=True)
            base = spec.base(path, self._taken(path), self.own(path), now)
            mine, name = self._mine, _relative(base, self.state_file.parent)
            claims = {**mine.claims, self._key(path): (self._tag, name)}
            try:
                self._save({**self._folders, self._id: replace(mine, claims=claims)})
            except (OSError, ValueError) as e:
                self._tell_unclaimed(e)
        return base

    def publish(
        self, spec: WatchSpec, path: Path, write: Callable[[list[Path], bool], object]
    ) -> Path:
        """Write `path`'s transcripts through `write(targets, replace)` where `base` puts them,
        and return that base. Only the recording's own earlier transcripts are replaced
        (`own`); a name another program took since it was chosen (`tingxie-cli transcribe`,
        the user) makes `write` raise FileExistsError (`engine.writers.write_all` without
        `replace`), and the next free name is taken. Raises as `base` and `write` do."""
        clashed: set[Path] = set()
        while True:
            base = self.base(spec, path)
            try:
                write(spec.targets(base), base == self.own(path))
            except FileExistsError:
                if base in clashed:  # the name is not free, yet not seen as taken: no next one
                    raise
                clashed.add(base)
                log.info("%s: taken while %s was transcribed; the next name is taken", base, path)
                continue
            return base

    def own(self, path: Path) -> Path | None:
        """Where the transcripts of `path`'s earlier version went (without their suffixes),
        when its present version continues that one (it still holds the sample taken of it: a
        recorder that resumed, a file that grew in a queue), so they may be replaced; None when
        it is another recording under the same name: its own transcripts keep the earlier
        one's."""
        key, mine = self._key(path), self._mine
        if key not in mine.names or key not in mine.marks:
            return None
        offset, digest = mine.marks[key]
        return self._named(mine.names[key]) if _mark(path, offset) == digest else None

    def _named(self, name: str) -> Path:
        """A transcript's name in the state, under the state file's folder; made once, as
        `names` gives every finished file's at each file done and a Path is slow to make."""
        if name not in self._paths:
            self._paths[name] = self.state_file.parent / name
        return self._paths[name]

    def done(self, path: Path, base: Path | None = None) -> None:
        """Remember `path`, as `ready()` handed it out, as finished in the version it had then:
        one written since (it grew while transcribed, or while it waited in a queue) is done
        again. `base`: where its transcripts went, under the state file's folder (None: none
        were named: it failed, and is held back as failed in that version, `failed`), which
        `names` then keeps from the other files. What another watch wrote
        into the state file is taken first (`_refresh`), then the state is written atomically,
        both under the state's lock (`_locked`): two processes' watches writing one state file
        (two folders written into one, the CLI's and the app's) each keep the other's files.
        Raises OSError when it cannot be (a full disk): `path` is then not remembered, and is
        handed out again once it has settled again."""
        stamp = self._handed[path]  # kept until recorded: a failure may `release` it
        self._seen.pop(path, None)
        key = self._key(path)
        with _locked(self.state_file):  # no other watch writes between the read and the write
            self._refresh(held=True)
            mine = self._mine
            failed = mine.failed | {key} if base is None else mine.failed - {key}
            mine = _Finished({**mine.done, key: stamp}, dict(mine.names), dict(mine.marks),
                             self._unclaimed(mine, key), failed)  # fmt: skip
            if base is not None:
                mine.names[key] = _relative(base, self.state_file.parent)
                mark = _mark(path, stamp[0] // 2)
                if mark is None:  # unread: a later version is taken for another recording
                    mine.marks.pop(key, None)
                else:
                    mine.marks[key] = (stamp[0] // 2, mark)
            self._save({**self._folders, self._id: mine})
        del self._handed[path]

    def _save(self, folders: dict[str, _Finished]) -> None:
        """Write the state file atomically (on one line: `json_text`), then know it as
        `folders`; raises OSError when it cannot be written (a full disk). Claims of watches
        whose process is gone are left out."""
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        state = {"version": _STATE_VERSION, "folders": {
            folder: {"done": f.done, "names": f.names, "marks": f.marks, "claims": {
                key: claim for key, claim in f.claims.items() if _alive(claim[0])
            }, "failed": sorted(f.failed)} for folder, f in folders.items()
        }}  # fmt: skip
        text = json_text(state)
        atomic_write_text(self.state_file, text)
        self._folders, self._read = folders, text.encode("utf-8")

    def release(self, path: Path) -> None:
        """Give `path` back unfinished, as `ready()` handed it out (its job was cancelled, or
        its transcripts could not be written): it is not remembered, so the next start hands
        it out again; until then `ready()` leaves it out while it keeps the version it had
        (a cancelled file must not come back at the next look), and hands out a new one.
        Its claim is dropped: another watch of the folder may take it now. When the state
        cannot be written, that is said, and the claim goes when this process ends."""
        stamp = self._handed.pop(path, None)
        if stamp is not None:
            self._held[path] = stamp
            self._unclaim(path)

    def fail(self, path: Path) -> bool:
        """Record `path` as failed (`done` without a base: held back until a new version), as
        `ready()` handed it out, and return True; when it is gone or not that version any more
        (moved, renamed or rewritten while it waited in a queue: the failure may only be that
        it was missing), give it back instead, not held back, so it is done once it is there
        and settled again (a rename back keeps its size and time), and return False. Raises
        as `done`."""
        stamp = self._handed.get(path)
        if stamp is not None and self._stamp(path) == stamp:
            self.done(path)
            return True
        if stamp is not None:
            del self._handed[path]
            self._unclaim(path)
        return False

    def handed(self, path: Path) -> bool:
        """Whether `path` is handed out by `ready()`, not yet done nor given back."""
        return path in self._handed

    def _unclaim(self, path: Path) -> None:
        """Drop this watch's claim of `path` in the state, for the other watches; when the
        state cannot be written, that is said, and the claim goes when this process ends."""
        try:
            with _locked(self.state_file):
                self._refresh(held=True)
                mine = self._mine
                if mine.claims.get(self._key(path), ("",))[0] == self._tag:
                    claims = self._unclaimed(mine, self._key(path))
                    self._save({**self._folders, self._id: replace(mine, claims=claims)})
        except (OSError, ValueError) as e:
            log.warning("%s: %s cannot be given back to the other watches (%s); it is when "
                        "this program ends", self.state_file, path,
                        getattr(e, "strerror", None) or e)  # fmt: skip

    def _unclaimed(self, finished: _Finished, key: str) -> dict[str, _Claim]:
        """`finished`'s claims without this watch's of `key`."""
        return {k: c for k, c in finished.claims.items() if (k, c[0]) != (key, self._tag)}


@contextlib.contextmanager
def _locked(state_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on `state_file`'s lock file (hidden beside it, made once and
    left) while the block runs: another watch, in this process or another, waits for it.
    The kernel lets go when the process ends, by kill -9 too. Where the lock file cannot be
    made (a file where its folder goes, a read-only drive: the state cannot be written either,
    which the block says better), there is no flock (Windows) or the file system refuses locks
    (some network mounts), the block runs unguarded: two watches writing one state there may
    each lose the other's last files, which are then done again, or both take one file."""
    try:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        held = open(state_file.with_name(state_file.name + _LOCK_SUFFIX), "a+b")  # noqa: SIM115
    except OSError as e:
        log.debug("%s: no lock file (%s); written unguarded", state_file, e)
        yield
        return
    with held:
        if fcntl is not None:
            try:
                fcntl.flock(held, fcntl.LOCK_EX)
            except OSError as e:
                log.debug("%s: cannot be locked (%s); written unguarded", state_file, e)
        yield  # closing `held` lets the lock go


def _process() -> str:
    """This process as a claim names it: pid@host (`staging_tag` without its random part)."""
    return staging_tag().rsplit("-", 1)[0]


def _alive(tag: str) -> bool:
    """Whether the process of claim `tag` (pid@host) may still run: not one of this host that
    is gone (`engine.atomic.left_by_gone_process`)."""
    match = re.fullmatch(r"(\d+)@(.+)", tag)
    return match is not None and not left_by_gone_process(*match.groups())


def _folders_in(state: dict, opener: str) -> dict[str, _Finished]:
    """The watched folders of a state file's JSON, what each finished (by `FolderWatch._key`)
    and where its transcripts went. A state of one folder (before version 3) belongs to the
    watch whose state file it is: `opener`'s (`FolderWatch._id`), not the folder as it was
    typed (`watch in`), which the current directory may now make another."""
    if state.get("version", 1) >= 3:
        return {str(f): _Finished.read(e) for f, e in state["folders"].items()}
    typed = state["folder"]  # version 1 keyed by the path as the folder was typed then
    key = str if "version" in state else (lambda k: _relative(k, typed))
    return {opener: _Finished.read(state, key)}


def _mark(path: Path, offset: int) -> str | None:
    """A digest of `path`'s bytes from `offset` (None when it cannot be read): a later
    version that has the same there continues the recording."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return hashlib.blake2b(f.read(_MARK_BYTES), digest_size=16).hexdigest()
    except OSError:
        return None


def overlaps(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether folders `a` and `b` are one, or one holds the other: watched both, their shared
    files would be transcribed twice."""
    ra, rb = _real(a), _real(b)
    return ra == rb or ra.is_relative_to(rb) or rb.is_relative_to(ra)


def _real(folder: str | os.PathLike[str]) -> Path:
    try:
        return Path(folder).resolve()
    except OSError:  # a loop of links, an unreachable share
        return Path(os.path.abspath(folder))


def _check_name(pattern: str) -> None:
    """Raise ValueError unless the file-name pattern uses only plain {stem}, {date} and {time}:
    no attribute or index ({date.year}, {stem[0]}: errors or a method's text as the name), no
    conversion or format spec."""
    try:
        usable = all(
            field is None or (field in _NAME_FIELDS and not spec and not conversion)
            for _text, field, spec, conversion in string.Formatter().parse(pattern)
        )
    except ValueError:  # an unmatched brace
        usable = False
    if not usable:
        raise ValueError(f"file-name pattern {pattern!r}: use only {{stem}}, {{date}} and {{time}}")


def _relative(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> str:
    """`path` under `folder`, as a POSIX path relative to it (both named alike: as typed)."""
    return Path(path).relative_to(folder).as_posix()
