"""The time a tuning job has left (engine.tune.events.seconds_left) and the estimate's steps under
a time limit (engine.tune.estimate._fitting): pure arithmetic, fed measured times."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine.tune.estimate import _fitting
from engine.tune.events import Estimate, PhaseSeconds, seconds_left, steps_due


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


def test_the_time_left_counts_evaluations_checkpoints_and_the_finish():
    """Before: step time × steps to go, so 0 s at the last step while its evaluation, its
    checkpoint, the tuned model's write and the calibration refit's pass were still to run."""
    times = PhaseSeconds(step=10.0, evaluation=3.0, save=1.0)
    # after step 1 of 4 (eval_every=2, save_every=3): steps 2-4, evaluations at 2 and 4, the
    # checkpoints of 3 and 4 (step 1's neither), then the finish: a pass and the model's write
    assert seconds_left(1, 3, times, 2, 3) == 3 * 10 + 3 * 3.0 + 3 * 1.0
    # the last step: its evaluation and checkpoint, then the finish
    assert seconds_left(4, 0, times, 2, 3) == 2 * 3.0 + 2 * 1.0
    # a Whisper job evaluates only at the end (None): the finish's pass
    assert seconds_left(4, 0, times, None, 3) == 3.0 + 2 * 1.0
    # nothing measured yet beyond the step: the steps alone
    assert seconds_left(1, 3, PhaseSeconds(step=10.0), 2, 3) == 30.0


def _measured(**kw) -> Estimate:
    numbers = dict(setup_seconds=10.0, seconds_per_step=2.0, eval_seconds=5.0, steps=100,
                   evaluations=0, peak_memory_bytes=0, device_memory_bytes=0, device="cpu",
                   measured_steps=4, save_seconds=1.0, finish_seconds=8.0)  # fmt: skip
    return Estimate(**{**numbers, **kw})


def test_the_estimate_counts_checkpoints_and_the_finish():
    """Before: set-up, steps and evaluations only (51 s estimated for a job of 140 s, 45 of
    them in its finish)."""
    e = replace(_measured(), evaluations=3, saves=2)
    assert e.total_seconds == 10.0 + 100 * 2.0 + 3 * 5.0 + 2 * 1.0 + 8.0


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
