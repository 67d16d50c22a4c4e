"""The review mode driven by keys, undo/redo with autosave, the library, export, plugging in."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from app_fakes import FakePlayer
from PySide6.QtCore import QPoint, Qt, QThread
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from app.i18n import tr
from app.library import LibraryView
from app.review.page import KEYS, ReviewPanel, format_duration, span_choices
from engine.library import store as store_mod
from engine.library.review import EditOp
from engine.library.store import Store
from engine.results import Alternative, Char, Segment, TranscriptionInfo

ROOT = Path(__file__).resolve().parents[1]


def _chars(text: str, confs: list[float], start: float) -> tuple[Char, ...]:
    return tuple(
        Char(t, start + 0.25 * i, start + 0.25 * i + 0.2, c, (Alternative("天", 0.3),))
        for i, (t, c) in enumerate(zip(text, confs, strict=True))
    )


def segments() -> list[Segment]:
    a = _chars("今添天气好", [0.95, 0.2, 0.95, 0.95, 0.95], 0.0)  # 添 is doubtful (0.2)
    b = _chars("我们去公圆", [0.9, 0.9, 0.9, 0.9, 0.4], 2.0)  # 圆 is doubtful (0.4)
    return [Segment(0, 0.0, 1.25, a), Segment(1, 2.0, 3.25, b)]


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    import numpy as np

    from engine.audio import write_wav

    p = tmp_path / "rec.wav"
    write_wav(p, (0.2 * np.sin(np.arange(4 * 16_000) / 7)).astype(np.float32))
    return p


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "data" / "tingxie.db") as s:
        yield s


@pytest.fixture
def panel(qtbot, store: Store, audio: Path):
    tid = store.add_transcript(segments(), audio=audio)
    player = FakePlayer()
    p = ReviewPanel(store, player)
    qtbot.addWidget(p)
    p.show()
    qtbot.waitExposed(p)
    p.activateWindow()
    p.confidence_bar.spin.setValue(0.5)
    p.open(tid)
    p.fix_edit.setFocus()
    return p


def key(qtbot, panel: ReviewPanel, sequence: str) -> None:
    """Press a shortcut as the user would, with focus in the fix box."""
    from PySide6.QtGui import QKeySequence

    combo = QKeySequence(sequence)[0]
    qtbot.keyClick(panel.fix_edit, combo.key(), combo.keyboardModifiers())


def text_of(store: Store, tid: int) -> str:
    return "".join(s.text for s in store.segments(tid))


def test_keyboard_flow_next_play_fix_accept_alternative(qtbot, panel: ReviewPanel, store, audio):
    tid = panel.session.tid
    player = panel.player
    assert [s.text for s in panel.spans] == ["添", "圆"]  # lowest confidence first
    assert "1/2" in panel.span_label.text()
    assert panel.view.textCursor().selectedText() == "添"

    key(qtbot, panel, KEYS["play"])  # the span with 0.3 s of context each side
    assert player.calls[-1] == (str(audio.resolve()), 0.0, 0.75, 1.0)
    panel.speed_spin.setValue(1.5)
    panel.margin_spin.setValue(0.5)
    key(qtbot, panel, KEYS["next"])  # autoplay of the next span
    assert panel.index == 1 and "2/2" in panel.span_label.text()
    assert player.calls[-1] == (str(audio.resolve()), 2.5, 3.7, 1.5)
    key(qtbot, panel, KEYS["previous"])
    assert panel.current_span().text == "添"
    key(qtbot, panel, KEYS["slower"])
    assert panel.speed_spin.value() == pytest.approx(1.4)
    key(qtbot, panel, KEYS["faster"])
    key(qtbot, panel, KEYS["faster"])
    assert panel.speed_spin.value() == pytest.approx(1.6)

    panel.fix_edit.selectAll()
    panel.fix_edit.insert("甜")  # as an input method commits it (QTest types Latin-1 only)
    qtbot.keyClick(panel.fix_edit, Qt.Key.Key_Return)  # type a fix
    assert text_of(store, tid) == "今甜天气好我们去公圆"  # saved at once
    assert [s.text for s in panel.spans] == ["圆"]
    assert panel.fix_edit.text() == "圆"  # the next span is ready to type over
    assert player.calls[-1][1:3] == (2.5, 3.7)

    assert panel.alternatives_label.text().count("Alt+") == 1
    key(qtbot, panel, "Alt+1")  # the model's alternative for the span
    assert text_of(store, tid) == "今甜天气好我们去公天"
    assert panel.spans == [] and panel.span_label.text() == tr("review.done")
    ops, head = store.chain(tid)
    assert [op.kind for op in ops] == ["fix", "alternative"] and head == 2
    pairs = store.verified_pairs(tid)
    assert [p.text for p in pairs] == ["甜", "天"]


def test_alt_digit_never_types_into_the_fix_box(qtbot, panel: ReviewPanel, store):
    """Alt+digit picks an alternative or does nothing. Old behaviour caught: when no shortcut
    took the key (no such alternative, an input method in between) the fix box typed "1"."""
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QKeyEvent

    tid = panel.session.tid
    assert len(panel.choices) == 1
    key(qtbot, panel, "Alt+2")  # the shortcut exists, the alternative does not
    assert panel.fix_edit.text() == "添" and store.chain(tid)[1] == 0
    # Past the shortcut map, straight to the box (as when an input method forwards it):
    event = QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_1, Qt.KeyboardModifier.AltModifier, "1")
    panel.fix_edit.keyPressEvent(event)
    assert panel.fix_edit.text() == "添" and store.chain(tid)[1] == 0
    qtbot.keyClicks(panel.fix_edit, "1")  # a plain digit is still typing
    assert panel.fix_edit.text() == "1"


def test_accept_undo_redo_by_keys_are_saved(qtbot, panel: ReviewPanel, store):
    tid = panel.session.tid
    key(qtbot, panel, KEYS["accept"])
    assert store.chain(tid)[0][0] == EditOp(0, 1, 2, "添", "accept")
    assert [s.text for s in panel.spans] == ["圆"]
    panel.fix_edit.setText("园")
    qtbot.keyClick(panel.fix_edit, Qt.Key.Key_Return)
    assert text_of(store, tid) == "今添天气好我们去公园"
    key(qtbot, panel, KEYS["undo"])  # the box holds no typing of its own: the decision
    assert text_of(store, tid) == "今添天气好我们去公圆" and store.chain(tid)[1] == 1
    assert [s.text for s in panel.spans] == ["圆"]
    qtbot.keyClicks(panel.fix_edit, "xy")
    key(qtbot, panel, KEYS["undo"])  # typing in the box is undone first
    assert store.chain(tid)[1] == 1
    panel.fix_edit.setText(panel.current_span().text)
    key(qtbot, panel, KEYS["undo"])
    assert store.chain(tid)[1] == 0 and len(panel.spans) == 2
    key(qtbot, panel, KEYS["redo"])
    key(qtbot, panel, KEYS["redo"])
    assert text_of(store, tid) == "今添天气好我们去公园" and store.chain(tid)[1] == 2
    panel.revert_to(0)
    assert store.segments(tid) == segments()
    panel.undo_stack.undo()
    assert text_of(store, tid) == "今添天气好我们去公园"
    panel.revert_to(1)  # any earlier state of the stored history
    assert store.chain(tid)[1] == 1 and text_of(store, tid) == "今添天气好我们去公圆"
    reopened = ReviewPanel(store, FakePlayer())  # the history outlives the session
    qtbot.addWidget(reopened)
    reopened.open(tid)
    reopened.revert_to(2)
    assert text_of(store, tid) == "今添天气好我们去公园"


def test_threshold_is_live_and_time_order(qtbot, panel: ReviewPanel):
    assert len(panel.spans) == 2
    low = panel.view.char_format(4 + 5).background().color().name()
    panel.confidence_bar.spin.setValue(0.3)  # 圆 (0.4) is no longer doubtful
    assert [s.text for s in panel.spans] == ["添"]
    qtbot.waitUntil(lambda: panel.view.threshold == pytest.approx(0.3), timeout=2000)
    assert panel.view.char_format(9).background().color().name() != low
    assert "1 doubtful" in panel.progress_label.text() or "1 处" in panel.progress_label.text()
    panel.confidence_bar.spin.setValue(0.5)
    panel.order_box.setCurrentIndex(panel.order_box.findData("time"))
    assert [s.text for s in panel.spans] == ["添", "圆"]


def test_click_plays_char_and_playback_is_highlighted(qtbot, panel: ReviewPanel, audio):
    view = panel.view
    cursor = view.textCursor()
    cursor.setPosition(view.document().toPlainText().index("气"))
    rect = view.cursorRect(cursor)
    qtbot.mouseClick(
        view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(rect.right() + 3, rect.center().y())
    )
    assert panel.player.calls[-1] == (str(audio.resolve()), 0.45, 1.25, 1.0)
    panel.player.position.emit(2.8)  # inside 公 (2.75 .. 2.95 s)
    assert view.textCursor().selectedText() == "公"
    panel.player.finished.emit()
    assert view.textCursor().selectedText() == panel.current_span().text


def test_progress_estimate_and_helpers(qtbot, panel: ReviewPanel):
    from app.i18n import language, set_language
    from engine.library.review import estimate_review_seconds

    before = language()
    try:
        set_language("en")
        assert format_duration(45) == "45 s" and format_duration(185) == "3 min 05 s"
        assert format_duration(3720) == "1 h 02 min"
        set_language("zh")  # old: "3 min 05 s" inside the Chinese sentences too
        assert format_duration(45) == "45 秒" and format_duration(185) == "3 分 05 秒"
        assert format_duration(3720) == "1 小时 02 分"
    finally:
        set_language(before)
    chars = (
        Char("公", 0, 1, 0.3, (Alternative("工", 0.2),)),
        Char("圆", 1, 2, 0.2, (Alternative("园", 0.7), Alternative("", 0.1))),
    )
    assert span_choices(chars) == ["公园", "工圆"]
    assert "2 doubtful" in panel.progress_label.text() or "2 处" in panel.progress_label.text()

    def estimate() -> str:  # the label's time left: both spans heard at the speed, then decided
        left = estimate_review_seconds(
            panel.spans, margin=panel.margin_spin.value(), speed=panel.speed_spin.value()
        )
        return tr("review.progress", count=2, time=format_duration(left))

    before = panel.progress_label.text()
    assert before == estimate()
    panel.speed_spin.setValue(0.5)  # heard at half speed: longer, shown with the next span
    key(qtbot, panel, KEYS["next"])
    assert panel.progress_label.text() == estimate() != before


def test_full_disk_keeps_the_edit_and_says_so(qtbot, panel: ReviewPanel, store, monkeypatch):
    tid = panel.session.tid
    real_save = Store.save_chain

    def full(self, *args):
        raise store_mod._describe(self.path, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(Store, "save_chain", full)
    panel.fix_edit.setText("甜甜")
    qtbot.keyClick(panel.fix_edit, Qt.Key.Key_Return)
    assert "磁盘已满" in panel.status.text()  # the store's error, in the (Chinese) UI language
    assert panel.session.segments[0].text == "今甜甜天气好"  # kept in memory, on screen
    assert panel.view.toPlainText().startswith("今甜甜天气好")
    assert store.chain(tid)[1] == 0
    monkeypatch.setattr(Store, "save_chain", real_save)
    key(qtbot, panel, KEYS["accept"])  # the next change saves both
    assert store.chain(tid)[1] == 2 and "磁盘已满" not in panel.status.text()
    assert text_of(store, tid) == "今甜甜天气好我们去公圆"


def test_undo_and_redo_across_a_revert_and_a_later_fix(panel: ReviewPanel, store):
    """History → original, then a new fix: undoing down past the revert brings back the two
    fixes the new one had dropped, and redo goes forward through the same states."""
    tid = panel.session.tid

    def state() -> tuple[list[str], list[str]]:
        return [s.text for s in panel.session.segments], [s.text for s in store.segments(tid)]

    seen = [state()]
    for step in (
        lambda: panel.fix_span("甜"),
        lambda: panel.fix_span("园"),
        lambda: panel.revert_to(0),
        lambda: panel.fix_span("远"),
    ):
        step()
        seen.append(state())
    assert seen[2][0] == ["今甜天气好", "我们去公园"] and seen[3][0] == seen[0][0]
    assert seen[4][0] != seen[0][0]
    for expected in reversed(seen[:-1]):
        panel.undo_stack.undo()
        assert state() == expected
    for expected in seen[1:]:
        panel.undo_stack.redo()
        assert state() == expected


def test_unsaved_changes_keep_their_transcript_open_until_saved(
    qtbot, panel: ReviewPanel, store, monkeypatch
):
    tid, other = panel.session.tid, store.add_transcript(segments())
    real_save = Store.save_chain

    def full(self, *args):
        raise store_mod._describe(self.path, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(Store, "save_chain", full)
    panel.fix_span("甜")
    assert panel.session.dirty
    panel.open(other)  # still cannot be saved: the fix would be lost, so it stays open
    assert panel.session.tid == tid and panel.session.segments[0].text == "今甜天气好"
    assert "磁盘已满" in panel.status.text() and "导出" in panel.status.text()
    monkeypatch.setattr(Store, "save_chain", real_save)
    panel.open(other)  # saved on the way
    assert panel.session.tid == other
    assert text_of(store, tid).startswith("今甜天气好") and store.chain(tid)[1] == 1


def test_spans_across_a_mark_keep_it_when_fixed_or_picked(qtbot, panel: ReviewPanel, store):
    """The fix box and the alternatives hold the marks inside a span: fixing one character, or
    picking an alternative, left the span's inner comma out."""
    chars = list(_chars("我们去公圆吧", [0.9, 0.9, 0.3, 0.4, 0.3, 0.9], 0.0))
    chars[2] = replace(chars[2], after="，")
    chars[4] = replace(chars[4], alternatives=(Alternative("园", 0.6),))
    tids = [store.add_transcript([Segment(0, 0.0, 1.45, tuple(chars))]) for _ in range(3)]
    panel.open(tids[0])
    assert panel.fix_edit.text() == "去，公圆" and panel.choices[0] == "去，公园"
    assert all(c[1] == "，" for c in panel.choices)
    panel.fix_span(panel.fix_edit.text().replace("圆", "园"))
    assert store.segments(tids[0])[0].punctuated == "我们去，公园吧"
    panel.open(tids[1])
    panel.pick_alternative(1)
    assert store.segments(tids[1])[0].punctuated == "我们去，公园吧"
    panel.open(tids[2])
    panel.fix_span("去公圆")  # the comma deleted on purpose: a fix, not an acceptance
    assert store.segments(tids[2])[0].punctuated == "我们去公圆吧"


