"""Library faults found by a bug hunter: search across scripts, punctuation and segments, the
`tingxie-cli library` command's database, listing and messages, foreign databases, multi-letter
tokens in Traditional, and the same-name hints of the app's library."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from test_review_cli import run_cli

from engine.library import script
from engine.library import store as store_mod
from engine.library.review import EditOp
from engine.library.store import Store, StoreError, TranscriptSummary, local_time
from engine.results import Char, Segment


def seg(i: int, text: str, start: float = 0.0, marks: dict[int, str] | None = None) -> Segment:
    marks = marks or {}
    chars = tuple(
        Char(t, start + 0.1 * k, start + 0.1 * k + 0.08, 0.9, (), marks.get(k, ""))
        for k, t in enumerate(text)
    )
    return Segment(i, start, start + 0.1 * len(text), chars)


# Shown as 下午的会议，讨论头发护理预算还没有定。 (two segments, punctuation as marks).
MEETING = [
    seg(0, "下午的会议讨论头发护理", marks={4: "，"}),
    seg(1, "预算还没有定", 2.0, {5: "。"}),
]


@pytest.fixture
def db(tmp_path: Path):
    with Store(tmp_path / "tingxie.db") as s:
        yield s


def ids(store: Store, query: str) -> list[int]:
    return [r.id for r in store.list_transcripts(query)]


# ---- 1, 2: search finds the text as it is shown ------------------------------------------------


def test_search_finds_a_query_typed_in_either_script(db: Store):
    """Old: 會議討論 and 頭髮 (what the Traditional view shows) found nothing."""
    simplified = db.add_transcript(MEETING, title="meeting.wav")
    traditional = db.add_transcript([seg(0, "我們剪頭髮")], title="barber.wav")
    assert ids(db, "會議討論") == ids(db, "会议讨论") == [simplified]
    assert ids(db, "頭髮") == [traditional, simplified]  # the other one stored in Traditional
    assert ids(db, "头发") == [traditional, simplified]


def test_search_ignores_punctuation_and_spaces_and_spans_segments(db: Store):
    """Old: a query with the shown comma, a space, or running into the next segment found
    nothing."""
    tid = db.add_transcript(MEETING, title="meeting.wav")
    for query in ("下午的会议，讨论", "护理 预算", "头发护理预算还没有定", "护理预算。"):
        assert ids(db, query) == [tid], query
    assert ids(db, "meeting.wav") == [tid]  # titles as typed
    assert ids(db, "，") == []  # punctuation alone matches no text
    db.add_edit(tid, EditOp(1, 0, 2, "经费", "fix"))  # the index follows an edit at a boundary
    assert ids(db, "护理经费") == [tid] and ids(db, "护理预算") == []
    db.revert(tid, 0)
    assert ids(db, "护理预算") == [tid] and ids(db, "护理经费") == []
    assert db.list_transcripts()[0].preview == "下午的会议讨论头发护理预算还没有定"


def test_a_library_indexed_by_segment_is_reindexed_when_opened(tmp_path: Path):
    """A version-4 database (one index row per segment, no preview column) keeps working and
    finds phrases across segments after its migration."""
    path = tmp_path / "old.db"
    with Store(path) as s:
        tid = s.add_transcript(MEETING, title="meeting.wav")
        s.add_edit(tid, EditOp(0, 0, 2, "上午", "fix"))
    with sqlite3.connect(path) as raw:  # as version 4 left it
        raw.execute("DELETE FROM search")
        for seg_id, text in ((1, "上午的会议讨论头发护理"), (2, "预算还没有定")):
            raw.execute(
                "INSERT INTO search(rowid, text, transcript) VALUES (?,?,1)", (seg_id, text)
            )
        if store_mod._has_column(raw, "transcripts", "preview"):
            raw.execute("ALTER TABLE transcripts DROP COLUMN preview")
        raw.execute("PRAGMA user_version=4")
    with Store(path) as s:
        assert s.schema_version() == store_mod.SCHEMA_VERSION and s.integrity_ok()
        assert ids(s, "护理预算") == ids(s, "上午的") == [tid] and ids(s, "下午的") == []
        assert s.list_transcripts()[0].preview == "上午的会议讨论头发护理预算还没有定"


def test_the_app_library_finds_a_traditional_query(qtbot, db: Store):
    from app.library import LibraryView

    tid = db.add_transcript(MEETING, title="meeting.wav")
    view = LibraryView(db)
    qtbot.addWidget(view)
    for query in ("會議，討論", "護理預算"):
        view.search.setText(query)
        view.refresh()
        assert view.ids == [tid], query


def test_cli_script_converts_the_listing_and_finds_traditional(db: Store, capsys):
    """Old: `--script traditional` listed 会议讨论 and found nothing for 會議."""
    db.add_transcript([seg(0, "下午的会议讨论头发")], title="会议.wav")
    for query in ([], ["會議"]):
        assert run_cli(["library", *query, "--db", str(db.path), "--script", "traditional"]) == 0
        out = capsys.readouterr().out
        assert "會議.wav" in out and "下午的會議討論頭髮" in out, query


# ---- 3, 4: the database named by --db ----------------------------------------------------------


def test_cli_refuses_a_missing_database_and_expands_the_home_folder(
    tmp_path: Path, monkeypatch, capsys
):
    """Old: a typo or `--db=~/…` made a new empty database and printed nothing."""
    home = tmp_path / "home"
    with Store(home / "data" / "tingxie.db") as s:
        s.add_transcript([seg(0, "今天天气很好")], title="walk.wav")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    typo = home / "dta" / "tingxie.db"
    assert run_cli(["library", "--db", str(typo)]) == 1
    err = capsys.readouterr().err
    assert f"{typo}: no such library database" in err and "leave out --db" in err
    assert run_cli(["library", "--db=~/data/tingxie.db"]) == 0
    assert "walk.wav" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.rglob("*.db")) == ["tingxie.db"]  # nothing new
    with pytest.raises(StoreError) as excinfo:
        Store(typo, create=False)
    assert excinfo.value.code == "store.missing" and not typo.parent.exists()


def test_cli_says_when_nothing_is_listed(db: Store, capsys):
    assert run_cli(["library", "--db", str(db.path)]) == 0
    assert capsys.readouterr().err.strip() == "no transcripts"
    db.add_transcript([seg(0, "今天天气很好")], title="walk.wav")
    assert run_cli(["library", "上海", "--db", str(db.path)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == "no transcript contains “上海”"


def _foreign(path: Path, version: int) -> bytes:
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)")
        raw.execute("INSERT INTO notes(body) VALUES ('hi')")
        raw.execute(f"PRAGMA user_version={version}")
    raw.close()
    return path.read_bytes()


@pytest.mark.parametrize("version", [0, 52])
def test_another_programs_database_is_refused_and_left_as_it_was(tmp_path: Path, version: int):
    """Old: tables added and WAL switched on in it, or "made by a newer Tingxie"."""
    path = tmp_path / "notes.sqlite"
    before = _foreign(path, version)
    with pytest.raises(StoreError, match=r"notes\.sqlite: not a Tingxie library") as excinfo:
        Store(path)
    assert excinfo.value.code == "store.not_tingxie" and "notes" in str(excinfo.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.sqlite"]  # no -wal, no -shm


# ---- 5, 7, 8: the listing and the messages of `tingxie-cli library` ----------------------------


def test_cli_lists_every_transcript(db: Store, capsys):
    """Old: the listing stopped at 500 without a word."""
    oldest = db.add_transcript([seg(0, "最早的会议记录")], title="oldest.wav")
    stamp = "2027-01-01T00:00:00.000+00:00"
    with db._write() as conn:
        conn.executemany(
            "INSERT INTO transcripts(title, created_at, updated_at) VALUES (?, ?, ?)",
            [(f"rec{n}.wav", stamp, stamp) for n in range(520)],
        )
    assert run_cli(["library", "--db", str(db.path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 521 and lines[-1].split()[0] == str(oldest)


def test_cli_prints_the_local_time_like_the_app(db: Store, monkeypatch, capsys):
    """Old: the UTC time, cut at the minute, without saying so."""
    monkeypatch.setenv("TZ", "CST-8")  # UTC+8, no time zone database needed
    time.tzset()
    try:
        monkeypatch.setattr(store_mod, "_now", lambda: "2026-01-01T20:30:00.000+00:00")
        db.add_transcript([seg(0, "今天天气很好")], title="walk.wav")
        assert run_cli(["library", "--db", str(db.path)]) == 0
        assert "2026-01-02 04:30" in capsys.readouterr().out
        assert local_time("2026-01-01T20:30:00.000+00:00", seconds=True) == "2026-01-02 04:30:00"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_cli_messages_name_the_problem_and_the_way_out(db: Store, tmp_path: Path, capsys):
    tid = db.add_transcript([seg(0, "今天天气很好")], title="walk.wav")
    assert run_cli(["library", "--db", str(db.path), "--export", "walk.wav", "x.txt"]) == 1
    err = capsys.readouterr().err
    assert "'walk.wav' is not a transcript id" in err and "tingxie-cli library walk.wav" in err
    target = tmp_path / "exports" / "walk.txt"
    assert run_cli(["library", "--db", str(db.path), "--export", str(tid), str(target)]) == 1
    err = capsys.readouterr().err
    assert f"{target.parent}: no such folder" in err and ".tmp" not in err
    assert run_cli(["library", "--db", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path} is a folder" in err and str(tmp_path / "tingxie.db") in err


# ---- 6: Traditional with multi-letter tokens ---------------------------------------------------


def test_a_multi_letter_token_keeps_the_phrase_conversion():
    """Old: "ok的头发" fell back to one character at a time and gave 頭發 (the wrong 发)."""
    mixed = Segment(0, 0, 1, tuple(Char(t, 0.2 * i, 0.2 * i + 0.2, 0.9)
                                   for i, t in enumerate(["ok", "的", "头", "发"])))  # fmt: skip
    (converted,) = script.convert_segments([mixed], "traditional")
    assert [c.text for c in converted.chars] == ["ok", "的", "頭", "髮"]
    assert script.convert_pieces(["ok", "头", "发"], "traditional") == ["ok", "頭", "髮"]
    assert script.convert_pieces(["ok", "头"], "original") == ["ok", "头"]


# ---- 9: a very long search -------------------------------------------------------------------


def test_a_very_long_search_is_refused_clearly(db: Store, qtbot):
    """Old: "database error (LIKE or GLOB pattern too complex); the change is not saved"."""
    from app.library import LibraryView

    db.add_transcript([seg(0, "今天天气很好")], title="walk.wav")
    with pytest.raises(StoreError) as excinfo:
        db.list_transcripts("今天天气很好" * 3000)
    assert excinfo.value.code == "store.query_too_long"
    assert "18000 characters" in str(excinfo.value) and "database" not in str(excinfo.value)
    view = LibraryView(db)
    qtbot.addWidget(view)
    view.search.setText("今天天气很好" * 3000)
    view.refresh()
    assert "18000" in view.message.text()


# ---- 10: same-name hints in the app's library --------------------------------------------------


def _row(i: int, title: str, path: str | None) -> TranscriptSummary:
    stamp = f"2026-01-0{i}T10:00:00.000+00:00"
    return TranscriptSummary(i, title, Path(path) if path else None, 1.0, stamp, stamp, 0, "")


def test_same_name_hints_are_never_empty_nor_doubled_slashes():
    """Old: "meeting.m4a ()" for a transcript without audio, "a.wav (//x)" at the root."""
    from app.library import distinct_titles

    stamp = local_time("2026-01-02T10:00:00.000+00:00", seconds=True)
    rows = [_row(1, "meeting.m4a", "/home/u/work/meeting.m4a"), _row(2, "meeting.m4a", None)]
    assert distinct_titles(rows) == ["meeting.m4a (work)", f"meeting.m4a ({stamp})"]
    rows = [_row(1, "a.wav", "/x/a.wav"), _row(2, "a.wav", "/y/x/a.wav")]
    assert distinct_titles(rows) == ["a.wav (/x)", "a.wav (y/x)"]
