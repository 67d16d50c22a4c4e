"""The transcript view: colors per confidence band, threshold changes, the streaming tail, hover."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QTextCursor

from app.confidence import BAND_COLORS, LOW_BACKGROUND, tail_color
from app.transcript import ConfidenceBar, TranscriptView
from engine.results import Alternative, Char, Segment


@pytest.fixture(autouse=True)
def _chinese_ui_after_each_test():
    """Tests switch the UI language; leave the default (Chinese) for whatever runs next."""
    yield
    from app import i18n

    i18n.set_language("zh")


def _chars(text: str, confidences: list[float], start: float = 0.0) -> list[Char]:
    return [
        Char(t, start + 0.1 * i, start + 0.1 * i + 0.08, c, (Alternative("一", 0.05),))
        for i, (t, c) in enumerate(zip(text, confidences, strict=True))
    ]


def _color(fmt) -> str:
    return fmt.foreground().color().name()


@pytest.fixture
def view(qtbot):
    v = TranscriptView()
    qtbot.addWidget(v)
    v.resize(600, 300)
    v.show()
    v.set_threshold(0.6)
    return v


def test_each_character_colored_by_band(view):
    view.append_segment(Segment(0, 0, 0.5, tuple(_chars("今天天气", [0.95, 0.7, 0.3, 0.81]))))
    assert view.toPlainText() == "今天天气\n"
    colors = [_color(view.char_format(i)) for i in range(4)]
    assert colors == [BAND_COLORS[b] for b in ("high", "medium", "low", "high")]
    assert view.char_format(2).background().color() == QColor(LOW_BACKGROUND)
    assert view.char_format(0).background().style() == Qt.BrushStyle.NoBrush


def test_moving_the_threshold_recolors_everything(view):
    view.append_segment(Segment(0, 0, 0.5, tuple(_chars("今天", [0.95, 0.7]))))
    view.apply_update(_chars("天气", [0.3, 0.5], start=1.0), _chars("很", [0.9], start=2.0))
    view.set_threshold(0.2)  # bands: low < 0.2 <= medium < 0.6 <= high
    assert [_color(view.char_format(i)) for i in range(4)] == [
        BAND_COLORS["high"],
        BAND_COLORS["high"],
        BAND_COLORS["medium"],
        BAND_COLORS["medium"],
    ]
    view.set_threshold(0.96)  # everything is doubtful now
    assert {_color(view.char_format(i)) for i in range(4)} == {BAND_COLORS["low"]}
    assert _color(view.tail_format(0)) == tail_color(BAND_COLORS["low"])
    assert view.threshold == 0.96


def test_tail_is_lighter_and_replaced_while_committed_text_stays(view):
    view.apply_update(_chars("你好", [0.9, 0.9]), _chars("世", [0.9], start=0.2))
    assert view.toPlainText() == "你好世"
    fmt = view.tail_format(0)
    assert fmt.fontItalic()
    assert _color(fmt) == tail_color(BAND_COLORS["high"])
    assert not view.char_format(1).fontItalic()
    view.apply_update(_chars("世", [0.9], start=0.2), _chars("界啊", [0.2, 0.9], start=0.3))
    assert view.toPlainText() == "你好世界啊"
    assert [c.text for c in view.chars] == ["你", "好", "世"]
    assert [c.text for c in view.tail] == ["界", "啊"]
    assert _color(view.tail_format(0)) == tail_color(BAND_COLORS["low"])
    view.apply_update((), ())
    view.end_segment()
    view.apply_update(_chars("再见", [0.9, 0.9], start=3.0), ())
    assert view.toPlainText() == "你好世\n再见"
    view.set_segments([Segment(0, 0, 1, tuple(_chars("好", [0.1])))])
    assert view.toPlainText() == "好\n" and len(view.chars) == 1


def test_a_space_in_the_tail_is_shown_and_the_characters_after_it_stay_found(view):
    """Whisper's tail carries the space between two English words on a letter's `after`: it
    read "DeepLearning" until committed, and the positions after it were off by one."""
    deep = [Char(t, 0.1 * i, 0.1 * i + 0.08, 0.9) for i, t in enumerate("Deep")]
    deep[-1] = Char("p", 0.3, 0.38, 0.9, after=" ")
    learn = [Char(t, 0.5 + 0.1 * i, 0.58 + 0.1 * i, 0.2) for i, t in enumerate("Le")]
    view.apply_update(_chars("学", [0.9]), deep + learn)
    assert view.toPlainText() == "学Deep Le"
    assert _color(view.tail_format(4)) == tail_color(BAND_COLORS["low"])  # "L", after the space
    assert _color(view.tail_format(3)) == tail_color(BAND_COLORS["high"])


def _center_of(view: TranscriptView, pos: int) -> QPoint:
    cursor = QTextCursor(view.document())
    cursor.setPosition(pos)
    left = view.cursorRect(cursor)
    cursor.setPosition(pos + 1)
    right = view.cursorRect(cursor)
    return QPoint((left.left() + right.left()) // 2, left.center().y())


def test_hit_testing_finds_the_character_under_the_mouse(view, qtbot):
    view.append_segment(Segment(0, 0, 0.5, tuple(_chars("今天天气", [0.95, 0.7, 0.3, 0.8]))))
    view.apply_update((), _chars("好", [0.5], start=1.0))
    assert view.char_point(2) == _center_of(view, 2)
    hit = view.char_at(view.char_point(2))
    assert hit is not None and hit[1] == 2 and hit[0].confidence == 0.3
    tail_hit = view.char_at(_center_of(view, 5))  # after the paragraph break
    assert tail_hit is not None and tail_hit[0].text == "好" and tail_hit[1] is None
    assert view.char_at(QPoint(590, 290)) is None  # empty space below the text
    with qtbot.waitSignal(view.char_clicked) as clicked:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=_center_of(view, 1))
    assert clicked.args == [1]


def test_select_chars_selects_the_span(view):
    view.append_segment(Segment(0, 0, 0.5, tuple(_chars("今天天气", [0.9] * 4))))
    view.select_chars(1, 2)
    assert view.textCursor().selectedText() == "天天"


def test_confidence_bar_legend_follows_threshold(qtbot):
    from app import i18n

    i18n.set_language("en")
    bar = ConfidenceBar(0.6)
    qtbot.addWidget(bar)
    with qtbot.waitSignal(bar.threshold_changed) as changed:
        bar.spin.setValue(0.4)
    assert changed.args == [pytest.approx(0.4)]
    texts = [label.text() for label in bar._swatches.values()]
    assert any("≥ 70%" in t for t in texts) and any("< 40%" in t for t in texts)
    i18n.set_language("zh")


def test_hovering_a_character_shows_its_tooltip(view, qtbot):
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QApplication, QToolTip

    from app import i18n

    i18n.set_language("en")
    view.append_segment(Segment(0, 0, 0.5, tuple(_chars("今天", [0.95, 0.42]))))
    point = _center_of(view, 1)
    event = QHelpEvent(QEvent.Type.ToolTip, point, view.viewport().mapToGlobal(point))
    QApplication.sendEvent(view.viewport(), event)
    text = QToolTip.text()
    assert "天" in text and "42%" in text and "0.10–0.18 s" in text and "一 5%" in text
    i18n.set_language("zh")


def test_segment_break_lands_after_the_segments_last_character(view):
    view.apply_update(_chars("你好世界", [0.9, 0.9, 0.3, 0.9]), _chars("啊", [0.9], start=1.0))
    view.end_segment(2)  # the pause came after 好; 世界 were committed in the same update
    assert view.toPlainText() == "你好\n世界啊"
    assert _color(view.char_format(2)) == BAND_COLORS["low"]  # positions still line up
    assert view.tail_format(0).fontItalic()
    view.end_segment(2)  # the same break again changes nothing
    assert view.toPlainText() == "你好\n世界啊"
    view.apply_update(_chars("吗", [0.9], start=1.0), ())
    view.end_segment(5)
    view.apply_update(_chars("好", [0.9], start=2.0), ())
    assert view.toPlainText() == "你好\n世界吗\n好"
    view.select_chars(2, 4)
    assert view.textCursor().selectedText() == "世界吗"


def _marked(text: str, confidences: list[float], after: str, start: float = 0.0) -> list[Char]:
    """`_chars` whose last character carries the mark `after`."""
    chars = _chars(text, confidences, start)
    last = chars[-1]
    chars[-1] = Char(last.text, last.start, last.end, last.confidence, last.alternatives, after)
    return chars


def test_a_transcript_is_shown_in_one_edit_with_no_undo_history(view):
    """A 3 000-segment transcript took seconds to open: every character was its own edit
    (laid out on its own) and its own undo step of this read-only view's document."""
    changes = []
    view.document().contentsChange.connect(lambda *args: changes.append(args))
    segments = [
        Segment(0, 0, 1, tuple(_marked("今天天气", [0.95, 0.7, 0.3, 0.81], "，")), speaker=0),
        Segment(1, 1, 2, tuple(_marked("很好", [0.9, 0.2], "。", start=1.0)), speaker=1),
        Segment(2, 2, 3, tuple(_chars("是吗", [0.65, 0.99], start=2.0)), speaker=1),
    ]
    view.set_segments(segments, {1: "小王"})
    # After the changes of emptying the document, the whole text arrives in one change.
    assert changes[-1] == (0, 0, len(view.toPlainText()))
    assert view.document().availableUndoSteps() == 0
    assert view.toPlainText() == "说话人 1：今天天气，\n小王：很好。\n是吗\n"
    assert view.speaker_labels() == [(0, "说话人 1："), (1, "小王：")]
    chars = [c for s in segments for c in s.chars]
    bands = ["high", "medium", "low", "high", "high", "low", "medium", "high"]
    assert [_color(view.char_format(i)) for i in range(len(chars))] == [
        BAND_COLORS[b] for b in bands
    ]
    for i, char in enumerate(chars):  # each committed character is where the view says
        view.select_chars(i, i)
        assert view.textCursor().selectedText() == char.text
    changes.clear()
    view.apply_update(_chars("对啊", [0.9, 0.3], start=3.0), _chars("呢", [0.9], start=3.2))
    assert len(changes) == 1
    assert view.document().availableUndoSteps() == 0
    assert view.toPlainText() == "说话人 1：今天天气，\n小王：很好。\n是吗\n对啊呢"
    assert _color(view.char_format(9)) == BAND_COLORS["low"]
    assert view.tail_format(0).fontItalic()


def test_the_empty_transcript_says_what_to_do_until_text_arrives(qtbot):
    """The page the app opens on was a blank box: its hint (record, or drop or open files)
    shows while nothing is transcribed, is gone with the first character and back after a
    clear. A view without a hint (Review's) stays blank."""
    from app import i18n
    from app.transcript import start_hint

    hinted, blank = TranscriptView(empty_hint=start_hint), TranscriptView()
    for v in (hinted, blank):
        qtbot.addWidget(v)
        v.resize(600, 300)
        v.show()

    def looks_alike() -> bool:
        return hinted.viewport().grab().toImage() == blank.viewport().grab().toImage()

    assert "录音" in hinted.hint and "拖到这里" in hinted.hint
    assert blank.hint == ""
    assert not looks_alike()  # the hint is painted
    for v in (hinted, blank):
        v.append_segment(Segment(0, 0, 0.5, tuple(_chars("今天", [0.95, 0.95]))))
    assert looks_alike()  # text arrived: the hint is gone
    for v in (hinted, blank):
        v.clear()
    assert not looks_alike()  # back after a clear
    i18n.set_language("en")
    hinted.retranslate()
    assert "Record" in hinted.hint and "drop audio" in hinted.hint