def test_closing_with_unsaved_review_changes_asks(qtbot, tmp_path, store: Store, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from app import settings
    from app.main import build_window
    from app.worker import Engine

    engine = Engine(
        load_model=lambda source, tqdm: object(),
        list_devices=lambda: [],
        find_unfinished=lambda folder: [],
    )
    window = build_window(
        settings.open_settings(tmp_path / "settings.ini"),
        engine,
        library=store,
        player=FakePlayer(),
    )
    qtbot.addWidget(window)
    window.show()
    tid = store.add_transcript(segments())
    panel = window.review_panel
    panel.confidence_bar.spin.setValue(0.5)
    panel.open(tid)
    real_save = Store.save_chain

    def full(self, *args):
        raise store_mod._describe(self.path, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(Store, "save_chain", full)
    panel.fix_span("甜")
    asked = []

    def answer(parent, title, text, buttons, default):
        asked.append(text)
        return default  # Cancel: stay

    monkeypatch.setattr(QMessageBox, "warning", answer)
    assert not window.close() and window.isVisible() and panel.session.dirty
    assert asked == [tr("review.close_unsaved")]
    monkeypatch.setattr(Store, "save_chain", real_save)
    assert window.close()  # saved on the way out, nothing asked
    assert len(asked) == 1 and store.chain(tid)[1] == 1
    window.handle.stop()


def test_export_dialog_takes_the_chosen_type_and_starts_beside_the_audio(
    qtbot, panel: ReviewPanel, audio: Path, tmp_path: Path, monkeypatch
):
    """Bug 2: "notes" typed with SRT chosen failed with an English "...or pass fmt" (the type
    was ignored), and the dialog opened on "transcript.txt" wherever Qt liked. A file that
    cannot be written is reported in the UI language."""
    from PySide6.QtWidgets import QMessageBox

    asked, warned = [], []

    def dialog(parent, title, start, filters):
        asked.append(start)
        return str(target), "SRT (*.srt)"

    monkeypatch.setattr("app.savedialog.QFileDialog.getSaveFileName", dialog)
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: warned.append(text))
    target = tmp_path / "notes"
    panel.export_dialog()
    assert asked == [str(audio.resolve().with_name("rec.txt"))]
    assert (tmp_path / "notes.srt").read_text(encoding="utf-8").startswith("1\n00:00:00,000")
    assert warned == [] and "notes.srt" in panel.status.text()
    target = tmp_path / "no-such-folder" / "notes"
    panel.export_dialog()
    assert len(warned) == 1 and warned[0].startswith("无法写入") and "notes.srt" in warned[0]


def test_export_edited_text_in_traditional_and_copy(qtbot, panel: ReviewPanel, tmp_path):
    panel.fix_edit.setText("甜")
    qtbot.keyClick(panel.fix_edit, Qt.Key.Key_Return)
    panel.script_box.setCurrentIndex(panel.script_box.findData("traditional"))
    assert panel.view.toPlainText().startswith("今甜天氣好")  # display converted
    out = panel.export(tmp_path / "out.json")
    data = json.loads(out.read_text(encoding="utf-8"))
    assert "今甜天氣好" in json.dumps(data, ensure_ascii=False)
    srt = panel.export(tmp_path / "out.srt").read_text(encoding="utf-8")
    assert "今甜天氣好" in srt and "添" not in srt
    panel.copy_text()
    assert "今甜天氣好" in QGuiApplication.clipboard().text()
    assert panel.store.segments(panel.session.tid)[0].text == "今甜天气好"  # stored as typed


def test_library_search_and_open(qtbot, store: Store, audio: Path):
    t1 = store.add_transcript(segments(), audio=audio, title="first")
    t2 = store.add_transcript([Segment(0, 0, 1, (Char("北", 0, 0.5, 0.9),))], title="second")
    library = LibraryView(store)
    qtbot.addWidget(library)
    assert library.ids == [t2, t1]
    library.search.setText("天气")
    qtbot.waitUntil(lambda: library.ids == [t1], timeout=2000)
    assert library.table.item(0, 0).text() == "first"
    with qtbot.waitSignal(library.open_requested) as opened:
        qtbot.keyClick(library.search, Qt.Key.Key_Return)
    assert opened.args == [t1]
    library.search.setText("")
    library.refresh()
    t3 = store.add_transcript([Segment(0, 0, 1, (Char("新", 0, 0.5, 0.9),))], title="third")
    library.refresh_later()  # hidden: nothing rebuilt until it is shown
    assert library.ids == [t2, t1]
    library.show()
    assert library.ids == [t3, t2, t1]


def test_enter_opens_a_match_of_what_was_typed_and_only_once(qtbot, store: Store):
    """Old: Enter right after typing (the query waits for a pause) opened the top row of the
    previous list, and every Enter opened twice (the search box's returnPressed and the view's
    key handler both answered it)."""

    def said(char: str) -> list[Segment]:
        return [Segment(0, 0, 1, (Char(char, 0, 0.5, 0.9),))]

    contract = store.add_transcript(said("合"), title="contract")
    meeting = store.add_transcript(said("会"), title="meeting")
    library = LibraryView(store)
    qtbot.addWidget(library)
    library.show()
    assert library.ids == [meeting, contract]
    opened = []
    library.open_requested.connect(opened.append)
    qtbot.keyClicks(library.search, "contract")
    qtbot.keyClick(library.search, Qt.Key.Key_Return)  # at once, before the pause
    assert opened == [contract] and library.ids == [contract]
    library.search.clear()
    qtbot.waitUntil(lambda: library.ids == [meeting, contract], timeout=2000)
    library.table.setCurrentCell(1, 0)
    qtbot.keyClick(library.table, Qt.Key.Key_Return)  # in the table: its current row
    assert opened == [contract, contract]


def test_library_says_why_it_is_empty(qtbot, store: Store):
    """An empty library says what will fill it; a search that finds nothing says so."""
    from app import i18n

    library = LibraryView(store)
    qtbot.addWidget(library)
    assert library.message.text() == i18n.tr("library.empty")
    store.add_transcript([Segment(0, 0, 1, (Char("北", 0, 0.5, 0.9),))], title="one")
    library.refresh()
    assert library.message.text() == ""
    library.search.setText("南")
    qtbot.waitUntil(lambda: library.ids == [], timeout=2000)
    assert "南" in library.message.text() and library.message.text() != i18n.tr("library.empty")


def test_library_tells_apart_files_of_the_same_name(qtbot, store: Store, tmp_path, monkeypatch):
    """Old: three rows all reading "meeting.wav". Now the folders that differ (as deep as it
    takes) and, for the same file transcribed twice, the local time it was transcribed."""
    import itertools

    import numpy as np

    from engine.audio import write_wav

    paths = []
    for folder in ("2024/monday", "2025/monday", "2025/tuesday"):
        path = tmp_path / folder / "meeting.wav"
        path.parent.mkdir(parents=True)
        write_wav(path, np.zeros(1600, np.float32))
        paths.append(path)
    days = itertools.count(1)  # each stored time stamp a day later
    monkeypatch.setattr(store_mod, "_now", lambda: f"2026-01-{next(days):02d}T08:00:00+00:00")
    seg = [Segment(0, 0, 1, (Char("北", 0, 0.5, 0.9),))]
    for path in [*paths, paths[2]]:  # the last file twice
        store.add_transcript(seg, audio=path)
    library = LibraryView(store)
    qtbot.addWidget(library)
    titles = [library.table.item(row, 0).text() for row in range(4)]
    assert len(set(titles)) == 4
    assert set(titles[2:]) == {"meeting.wav (2025/monday)", "meeting.wav (2024/monday)"}
    assert titles[0].startswith("meeting.wav (2025/tuesday · 2026-01-")  # local time
    assert library.table.item(3, 0).toolTip() == str(paths[0].resolve())


APP_WRITER = """
import sys
from PySide6.QtWidgets import QApplication
import sqlite3

from engine.library import store as store_mod
from engine.library.store import Store, StoreError
from app.review.page import ReviewPanel
from PySide6.QtCore import QObject, Signal

class Player(QObject):
    position = Signal(float)
    loaded = Signal(float, object)
    finished = Signal()
    def play(self, *a): pass
    def preview(self, *a): pass
    def stop(self): pass

app = QApplication([])
store = Store(sys.argv[1])
panel = ReviewPanel(store, Player())
panel.open(int(sys.argv[2]))
panel.confidence_bar.spin.setValue(0.5)
panel.fix_span("甜")
panel.accept_span()
print("done", flush=True)
sys.stdin.read()  # wait to be killed
"""


def test_autosave_survives_a_killed_app(tmp_path: Path, audio: Path):
    db = tmp_path / "kill.db"
    with Store(db) as s:
        tid = s.add_transcript(segments(), audio=audio)
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(APP_WRITER), str(db), str(tid)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout.readline().strip() == "done"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with Store(db) as s:
        assert s.integrity_ok()
        assert "".join(seg.text for seg in s.segments(tid)) == "今甜天气好我们去公圆"
        assert [op.kind for op in s.chain(tid)[0]] == ["fix", "accept"]


def test_main_window_composes_review_and_library(
    qtbot, tmp_path: Path, store: Store, audio: Path, monkeypatch
):
    from app import settings
    from app.main import build_window
    from app.worker import Engine, _build_dataset

    threads = []

    def build_dataset(request):
        threads.append(QThread.currentThread())
        return _build_dataset(request)

    ini = settings.open_settings(tmp_path / "settings.ini")
    engine = Engine(
        load_model=lambda source, tqdm: object(),
        list_devices=lambda: [],
        find_unfinished=lambda folder: [],
        build_dataset=build_dataset,
    )
    window = build_window(ini, engine, library=store, player=FakePlayer())
    qtbot.addWidget(window)
    panel = window.review_panel
    from app.i18n import language, set_language

    before = language()
    try:
        window.language_actions["en"].trigger()
        titles = [window.pages.tabText(i) for i in range(window.pages.count())]
        assert titles[1:] == ["Review", "Library", "Tune"]
        assert panel.span_label.text().startswith("Open a transcript")
    finally:
        set_language(before)  # the table is global: leave it as other tests expect
    info = TranscriptionInfo(str(audio), 3.25, 16000, "m", "cpu", "fp32", "eager", "mean")
    assert panel.threshold == window.prefs.threshold
    panel.confidence_bar.spin.setValue(0.45)
    assert window.prefs.threshold == pytest.approx(0.45)  # remembered with the preferences
    window.transcript_ready.emit(str(audio), segments(), info)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    window.pages.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: panel.fix_edit.hasFocus(), timeout=2000)
    qtbot.keyClick(panel.fix_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert store.chain(store.list_transcripts()[0].id)[1] == 1  # accepted from the window
    (row,) = store.list_transcripts()
    assert panel.session.tid == row.id and store.info(row.id) == info
    assert window.library_view.ids == [row.id]
    # Ctrl+S on the Review page saves the edited text, not the raw output.
    panel.fix_edit.setText("甜")
    qtbot.keyClick(panel.fix_edit, Qt.Key.Key_Return)
    target = tmp_path / "saved.txt"
    monkeypatch.setattr(
        "app.savedialog.QFileDialog.getSaveFileName", lambda *a, **k: (str(target), "")
    )
    window.save_action.trigger()
    assert "甜" in target.read_text(encoding="utf-8")
    # A training set is built by the worker, in its thread, and the summary shown afterwards.
    from PySide6.QtWidgets import QInputDialog, QMessageBox

    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("my-set", True))
    shown, tuned = [], []

    def answer(box):  # the summary, answered with its "Tune now" button
        shown.append(box.text())
        next(b for b in box.buttons() if b.text() == tr("dataset.tune_now")).click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", answer)
    panel.tune_requested.connect(tuned.append)
    panel.model_source = lambda: str(store.path.parent)  # a folder without vocab.json
    panel.actions_by_name["make_dataset"].trigger()
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert threads == [window.handle.thread]
    config = store.path.parent / "corrections" / "my-set" / "tune.yaml"
    assert "my-set" in shown[0] and config.is_file()
    assert tuned == [str(config.parent)]  # the Tune page opens with this set
    name, _, record = store.correction_sets()[0]
    assert (name, record["examples"], record["corrections"], record["accepted"]) == (
        "my-set", 2, 1, 1)  # fmt: skip
    assert panel.actions_by_name["make_dataset"].isEnabled()
    window.handle.stop()
    QApplication.processEvents()


