"""Writing files and folders so a crash, a full disk or a cancel never leaves a half-written one
where a good one was: write a temporary sibling, then `os.replace` it into place."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "STAGING_TAG",
    "Staging",
    "atomic_folder",
    "atomic_write_files",
    "atomic_write_text",
    "folder_problem",
    "holds_files",
    "left_by_gone_process",
    "staged_folder",
    "staged_into",
    "staging_tag",
]


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text ("\\n" line ends) as `atomic_write_files` writes a file."""
    path = Path(path)
    atomic_write_files([(path, lambda f: f.write(text.encode("utf-8")))])
    return path


def atomic_write_files(
    files: Sequence[tuple[Path, Callable[[BinaryIO], None]]], replace: bool = True
) -> None:
    """Write each (path, save) through `save(binary file)` into a synced temporary sibling,
    then move them all into place: on a failure (a full disk) none is new and the old files
    stay as they were. An existing file keeps its permissions. A symlink is followed: the
    file it points to is written and the link kept (as `staged_folder` does). The temporary
    names are short and hidden: one after a path's own would be too long for a file name where
    that is not.

    Without `replace`, no file there is ever replaced, not even one made by another process
    after the caller looked (two runs writing one name at once): each is published by a hard
    link, which fails where a name is taken; then FileExistsError names that path as given,
    and none of `files` is new (`_link_all`)."""
    staged: list[tuple[str, Path]] = []
    try:
        for link, save in files:
            path = Path(os.path.realpath(link))
            mode = path.stat().st_mode & 0o777 if path.exists() else 0o644  # mkstemp: 0600
            fd, tmp = _temporary_beside(path, link)
            staged.append((tmp, path))
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as f:
                save(f)
                f.flush()
                os.fsync(f.fileno())
        if replace:
            for tmp, path in staged:
                os.replace(tmp, path)
        else:
            _link_all(staged, [link for link, _ in files])
    finally:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)


def _temporary_beside(path: Path, link: Path) -> tuple[int, str]:
    """A new hidden temporary file in `path`'s folder, (fd, name). A folder that is not there
    is named as such (`link`'s, as given), not by the temporary name mkstemp tried."""
    try:
        return tempfile.mkstemp(prefix=".tingxie-", suffix=".tmp", dir=path.parent)
    except FileNotFoundError as e:
        if path.parent.is_dir():
            raise
        raise FileNotFoundError(
            errno.ENOENT,
            "folder does not exist; create it or choose another",
            str(Path(link).parent),
        ) from e


# A file system without hard links (FAT and exFAT memory cards, some network shares) refuses one
# with these: there a file is published by `os.replace` after a look, guarded against all but
# another writer at the same instant.
_NO_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP)


def _link_all(staged: list[tuple[str, Path]], named: list[Path]) -> None:
    """Publish each staged (tmp, path) at `path` without replacing a file there: a hard link
    to `tmp`, which the kernel refuses where the name is taken. When one is taken, those
    linked are removed (they were made here, nothing was there) and FileExistsError names
    the path as `named` gives it."""
    linked: list[Path] = []
    try:
        for (tmp, path), name in zip(staged, named, strict=True):
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise FileExistsError(errno.EEXIST, "already exists", str(name)) from None
            except OSError as e:
                if e.errno not in _NO_LINKS:
                    raise
                if os.path.lexists(path):
                    raise FileExistsError(errno.EEXIST, "already exists", str(name)) from e
                os.replace(tmp, path)
            linked.append(path)
    except BaseException:
        for path in linked:
            with contextlib.suppress(OSError):
                path.unlink()
        raise


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
    replaced (staged beside it, on its disk) and the link is kept, as the person made it.

    Each block stages in a folder of its own (`_staging`), so two builds of one `target` at
    once (the app's and the CLI's) never write into each other's; the last to end is put in
    place, whole (`_swap_in`)."""
    target = Path(os.path.realpath(Path(target).expanduser()))  # "." has no name to stage by
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR, "exists and is not a folder, so it is not replaced", str(target)
        )
    _sweep(target)
    tmp = _staging(target)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        _sync_tree(tmp)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _sync_tree(folder: Path) -> None:
    """Flush a staged folder's files, then its folders, to the disk before it is swapped in:
    after a power cut the folder is then there whole or not at all, never with its files'
    names and not their bytes (a model.safetensors of 0 bytes). A folder that cannot be
    synced (some file systems refuse it) is passed by; a file that cannot fails the write."""
    for root, _, files in os.walk(folder, topdown=False):
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path):  # its target is not this folder's to sync
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        with contextlib.suppress(OSError):
            fd = os.open(root, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _swap_in(tmp: Path, target: Path) -> None:
    """Rename `tmp` to `target`, the folder there moved aside first and removed after. Another
    build of `target` may put its own in between (two ending at once): the rename onto it
    fails (a folder is never merged) and that one is moved aside too, so `target` is always one
    build's whole folder. When the rename fails otherwise, the folder moved aside goes back."""
    aside: list[Path] = []
    try:
        while True:
            if target.is_dir():
                old = _staging(target, "old")
                with contextlib.suppress(FileNotFoundError):  # moved by another build meanwhile
                    os.rename(target, old)
                    aside.append(old)
            try:
                os.rename(tmp, target)
                return
            except OSError as e:
                if not (_taken(e) and target.is_dir()):
                    raise
    except BaseException:
        if aside and not os.path.lexists(target):
            with contextlib.suppress(OSError):
                os.rename(aside.pop(), target)
        raise
    finally:
        for old in aside:
            shutil.rmtree(old, ignore_errors=True)


