"""Pure helpers behind the waveform and level meter: decimation, levels, a ring buffer.

No Qt here: the worker decimates in its thread and the widget only copies points.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ENVELOPE_BIN", "ENVELOPE_RATE", "RingBuffer", "envelope", "level_percent"]

# Envelope points per second of audio: 200 min/max pairs = one pair per 80 samples at 16 kHz,
# enough to look like a waveform over a 10 s window (4000 points) and cheap to draw.
ENVELOPE_RATE = 400
ENVELOPE_BIN = 16_000 * 2 // ENVELOPE_RATE  # samples per min/max pair at 16 kHz
_FLOOR_DB = -60.0  # the meter's empty point


class RingBuffer:
    """A fixed-capacity float32 buffer keeping the most recent samples, oldest first."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity={capacity}: must be positive")
        self._data = np.zeros(capacity, dtype=np.float32)
        self._size = 0
        self._head = 0  # where the next sample goes

    def __len__(self) -> int:
        return self._size

    def extend(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.float32).ravel()
        cap = len(self._data)
        if len(samples) >= cap:
            self._data[:] = samples[-cap:]
            self._head, self._size = 0, cap
            return
        end = self._head + len(samples)
        if end <= cap:
            self._data[self._head : end] = samples
        else:
            split = cap - self._head
            self._data[self._head :] = samples[:split]
            self._data[: end - cap] = samples[split:]
        self._head = end % cap
        self._size = min(cap, self._size + len(samples))

    def values(self) -> np.ndarray:
        """A copy of the stored samples, oldest first."""
        if self._size < len(self._data):
            return self._data[: self._size].copy()
        return np.roll(self._data, -self._head)

    def clear(self) -> None:
        self._size = self._head = 0


def envelope(samples: np.ndarray, bin_size: int) -> np.ndarray:
    """Min/max pairs per `bin_size` samples, interleaved (a trailing partial bin is dropped).

    >>> envelope(np.array([0, 1, -1, 2], dtype=np.float32), 2).tolist()
    [0.0, 1.0, -1.0, 2.0]
    """
    n = len(samples) // bin_size
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    bins = np.asarray(samples[: n * bin_size], dtype=np.float32).reshape(n, bin_size)
    out = np.empty(2 * n, dtype=np.float32)
    out[0::2] = bins.min(axis=1)
    out[1::2] = bins.max(axis=1)
    return out


def level_percent(samples: np.ndarray) -> int:
    """The block's peak level on a dB scale, as 0..100 for a meter (-60 dBFS and below = 0)."""
    if len(samples) == 0:
        return 0
    peak = float(np.max(np.abs(samples)))
    if peak <= 0:
        return 0
    db = 20 * np.log10(min(peak, 1.0))
    return round(100 * max(0.0, 1 - float(db) / _FLOOR_DB))