def test_decisions_redraw_only_the_changed_segment(qtbot, panel: ReviewPanel, monkeypatch):
    full = []
    monkeypatch.setattr(panel.view, "set_segments", lambda segs: full.append(segs))
    replaced = []
    replace_chars = panel.view.replace_chars

    def replace(first, stop, chars):
        replaced.append("".join(c.text for c in chars))
        replace_chars(first, stop, chars)

    monkeypatch.setattr(panel.view, "replace_chars", replace)
    panel.fix_edit.setText("甜甜蜜")  # longer than the span: later positions shift
    qtbot.keyClick(panel.fix_edit, Qt.Key.Key_Return)
    key(qtbot, panel, KEYS["undo"])
    key(qtbot, panel, KEYS["redo"])
    panel.fix_edit.setText("园")
    qtbot.keyClick(panel.fix_edit, Qt.Key.Key_Return)
    assert full == []  # never a full redraw
    # each decision redraws its own segment, the other left as it is
    assert replaced == ["今甜甜蜜天气好", "今添天气好", "今甜甜蜜天气好", "我们去公园"]
    view = panel.view
    expected = "".join(s.text for s in panel.session.segments)
    assert view.toPlainText().replace("\u2029", "").replace("\n", "") == expected
    assert len(view.chars) == len(expected) == 12
    for i, char in enumerate(view.chars):  # selection and formats line up after the shifts
        view.select_chars(i, i)
        assert view.textCursor().selectedText() == char.text == expected[i]
    color = [view.char_format(i).foreground().color().name() for i in range(12)]
    assert color[1] == color[2] == color[3] == color[11] == color[0]  # checked: confident
    cursor = view.textCursor()
    cursor.setPosition(view.document().toPlainText().index("公"))
    rect = view.cursorRect(cursor)
    hit = view.char_at(QPoint(rect.right() + 3, rect.center().y()))
    assert hit is not None and hit[0].text == "公" and hit[1] == 10


