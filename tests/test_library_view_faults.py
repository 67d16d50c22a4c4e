"""Library faults found by a bug hunter: a character searched alone where the index converted it
in its phrase (乾 of 乾隆), and the Library page's selection after a refresh."""

from __future__ import annotations

import test_library_faults
from test_library_faults import ids

from app.library import LibraryView
from engine.library.store import Store
from engine.results import Char, Segment


def said(text: str) -> list[Segment]:
    chars = tuple(Char(t, 0.1 * k, 0.1 * k + 0.08, 0.9) for k, t in enumerate(text))
    return [Segment(0, 0.0, 0.1 * len(text), chars)]


# The library tests' store fixture and search helper, shared rather than copied.
db = test_library_faults.db


# ---- 4: a query converted alone ---------------------------------------------------------------


def test_search_finds_a_character_its_phrase_kept_unconverted(db: Store):
    """Old: 乾 found nothing in 乾隆皇帝下江南: the index keeps 乾 in 乾隆, the query alone
    became 干."""
    emperor = db.add_transcript(said("乾隆皇帝下江南"), title="a.wav")
    clean = db.add_transcript(said("干净的房间"), title="b.wav")
    hair = db.add_transcript(said("我們剪頭髮"), title="c.wav")
    assert ids(db, "乾") == [clean, emperor]  # as typed, and in Simplified as before
    assert ids(db, "乾隆，皇") == [emperor]  # punctuation aside
    assert ids(db, "干") == [clean]
    assert ids(db, "髮") == ids(db, "发") == [hair]  # either script still
    assert ids(db, "头发") == [hair]


# ---- 5: the selection after a refresh -----------------------------------------------------------


def test_a_refresh_keeps_the_selected_transcript_selected(qtbot, db: Store):
    """Old: the selection stayed on the row number, so a transcription finishing while the
    Library page was shown moved it to another transcript, and Enter opened that one."""
    first, second, third = (db.add_transcript(said("今天天气"), title=n) for n in "abc")
    library = LibraryView(db)
    qtbot.addWidget(library)
    library.show()
    assert library.ids == [third, second, first]
    library.table.selectRow(1)
    db.add_transcript(said("新的录音"), title="new.wav")  # a transcription finishes
    library.refresh()
    assert library.ids[library.table.currentRow()] == second
    assert [i.row() for i in library.table.selectionModel().selectedRows()] == [2]
    opened: list[int] = []
    library.open_requested.connect(opened.append)
    library._open_current()
    assert opened == [second]


def test_a_refresh_clears_the_selection_when_its_transcript_is_gone(qtbot, db: Store):
    """The selected transcript no longer listed (deleted, or not matching the search): no row
    stays selected, and Enter opens the top one as when nothing was chosen."""
    first, second = (db.add_transcript(said("今天天气"), title=n) for n in "ab")
    library = LibraryView(db)
    qtbot.addWidget(library)
    library.show()
    library.table.selectRow(1)
    db.delete_transcript(first)
    library.refresh()
    assert library.ids == [second]
    assert library.table.currentRow() == -1
    assert not library.table.selectionModel().hasSelection()
