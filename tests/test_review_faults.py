"""Faults found in review and training sets, each pinned by the behaviour a user relies on:
deleting a span, fix all occurrences, fixes typed in Traditional, training sets cut from a
recording that changed, the same audio twice, stale training pairs, set names in use."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from app_fakes import FakePlayer
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog, QMessageBox
from test_corrections import make_segments as two_segments  # 0-1 s and 2-3 s, one doubtful each

from app.review.page import ReviewPanel
from engine.audio import load_audio, write_wav
from engine.library import store as store_mod
from engine.library.corrections import (
    Clip,
    CorrectionOptions,
    CorrectionsError,
    build_dataset,
    collect_clips,
)
from engine.library.review import (
    EditOp,
    apply_edits,
    find_occurrences,
    inner_text,
    replace_ops,
    verified_pairs,
)
from engine.library.store import Store
from engine.results import Alternative, Char, Segment
from engine.tune.data import load_dataset

SR = 16_000


def chars(text: str, confs: list[float], start: float, step: float = 0.25) -> tuple[Char, ...]:
    return tuple(
        Char(t, start + step * i, start + step * i + 0.2, c, (Alternative("天", 0.3),))
        for i, (t, c) in enumerate(zip(text, confs, strict=True))
    )


def tone(path: Path, seconds: float) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    write_wav(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    return path


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "data" / "tingxie.db") as s:
        yield s


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    return tone(tmp_path / "rec.wav", 6)


def open_panel(qtbot, store: Store, tid: int, threshold: float = 0.5) -> ReviewPanel:
    panel = ReviewPanel(store, FakePlayer())
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    panel.settings.set(threshold=threshold)
    panel.open(tid)
    return panel


# ---- 1. deleting a doubtful span -------------------------------------------------------------


def test_an_empty_fix_deletes_the_span_without_an_error(qtbot, store, audio):
    """Select all in the fix box, Delete, Enter: the filler is gone and saved (it used to raise
    "zip() argument 2 is longer than argument 1" in the slot, and nothing was offered)."""
    segs = [Segment(0, 0.0, 1.5, chars("嗯我们去公园", [0.2, 0.9, 0.9, 0.9, 0.9, 0.9], 0.0))]
    tid = store.add_transcript(segs, audio=audio)
    panel = open_panel(qtbot, store, tid)
    assert panel.current_span().text == "嗯"
    panel.fix_edit.setFocus()
    panel.fix_edit.selectAll()
    qtbot.keyClick(panel.fix_edit, Qt.Key.Key_Delete)
    qtbot.keyClick(panel.fix_edit, Qt.Key.Key_Return)
    assert store.segments(tid)[0].text == "我们去公园"
    assert panel.status.text() == "所有修改已保存"


def test_a_fix_of_only_a_mark_deletes_the_span_and_keeps_the_mark(qtbot, store, audio):
    segs = [Segment(0, 0.0, 1.5, chars("我们嗯嗯去公园", [0.9, 0.9, 0.2, 0.2, 0.9, 0.9, 0.9], 0.0))]
    tid = store.add_transcript(segs, audio=audio)
    panel = open_panel(qtbot, store, tid)
    assert panel.current_span().text == "嗯嗯"
    panel.fix_span("。")
    assert store.segments(tid)[0].punctuated == "我们。去公园"


def test_fix_all_offers_a_deletion_and_deletes_each_occurrence(qtbot, store, audio):
    segs = [
        Segment(0, 0.0, 1.5, chars("那个我们走", [0.2, 0.2, 0.9, 0.9, 0.9], 0.0)),
        Segment(1, 2.0, 3.5, chars("他那个来了那个", [0.9] * 7, 2.0)),
    ]
    tid = store.add_transcript(segs, audio=audio)
    panel = open_panel(qtbot, store, tid)
    assert panel.current_span().text == "那个"
    panel.fix_span("")
    assert panel.fix_all_action.isEnabled()
    assert "其余 2 处“那个”也删除" in panel.fix_all_button.text()
    panel.fix_all()
    assert panel.status.text() == (
        "已删除其余 2 处“那个”（撤销一次恢复一处，“撤销全部”恢复所有各处）"
    )
    assert [s.text for s in store.segments(tid)] == ["我们走", "他来了"]
    assert store.verified_pairs(tid) == []  # deletions teach nothing
    panel.undo_all()
    assert panel.status.text() == "已恢复删除的其余 2 处“那个”"
    assert [s.text for s in store.segments(tid)] == ["我们走", "他那个来了那个"]


def test_inner_text_of_a_deletion_is_empty_and_replaces_delete():
    assert inner_text("") == "" and inner_text("。") == ""
    segments = [Segment(0, 0.0, 2.0, chars("那个他那个来", [0.9] * 6, 0.0))]
    ops = replace_ops(find_occurrences(segments, "那个"), inner_text("。"))
    assert [(o.first, o.stop, o.text) for o in ops] == [(0, 2, ""), (1, 3, "")]
    assert apply_edits(segments, ops)[0].text == "他来"


# ---- 8, 9. training pairs a later decision ends, or must not end -----------------------------


def test_a_later_deletion_ends_the_pairs_over_its_audio():
    segs = two_segments()
    accepted_then_deleted = [EditOp(1, 3, 5, "公园", "accept"), EditOp(1, 3, 5, "", "replace")]
    assert verified_pairs(segs, accepted_then_deleted) == []
    fixed_then_deleted = [EditOp(0, 2, 3, "甜", "fix"), EditOp(0, 1, 3, "", "fix")]
    assert verified_pairs(segs, fixed_then_deleted) == []
    # a deletion next to a checked character leaves that character's pair
    neighbour = [EditOp(0, 2, 3, "甜", "fix"), EditOp(0, 3, 4, "", "fix")]
    assert [p.text for _, p in verified_pairs(segs, neighbour)] == ["甜"]


def test_a_deleted_span_merged_across_an_accepted_character_leaves_no_clip(qtbot, store, audio):
    """Accept 那, raise the threshold so a span merges across it, delete that span."""
    confs = [0.9, 0.55, 0.3, 0.55, 0.9, 0.9]
    segs = [Segment(0, 0.0, 3.0, chars("我嗯那个们好", confs, 0.0, step=0.5))]
    tid = store.add_transcript(segs, audio=audio)
    panel = open_panel(qtbot, store, tid)
    assert panel.current_span().text == "那"
    panel.accept_span()
    panel.settings.set(threshold=0.6)
    assert panel.current_span().text == "嗯那个"
    panel.fix_span("")
    assert store.segments(tid)[0].text == "我们好"
    assert collect_clips(store, [tid], CorrectionOptions(scope="span", min_seconds=0.0)) == []


def test_neighbouring_decisions_both_keep_their_pairs():
    """Times off the millisecond grid (a VAD chunk starting at sample 12345): the rounded
    pairs of two neighbours overlap by 1 ms, which must not drop the earlier one."""
    off = 12345 / SR
    cs = tuple(
        Char(t, off + 0.2 * i, off + 0.2 * i + 0.18, c)
        for i, (t, c) in enumerate(zip("今天天气好", [0.9, 0.4, 0.55, 0.9, 0.9], strict=True))
    )
    segs = [Segment(0, off, off + 1.0, cs)]
    ops = [EditOp(0, 1, 2, "天", "accept"), EditOp(0, 2, 3, "天", "accept")]
    pairs = [p for _, p in verified_pairs(segs, ops)]
    assert [p.text for p in pairs] == ["天", "天"]
    assert pairs[0].end - pairs[1].start <= 0.001  # rounded outwards, never into the span


# ---- 6. fix all occurrences leaves checked text alone ----------------------------------------


def test_fix_all_leaves_an_accepted_stretch_alone(qtbot, store, audio):
    segs = [
        Segment(0, 0.0, 1.5, chars("他在期中考试", [0.9, 0.9, 0.2, 0.2, 0.9, 0.9], 0.0)),
        Segment(1, 2.0, 3.5, chars("期中有三个人", [0.3, 0.3, 0.9, 0.9, 0.9, 0.9], 2.0)),
        Segment(2, 4.0, 5.5, chars("期中我们走了", [0.9, 0.9, 0.9, 0.9, 0.9, 0.9], 4.0)),
    ]
    tid = store.add_transcript(segs, audio=audio)
    panel = open_panel(qtbot, store, tid)
    assert (panel.current_span().text, panel.current_span().segment) == ("期中", 0)
    panel.accept_span()  # 期中考试: right as it is
    panel.fix_span("其中")  # here it is 其中
    assert panel.fix_all_action.isEnabled()
    panel.fix_all()
    assert [s.text for s in store.segments(tid)] == ["他在期中考试", "其中有三个人", "其中我们走了"]


def test_checked_characters_come_from_the_history_not_the_confidence():
    """The model's own confidence can round to 1.0: such text is still offered."""
    from engine.library.review import checked_chars

    segs = [
        Segment(0, 0.0, 1.5, chars("期中考试", [1.0, 1.0, 0.2, 0.9], 0.0)),
        Segment(1, 2.0, 3.5, chars("他期中来", [0.9, 0.2, 0.2, 0.9], 2.0)),
    ]
    ops = [EditOp(1, 1, 3, "期中", "accept")]
    checked = checked_chars(segs, ops)
    assert checked == [[False] * 4, [False, True, True, False]]
    found = find_occurrences(apply_edits(segs, ops), "期中", checked=checked)
    assert [(o.segment, o.first) for o in found] == [(0, 0)]
    # a stretch a fix-all replaced was never heard: it stays open to later offers
    assert checked_chars(segs, [EditOp(1, 1, 3, "期中", "replace")])[1] == [False] * 4