def test_waveform_shows_the_stretch_span_and_position(qtbot, panel: ReviewPanel):
    import numpy as np

    from engine.library import review

    # a span on screen is drawn before it is heard: its stretch read, shaded, nothing played
    span = panel.current_span()
    lo, hi = review.audio_window(span.start, span.end, panel.margin_spin.value())
    assert panel.player.previews[-1][1:] == (round(lo, 3), round(hi, 3))
    assert panel.player.calls == [] and panel.waveform.region.isVisible()
    key(qtbot, panel, KEYS["play"])
    lo, hi = panel.waveform.region.getRegion()
    span = panel.current_span()
    assert (lo, hi) == (pytest.approx(span.start), pytest.approx(span.end))
    samples = np.sin(np.arange(12_000) / 10).astype(np.float32) * 0.5
    panel.player.loaded.emit(0.0, samples)
    x, y = panel.waveform.curve.getData()
    assert x[0] == 0.0 and x[-1] == pytest.approx(0.75, abs=0.01)
    assert y.max() == pytest.approx(0.5, abs=0.01) and y.min() == pytest.approx(-0.5, abs=0.01)
    panel.player.position.emit(0.3)
    assert panel.waveform.cursor.value() == pytest.approx(0.3)


def test_empty_waveform_shades_nothing(qtbot):
    """Before a transcript is open there is no span to shade and no position to mark."""
    from app.review.view import SpanWaveform

    waveform = SpanWaveform()
    qtbot.addWidget(waveform)
    assert not waveform.region.isVisible() and not waveform.cursor.isVisible()
    waveform.set_span(0.2, 0.5)
    waveform.set_position(0.3)
    assert waveform.region.isVisible() and waveform.cursor.isVisible()


