"""The main window on faults a bug hunt found: Cancel all while the engine thread is busy, Save
on a file transcribed halfway, a dropped folder, quitting with files queued or while the model
loads, and a machine without PortAudio."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import test_app_window
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QMessageBox
from test_app_window import _engine, _loaded, _segment
from test_portaudio_missing import no_portaudio  # noqa: F401 (a fixture)

from app.i18n import tr
from engine.results import Char, Progress, Segment, TranscriptionInfo

_DONE = ("done", "cancelled", "failed")


@pytest.fixture(autouse=True)
def _no_whisper_in_the_model_cache(monkeypatch):
    """What an offline first start finds is the fakes', not this checkout's model cache."""
    monkeypatch.setattr("app.demo.whisper_model_dir", lambda: None)


@pytest.fixture(autouse=True)
def _chinese_ui_after_each_test():
    yield
    from app import i18n

    i18n.set_language("zh")


# The window tests' own fixtures, shared rather than copied (bound by name, as pytest finds them).
dialogs = test_app_window.dialogs
library = test_app_window.library
ini = test_app_window.ini
make_window = test_app_window.make_window


@pytest.fixture
def questions(monkeypatch):
    """`questions.answer` is what QMessageBox.question answers; `questions.asked`, its texts."""

    questions = SimpleNamespace(answer=QMessageBox.StandardButton.Yes, asked=[])

    def question(parent, title, text, *args, **kwargs):
        questions.asked.append(text)
        return questions.answer

    monkeypatch.setattr(QMessageBox, "question", question)
    return questions


class _Held:
    """A transcriber whose first file holds the engine thread inside one step (a chunk of model
    inference) until `release` is set; `inside` is set once it is there."""

    def __init__(self) -> None:
        self.inside, self.release = threading.Event(), threading.Event()

    def transcribe(self, path):
        info = TranscriptionInfo(path, 2.0, 16_000, "fake", "cpu", "fp32", "eager", "max_prob")
        return self._items(), info

    def _items(self):
        yield Progress(0.5, 2.0)
        self.inside.set()
        self.release.wait(10)
        yield _segment(0, "你好")
        yield Progress(2.0, 2.0)


# ---- 1. Cancel all while the engine thread is busy -------------------------------------------


def test_cancel_all_cancels_files_added_while_a_model_step_runs(qtbot, make_window, library):
    """Old: files added while the engine was inside a model step were not in its queue yet, so
    Cancel all missed them: they were transcribed anyway and went into the library."""
    held = _Held()
    window = make_window(_engine(transcriber=lambda model: held))
    _loaded(qtbot, window)
    (first,) = window.add_files(["/data/long-meeting.wav"])
    assert held.inside.wait(10)
    more = window.add_files(["/data/a.wav", "/data/b.wav", "/data/c.wav"])
    window.cancel_all_button.click()
    held.release.set()
    jobs = [first, *more]
    qtbot.waitUntil(lambda: all(window.queue.state(j) in _DONE for j in jobs), timeout=10_000)
    assert [window.queue.state(j) for j in jobs] == ["cancelled"] * 4
    assert library.list_transcripts() == []


def test_cancel_all_cancels_files_added_while_the_model_loads(qtbot, make_window, library):
    loading, release = threading.Event(), threading.Event()

    def load(source, tqdm):
        loading.set()
        release.wait(10)
        return object()

    window = make_window(_engine(load_model=load))
    window.start()
    assert loading.wait(10)
    jobs = window.add_files(["/data/x.wav", "/data/y.wav"])
    window.cancel_all_action.trigger()
    release.set()
    qtbot.waitUntil(lambda: all(window.queue.state(j) in _DONE for j in jobs), timeout=10_000)
    assert [window.queue.state(j) for j in jobs] == ["cancelled"] * 2
    assert library.list_transcripts() == []


# ---- 6. Save on a file transcribed halfway ----------------------------------------------------


class _Halfway:
    """An hour-long file whose transcript reaches 1:00, then gets no further (until the job
    is cancelled)."""

    def transcribe(self, path):
        info = TranscriptionInfo(path, 3600.0, 16_000, "fake", "cpu", "fp32", "eager", "max_prob")
        return self._items(), info

    def _items(self):
        chars = tuple(Char(t, 60.0 + 0.3 * k, 60.2 + 0.3 * k, 0.9) for k, t in enumerate("第一段"))
        yield Segment(0, 60.0, 60.8, chars)
        while True:
            yield Progress(61.0, 3600.0)
            threading.Event().wait(0.02)  # the next chunk's inference


def test_saving_a_file_transcribed_halfway_asks_first_and_says_it_is_partial(
    qtbot, make_window, questions, monkeypatch, tmp_path
):
    """Old: Ctrl+S on a file still transcribing (or cancelled, or failed) saved the part done
    and said only "Saved …", as if it were the whole file."""
    window = make_window(_engine(transcriber=lambda model: _Halfway()), language="en")
    _loaded(qtbot, window)
    (job,) = window.add_files(["/data/meeting-1h.wav"])
    qtbot.waitUntil(lambda: bool(window.documents[job].segments), timeout=5000)
    window.show_document(job)
    target = tmp_path / "meeting.txt"
    monkeypatch.setattr(
        "app.savedialog.QFileDialog.getSaveFileName", lambda *a, **k: (str(target), "TXT (*.txt)")
    )
    questions.answer = QMessageBox.StandardButton.No
    window.save_action.trigger()
    (asked,) = questions.asked
    assert "meeting-1h.wav" in asked and "still being transcribed" in asked
    assert "01:00 of 1:00:00" in asked  # how far it got, of how long
    assert not target.exists()  # declined: nothing written
    questions.answer = QMessageBox.StandardButton.Yes
    window.save_action.trigger()
    assert target.read_text(encoding="utf-8") == "第一段\n"
    status = window.statusBar().currentMessage()
    assert str(target) in status and "part transcribed so far" in status
    window.cancel_file(job)
    qtbot.waitUntil(lambda: window.queue.state(job) == "cancelled", timeout=5000)
    window.save_action.trigger()
    assert len(questions.asked) == 3 and "cancelled" in questions.asked[-1]
    assert "01:00 of 1:00:00" in questions.asked[-1]


def test_saving_a_finished_file_asks_nothing(qtbot, make_window, questions, monkeypatch, tmp_path):
    window = make_window(language="en")
    _loaded(qtbot, window)
    (job,) = window.add_files(["/data/good.wav"])
    qtbot.waitUntil(lambda: window.queue.state(job) == "done", timeout=5000)
    window.show_document(job)
    target = tmp_path / "good.txt"
    monkeypatch.setattr(
        "app.savedialog.QFileDialog.getSaveFileName", lambda *a, **k: (str(target), "TXT (*.txt)")
    )
    window.save_action.trigger()
    assert questions.asked == [] and target.read_text(encoding="utf-8") == "你好\n世界\n"
    assert window.statusBar().currentMessage() == f"Saved {target}"


# ---- 8. A dropped folder ---------------------------------------------------------------------


def _drop(window, *paths) -> tuple[bool, bool]:
    """Drag `paths` over the window and drop them; whether the drag and the drop were taken."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    how = (
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    enter = QDragEnterEvent(window.rect().center(), *how)
    window.dragEnterEvent(enter)
    drop = QDropEvent(QPointF(window.rect().center()), *how)
    window.dropEvent(drop)
    return enter.isAccepted(), drop.isAccepted()


