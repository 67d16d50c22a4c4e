"""Resuming from the newest checkpoint that can be read, for every kind of tuning job (the CTC
loop, `engine.tune.loop`, and Whisper's, `engine.tune.whisper_lora`).

A checkpoint's files can be cut short or emptied (a power cut before they reached the disk, a
full disk, a copy stopped midway) or not be what Tingxie writes there. A job reads each through
`read_checkpoint_file`, which says so as `UnreadableCheckpoint`; `restore_newest` then falls
back to the newest earlier checkpoint that reads, and `set_aside` moves the unreadable ones out
of the way and says so as `CheckpointSetAside` events, which the job yields after `JobStarted`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from .events import CheckpointSetAside
from .jobs import JobError

__all__ = [
    "UnreadableCheckpoint",
    "no_readable_checkpoint",
    "read_checkpoint_file",
    "restore_newest",
    "set_aside",
]

log = logging.getLogger("tingxie.train")

_T = TypeVar("_T")


class UnreadableCheckpoint(JobError):
    """A checkpoint file that cannot be read: cut short or emptied (a power cut before it
    reached the disk, a copy stopped midway), gone, or not what Tingxie writes there."""

    def __init__(self, path: Path, error: BaseException) -> None:
        lines = str(error).strip().splitlines()  # EOFError() has no text: its name then
        detail = lines[0] if lines else type(error).__name__
        super().__init__("tune.checkpoint_damaged", path=path, detail=detail)
        self.folder = path.parent

    @property
    def gist(self) -> str:
        """The file and what is wrong with it, as a message naming several says it."""
        return f"{self.params['path']} ({self.params['detail']})"

    @property
    def problem(self) -> str:
        """The file's name in its checkpoint and what is wrong with it (`optimizer.pt: …`)."""
        return f"{Path(self.params['path']).name}: {self.params['detail']}"


def read_checkpoint_file(path: Path, reader: Callable[[Path], _T]) -> _T:
    """`reader(path)`, or `UnreadableCheckpoint` naming `path` when the file is not whole."""
    import pickle

    from safetensors import SafetensorError

    # EOFError: an emptied pickle; RuntimeError: a zip cut short; ValueError: JSON cut short;
    # KeyError, TypeError: JSON or a pickle that is not what Tingxie writes
    unreadable = (OSError, EOFError, SafetensorError, pickle.UnpicklingError, RuntimeError)
    try:
        return reader(path)
    except (*unreadable, KeyError, TypeError, ValueError) as e:
        raise UnreadableCheckpoint(path, e) from e


def restore_newest(
    folders: Sequence[Path], restore: Callable[[Path], _T]
) -> tuple[Path | None, _T | None, list[UnreadableCheckpoint]]:
    """`restore` the newest of `folders` (oldest first, as `checkpoint_dirs` lists them) whose
    files can be read: (that folder, what `restore` returned, the newer ones that could not be
    read). None of them readable: (None, None, all of them). Any other error of `restore` (a
    checkpoint of other settings) is raised: an earlier one would not fit either."""
    unreadable: list[UnreadableCheckpoint] = []
    for folder in reversed(folders):
        try:
            return folder, restore(folder), unreadable
        except UnreadableCheckpoint as e:
            unreadable.append(e)
    return None, None, unreadable


def no_readable_checkpoint(out: Path, unreadable: Sequence[UnreadableCheckpoint]) -> JobError:
    """tune.checkpoints_unreadable: the job folder `out` and each file that failed."""
    damaged = "; ".join(e.gist for e in unreadable)
    return JobError("tune.checkpoints_unreadable", path=out, damaged=damaged)


def set_aside(
    unreadable: Sequence[UnreadableCheckpoint], resumed: Path, step: int
) -> list[CheckpointSetAside]:
    """Move each unreadable checkpoint out of `checkpoint_dirs`' sight, as
    damaged-<name>-<time> beside it: resumed from again, it would fail again, and the rotation
    of old checkpoints could keep it in place of a whole one. Renamed, not removed: what it
    holds is the user's to look at. Returns what the job tells the user, having resumed from
    `resumed` at `step` instead."""
    said = []
    for e in unreadable:
        kept = e.folder.with_name(f"damaged-{e.folder.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(e.folder, kept)
        log.info(
            "%s cannot be read: %s; resumed from %s (step %d) instead; the unreadable "
            "checkpoint is kept as %s",
            e.folder,
            e.gist,
            resumed,
            step,
            kept,
        )
        said.append(CheckpointSetAside(e.folder, kept, e.problem, step))
    return said
