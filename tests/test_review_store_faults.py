"""Faults found in review edits and training-set names: "fix all occurrences" in a transcript
with a multi-letter token ("ok"), a training set named after another set's tuned model, and a
typed fix with a space between two English words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.audio import write_wav
from engine.library import corrections, script
from engine.library.corrections import CorrectionsError, build_dataset
from engine.library.review import (
    EditOp,
    apply_edit,
    apply_edits,
    find_occurrences,
    replace_ops,
    split_typed,
)
from engine.library.store import Store
from engine.results import Char, Segment
from engine.tune.config import TuneConfig


def segment(i: int, tokens: list[str], start: float = 0.0, conf: float = 0.9) -> Segment:
    chars = tuple(
        Char(t, start + 0.25 * k, start + 0.25 * k + 0.2, conf) for k, t in enumerate(tokens)
    )
    return Segment(i, start, start + 0.25 * len(tokens), chars)


# ---- 1+2. fix all occurrences past a multi-letter token ---------------------------------------


def test_fix_all_past_a_multi_letter_token_changes_only_the_occurrence():
    segments = [
        segment(0, list("我们去公圆")),
        segment(1, ["ok", "我", "们", "去", "公", "圆", "玩"], 2.0),
    ]
    found = find_occurrences(segments, "公圆", skip=(0, 3, 5))
    assert [(o.segment, o.first, o.stop) for o in found] == [(1, 4, 6)]
    assert (found[0].start, found[0].end) == (segments[1].chars[4].start, segments[1].chars[5].end)
    edited = apply_edits(segments, replace_ops(found, "公园"))
    assert [c.text for c in edited[1].chars] == ["ok", "我", "们", "去", "公", "园", "玩"]


def test_an_occurrence_at_the_end_after_a_multi_letter_token_does_not_crash():
    segments = [segment(0, list("我们去公园")), segment(1, ["ok", "公", "圆"], 2.0)]
    found = find_occurrences(segments, "公圆")
    assert [(o.segment, o.first, o.stop) for o in found] == [(1, 1, 3)]
    assert apply_edits(segments, replace_ops(found, "公园"))[1].text == "ok公园"


def test_occurrences_match_whole_tokens_only():
    segments = [segment(0, ["ok", "吧", "k", "吧", "ok", "吧"])]
    # "k吧" inside "ok吧" starts mid-token: only the stretch that is "k" "吧" matches
    assert [(o.first, o.stop) for o in find_occurrences(segments, "k吧")] == [(2, 4)]
    assert [(o.first, o.stop) for o in find_occurrences(segments, "ok吧")] == [(0, 2), (4, 6)]
    # a multi-letter token's mark counts only after its last letter
    marked = [segment(0, ["ok", "吧"])]
    marked[0] = Segment(0, 0.0, 0.5, (Char("ok", 0, 0.2, 0.9, after="，"), marked[0].chars[1]))
    assert [(o.first, o.stop) for o in find_occurrences(marked, "ok，吧")] == [(0, 2)]
    assert find_occurrences(marked, "o，k吧") == []


# ---- 3. a training set named after another set's tuned model -----------------------------------


@pytest.fixture
def store_with_check(tmp_path: Path):
    wav = tmp_path / "rec.wav"
    write_wav(wav, (0.2 * np.sin(np.arange(2 * 16000) / 7)).astype(np.float32))
    with Store(tmp_path / "data" / "tingxie.db") as s:
        tid = s.add_transcript([segment(0, list("今天天气很好"), conf=0.2)], audio=wav)
        s.add_edit(tid, EditOp(0, 0, 6, "", "accept"))
        yield s, tid


def test_a_set_named_after_a_tuned_model_never_deletes_it(store_with_check):
    store, tid = store_with_check
    summary = build_dataset(store, [tid], "meeting", model="some/model")
    tuned = Path(TuneConfig.load(summary.config).output_dir)
    assert tuned == corrections.dataset_folder(store, "meeting-tuned")
    tuned.mkdir()
    (tuned / "model.safetensors").write_bytes(b"weights")
    assert not corrections.name_in_use(store, "meeting-tuned")
    assert corrections.existing_set(store, "meeting-tuned") is None
    with pytest.raises(CorrectionsError) as e:
        build_dataset(store, [tid], "meeting-tuned", model="some/model")
    assert e.value.code == "dataset.name_taken"
    assert str(tuned) in str(e.value) and "model.safetensors" in str(e.value)
    assert "choose another name" in str(e.value)
    assert (tuned / "model.safetensors").read_bytes() == b"weights"
    assert [n for n, _, _ in store.correction_sets()] == ["meeting"]


def test_a_name_is_checked_before_any_build(store_with_check):
    """What the Make training set dialog asks at once (it learnt a name was taken only from
    the worker, after the build had started); the build asks again."""
    store, _ = store_with_check
    tuned = corrections.dataset_folder(store, "meeting-tuned")
    tuned.mkdir(parents=True)
    (tuned / "model.safetensors").write_bytes(b"weights")
    for name, code in [("meeting-tuned", "dataset.name_taken"), ("../x", "dataset.bad_name")]:
        with pytest.raises(CorrectionsError) as e:
            corrections.check_name(store, name)
        assert e.value.code == code
    corrections.dataset_folder(store, "spare").mkdir()
    corrections.check_name(store, "spare")  # an empty folder is used
    corrections.check_name(store, "new")


def test_a_training_set_or_an_empty_folder_is_still_replaced(store_with_check):
    store, tid = store_with_check
    build_dataset(store, [tid], "meeting", model="some/model")
    assert corrections.name_in_use(store, "meeting")
    build_dataset(store, [tid], "meeting", model="some/model")  # rebuilt in place
    empty = corrections.dataset_folder(store, "spare")
    empty.mkdir()
    assert not corrections.name_in_use(store, "spare")
    assert build_dataset(store, [tid], "spare", model="some/model").folder == empty


# ---- 6. a typed fix with a space between English words ----------------------------------------


def test_a_typed_fix_keeps_one_space_between_latin_words(tmp_path):
    segments = [segment(0, list("我去牛约出差"))]
    fixed = apply_edit(segments, EditOp(0, 2, 4, "New   York", "fix"))[0]
    assert fixed.punctuated == "我去New York出差"
    assert fixed.text == "我去NewYork出差"  # the characters alone, one per Char
    with Store(tmp_path / "t.db") as s:
        tid = s.add_transcript(segments, title="a.wav")
        s.add_edit(tid, EditOp(0, 2, 4, "New York 2", "fix"))
        assert s.segments(tid)[0].punctuated == "我去New York 2出差"
        assert script.render(s.segments(tid), "txt") == "我去New York 2出差\n"


def test_stray_spaces_in_chinese_and_beside_marks_are_dropped():
    segments = [segment(0, list("我去牛约出差"))]
    assert apply_edit(segments, EditOp(0, 2, 4, "纽 约", "fix"))[0].punctuated == "我去纽约出差"
    assert apply_edit(segments, EditOp(0, 2, 4, "New ，York", "fix"))[0].punctuated == (
        "我去New，York出差"
    )
    assert apply_edit(segments, EditOp(0, 2, 4, "去 A", "fix"))[0].punctuated == "我去去A出差"
    # deleting the word before a space leaves no space between Chinese characters
    spaced = apply_edit(segments, EditOp(0, 2, 4, "New York", "fix"))
    assert apply_edit(spaced, EditOp(0, 2, 5, "", "fix"))[0].punctuated == "我去York出差"


def test_a_space_after_ascii_punctuation_between_latin_words_is_kept(tmp_path):
    """ "Hello, world" typed as a fix was stored "Hello,world": the space was kept only
    between two letters. After an ASCII mark it is the mark's (", " after "o"); after a
    full-width one, which has its own width, none is written, as before."""
    assert split_typed("Hello, world") == ("Helloworld", ["", "", "", "", ", ", "", "", "", "", ""])
    assert split_typed("Mr.  Smith!") == ("MrSmith", ["", ". ", "", "", "", "", "!"])
    assert split_typed("Hello， world")[1][4] == "，"
    segments = [segment(0, list("我说你好世界出差"))]
    fixed = apply_edit(segments, EditOp(0, 2, 6, "Hello, world", "fix"))[0]
    assert fixed.punctuated == "我说Hello, world出差" and fixed.text == "我说Helloworld出差"
    with Store(tmp_path / "t.db") as s:
        tid = s.add_transcript(segments, title="a.wav")
        s.add_edit(tid, EditOp(0, 2, 6, "Hello, world", "fix"))
        assert script.render(s.segments(tid), "txt") == "我说Hello, world出差\n"


def test_fix_all_carries_the_space_and_finds_spaced_words():
    segments = [segment(0, list("牛约好")), segment(1, list("在牛约"), 2.0)]
    ops = replace_ops(find_occurrences(segments, "牛约"), "New York")
    edited = apply_edits(segments, ops)
    assert [s.punctuated for s in edited] == ["New York好", "在New York"]
    found = find_occurrences(edited, "New York")
    assert [(o.segment, o.first, o.stop) for o in found] == [(0, 0, 7), (1, 1, 8)]


def test_a_fix_typed_in_the_other_script_keeps_the_space_between_latin_words():
    """Shown in Traditional, a typed fix reaches the store through the page's `to_stored`,
    which dropped the space: "New York" was stored as "NewYork"."""
    from app.review.page import to_stored

    shown, stored = (Char("紐", 0.0, 0.1, 0.5),), (Char("纽", 0.0, 0.1, 0.5),)
    assert to_stored("去New York", shown, stored, "simplified") == "去New York"
    assert to_stored("去 紐約", shown, stored, "simplified") == "去纽约"  # Chinese: no space
