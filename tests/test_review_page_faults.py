"""Faults found in the review page and its player, each pinned by what a user relies on: a fix
typed but not entered is never thrown away or swapped for the old text, the span in hand stays
in hand (a new threshold, undo, opening the transcript again), and playback says what is wrong
in the UI language."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from app_fakes import FakePlayer
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QTextCursor
from PySide6.QtWidgets import QApplication, QMessageBox
from test_app_review import _chars as chars

from app import i18n
from app.errors import error_text
from app.i18n import tr
from app.review.page import KEYS, ReviewPanel
from engine.audio import AudioError, read_span, write_wav
from engine.library.review import EditOp, audio_window
from engine.library.store import Store, StoreError
from engine.results import Alternative, Char, Segment


def segments() -> list[Segment]:
    a = chars("今添天气好", [0.95, 0.2, 0.95, 0.95, 0.95], 0.0)  # 添 is doubtful (0.2)
    b = chars("我们去公圆", [0.9, 0.9, 0.9, 0.9, 0.4], 2.0)  # 圆 is doubtful (0.4)
    return [Segment(0, 0.0, 1.25, a, speaker=0), Segment(1, 2.0, 3.25, b, speaker=0)]


def three_segments() -> list[Segment]:
    """Three doubtful characters in reading order: 添 (0.45), 圆 (0.2), 式 (0.3)."""
    return [
        Segment(0, 0.0, 1.25, chars("今添天气好", [0.95, 0.45, 0.95, 0.95, 0.95], 0.0)),
        Segment(1, 2.0, 3.25, chars("我们去公圆", [0.9, 0.9, 0.9, 0.9, 0.2], 2.0)),
        Segment(2, 4.0, 5.25, chars("正式开始了", [0.9, 0.3, 0.9, 0.9, 0.9], 4.0)),
    ]


def sine(path: Path, seconds: float) -> Path:
    write_wav(path, (0.2 * np.sin(np.arange(int(seconds * 16_000)) / 7)).astype(np.float32))
    return path


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "data" / "tingxie.db") as s:
        yield s


def open_panel(
    qtbot, store: Store, segs: list[Segment], audio: Path, order: str = "risk"
) -> ReviewPanel:
    """A review of `segs` over `audio`, doubt below 0.5, keys in the fix box."""
    tid = store.add_transcript(segs, audio=audio)
    panel = ReviewPanel(store, FakePlayer())
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    panel.activateWindow()
    panel.confidence_bar.spin.setValue(0.5)
    panel.order_box.setCurrentIndex(panel.order_box.findData(order))
    panel.open(tid)
    panel.fix_edit.setFocus()
    qtbot.waitUntil(panel.fix_edit.hasFocus)  # (the window is activated asynchronously)
    return panel


@pytest.fixture
def panel(qtbot, store: Store, tmp_path: Path) -> ReviewPanel:
    return open_panel(qtbot, store, segments(), sine(tmp_path / "rec.wav", 4))


@pytest.fixture
def in_time_order(qtbot, store: Store, tmp_path: Path) -> ReviewPanel:
    p = open_panel(qtbot, store, three_segments(), sine(tmp_path / "rec.wav", 6), order="time")
    assert [s.text for s in p.spans] == ["添", "圆", "式"]
    return p


def key(qtbot, panel: ReviewPanel, sequence: str) -> None:
    combo = QKeySequence(sequence)[0]
    qtbot.keyClick(panel.fix_edit, combo.key(), combo.keyboardModifiers())


def type_fix(panel: ReviewPanel, text: str) -> None:
    """Type over the span in the fix box, as an input method commits it (no Enter)."""
    panel.fix_edit.selectAll()
    panel.fix_edit.insert(text)


def edits(store: Store, tid: int) -> list[EditOp]:
    ops, head = store.chain(tid)
    return ops[:head]


# ---- 1. Ctrl+Enter with a typed fix ----------------------------------------------------------


def test_ctrl_enter_enters_the_typed_fix_never_the_old_text(qtbot, panel: ReviewPanel, store):
    tid = panel.session.tid
    type_fix(panel, "甜")
    key(qtbot, panel, KEYS["accept"])
    assert edits(store, tid) == [EditOp(0, 1, 2, "甜", "fix")]
    assert [p.text for p in store.verified_pairs(tid)] == ["甜"]  # never the old 添
    key(qtbot, panel, KEYS["accept"])  # nothing typed over 圆: accepted as it is
    assert edits(store, tid)[-1] == EditOp(1, 4, 5, "圆", "accept")


# ---- 2. a new threshold mid-review -----------------------------------------------------------


def test_a_new_threshold_keeps_the_span_in_hand_and_its_typing(
    qtbot, in_time_order: ReviewPanel, store
):
    panel = in_time_order
    key(qtbot, panel, KEYS["next"])
    assert panel.current_span().text == "圆"
    type_fix(panel, "园")
    panel.confidence_bar.spin.setValue(0.4)  # 添 (0.45) is no longer doubtful
    assert [s.text for s in panel.spans] == ["圆", "式"]
    assert panel.current_span().text == "圆" and panel.fix_edit.text() == "园"
    key(qtbot, panel, "Return")
    assert edits(store, panel.session.tid) == [EditOp(1, 4, 5, "园", "fix")]


# ---- 3. redraws and opening another transcript with a fix typed --------------------------------


def test_redraws_keep_a_fix_typed_but_not_entered(qtbot, panel: ReviewPanel):
    type_fix(panel, "甜")
    panel.rename_speaker(0, "王老师")  # a redraw through the undo stack
    assert panel.fix_edit.text() == "甜"
    before = i18n.language()
    try:
        i18n.set_language("en" if before == "zh" else "zh")
        panel.retranslate()
        assert panel.fix_edit.text() == "甜"
    finally:
        i18n.set_language(before)
    panel.script_box.setCurrentIndex(panel.script_box.findData("traditional"))
    assert panel.fix_edit.text() == "甜"
    key(qtbot, panel, KEYS["next"])  # another span: the box holds it
    assert panel.fix_edit.text() == "圓"


@pytest.mark.parametrize(
    "answer", [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Discard,
               QMessageBox.StandardButton.Apply], ids=["cancel", "discard", "apply"],
)  # fmt: skip
def test_opening_another_transcript_asks_about_a_typed_fix(
    qtbot, panel: ReviewPanel, store, tmp_path, monkeypatch, answer
):
    tid = panel.session.tid
    other = store.add_transcript(segments(), audio=sine(tmp_path / "b.wav", 4))
    asked = []

    def question(parent, title, text, buttons, default):
        asked.append(text)
        return answer

    monkeypatch.setattr(QMessageBox, "question", question)
    type_fix(panel, "甜")
    panel.open(other)
    assert len(asked) == 1 and "甜" in asked[0] and "添" in asked[0]
    if answer == QMessageBox.StandardButton.Cancel:  # staying, the typing as it was
        assert panel.session.tid == tid and panel.fix_edit.text() == "甜"
        assert edits(store, tid) == []
        return
    assert panel.session.tid == other
    fixed = [EditOp(0, 1, 2, "甜", "fix")] if answer == QMessageBox.StandardButton.Apply else []
    assert edits(store, tid) == fixed
    panel.open(tid)  # nothing typed in `other`: no question
    assert len(asked) == 1


# ---- 4. undo returns to the span it undid ------------------------------------------------------


def test_undo_and_redo_return_to_the_span_that_decision_covered(
    qtbot, in_time_order: ReviewPanel, store
):
    panel = in_time_order
    key(qtbot, panel, KEYS["next"])
    key(qtbot, panel, KEYS["next"])
    type_fix(panel, "事")
    key(qtbot, panel, "Return")
    assert [s.text for s in panel.spans] == ["添", "圆"]
    key(qtbot, panel, KEYS["previous"])
    key(qtbot, panel, KEYS["previous"])
    assert panel.current_span().text == "添"
    key(qtbot, panel, KEYS["undo"])  # the fix of 式 undone: 式 is in hand again
    assert panel.current_span().text == "式" and panel.fix_edit.text() == "式"
    key(qtbot, panel, KEYS["previous"])
    key(qtbot, panel, KEYS["previous"])
    key(qtbot, panel, KEYS["redo"])  # made again: where it was made, the span after it
    assert [s.text for s in panel.spans] == ["添", "圆"]
    assert panel.current_span().text == "圆"
    key(qtbot, panel, KEYS["undo"])
    key(qtbot, panel, "Return")  # accepting what is on screen accepts the undone span
    assert edits(store, panel.session.tid)[-1] == EditOp(2, 1, 2, "式", "accept")


# ---- 5. opening the open transcript again ------------------------------------------------------


def test_reopening_the_open_transcript_keeps_its_undo_history(qtbot, panel: ReviewPanel, store):
    tid = panel.session.tid
    panel.fix_span("甜")
    type_fix(panel, "园")
    panel.open(tid)  # double-clicked in the library again
    assert panel.undo_stack.canUndo() and panel.fix_edit.text() == "园"
    panel.undo_stack.undo()
    assert store.segments(tid)[0].text == "今添天气好"


# ---- 6-8. playback past the end, of a zero-length character, in the UI language ----------------


def test_read_span_just_past_the_end_says_so(tmp_path):
    path = sine(tmp_path / "short.wav", 2.9)
    with pytest.raises(AudioError) as excinfo:
        read_span(path, 3.0, 3.2)  # within the read padding of the end, yet after it
    assert excinfo.value.code == "audio.span_after_end"


@pytest.fixture
def sound(monkeypatch) -> list[int]:
    """sounddevice's output, recorded: the lengths of what was played."""
    import sounddevice as sd

    played: list[int] = []
    monkeypatch.setattr(sd, "play", lambda data, samplerate: played.append(len(data)))
    monkeypatch.setattr(sd, "stop", lambda: None)
    return played