# ---- 4. a fix typed while Traditional is displayed -------------------------------------------


def test_a_fix_typed_in_traditional_is_stored_in_the_models_script(qtbot, store, audio):
    segs = [Segment(0, 0.0, 1.5, chars("她的头发很长", [0.9, 0.9, 0.3, 0.3, 0.9, 0.9], 0.0))]
    tid = store.add_transcript(segs, audio=audio)
    panel = open_panel(qtbot, store, tid)
    panel.script_box.setCurrentIndex(panel.script_box.findData("traditional"))
    shown = panel.fix_edit.text()
    assert shown == "頭髮"
    panel.fix_span(shown[0] + "髮絲")  # the first character left as shown, then new ones
    assert store.segments(tid)[0].text == "她的头发丝很长"
    assert [p.text for p in store.verified_pairs(tid)] == ["头发丝"]


def test_fix_all_from_traditional_finds_and_writes_the_stored_script(qtbot, store, audio):
    segs = [
        Segment(0, 0.0, 1.5, chars("我们去公圆", [0.9, 0.9, 0.9, 0.2, 0.2], 0.0)),
        Segment(1, 2.0, 3.5, chars("公圆里头发", [0.9, 0.9, 0.9, 0.9, 0.9], 2.0)),
    ]
    tid = store.add_transcript(segs, audio=audio)
    panel = open_panel(qtbot, store, tid)
    panel.script_box.setCurrentIndex(panel.script_box.findData("traditional"))
    assert panel.fix_edit.text() == "公圓"
    panel.fix_span("公園")
    assert "公園" in panel.fix_all_button.text()  # worded in the display script
    panel.fix_all()
    assert [s.text for s in store.segments(tid)] == ["我们去公园", "公园里头发"]