def test_a_dropped_folder_is_counted_then_queued_as_add_folder_does(
    qtbot, make_window, questions, tmp_path
):
    """Old: the drop was taken (a copy cursor), then nothing happened and nothing was said."""
    folder = tmp_path / "Recordings"
    (folder / "old").mkdir(parents=True)
    for name in ("mon.wav", "tue.m4a", "old/wed.mp3", "notes.txt"):
        (folder / name).write_bytes(b"RIFF")
    clip = tmp_path / "talk.m4a"
    clip.write_bytes(b"")
    window = make_window(language="en")
    questions.answer = QMessageBox.StandardButton.No
    assert _drop(window, folder) == (True, True)
    (asked,) = questions.asked
    assert asked == tr("dialog.confirm_folder", count=3, folder=str(folder))
    assert window.queue.job_ids() == []  # declined
    questions.answer = QMessageBox.StandardButton.Yes
    _drop(window, clip, folder)  # a file and a folder at once: both
    queued = sorted(window.queue.path(j) for j in window.queue.job_ids())
    files = [clip, *(folder / n for n in ("mon.wav", "tue.m4a", "old/wed.mp3"))]
    assert queued == sorted(str(f) for f in files)


# ---- quitting with files queued --------------------------------------------------------------


@pytest.fixture
def quit_box(monkeypatch):
    """Answers the quit question with the button named `quit_box.answer` (None: Cancel) and
    keeps what it asked in `quit_box.asked`."""

    quit_box = SimpleNamespace(answer=None, asked=[])

    def answer(box) -> int:
        quit_box.asked.append(box.text())
        if quit_box.answer is None:
            box.button(QMessageBox.StandardButton.Cancel).click()
        else:
            next(b for b in box.buttons() if b.text() == quit_box.answer).click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", answer)
    return quit_box


