""" "Fix all occurrences" in the review: the pure logic (engine.library.review) and the page's
offer, each place its own undo step, and "undo all" right after; punctuation marks in the
transcript views."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
import test_app_window
from app_fakes import FakePlayer
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QInputDialog

from app.i18n import language, set_language, tr
from app.review.page import KEYS, ReviewPanel
from app.transcript import TranscriptView
from engine.library import store as store_mod
from engine.library.review import (
    EditOp,
    apply_edits,
    find_occurrences,
    replace_ops,
    verified_pairs,
)
from engine.library.store import Store
from engine.results import Char, Segment


def seg(i: int, text: str, start: float, confs: dict[int, float] | None = None) -> Segment:
    chars = tuple(
        Char(t, start + 0.25 * k, start + 0.25 * k + 0.2, (confs or {}).get(k, 0.95))
        for k, t in enumerate(text)
    )
    return Segment(i, chars[0].start, chars[-1].end, chars)


# ---- pure logic ----------------------------------------------------------------------------


def test_find_occurrences_in_reading_order_skipping_the_fixed_stretch():
    segments = [seg(0, "他去公园", 0.0), seg(1, "公园公园里", 2.0)]
    found = find_occurrences(segments, "公园", skip=(0, 2, 4))
    assert [(o.segment, o.first, o.stop) for o in found] == [(1, 0, 2), (1, 2, 4)]
    assert found[0].start == 2.0 and found[1].end == pytest.approx(2.95)
    # marks in the searched text are ignored; overlapping matches are not double counted
    assert len(find_occurrences([seg(0, "啊啊啊", 0.0)], "啊啊。", min_chars=2)) == 1
    # one character recurs everywhere in its right sense: no offer
    assert find_occurrences(segments, "园") == []


def marked(segment: Segment, marks: dict[int, str]) -> Segment:
    """`segment` with punctuation `marks` after the characters at those indices."""
    chars = tuple(replace(c, after=marks.get(k, "")) for k, c in enumerate(segment.chars))
    return replace(segment, chars=chars)


def test_occurrences_have_the_same_marks_between_their_characters():
    """他门 -> 他们 must not reach 其他。门口, where a sentence ends between the two."""
    segments = [seg(0, "他门来了", 0.0), marked(seg(1, "没有其他门口有人他门", 2.0), {3: "。"})]
    assert [(o.segment, o.first) for o in find_occurrences(segments, "他门")] == [(0, 0), (1, 8)]
    # with the mark in the fixed text, only the place that has it there
    found = find_occurrences(segments, "他。门")
    assert [(o.segment, o.first, o.stop) for o in found] == [(1, 3, 5)]
    ops = replace_ops(found, "她。们")
    assert apply_edits(segments, ops)[1].punctuated == "没有其她。们口有人他门"


def test_the_fixed_text_is_not_found_again_inside_its_replacement():
    """他 -> 他们 at segment 0: the new 他们 holds 他, which must not be offered again."""
    segments = apply_edits([seg(0, "他说他来了", 0.0)], [EditOp(0, 0, 1, "他们", "fix")])
    found = find_occurrences(segments, "他", skip=(0, 0, 2), min_chars=1)
    assert [(o.first, o.stop) for o in found] == [(3, 4)]


def test_replace_ops_apply_in_order_with_shifting_indices():
    segments = [seg(0, "公圆和公圆", 0.0), seg(1, "去公圆", 2.0)]
    found = find_occurrences(segments, "公圆")
    ops = replace_ops(found, "公共花园")  # longer: later indices in segment 0 shift by 2
    assert [(o.segment, o.first, o.stop, o.kind) for o in ops] == [
        (0, 0, 2, "replace"),
        (0, 5, 7, "replace"),
        (1, 1, 3, "replace"),
    ]
    out = apply_edits(segments, ops)
    assert [s.text for s in out] == ["公共花园和公共花园", "去公共花园"]
    # nobody listened to these: they are no training pairs
    assert verified_pairs(segments, ops) == []


# ---- the page ------------------------------------------------------------------------------


def open_panel(qtbot, store: Store, segments: list[Segment]) -> ReviewPanel:
    """A shown Review page on `segments`, added to `store`, doubtful below 0.5."""
    tid = store.add_transcript(segments)
    p = ReviewPanel(store, FakePlayer())
    qtbot.addWidget(p)
    p.show()
    qtbot.waitExposed(p)
    p.confidence_bar.spin.setValue(0.5)
    p.open(tid)
    return p


@pytest.fixture
def panel(qtbot, tmp_path: Path):
    store = Store(tmp_path / "data" / "tingxie.db")
    # 公圆 is doubtful in the first segment only; the others hold the same wrong term, sure.
    segments = [
        seg(0, "我们去公圆", 0.0, {3: 0.3, 4: 0.3}),
        seg(1, "公圆里人很多", 2.0),
        seg(2, "明天还去公圆吗", 4.0),
    ]
    yield open_panel(qtbot, store, segments)
    store.close()


def texts(panel: ReviewPanel) -> list[str]:
    return [s.text for s in panel.session.segments]


def test_a_fix_offers_the_other_occurrences_each_its_own_undo_step(qtbot, panel: ReviewPanel):
    """Old: one undo command held every place, so one Ctrl+Z took them all back and none
    could be taken back alone (issue #17: "each change undoable")."""
    assert panel.current_span().text == "公圆"
    assert not panel.fix_all_button.isVisible()
    panel.fix_span("公园")
    assert texts(panel) == ["我们去公园", "公圆里人很多", "明天还去公圆吗"]
    assert panel.fix_all_button.isVisible()
    assert panel.fix_all_button.text().startswith(
        tr("review.fix_all", count=2, old="公圆", text="公园")
    )
    combo = QKeySequence(KEYS["fix_all"])[0]
    qtbot.keyClick(panel.fix_edit, combo.key(), combo.keyboardModifiers())
    assert texts(panel) == ["我们去公园", "公园里人很多", "明天还去公园吗"]
    ops, head = panel.store.chain(panel.session.tid)
    assert [op.kind for op in ops] == ["fix", "replace", "replace"] and head == 3
    assert tr("review.fixed_all", count=2, old="公圆", text="公园") == panel.status.text()
    # each place is one undo step, named for its change; the fix heard is one more
    place = partial(tr, "undo.replace", count=2, old="公圆", text="公园")
    assert panel.undo_stack.undoText() == place(n=2)
    panel.undo_stack.undo()
    assert texts(panel) == ["我们去公园", "公园里人很多", "明天还去公圆吗"]
    assert panel.store.chain(panel.session.tid)[1] == 2
    assert panel.undo_stack.undoText() == place(n=1)
    panel.undo_stack.redo()
    assert texts(panel) == ["我们去公园", "公园里人很多", "明天还去公园吗"]
    panel.undo_stack.undo()
    panel.undo_stack.undo()
    assert texts(panel) == ["我们去公园", "公圆里人很多", "明天还去公圆吗"]
    assert panel.undo_stack.undoText() == tr("undo.fix", old="公圆", text="公园")
    panel.undo_stack.redo()
    panel.undo_stack.redo()
    assert panel.store.segments(panel.session.tid) == panel.session.segments
    # only the fix the user heard is a training pair
    assert [p.text for p in panel.session.verified_pairs()] == ["公园"]


def test_right_after_the_changes_the_offer_takes_them_all_back(qtbot, panel: ReviewPanel):
    """The button and Ctrl+Shift+F turn into "Undo all N changes": one action back to the
    transcript, and the library, as they were before the changes; the fix heard stays."""
    tid = panel.session.tid
    panel.fix_span("公园")
    before = panel.store.chain(tid)
    panel.fix_all()
    assert panel.fix_all_button.isVisible() and panel.fix_all_action.isEnabled()
    words, previous = {}, language()
    try:
        for lang in ("en", "zh"):  # reworded with the page
            set_language(lang)
            panel.retranslate()
            words[lang] = panel.fix_all_button.text()
    finally:
        set_language(previous)
        panel.retranslate()
    key = KEYS["fix_all"]
    assert words == {"en": f"Undo all 2 changes ({key})", "zh": f"撤销全部 2 处修改 ({key})"}
    combo = QKeySequence(KEYS["fix_all"])[0]
    qtbot.keyClick(panel.fix_edit, combo.key(), combo.keyboardModifiers())
    assert texts(panel) == ["我们去公园", "公圆里人很多", "明天还去公圆吗"]
    ops, head = panel.store.chain(tid)  # the places stay in History…, undone, as Undo leaves them
    assert (ops[:1], head) == before and [op.kind for op in ops] == ["fix", "replace", "replace"]
    assert panel.store.segments(tid) == panel.session.segments
    assert panel.status.text() == tr("review.undone_all", count=2, old="公圆", text="公园")
    assert not panel.fix_all_button.isVisible() and not panel.fix_all_action.isEnabled()
    assert panel.undo_stack.undoText() == tr("undo.fix", old="公圆", text="公园")
    panel.undo_stack.redo()  # the places come back one at a time
    assert texts(panel) == ["我们去公园", "公园里人很多", "明天还去公圆吗"]
    assert panel.store.segments(tid) == panel.session.segments


def _history(panel: ReviewPanel, monkeypatch) -> tuple[list[str], int]:
    """The entries History… lists, and the one it selects (the state shown)."""
    listed = []

    def pick(_parent, _title, _label, items, current, _editable):
        listed.append((items, current))
        return "", False

    monkeypatch.setattr(QInputDialog, "getItem", pick)
    panel.actions_by_name["history"].trigger()
    return listed[0]


def test_undo_all_leaves_the_history_as_one_undo_a_place_does(qtbot, tmp_path: Path, monkeypatch):
    """Old: "Undo all" dropped the places from History… (the library kept them as replaced
    edits), while one Undo a place keeps each listed, undone, to be reverted to."""
    segments = [
        seg(0, "我们去公圆", 0.0, {3: 0.3, 4: 0.3}),
        *(seg(i, text, 2.0 * i) for i, text in enumerate(("公圆里", "去公圆吗", "公圆好"), 1)),
    ]
    seen = {}
    for way in ("one by one", "all at once"):
        store = Store(tmp_path / way / "tingxie.db")
        panel = open_panel(qtbot, store, segments)
        panel.fix_span("公园")
        panel.fix_all()
        if way == "one by one":
            for _ in range(3):
                panel.undo_stack.undo()
        else:
            panel.undo_all()
        tid = panel.session.tid
        records = [(r.seq, r.op, r.active) for r in store.history(tid)]
        seen[way] = (_history(panel, monkeypatch), store.chain(tid), records, texts(panel))
        store.close()
    assert len(seen["one by one"][0][0]) == 5  # the original, the fix, the 3 places
    assert seen["all at once"] == seen["one by one"]


@pytest.mark.parametrize("move", ["undo", "history", "open"])
def test_undo_all_is_withdrawn_by_the_next_move(panel: ReviewPanel, move: str):
    """As the offer to fix all is: after an undo, a revert from History… or another
    transcript opened, "undo all" would take back states the page no longer shows."""
    other = panel.store.add_transcript([seg(0, "会议记录开始", 0.0)])
    panel.fix_span("公园")
    panel.fix_all()
    assert panel.fix_all_action.isEnabled()
    {"undo": panel.undo_stack.undo, "history": lambda: panel.revert_to(0)}.get(
        move, lambda: panel.open(other)
    )()
    shown = texts(panel)
    assert not panel.fix_all_button.isVisible() and not panel.fix_all_action.isEnabled()
    panel.undo_all()  # nothing to do any more
    assert texts(panel) == shown


def test_changes_whose_save_failed_say_so_and_the_next_change_saves_them(
    panel: ReviewPanel, monkeypatch
):
    """Old: the "fixed" message took the place of the save's error at once."""
    tid = panel.session.tid
    panel.fix_span("公园")
    real_save = Store.save_chain

    def full(self, *args):
        raise store_mod._describe(self.path, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(Store, "save_chain", full)
    panel.fix_all()
    assert "磁盘已满" in panel.status.text() and panel.session.dirty
    assert texts(panel) == ["我们去公园", "公园里人很多", "明天还去公园吗"]
    assert panel.store.chain(tid)[1] == 1
    monkeypatch.setattr(Store, "save_chain", real_save)
    panel.undo_stack.undo()
    assert not panel.session.dirty and "磁盘已满" not in panel.status.text()
    assert panel.store.chain(tid)[1] == 2
    assert panel.store.segments(tid) == panel.session.segments


def test_undoing_the_fix_withdraws_the_offer(panel: ReviewPanel):
    panel.fix_span("公园")
    assert panel.fix_all_button.isVisible()
    panel.undo_stack.undo()
    assert not panel.fix_all_button.isVisible() and not panel.fix_all_action.isEnabled()
    panel.fix_all()  # nothing to do any more
    assert texts(panel) == ["我们去公圆", "公圆里人很多", "明天还去公圆吗"]


def test_opening_another_transcript_withdraws_the_offer(panel: ReviewPanel):
    """The offer holds edits of the transcript it was made in: applied to another, it wrote
    their characters into it."""
    other = panel.store.add_transcript([seg(0, "会议记录开始", 0.0), seg(1, "请大家发言好吗", 2.0)])
    panel.fix_span("公园")
    assert panel.fix_all_action.isEnabled()
    panel.open(other)
    assert not panel.fix_all_button.isVisible() and not panel.fix_all_action.isEnabled()
    panel.fix_all()
    assert texts(panel) == ["会议记录开始", "请大家发言好吗"]
    assert panel.store.chain(other) == ([], 0)


def test_accepting_offers_nothing(panel: ReviewPanel):
    panel.accept_span()
    assert not panel.fix_all_button.isVisible()


# ---- marks in the views --------------------------------------------------------------------


def test_marks_show_after_characters_and_hit_testing_stays_aligned(qtbot):
    view = TranscriptView()
    qtbot.addWidget(view)
    chars = seg(0, "你好我们走", 0.0).chars
    marked = (*chars[:1], replace(chars[1], after="，"), *chars[2:4], replace(chars[4], after="。"))
    view.set_segments([Segment(0, 0.0, 1.2, marked)])
    assert view.toPlainText() == "你好，我们走。\n"  # a paragraph per segment
    assert [c.text for c in view.chars] == list("你好我们走")  # a mark is never a character
    view.show()
    qtbot.waitExposed(view)
    for i in range(5):
        hit = view.char_at(view.char_point(i))
        assert hit is not None and hit[1] == i
    view.select_chars(2, 3)
    assert view.textCursor().selectedText() == "我们"


def test_a_live_segment_gets_its_marks_once_punctuated(qtbot):
    view = TranscriptView()
    qtbot.addWidget(view)
    first, second = seg(0, "你好", 0.0).chars, seg(1, "走吧", 2.0).chars
    view.apply_update(first + second, ())  # committed as spoken, unpunctuated
    view.set_marks(0, (first[0], replace(first[1], after="，")))
    view.end_segment(2)
    assert view.toPlainText() == "你好，\n走吧"
    view.set_marks(2, (second[0], replace(second[1], after="。")))
    assert view.toPlainText() == "你好，\n走吧。"
    view.select_chars(2, 3)
    assert view.textCursor().selectedText() == "走吧"


def test_replacements_keep_each_place_s_own_punctuation():
    segments = [
        Segment(
            0,
            0.0,
            1.0,
            (*seg(0, "公圆", 0.0).chars[:1], replace(seg(0, "公圆", 0.0).chars[1], after="，")),
        ),
        seg(1, "去公圆", 2.0),
    ]
    ops = replace_ops(find_occurrences(segments, "公圆"), "公园。")
    assert [op.text for op in ops] == ["公园", "公园"]
    assert [s.punctuated for s in apply_edits(segments, ops)] == ["公园，", "去公园"]


# ---- a long term in the offer ----------------------------------------------------------------

# The window tests' fixtures, shared rather than copied (bound by name).
dialogs = test_app_window.dialogs
library = test_app_window.library
ini = test_app_window.ini
make_window = test_app_window.make_window

_TERM = "".join(chr(0x4E00 + 37 * k) for k in range(60))  # 60 different characters


def test_a_long_term_in_the_offer_leaves_the_window_its_width(qtbot, make_window, library):
    """Old: the offer's button held the term twice on one line, and its width became the
    window's minimum: a 60-character term widened the 1200 px window to 1739 px, pushing the
    page's right side off the screen; the message after it made the minimum 1865 px. Now the
    terms are cut short in both; the button's tooltip and accessible name keep the whole
    offer."""
    window = make_window()
    qtbot.waitExposed(window)
    narrowest = window.minimumSizeHint().width()
    doubtful = dict.fromkeys(range(len(_TERM)), 0.3)
    segments = [seg(0, _TERM, 0.0, doubtful), seg(1, "我们" + _TERM, 20.0), seg(2, _TERM, 40.0)]
    window.open_in_review(library.add_transcript(segments, title="long.wav", duration=60.0))
    review = window.review_panel
    review.confidence_bar.spin.setValue(0.5)
    assert review.current_span().text == _TERM
    fixed = _TERM[:-1] + "好"
    review.fix_span(fixed)
    QApplication.processEvents()  # the layout's pending update
    button, full = review.fix_all_button, tr("review.fix_all", count=2, old=_TERM, text=fixed)
    assert (window.minimumSizeHint().width(), window.width()) == (narrowest, 1200)
    assert button.isVisible() and _TERM not in button.text() and KEYS["fix_all"] in button.text()
    assert button.toolTip().startswith(full) and button.accessibleName().startswith(full)
    button.click()
    QApplication.processEvents()
    assert [s.text for s in review.session.segments] == [fixed, "我们" + fixed, fixed]
    assert (window.minimumSizeHint().width(), window.width()) == (narrowest, 1200)
