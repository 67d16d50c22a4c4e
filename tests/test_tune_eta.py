"""The time a tuning job has left (engine.tune.events.seconds_left) and the estimate's steps under
a time limit (engine.tune.estimate._fitting): pure arithmetic, fed measured times."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine.tune.estimate import _fitting
from engine.tune.events import (
    Cadence,
    Estimate,
    PhaseSeconds,
    seconds_left,
    steps_due,
    steps_that_fit,
)


@pytest.mark.parametrize(
    ("first", "last", "every", "due"),
    [
        (3, 8, 3, 3),  # 3, 6 and the last, 8
        (1, 6, 3, 2),  # 3 and 6, the last a multiple: once
        (4, 4, 0, 1),  # every=0: only the last
        (5, 4, 2, 0),  # nothing left
        (1, 9, None, 0),  # None: never
    ],
)
def test_steps_due_counts_the_multiples_and_the_last_step_once(first, last, every, due):
    assert steps_due(first, last, every) == due


@pytest.mark.parametrize(
    ("first", "last", "every", "or_every", "due"),
    [
        (1, 8, 3, 4, 4),  # 3, 4, 6 and the last, 8
        (1, 12, 4, 6, 4),  # 4, 6, 8 and 12 (a multiple of both, and the last): once each
        (2, 4, 0, 1, 3),  # every step (2, 3, 4), the last once
        (1, 5, None, 2, 3),  # 2, 4 and the last
    ],
)
def test_steps_due_counts_either_period_once(first, last, every, or_every, due):
    brute = {s for s in range(first, last + 1) for e in (every, or_every) if e and s % e == 0}
    assert len(brute | {last}) == steps_due(first, last, every, or_every) == due


def test_the_time_left_counts_evaluations_checkpoints_and_the_finish():
    """Before: step time × steps to go, so 0 s at the last step while its evaluation, its
    checkpoint, the tuned model's write and the calibration refit were still to run."""
    times = PhaseSeconds(step=10.0, evaluation=3.0, save=1.0, refit=3.0, write=1.0)
    # after step 1 of 4 (eval_every=2, save_every=3): steps 2-4, evaluations at 2 and 4, the
    # checkpoints of 3 and 4 (step 1's neither), then the finish: the refit and the model's write
    assert seconds_left(1, 3, times, Cadence(3, 2)) == 3 * 10 + 3 * 3.0 + 3 * 1.0
    # the last step: its evaluation and checkpoint, then the finish
    assert seconds_left(4, 0, times, Cadence(3, 2)) == 2 * 3.0 + 2 * 1.0
    # a Whisper job evaluates only at the end (None): the finish's refit
    assert seconds_left(4, 0, times, Cadence(3)) == 3.0 + 2 * 1.0
    # nothing measured yet beyond the step: the steps alone
    assert seconds_left(1, 3, PhaseSeconds(step=10.0), Cadence(3, 2)) == 30.0


def test_the_calibration_refit_is_timed_as_its_own_part():
    """Before: the refit at the finish was counted as one more evaluation (3 s here), while,
    loading the saved model again, it takes 4-15x one."""
    times = PhaseSeconds(step=10.0, evaluation=3.0, save=1.0, refit=30.0, write=1.0)
    # the last step: its evaluation (3) and checkpoint (1), the model's write (1), the refit (30)
    assert seconds_left(4, 0, times, Cadence(3, 2)) == 3.0 + 2 * 1.0 + 30.0
    # without held-out rows there is no evaluation and no refit
    assert seconds_left(4, 0, PhaseSeconds(10.0, save=1.0, write=1.0), Cadence(3, 2)) == 2 * 1.0


def test_a_new_best_steps_checkpoint_is_counted():
    """Before: checkpoints were counted every save_every steps only, not those a new best
    step adds at an evaluation between them. Which evaluation finds one is not known ahead:
    each is counted as saving."""
    times = PhaseSeconds(step=10.0, save=1.0, write=1.0)
    # after step 1 of 6, an evaluation every 2 steps, a checkpoint every 3: saves at 2, 3, 4
    # (best steps or save_every) and 6 (both, and the last), then the model's write
    assert seconds_left(1, 5, times, Cadence(3, 2, best_saves=True)) == 50 + 5 * 1.0
    assert seconds_left(1, 5, times, Cadence(3, 2)) == 50 + 3 * 1.0  # not split: no best step


