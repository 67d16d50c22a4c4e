"""Library faults found by a bug hunter: a delete that read the whole search index per id, a full
disk promising to keep changes it dropped, titles found only in their stored script, and the
originals' cache changed outside the lock."""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from pathlib import Path

import pytest
from test_review_cli import run_cli

from app import i18n
from app.errors import error_text
from engine.library import store as store_mod
from engine.library.review import EditOp
from engine.library.store import EditSession, Store, StoreError
from engine.results import Alternative, Char, Segment


def said(text: str) -> list[Segment]:
    chars = tuple(Char(t, 0.1 * k, 0.1 * k + 0.08, 0.9, ()) for k, t in enumerate(text))
    return [Segment(0, 0.0, 0.1 * len(text), chars)]


@pytest.fixture
def db(tmp_path: Path):
    with Store(tmp_path / "tingxie.db") as s:
        yield s


# ---- 1: deleting many transcripts ---------------------------------------------------------------

_FULL_SCAN = re.compile(r"^SCAN search( VIRTUAL TABLE INDEX \d+:)?$")


def test_a_delete_reads_only_the_index_rows_of_the_transcripts_deleted(db: Store):
    """Before: DELETE … WHERE transcript=? (an unindexed column) scanned every transcript's
    text once per id deleted: 100 ids of a 3 000-transcript library took 2.6 s."""
    tids = [db.add_transcript(said(f"今天开会第{n}次"), title=f"t{n}") for n in range(3)]
    statements: list[str] = []
    db._conn.set_trace_callback(statements.append)
    db.delete_transcripts(tids[:2])
    db._conn.set_trace_callback(None)
    deletes = [s for s in statements if s.lstrip().upper().startswith("DELETE FROM SEARCH")]
    assert deletes
    for sql in deletes:
        params = (tids[0],) * sql.count("?")
        plan = db._conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        assert not any(_FULL_SCAN.match(row[3]) for row in plan), (sql, plan)
    assert [r.id for r in db.list_transcripts("今天开会")] == [tids[2]]
    assert db._conn.execute("SELECT transcript FROM search").fetchall() == [(tids[2],)]


# ---- 2: a full disk ---------------------------------------------------------------------------


def fill_the_disk(store: Store) -> None:
    """No page more for the database: SQLite fails as on a full disk ("database or disk is
    full")."""
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count={pages}")


def assert_nothing_kept_promised(error: StoreError) -> None:
    assert error.code == "store.disk_full_not_done"
    assert "nothing was changed" in str(error) and "kept" not in str(error)
    try:
        i18n.set_language("zh")
        assert "未做任何更改" in error_text(error) and "保留" not in error_text(error)
    finally:
        i18n.set_language("en")


