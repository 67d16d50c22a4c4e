"""The Review page over a transcript another window (or tingxie-cli) deletes or changes: a
decision never writes into another transcript, nor over the other window's edits, and the page
says what happened and shows the transcript as stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication
from test_review_page_faults import open_panel, segments, sine

from app.errors import error_text
from app.review.page import ReviewPanel
from engine.library.review import EditOp
from engine.library.store import EditSession, Store, StoreError
from engine.results import Char, Segment

NEW = [
    Segment(
        0, 0.0, 1.0, tuple(Char(t, 0.2 * i, 0.2 * i + 0.1, 0.9) for i, t in enumerate("新的录音"))
    )
]


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "data" / "tingxie.db") as s:
        yield s


@pytest.fixture
def other(store: Store):
    """The same library as another window (another connection) has it."""
    with Store(store.path) as s:
        yield s


@pytest.fixture
def panel(qtbot, store: Store, tmp_path: Path) -> ReviewPanel:
    return open_panel(qtbot, store, segments(), sine(tmp_path / "rec.wav", 4))


def gone_text(store: Store, tid: int) -> str:
    return error_text(StoreError("store.no_transcript", path=store.path, id=tid))


def test_a_transcript_deleted_elsewhere_closes_on_the_next_decision(panel, store, other):
    tid = panel.session.tid
    other.delete_transcripts([tid])
    panel.accept_span()  # raised TranscriptNotFound inside QUndoCommand.redo
    QApplication.processEvents()  # the page closes it once the undo stack is done
    assert panel.session is None and panel.undo_stack.count() == 0
    assert panel.status.text() == gone_text(store, tid)


def test_a_decision_never_writes_into_the_transcript_given_the_deleted_id(
    panel, store, other, monkeypatch
):
    tid = panel.session.tid
    created = store.list_transcripts()[0].created_at
    other.delete_transcripts([tid])
    # The new transcript's stamp differs from the deleted one's, as it does after a person
    # has opened, and someone deleted, the old one (not within a millisecond).
    monkeypatch.setattr("engine.library.store._now", lambda: created.replace("T", "T9"))
    assert other.add_transcript(NEW, title="new one") == tid
    panel.fix_span("甜")
    QApplication.processEvents()
    assert other.segments(tid) == NEW and other.history(tid) == []
    assert [t.preview for t in other.list_transcripts("新的录音")] == ["新的录音"]
    assert other.list_transcripts("今甜天") == []
    assert panel.session is None and panel.status.text() == gone_text(store, tid)


def test_a_change_made_elsewhere_is_kept_and_the_page_reloads(panel, store, other):
    tid = panel.session.tid
    EditSession(other, tid).apply(EditOp(1, 4, 5, "园", "fix"))  # the other window's fix
    panel.accept_span()  # 添: saved over 园 before
    QApplication.processEvents()
    assert other.chain(tid) == ([EditOp(1, 4, 5, "园", "fix")], 1)
    assert [s.text for s in panel.session.segments] == ["今添天气好", "我们去公园"]
    assert panel.undo_stack.count() == 0 and not panel.session.dirty
    wanted = StoreError("store.changed_elsewhere", path=store.path, id=tid)
    assert panel.status.text() == error_text(wanted)
    panel.accept_span()  # made again, over the other window's fix
    assert other.chain(tid)[1] == 2 and panel.status.text() != error_text(wanted)


def test_a_rename_over_a_change_made_elsewhere_is_not_saved_over_it(panel, store, other):
    tid = panel.session.tid
    EditSession(other, tid).rename_speaker(0, "张三")
    panel.rename_speaker(0, "李四")
    QApplication.processEvents()
    assert other.speaker_names(tid) == {0: "张三"} == panel.session.speaker_names