def test_to_stored_keeps_marks_and_maps_unchanged_characters_back():
    from app.review.page import stored_script, to_stored

    stored = chars("头发", [0.3, 0.3], 0.0)
    shown = chars("頭髮", [0.3, 0.3], 0.0)
    assert to_stored("，頭髮。", shown, stored, "simplified") == "，头发。"
    assert to_stored("頭，法", shown, stored, "simplified") == "头，法"
    assert to_stored("。", shown, stored, "simplified") == "。"  # a deletion stays one
    assert stored_script([Segment(0, 0.0, 1.0, chars("她的頭髮很長", [0.9] * 6, 0.0))]) == (
        "traditional"
    )
    assert stored_script([Segment(0, 0.0, 1.0, chars("她的头发很长", [0.9] * 6, 0.0))]) == (
        "simplified"
    )


# ---- 5, 3. Make training set… ----------------------------------------------------------------


def requested(panel: ReviewPanel, monkeypatch, name: str) -> list:
    requests: list = []
    panel.dataset_requested.connect(requests.append)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (name, True))
    panel.actions_by_name["make_dataset"].trigger()
    return requests


def test_training_set_saves_a_fix_whose_save_failed_first(qtbot, store, audio, monkeypatch):
    segs = [
        Segment(0, 0.0, 1.25, chars("今添天气好", [0.95, 0.2, 0.95, 0.95, 0.95], 0.0)),
        Segment(1, 2.0, 3.25, chars("我们去公圆", [0.9, 0.9, 0.9, 0.9, 0.4], 2.0)),
    ]
    tid = store.add_transcript(segs, audio=audio)
    panel = open_panel(qtbot, store, tid)
    panel.fix_span("甜")
    real = Store.save_chain

    def locked(self, *a, **k):
        raise store_mod._describe(self.path, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(Store, "save_chain", locked)
    panel.fix_span("园")
    assert panel.session.dirty
    # still failing: nothing is built from a store that lacks the fix on screen
    assert requested(panel, monkeypatch, "set") == []
    monkeypatch.setattr(Store, "save_chain", real)
    (req,) = requested(panel, monkeypatch, "set")
    assert not panel.session.dirty
    s = build_dataset(req.store, req.transcript_ids, req.name, model="m")
    assert [e.text for e in load_dataset(s.manifest).examples] == ["今甜天气好", "我们去公园"]


def test_a_training_set_name_in_use_is_replaced_only_when_confirmed(
    qtbot, store, audio, monkeypatch
):
    segs = [Segment(0, 0.0, 1.25, chars("今添天气好", [0.95, 0.2, 0.95, 0.95, 0.95], 0.0))]
    t1 = store.add_transcript(segs, audio=audio)
    t2 = store.add_transcript(segs, audio=audio)
    asked: list = []
    answer = [QMessageBox.StandardButton.No]

    def question(parent, title, text, buttons, default):
        asked.append((text, default))
        return answer[0]

    monkeypatch.setattr(QMessageBox, "question", question)
    panel = open_panel(qtbot, store, t1)
    panel.fix_span("甜")
    (req,) = requested(panel, monkeypatch, "meetings")
    assert asked == []  # a new name: nothing to ask
    summary = build_dataset(req.store, req.transcript_ids, req.name, model="m")
    monkeypatch.setattr(QMessageBox, "exec", lambda box: None)
    panel.show_dataset(summary)  # the worker's answer: the button is free again
    panel.open(t2)
    panel.accept_span()
    assert requested(panel, monkeypatch, "meetings") == []  # No (the default) keeps the set
    ((text, default),) = asked
    assert "meetings" in text and default == QMessageBox.StandardButton.No
    answer[0] = QMessageBox.StandardButton.Yes
    (req,) = requested(panel, monkeypatch, "meetings")
    assert req.transcript_ids == (t2,)


def _ask_for_a_training_set(qtbot, store, tid):
    """The Review panel of `tid` with one span fixed, after *Make training set…*; the requests
    it sent."""
    panel = open_panel(qtbot, store, tid)
    panel.fix_span("甜")
    requests: list = []
    panel.dataset_requested.connect(requests.append)
    panel.actions_by_name["make_dataset"].trigger()
    return panel, requests


def test_a_training_set_name_taken_by_a_folder_is_said_in_the_dialog_and_asked_again(
    qtbot, store, audio, monkeypatch
):
    """A name whose folder holds something that is no training set (the tuned model beside a
    set) was refused only by the worker, after the build had started: now the dialog says so at
    once and asks again with the name typed, and the build takes the name changed."""
    segs = [Segment(0, 0.0, 1.25, chars("今添天气好", [0.95, 0.2, 0.95, 0.95, 0.95], 0.0))]
    tid = store.add_transcript(segs, audio=audio)
    taken = store.path.parent / "corrections" / "meetings-tuned"
    taken.mkdir(parents=True)
    (taken / "model.safetensors").write_bytes(b"weights")
    typed = iter(["meetings-tuned", "meetings"])
    shown: list = []

    def get_text(parent, title, label, text=""):
        shown.append(text)
        return next(typed), True

    warned: list = []
    monkeypatch.setattr(QInputDialog, "getText", get_text)
    monkeypatch.setattr(QMessageBox, "warning", lambda p, t, text: warned.append(text))
    _, requests = _ask_for_a_training_set(qtbot, store, tid)
    (told,) = warned
    assert "meetings-tuned" in told and "model.safetensors" in told
    assert shown == ["", "meetings-tuned"]  # asked again, with the name to change
    (req,) = requests
    assert req.name == "meetings"
    assert (taken / "model.safetensors").read_bytes() == b"weights"


def test_a_training_set_name_that_is_no_folder_name_is_said_in_the_dialog(
    qtbot, store, audio, monkeypatch
):
    segs = [Segment(0, 0.0, 1.25, chars("今添天气好", [0.95, 0.2, 0.95, 0.95, 0.95], 0.0))]
    tid = store.add_transcript(segs, audio=audio)
    typed = iter([("my set/1", True), ("", False)])  # then Cancel
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: next(typed))
    warned: list = []
    monkeypatch.setattr(QMessageBox, "warning", lambda p, t, text: warned.append(text))
    panel, requests = _ask_for_a_training_set(qtbot, store, tid)
    assert requests == [] and len(warned) == 1 and "my set/1" in warned[0]
    assert panel.actions_by_name["make_dataset"].isEnabled()


