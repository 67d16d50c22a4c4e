"""Speakers in the app: the setting reaches the engine through the worker, labels in the
transcript view where the speaker changes, renaming (library, labels, undo, exports), and the
missing optional package, which leaves the transcript without speakers but transcribed."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from app_fakes import FakeDevice, FakePlayer, emitted, recorder_factory, tone
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction, QColor, QTextCursor
from PySide6.QtWidgets import QInputDialog

from app import settings
from app.confidence import LOW_BACKGROUND
from app.i18n import set_language, tr
from app.main import build_window
from app.review.page import ReviewPanel
from app.transcript import TranscriptView
from app.worker import Engine, EngineWorker, SpeakersRequest
from engine.extras import install_hint
from engine.library.store import Store
from engine.results import Char, Progress, Segment, TranscriptionInfo
from engine.speakers import SpeakersUnavailable, Turn, assign_speakers


@pytest.fixture(autouse=True)
def _chinese_ui_after_each_test(monkeypatch):
    monkeypatch.setattr("app.demo.whisper_model_dir", lambda: None)
    yield
    set_language("zh")


def _seg(i: int, text: str, speaker: int | None = None, start: float | None = None) -> Segment:
    t0 = float(i) if start is None else start
    confs = [0.95 if k % 2 == 0 else 0.2 for k in range(len(text))]  # every other doubtful
    chars = tuple(
        Char(t, t0 + 0.1 * k, t0 + 0.1 * k + 0.08, c)
        for k, (t, c) in enumerate(zip(text, confs, strict=True))
    )
    return Segment(i, chars[0].start, chars[-1].end, chars, speaker=speaker)


TALK = [_seg(0, "你好", 0), _seg(1, "请坐", 0), _seg(2, "谢谢医生", 1), _seg(3, "不客气", 0)]
TURNS = [Turn(0.0, 1.9, 0), Turn(1.9, 2.9, 1), Turn(2.9, 4.0, 0)]  # who speaks TALK


def _view(qtbot, segments, names=None) -> TranscriptView:
    view = TranscriptView()
    view.resize(700, 400)
    qtbot.addWidget(view)
    view.show()
    view.set_segments(segments, names)
    return view


def _lined_up(view: TranscriptView) -> None:
    """Every character is where the view thinks it is: in the document, selected, hit by a
    click at its middle, colored by its own band."""
    doc = view.document()
    for i, char in enumerate(view.chars):
        assert doc.characterAt(view._starts[i]) == char.text
        view.select_chars(i, i)
        assert view.textCursor().selectedText() == char.text
        hit = view.char_at(view.char_point(i))
        assert hit is not None and hit[1] == i
        low = view._bands.band(char.confidence) == "low"
        background = view.char_format(i).background().color().name()
        assert (background == QColor(LOW_BACKGROUND).name()) == low


def _label_point(view: TranscriptView, n: int) -> QPoint:
    """The middle of the n-th label's second character."""
    pos = list(view._labels())[n][0] + 1
    cursor = QTextCursor(view.document())
    cursor.setPosition(pos)
    left = view.cursorRect(cursor)
    cursor.setPosition(pos + 1)
    right = view.cursorRect(cursor)
    return QPoint((left.left() + right.left()) // 2, left.center().y())


# ---- the view ----------------------------------------------------------------------------


def test_labels_where_the_speaker_changes_and_characters_still_line_up(qtbot):
    view = _view(qtbot, TALK)
    assert view.toPlainText() == "说话人 1：你好\n请坐\n说话人 2：谢谢医生\n说话人 1：不客气\n"
    assert view.speaker_labels() == [(0, "说话人 1："), (1, "说话人 2："), (0, "说话人 1：")]
    assert "".join(c.text for c in view.chars) == "你好请坐谢谢医生不客气"  # no label inside
    _lined_up(view)
    view.set_threshold(0.5)  # a recolor touches characters only, never a label
    _lined_up(view)
    label = list(view._labels())[1]
    cursor = QTextCursor(view.document())
    cursor.setPosition(label[0] + 1)
    assert cursor.charFormat().fontWeight() > 400  # bold
    assert view.char_at(_label_point(view, 1)) is None  # a label is no character
    assert view.speaker_at(_label_point(view, 1)) == 1
    assert view.speaker_at(view.char_point(0)) is None


def test_no_labels_when_speakers_were_not_told_apart(qtbot):
    view = _view(qtbot, [replace(s, speaker=None) for s in TALK])
    assert view.toPlainText() == "你好\n请坐\n谢谢医生\n不客气\n"
    assert view.speaker_labels() == []
    assert view.speaker_of(view._starts[3]) is None
    menu = view.context_menu(view.char_point(3))
    assert not [a for a in menu.actions() if a.objectName() == "rename-speaker"]


def test_new_names_rewrite_every_label_and_keep_the_mapping(qtbot):
    view = _view(qtbot, TALK, {1: "李"})
    assert view.speaker_labels()[1] == (1, "李：")
    view.set_speaker_names({0: "张医生", 1: "李"})
    assert view.toPlainText() == "张医生：你好\n请坐\n李：谢谢医生\n张医生：不客气\n"
    _lined_up(view)
    view.set_speaker_names({})  # back to the default names
    assert [t for _, t in view.speaker_labels()] == ["说话人 1：", "说话人 2：", "说话人 1："]
    _lined_up(view)


def test_two_speakers_given_one_name_read_as_one_turn_until_told_apart(qtbot):
    """As the TXT export: a voice split in two and merged by name has one label per turn."""
    talk = [*TALK, _seg(4, "再见", 2)]
    view = _view(qtbot, talk, {0: "张", 1: "张"})
    assert view.toPlainText() == "张：你好\n请坐\n\u200b谢谢医生\n\u200b不客气\n说话人 3：再见\n"
    _lined_up(view)
    view.set_speaker_names({0: "张", 1: "王"})  # told apart again: every label back
    assert view.toPlainText() == "张：你好\n请坐\n王：谢谢医生\n张：不客气\n说话人 3：再见\n"
    _lined_up(view)
    view.set_speaker_names({1: "说话人 1"})  # the default name of speaker 0
    assert [t for _, t in view.speaker_labels()] == [
        "说话人 1：",
        "\u200b",
        "\u200b",
        "说话人 3：",
    ]
    _lined_up(view)
    assert view.speaker_of(view._starts[4]) == 1  # the hidden label still knows its speaker


def test_clicking_a_label_or_the_menu_asks_to_rename_its_speaker(qtbot):
    view = _view(qtbot, TALK)
    asked = []
    view.speaker_rename_requested.connect(asked.append)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=_label_point(view, 1))
    assert asked == [1]
    menu = view.context_menu(view.char_point(9))  # 客, said by speaker 0
    rename = [a for a in menu.actions() if a.objectName() == "rename-speaker"]
    assert len(rename) == 1 and "说话人 1" in rename[0].text()
    rename[0].trigger()
    assert asked == [1, 0]