def test_quitting_with_files_queued_asks_first(qtbot, make_window, quit_box):
    """Old: Ctrl+Q with files transcribing or waiting asked nothing and dropped them; nothing
    offers them again at the next start."""
    window = make_window(language="en")
    _loaded(qtbot, window)
    jobs = window.add_files(["/data/slow-2h-interview.wav", "/data/a.wav", "/data/b.wav"])
    qtbot.waitUntil(lambda: window.queue.state(jobs[0]) == "running", timeout=5000)
    window.quit_action.trigger()  # Ctrl+Q, File → Quit
    (asked,) = quit_box.asked
    assert "3 file(s)" in asked and "Files panel" in asked
    assert window.isVisible() and window.queue.state(jobs[0]) == "running"  # the user stays
    window.closeEvent(event := _WindowManagerClose())  # the title bar's close button
    assert len(quit_box.asked) == 2 and not event.isAccepted() and window.isVisible()
    quit_box.answer = tr("quit.anyway")
    window.quit_action.trigger()
    assert len(quit_box.asked) == 3 and not window.isVisible()
    assert window.queue.state(jobs[0]) == "cancelled"


class _WindowManagerClose(QCloseEvent):
    """A close the window system sends (the title bar's button, Alt+F4): spontaneous."""

    def spontaneous(self) -> bool:
        return True


def test_quitting_with_only_finished_files_asks_nothing(qtbot, make_window, quit_box):
    window = make_window()
    _loaded(qtbot, window)
    good, bad = window.add_files(["/data/good.wav", "/data/bad.mp3"])
    qtbot.waitUntil(lambda: window.queue.state(bad) == "failed", timeout=5000)
    qtbot.waitUntil(lambda: window.queue.state(good) == "done", timeout=5000)
    window.quit_action.trigger()
    assert quit_box.asked == [] and not window.isVisible()


def test_a_close_by_code_asks_nothing(qtbot, make_window, quit_box):
    """What closes the window by code (tests, a second instance's hand-over) has decided."""
    window = make_window()
    _loaded(qtbot, window)
    (job,) = window.add_files(["/data/slow.wav"])
    qtbot.waitUntil(lambda: window.queue.state(job) == "running", timeout=5000)
    assert window.close() and quit_box.asked == []


# ---- 2. quitting while the model loads: the window goes at once ------------------------------