@pytest.mark.parametrize("speed", [1.0, 1.5])
def test_a_span_past_the_end_of_the_audio_is_reported_as_such(qtbot, tmp_path, sound, speed):
    from app.review.player import SoundDevicePlayer

    path = sine(tmp_path / "short.wav", 2.9)  # the recording replaced by a shorter one
    player = SoundDevicePlayer()
    with qtbot.waitSignal(player.failed, timeout=5000) as failed:
        player.play(str(path), 3.0, 3.2, speed)
    with pytest.raises(AudioError) as excinfo:
        read_span(path, 3.0, 3.2)
    assert failed.args[0] == error_text(excinfo.value) and sound == []


def test_a_span_after_the_end_heard_with_its_context_says_so(qtbot, panel: ReviewPanel):
    audio = str(panel.store.audio_path(panel.session.tid))
    panel.player.loaded.emit(0.0, np.zeros(12_000, np.float32))  # 添 (0.25-0.45 s) is in it
    assert panel.status.text() == ""
    key(qtbot, panel, KEYS["next"])  # 圆, 3.0-3.2 s: the recording (replaced) ends at 2.9 s
    assert panel.player.calls[-1][1:3] == (2.7, 3.5)
    panel.player.loaded.emit(2.7, np.zeros(3200, np.float32))  # the context before it, alone
    error = AudioError("audio.span_after_end", path=audio, start=3.0, end=3.2, duration=2.9)
    assert panel.status.text() == tr("review.play_failed", message=error_text(error))


