"""Decoded training audio and encoder features on disk, read back one utterance at a time, so a
job's memory holds a batch, not the dataset (20 h of audio is 2.3 GB on disk, not in RAM).

A store is a folder: `rows.bin` (the rows one after another) and `index.npz` (where each row
starts, its scale, and the key of what the store was built from). It is written once through
`engine.atomic` (a half-written store never takes a good one's place) and reused only while its
key matches, so a resumed job reads the same rows without decoding again and an edited audio
file or manifest rebuilds it.

Rows are read with plain file reads, not a memory map: the pages then stay in the kernel's page
cache (shared, dropped under pressure) instead of counting, once touched, in the job's resident
memory for the rest of the run.

Audio is kept as int16 with a scale per utterance: exact for 16-bit sources (scale 1/32768), and
for others scaled to the utterance's peak (rounding noise 96 dB below it), at half the disk of
float32. Features are float32 (frames × channels), exact.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import logging
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.atomic import atomic_folder
from engine.errors import TingxieError

from .data import Example

__all__ = [
    "CheckpointError",
    "DiskSpaceError",
    "RowStore",
    "checkpoint_unwritten",
    "dequantize",
    "examples_key",
    "fixed_mmap_threshold",
    "free_bytes",
    "open_rows",
    "quantize",
    "write_rows",
]

log = logging.getLogger("tingxie.train")

_ROWS, _INDEX = "rows.bin", "index.npz"
# bumped when the layout or the decoding changes, so older stores are rebuilt
_VERSION = "1"
# 16-bit PCM as decoders return it: integer / 32768
_PCM16 = np.float32(1 / 32768)
_INT16_MAX = 32767
# glibc's mallopt parameter (malloc.h) and the threshold's default before it adapts
_M_MMAP_THRESHOLD, _MMAP_THRESHOLD = -3, 128 * 1024


class DiskSpaceError(OSError):
    """Not enough free space for the job's caches, checkpoints and outputs."""


class CheckpointError(TingxieError, OSError):
    """A job's checkpoint or tuned model could not be written mid-run: its disk is full, or its
    folder became read-only. Says what was kept and how to go on."""


def checkpoint_unwritten(
    where: Path, what: str, error: OSError, kept: Path | None
) -> CheckpointError:
    """What a failed write of a job's `what` into output_dir `where` cost, with `kept` its last
    complete checkpoint, and how to go on: free space where the disk is full, else (read-only,
    permission) make the folder writable, since freeing space would not help."""
    full = error.errno in (errno.ENOSPC, errno.EDQUOT)
    detail = error.strerror or str(error)
    if kept is None:
        code = "tune.checkpoint_full_none" if full else "tune.checkpoint_unwritable_none"
        return CheckpointError(code, path=where, what=what, detail=detail)
    code = "tune.checkpoint_full" if full else "tune.checkpoint_unwritable"
    return CheckpointError(code, path=where, what=what, detail=detail, kept=kept.name)


def free_bytes(path: Path) -> tuple[Path, int]:
    """The nearest existing folder at or above `path` and its free bytes."""
    where = Path(path)
    while not where.exists():
        where = where.parent
    return where, shutil.disk_usage(where).free


def fixed_mmap_threshold() -> None:
    """Keep glibc from holding on to freed utterance buffers. Each time a large block is freed,
    glibc raises the size above which it maps memory (up to 32 MB); later buffers of an
    utterance's size then come from a heap that fragments and is not given back, so a job's
    peak RSS crept up with the number of utterances read (931 MB on 1 h, 1033 MB on 5 h in
    `bench/bench_train.py --memory`; 648 / 656 MB on 0.25 / 2 h with the threshold fixed, as
    MALLOC_MMAP_THRESHOLD_ fixes it). Elsewhere (macOS, Windows, musl) nothing to do."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    except (OSError, AttributeError):
        log.debug("no glibc mallopt here: the allocator keeps its own threshold")


def quantize(audio: np.ndarray) -> tuple[np.ndarray, float]:
    """int16 samples and the scale that gives them back (`dequantize`): 1/32768 when the audio
    is 16-bit values already (exact), else the peak / 32767.

    >>> quantize(np.array([0.5, -1.0], dtype=np.float32))
    (array([ 16384, -32768], dtype=int16), 3.0517578125e-05)
    """
    audio = np.asarray(audio, dtype=np.float32)
    pcm = audio / _PCM16
    if np.array_equal(pcm, np.round(pcm)) and (pcm.size == 0 or pcm.max() <= _INT16_MAX):
        return pcm.astype(np.int16), float(_PCM16)
    peak = float(np.abs(audio).max())
    scale = np.float32(peak / _INT16_MAX)
    return np.round(audio / scale).astype(np.int16), float(scale)


def dequantize(samples: np.ndarray, scale: float) -> np.ndarray:
    """float32 audio from `quantize`'s int16 samples and scale."""
    return samples.astype(np.float32) * np.float32(scale)


