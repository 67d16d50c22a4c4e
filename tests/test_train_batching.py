from __future__ import annotations

import itertools

import pytest

from engine.tune.batching import (
    Cursor,
    equal_length_batches,
    padding_fraction,
    plan_epoch,
    steps_from,
)

LENGTHS = [5, 40, 12, 33, 8, 21, 30, 7, 19, 25, 14, 3]


def test_plan_covers_every_example_once_within_the_limit():
    plan = plan_epoch(LENGTHS, 60, seed=1, epoch=0)
    assert sorted(i for b in plan for i in b) == list(range(len(LENGTHS)))
    for b in plan:
        assert len(b) == 1 or len(b) * max(LENGTHS[i] for i in b) <= 60


def test_plan_is_a_function_of_seed_and_epoch():
    assert plan_epoch(LENGTHS, 60, 1, 0) == plan_epoch(LENGTHS, 60, 1, 0)
    assert plan_epoch(LENGTHS, 60, 1, 0) != plan_epoch(LENGTHS, 60, 1, 1)


def test_length_grouping_pads_less_than_random_batches():
    lengths = [int(x) for x in range(10, 400, 7)]
    grouped = plan_epoch(lengths, 1200, seed=0, epoch=0)
    chunks = [list(range(k, min(k + 4, len(lengths)))) for k in range(0, len(lengths), 4)]
    shuffled = [[(i * 17) % len(lengths) for i in c] for c in chunks]
    assert padding_fraction(grouped, lengths) < 0.1 < padding_fraction(shuffled, lengths)


def test_padding_fraction_worked_example():
    assert padding_fraction([[1, 3], [0, 2]], [1, 9, 2, 8]) == pytest.approx(1 - 20 / 22)


def test_an_overlong_example_gets_its_own_batch():
    plan = plan_epoch([100, 5, 5], 20, seed=0, epoch=0)
    assert [0] in plan


def test_steps_reach_the_target_seconds_and_resume_identically():
    kw = dict(max_batch_samples=60, step_samples=100, seed=3)
    steps = list(itertools.islice(steps_from(Cursor(), LENGTHS, **kw), 8))
    for s in steps:
        assert sum(LENGTHS[i] for b in s.micro_batches for i in b) >= 100
    resumed = list(itertools.islice(steps_from(steps[2].after, LENGTHS, **kw), 5))
    assert resumed == steps[3:]
    assert steps[-1].after.epoch >= 1  # crossed into later epochs


def test_steps_split_evenly_across_processes():
    kw = dict(max_batch_samples=60, step_samples=50, seed=0, multiple_of=2)
    for s in itertools.islice(steps_from(Cursor(), LENGTHS, **kw), 6):
        assert len(s.micro_batches) % 2 == 0


def test_equal_length_batches_never_pad_and_fit_the_limit():
    lengths = [5, 3, 5, 5, 3, 9, 5]
    batches = equal_length_batches(lengths, 10)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len({lengths[i] for i in b}) == 1 for b in batches)  # no padding
    assert [len(b) for b in batches] == [1, 2, 2, 2]  # 9 alone (over the limit), 5s in twos
    assert equal_length_batches([], 10) == []
