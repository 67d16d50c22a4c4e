"""The SQLite store: round trips, edit history, search, migrations, faults and crashes."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from engine.library import store as store_mod
from engine.library.review import EditOp
from engine.library.store import (
    SCHEMA_VERSION,
    EditSession,
    Store,
    StoreError,
    TranscriptNotFound,
    sha256_file,
)
from engine.results import Alternative, Char, Segment, TranscriptionInfo

ROOT = Path(__file__).resolve().parents[1]


def make_segments() -> list[Segment]:
    confs = [0.9, 0.3, 0.95, 0.4, 0.9, 0.99]
    alts = (Alternative("甜", 0.3), Alternative("田", 0.1))
    a = tuple(
        Char(t, 0.1 * i, 0.1 * i + 0.08, c, alts)
        for i, (t, c) in enumerate(zip("今天天气很好", confs, strict=True))
    )
    b = tuple(Char(t, 2.0 + 0.1 * i, 2.08 + 0.1 * i, 0.8) for i, t in enumerate("我们去公园"))
    return [Segment(0, 0.0, 0.6, a), Segment(1, 2.0, 2.5, b)]


INFO = TranscriptionInfo("a.wav", 2.5, 16000, "tiny", "cpu", "float32", "sdpa", "mean")


@pytest.fixture
def db(tmp_path: Path) -> Store:
    with Store(tmp_path / "data" / "tingxie.db") as s:
        yield s


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    p = tmp_path / "rec.wav"
    p.write_bytes(b"RIFF" + bytes(range(256)) * 10)
    return p


def test_round_trip_keeps_every_field(db: Store, audio: Path):
    segs = make_segments()
    tid = db.add_transcript(segs, audio=audio, info=INFO)
    assert db.original(tid) == segs
    assert db.segments(tid) == segs
    assert db.info(tid) == INFO
    assert db.audio_path(tid) == audio.resolve()
    with sqlite3.connect(db.path) as raw:
        assert raw.execute("SELECT sha256 FROM recordings").fetchone()[0] == sha256_file(audio)
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    (row,) = db.list_transcripts()
    assert (row.id, row.title, row.duration, row.edits) == (tid, "rec.wav", 2.5, 0)
    assert row.preview == "今天天气很好我们去公园"


def test_edits_undo_redo_revert_and_history(db: Store):
    tid = db.add_transcript(make_segments(), title="t")
    assert db.add_edit(tid, EditOp(0, 1, 2, "甜", "alternative")) == 1
    assert db.add_edit(tid, EditOp(1, 0, 2, "你们", "fix")) == 2
    assert "".join(s.text for s in db.segments(tid)) == "今甜天气很好你们去公园"
    db.revert(tid, 1)  # undo
    assert "".join(s.text for s in db.segments(tid)) == "今甜天气很好我们去公园"
    db.revert(tid, 2)  # redo
    assert db.segments(tid)[1].text == "你们去公园"
    db.revert(tid, 0)  # back to the model's output
    assert db.segments(tid) == make_segments()
    db.revert(tid, 1)
    db.add_edit(tid, EditOp(0, 3, 4, "气", "accept"))  # a new edit supersedes the undone one
    ops, head = db.chain(tid)
    assert head == 2 and ops[1].kind == "accept"
    hist = db.history(tid)
    assert [(h.op.text, h.active) for h in hist] == [("甜", True), ("你们", False), ("气", True)]
    assert hist[1].seq is None  # superseded, still kept
    assert db.segments(tid)[0].chars[3].confidence == 1.0
    assert db.original(tid) == make_segments()  # the original never changes


def test_library_search_over_edited_text(db: Store):
    t1 = db.add_transcript(make_segments(), title="one")
    t2 = db.add_transcript([Segment(0, 0, 1, (Char("北", 0, 0.1, 0.9), Char("京", 0.1, 0.2, 0.9)))])
    assert [r.id for r in db.list_transcripts()] == [t2, t1]  # newest first
    assert [r.id for r in db.list_transcripts("天气很")] == [t1]  # 3+ chars: trigram index
    assert [r.id for r in db.list_transcripts("北京")] == [t2]  # short query
    assert db.list_transcripts("上海") == []
    assert [r.id for r in db.list_transcripts("one")] == [t1]  # titles too
    # LIKE wildcards are literal: neither lists every transcript, nor "o_e" the title "one"
    assert db.list_transcripts("%") == db.list_transcripts("_") == []
    assert db.list_transcripts("o_e") == db.list_transcripts("o%e") == []
    db.add_edit(t1, EditOp(1, 3, 5, "上海", "fix"))
    assert [r.id for r in db.list_transcripts("上海")] == [t1]
    assert db.list_transcripts("公园") == []
    db.revert(t1, 0)  # undo: the index follows the text in effect
    assert db.list_transcripts("上海") == [] and [r.id for r in db.list_transcripts("公园")] == [t1]
    db.revert(t1, 1)
    assert [r.id for r in db.list_transcripts("去上海")] == [t1]
    assert db.list_transcripts()[0].preview == "今天天气很好我们去上海"  # t1 changed last
    db.delete_transcript(t2)
    assert [r.id for r in db.list_transcripts()] == [t1]


def refuse_deleting(store: Store, tid: int, reason: str = "database or disk is full") -> None:
    """Make the database refuse to delete transcript `tid`, as a full disk refuses a write
    midway (a trigger of another connection: SQLite's own error, from inside the write)."""
    conn = sqlite3.connect(store.path)
    with conn:
        conn.execute(
            f"CREATE TRIGGER refused BEFORE DELETE ON transcripts WHEN old.id={tid} "
            f"BEGIN SELECT RAISE(ABORT, '{reason}'); END"
        )
    conn.close()


def test_several_transcripts_are_deleted_all_or_none(db: Store):
    """Before: one transaction a transcript, so a failure midway left some deleted."""
    ids = [db.add_transcript(make_segments(), title=f"t{n}.wav") for n in range(3)]
    refuse_deleting(db, ids[1])
    with pytest.raises(StoreError) as e:
        db.delete_transcripts(ids)
    assert e.value.code == "store.disk_full_not_done" and str(db.path) in str(e.value)
    assert sorted(r.id for r in db.list_transcripts()) == ids  # none deleted
    assert sorted(r.id for r in db.list_transcripts("天气很")) == ids  # nor its search rows
    db.delete_transcripts([ids[0], ids[2], 999])  # an id no longer held is no error
    assert [r.id for r in db.list_transcripts()] == [ids[1]]


# The version-1 schema exactly as first released, with data written by that version.
V1_SQL = """
CREATE TABLE recordings(id INTEGER PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT, duration REAL,
    created_at TEXT NOT NULL);
CREATE TABLE transcripts(id INTEGER PRIMARY KEY, recording_id INTEGER REFERENCES recordings(id),
    title TEXT NOT NULL, model TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    head INTEGER NOT NULL DEFAULT 0);
CREATE TABLE segments(id INTEGER PRIMARY KEY,
    transcript_id INTEGER NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL, start_s REAL NOT NULL, end_s REAL NOT NULL, UNIQUE(transcript_id, idx));
CREATE TABLE chars(segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL, text TEXT NOT NULL, start_s REAL NOT NULL, end_s REAL NOT NULL,
    confidence REAL NOT NULL, alternatives TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY(segment_id, idx));
CREATE TABLE edits(id INTEGER PRIMARY KEY,
    transcript_id INTEGER NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, segment INTEGER NOT NULL, first INTEGER NOT NULL, stop INTEGER NOT NULL,
    text TEXT NOT NULL, kind TEXT NOT NULL, created_at TEXT NOT NULL,
    UNIQUE(transcript_id, seq));
INSERT INTO recordings VALUES (1, '/audio/old.wav', 'ab12', 3.0, '2026-01-01T00:00:00');
INSERT INTO transcripts VALUES (1, 1, 'old.wav', 'm', '2026-01-01T00:00:00',
    '2026-01-01T00:00:00', 1);
INSERT INTO segments VALUES (7, 1, 0, 0.0, 1.0);
INSERT INTO chars VALUES (7, 0, '你', 0.0, 0.2, 0.9, '[["尼", 0.05]]'),
                         (7, 1, '号', 0.3, 0.5, 0.2, '[["好", 0.7]]');
INSERT INTO edits VALUES (1, 1, 1, 0, 1, 2, '好', 'alternative', '2026-01-01T00:00:01'),
                         (2, 1, 2, 0, 0, 1, '您', 'fix', '2026-01-01T00:00:02');
PRAGMA user_version = 1;
"""


def test_migrates_a_version_1_database(tmp_path: Path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:
        raw.executescript(V1_SQL)
    with Store(path) as s:
        assert s.schema_version() == SCHEMA_VERSION == 5
        assert s.integrity_ok()
        (seg,) = s.original(1)
        assert seg.text == seg.punctuated == "你号"  # no marks before version 4
        assert seg.speaker is None and s.speaker_names(1) == {}  # no speakers before version 3
        assert seg.chars[1].alternatives == (Alternative("好", 0.7),)
        ops, head = s.chain(1)
        assert head == 1 and len(ops) == 2  # edit 2 was undone in version 1 and stays redoable
        assert s.segments(1)[0].text == "你好"
        assert [r.id for r in s.list_transcripts("你好")] == [1]  # indexed during migration
        s.revert(1, 2)
        assert s.segments(1)[0].text == "您好"
        s.add_correction_set("c", [1], tmp_path / "c", {"pairs": 1})  # a version-2 table
        assert s.correction_sets()[0][0] == "c"
    with Store(path) as again:  # reopening does not migrate twice
        assert again.segments(1)[0].text == "您好"


def test_migrates_a_version_2_database_whose_index_lacks_the_transcript_column(tmp_path: Path):
    """The first releases of version 2 made the search index with one column: migration 5
    inserted two and failed, and the library could never be opened again."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:
        raw.executescript(V1_SQL)
        store_mod.MIGRATIONS[1](raw)
        raw.executescript(
            """
            DROP TABLE search;
            CREATE VIRTUAL TABLE search USING fts5(text, tokenize='trigram');
            INSERT INTO search(rowid, text) VALUES (7, '你号');
            PRAGMA user_version = 2;
            """
        )
    with Store(path) as s:
        assert s.schema_version() == SCHEMA_VERSION
        assert s.segments(1)[0].text == "你好"
        assert [r.id for r in s.list_transcripts("你好")] == [1]


def test_a_failed_migration_says_which_and_leaves_the_steps_before_it(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:
        raw.executescript(V1_SQL)

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO nowhere VALUES (1)")

    migrations = store_mod.MIGRATIONS
    monkeypatch.setattr(store_mod, "MIGRATIONS", (*migrations[:4], broken))
    with pytest.raises(StoreError) as failed:
        Store(path)
    assert failed.value.code == "store.migration_failed"
    assert "from schema 4 to 5" in str(failed.value) and "no such table" in str(failed.value)
    monkeypatch.setattr(store_mod, "MIGRATIONS", migrations)
    with Store(path) as s:  # a fixed Tingxie goes on from schema 4
        assert s.schema_version() == SCHEMA_VERSION
        assert s.segments(1)[0].text == "你好"


def test_newer_schema_refused(tmp_path: Path):
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer Tingxie"):
        Store(path)


def test_damaged_file_gives_clear_error(tmp_path: Path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match=r"junk\.db: the database is damaged"):
        Store(path)


def test_full_disk_keeps_work_in_memory_and_saves_later(db: Store):
    tid = db.add_transcript(make_segments())
    session = EditSession(db, tid)
    pages = db._conn.execute("PRAGMA page_count").fetchone()[0]
    db._conn.execute(f"PRAGMA max_page_count={pages}")  # SQLite's own "disk is full"
    big = "长" * 20000
    with pytest.raises(StoreError, match=r"tingxie\.db: the disk is full.*free some space"):
        session.apply(EditOp(1, 0, 5, big, "fix"))
    assert session.dirty and session.segments[1].text == big  # kept in memory
    assert db.segments(tid) == make_segments()  # nothing half-written
    db._conn.execute("PRAGMA max_page_count=1073741823")
    session.apply(EditOp(0, 0, 1, "昨", "fix"))  # the next change saves both
    assert not session.dirty
    assert "".join(s.text for s in db.segments(tid)) == "昨天天气很好" + big
    assert db.integrity_ok()


def test_a_speaker_name_is_kept_like_an_edit_when_the_disk_is_full(db: Store):
    tid = db.add_transcript(make_segments())
    session = EditSession(db, tid)
    pages = db._conn.execute("PRAGMA page_count").fetchone()[0]
    db._conn.execute(f"PRAGMA max_page_count={pages}")
    name = "张医生" * 5000  # takes new pages: the disk is full
    with pytest.raises(StoreError, match="the disk is full"):
        session.rename_speaker(0, name)
    assert session.dirty and session.speaker_names == {0: name}  # kept in memory
    assert db.speaker_names(tid) == {}
    db._conn.execute("PRAGMA max_page_count=1073741823")
    session.apply(EditOp(0, 0, 1, "昨", "fix"))  # the next change saves both
    assert db.speaker_names(tid) == {0: name} and db.chain(tid)[1] == 1


def test_restoring_a_state_brings_back_edits_a_later_edit_dropped(db: Store):
    tid = db.add_transcript(make_segments())
    session = EditSession(db, tid)
    first, second = EditOp(0, 0, 1, "昨", "fix"), EditOp(1, 0, 1, "甲", "fix")
    session.apply(first)
    before = list(session.ops)
    session.restore(session.ops, 0)
    session.apply(second)  # drops `first`, which an undo of the revert needs back
    assert session.ops == [second]
    session.restore(before, 1)
    assert [s.text for s in db.segments(tid)] == [s.text for s in session.segments]
    assert db.chain(tid) == ([first], 1) and session.segments[0].text.startswith("昨")
    with pytest.raises(ValueError, match="head=2"):
        session.restore([first], 2)


def test_read_only_database_gives_clear_error(tmp_path: Path, monkeypatch):
    path = tmp_path / "ro.db"
    with Store(path) as s:
        tid = s.add_transcript(make_segments())
    # A connection SQLite itself opens read-only, as for a file without write permission
    # (chmod cannot make a file read-only for root, who runs CI).
    monkeypatch.setattr(
        store_mod,
        "_connect",
        lambda p: sqlite3.connect(
            f"file:{p}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        ),
    )
    with Store(path) as ro:
        assert ro.segments(tid) == make_segments()  # reading still works
        session = EditSession(ro, tid)
        with pytest.raises(StoreError, match=r"ro\.db: the database is read-only.*writable"):
            session.apply(EditOp(0, 0, 1, "昨", "fix"))
        assert session.segments[0].text == "昨天天气很好"


def test_a_file_where_the_databases_folder_must_be_is_named(tmp_path: Path):
    (tmp_path / "notes").write_text("mine", encoding="utf-8")
    with pytest.raises(StoreError) as e:
        Store(tmp_path / "notes" / "sub" / "library.db")
    assert e.value.code == "store.not_a_folder"
    assert f"{tmp_path / 'notes'} is a file, not a folder" in str(e.value)
    assert (tmp_path / "notes").read_text(encoding="utf-8") == "mine"


def test_read_only_folder_gives_clear_error(tmp_path: Path, lock_folder):
    locked = lock_folder(tmp_path / "locked")
    with pytest.raises(StoreError, match=r"locked/tingxie\.db: .*folder is writable"):
        Store(locked / "tingxie.db")


def test_threads_writing_and_reading_do_not_corrupt(db: Store):
    tids = [db.add_transcript(make_segments(), title=f"t{i}") for i in range(3)]
    errors: list[BaseException] = []

    def work(tid: int) -> None:
        try:
            for i in range(20):
                db.add_edit(tid, EditOp(0, 0, 1, "一二三四五六七八九十"[i % 10], "fix"))
                db.list_transcripts("天气")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in tids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(db.chain(t)[1] == 20 for t in tids)
    assert db.integrity_ok()


WRITER = """
import sys
from engine.results import Char, Segment
from engine.library.review import EditOp
from engine.library.store import Store

store = Store(sys.argv[1])
chars = tuple(Char("字", 0.1 * i, 0.1 * i + 0.1, 0.5) for i in range(50))
tid = store.add_transcript([Segment(0, 0.0, 5.0, chars)], title="crash")
i = 0
while True:
    seq = store.add_edit(tid, EditOp(0, i % 50, i % 50 + 1, "改", "fix"))
    print(tid, seq, flush=True)
    i += 1
"""


def test_killed_writer_loses_nothing_committed(tmp_path: Path):
    path = tmp_path / "crash.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITER), str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    committed = 0
    try:
        for line in proc.stdout:
            tid, committed = map(int, line.split())
            if committed >= 40:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert committed >= 40, "the writer did not get going"
    with Store(path) as s:
        assert s.integrity_ok()
        ops, head = s.chain(tid)
        assert head >= committed  # every acknowledged edit is there
        assert len(ops) == head
        assert s.segments(tid)[0].text.count("改") == min(head, 50)


def test_numpy_scalars_from_a_decoder_are_stored(db: Store):
    import numpy as np

    c = Char(
        "好",
        np.float32(0.5),
        np.float64(0.7),
        np.float32(0.25),
        (Alternative("号", np.float32(0.5)),),
    )
    tid = db.add_transcript([Segment(0, np.float32(0.5), np.float32(0.7), (c,))])
    (seg,) = db.segments(tid)
    assert seg.chars[0].confidence == 0.25 and seg.chars[0].alternatives[0].prob == 0.5
    assert type(seg.chars[0].start) is float


def test_a_relative_data_folder_is_taken_from_where_the_app_started(tmp_path, monkeypatch):
    """A portable `TINGXIE_DATA_DIR=data tingxie`: tuning jobs run in their own folder, where
    the relative path named another place (every job failed at once, its path doubled)."""
    from engine.library.store import DATA_DIR_ENV, default_path

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_DIR_ENV, "data")
    path = default_path()
    assert path.is_absolute() and path.parent == tmp_path / "data"


def test_the_originals_kept_are_the_last_few_read(db: Store, monkeypatch):
    """Each transcript opened once stayed in memory for the library's life (a 3-hour one holds
    ~12 MB); only the last few read are kept, and a dropped one reads back the same."""
    monkeypatch.setattr(store_mod, "_ORIGINALS_KEPT", 2)
    tids = [db.add_transcript(make_segments(), title=f"t{i}") for i in range(4)]
    db._originals.clear()
    first = db.original(tids[0])
    for tid in tids[1:]:
        db.original(tid)
    assert list(db._originals) == tids[-2:]
    assert db.original(tids[0]) == first
    assert list(db._originals) == [tids[-1], tids[0]]


@pytest.fixture
def two_windows(tmp_path: Path, monkeypatch) -> tuple[Store, Store]:
    """Two connections to one library, as two app windows (or the app and tingxie-cli) have,
    every time stamp distinct (a transcript stored again is told apart by its created_at)."""
    stamps = (f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.000+00:00" for i in range(3600))
    monkeypatch.setattr(store_mod, "_now", lambda: next(stamps))
    path = tmp_path / "data" / "tingxie.db"
    with Store(path) as a, Store(path) as b:
        yield a, b


def test_a_session_never_writes_into_a_transcript_given_its_deleted_id(two_windows):
    a, b = two_windows
    tid = a.add_transcript(make_segments())
    session = EditSession(a, tid)
    a.original(tid)  # in a's cache
    b.delete_transcripts([tid])
    new = [
        Segment(
            0,
            0.0,
            0.4,
            tuple(Char(t, 0.1 * i, 0.1 * i + 0.08, 0.9) for i, t in enumerate("新的录音")),
        )
    ]
    assert b.add_transcript(new, title="new one") == tid  # SQLite gives the id again
    with pytest.raises(TranscriptNotFound):
        session.apply(EditOp(0, 1, 2, "甜", "fix"))
    assert b.segments(tid) == new and b.history(tid) == []
    assert b.list_transcripts()[0].preview == "新的录音"
    assert a.segments(tid) == new  # not the deleted transcript's text from a's cache


def test_a_session_refuses_to_save_over_a_change_made_elsewhere(two_windows):
    a, b = two_windows
    tid = a.add_transcript(make_segments())
    mine, theirs = EditSession(a, tid), EditSession(b, tid)
    theirs.apply(EditOp(1, 3, 5, "公圆", "fix"))
    with pytest.raises(StoreError, match=r"changed in another window.*reloaded") as e:
        mine.apply(EditOp(0, 1, 2, "甜", "fix"))
    assert e.value.code == "store.changed_elsewhere"
    assert b.chain(tid) == ([EditOp(1, 3, 5, "公圆", "fix")], 1)  # their edit stands
    again = EditSession(a, tid)  # reloaded: the change is made again over theirs
    again.apply(EditOp(0, 1, 2, "甜", "fix"))
    assert a.chain(tid)[1] == 2 and theirs.segments[1].text == "我们去公圆"
    with pytest.raises(StoreError, match="changed in another window"):
        theirs.rename_speaker(0, "张三")  # names too: theirs read the chain before `again`
    assert a.speaker_names(tid) == {}


def test_a_session_saves_again_after_its_own_failed_save(db: Store):
    """What a session read or saved last is what it compares: its own save that failed (a
    full disk) changed nothing stored, and the next one saves both changes."""
    tid = db.add_transcript(make_segments())
    session = EditSession(db, tid)
    session.apply(EditOp(0, 0, 1, "昨", "fix"))
    session.rename_speaker(0, "张三")
    pages = db._conn.execute("PRAGMA page_count").fetchone()[0]
    db._conn.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(StoreError, match="the disk is full"):
        session.apply(EditOp(1, 0, 5, "长" * 20000, "fix"))
    db._conn.execute("PRAGMA max_page_count=1073741823")
    session.restore(session.ops, 1)
    assert db.chain(tid)[1] == 1 and db.speaker_names(tid) == {0: "张三"}