def test_audio_window_widens_a_window_too_short_to_hear():
    assert audio_window(0.25, 0.25, 0.0) == pytest.approx((0.225, 0.275))  # centred
    assert audio_window(0.0, 0.0, 0.0) == pytest.approx((0.0, 0.05))
    assert audio_window(2.0, 2.0, 0.0, duration=2.0) == pytest.approx((1.95, 2.0))
    assert audio_window(3.5, 3.5, 0.0, duration=2.9)[0] >= 2.9  # past the end stays so
    assert audio_window(1.0, 2.0, 0.0) == (1.0, 2.0)


def test_a_zero_length_character_plays_with_no_context(qtbot, store, tmp_path):
    a = (Char("今", 0.0, 0.25, 0.9), Char("添", 0.25, 0.25, 0.2), Char("天", 0.25, 0.5, 0.9))
    panel = open_panel(qtbot, store, [Segment(0, 0.0, 0.5, a)], sine(tmp_path / "r.wav", 1))
    panel.margin_spin.setValue(0.0)
    key(qtbot, panel, KEYS["play"])
    _, lo, hi, _ = panel.player.calls[-1]
    assert (lo, hi) == pytest.approx((0.225, 0.275))
    assert len(read_span(panel.store.audio_path(panel.session.tid), lo, hi)) == 800


