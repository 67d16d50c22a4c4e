"""Save (Ctrl+S) on the Transcript page on faults a bug hunt found: a fix made on the Review page
left out of the file, a recording saved while it still goes on, and a transcript saved while its
speakers are still being told apart, each saved silently as if it were the whole transcript."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import pytest
import test_app_window
import test_app_window_faults
from app_fakes import recorder_factory, tone
from PySide6.QtWidgets import QMessageBox
from test_app_window import _engine, _loaded

from engine.results import Char, Segment

# The window tests' own fixtures, shared rather than copied (bound by name, as pytest finds them).
dialogs = test_app_window.dialogs
library = test_app_window.library
ini = test_app_window.ini
make_window = test_app_window.make_window
questions = test_app_window_faults.questions
_no_whisper_in_the_model_cache = test_app_window_faults._no_whisper_in_the_model_cache
_chinese_ui_after_each_test = test_app_window_faults._chinese_ui_after_each_test


@pytest.fixture
def save_to(monkeypatch, tmp_path):
    """The file the Save dialog answers with."""
    target = tmp_path / "saved.txt"
    monkeypatch.setattr(
        "app.savedialog.QFileDialog.getSaveFileName", lambda *a, **k: (str(target), "TXT (*.txt)")
    )
    return target


# ---- 2. A fix made on the Review page ---------------------------------------------------------


def test_a_fix_made_on_the_review_page_is_shown_and_saved_on_the_transcript_page(
    qtbot, make_window, questions, save_to
):
    """Old: the library kept the fix, but the Transcript page kept showing the model's text and
    Ctrl+S there wrote it without the fix (speaker renames alone were copied back)."""
    window = make_window(language="en")
    _loaded(qtbot, window)
    (job,) = window.add_files(["/data/good.wav"])
    panel = window.review_panel
    qtbot.waitUntil(lambda: panel.session is not None, timeout=5000)
    window.pages.setCurrentWidget(panel)
    assert panel.current_span().text == "世界"
    panel.fix_span("视界")
    window.pages.setCurrentIndex(0)
    window.show_document(job)
    assert window.transcript.toPlainText() == "你好\n视界\n"
    window.save_action.trigger()
    assert save_to.read_text(encoding="utf-8") == "你好\n视界\n"
    assert questions.asked == []
    window.pages.setCurrentWidget(panel)
    panel.undo_stack.undo()  # the fix taken back on the Review page: taken back here too
    window.pages.setCurrentIndex(0)
    assert window.transcript.toPlainText() == "你好\n世界\n"


# ---- 1. Save during a live recording ----------------------------------------------------------


class _Streamer:
    """Closes one segment of two characters, then keeps committing characters it never closes
    (a sentence still being spoken) until finish."""

    def __init__(self) -> None:
        self.open: list[Char] = []
        self.pushes = 0

    def push(self, samples):
        self.pushes += 1
        char = Char("一二三四"[min(self.pushes, 4) - 1], 0.1 * self.pushes, 0.1 * self.pushes, 0.9)
        self.open.append(char)
        segment = None
        if self.pushes == 2:
            segment, self.open = Segment(0, 0.1, 0.2, tuple(self.open)), []
        return [_Update((char,), (), segment)]

    def finish(self):
        segment = Segment(0, self.open[0].start, self.open[-1].end, tuple(self.open))
        self.open = []
        return [_Update((), (), segment)]

    def reset(self):
        self.open = []


@dataclass
class _Update:
    committed: tuple
    tail: tuple
    segment: Segment | None = None


def test_saving_while_recording_asks_first_and_says_it_is_partial(
    qtbot, make_window, questions, save_to
):
    """Old: Ctrl+S while recording wrote only the finished segments (not the text still being
    recognized, shown on screen) and said only "Saved …", as if it were the whole recording."""
    engine = _engine(
        streamer=lambda t: _Streamer(), recorder=recorder_factory(signal=tone(60.0), realtime=1.0)
    )
    window = make_window(engine, language="en")
    _loaded(qtbot, window)
    window.start_recording()
    live = window.documents["live"]
    qtbot.waitUntil(lambda: bool(live.segments) and bool(live.open), timeout=10_000)
    asked = _asks_then_saves(window, questions, save_to)
    assert "recording is still going on" in asked and "00:00" in asked
    assert save_to.read_text(encoding="utf-8").startswith("一二")
    status = window.statusBar().currentMessage()
    assert str(save_to) in status and "part transcribed so far" in status
    window.stop_recording()
    qtbot.waitUntil(lambda: not window._recording, timeout=10_000)
    window.save_action.trigger()  # all of it now: no question
    assert len(questions.asked) == 2
    assert window.statusBar().currentMessage() == f"Saved {save_to}"


def _asks_then_saves(window, questions, save_to) -> str:
    """Save asks first: declined, nothing is written; accepted, the file is. The question."""
    questions.answer = QMessageBox.StandardButton.No
    window.save_action.trigger()
    (asked,) = questions.asked
    assert not save_to.exists()
    questions.answer = QMessageBox.StandardButton.Yes
    window.save_action.trigger()
    return asked


# ---- 3. Save while speakers are told apart ----------------------------------------------------


def test_saving_while_speakers_are_told_apart_asks_first(qtbot, make_window, questions, save_to):
    """Old: Ctrl+S on a file whose row said done, while its speakers were still being told
    apart, wrote no speaker labels and said only "Saved …"."""
    release = threading.Event()

    def speakers(audio, segments, options):
        release.wait(10)
        return [replace(s, speaker=i % 2) for i, s in enumerate(segments)]

    window = make_window(_engine(speakers=speakers), language="en", speakers="auto")
    _loaded(qtbot, window)
    (job,) = window.add_files(["/data/good.wav"])
    qtbot.waitUntil(lambda: bool(window._awaiting_speakers), timeout=5000)
    window.show_document(job)
    asked = _asks_then_saves(window, questions, save_to)
    assert "good.wav" in asked and "speaker labels" in asked
    assert save_to.read_text(encoding="utf-8") == "你好\n世界\n"
    release.set()
    qtbot.waitUntil(lambda: not window._awaiting_speakers, timeout=5000)
    window.save_action.trigger()  # the speakers are in: saved with them, no question
    assert len(questions.asked) == 2
    assert "说话人 2" in save_to.read_text(encoding="utf-8")
