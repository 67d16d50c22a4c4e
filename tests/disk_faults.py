"""A disk that fills up partway through a write, for the tests of all-or-none writes."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable


def fsync_full_at(n: int) -> Callable[[int], None]:
    """An `os.fsync` that syncs as the real one does, except that its `n`-th call (from 1)
    fails as a full disk does (ENOSPC): the `n`-th file of a write cannot be kept."""
    real, calls = os.fsync, [0]

    def fsync(fd: int) -> None:
        calls[0] += 1
        if calls[0] == n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    return fsync