def test_a_time_limit_leaves_room_for_the_finish():
    """Before: steps ran while one more fitted before the limit, and the last step's
    evaluation and checkpoint, the model's write and the refit ran past it."""
    times = PhaseSeconds(step=10.0, evaluation=3.0, save=1.0, refit=8.0, write=1.0)
    # 60 s left after step 2 of 100: each step 10 s, then the last's evaluation and checkpoint,
    # the write and the refit (13 s) and an evaluation every 5 steps (steps 5, 10: 3 s each)
    fit = steps_that_fit(2, 98, times, Cadence(0, 5), 60.0)
    assert fit == 4 and seconds_left(2, fit, times, Cadence(0, 5)) <= 60.0
    assert seconds_left(2, fit + 1, times, Cadence(0, 5)) > 60.0
    assert steps_that_fit(2, 98, times, Cadence(0, 5), 13.0) == 0  # the finish alone fits
    assert steps_that_fit(2, 3, times, Cadence(0, 5), 1e9) == 3  # no more than asked


def _measured(**kw) -> Estimate:
    numbers = dict(setup_seconds=10.0, seconds_per_step=2.0, eval_seconds=5.0, steps=100,
                   evaluations=0, peak_memory_bytes=0, device_memory_bytes=0, device="cpu",
                   measured_steps=4, save_seconds=1.0, finish_seconds=8.0,
                   refit_seconds=6.0)  # fmt: skip
    return Estimate(**{**numbers, **kw})


def test_the_estimate_counts_checkpoints_and_the_finish():
    """Before: set-up, steps and evaluations only (51 s estimated for a job of 140 s, 45 of
    them in its finish). The refit is a part of the finish, named apart."""
    e = replace(_measured(), evaluations=3, saves=2)
    assert e.total_seconds == 10.0 + 100 * 2.0 + 3 * 5.0 + 2 * 1.0 + 8.0
    assert e.refit_seconds <= e.finish_seconds


def test_the_steps_that_fit_a_time_limit_leave_room_for_all_that_is_counted():
    """Before, a Whisper estimate took one evaluation from the limit but counted two in its
    total, which then passed the limit; what is taken from the limit is now what is counted."""

    def counts(planned: int) -> tuple[int, int]:
        return 2, steps_due(1, planned, 10)

    fitted = _fitting(_measured(), 1.0, counts)  # 60 s: 10 set-up, 10 evaluations, 8 finish
    assert fitted.total_seconds <= 60.0
    assert (
        replace(fitted, steps=fitted.steps + 1, saves=counts(fitted.steps + 1)[1]).total_seconds
        > 60
    )
    # 10 + 15 × 2 + 2 × 5 + 2 × 1 (steps 10 and 15) + 8 = 60
    assert (fitted.steps, fitted.evaluations, fitted.saves) == (15, 2, 2)
    assert _fitting(_measured(), None, counts).steps == 100
    assert _fitting(_measured(), 0.1, counts).steps == 0  # the set-up alone takes longer


def test_the_models_write_is_its_own_part_not_one_checkpoint():
    """Before: the finish's write was reckoned as one checkpoint (1 s here), while a LoRA job's
    merged model is many times its checkpoint's bytes (a 20 s write ended a 60 s job at 80 s)."""
    times = PhaseSeconds(step=10.0, save=1.0, write=20.0)
    # the last step: its checkpoint (1 s) and the model's write (20 s)
    assert seconds_left(4, 0, times, Cadence(0)) == 1.0 + 20.0
    # 60 s left after step 2: 3 steps (30 s) leave room for a checkpoint and the write
    assert steps_that_fit(2, 98, times, Cadence(0), 60.0) == 3