# ---- 2. a recording that changed since it was transcribed ------------------------------------


def accepted_segment_one(store: Store, rec: Path) -> int:
    tid = store.add_transcript(two_segments(), audio=rec)
    store.add_edit(tid, EditOp(1, 2, 3, "去", "accept"))  # segment 1: 2.0-3.0 s
    return tid


def test_a_shortened_recording_stops_the_build(store, tmp_path):
    rec = tone(tmp_path / "rec.wav", 4)
    tid = accepted_segment_one(store, rec)
    tone(rec, 2.5)  # cut since: segment 1 would get half its audio and all its text
    with pytest.raises(CorrectionsError) as e:
        build_dataset(store, [tid], "x", model="m")
    assert e.value.code == "dataset.recording_changed"
    assert str(rec.resolve()) in str(e.value) and "put the original file back" in str(e.value)
    assert not (store.path.parent / "corrections" / "x").exists()


def test_a_replaced_recording_stops_the_build(store, tmp_path):
    rec = tone(tmp_path / "rec.wav", 4)
    tid = accepted_segment_one(store, rec)
    write_wav(rec, np.zeros(4 * SR, np.float32))  # another sound under the same name
    with pytest.raises(CorrectionsError, match="no longer matches transcript"):
        build_dataset(store, [tid], "x", model="m")