# ---- review: a library transcript, renamed, undone, exported ------------------------------


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "data" / "tingxie.db") as s:
        yield s


def test_review_shows_labels_renames_everywhere_undoably_and_exports_the_names(
    qtbot, store, tmp_path, monkeypatch
):
    tid = store.add_transcript(TALK)
    panel = ReviewPanel(store, FakePlayer())
    qtbot.addWidget(panel)
    panel.show()
    panel.open(tid)
    view = panel.view
    assert [t for _, t in view.speaker_labels()] == ["说话人 1：", "说话人 2：", "说话人 1："]
    renamed = []
    panel.speakers_renamed.connect(lambda t, names: renamed.append((t, names)))
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("  张医生 ", True))
    view.speaker_rename_requested.emit(0)  # a click on a label of speaker 0
    assert [t for _, t in view.speaker_labels()] == ["张医生：", "说话人 2：", "张医生："]
    assert store.speaker_names(tid) == {0: "张医生"}
    assert renamed == [(tid, {0: "张医生"})]
    _lined_up(view)
    out = panel.export(tmp_path / "out.txt")
    assert out.read_text(encoding="utf-8").startswith("张医生：你好\n请坐\n\n说话人 2：")
    panel.undo_stack.undo()
    assert store.speaker_names(tid) == {}
    assert [t for _, t in view.speaker_labels()] == ["说话人 1：", "说话人 2：", "说话人 1："]
    panel.undo_stack.redo()
    assert store.speaker_names(tid) == {0: "张医生"}
    # A decision after the rename still finds its characters (positions step over labels).
    span = panel.current_span()
    panel.fix_span(span.text + "啊")  # longer: the positions after it shift
    assert "啊" in view.toPlainText()
    _lined_up(view)
    assert view.speaker_labels()[0] == (0, "张医生：")
    reopened = ReviewPanel(store, FakePlayer())
    qtbot.addWidget(reopened)
    reopened.open(tid)
    assert reopened.view.toPlainText().startswith("张医生：")


