"""Folders of recordings: the media files in a folder, and a watch folder that hands over each
new file once it has stopped growing, remembering what it finished across restarts.

Polling (a stat per file every `poll_seconds`), not OS file events: it works the same on every
platform and on network shares, and a folder of recordings changes slowly. A file is ready when
its size and modification time have not changed for `settle_seconds` (a recorder or a copy still
writing it keeps changing them). Finished files are kept in a JSON state file by path, size and
modification time, so a restart does not redo them and a file replaced by a new version is done
again.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .atomic import atomic_write_text
from .audio import is_supported
from .writers import FORMATS

__all__ = ["STATE_FILE", "FolderWatch", "WatchOptions", "WatchSpec", "media_files"]

log = logging.getLogger("tingxie.watch")

STATE_FILE = ".tingxie-watch.json"  # in the output folder (or the watched one): what was finished


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
        try:
            sample = self.name.format(stem="x", date="d", time="t")
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(
                f"file-name pattern {self.name!r}: use only {{stem}}, {{date}} and {{time}}"
            ) from e
        if not sample.strip() or any(sep in sample for sep in "/\\"):
            raise ValueError(f"file-name pattern {self.name!r}: give a file name, not a path")

    @property
    def state_file(self) -> Path:
        """Where the watch remembers finished files: with the transcripts it wrote."""
        return Path(self.out or self.folder) / STATE_FILE

    def base(self, path: Path, now: datetime | None = None) -> Path:
        """Where `path`'s transcripts go, without the format's suffix; its folder is made."""
        now = now or datetime.now()
        name = self.name.format(stem=path.stem, date=now.strftime("%Y-%m-%d"),
                                time=now.strftime("%H%M%S"))  # fmt: skip
        out = Path(self.out) / path.parent.relative_to(self.folder) if self.out else path.parent
        out.mkdir(parents=True, exist_ok=True)
        return out / name

    def targets(self, path: Path, now: datetime | None = None) -> list[Path]:
        """The transcript files of `path`, one per format."""
        base = self.base(path, now)
        return [base.with_name(f"{base.name}.{fmt}") for fmt in self.formats]


class FolderWatch:
    """`ready()` lists the files to do now; `done(path)` records one as finished."""

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
        self._seen: dict[Path, tuple[tuple[int, int], float]] = {}  # stamp, when first seen
        self._done = self._load()

    def _load(self) -> dict[str, list[int]]:
        try:
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
            return {str(k): list(v) for k, v in state["done"].items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            log.warning("%s: unreadable watch state; finished files may be done again",
                        self.state_file)  # fmt: skip
            return {}

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def ready(self) -> list[Path]:
        """Files not finished in their current version that have stopped changing."""
        now, ready = self._clock(), []
        present = set()
        for path in media_files(self.folder, self.options.recursive):
            if path.resolve() == self.state_file.resolve():
                continue
            present.add(path)
            stamp = self._stamp(path)
            if stamp is None or stamp[0] == 0 or self._done.get(str(path)) == list(stamp):
                continue
            previous = self._seen.get(path)
            if previous is None or previous[0] != stamp:
                self._seen[path] = (stamp, now)  # new or still changing: wait
            elif now - previous[1] >= self.options.settle_seconds:
                ready.append(path)
        self._seen = {p: v for p, v in self._seen.items() if p in present}
        return ready

    def pending(self) -> int:
        """Files present that are not finished in their current version (ready or settling)."""
        return sum(
            1
            for path in media_files(self.folder, self.options.recursive)
            if (stamp := self._stamp(path)) is not None and self._done.get(str(path)) != list(stamp)
        )

    def done(self, path: Path) -> None:
        """Remember `path` as finished in its current version (written atomically)."""
        stamp = self._stamp(path)
        if stamp is None:
            return
        self._done[str(path)] = list(stamp)
        self._seen.pop(path, None)
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        state = {"folder": str(self.folder), "done": self._done}
        atomic_write_text(self.state_file, json.dumps(state, ensure_ascii=False, indent=1))