def test_without_a_checksum_the_stored_duration_is_compared(store, tmp_path):
    rec = tmp_path / "rec.wav"  # not there when transcribed: no sha256 was stored
    tid = accepted_segment_one(store, rec)
    tone(rec, 2.5)  # shorter than the 3.0 s the transcript covers
    with pytest.raises(CorrectionsError, match="no longer matches transcript"):
        build_dataset(store, [tid], "x", model="m")
    tone(rec, 3.0)  # as long as it was: built
    s = build_dataset(store, [tid], "x", model="m")
    (ex,) = load_dataset(s.manifest).examples
    assert len(load_audio(ex.audio)) == SR


def test_a_clip_shorter_than_its_span_is_never_written(tmp_path):
    from engine.library.corrections import _cut

    rec = tone(tmp_path / "rec.wav", 2.5)
    with pytest.raises(CorrectionsError) as e:
        _cut(Clip(rec, 2.0, 3.0, "我们去公园", 1), 3.0)
    assert e.value.code == "dataset.recording_shorter"
    assert "shorter than its transcript" in str(e.value)
    # past the end altogether: worded for a transcript, not "choose a span"
    with pytest.raises(CorrectionsError) as e:
        _cut(Clip(rec, 3.0, 4.0, "我们", 1), 4.0)
    assert e.value.code == "dataset.recording_shorter" and "choose a span" not in str(e.value)
    from app.errors import error_text

    assert "录音比它的转写短" in error_text(e.value)
    # within the length it had then, a clip is whole
    assert len(_cut(Clip(rec, 1.0, 2.0, "好", 1), 2.5)) == SR


