"""Length-grouped batching, pure arithmetic on sample counts (no audio, no torch).

Utterances of similar length share a micro-batch, so little compute goes into padding. Micro
batches are grouped into optimizer steps until a target number of audio seconds is reached
(gradient accumulation by seconds, not by a fixed count). The order is a pure function of
(seed, epoch): a resumed job walks exactly the same batches.

Worked example: lengths [1, 9, 2, 8] samples, max 18 padded samples per micro-batch →
micro-batches {9, 8} (2×9 = 18 padded) and {2, 1} (2×2 = 4 padded); padding = 1 - 20/22.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Cursor", "Step", "padding_fraction", "plan_epoch", "steps_from"]

# Lengths are jittered by up to ±10 % before sorting so batch membership varies between epochs
# while staying length-grouped.
_JITTER = 0.1


def plan_epoch(
    lengths: Sequence[int], max_batch_samples: int, seed: int, epoch: int
) -> list[list[int]]:
    """Micro-batches (lists of indices) for one epoch: sorted by jittered length, packed while
    count × longest ≤ max_batch_samples, then shuffled. An utterance longer than the limit gets a
    batch of its own."""
    if not lengths:
        return []
    rng = np.random.default_rng([seed, epoch])
    lengths_arr = np.asarray(lengths, dtype=np.float64)
    jitter = 1 + rng.uniform(-_JITTER, _JITTER, len(lengths))
    order = np.argsort(-lengths_arr * jitter, kind="stable")
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order.tolist():
        longest_if_added = max(longest, lengths[i])
        if current and longest_if_added * (len(current) + 1) > max_batch_samples:
            batches.append(current)
            current, longest_if_added = [], lengths[i]
        current.append(i)
        longest = longest_if_added
    batches.append(current)
    return [batches[k] for k in rng.permutation(len(batches)).tolist()]


def equal_length_batches(lengths: Sequence[int], max_batch_samples: int) -> list[list[int]]:
    """Batches (lists of indices) of utterances of one length each, as many as fit
    max_batch_samples (one at least), longest first: no padding, for a model whose output
    padding would change (`engine.registry.Family.pads_exactly_with`)."""
    by_length: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        by_length.setdefault(n, []).append(i)
    batches = []
    for n in sorted(by_length, reverse=True):
        size = max(1, max_batch_samples // max(n, 1))
        same = by_length[n]
        batches += [same[k : k + size] for k in range(0, len(same), size)]
    return batches


def padding_fraction(batches: Sequence[Sequence[int]], lengths: Sequence[int]) -> float:
    """Share of the computed samples that are padding."""
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches if b)
    real = sum(lengths[i] for b in batches for i in b)
    return 0.0 if padded == 0 else 1 - real / padded


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the batch stream stands: the next micro-batch is plan_epoch(epoch)[index]."""

    epoch: int = 0
    index: int = 0


@dataclass(frozen=True, slots=True)
class Step:
    """The micro-batches of one optimizer step and the cursor just after them."""

    micro_batches: tuple[tuple[int, ...], ...]
    after: Cursor

    @property
    def examples(self) -> int:
        return sum(len(b) for b in self.micro_batches)


def steps_from(
    cursor: Cursor,
    lengths: Sequence[int],
    *,
    max_batch_samples: int,
    step_samples: int,
    seed: int,
    multiple_of: int = 1,
) -> Iterator[Step]:
    """Endless optimizer steps from `cursor`: micro-batches gathered until their audio reaches
    `step_samples` and their count is a multiple of `multiple_of` (one share per process)."""
    epoch, index = cursor.epoch, cursor.index
    plan = plan_epoch(lengths, max_batch_samples, seed, epoch)
    if not plan:
        raise ValueError("no training examples to batch")
    while True:
        group: list[tuple[int, ...]] = []
        samples = 0
        while samples < step_samples or len(group) % multiple_of:
            if index >= len(plan):
                epoch, index = epoch + 1, 0
                plan = plan_epoch(lengths, max_batch_samples, seed, epoch)
            batch = tuple(plan[index])
            index += 1
            group.append(batch)
            samples += sum(lengths[i] for i in batch)
        yield Step(tuple(group), Cursor(epoch, index))