def test_the_window_is_gone_before_the_close_waits_for_the_engine(make_window, monkeypatch):
    """Old: the window stayed on screen, frozen, while the close waited up to 15 s for a model
    load to return."""
    window = make_window()
    stop = window.handle.stop
    shown_while_waiting = []

    def watched_stop(*args, **kwargs):
        shown_while_waiting.append(window.isVisible())
        stop(*args, **kwargs)

    monkeypatch.setattr(window.handle, "stop", watched_stop)
    window.close()
    assert shown_while_waiting == [False]


# ---- no PortAudio: the start's device list --------------------------------------------------


def test_without_portaudio_the_start_greys_out_record_and_asks_nothing(
    qtbot,
    no_portaudio,  # noqa: F811
    make_window,
    dialogs,
):
    """Old: every start on a machine without libportaudio2 showed a "Microphone problem"
    dialog, from the device list the window asks for at start."""
    window = make_window(_engine(list_devices=None, recorder=None), language="en")
    _loaded(qtbot, window)
    qtbot.waitUntil(lambda: not window.record_action.isEnabled(), timeout=5000)
    assert dialogs == []
    assert "libportaudio2" in window.record_action.toolTip()
    assert "libportaudio2" in window.statusBar().currentMessage()
    window.refresh_devices_button.click()  # asked by hand: the dialog
    qtbot.waitUntil(lambda: len(dialogs) == 1, timeout=5000)
    assert dialogs[0][0] == tr("dialog.microphone") and "libportaudio2" in dialogs[0][1]
    assert not window.record_action.isEnabled()
    window.language_actions["zh"].trigger()
    assert window.record_action.toolTip() != dialogs[0][1]  # reworded in Chinese
    assert "libportaudio2" in window.record_action.toolTip()


def test_a_device_list_that_works_again_gives_record_back(qtbot, make_window, dialogs):
    """Installed while the app runs (engine.recorder tries PortAudio again each time)."""
    from engine.recorder import MicrophoneError

    lists = iter([MicrophoneError("microphone.no_portaudio"), []])

    def list_devices():
        result = next(lists)
        if isinstance(result, Exception):
            raise result
        return result

    window = make_window(_engine(list_devices=list_devices))
    _loaded(qtbot, window)
    qtbot.waitUntil(lambda: not window.record_action.isEnabled(), timeout=5000)
    window.refresh_devices_button.click()
    qtbot.waitUntil(window.record_action.isEnabled, timeout=5000)
    assert dialogs == [] and "libportaudio2" not in window.record_action.toolTip()


# ---- a fix typed on the Review page, not entered, when the window closes ----------------------


@pytest.mark.parametrize(
    "answer", [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Discard,
               QMessageBox.StandardButton.Apply], ids=["cancel", "discard", "apply"],
)  # fmt: skip
def test_quitting_asks_about_a_fix_typed_but_not_entered(
    qtbot, make_window, library, questions, answer
):
    """Old: Ctrl+Q with a fix typed in the Review page's box closed the window and the typing
    was gone, unasked (opening another transcript asked)."""
    from test_review_page_faults import edits, segments, type_fix

    window = make_window()
    panel = window.review_panel
    panel.confidence_bar.spin.setValue(0.5)
    tid = library.add_transcript(segments())
    panel.open(tid)
    assert panel.current_span().text == "添"
    type_fix(panel, "甜")
    questions.answer = answer
    window.quit_action.trigger()
    assert len(questions.asked) == 1 and "甜" in questions.asked[0]
    if answer == QMessageBox.StandardButton.Cancel:  # staying, the typing as it was
        assert window.isVisible() and panel.fix_edit.text() == "甜"
        assert edits(library, tid) == []
        return
    assert not window.isVisible()
    applied = answer == QMessageBox.StandardButton.Apply
    assert [op.text for op in edits(library, tid)] == (["甜"] if applied else [])