def examples_key(examples: Sequence[Example]) -> str:
    """What a store of these examples' audio depends on: each file's path, size and change
    time, and the span taken from it."""
    digest = hashlib.sha256(_VERSION.encode())
    for e in examples:
        stat = e.audio.stat()
        row = f"{e.audio.resolve()}\t{e.start}\t{e.end}\t{stat.st_size}\t{stat.st_mtime_ns}\n"
        digest.update(row.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class RowStore:
    """Rows on disk: row i spans items offsets[i]:offsets[i + 1] of rows.bin, each item of
    shape `tail`; int16 rows come back as float32 times their scale."""

    folder: Path
    dtype: np.dtype
    tail: tuple[int, ...]
    offsets: np.ndarray
    scales: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> list[int]:
        """Items (samples, frames) per row."""
        return np.diff(self.offsets).tolist()

    def __getitem__(self, i: int) -> np.ndarray:
        if not 0 <= i < len(self):
            raise IndexError(f"row {i} of {len(self)}")
        item = int(np.prod(self.tail, dtype=np.int64)) * self.dtype.itemsize
        start, stop = int(self.offsets[i]), int(self.offsets[i + 1])
        rows = np.fromfile(
            self.folder / _ROWS, self.dtype, (stop - start) * item // self.dtype.itemsize,
            offset=start * item,
        ).reshape(stop - start, *self.tail)  # fmt: skip
        if self.dtype == np.int16:
            return dequantize(rows, self.scales[i])
        return rows


def open_rows(folder: Path, key: str) -> RowStore | None:
    """The store in `folder` when it is whole and was built from `key`; else None."""
    try:
        with np.load(folder / _INDEX, allow_pickle=False) as index:
            if str(index["key"]) != key:
                return None
            store = RowStore(
                folder,
                np.dtype(str(index["dtype"])),
                tuple(int(n) for n in index["tail"]),
                index["offsets"].astype(np.int64),
                index["scales"].astype(np.float32),
            )
        item = int(np.prod(store.tail, dtype=np.int64)) * store.dtype.itemsize
        if (folder / _ROWS).stat().st_size != int(store.offsets[-1]) * item:
            return None
    except (OSError, KeyError, ValueError, TypeError):
        return None
    return store


def write_rows(
    folder: Path, key: str, rows: Iterable[np.ndarray], *, quantized: bool, what: str
) -> RowStore:
    """Write `rows` (float32 arrays of equal trailing shape) as the store in `folder`, int16
    with a scale each when `quantized`. A failed write (a full disk) leaves no partial store
    and raises DiskSpaceError naming the folder and what to do."""
    dtype = np.dtype(np.int16 if quantized else np.float32)

    def write(tmp: Path) -> None:
        offsets, scales, tail = [0], [], None
        with open(tmp / _ROWS, "wb") as f:
            for row in rows:
                if quantized:
                    row, scale = quantize(row)
                else:
                    row, scale = np.ascontiguousarray(row, dtype=np.float32), 1.0
                if tail is None:
                    tail = row.shape[1:]
                elif row.shape[1:] != tail:
                    raise ValueError(f"{what}: row of shape {row.shape}, others end in {tail}")
                f.write(row.tobytes())
                offsets.append(offsets[-1] + len(row))
                scales.append(scale)
            f.flush()
            os.fsync(f.fileno())
        np.savez(
            tmp / _INDEX, key=np.array(key), dtype=np.array(dtype.str),
            tail=np.array(tail or (), dtype=np.int64), offsets=np.array(offsets, dtype=np.int64),
            scales=np.array(scales, dtype=np.float32),
        )  # fmt: skip

    try:
        atomic_folder(folder, write)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DiskSpaceError(
            f"{folder}: {what} could not be written ({e.strerror}); free some space or choose "
            "another output_dir, then start the job again"
        ) from e
    store = open_rows(folder, key)
    if store is None:
        raise OSError(f"{folder}: {what} was written but does not read back; start again")
    log.info("%s: %d rows in %s", what, len(store), folder)
    return store