def test_playback_errors_are_worded_in_the_ui_language(qtbot, tmp_path, monkeypatch, sound):
    import sounddevice as sd

    from app.review.player import SoundDevicePlayer

    assert i18n.language() == "zh"
    player = SoundDevicePlayer()
    gone = tmp_path / "gone.wav"
    with qtbot.waitSignal(player.failed, timeout=5000) as failed:
        player.play(str(gone), 0.0, 1.0)
    with pytest.raises(AudioError) as excinfo:
        read_span(gone, 0.0, 1.0)
    assert failed.args[0] == error_text(excinfo.value) and "文件不存在" in failed.args[0]

    def no_output(data, samplerate):
        raise sd.PortAudioError("no default output device")

    monkeypatch.setattr(sd, "play", no_output)
    with qtbot.waitSignal(player.failed, timeout=5000) as failed:
        player.play(str(sine(tmp_path / "rec.wav", 1)), 0.0, 0.25)
    assert failed.args[0] == tr("player.no_output", detail="no default output device")
    assert "声音设置" in failed.args[0]


# ---- 9. alternatives that read alike in the display script -------------------------------------


def test_alternatives_are_listed_once_as_displayed(qtbot, store, tmp_path):
    a = (
        Char("我", 0.0, 0.2, 0.9),
        Char("在", 0.25, 0.45, 0.3, (Alternative("于", 0.3), Alternative("於", 0.2))),
        Char("家", 0.5, 0.7, 0.9),
    )
    panel = open_panel(qtbot, store, [Segment(0, 0.0, 0.75, a)], sine(tmp_path / "r.wav", 1))
    assert panel.choices == ["于", "於"]  # as stored, both differ
    panel.script_box.setCurrentIndex(panel.script_box.findData("traditional"))
    assert panel.choices == ["于"] and panel.alternatives_label.text().count("Alt+") == 1
    key(qtbot, panel, "Alt+1")
    assert store.segments(panel.session.tid)[0].text == "我于家"

    # an alternative that reads as the span itself is no choice
    b = (Char("于", 0.0, 0.2, 0.3, (Alternative("於", 0.3),)), Char("是", 0.25, 0.45, 0.9))
    other = store.add_transcript([Segment(0, 0.0, 0.5, b)], audio=sine(tmp_path / "s.wav", 1))
    panel.open(other)
    assert panel.choices == []
    assert panel.alternatives_label.text() == tr("review.no_alternatives")


# ---- 9-12. the page on a small screen, with nothing open, and the library's headers ----------


@pytest.fixture(params=["zh", "en"])
def each_language(request):
    """The test runs in Chinese, then English (the language is restored after it)."""
    before = i18n.language()
    i18n.set_language(request.param)
    yield request.param
    i18n.set_language(before)


def test_the_review_page_fits_a_1024_px_screen(qtbot, panel: ReviewPanel, each_language):
    """Old: one row held every button, each with its key: the page needed 1103 px (zh) and
    1188 px (en), so on a 1024 px screen the window's right side was off the screen. Now the
    decisions keep their row and keys; History…, Export…, Copy text and Make training set…
    sit beside the status line, their keys in their tooltips; every key still works."""
    panel.retranslate()
    QApplication.processEvents()  # the layout's pending update
    panel.status.setText(" ".join([tr("review.none_open")] * 4))  # a long message beside them
    assert panel.minimumSizeHint().width() <= 1000
    for name in ("previous", "play", "next", "accept", "undo", "redo"):
        assert f"({KEYS[name]})" in panel._buttons[name].text()
    for name in ("history", "copy", "make_dataset"):
        assert panel._buttons[name].toolTip().endswith(f"({KEYS[name]})")
        assert panel.actions_by_name[name].shortcut() == QKeySequence(KEYS[name])


def test_with_nothing_open_the_actions_are_greyed_out_and_say_why(qtbot, store, each_language):
    """Old: with no transcript open every button was enabled and a click did nothing at all.
    Now they are greyed out, their tooltip says to open a transcript from the Library first,
    and they come back when one opens."""
    panel = ReviewPanel(store, FakePlayer())
    qtbot.addWidget(panel)
    panel.retranslate()
    why = tr("review.open_first")
    assert tr("page.library") in why
    for name, button in panel._buttons.items():
        assert not button.isEnabled() and not panel.actions_by_name[name].isEnabled(), name
        assert button.toolTip() == why
    assert not panel.view.check_again_action.isEnabled()
    panel.open(store.add_transcript(segments(), audio=sine(store.path.parent / "a.wav", 4)))
    for name, button in panel._buttons.items():
        assert button.isEnabled() and panel.actions_by_name[name].isEnabled(), name
        assert button.toolTip() != why
    assert panel.view.check_again_action.isEnabled()
    panel.close_transcript()
    assert not any(b.isEnabled() for b in panel._buttons.values())