def test_a_full_disk_says_a_rename_or_delete_was_not_made(db: Store):
    """Before: "your work is kept and saved with the next change", and the new title was lost,
    the transcripts not deleted: neither is ever retried."""
    tid = db.add_transcript(said("你好" * 200), title="a")
    fill_the_disk(db)
    with pytest.raises(StoreError) as e:
        db.rename_transcript(tid, "会议" * 5000)
    assert_nothing_kept_promised(e.value)
    with pytest.raises(StoreError) as e:
        db.rename_speaker(tid, 0, "张三" * 5000)
    assert_nothing_kept_promised(e.value)
    db._conn.execute(
        "CREATE TEMP TRIGGER refused BEFORE DELETE ON transcripts "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    with pytest.raises(StoreError) as e:
        db.delete_transcripts([tid])
    assert_nothing_kept_promised(e.value)
    assert [(r.id, r.title) for r in db.list_transcripts()] == [(tid, "a")]


def test_a_full_disk_still_promises_a_review_edit_it_keeps(db: Store):
    """An EditSession keeps the edit and saves it with the next change: that message stays."""
    tid = db.add_transcript(said("你好" * 200), title="a")
    session = EditSession(db, tid)
    fill_the_disk(db)
    with pytest.raises(StoreError) as e:
        session.apply(EditOp(0, 0, 1, "您" * 20000, "fix"))
    assert e.value.code == "store.disk_full" and session.dirty
    db._conn.execute("PRAGMA max_page_count=1073741823")
    session.flush()
    assert db.segments(tid)[0].text.startswith("您" * 20000)


def test_a_full_disk_while_upgrading_says_the_library_was_not_changed(tmp_path, monkeypatch):
    """Opening (and upgrading) an older library on a full disk: nothing is kept for later."""
    path = tmp_path / "old.db"
    with Store(path) as s:
        s.add_transcript(said("今天下午开会讨论预算" * 300), title="a")
    raw = sqlite3.connect(path, isolation_level=None)  # as version 4 left it, its index emptied
    raw.execute("DELETE FROM search")
    raw.execute("ALTER TABLE transcripts DROP COLUMN preview")
    raw.execute("PRAGMA user_version=4")
    raw.execute("VACUUM")  # no free page left for the new index
    raw.close()
    pages = sqlite3.connect(path).execute("PRAGMA page_count").fetchone()[0]
    real = store_mod._connect

    def full(target, uri=False):
        conn = real(target, uri)
        conn.execute(f"PRAGMA max_page_count={pages}")
        return conn

    monkeypatch.setattr(store_mod, "_connect", full)
    with pytest.raises(StoreError) as e:
        Store(path)
    assert_nothing_kept_promised(e.value)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 4


# ---- 3: titles in either script -----------------------------------------------------------------


def test_a_title_is_found_in_either_script_punctuation_aside(db: Store):
    """Before: only as stored: 會議 found nothing for the title 会议记录."""
    meeting = db.add_transcript(said("你好"), title="会议记录")
    other = db.add_transcript(said("你好"), title="会议-记录 2.wav")
    for query in ("會議記錄", "會議", "会议记录", "記錄", "會議，記錄"):
        assert sorted(r.id for r in db.list_transcripts(query)) == [meeting, other], query
    assert [r.id for r in db.list_transcripts("2.wav")] == [other]


def test_cli_finds_the_title_it_shows_in_traditional(db: Store, capsys):
    """Before: `--script traditional` showed 會議記錄, and searching it found nothing."""
    db.add_transcript(said("你好"), title="会议记录")
    assert run_cli(["library", "會議記錄", "--db", str(db.path), "--script", "traditional"]) == 0
    assert "會議記錄" in capsys.readouterr().out


# ---- 5: the originals' cache ------------------------------------------------------------------


class _SpyLock:
    """The store's lock, running `then` once when it is next released: another thread taking
    the lock at that moment (its own `original` evicting, a delete popping)."""

    def __init__(self, then) -> None:
        self._lock, self._depth, self.then = threading.RLock(), 0, then

    def __enter__(self):
        self._lock.__enter__()
        self._depth += 1
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        self._lock.__exit__(*exc)
        if self._depth == 0 and self.then is not None:
            then, self.then = self.then, None
            then()


def test_the_originals_cache_is_changed_only_under_the_lock(db: Store):
    """Before: `original` moved its id to the cache's end after releasing the lock, so another
    thread's eviction or delete in between raised a bare KeyError, read as "deleted"."""
    tid = db.add_transcript(said("你好"), title="a")
    db._lock = _SpyLock(db._originals.clear)
    assert db.original(tid) == said("你好")


# ---- 4: the upgrade's re-index --------------------------------------------------------------


def test_the_upgrade_reindex_is_logged_and_keeps_every_field(tmp_path, caplog):
    """Before: minutes with no word (the window not shown yet); the index is now built without
    parsing the alternatives it never reads, and the log says what the wait is for."""
    path = tmp_path / "old.db"
    alts = (Alternative("甜", 0.3),)
    segments = [
        Segment(k, k, k + 1, tuple(Char(t, k, k + 0.1, 0.5, alts, "，") for t in text), 1)
        for k, text in enumerate(("今天天气", "很好"))
    ]
    with Store(path) as s:
        tid = s.add_transcript(segments, title="a")
        s.add_edit(tid, EditOp(1, 0, 2, "不错", "fix"))
    with sqlite3.connect(path) as raw:  # as version 4 left it
        raw.execute("ALTER TABLE transcripts DROP COLUMN preview")
        raw.execute("PRAGMA user_version=4")
    with caplog.at_level(logging.INFO, logger="tingxie.store"), Store(path) as s:
        assert "re-indexing 1 transcripts" in caplog.text
        assert [r.id for r in s.list_transcripts("天气不错")] == [tid]
        assert s.list_transcripts()[0].preview == "今天天气不错"
        assert s.original(tid) == segments