def test_sounddevice_player_reads_plays_and_reports_position(qtbot, tmp_path, monkeypatch):
    import numpy as np
    import sounddevice as sd

    from app.review.player import SoundDevicePlayer
    from engine.audio import write_wav

    path = tmp_path / "tone.wav"
    write_wav(path, (0.3 * np.sin(np.arange(32_000) / 5)).astype(np.float32))
    played, stopped = [], []
    monkeypatch.setattr(sd, "play", lambda data, samplerate: played.append((len(data), samplerate)))
    monkeypatch.setattr(sd, "stop", lambda: stopped.append(True))
    player = SoundDevicePlayer()
    positions = []
    player.position.connect(positions.append)
    with qtbot.waitSignal(player.finished, timeout=5000):
        player.play(str(path), 0.5, 0.8, speed=2.0)
    assert played == [(2400, 16_000)]  # 0.3 s of audio heard in 0.15 s, pitch kept
    assert positions == sorted(positions) and positions[-1] == pytest.approx(0.8)
    assert 0.5 <= positions[0] < 0.8
    with qtbot.waitSignal(player.failed, timeout=5000) as failed:
        player.play(str(tmp_path / "missing.wav"), 0.0, 1.0)
    assert "missing.wav" in failed.args[0]

    # a preview is read and announced without a sound; a play started meanwhile wins
    loaded = []
    player.loaded.connect(lambda start, samples: loaded.append((start, len(samples))))
    with qtbot.waitSignal(player.loaded, timeout=5000):
        player.preview(str(path), 1.0, 1.5)
    assert loaded == [(1.0, 8000)] and len(played) == 1
    player.preview(str(path), 0.0, 0.5)
    with qtbot.waitSignal(player.finished, timeout=5000):
        player.play(str(path), 1.5, 1.75)
    qtbot.wait(200)
    assert loaded[1:] == [(1.5, 4000)] and len(played) == 2

    # no sound output: the stretch is still drawn, and why nothing is heard is said
    def no_output(data, samplerate):
        raise sd.PortAudioError("no default output device")

    monkeypatch.setattr(sd, "play", no_output)
    with qtbot.waitSignal(player.failed, timeout=5000) as failed:
        player.play(str(path), 0.0, 0.25)
    expected = tr("player.no_output", detail="no default output device")
    assert loaded[-1] == (0.0, 4000) and failed.args[0] == expected


