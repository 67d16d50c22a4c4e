"""The tuned model's held-out CER before → after is measured on rows that did not choose its
checkpoint (engine.tune.data.heldout_shares): a 2-layer random model trains for real, and its
held-out decoding is scripted (`scripted`) so that which step each share prefers is known."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
import test_train

from engine.testmodels import build_model
from engine.tune import loop
from engine.tune.events import (
    CheckpointSaved,
    Evaluated,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    StepProgress,
)
from engine.tune.export import CARD_FILE, ModelCard, read_card, record_problem
from engine.tune.hub import plan_upload
from engine.tune.loop import MIN_SPLIT_ROWS, heldout_shares, run_job
from engine.tune.testdata import tone_corpus

CHARS = "天地人和"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    """(base model folder, manifest of 40 rows: 10 held out, 8 with heldout_fraction=0.17)."""
    root = tmp_path_factory.mktemp("split")
    model = build_model(root / "base", "tiny", chars=CHARS, seed=0)
    return model, tone_corpus(root / "data", 40, char_seconds=0.1, seed=0)


# test_train's job, each step evaluated, 10 rows held out of the 40
_config = partial(test_train._config, steps=4, heldout_fraction=0.25, eval_every=1)


Script = dict[int, Callable[[int], bool]]


@pytest.fixture
def scripted(monkeypatch) -> Script:
    """The held-out decoding replaced by a script: at step s, held-out row i is written right
    when script[s](i) says so, else not at all (CER 1 on it)."""
    script: Script = {}

    def hypotheses(self) -> list[str]:
        right = script.get(self.state.step, lambda i: False)
        return [ref if right(i) else "" for i, ref in enumerate(self.data.heldout_texts)]

    monkeypatch.setattr(loop.Job, "_hypotheses", hypotheses, raising=False)
    return script


def _run(config, **kw) -> list:
    events = list(run_job(config, **kw))
    failed = [e for e in events if isinstance(e, JobFailed)]
    assert not failed, failed[0].message
    return events


def _evals(events) -> dict[int, Evaluated]:
    return {e.step: e for e in events if isinstance(e, Evaluated)}


# Even rows report, odd rows choose. Step 1 is the best on all rows (every report row right, one
# choosing row right too) and on the report share; step 2 the best on the choosing share alone.
_PICKS_STEP_2 = {1: lambda i: i % 2 == 0 or i == 1, 2: lambda i: i % 2 == 1}


def test_the_shares_are_by_position_and_only_from_enough_rows(corpus, tmp_path, scripted):
    assert heldout_shares(5, split=True) == (range(0, 5, 2), range(1, 5, 2))
    assert heldout_shares(5, split=False) == (range(5), range(0))
    assert MIN_SPLIT_ROWS >= 4
    # a job with exactly MIN_SPLIT_ROWS held out splits them (enough is from that many on)
    events = _run(_config(corpus, tmp_path / "j", steps=1, heldout_fraction=0.17))
    assert next(e for e in events if isinstance(e, JobStarted)).heldout_examples == MIN_SPLIT_ROWS
    assert events[-1].result.selection_rows == MIN_SPLIT_ROWS // 2


def test_the_checkpoint_is_chosen_on_other_rows_than_the_cer_it_reports(corpus, tmp_path, scripted):
    scripted.update(_PICKS_STEP_2)
    events = _run(_config(corpus, tmp_path / "j"))
    evals = _evals(events)
    assert set(evals) == {0, 1, 2, 3, 4}
    # the CER of every row would have picked step 1, and shown its minimum
    assert all(e.selection_cer is not None for e in evals.values())
    assert evals[2].selection_cer == 0.0 < evals[1].selection_cer
    assert evals[1].cer == 0.0 < evals[2].cer
    result = events[-1].result
    assert result.best_step == 2
    assert result.cer_before == evals[0].cer
    assert result.cer_after == evals[2].cer  # the report share at the chosen step
    assert result.cer_after != min(e.cer for s, e in evals.items() if s > 0)
    assert result.selection_rows == 5
    best = [e.step for e in events if isinstance(e, CheckpointSaved) and e.best]
    assert best[-1] == 2
    card = read_card(tmp_path / "j" / "model")
    assert (card.cer_rows, card.selection_rows, card.heldout_examples) == (5, 5, 10)
    assert card.cer_after == evals[2].cer
    readme = (tmp_path / "j" / "model" / "README.md").read_text(encoding="utf-8")
    assert "on 5 rows not used to choose the checkpoint (5 other held-out rows chose it)" in readme


def test_the_samples_shown_are_of_the_report_share(corpus, tmp_path, scripted):
    scripted.update(_PICKS_STEP_2)  # at step 1 the even rows are right, at step 2 the odd ones
    evals = _evals(_run(_config(corpus, tmp_path / "j", steps=2)))
    assert [hyp == ref for ref, hyp in evals[1].samples] == [True] * 3
    assert [hyp for _, hyp in evals[2].samples] == [""] * 3


def test_too_few_heldout_rows_choose_nothing_and_keep_the_last_step(corpus, tmp_path, scripted):
    # 40 rows, 7 % held out: 2 rows, too few to split; step 2 is their best, step 4 is kept
    scripted.update({2: lambda i: True, 3: lambda i: i == 0})
    events = _run(_config(corpus, tmp_path / "j", heldout_fraction=0.07))
    evals = _evals(events)
    assert all(e.selection_cer is None for e in evals.values())
    assert evals[2].cer == 0.0 < evals[4].cer
    result = events[-1].result
    assert (result.best_step, result.cer_after, result.selection_rows) == (4, evals[4].cer, 0)
    assert not [e for e in events if isinstance(e, CheckpointSaved) and e.best]
    card = read_card(tmp_path / "j" / "model")
    assert (card.cer_rows, card.selection_rows) == (2, 0)
    readme = (tmp_path / "j" / "model" / "README.md").read_text(encoding="utf-8")
    assert "on 2 rows not used to choose the checkpoint (none chose it" in readme


def _cancelled_after(config, step: int) -> list:
    cancel, events = threading.Event(), []
    for event in run_job(config, cancel=cancel):
        events.append(event)
        if isinstance(event, StepProgress) and event.step == step:
            cancel.set()
    assert isinstance(events[-1], JobCancelled) and events[-1].step == step
    return events


def test_a_resumed_split_job_chooses_and_reports_as_an_uninterrupted_one(
    corpus, tmp_path, scripted
):
    scripted.update(_PICKS_STEP_2)
    straight = _run(_config(corpus, tmp_path / "a"))
    _cancelled_after(_config(corpus, tmp_path / "b"), step=3)
    again = _run(_config(corpus, tmp_path / "b"), resume=True)
    assert next(e for e in again if isinstance(e, JobStarted)).resumed_from_step == 3
    a, b = straight[-1].result, again[-1].result
    assert replace(b, model_dir=a.model_dir) == a  # best step, CER and weights alike


def test_an_old_checkpoint_resumes_choosing_nothing(corpus, tmp_path, scripted):
    """A checkpoint state from before the split (its best step chosen on every held-out row,
    no split_heldout, history without selection_cer) still resumes; its job then chooses no
    step (the last is kept) and reports the last step's CER on every held-out row."""
    scripted.update(_PICKS_STEP_2)
    out = tmp_path / "old"
    _cancelled_after(_config(corpus, out), step=3)
    state_file = out / "checkpoints" / "step-0000003" / "state.json"
    state = json.loads(state_file.read_text(encoding="utf-8"))
    del state["split_heldout"]
    state["history"] = [{"step": h["step"], "cer": h["cer"]} for h in state["history"]]
    state["best_cer"], state["best_step"] = 0.4, 1  # as chosen on every row
    state_file.write_text(json.dumps(state), encoding="utf-8")
    events = _run(_config(corpus, out), resume=True)
    assert next(e for e in events if isinstance(e, JobStarted)).resumed_from_step == 3
    evals = _evals(events)
    assert set(evals) == {4} and evals[4].selection_cer is None
    result = events[-1].result
    assert (result.best_step, result.cer_after, result.selection_rows) == (4, evals[4].cer, 0)
    assert isinstance(events[-1], JobFinished)
    assert read_card(out / "model").cer_rows == 10