def _taken(error: OSError) -> bool:
    """Whether a folder's rename failed because a folder with files had the new name."""
    return error.errno in (errno.ENOTEMPTY, errno.EEXIST)


# What names a staging folder: the process writing it on this host and a random part, e.g.
# "4242@lab-pc-1a2b3c4d" (pid, host, 8 hex digits). One whose process is gone (killed, a power
# cut) is removed by the next writer there (`left_by_gone_process`); a live one's never is.
STAGING_TAG = r"(\d+)@(.+)-[0-9a-f]{8}"


def _host() -> str:
    return re.sub(r"[^\w.-]+", "-", socket.gethostname()) or "host"


def staging_tag() -> str:
    """A new `STAGING_TAG` for this process."""
    return f"{os.getpid()}@{_host()}-{secrets.token_hex(4)}"


def left_by_gone_process(pid: str, host: str) -> bool:
    """Whether the process of a `STAGING_TAG` (its pid and host) is surely gone: one of this
    host that no longer runs. Another host's processes cannot be seen from here (a shared
    network folder), and a pid taken over by another program keeps its folder until that one
    ends: both are left be, the safe side."""
    if host != _host():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # someone else's (PermissionError), or no pid at all
        pass
    return False


def _staging(path: Path, kind: str = "tmp") -> Path:
    """A new hidden name beside `path` to stage it under (`kind` "tmp") or move it aside to
    ("old"), e.g. ".set1.4242@lab-pc-1a2b3c4d.tmp"."""
    return path.with_name(f".{path.name}.{staging_tag()}.{kind}")


def _staging_names(path: Path) -> re.Pattern[str]:
    """The names of `path`'s staging folders: `_staging`'s, their tag's pid and host in groups
    1 and 2, and the untagged ones of versions before the tag (".set1.tmp", ".set1.old"; in an
    export's target ".tingxie-export.tmp"), with those groups None."""
    return re.compile(rf"\.{re.escape(path.name)}\.(?:{STAGING_TAG}\.)?(?:tmp|old)")


def _sweep(path: Path) -> None:
    """Remove the staging folders of `path` a build left when cut off before it could clean
    up: those of this version whose process is gone, and the untagged folders of earlier
    versions (no build of this version writes there). A symlink or a file of such a name is
    left."""
    names = _staging_names(path)
    try:
        entries = list(path.parent.iterdir())
    except OSError:  # not made yet
        return
    for entry in entries:
        made = names.fullmatch(entry.name)
        if made is None or entry.is_symlink() or not entry.is_dir():
            continue
        if made[1] is None or left_by_gone_process(made[1], made[2]):
            shutil.rmtree(entry, ignore_errors=True)


# What `staged_into` stages under inside a target that exists: ".tingxie-export.<tag>.tmp"
# (`_staging`: hidden, one per export; a killed export's is removed by the next one there).
_EXPORT = "tingxie-export"


def holds_files(folder: Path) -> bool:
    """Whether `folder` holds anything but exports' staging folders (`_EXPORT`)."""
    staging = _staging_names(folder / _EXPORT)
    return any(not staging.fullmatch(p.name) for p in folder.iterdir())


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
    exists the files are staged inside it (`_EXPORT`: only the folder itself need take files,
    as an empty USB stick's root does) and moved in one by one; otherwise beside it, renamed
    to it. Each export stages in a folder of its own. A name that is in `target` by then (an
    export into it that ended first) is never overwritten: TingxieError export.name_taken,
    with nothing moved. When the block raises, the temporary folder is removed and `target`
    is as it was. A symlink is followed (the files land where it points)."""
    from engine.errors import TingxieError

    target = Path(os.path.realpath(Path(target).expanduser()))
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR, "exists and is not a folder, so it is not replaced", str(target)
        )
    staged = target / _EXPORT if target.is_dir() else target
    _sweep(staged)
    tmp = _staging(staged)
    tmp.mkdir(parents=True)
    staging = Staging(tmp, target)
    try:
        yield staging
        if not staging.target.exists():
            try:
                os.rename(tmp, staging.target)
                return
            except OSError as e:  # made meanwhile: its names are checked below
                if not _taken(e):
                    raise
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