def test_spans_passed_before_their_turn_are_not_read(qtbot, monkeypatch):
    """Stepping through spans previews each one. Before: a thread each, all reading (a long
    MP3's from its start), their results dropped but for the last. Now one reader: a preview
    superseded before its turn is never read."""
    import threading

    import numpy as np

    import engine.audio
    from app.review.player import SoundDevicePlayer

    reads, release = [], threading.Event()

    def slow_read(path, start, end):
        reads.append(start)
        release.wait(5)
        return np.zeros(round((end - start) * 16_000), np.float32)

    monkeypatch.setattr(engine.audio, "read_span", slow_read)
    player = SoundDevicePlayer()
    loaded = []
    player.loaded.connect(lambda start, samples: loaded.append(start))
    player.preview("talk.mp3", 1.0, 2.0)
    qtbot.waitUntil(lambda: reads == [1.0], timeout=5000)
    for start in (3.0, 5.0, 7.0):
        player.preview("talk.mp3", start, start + 1.0)
    release.set()
    qtbot.waitUntil(lambda: loaded == [7.0], timeout=5000)
    qtbot.wait(100)
    assert reads == [1.0, 7.0] and loaded == [7.0]


def test_history_and_training_set_dialogs(qtbot, panel: ReviewPanel, store, monkeypatch):
    from PySide6.QtWidgets import QInputDialog, QMessageBox

    tid = panel.session.tid
    panel.fix_edit.setText("甜")
    qtbot.keyClick(panel.fix_edit, Qt.Key.Key_Return)
    key(qtbot, panel, KEYS["accept"])
    offered = []

    def pick(parent, title, label, items, current, editable):
        offered.append((items, current))
        return items[1], True

    monkeypatch.setattr(QInputDialog, "getItem", pick)
    panel.actions_by_name["history"].trigger()
    ((items, current),) = offered
    assert len(items) == 3 and current == 2 and "甜" in items[1]
    assert store.chain(tid)[1] == 1
    panel.undo_stack.undo()
    assert store.chain(tid)[1] == 2

    requests, warned = [], []
    panel.dataset_requested.connect(requests.append)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("my-set", True))
    monkeypatch.setattr(QMessageBox, "warning", lambda p, t, text: warned.append(text))
    panel.model_source = lambda: "some/model"
    panel.confidence_bar.spin.setValue(0.45)  # the set leaves out what this threshold doubts
    action = panel.actions_by_name["make_dataset"]
    action.trigger()
    (request,) = requests
    assert (request.transcript_ids, request.name, request.model) == ((tid,), "my-set", "some/model")
    assert request.store is store and request.threshold == pytest.approx(0.45)
    assert not action.isEnabled() and "my-set" in panel.status.text()  # one build at a time
    panel.show_dataset_failed("disk full")
    assert action.isEnabled() and warned == ["disk full"]


def test_the_set_summary_says_what_doubtful_text_kept_out(qtbot, panel: ReviewPanel, monkeypatch):
    """Segments still holding doubtful text nobody checked go in only as their checked
    stretches, or not at all (engine.library.corrections): the summary says how many, and why."""
    from PySide6.QtWidgets import QMessageBox

    from engine.library.corrections import CorrectionSummary

    shown = []
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append(box.text()))
    summary = CorrectionSummary(
        "s", Path("f"), Path("m"), Path("c"), 3, 10.0, 1, 0, (), (1,), trimmed=2, skipped=1
    )
    panel.show_dataset(summary)
    panel.show_dataset(replace(summary, trimmed=0, skipped=0))
    said = tr("dataset.doubtful", trimmed=2, skipped=1)
    assert "2" in said and shown[0] == shown[1] + " " + said  # nothing kept out: nothing said


def test_status_line_follows_a_language_switch(qtbot, panel: ReviewPanel):
    """Bug 5 on the Review page. Old behaviour caught: "所有修改已保存" stayed on after the
    switch to English; a line cleared meanwhile must stay clear."""
    from app import i18n

    key(qtbot, panel, KEYS["accept"])
    assert panel.status.text() == "所有修改已保存"
    try:
        i18n.set_language("en")
        panel.retranslate()
        assert panel.status.text() == "All changes saved"
        panel.status.setText("")
        i18n.set_language("zh")
        panel.retranslate()
        assert panel.status.text() == ""
    finally:
        i18n.set_language("zh")