# ---- the card ------------------------------------------------------------------------------

_CARD = dict(base_model="org/base", method="lora", steps=200, train_examples=150,
             train_seconds=600.0, heldout_examples=16, cer_before=0.42, cer_after=0.21,
             data="corrections/clinic")  # fmt: skip


def test_an_old_card_still_reads_and_says_what_it_said(tmp_path):
    """A card written before cer_rows and selection_rows: read, and worded as it was (its
    figures were measured on the rows that chose the step: nothing is claimed about them)."""
    (tmp_path / CARD_FILE).write_text(json.dumps(_CARD), encoding="utf-8")
    assert record_problem(_CARD, ModelCard) is None
    card = read_card(tmp_path)
    assert card == ModelCard(**_CARD) and (card.cer_rows, card.selection_rows) == (None, 0)
    assert "- held-out CER before: 42.00 %, after: 21.00 %\n" in card.render()


def test_a_card_and_its_hub_card_say_which_rows_measured_the_cer(tmp_path):
    model = build_model(tmp_path / "model", "tiny", seed=0)
    card = ModelCard(**_CARD, cer_rows=8, selection_rows=8)
    card.write(model)
    assert read_card(model) == card
    line = (
        "- held-out CER before: 42.00 %, after: 21.00 %, on 8 rows not used to choose the "
        "checkpoint (8 other held-out rows chose it)"
    )
    assert line in card.render().splitlines()
    assert line in plan_upload(model, "someone/clinic-zh").card.splitlines()
    unsplit = replace(card, heldout_examples=3, cer_rows=3, selection_rows=0)
    assert unsplit.cer_line().endswith(
        "on 3 rows not used to choose the checkpoint (none chose it: the last step's model is "
        "saved)"
    )
    assert record_problem({**_CARD, "cer_rows": "8"}, ModelCard) == (
        "cer_rows is '8', where int | None belongs"
    )
