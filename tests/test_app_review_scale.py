"""The Review page and the window on a long transcript: work per decision grows with what the
decision changed, not with the transcript. A scale hunt on a 3-hour transcript (3 000 segments)
measured seconds per decision; these tests count the calls that cost it, never time."""

from __future__ import annotations

from pathlib import Path

import pytest
import test_app_window
from test_app_review_fix_all import open_panel
from test_app_window import _loaded

from engine.library import script
from engine.library.store import EditSession, Store
from engine.results import Alternative, Char, Segment

# The window tests' own fixtures, shared rather than copied (bound by name, as pytest finds them).
dialogs = test_app_window.dialogs
library = test_app_window.library
ini = test_app_window.ini
make_window = test_app_window.make_window
_no_whisper_in_the_model_cache = test_app_window._no_whisper_in_the_model_cache
_chinese_ui_after_each_test = test_app_window._chinese_ui_after_each_test


def seg(i: int, text: str, doubtful: tuple[int, ...] = ()) -> Segment:
    start = 2.0 * i
    alternatives = (Alternative("发", 0.2),)
    chars = tuple(
        Char(
            t,
            start + 0.25 * k,
            start + 0.25 * k + 0.2,
            0.3 if k in doubtful else 0.95,
            alternatives,
        )
        for k, t in enumerate(text)
    )
    return Segment(i, chars[0].start, chars[-1].end, chars)


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "data" / "tingxie.db") as s:
        yield s


class _Calls:
    """Counts the calls of a method patched on its class, and passes them on."""

    def __init__(self, monkeypatch, owner: object, name: str) -> None:
        self.count = 0
        real = getattr(owner, name)

        def counted(*args, **kwargs):
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)


# ---- 2. "Fix all occurrences": a step a place, one replay and save ---------------------------


def test_fix_all_is_a_step_a_place_made_and_taken_back_all_with_one_replay_and_save(
    qtbot, store, monkeypatch
):
    """Older: one undo command per place, each replaying the whole history and saving it (FTS
    re-indexed, fsync): 100 places took 30 s on a 3-hour transcript. Then one command for all,
    undone only all together. Now one command per place, pushed, and taken back with "undo
    all", in one replay, one save and one redraw; Ctrl+Z and redo move one place each."""
    segments = [seg(0, "我们去公圆", doubtful=(3, 4))]
    segments += [seg(i, "他说公圆很大") for i in range(1, 30)]
    panel = open_panel(qtbot, store, segments)
    tid = panel.session.tid
    panel.fix_span("公园")
    assert panel.fix_all_action.isEnabled()
    before, steps = store.chain(tid), panel.undo_stack.count()
    restores = _Calls(monkeypatch, EditSession, "restore")
    saves = _Calls(monkeypatch, Store, "save_chain")
    changes = []
    panel.transcript_changed.connect(lambda: changes.append(1))

    def calls() -> tuple[int, int, int]:
        counted = (restores.count, saves.count, len(changes))
        restores.count = saves.count = 0
        changes.clear()
        return counted

    panel.fix_all()
    assert [s.text for s in panel.session.segments[1:]] == ["他说公园很大"] * 29
    assert calls() == (1, 1, 1)
    assert panel.undo_stack.count() == steps + 29
    # the history keeps one edit per place (what "History" lists, what training reads)
    ops, head = store.chain(tid)
    assert [op.kind for op in ops] == ["fix"] + ["replace"] * 29 and head == 30
    assert store.segments(tid) == panel.session.segments
    panel.fix_all_action.trigger()  # "undo all": every place; the fix the user heard stays
    assert calls() == (1, 1, 1)
    assert panel.session.segments[0].text == "我们去公园"
    assert {s.text for s in panel.session.segments[1:]} == {"他说公圆很大"}
    assert store.chain(tid) == (ops, before[1])  # the places stay in History…, undone
    panel.undo_stack.redo()  # one place, one replay and save
    assert calls() == (1, 1, 1)
    assert [s.text for s in panel.session.segments[1:3]] == ["他说公园很大", "他说公圆很大"]
    assert store.segments(tid) == panel.session.segments
    panel.undo_stack.undo()
    assert calls() == (1, 1, 1)
    assert {s.text for s in panel.session.segments[1:]} == {"他说公圆很大"}


# ---- 3. A display script: only what changed is converted --------------------------------------


