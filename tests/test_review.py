"""Pure review logic: doubtful spans, ordering, time estimates, edits and verified pairs."""

from __future__ import annotations

import itertools

import pytest

from engine.library.review import (
    EditOp,
    ReviewOptions,
    apply_edit,
    apply_edits,
    audio_window,
    decision_pace,
    estimate_review_seconds,
    find_spans,
    verified_pair,
    verified_pairs,
)
from engine.results import Alternative, Char, Segment


def seg(text: str, confs: list[float], start: float = 0.0, sid: int = 0) -> Segment:
    """Characters 0.2 s apart, each 0.1 s long, from `start`."""
    chars = tuple(
        Char(t, start + 0.2 * i, start + 0.2 * i + 0.1, c, (Alternative("错", 0.1),))
        for i, (t, c) in enumerate(zip(text, confs, strict=True))
    )
    return Segment(sid, start, start + 0.2 * len(text), chars)


SEGS = [
    seg("今天天气很好", [0.9, 0.2, 0.9, 0.3, 0.9, 0.9]),
    seg("我们去公园", [0.95, 0.1, 0.95, 0.95, 0.45], start=5.0, sid=1),
]


def test_runs_merge_across_one_confident_char_and_order_by_risk():
    spans = find_spans(SEGS, ReviewOptions(threshold=0.5, merge_gap_chars=1, order="risk"))
    assert [(s.segment, s.first, s.stop, s.text) for s in spans] == [
        (1, 1, 2, "们"),
        (0, 1, 4, "天天气"),
        (1, 4, 5, "园"),
    ]
    assert spans[1].confidence == pytest.approx(0.2)
    assert spans[1].start == pytest.approx(0.2) and spans[1].end == pytest.approx(0.7)


def test_no_merge_and_time_order():
    spans = find_spans(SEGS, ReviewOptions(threshold=0.5, merge_gap_chars=0, order="time"))
    assert [s.text for s in spans] == ["天", "气", "们", "园"]
    assert [s.start for s in spans] == sorted(s.start for s in spans)


def test_threshold_changes_the_spans():
    low = find_spans(SEGS, ReviewOptions(threshold=0.15))
    assert [s.text for s in low] == ["们"]
    assert find_spans(SEGS, ReviewOptions(threshold=0.0)) == []


@pytest.mark.parametrize(
    "kwargs, field",
    [({"threshold": 1.5}, "threshold"), ({"merge_gap_chars": -1}, "merge_gap_chars"),
     ({"order": "random"}, "order")],
)  # fmt: skip
def test_options_validated_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ReviewOptions(**kwargs)


def test_audio_window_margin_and_clamp():
    assert audio_window(1.0, 2.0, 0.5) == (0.5, 2.5)
    assert audio_window(0.1, 2.0, 0.5, duration=2.2) == (0.0, 2.2)
    with pytest.raises(ValueError, match="margin"):
        audio_window(1.0, 2.0, -0.1)


def test_estimate_counts_listening_at_speed_and_decisions():
    spans = find_spans(SEGS, ReviewOptions(merge_gap_chars=0))
    listen = sum(s.end - s.start + 0.6 for s in spans)
    est = estimate_review_seconds(spans, margin=0.3, speed=2.0, seconds_per_decision=3.0)
    assert est == pytest.approx(listen / 2 + 3.0 * len(spans))
    assert estimate_review_seconds([], margin=0.3) == 0.0
    with pytest.raises(ValueError, match="speed"):
        estimate_review_seconds(spans, speed=0)


def test_accept_verifies_without_changing_text():
    out = apply_edit(SEGS, EditOp(0, 1, 4, "天天气", "accept"))
    assert out[0].text == "今天天气很好"
    assert [c.confidence for c in out[0].chars] == [0.9, 1.0, 1.0, 1.0, 0.9, 0.9]
    assert out[0].chars[1].alternatives == ()
    assert SEGS[0].chars[1].confidence == 0.2  # the input is not mutated
    assert find_spans(out, ReviewOptions(order="time"))[0].segment == 1


def test_fix_same_length_keeps_times_other_length_spreads():
    same = apply_edit(SEGS, EditOp(1, 1, 2, "门", "alternative"))
    assert same[1].text == "我门去公园"
    assert same[1].chars[1].start == SEGS[1].chars[1].start
    longer = apply_edit(SEGS, EditOp(0, 1, 4, "甜甜的天", "fix"))
    assert longer[0].text == "今甜甜的天很好"
    new = longer[0].chars[1:5]
    assert new[0].start == pytest.approx(0.2) and new[-1].end == pytest.approx(0.7)
    assert all(a.end == pytest.approx(b.start) for a, b in itertools.pairwise(new))
    deleted = apply_edit(SEGS, EditOp(0, 0, 1, "", "fix"))
    assert deleted[0].text == "天天气很好"
    inserted = apply_edit(SEGS, EditOp(0, 1, 1, "的", "fix"))
    assert inserted[0].text == "今的天天气很好"
    assert inserted[0].chars[1].start == pytest.approx(0.1)
    assert inserted[0].chars[1].end == pytest.approx(0.2)


def test_edit_out_of_range_raises():
    with pytest.raises(IndexError, match="segment 5"):
        apply_edit(SEGS, EditOp(5, 0, 1, "x", "fix"))
    with pytest.raises(IndexError, match="out of range"):
        apply_edit(SEGS, EditOp(0, 3, 9, "x", "fix"))
    with pytest.raises(ValueError, match="kind"):
        EditOp(0, 0, 1, "x", "delete")  # type: ignore[arg-type]


def test_verified_pair_runs_halfway_to_neighbours():
    p = verified_pair(SEGS[0], 1, 4)  # chars at 0.2..0.7; neighbours end 0.1, start 0.8
    assert (p.start, p.end, p.text) == (pytest.approx(0.15), pytest.approx(0.75), "天天气")
    edge = verified_pair(SEGS[1], 4, 5)  # last character: runs to the segment's end
    assert edge.end == pytest.approx(6.0) and edge.text == "园"


def test_verified_pairs_later_decision_wins_and_deletions_skipped():
    ops = [
        EditOp(0, 1, 4, "天天气", "accept"),
        EditOp(0, 1, 4, "甜天气", "fix"),
        EditOp(1, 1, 2, "门", "alternative"),
        EditOp(1, 0, 1, "", "fix"),
    ]
    pairs = verified_pairs(SEGS, ops)
    assert [(si, p.text) for si, p in pairs] == [(0, "甜天气"), (1, "门")]
    assert apply_edits(SEGS, ops)[1].text == "门去公园"


def test_decision_pace_is_the_median_without_breaks():
    assert decision_pace([]) == 2.5
    assert decision_pace([1.0, 2.0], default=3.0) == 3.0  # too few to trust
    assert decision_pace([1.0, 9.0, 2.0, 3.0, 600.0, -1.0]) == pytest.approx(2.5)
