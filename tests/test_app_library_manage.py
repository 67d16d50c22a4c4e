"""Managing the library: renaming a transcript (the store and the Library page's F2), deleting
transcripts (the Delete key, its question, and the window letting go of their ids), and sorting
the Library page by a column with the rows still opening the transcript they show."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from app_fakes import FakePlayer
from PySide6.QtCore import QItemSelectionModel, QPoint, Qt
from PySide6.QtWidgets import QInputDialog, QMessageBox
from test_store import refuse_deleting

from app import settings
from app.i18n import set_language, tr
from app.library import LibraryView
from app.main import build_window
from app.review.page import ReviewPanel
from app.window import LIVE
from app.worker import Engine
from engine.audio import write_wav
from engine.library.review import EditOp
from engine.library.store import Store, StoreError
from engine.results import Char, Segment


def said(text: str, speaker: int | None = None) -> list[Segment]:
    chars = tuple(Char(t, 0.1 * k, 0.1 * k + 0.08, 0.3) for k, t in enumerate(text))
    return [Segment(0, 0.0, 0.1 * len(text), chars, speaker=speaker)]


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "library.db") as s:
        yield s


@dataclass
class _Asked:
    texts: list[str] = field(default_factory=list)  # each question asked
    answer: QMessageBox.StandardButton = QMessageBox.StandardButton.No


@pytest.fixture
def asked(monkeypatch) -> _Asked:
    """QMessageBox.question, answered `asked.answer`."""
    asked = _Asked()

    def question(parent, title, text, *args, **kwargs):
        asked.texts.append(text)
        return asked.answer

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


@dataclass
class _Typed:
    answers: list[str] = field(default_factory=list)  # what each dialog is answered, in turn
    started: list[str] = field(default_factory=list)  # the text each dialog started with


@pytest.fixture
def typed(monkeypatch) -> _Typed:
    """QInputDialog.getText, answered with what the test puts in `typed.answers`."""
    typed = _Typed()

    def get_text(parent, title, label, *args, text: str = "", **kwargs):
        typed.started.append(text)
        return typed.answers.pop(0), True

    monkeypatch.setattr(QInputDialog, "getText", get_text)
    return typed


def _view(qtbot, store: Store) -> LibraryView:
    """The Library page on screen, its window active (so its keys work), the table focused."""
    view = LibraryView(store)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    view.activateWindow()
    qtbot.waitUntil(view.isActiveWindow, timeout=2000)
    view.table.setFocus()
    return view


def _column(view: LibraryView, column: int) -> list[str]:
    return [view.table.item(row, column).text() for row in range(view.table.rowCount())]


def _click_header(qtbot, view: LibraryView, column: int) -> None:
    header = view.table.horizontalHeader()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))


def _choose(view: LibraryView, *rows: int) -> None:
    """Select `rows` (as Ctrl+clicks would), the first of them current."""
    flags = QItemSelectionModel.SelectionFlag
    model, selection = view.table.model(), view.table.selectionModel()
    selection.setCurrentIndex(model.index(rows[0], 0), flags.ClearAndSelect | flags.Rows)
    for row in rows[1:]:
        selection.select(model.index(row, 0), flags.Select | flags.Rows)


def _add(store: Store, segments: list[Segment], title: str, seconds: float) -> int:
    """A transcript of a recording `seconds` long (the Length column; one without audio has
    none), which stays where it was (the store notes it, never opens it here)."""
    return store.add_transcript(segments, audio=f"/recordings/{title}", duration=seconds)


# ---- the store ---------------------------------------------------------------------------------


def test_rename_gives_a_title_the_search_finds_and_keeps_the_changed_time(store: Store):
    first = store.add_transcript(said("今天开会"), title="rec-001.wav")
    second = store.add_transcript(said("明天出差"), title="rec-002.wav")
    before = {r.id: r.updated_at for r in store.list_transcripts()}
    assert store.rename_transcript(first, "  周一例会 ") == "周一例会"
    rows = store.list_transcripts()
    assert [(r.id, r.title) for r in rows] == [(second, "rec-002.wav"), (first, "周一例会")]
    assert {r.id: r.updated_at for r in rows} == before  # nor does it move to the top
    assert [r.id for r in store.list_transcripts("例会")] == [first]
    assert store.list_transcripts("rec-001") == []


def test_rename_refuses_a_blank_title_and_a_transcript_no_longer_there(store: Store):
    tid = store.add_transcript(said("今天开会"), title="meeting.wav")
    with pytest.raises(ValueError, match="empty"):
        store.rename_transcript(tid, " \t ")
    store.delete_transcript(tid)
    with pytest.raises(StoreError) as caught:
        store.rename_transcript(tid, "例会")
    assert caught.value.code == "store.no_transcript"
    assert f"transcript {tid} is no longer in the library" in str(caught.value)
    assert str(store.path) in str(caught.value)


# ---- sorting -----------------------------------------------------------------------------------


def test_a_header_click_sorts_by_value_and_enter_opens_the_row_shown(qtbot, store: Store):
    """Length and Edits sort by value (9 s before 1 min 40 s, 2 edits before 10), titles
    with their numbers read as numbers; Enter and a double click open the transcript of the
    row they are on, wherever the sort put it."""
    long = _add(store, said("一二三"), "memo 10.wav", 100.0)
    short = _add(store, said("四五六"), "memo 9.wav", 9.0)
    middle = _add(store, said("七八九"), "memo 2.wav", 20.0)
    for _ in range(10):
        store.add_edit(long, EditOp(0, 0, 1, "一", "accept"))
    for _ in range(2):
        store.add_edit(middle, EditOp(0, 0, 1, "七", "accept"))
    view = _view(qtbot, store)
    opened: list[int] = []
    view.open_requested.connect(opened.append)
    assert view.ids == [r.id for r in store.list_transcripts()]  # newest change first

    _click_header(qtbot, view, 2)  # Length
    assert view.ids == [short, middle, long]  # 9 s, 20 s, 100 s (as text: "1 分 40 秒" first)
    _click_header(qtbot, view, 2)
    assert view.ids == [long, middle, short]
    _click_header(qtbot, view, 3)  # Edits
    assert _column(view, 3) == ["0", "2", "10"]  # a new column starts with the least
    _click_header(qtbot, view, 0)  # Title
    assert _column(view, 0) == ["memo 2.wav", "memo 9.wav", "memo 10.wav"]

    row = view.ids.index(middle)
    view.table.setCurrentCell(row, 0)
    qtbot.keyClick(view.table, Qt.Key.Key_Return)
    rect = view.table.visualItemRect(view.table.item(view.ids.index(long), 1))
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened == [middle, long]


def test_the_sort_stays_through_a_search_and_a_refresh(qtbot, store: Store):
    thirty = _add(store, said("会议纪要"), "b.wav", 30.0)
    five = _add(store, said("会议录音"), "a.wav", 5.0)
    one = _add(store, said("出差"), "c.wav", 1.0)
    view = _view(qtbot, store)
    _click_header(qtbot, view, 2)  # Length, shortest first
    assert view.ids == [one, five, thirty]
    view.search.setText("会议")
    view.refresh()
    assert view.ids == [five, thirty]
    view.table.setCurrentCell(1, 0)
    ten = _add(store, said("会议通知"), "d.wav", 10.0)
    view.refresh()  # a transcription finishing: the newest, in the middle by its length
    assert view.ids == [five, ten, thirty]
    assert view.ids[view.table.currentRow()] == thirty  # the one chosen, not the row number
    set_language("en")
    try:
        view.retranslate()
        assert _column(view, 2) == ["5 s", "10 s", "30 s"]
    finally:
        set_language("zh")


# ---- the keys and the menu ---------------------------------------------------------------------


def test_the_context_menu_holds_open_rename_and_delete_with_their_keys(qtbot, store: Store):
    for name in "ab":
        store.add_transcript(said("今天"), title=f"{name}.wav")
    view = _view(qtbot, store)
    assert view.table.contextMenuPolicy() == Qt.ContextMenuPolicy.ActionsContextMenu
    menu = {a.text(): a.shortcut().toString() for a in view.table.actions()}
    assert menu == {"打开": "Return", "重命名…": "F2", "删除…": "Del"}
    _choose(view, 0, 1)
    assert view.delete_action.isEnabled() and not view.rename_action.isEnabled()
    _choose(view, 1)
    assert view.delete_action.isEnabled() and view.rename_action.isEnabled()
    assert "F2" in view.table.accessibleDescription()
    set_language("en")
    try:
        view.retranslate()
        assert [a.text() for a in view.table.actions()] == ["Open", "Rename…", "Delete…"]
        assert "Delete deletes it" in view.table.accessibleDescription()
    finally:
        set_language("zh")


# ---- deleting ----------------------------------------------------------------------------------


def test_delete_asks_naming_the_titles_and_keeps_the_audio_files(
    qtbot, store: Store, asked, tmp_path: Path
):
    audio = tmp_path / "meeting.wav"
    write_wav(audio, np.zeros(1600, np.float32))
    kept = store.add_transcript(said("明天"), title="plan.wav")
    meeting = store.add_transcript(said("今天开会"), audio=audio)
    memo = store.add_transcript(said("备忘"), title="memo.wav")
    view = _view(qtbot, store)
    gone: list[list[int]] = []
    view.deleted.connect(gone.append)
    _choose(view, view.ids.index(meeting), view.ids.index(memo))

    qtbot.keyClick(view.table, Qt.Key.Key_Delete)  # answered No
    assert (
        len(asked.texts) == 1
        and "“meeting.wav”" in asked.texts[0]
        and "“memo.wav”" in asked.texts[0]
    )
    assert "音频文件本身会保留" in asked.texts[0] and "2 篇" in asked.texts[0]
    assert view.ids == [memo, meeting, kept] and gone == []

    asked.answer = QMessageBox.StandardButton.Yes
    qtbot.keyClick(view.table, Qt.Key.Key_Delete)
    assert view.ids == [kept] and [r.id for r in store.list_transcripts()] == [kept]
    assert sorted(gone[0]) == sorted([meeting, memo])
    assert audio.exists() and audio.stat().st_size > 0

    _choose(view, 0)
    view.delete_action.trigger()  # the context menu's item
    assert asked.texts[-1] == tr("library.delete_one", title="plan.wav")
    assert gone[-1] == [kept] and view.ids == [] and view.message.text() == tr("library.empty")


def test_a_delete_question_names_ten_titles_and_counts_the_rest(qtbot, store: Store, asked):
    for n in range(12):
        store.add_transcript(said("今天"), title=f"t{n:02d}.wav")
    view = _view(qtbot, store)
    view.table.selectAll()
    view.delete_selected()  # answered No
    assert asked.texts[0].count("“t") == 10 and tr("library.more", count=2) in asked.texts[0]
    assert len(store.list_transcripts()) == 12


def test_a_failed_delete_deletes_none_and_says_why_and_that_all_are_still_there(
    qtbot, store: Store, asked, dialogs
):
    """Before: one delete a transcript, so a failure at the second (the first listed deleted)
    left the first gone and the second there, with a message naming only the second."""
    first = store.add_transcript(said("今天"), title="first.wav")
    second = store.add_transcript(said("明天"), title="second.wav")
    refuse_deleting(store, first, "attempt to write a readonly database")
    view = _view(qtbot, store)
    assert view.ids == [second, first]  # newest first: the refused one is deleted second
    gone: list[list[int]] = []
    view.deleted.connect(gone.append)
    asked.answer = QMessageBox.StandardButton.Yes
    view.table.selectAll()
    view.delete_selected()
    assert gone == [] and view.ids == [second, first]
    assert sorted(r.id for r in store.list_transcripts()) == [first, second]
    assert len(dialogs) == 1 and "只读" in dialogs[0]
    assert "“first.wav”" in dialogs[0] and "“second.wav”" in dialogs[0]


# ---- renaming ----------------------------------------------------------------------------------


def test_f2_renames_and_a_blank_title_is_refused(qtbot, store: Store, typed, dialogs):
    meeting = store.add_transcript(said("今天开会"), title="rec-001.wav")
    other = store.add_transcript(said("明天"), title="mm.wav")
    view = _view(qtbot, store)
    _click_header(qtbot, view, 0)  # by title
    _choose(view, view.ids.index(meeting))

    typed.answers.append("   ")
    qtbot.keyClick(view.table, Qt.Key.Key_F2)
    assert typed.started == ["rec-001.wav"]
    assert dialogs == [tr("library.rename_empty")]
    assert store.list_transcripts("rec-001")[0].id == meeting

    assert view.ids == [other, meeting]
    typed.answers.append("阿里会议")
    view.rename_action.trigger()  # the context menu's item
    assert [r.title for r in store.list_transcripts() if r.id == meeting] == ["阿里会议"]
    assert _column(view, 0) == ["阿里会议", "mm.wav"]  # sorted again, 阿 (a) by its pinyin
    assert view.ids == [meeting, other]
    assert view.ids[view.table.currentRow()] == meeting  # still the one chosen
    assert len(dialogs) == 1


def test_renaming_a_transcript_deleted_elsewhere_says_so(qtbot, store: Store, typed, dialogs):
    tid = store.add_transcript(said("今天"), title="a.wav")
    view = _view(qtbot, store)
    _choose(view, 0)
    store.delete_transcript(tid)  # with tingxie-cli, or in another window
    typed.answers.append("b")
    qtbot.keyClick(view.table, Qt.Key.Key_F2)
    assert len(dialogs) == 1 and f"第 {tid} 篇转写已不在转写库中" in dialogs[0]
    assert view.ids == []


def test_the_review_page_closed_for_a_delete_keeps_nothing_of_it_by_its_id(qtbot, store: Store):
    """SQLite gives a deleted transcript's id to the next one stored: the Review page's note of
    the closed one's script (Traditional) stored a fix typed over the next one, Simplified, in
    Traditional."""
    panel = ReviewPanel(store, FakePlayer())
    qtbot.addWidget(panel)
    panel.script_box.setCurrentIndex(panel.script_box.findData("simplified"))
    old = store.add_transcript(said("頭髮還沒乾"))
    panel.open(old)
    panel.fix_span("头发还没晒干")  # typed over the Simplified shown
    assert store.segments(old)[0].text == "頭髮還沒曬乾"
    store.delete_transcript(old)
    panel.close_transcript()
    assert panel.session is None and panel.undo_stack.count() == 0
    new = store.add_transcript(said("头发还没干"))
    assert new == old
    panel.open(new)
    panel.fix_span("头发还没晒干")
    assert store.segments(new)[0].text == "头发还没晒干"


# ---- the window --------------------------------------------------------------------------------


@pytest.fixture
def window(qtbot, tmp_path: Path, store: Store, dialogs):
    ini = settings.open_settings(tmp_path / "settings.ini")
    engine = Engine(
        load_model=lambda source, tqdm: object(),
        list_devices=lambda: [],
        find_unfinished=lambda folder: [],
    )
    w = build_window(ini, engine, library=store, player=FakePlayer())
    qtbot.addWidget(w)
    return w


def _transcribed(window, audio: str, speaker: int | None = None):
    """A recording finished: the live document, announced as the window does (it goes into
    the library, and the first one opens on the Review page)."""
    doc = window.documents[LIVE]
    doc.audio, doc.segments = audio, said("今天开会讨论预算", speaker)
    window._announce(doc)
    return doc


def _delete_all(view: LibraryView, asked) -> None:
    asked.answer = QMessageBox.StandardButton.Yes
    view.refresh()
    view.table.selectAll()
    view.delete_selected()


def test_deleting_lets_go_of_the_transcript_in_review_and_on_the_transcribe_page(
    window, store: Store, asked, tmp_path: Path
):
    """Old: deleting the transcript open for review left it open there (a decision raised
    TranscriptNotFound), and the Transcribe page's document kept its id, which SQLite gives
    the next transcript: renaming a speaker there renamed one in that other transcript."""
    doc = _transcribed(window, str(tmp_path / "a.wav"), speaker=0)
    window.show_document(LIVE)
    tid = doc.tid
    panel = window.review_panel
    assert tid is not None and panel.session.tid == tid
    _delete_all(window.library_view, asked)
    assert panel.session is None and panel.span_label.text() == tr("review.none_open")
    assert panel.undo_stack.count() == 0
    panel.accept_span()  # nothing open: nothing to write
    assert doc.tid is None and doc.segments == said("今天开会讨论预算", 0)
    assert window.transcript.toPlainText().startswith("说话人 1：今天开会")

    reused = store.add_transcript(said("别的录音", 0), title="other.wav")
    assert reused == tid  # why the id had to go
    window._name_speaker(doc, 0, "张三")
    assert store.speaker_names(reused) == {} and doc.speaker_names == {0: "张三"}


def test_deleting_one_the_library_took_without_its_speaker_names_drops_it(
    window, store: Store, asked, dialogs, monkeypatch, tmp_path: Path
):
    """A transcript the library took but not its speaker names (a full disk) is tried again
    with the next change; deleted meanwhile, it was tied to its document again and the retry
    raised TranscriptNotFound at every change after."""
    real = store.rename_speaker
    monkeypatch.setattr(store, "rename_speaker", _failing)
    doc = window.documents[LIVE]
    doc.speaker_names = {0: "张三"}
    _transcribed(window, str(tmp_path / "a.wav"), speaker=0)
    assert len(dialogs) == 1 and doc.tid is not None
    _delete_all(window.library_view, asked)
    monkeypatch.setattr(store, "rename_speaker", real)
    window._review_changed()  # the next change to the library
    assert doc.tid is None and store.list_transcripts() == []


def _failing(tid: int, speaker: int, name: str) -> dict[int, str]:
    raise StoreError("store.disk_full", path="library.db")


# ---- column widths -----------------------------------------------------------------------------


def test_titles_and_times_are_shown_whole_and_the_text_takes_the_rest(qtbot, store: Store):
    """Qt's 100 px cut "aishell1_BAC009S0764W0121.wav" and "…W0122.wav" to the same
    "aishell1_BAC0…" and hid the time of day, while the Text column had ~900 px spare."""
    titles = ["aishell1_BAC009S0764W0121.wav", "aishell1_BAC009S0764W0122.wav"]
    for title in titles:
        store.add_transcript(said("今天开会"), title=title)
    longest = "会议记录" * 30 + "-第二部分.wav"  # cut, in the middle: its end stays
    store.add_transcript(said("明天"), title=longest)
    view = LibraryView(store)
    qtbot.addWidget(view)
    view.resize(1400, 600)
    view.show()
    table, metrics = view.table, view.table.fontMetrics()
    width = table.horizontalHeader().sectionSize
    assert table.textElideMode() == Qt.TextElideMode.ElideMiddle
    assert metrics.horizontalAdvance(titles[0]) < width(0) < metrics.horizontalAdvance(longest)
    dates = [table.item(row, 1).text() for row in range(table.rowCount())]
    assert width(1) > max(map(metrics.horizontalAdvance, dates))
    assert width(4) > 400  # the text preview stretches over what is left (~600 px)

    table.horizontalHeader().resizeSection(0, 150)  # the user's width stays on a refresh
    view.refresh()
    assert width(0) == 150