def test_a_training_set_being_built_keeps_its_button_greyed_out(
    qtbot, panel, store, monkeypatch, dialogs
):
    """One build at a time: the button follows its action, also across opening another
    transcript while the build runs."""
    monkeypatch.setattr(panel, "_ask_dataset_name", lambda: "set")
    panel._dataset_dialog()
    assert not panel._buttons["make_dataset"].isEnabled()
    panel.open(store.add_transcript(segments(), audio=None))
    assert not panel.actions_by_name["make_dataset"].isEnabled()
    panel.show_dataset_failed(RuntimeError("x"))
    assert panel._buttons["make_dataset"].isEnabled()


def test_the_order_box_is_as_wide_as_its_longest_choice(qtbot, panel: ReviewPanel, each_language):
    """Old: the box kept the width of its first texts; in English at the small window size
    it read "Lowest confider". Now it sizes to its contents, also after a language switch, and
    a small window does not squeeze it."""
    i18n.set_language("zh" if each_language == "en" else "en")
    panel.retranslate()
    i18n.set_language(each_language)
    panel.retranslate()
    QApplication.processEvents()  # the layout's pending update
    panel.resize(panel.minimumSizeHint())  # the smallest window
    QApplication.processEvents()
    for box in (panel.order_box, panel.script_box):
        metrics = box.fontMetrics()
        widest = max(metrics.horizontalAdvance(box.itemText(i)) for i in range(box.count()))
        assert box.width() >= box.sizeHint().width() > widest


def test_no_library_heading_reads_as_the_start_of_another(each_language):
    """Old: the edit count's heading "修改" read as the start of "修改时间" beside it."""
    keys = ("title", "date", "duration", "edits", "text")
    headings = [tr(f"library.{k}") for k in keys]
    assert not [(a, b) for a in headings for b in headings if a != b and b.startswith(a)]


# ---- 13-18. the hunt of the Review page's new features (/tmp/s45/h7/findings.md) --------------


def two_terms() -> list[Segment]:
    """公圆 doubtful in both segments: a fix of one offers to fix the other."""
    return [
        Segment(0, 0.0, 1.5, chars("去公圆玩了", [0.9, 0.3, 0.3, 0.9, 0.9], 0.0)),
        Segment(1, 2.0, 3.5, chars("在公圆里面", [0.9, 0.3, 0.3, 0.9, 0.9], 2.0)),
    ]


@pytest.fixture
def asked(monkeypatch) -> list[str]:
    """Every question the page asks, answered Apply."""
    questions: list[str] = []

    def question(parent, title, text, *args):
        questions.append(text)
        return QMessageBox.StandardButton.Apply

    monkeypatch.setattr(QMessageBox, "question", question)
    return questions


def test_fix_all_leaves_a_place_typed_over_to_the_user(qtbot, store, tmp_path, asked):
    """Old: 公元 typed over the first 公圆 (not entered, the user moved on), then 公园 entered
    at the second: "fix all" offered the first and replaced it, the typing lost unasked and
    the place stored as unchecked text. Now a place typed over is not offered, nor changed
    when something is typed over it after the offer; the typing is asked about at close."""
    panel = open_panel(qtbot, store, two_terms(), sine(tmp_path / "r.wav", 4), order="time")
    tid = panel.session.tid
    type_fix(panel, "公元")
    key(qtbot, panel, KEYS["next"])
    type_fix(panel, "公园")
    key(qtbot, panel, "Return")
    assert panel._fix_all is None and not panel.fix_all_action.isEnabled()
    assert panel.settle_typing() and len(asked) == 1 and "公元" in asked[0]
    assert [s.text for s in store.segments(tid)] == ["去公元玩了", "在公园里面"]
    assert [op.kind for op in edits(store, tid)] == ["fix", "fix"]