def test_cli_refuses_a_changed_recording(tmp_path, capsys):
    from engine.cli import corrections as cli

    rec = tone(tmp_path / "rec.wav", 4)
    db = tmp_path / "t.db"
    with Store(db) as s:
        accepted_segment_one(s, rec)
    write_wav(rec, np.zeros(SR, np.float32))
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["corrections", "x", "--db", str(db), "--model", str(tmp_path), "--folder", str(tmp_path)]
    )
    assert args.run(args) == 1
    assert "no longer matches transcript 1" in capsys.readouterr().err


# ---- 7. the same audio twice -----------------------------------------------------------------


def test_a_transcript_named_twice_gives_each_clip_once(store, tmp_path, capsys):
    rec = tone(tmp_path / "rec.wav", 4)
    tid = store.add_transcript(two_segments(), audio=rec)
    store.add_edit(tid, EditOp(0, 2, 3, "甜", "fix"))
    s = build_dataset(store, [tid, tid], "x", model="m")
    assert [e.text for e in load_dataset(s.manifest).examples] == ["今天甜气好"]
    assert (s.examples, s.corrections, s.transcripts) == (1, 1, (tid,))
    # and from the command line
    from engine.cli import corrections as cli

    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    argv = ["corrections", "y", "-t", str(tid), "-t", str(tid), "--db", str(store.path)]
    args = parser.parse_args([*argv, "--model", str(tmp_path)])
    assert args.run(args) == 0
    assert "1 clips" in capsys.readouterr().out


def test_one_recording_reviewed_in_two_transcripts_gives_the_newer_clip(store, tmp_path):
    rec = tone(tmp_path / "rec.wav", 4)
    t1 = store.add_transcript(two_segments(), audio=rec)
    t2 = store.add_transcript(two_segments(), audio=rec)  # transcribed again
    store.add_edit(t1, EditOp(0, 2, 3, "甜", "fix"))
    store.add_edit(t1, EditOp(1, 2, 3, "去", "accept"))  # only the older one checked this
    store.add_edit(t2, EditOp(0, 2, 3, "天", "accept"))  # the newer review disagrees
    ids = [t.id for t in store.list_transcripts(limit=1_000_000)]  # what the CLI does
    clips = collect_clips(store, ids)
    assert sorted((c.transcript, c.start, c.text) for c in clips) == [
        (t1, 2.0, "我们去公园"),
        (t2, 0.0, "今天天气好"),
    ]
    # the same when the newer one is listed first or last
    assert set(collect_clips(store, [t1, t2])) == set(clips)
