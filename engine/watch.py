"""Folders of recordings: the media files in a folder, and a watch folder that hands over each
new file once it has stopped growing, remembering what it finished across restarts.

Polling (a stat per file every `poll_seconds`), not OS file events: it works the same on every
platform and on network shares, and a folder of recordings changes slowly. A file is ready when
its size and modification time have not changed for `settle_seconds` (a recorder or a copy still
writing it keeps changing them). Finished files are kept in a JSON state file by their path in
the watched folder (however that folder is named), size and modification time, so a restart does
not redo them and a file replaced by a new version is done again; with them the names their
transcripts were given, so two files whose names make one transcript name (talk.wav and
talk.flac) keep apart ones (talk, talk-2) across restarts. A file handed out and given back
unfinished (cancelled, or its transcripts could not be written) is not remembered: a restart
hands it out again, and until then only a new version of it is.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import string
import time
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .atomic import atomic_write_text
from .audio import is_supported
from .writers import FORMATS

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
_STATE_VERSION = 2  # 1 (no "version"): keyed by the path as the watched folder was typed

_Stamp = tuple[int, int]  # a file's version: size and modification time (ns)
_NAME_FIELDS = ("stem", "date", "time")  # the fields of a file-name pattern


def media_files(folder: str | os.PathLike[str], recursive: bool = True) -> list[Path]:
    """Audio and video files in `folder` (by extension; hidden files and folders skipped), in
    name order."""
    root = Path(folder)
    found = root.rglob("*") if recursive else root.iterdir()
    return sorted(
        p
        for p in found
        if p.is_file()
        and is_supported(p)
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


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

    def base(self, path: Path, taken: Container[Path] = (), now: datetime | None = None) -> Path:
        """Where `path`'s transcripts go, without the format's suffix: the pattern's name, with
        -2, -3… where other files' transcripts have it (`taken`: `FolderWatch.names`); its
        folder is made. Raises OSError when it cannot be (NotADirectoryError where a file is in
        its place)."""
        now = now or datetime.now()
        name = self.name.format(stem=path.stem, date=now.strftime("%Y-%m-%d"),
                                time=now.strftime("%H%M%S"))  # fmt: skip
        out = self.out_folder(path)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except FileExistsError as e:  # "File exists" would not say what is wrong
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), e.filename) from e
        return unique_base(out / name, taken)

    def targets(self, base: Path) -> list[Path]:
        """The transcript files of a `base`, one per format."""
        return [base.with_name(f"{base.name}.{fmt}") for fmt in self.formats]


class FolderWatch:
    """`ready()` lists the files to do now; `done(path, base)` records one as finished and where
    its transcripts went; `release(path)` gives one back unfinished; `names(path)` are where the
    other finished files' went."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        state_file: str | os.PathLike[str],
        options: WatchOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder}: no such folder; choose a folder to watch")
        self.state_file = Path(state_file)
        self.options = options or WatchOptions()
        self._clock = clock
        self._seen: dict[Path, tuple[_Stamp, float]] = {}  # stamp, when first seen
        self._handed: dict[Path, _Stamp] = {}  # the version `ready()` handed out, until done
        self._held: dict[Path, _Stamp] = {}  # given back unfinished: not again in that version
        self._done, self._names = self._load()

    def _load(self) -> tuple[dict[str, _Stamp], dict[str, str]]:
        """Finished files (by `_key`) with their stamps, and where their transcripts went
        (relative to the state file's folder)."""
        try:
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
            done = state["done"]
            if "version" not in state:  # keyed by the path as the folder was typed then
                done = {_relative(k, state["folder"]): v for k, v in done.items()}
            names = {str(k): str(v) for k, v in state.get("names", {}).items()}
            return {str(k): (int(v[0]), int(v[1])) for k, v in done.items()}, names
        except FileNotFoundError:
            return {}, {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
            log.warning("%s: unreadable watch state; finished files may be done again",
                        self.state_file)  # fmt: skip
            return {}, {}

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
        file has none yet (a recorder has just made it): it is taken once it has content."""
        state = self.state_file.resolve()
        for path in media_files(self.folder, self.options.recursive):
            stamp = self._stamp(path)
            if (
                stamp is not None
                and stamp[0] > 0
                and self._done.get(self._key(path)) != stamp
                and path.resolve() != state
            ):
                yield path, stamp

    def ready(self) -> list[Path]:
        """Files not finished in their current version that have stopped changing."""
        now, ready, seen, held = self._clock(), [], {}, {}
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
                ready.append(path)
                # The first version handed out, until done: a queue may hand a file over again
                # after it changed, and only the version first seen is sure to be transcribed.
                self._handed.setdefault(path, stamp)
        self._seen, self._held = seen, held
        return ready

    def pending(self) -> int:
        """Files present that are not finished in their current version (ready or settling)."""
        return sum(1 for _ in self._to_do())

    def names(self, path: Path) -> set[Path]:
        """Where the transcripts of the finished files other than `path` went (without their
        suffixes): `WatchSpec.base`'s `taken`."""
        key = self._key(path)
        return {self.state_file.parent / name for k, name in self._names.items() if k != key}

    def done(self, path: Path, base: Path | None = None) -> None:
        """Remember `path`, as `ready()` handed it out, as finished in the version it had then:
        one written since (it grew while transcribed, or while it waited in a queue) is done
        again. `base`: where its transcripts went, under the state file's folder (None: none
        were named), which `names` then keeps from the other files. Written atomically; raises
        OSError when it cannot be (a full disk): `path` is then not remembered, and is handed
        out again once it has settled again."""
        stamp = self._handed.pop(path)
        self._seen.pop(path, None)
        key = self._key(path)
        done = {**self._done, key: stamp}
        names = dict(self._names)
        if base is not None:
            names[key] = _relative(base, self.state_file.parent)
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        state = {"version": _STATE_VERSION, "folder": str(self.folder), "done": done,
                 "names": names}  # fmt: skip
        atomic_write_text(self.state_file, json.dumps(state, ensure_ascii=False, indent=1))
        self._done, self._names = done, names

    def release(self, path: Path) -> None:
        """Give `path` back unfinished, as `ready()` handed it out (its job was cancelled, or
        its transcripts could not be written): it is not remembered, so the next start hands
        it out again; until then `ready()` leaves it out while it keeps the version it had
        (a cancelled file must not come back at the next look), and hands out a new one."""
        stamp = self._handed.pop(path, None)
        if stamp is not None:
            self._held[path] = stamp


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
