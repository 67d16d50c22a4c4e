"""The transcript and review views on text the hunt found misdrawn: characters outside the Basic
Multilingual Plane (two UTF-16 units in Qt's document, one in Python), a speaker name of two
lines, speaker labels in the Traditional display."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from app_fakes import FakePlayer
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QInputDialog

from app.confidence import BAND_COLORS, LOW_BACKGROUND, tail_color
from app.review.page import ReviewPanel
from app.review.view import ReviewView
from app.transcript import TranscriptView
from engine.library.store import Store
from engine.results import Char, Segment, renamed_speakers


def chars(text: str, start: float, confidence: float = 0.95) -> tuple[Char, ...]:
    return tuple(
        Char(t, start + 0.1 * k, start + 0.1 * k + 0.08, confidence) for k, t in enumerate(text)
    )


def seg(i: int, text: str, speaker: int | None) -> Segment:
    cs = chars(text, float(i))
    return Segment(i, cs[0].start, cs[-1].end, cs, speaker)


SEGMENTS = [seg(0, "你好", 0), seg(1, "谢谢医生", 1), seg(2, "不客气", 0)]


def make_view(qtbot, cls=TranscriptView):
    v = cls()
    qtbot.addWidget(v)
    v.resize(700, 400)
    v.show()
    return v


def aligned(view: TranscriptView) -> bool:
    """Whether every committed character's position holds its text in the document."""
    text = view.toPlainText().encode("utf-16-le")
    return all(
        text[2 * view._starts[i] :].decode("utf-16-le").startswith(c.text)
        for i, c in enumerate(view.chars)
    )


def selected(view: TranscriptView, first: int, last: int) -> str:
    view.select_chars(first, last)
    return view.textCursor().selectedText()


@pytest.mark.parametrize("name", ["王𠮷", "小明😀"])
def test_a_name_outside_the_bmp_keeps_the_characters_in_place(qtbot, name):
    view = make_view(qtbot)
    view.set_segments(SEGMENTS)
    view.set_speaker_names({0: name})
    assert aligned(view)
    assert selected(view, 2, 5) == "谢谢医生"
    view.set_speaker_names({0: "张"})  # and back to a short one
    assert aligned(view) and selected(view, 6, 8) == "不客气"


def test_a_review_fix_after_an_emoji_name_replaces_the_right_text(qtbot):
    view = make_view(qtbot, ReviewView)
    view.set_segments(SEGMENTS)
    view.set_speaker_names({0: "小明😀"})
    view.replace_chars(2, 6, chars("谢谢大夫", 1.0, 1.0))
    assert view.toPlainText().split("\n")[:3] == [
        "小明😀：你好",
        "说话人 2：谢谢大夫",
        "小明😀：不客气",
    ]


def test_a_review_fix_of_a_span_ending_outside_the_bmp_keeps_the_rest_in_place(qtbot):
    """ReviewView.replace_chars measured the span's end by Python length: a span ending in 😀
    left every later character one position off."""
    view = make_view(qtbot, ReviewView)
    view.set_segments([seg(0, "吉😀谢谢你", 0)])
    view.replace_chars(0, 2, chars("好", 0.0, 1.0))
    assert view.toPlainText().startswith("说话人 1：好谢谢你")
    assert aligned(view) and selected(view, 1, 3) == "谢谢你"


def test_characters_outside_the_bmp_select_color_and_punctuate(qtbot):
    view = make_view(qtbot)
    view.set_segments([seg(0, "吉𠮷祥😀好", 0)])
    assert aligned(view)
    assert selected(view, 2, 4) == "祥😀好" and selected(view, 1, 1) == "𠮷"
    view.set_marks(0, [replace(c, after="，") for c in view.chars[:2]])
    assert view.toPlainText().startswith("说话人 1：吉，𠮷，祥😀好")
    assert aligned(view) and selected(view, 3, 4) == "😀好"
    view.set_threshold(0.99)  # recolor: every character is now doubtful, to its last unit
    cursor = QTextCursor(view.document())
    for i in range(len(view.chars)):
        cursor.setPosition(view._char_end(i) - len(view.chars[i].after))
        assert cursor.charFormat().background().color().name() == LOW_BACKGROUND
    view.apply_update((), (*chars("😀", 5.0), *chars("吉", 5.1, 0.2)))  # a sure one, a doubtful one
    assert view.toPlainText().endswith("😀吉")
    assert view.tail_format(1).foreground().color().name() == tail_color(BAND_COLORS["low"])


def test_a_pasted_name_of_two_lines_is_one_label(qtbot):
    view = make_view(qtbot)
    view.set_segments(SEGMENTS)
    view.set_speaker_names(renamed_speakers({}, 0, "王医生\n(主治)"))
    assert view.speaker_labels() == [
        (0, "王医生 (主治)："),
        (1, "说话人 2："),
        (0, "王医生 (主治)："),
    ]
    view.set_speaker_names({0: "张"})
    assert view.toPlainText() == "张：你好\n说话人 2：谢谢医生\n张：不客气\n"
    # a two-line name stored before the rule is shown on one line too
    view.set_speaker_names({0: "王医生\n(主治)"})
    assert view.speaker_labels()[0] == (0, "王医生 (主治)：")


@pytest.fixture
def panel(qtbot, tmp_path: Path):
    with Store(tmp_path / "t.db") as store:
        segments = [seg(0, "头发很长", 0), seg(1, "发展很快", 1)]
        tid = store.add_transcript(segments)
        store.rename_speaker(tid, 1, "张医生")
        p = ReviewPanel(store, FakePlayer())
        qtbot.addWidget(p)
        p.show()
        p.open(tid)
        yield p


def test_review_in_traditional_shows_the_labels_in_traditional(panel, tmp_path, monkeypatch):
    panel.script_box.setCurrentIndex(panel.script_box.findData("traditional"))
    assert panel.view.speaker_labels() == [(0, "說話人 1："), (1, "張醫生：")]
    exported = panel.export(tmp_path / "out.txt").read_text(encoding="utf-8")
    assert "說話人 1：頭髮很長" in exported and "張醫生：發展很快" in exported
    # the rename box shows the label; taken as it is, nothing is renamed
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (k["text"], True))
    panel.ask_rename_speaker(0)
    panel.ask_rename_speaker(1)
    assert panel.session.speaker_names == {1: "张医生"}
    panel.rename_speaker(0, "李医生")  # a rename is shown in the display script too
    assert panel.view.speaker_labels()[0] == (0, "李醫生：")
    assert panel.session.speaker_names == {0: "李医生", 1: "张医生"}
    panel.undo_stack.undo()
    assert panel.view.speaker_labels()[0] == (0, "說話人 1：")