def test_fix_all_leaves_a_place_typed_over_after_the_offer(qtbot, store, tmp_path):
    """Offered first, typed over afterwards (in hand now): Fix all leaves that place alone."""
    panel = open_panel(qtbot, store, two_terms(), sine(tmp_path / "r.wav", 4))
    tid = panel.session.tid
    type_fix(panel, "公园")
    key(qtbot, panel, "Return")
    assert len(panel._fix_all.ops) == 1
    type_fix(panel, "公元")  # over the other 公圆
    key(qtbot, panel, KEYS["fix_all"])
    assert [op.kind for op in edits(store, tid)] == ["fix"] and panel.fix_edit.text() == "公元"


def test_a_span_grown_by_the_threshold_keeps_the_typing(qtbot, store, tmp_path, asked):
    """Old: 甜 typed over 添 (not entered); a higher threshold merged 添天 into one span and
    the box showed 添天: Ctrl+Enter accepted the old text, and 甜 was asked about at close
    and applied over it. Now the typing stays in the box, with the span's other characters."""
    segs = [
        Segment(0, 0.0, 1.5, chars("今添天气好", [0.9, 0.3, 0.45, 0.9, 0.9], 0.0)),
        Segment(1, 2.0, 3.5, chars("我们去公圆", [0.9, 0.9, 0.9, 0.9, 0.2], 2.0)),
    ]
    panel = open_panel(qtbot, store, segs, sine(tmp_path / "r.wav", 4), order="time")
    panel.confidence_bar.spin.setValue(0.4)
    assert [s.text for s in panel.spans] == ["添", "圆"]
    type_fix(panel, "甜")
    key(qtbot, panel, KEYS["next"])
    panel.confidence_bar.spin.setValue(0.5)
    assert [s.text for s in panel.spans] == ["添天", "圆"]
    key(qtbot, panel, KEYS["previous"])
    assert panel.current_span().text == "添天" and panel.fix_edit.text() == "甜天"
    key(qtbot, panel, KEYS["accept"])
    assert edits(store, panel.session.tid) == [EditOp(0, 1, 3, "甜天", "fix")]
    assert panel.settle_typing() and asked == []


def test_opening_a_transcript_deleted_elsewhere_says_so_in_the_ui_language(
    qtbot, store, each_language
):
    """Old: the status line read 'transcript 9999 is not in the store', in English and in
    quotes, also in the Chinese UI."""
    panel = ReviewPanel(store, FakePlayer())
    qtbot.addWidget(panel)
    panel.open(9999)
    error = StoreError("store.no_transcript", path=store.path, id=9999)
    assert panel.status.text() == error_text(error)
    assert "not in the store" not in panel.status.text()


def test_play_is_greyed_out_without_a_recording_and_says_why(qtbot, store, each_language):
    """Old: Play (Ctrl+L) was enabled for a transcript stored without its recording, and a
    click did nothing at all."""
    panel = ReviewPanel(store, FakePlayer())
    qtbot.addWidget(panel)
    panel.retranslate()
    panel.open(store.add_transcript(segments(), audio=None))
    assert not panel._buttons["play"].isEnabled()
    assert not panel.actions_by_name["play"].isEnabled()
    assert panel._buttons["play"].toolTip() != tr("review.open_first")
    assert panel._buttons["play"].toolTip() == tr("review.no_recording")
    assert panel._buttons["next"].isEnabled() and panel._buttons["accept"].isEnabled()
    panel.open(store.add_transcript(segments(), audio=sine(store.path.parent / "a.wav", 4)))
    assert panel._buttons["play"].isEnabled()
    assert panel._buttons["play"].toolTip() == f"{tr('action.play_span')} ({KEYS['play']})"


def test_closing_a_deleted_transcript_clears_its_waveform(qtbot, panel: ReviewPanel):
    """Old: after the open transcript was deleted from the Library, the page was empty but
    the waveform still shaded the deleted recording's span."""
    panel.player.loaded.emit(0.0, np.zeros(12_000, np.float32))
    assert panel.waveform.region.isVisible() and len(panel.waveform.curve.getData()[0])
    panel.close_transcript()
    assert not panel.waveform.region.isVisible() and not panel.waveform.cursor.isVisible()
    x, _ = panel.waveform.curve.getData()
    assert x is None or len(x) == 0


