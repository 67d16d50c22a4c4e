"""Writing files and folders so a crash, a full disk or a cancel never leaves a half-written one
where a good one was: write a temporary sibling, then `os.replace` it into place."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "STAGING",
    "Staging",
    "atomic_folder",
    "atomic_write_files",
    "atomic_write_text",
    "folder_problem",
    "holds_files",
    "staged_folder",
    "staged_into",
]


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text ("\\n" line ends) as `atomic_write_files` writes a file."""
    path = Path(path)
    atomic_write_files([(path, lambda f: f.write(text.encode("utf-8")))])
    return path


def atomic_write_files(files: Sequence[tuple[Path, Callable[[BinaryIO], None]]]) -> None:
    """Write each (path, save) through `save(binary file)` into a synced temporary sibling,
    then move them all into place: on a failure (a full disk) none is new and the old files
    stay as they were. An existing file keeps its permissions. The temporary names are short
    and hidden: one after a path's own would be too long for a file name where that is not."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, save in files:
            mode = path.stat().st_mode & 0o777 if path.exists() else 0o644  # mkstemp: 0600
            fd, tmp = tempfile.mkstemp(prefix=".tingxie-", suffix=".tmp", dir=path.parent)
            staged.append((tmp, path))
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as f:
                save(f)
                f.flush()
                os.fsync(f.fileno())
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)


def folder_problem(folder: Path) -> str | None:
    """Why files cannot be written in `folder` (made if needed: a scratch file is written and
    removed), or None when they can: asked before long work (a transcription, a training run),
    not after it."""
    if folder.exists() and not folder.is_dir():
        return "a file has that name"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as e:
        return str(e.strerror or e)


@contextlib.contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """A sibling temporary folder to write `target` into: swapped in for `target` when the
    block ends normally; removed, with `target` left as it was, when the block raises (a
    failure, a full disk, a cancel, or a generator holding the block being closed).

    Only a folder is ever replaced: a `target` that exists and is not one (a document someone
    named) raises NotADirectoryError before anything is written. A relative `target` (".")
    is taken from the current folder. A symlink is followed: the folder it points to is
    replaced (staged beside it, on its disk) and the link is kept, as the person made it."""
    target = Path(os.path.realpath(Path(target).expanduser()))  # "." has no name to stage by
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR, "exists and is not a folder, so it is not replaced", str(target)
        )
    tmp = target.with_name(f".{target.name}.tmp")
    old = target.with_name(f".{target.name}.old")
    for stale in (tmp, old):
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


# The folder `staged_into` writes in inside a target that exists (hidden; a killed export's is
# removed by the next one there, and does not make the folder count as holding files).
STAGING = ".tingxie-export.tmp"


def holds_files(folder: Path) -> bool:
    """Whether `folder` holds anything but a killed export's staging folder (`STAGING`)."""
    return any(p.name != STAGING for p in folder.iterdir())


@dataclass
class Staging:
    """Where a `staged_into` block writes (`folder`), and where that goes when the block ends
    (`target`: the block may point it at another path, to keep a failed export apart)."""

    folder: Path
    target: Path


@contextlib.contextmanager
def staged_into(target: Path) -> Iterator[Staging]:
    """A temporary folder to write `target`'s files into, put in place when the block ends
    normally. Unlike `staged_folder`, `target` itself is never replaced nor deleted: a folder a
    person chose keeps its link, owner, mode and whatever is saved into it meanwhile. When it
    exists the files are staged inside it (`STAGING`: only the folder itself need take files,
    as an empty USB stick's root does) and moved in one by one; otherwise beside it, renamed
    to it. A name that is in `target` by then is never overwritten: TingxieError
    export.name_taken, with nothing moved. When the block raises, the temporary folder is
    removed and `target` is as it was. A symlink is followed (the files land where it points)."""
    from engine.errors import TingxieError

    target = Path(os.path.realpath(Path(target).expanduser()))
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR, "exists and is not a folder, so it is not replaced", str(target)
        )
    tmp = target / STAGING if target.is_dir() else target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # a killed export's
    tmp.mkdir(parents=True)
    staging = Staging(tmp, target)
    try:
        yield staging
        if not staging.target.exists():
            os.rename(tmp, staging.target)
            return
        names = [p.name for p in tmp.iterdir()]
        taken = [n for n in names if os.path.lexists(staging.target / n)]
        if taken:
            raise TingxieError("export.name_taken", path=staging.target / taken[0])
        _move_all(tmp, staging.target, names)
        tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _move_all(source: Path, target: Path, names: list[str]) -> None:
    """Rename each of `names` from `source` into `target`; when one fails, those moved go back,
    so that `target` holds none of them."""
    moved: list[str] = []
    try:
        for name in names:
            os.rename(source / name, target / name)
            moved.append(name)
    except BaseException:
        for name in moved:
            with contextlib.suppress(OSError):
                os.rename(target / name, source / name)
        raise


def atomic_folder(target: Path, write: Callable[[Path], None]) -> Path:
    """Run `write(tmp)` into a sibling temporary folder, then swap it in for `target` (see
    `staged_folder`: when `write` raises, nothing of it is left)."""
    with staged_folder(target) as tmp:
        write(tmp)
    return Path(target)