def test_a_decision_in_traditional_converts_only_the_segment_it_changed(qtbot, store, monkeypatch):
    """Old: every decision, undo and redo converted every segment again (OpenCC on each
    character and alternative): 1.3 s each on a 3-hour transcript."""
    segments = [seg(i, "头发发展了", doubtful=(1,) if i % 2 else ()) for i in range(40)]
    panel = open_panel(qtbot, store, segments)
    panel.script_box.setCurrentIndex(panel.script_box.findData("traditional"))
    converted = _Calls(monkeypatch, script, "convert_pieces")  # once per segment converted
    panel.accept_span()
    assert converted.count == 1
    panel.fix_span("頭髮")  # typed in Traditional: stored as 头发 (one more conversion)
    assert converted.count == 3
    panel.undo_stack.undo()
    panel.undo_stack.undo()
    panel.undo_stack.redo()
    assert converted.count == 6  # each a segment of the two decisions, no other
    whole = script.convert_segments(panel.session.segments, "traditional")
    assert panel._shown == whole
    assert panel.view.toPlainText().split("\n")[:3] == [s.text for s in whole[:3]]


def test_the_converted_segments_follow_a_new_script_and_a_new_transcript(qtbot, store):
    panel = open_panel(qtbot, store, [seg(0, "头发", doubtful=(0,))])
    panel.script_box.setCurrentIndex(panel.script_box.findData("traditional"))
    assert panel._shown[0].text == "頭髮"
    panel.script_box.setCurrentIndex(panel.script_box.findData("original"))
    assert panel._shown[0].text == "头发"
    panel.script_box.setCurrentIndex(panel.script_box.findData("traditional"))
    other = store.add_transcript([seg(0, "发展", doubtful=(0,))])
    panel.open(other)
    assert panel._shown[0].text == "發展"


# ---- 1. The Transcribe page, hidden behind the Review page -------------------------------------


def test_review_decisions_rebuild_the_hidden_transcribe_page_once_when_it_shows(
    qtbot, make_window, monkeypatch, tmp_path
):
    """Old: each decision on the Review page rebuilt the whole transcript on the Transcribe
    page behind it (3 s a decision on a 3-hour transcript). It is rebuilt once, when shown,
    and Save there writes the text as the Review page left it."""
    window = make_window(language="en")
    _loaded(qtbot, window)
    (job,) = window.add_files(["/data/good.wav"])
    panel = window.review_panel
    qtbot.waitUntil(lambda: panel.session is not None, timeout=5000)
    assert window.current == job
    window.pages.setCurrentWidget(panel)
    rebuilt = _Calls(monkeypatch, window.transcript, "set_segments")
    panel.fix_span("视界")
    panel.undo_stack.undo()
    panel.undo_stack.redo()
    assert rebuilt.count == 0
    assert [s.text for s in window.documents[job].segments] == ["你好", "视界"]
    window.pages.setCurrentIndex(0)
    assert rebuilt.count == 1 and window.transcript.toPlainText() == "你好\n视界\n"
    target = tmp_path / "saved.txt"
    monkeypatch.setattr(
        "app.savedialog.QFileDialog.getSaveFileName", lambda *a, **k: (str(target), "TXT")
    )
    window.save_action.trigger()
    assert target.read_text(encoding="utf-8") == "你好\n视界\n"
    # shown, the page follows each change made through the Review page's session at once
    panel.undo_stack.undo()
    assert rebuilt.count == 2 and window.transcript.toPlainText() == "你好\n世界\n"
    window.pages.setCurrentWidget(panel)
    window.pages.setCurrentIndex(0)  # nothing changed meanwhile: nothing to rebuild
    assert rebuilt.count == 2


# ---- 4. Memory: finished files the library holds ------------------------------------------------


def test_a_stored_file_not_shown_lets_go_of_its_text_and_reads_it_back_when_shown(
    qtbot, make_window, library
):
    """Old: every queued file's segments stayed in the window for the whole session (32 MB
    for a 3-hour transcript, GBs for a batch). One the library holds is read back from it, or
    from the Review page when that has it open, with the changes made there."""
    window = make_window(language="en")
    _loaded(qtbot, window)
    ready = []
    window.transcript_ready.connect(lambda *args: ready.append(args))
    first, second = window.add_files(["/data/a.wav", "/data/b.wav"])
    qtbot.waitUntil(lambda: len(ready) == 2, timeout=10_000)
    assert window.current == first and window.documents[first].segments
    doc = window.documents[second]
    assert doc.tid is not None and doc.segments == [] and doc.released
    panel = window.review_panel
    panel.open(doc.tid)
    panel.fix_span("视界")
    assert doc.segments == []  # the Review page's change does not load it back
    window.show_document(second)
    assert [s.text for s in doc.segments] == ["你好", "视界"] and not doc.released
    assert window.transcript.toPlainText() == "你好\n视界\n"
    assert window.documents[first].released  # shown no more: let go in turn
    panel.open(window.documents[first].tid)  # the second one's session closes, saved
    window.show_document(first)
    assert [s.text for s in window.documents[first].segments] == ["你好", "世界"]
    assert doc.released
    window.show_document(second)  # from the library this time
    assert [s.text for s in doc.segments] == ["你好", "视界"]