def test_check_again_across_two_paragraphs_says_what_is_in_hand(
    qtbot, store, tmp_path, each_language
):
    """Old: 玩了 + 在公 selected over two paragraphs, Check again put 玩了 in hand and said
    nothing of 在公. Now the status line says only 玩了 is in hand and how to check the rest."""
    panel = open_panel(qtbot, store, two_terms(), sine(tmp_path / "r.wav", 4))
    view = panel.view
    cursor = QTextCursor(view.document())
    cursor.setPosition(view._starts[3])
    view.setTextCursor(cursor)
    view.setFocus()
    for _ in range(4):  # 玩了 and, past the paragraph's end, 在公
        qtbot.keyClick(view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert view.picked is not None and view.picked[1] > 5
    panel.check_again()
    assert panel.current_span().text == "玩了" and "玩了" in panel.status.text()
    want = tr("review.check_again_clipped", text="玩了", keys=KEYS["check_again"])
    assert panel.status.text() == want
    assert "Ctrl+Shift+R" in want


def long_doubt(copies: int) -> list[Segment]:
    """`copies` segments of one sentence whose 22 middle characters are doubtful, each with
    two 5-character alternatives: nine choices of 26 characters."""
    text = "我们今天在人工智能研究院讨论了深度学习模型的量化部署和推理加速方案以及后续工作安排"
    alternatives = (Alternative("院长研究员", 0.3), Alternative("量子计算机", 0.2))
    segs = []
    for k in range(copies):
        cs = tuple(
            Char(t, 5.0 * k + 0.1 * i, 5.0 * k + 0.1 * i + 0.08, 0.2, alternatives)
            if 5 <= i < 27
            else Char(t, 5.0 * k + 0.1 * i, 5.0 * k + 0.1 * i + 0.08, 0.9)
            for i, t in enumerate(text)
        )
        segs.append(Segment(k, 5.0 * k, 5.0 * k + 0.1 * len(text), cs))
    return segs


@pytest.mark.parametrize("offer", [False, True], ids=["alone", "with_fix_all"])
def test_every_choice_of_a_long_span_is_readable_on_a_small_screen(
    qtbot, store, tmp_path, each_language, offer
):
    """Old: at 1024×640 a 22-character doubtful span showed Alt+1…6 and part of Alt+7; Alt+8
    and Alt+9 picked text nobody could see, and beside the fix-all offer only part of Alt+1
    showed, a fourth line half drawn. Now each choice shows what it changes (its tooltip
    lists them whole), all nine within the line's height, and the offer sits by the fix box."""
    panel = open_panel(qtbot, store, long_doubt(2 if offer else 1), sine(tmp_path / "r.wav", 9))
    panel.retranslate()
    panel.resize(1024, 640)
    if offer:
        type_fix(panel, "人工智能研究院讨论了深度学习模型的量化部署与")
        key(qtbot, panel, "Return")
        assert panel.fix_all_button.isVisible()
    QApplication.processEvents()  # the layout's pending update
    label = panel.alternatives_label
    assert len(panel.choices) == 9 and "Alt+9" in label.text()
    assert label.heightForWidth(label.width()) <= label.height()  # nothing cut off
    assert panel.minimumSizeHint().width() <= 1000
    tip = label.toolTip().splitlines()
    assert tip == [f"Alt+{i}: {c}" for i, c in enumerate(panel.choices, start=1)]
    assert "人工院长研究员能研…" in label.text()  # 智 → 院长研究员, with two characters either side


def test_a_read_failing_unexpectedly_leaves_playback_working(qtbot, monkeypatch):
    """The player's one reading thread caught OSError and ValueError only: a decoder's own
    error (PyAV's BugError is a RuntimeError) ended the thread with its slot still taken, so
    every later play and preview waited for good, silently. Now that read fails, says so, and
    the next is read."""
    import numpy as np

    import engine.audio
    from app.review.player import SoundDevicePlayer

    calls = []

    def read(path, start, end):
        calls.append(start)
        if len(calls) == 1:
            raise RuntimeError("decoder bug")
        return np.zeros(round((end - start) * 16_000), np.float32)

    monkeypatch.setattr(engine.audio, "read_span", read)
    player = SoundDevicePlayer()
    failed, loaded = [], []
    player.failed.connect(failed.append)
    player.loaded.connect(lambda start, samples: loaded.append(start))
    player.play("talk.mp3", 1.0, 2.0)
    qtbot.waitUntil(lambda: bool(failed), timeout=5000)
    assert "talk.mp3" in failed[0] and "decoder bug" in failed[0]
    player.preview("talk.mp3", 3.0, 4.0)
    qtbot.waitUntil(lambda: loaded == [3.0], timeout=5000)