@pytest.mark.parametrize("speed", [0.5, 0.75, 1.5, 2.0])
def test_time_stretch_keeps_pitch_and_changes_length(speed):
    import numpy as np

    from app.review.player import time_stretch

    rate, f0 = 16_000, 220.0
    t = np.arange(rate) / rate  # one second of a 220 Hz tone
    out = time_stretch((0.5 * np.sin(2 * np.pi * f0 * t)).astype(np.float32), speed)
    assert len(out) == int(rate / speed)
    body = out[1024:-1024]  # away from the edges
    spectrum = np.abs(np.fft.rfft(body * np.hanning(len(body))))
    peak = np.argmax(spectrum) * rate / len(body)
    assert peak == pytest.approx(f0, abs=6)  # resampling would give f0 * speed
    assert 0.3 < np.sqrt(np.mean(body**2)) / 0.5 * np.sqrt(2) < 1.1  # no dropouts or blow-up


@pytest.mark.parametrize("tool", ["review_screenshot.py", "screenshot.py"])
def test_screenshot_tools_render(qtbot, shared_audio, tmp_path, tool):
    """docs/tools: the README's pictures of the review page and the main window, with a
    model's own transcript of real clips (any model here; the README's are Whisper-base's)."""
    import runpy

    from PySide6.QtGui import QImage

    root = Path(__file__).resolve().parents[1]
    main = runpy.run_path(str(root / "docs" / "tools" / tool))["main"]
    out = tmp_path / "shot.png"
    assert main([str(out), "--model", str(root / "resources" / "demo-model")]) == 0
    image = QImage(str(out))
    assert image.width() >= 1000 and image.height() >= 600


def test_the_library_says_when_it_lists_only_the_newest(qtbot, tmp_path, monkeypatch):
    """It showed the newest 500 and said nothing: older transcripts seemed gone."""
    import app.library

    monkeypatch.setattr(app.library, "_SHOWN", 3)
    chars = (Char("好", 0.0, 0.1, 0.9),)
    with Store(tmp_path / "lib.db") as store:
        for _ in range(3):
            store.add_transcript([Segment(0, 0.0, 0.1, chars)], title="memo")
        view = LibraryView(store)
        qtbot.addWidget(view)
        assert view.table.rowCount() == 3 and view.message.text() == ""
        store.add_transcript([Segment(0, 0.0, 0.1, chars)], title="memo")
        view.refresh()
        assert view.table.rowCount() == 3 and view.message.text() == tr("library.cut", count=3)


def test_time_left_follows_the_speed_and_margin_at_once(panel: ReviewPanel):
    """Before: the estimate kept the old speed and margin until the next span was shown."""
    from engine.library.review import estimate_review_seconds

    def estimate() -> str:
        left = estimate_review_seconds(
            panel.spans, margin=panel.margin_spin.value(), speed=panel.speed_spin.value()
        )
        return tr("review.progress", count=len(panel.spans), time=format_duration(left))

    index, before = panel.index, panel.progress_label.text()
    panel.speed_spin.setValue(0.5)  # heard at half speed: longer
    slower = panel.progress_label.text()
    assert slower == estimate() != before
    panel.margin_spin.setValue(3.0)  # more heard around each span: longer again
    assert panel.progress_label.text() == estimate() != slower
    assert panel.index == index  # the same span still shown


# ---- typing kept, History readable, decisions re-opened (review findings 4, 6, 3) -------------


def _type(panel: ReviewPanel, text: str) -> None:
    """Type over the span in the fix box, as an input method commits it (no Enter)."""
    panel.fix_edit.selectAll()
    panel.fix_edit.insert(text)


def _answer(monkeypatch, answer) -> list[str]:
    """Answer every QMessageBox.question with `answer`; the texts asked come back."""
    from PySide6.QtWidgets import QMessageBox

    asked: list[str] = []
    monkeypatch.setattr(
        QMessageBox, "question", lambda p, t, text, *a: asked.append(text) or answer
    )
    return asked


def test_typing_stays_with_its_span_when_the_user_moves_away(
    qtbot, panel: ReviewPanel, store, tmp_path, monkeypatch
):
    """Finding 4. Old behaviour caught: Ctrl+Down, Ctrl+Up put 添 back in the box, the typed
    fix gone without a word; opening another transcript then asked about nothing."""
    from PySide6.QtWidgets import QMessageBox

    tid = panel.session.tid
    _type(panel, "今天")
    key(qtbot, panel, KEYS["next"])
    assert panel.current_span().text == "圆" and panel.fix_edit.text() == "圆"
    key(qtbot, panel, KEYS["previous"])
    assert panel.current_span().text == "添" and panel.fix_edit.text() == "今天"
    key(qtbot, panel, KEYS["next"])
    asked = _answer(monkeypatch, QMessageBox.StandardButton.Apply)
    panel.open(store.add_transcript(segments(), audio=None))  # the typing left on 添 is asked
    assert len(asked) == 1 and "今天" in asked[0] and "添" in asked[0]
    assert store.chain(tid)[0] == [EditOp(0, 1, 2, "今天", "fix")]


@pytest.mark.parametrize("answer", ["Cancel", "Discard", "Apply"])
def test_alt_digit_asks_about_a_typed_fix(qtbot, panel: ReviewPanel, store, monkeypatch, answer):
    """Finding 4. Old behaviour caught: Alt+1 took the alternative, the typed 甜 dropped."""
    from PySide6.QtWidgets import QMessageBox

    tid = panel.session.tid
    asked = _answer(monkeypatch, getattr(QMessageBox.StandardButton, answer))
    _type(panel, "甜")
    key(qtbot, panel, "Alt+1")
    assert len(asked) == 1 and "甜" in asked[0] and "天" in asked[0]
    ops = store.chain(tid)[0]
    if answer == "Cancel":
        assert ops == [] and panel.fix_edit.text() == "甜"
    else:
        text, kind = ("天", "alternative") if answer == "Discard" else ("甜", "fix")
        assert ops == [EditOp(0, 1, 2, text, kind)]