# ---- the window: the setting, the worker, the engine --------------------------------------


class _Transcriber:
    def transcribe(self, path):
        info = TranscriptionInfo(path, 4.0, 16_000, "fake", "cpu", "fp32", "eager", "max_prob")
        return self._items(), info

    def _items(self):
        for seg in TALK:
            yield replace(seg, speaker=None)
        yield Progress(4.0, 4.0)


class _Streamer:
    def __init__(self) -> None:
        self.committed: list[Char] = []

    def push(self, samples):
        return []

    def finish(self):
        from types import SimpleNamespace

        seg = replace(TALK[2], id=0, speaker=None)
        return [SimpleNamespace(committed=seg.chars, tail=(), segment=seg)]

    def reset(self):
        pass


class _Speakers:
    """engine.speakers.label_speakers with TURNS for diarization: what it was asked, and on
    which thread."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, object, int]] = []
        self.threads: list[threading.Thread] = []
        self.error = error

    def __call__(self, audio, segments, options):
        self.calls.append((audio, options, len(segments)))
        self.threads.append(threading.current_thread())
        if self.error is not None:
            raise self.error
        return assign_speakers(segments, TURNS)


def _engine(speakers: _Speakers) -> Engine:
    return Engine(
        load_model=lambda source, tqdm: object(),
        transcriber=lambda model: _Transcriber(),
        streamer=lambda t: _Streamer(),
        recorder=recorder_factory(signal=tone(0.5), realtime=0.1),
        list_devices=lambda: [FakeDevice("Mic A")],
        find_unfinished=lambda folder: [],
        recover=lambda path: path,
        punctuator=lambda: None,
        speakers=speakers,
    )


@pytest.fixture
def make_window(qtbot, tmp_path, dialogs, store):
    ini = tmp_path / "settings.ini"

    def make(speakers: _Speakers):
        qs = settings.open_settings(ini)
        qs.setValue("recordings_dir", str(tmp_path / "recordings"))
        window = build_window(qs, _engine(speakers), library=store, player=FakePlayer())
        qtbot.addWidget(window)
        window.show()
        emitted(qtbot, window.worker.model_loaded, window.start, 10_000)
        return window

    return make


def _choose(window, choice: str) -> None:
    box = window.speakers_box
    index = box.findData(choice)
    box.setCurrentIndex(index)
    box.activated.emit(index)


def test_the_setting_reaches_the_engine_on_the_worker_thread_and_is_remembered(
    qtbot, make_window, store, tmp_path
):
    speakers = _Speakers()
    window = make_window(speakers)
    assert window.speakers_box.currentData() == "off"
    assert [window.speakers_box.itemText(i) for i in range(3)] == ["不区分", "自动", "2 人"]
    ready = []
    window.transcript_ready.connect(lambda *args: ready.append(args))
    window.add_files(["/data/off.wav"])  # off: no speakers asked for
    qtbot.waitUntil(lambda: len(ready) == 1, timeout=10_000)
    assert speakers.calls == [] and all(s.speaker is None for s in ready[0][1])

    _choose(window, "2")
    assert window.prefs.speakers == "2"
    (job,) = window.add_files(["/data/talk.wav"])
    qtbot.waitUntil(lambda: len(ready) == 2, timeout=10_000)
    audio, options, count = speakers.calls[0]
    assert (audio, options.speakers, count) == ("/data/talk.wav", 2, 4)
    assert speakers.threads[0] is not threading.main_thread()  # never the UI thread
    assert [s.speaker for s in ready[1][1]] == [0, 0, 1, 0]
    window.show_document(job)
    assert window.transcript.toPlainText().startswith("说话人 1：你好\n请坐\n说话人 2：")
    (summary, *_) = store.list_transcripts()
    assert [s.speaker for s in store.segments(summary.id)] == [0, 0, 1, 0]

    _choose(window, "auto")
    window.add_files(["/data/auto.wav"])
    qtbot.waitUntil(lambda: len(ready) == 3, timeout=10_000)
    assert speakers.calls[1][1].speakers is None  # automatic: the number is found
    window.close()
    assert settings.load(settings.open_settings(tmp_path / "settings.ini")).speakers == "auto"


def test_a_finished_recording_gets_its_speakers(qtbot, make_window):
    speakers = _Speakers()
    window = make_window(speakers)
    _choose(window, "auto")
    ready = []
    window.transcript_ready.connect(lambda *args: ready.append(args))
    window.record_action.trigger()
    qtbot.waitUntil(window.stop_action.isEnabled, timeout=5000)
    window.stop_action.trigger()
    qtbot.waitUntil(lambda: len(ready) == 1, timeout=10_000)
    assert speakers.calls[0][0] == ready[0][0] and ready[0][0].endswith(".wav")
    # 谢谢医生 lies in the second turn, the only voice with words: the first speaker
    assert [s.speaker for s in ready[0][1]] == [0]
    assert window.transcript.speaker_labels() == [(0, "说话人 1：")]


def test_without_the_package_the_message_shows_once_and_files_are_still_transcribed(
    qtbot, make_window, dialogs, store
):
    missing = SpeakersUnavailable(
        "speakers.missing", package="resemblyzer", hint=install_hint("speakers")
    )
    window = make_window(_Speakers(error=missing))
    _choose(window, "auto")
    ready = []
    window.transcript_ready.connect(lambda *args: ready.append(args))
    first, _ = window.add_files(["/data/a.wav", "/data/b.wav"])
    qtbot.waitUntil(lambda: len(ready) == 2, timeout=10_000)
    assert [s.text for s in ready[0][1]] == ["你好", "请坐", "谢谢医生", "不客气"]
    assert all(s.speaker is None for _, segs, _ in ready for s in segs)
    assert len(store.list_transcripts()) == 2
    assert dialogs == [
        "区分说话人需要可选软件包 resemblyzer；"
        "请在听写的源代码文件夹中运行 pip install -e '.[speakers]' 安装"
    ]
    assert "resemblyzer" in window.statusBar().currentMessage()  # the second: no dialog
    window.show_document(first)
    assert window.transcript.speaker_labels() == []


def test_renaming_on_the_transcript_page_reaches_the_library_review_and_exports(
    qtbot, make_window, store, monkeypatch, tmp_path
):
    window = make_window(_Speakers())
    _choose(window, "2")
    ready = []
    window.transcript_ready.connect(lambda *args: ready.append(args))
    (job,) = window.add_files(["/data/talk.wav"])
    qtbot.waitUntil(lambda: len(ready) == 1, timeout=10_000)
    window.show_document(job)
    tid = window.documents[job].tid
    assert tid is not None and window.review_panel.session.tid == tid  # opened in review
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("王", True))
    window.transcript.speaker_rename_requested.emit(1)
    assert store.speaker_names(tid) == {1: "王"}
    assert window.transcript.speaker_labels()[1] == (1, "王：")
    assert window.review_panel.view.speaker_labels()[1] == (1, "王：")
    window.review_panel.undo_stack.undo()  # undone on the Review page: both pages follow
    assert store.speaker_names(tid) == {}
    assert window.transcript.speaker_labels()[1] == (1, "说话人 2：")
    window.review_panel.undo_stack.redo()
    monkeypatch.setattr("app.window.ask_save_path", lambda *a: tmp_path / "talk.srt", raising=False)
    window.save_transcript()
    assert "王" in (tmp_path / "talk.srt").read_text(encoding="utf-8")


def _second_of_two_shown(qtbot, window) -> tuple[int, int | None]:
    """Two files transcribed with two speakers, the second shown (the Review page has the
    first): its job and library id."""
    _choose(window, "2")
    ready = []
    window.transcript_ready.connect(lambda *args: ready.append(args))
    _, second = window.add_files(["/data/a.wav", "/data/talk.wav"])
    qtbot.waitUntil(lambda: len(ready) == 2, timeout=10_000)
    window.show_document(second)
    return second, window.documents[second].tid


def test_renaming_a_transcript_not_in_review_is_undone_on_the_transcript_page(
    qtbot, make_window, store, monkeypatch
):
    """The Review page shows the first file; a rename of the second, on the Transcript page,
    goes on that page's own undo stack: Ctrl+Z in the view gives the old name back in the
    view and the library, and the view's menu offers to redo it."""
    window = make_window(_Speakers())
    second, tid = _second_of_two_shown(qtbot, window)
    assert tid is not None and window.review_panel.session.tid != tid
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("王", True))
    window.transcript.speaker_rename_requested.emit(1)
    assert store.speaker_names(tid) == {1: "王"}
    assert window.transcript.speaker_labels()[1] == (1, "王：")
    window.transcript.setFocus()
    qtbot.keyClick(window.transcript, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert store.speaker_names(tid) == {}
    assert window.transcript.speaker_labels()[1] == (1, "说话人 2：")
    menu = window.transcript.context_menu(QPoint(5, 5))
    redo = menu.findChild(QAction, "redo-rename")
    assert (
        redo is not None and "王" in redo.text() and menu.findChild(QAction, "undo-rename") is None
    )
    redo.trigger()
    assert store.speaker_names(tid) == {1: "王"} and window.documents[second].speaker_names == {
        1: "王"
    }


def test_ok_on_the_unchanged_name_renames_nothing(qtbot, make_window, store, monkeypatch):
    """The rename box starts with the label shown (说话人 2): OK on it unchanged records no
    rename (no undo entry "说话人 2 to 说话人 2", the library's transcript untouched), as on the
    Review page."""
    window = make_window(_Speakers())
    second, tid = _second_of_two_shown(qtbot, window)
    before = [t.updated_at for t in store.list_transcripts() if t.id == tid]
    renames, rename = [], store.rename_speaker
    monkeypatch.setattr(store, "rename_speaker", lambda *a: renames.append(a) or rename(*a))
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (" 说话人 2 ", True))
    window.transcript.speaker_rename_requested.emit(1)
    assert renames == [] and window.documents[second].undo.count() == 0
    assert [t.updated_at for t in store.list_transcripts() if t.id == tid] == before
    assert window.transcript.speaker_labels()[1] == (1, "说话人 2：")