def test_history_names_each_decision_in_the_ui_language(qtbot, panel: ReviewPanel, monkeypatch):
    """Finding 6. Old behaviour caught: "2 · fix: " for a deletion, kinds in English in the
    Chinese UI, no old text, undone entries like the others."""
    from PySide6.QtWidgets import QInputDialog

    from app import i18n

    panel.fix_span("甜")
    panel.fix_span("")  # 圆 deleted
    panel.undo_stack.undo()
    offered = []
    monkeypatch.setattr(
        QInputDialog, "getItem", lambda *a: offered.append(a[3]) or (a[3][0], False)
    )
    before = i18n.language()
    try:
        for language in ("zh", "en"):
            i18n.set_language(language)
            panel.actions_by_name["history"].trigger()
    finally:
        i18n.set_language(before)
    zh, en = offered
    assert zh[1] == "1 · 改正：“添”→“甜”" and zh[2] == "2 · 改正：删除“圆”（已撤销）"
    assert en[1] == "1 · Fix: “添” → “甜”" and en[2] == "2 · Fix: deleted “圆” (undone)"


def test_a_checked_stretch_can_be_checked_again(qtbot, panel: ReviewPanel, store):
    """Finding 3. Old behaviour caught: a saved typo (天田 for 天) was in no span at any
    threshold, a click only played it, and only History could take it back."""
    tid = panel.session.tid
    panel.fix_span("天田")  # the typo
    panel.fix_span("园")
    assert panel.spans == []
    view = panel.view
    view.setFocus()
    cursor = view.textCursor()  # select 天田 (characters 1 and 2) by keyboard
    cursor.setPosition(view._starts[1])
    view.setTextCursor(cursor)
    for _ in range(2):
        qtbot.keyClick(view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(
        view, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    assert panel.current_span().text == "天田" and panel.fix_edit.text() == "天田"
    assert "天田" in panel.span_label.text() and panel.fix_edit.hasFocus()
    _type(panel, "天")
    qtbot.keyClick(panel.fix_edit, Qt.Key.Key_Return)
    assert text_of(store, tid) == "今天天气好我们去公园"

    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.char_point(0))
    key(qtbot, panel, "Ctrl+Shift+R")  # a clicked character, from the fix box
    assert panel.current_span().text == "今"
    key(qtbot, panel, KEYS["accept"])
    assert store.chain(tid)[0][-1] == EditOp(0, 0, 1, "今", "accept")


def test_check_again_is_in_the_text_menu_and_says_how(qtbot, panel: ReviewPanel):
    """Finding 3: the key shows in the text's menu, on the character under the pointer; with
    nothing picked, the status line says what to do."""
    panel.check_again()
    assert KEYS["check_again"] in panel.status.text()
    view = panel.view
    for _ in range(2):
        menu = view.context_menu(view.char_point(3))
        (act,) = [a for a in menu.actions() if a.objectName() == "check_again"]
        assert act.shortcut().toString() == KEYS["check_again"]
        act.trigger()
        assert panel.current_span().text == "气" and panel.fix_edit.text() == "气"
        key(qtbot, panel, KEYS["next"])  # back to the doubtful span left for it
        assert panel.current_span().text == "添"
    act.trigger()
    panel.fix_span("甜")
    assert panel.current_span().text == "添"  # 甜 is no span, 添 was not decided
    act.trigger()
    key(qtbot, panel, KEYS["undo"])  # the undone decision's span is in hand again
    assert panel.current_span().text == "气" and panel.fix_edit.text() == "气"


def test_typing_discarded_on_closing_is_not_asked_about_again(
    qtbot, panel: ReviewPanel, store, audio, monkeypatch
):
    """Typing left on a span of a transcript closed with Discard was kept, and asked about
    (Apply wrote it) on the next transcript of the same recording."""
    from PySide6.QtWidgets import QMessageBox

    _type(panel, "今天")
    key(qtbot, panel, KEYS["next"])
    asked = _answer(monkeypatch, QMessageBox.StandardButton.Discard)
    again = store.add_transcript(segments(), audio=audio)
    panel.open(again)
    panel.open(store.add_transcript(segments(), audio=audio))
    assert len(asked) == 1 and store.chain(again)[0] == []


def test_undoing_a_check_again_of_a_doubtful_span_numbers_it_again(qtbot, panel: ReviewPanel):
    """A doubtful span checked again, decided, then undone is one of the doubtful spans again
    (numbered, as before), not a stretch checked again."""
    shown = panel.span_label.text()
    view = panel.view
    (act,) = [a for a in view.context_menu(view.char_point(1)).actions()
              if a.objectName() == "check_again"]  # fmt: skip
    act.trigger()
    assert panel.span_label.text() != shown  # in hand as checked again
    key(qtbot, panel, KEYS["accept"])
    key(qtbot, panel, KEYS["undo"])
    assert panel.current_span().text == "添" and panel.span_label.text() == shown


def test_the_latest_request_wins_and_a_play_goes_first(qtbot, monkeypatch):
    """Stop drops a play not yet read; a play waiting beside a preview is read first, so the
    span asked to be heard is not kept waiting behind a waveform."""
    import threading

    import numpy as np
    import sounddevice as sd

    import engine.audio
    from app.review.player import SoundDevicePlayer

    reads, gate = [], [threading.Event()]

    def slow_read(path, start, end):
        reads.append(start)
        gate[0].wait(5)
        return np.zeros(round((end - start) * 16_000), np.float32)

    monkeypatch.setattr(engine.audio, "read_span", slow_read)
    monkeypatch.setattr(sd, "play", lambda data, samplerate: None)
    monkeypatch.setattr(sd, "stop", lambda: None)
    player = SoundDevicePlayer()
    loaded = []
    player.loaded.connect(lambda start, samples: loaded.append(start))
    player.play("talk.mp3", 1.0, 1.5)
    qtbot.waitUntil(lambda: reads == [1.0], timeout=5000)
    player.play("talk.mp3", 2.0, 2.5)
    player.stop()
    gate[0].set()
    qtbot.wait(200)
    assert reads == [1.0] and loaded == []

    gate[0] = threading.Event()
    player.preview("talk.mp3", 3.0, 3.5)
    qtbot.waitUntil(lambda: reads[-1] == 3.0, timeout=5000)
    player.play("talk.mp3", 5.0, 5.5)
    player.preview("talk.mp3", 4.0, 4.5)
    gate[0].set()
    qtbot.waitUntil(lambda: len(loaded) == 2, timeout=5000)
    player.stop()
    assert reads == [1.0, 3.0, 5.0, 4.0] and loaded == [5.0, 4.0]