def test_a_rename_undone_on_the_transcript_page_reaches_a_review_opened_since(
    qtbot, make_window, store, monkeypatch, tmp_path
):
    """Renamed on the Transcript page, then opened on the Review page, then undone on the
    Transcript page: the Review page kept the old name, showed and exported it, and its next
    save would have written it back."""
    window = make_window(_Speakers())
    _, tid = _second_of_two_shown(qtbot, window)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("王", True))
    window.transcript.speaker_rename_requested.emit(1)
    panel = window.review_panel
    panel.open(tid)
    assert panel.view.speaker_labels()[1] == (1, "王：")
    window.transcript.setFocus()
    qtbot.keyClick(window.transcript, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert store.speaker_names(tid) == {} and panel.session.speaker_names == {}
    assert panel.view.speaker_labels()[1] == (1, "说话人 2：")
    panel.accept_span()  # the session's next save keeps the undo
    assert store.speaker_names(tid) == {}
    assert "王" not in panel.export(tmp_path / "talk.txt").read_text(encoding="utf-8")


# ---- the one engine function the CLI and the app share ------------------------------------


def test_the_default_engine_runs_label_speakers_over_the_file(qtbot, tmp_path, monkeypatch):
    from engine import speakers as engine_speakers
    from engine.audio import write_wav

    path = tmp_path / "talk.wav"
    write_wav(path, np.zeros(4 * 16_000, np.float32))
    heard = []

    def diarize(audio, options=None, embedder=None):
        heard.append((len(audio), options.speakers))
        return TURNS

    monkeypatch.setattr(engine_speakers, "diarize", diarize)
    worker = EngineWorker(Engine())
    done, failed = [], []
    worker.speakers_done.connect(lambda key, segs: done.append((key, segs)))
    worker.speakers_failed.connect(lambda key, e: failed.append(e))
    plain = tuple(replace(s, speaker=None) for s in TALK)
    worker.label_speakers(SpeakersRequest(7, str(path), plain, "3"))
    assert heard == [(4 * 16_000, 3)] and failed == []
    assert done[0][0] == 7 and [s.speaker for s in done[0][1]] == [0, 0, 1, 0]
    start = time.monotonic()
    worker.label_speakers(SpeakersRequest(8, str(tmp_path / "gone.wav"), plain, "auto"))
    assert len(failed) == 1 and time.monotonic() - start < 5
    assert done[1][0] == 8 and [s.speaker for s in done[1][1]] == [None] * 4  # kept as it was
    assert tr("speakers.failed", path="x", message="y")  # the window's wording exists
