"""The SQLite store: recordings, transcripts, their characters, the edit history and correction
sets, in one database in the user's data folder.

Audio stays in files beside it, referenced by path and sha256. The schema is versioned with
`PRAGMA user_version` and ordered migration functions; another program's database is refused
before anything in it changes. One connection serialises every write under a lock, in WAL
mode, and each edit is committed as it is made, so a crash loses nothing committed and a
reader (the library view) never blocks the writer. Every database failure becomes a one-line
`StoreError` that names the file and says what to do; the in-memory work of an `EditSession`
survives it and is saved with the next change.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import TingxieError
from engine.normalize import NormalizeOptions, normalize_text
from engine.results import Alternative, Char, Segment, TranscriptionInfo, renamed_speakers

from .review import EditOp, VerifiedPair, apply_edits, verified_pairs

__all__ = [
    "SCHEMA_VERSION",
    "EditRecord",
    "EditSession",
    "Store",
    "StoreError",
    "StoredState",
    "TranscriptNotFound",
    "TranscriptSummary",
    "default_path",
    "local_time",
    "sha256_file",
]

log = logging.getLogger("tingxie.store")

DB_NAME = "tingxie.db"
# Setting this environment variable moves the data folder (tests, portable installs).
DATA_DIR_ENV = "TINGXIE_DATA_DIR"
_PREVIEW_CHARS = 80
# Transcripts whose model output `Store.original` keeps: the one in review, and a few opened
# before it, to go back to.
_ORIGINALS_KEPT = 4
# Longest search text taken: SQLite refuses LIKE patterns over 50 000 bytes (4 per character
# at most, twice in a query), and a phrase of a few dozen characters already finds a transcript.
MAX_QUERY_CHARS = 1000
# Tables of the first schema: a database holding tables but not these is another program's.
_OWN_TABLES = frozenset({"recordings", "transcripts", "segments", "chars", "edits"})
# What opening a library the user cannot write fails with (`_describe`): where only reading is
# asked for, it is read without writing (`Store`'s read_only).
_UNWRITABLE = ("store.read_only", "store.cannot_open")


class StoreError(TingxieError, RuntimeError):
    """The store could not read or write; the message names the file and what to do."""


class TranscriptNotFound(KeyError):
    """An id the store holds no transcript for. The one place its wording lives: the CLI raises
    it too, for an id SQLite cannot hold, and callers catch it as the KeyError it is."""

    def __init__(self, tid: int) -> None:
        super().__init__(f"transcript {tid} is not in the store")


def default_path() -> Path:
    """The database in the user's data folder (or in $TINGXIE_DATA_DIR), as an absolute path:
    tuning jobs run in their own folder, where a relative one would name another place."""
    folder = os.environ.get(DATA_DIR_ENV)
    if not folder:
        import platformdirs

        folder = platformdirs.user_data_dir("tingxie", appauthor=False)
    return Path(folder).expanduser().absolute() / DB_NAME


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def local_time(stamp: str, seconds: bool = False) -> str:
    """A stored (UTC) time stamp as the user's local time, as the app and the CLI show it."""
    when = datetime.fromisoformat(stamp).astimezone()
    return when.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


# ---- schema -------------------------------------------------------------------------------


def _script(conn: sqlite3.Connection, sql: str) -> None:
    """Run `;`-separated statements inside the caller's transaction (`executescript` would
    commit it first)."""
    for statement in sql.split(";"):
        if statement.strip():
            conn.execute(statement)


def _v1(conn: sqlite3.Connection) -> None:
    """The first schema: recordings, transcripts, original segments and characters, edits."""
    _script(
        conn,
        """
        CREATE TABLE recordings(
            id INTEGER PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT, duration REAL,
            created_at TEXT NOT NULL);
        CREATE TABLE transcripts(
            id INTEGER PRIMARY KEY, recording_id INTEGER REFERENCES recordings(id),
            title TEXT NOT NULL, model TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
            head INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE segments(
            id INTEGER PRIMARY KEY,
            transcript_id INTEGER NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL, start_s REAL NOT NULL, end_s REAL NOT NULL,
            UNIQUE(transcript_id, idx));
        CREATE TABLE chars(
            segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL, text TEXT NOT NULL, start_s REAL NOT NULL, end_s REAL NOT NULL,
            confidence REAL NOT NULL, alternatives TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY(segment_id, idx));
        CREATE TABLE edits(
            id INTEGER PRIMARY KEY,
            transcript_id INTEGER NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL, segment INTEGER NOT NULL, first INTEGER NOT NULL,
            stop INTEGER NOT NULL, text TEXT NOT NULL, kind TEXT NOT NULL,
            created_at TEXT NOT NULL, UNIQUE(transcript_id, seq));
        """,
    )


def _v2(conn: sqlite3.Connection) -> None:
    """Undone edits kept as history, transcription info, correction sets, text search."""
    _script(
        conn,
        """
        CREATE TABLE edits_new(
            id INTEGER PRIMARY KEY,
            transcript_id INTEGER NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
            seq INTEGER, segment INTEGER NOT NULL, first INTEGER NOT NULL,
            stop INTEGER NOT NULL, text TEXT NOT NULL, kind TEXT NOT NULL,
            created_at TEXT NOT NULL, superseded_at TEXT, UNIQUE(transcript_id, seq));
        INSERT INTO edits_new(id, transcript_id, seq, segment, first, stop, text, kind,
                              created_at)
            SELECT id, transcript_id, seq, segment, first, stop, text, kind, created_at
            FROM edits;
        DROP TABLE edits;
        ALTER TABLE edits_new RENAME TO edits;
        ALTER TABLE transcripts ADD COLUMN info TEXT;
        CREATE TABLE correction_sets(
            id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, path TEXT NOT NULL,
            created_at TEXT NOT NULL, summary TEXT NOT NULL DEFAULT '{}');
        CREATE TABLE correction_set_transcripts(
            set_id INTEGER NOT NULL REFERENCES correction_sets(id) ON DELETE CASCADE,
            transcript_id INTEGER NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
            PRIMARY KEY(set_id, transcript_id));
        """,
    )
    _create_search(conn)


def _create_search(conn: sqlite3.Connection) -> None:
    """The search index, empty (`_index` fills it). The trigram tokenizer indexes substrings:
    Chinese has no spaces."""
    try:
        conn.execute(
            "CREATE VIRTUAL TABLE search USING fts5(text, transcript UNINDEXED, tokenize='trigram')"
        )
    except sqlite3.OperationalError:
        log.info("SQLite lacks FTS5 trigram; library search scans the text")
        conn.execute("CREATE TABLE search(rowid INTEGER PRIMARY KEY, text TEXT, transcript INT)")


def _v3(conn: sqlite3.Connection) -> None:
    """Speakers: each segment's (engine.speakers; NULL when not told apart, as in older
    transcripts) and the names given to them in a transcript (JSON {"0": "张三"})."""
    conn.execute("ALTER TABLE segments ADD COLUMN speaker INTEGER")
    conn.execute("ALTER TABLE transcripts ADD COLUMN speaker_names TEXT NOT NULL DEFAULT '{}'")


def _v4(conn: sqlite3.Connection) -> None:
    """The punctuation mark after each character (`Char.after`; '' in older transcripts)."""
    conn.execute("ALTER TABLE chars ADD COLUMN mark TEXT NOT NULL DEFAULT ''")


def _v5(conn: sqlite3.Connection) -> None:
    """Search as the text is read: one index row per transcript (a phrase may run into the next
    segment), in one script without punctuation (`_searchable`); the preview kept with the
    transcript, since the index no longer holds the text as written."""
    conn.execute("ALTER TABLE transcripts ADD COLUMN preview TEXT NOT NULL DEFAULT ''")
    # Version 2 to 4 kept one row per segment, and the first releases of version 2 made the
    # table without its transcript column: made anew, whatever it was.
    conn.execute("DROP TABLE search")
    _create_search(conn)
    tids = conn.execute("SELECT id FROM transcripts").fetchall()
    # Seconds for a thousand long transcripts, before the window shows: the log says why.
    log.info("re-indexing %d transcripts for the new search", len(tids))
    for (tid,) in tids:
        _index(conn, tid, _edited_text(conn, tid))


# Migration i (counting from 1) brings a database from user_version i-1 to i.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2, _v3, _v4, _v5)
SCHEMA_VERSION = len(MIGRATIONS)


# ---- rows <-> records ---------------------------------------------------------------------


def _original(conn: sqlite3.Connection, tid: int, alternatives: bool = True) -> list[Segment]:
    """Transcript `tid` as the model gave it; without its characters' `alternatives` where
    only the text is wanted (the search index: parsing them took most of a re-index)."""
    # Migration 2 reads transcripts written before migration 4 added the marks.
    marks = "c.mark" if _has_column(conn, "chars", "mark") else "''"
    # Migration 2 reads segments written before migration 3 added their speakers.
    speaker = "speaker" if _has_column(conn, "segments", "speaker") else "NULL"
    rows = conn.execute(
        f"SELECT id, idx, start_s, end_s, {speaker} FROM segments WHERE transcript_id=? "
        "ORDER BY idx",
        (tid,),
    ).fetchall()
    chars: dict[int, list[Char]] = {seg_id: [] for seg_id, *_ in rows}
    for seg_id, text, s, e, conf, alts, mark in conn.execute(  # one query, not one a segment
        "SELECT c.segment_id, c.text, c.start_s, c.end_s, c.confidence, "
        f"{'c.alternatives' if alternatives else 'NULL'}, {marks} FROM chars c "
        "JOIN segments g ON g.id = c.segment_id WHERE g.transcript_id=? ORDER BY g.idx, c.idx",
        (tid,),
    ):
        alts = tuple(Alternative(t, p) for t, p in json.loads(alts)) if alternatives else ()
        chars[seg_id].append(Char(text, s, e, conf, alts, mark))
    return [
        Segment(id=idx, start=start, end=end, chars=tuple(chars[seg_id]), speaker=who)
        for seg_id, idx, start, end, who in rows
    ]


def _has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


def _chain(conn: sqlite3.Connection, tid: int) -> list[EditOp]:
    rows = conn.execute(
        "SELECT segment, first, stop, text, kind FROM edits "
        "WHERE transcript_id=? AND seq IS NOT NULL ORDER BY seq",
        (tid,),
    )
    return [EditOp(*row) for row in rows]


def _head(conn: sqlite3.Connection, tid: int) -> int:
    row = conn.execute("SELECT head FROM transcripts WHERE id=?", (tid,)).fetchone()
    if row is None:
        raise TranscriptNotFound(tid)
    return row[0]


def _names(stored: str) -> dict[int, str]:
    """Speaker names as stored (JSON, whose keys are strings) by speaker number."""
    return {int(k): v for k, v in json.loads(stored).items()}


def _row(conn: sqlite3.Connection, tid: int, columns: str) -> tuple:
    """`columns` of transcript `tid`; TranscriptNotFound when it is gone."""
    row = conn.execute(f"SELECT {columns} FROM transcripts WHERE id=?", (tid,)).fetchone()
    if row is None:
        raise TranscriptNotFound(tid)
    return row


def _state(conn: sqlite3.Connection, tid: int) -> StoredState:
    created, head, names = _row(conn, tid, "created_at, head, speaker_names")
    return StoredState(created, tuple(_chain(conn, tid)), head, _names(names))


def _edited_text(conn: sqlite3.Connection, tid: int) -> list[Segment]:
    """Transcript `tid` as edited, for its text alone (`_original`'s `alternatives`)."""
    original = _original(conn, tid, alternatives=False)
    return apply_edits(original, _chain(conn, tid)[: _head(conn, tid)])


def _searchable(text: str) -> str:
    """Text as the index holds it and a search looks for it: Simplified, without punctuation
    or spaces, half-width and lower-case (engine.normalize), so a query typed as the transcript
    is shown (in Traditional, with its commas) finds it."""
    return normalize_text(text)


# Titles are searched as the text is, normalized as the query runs (`list_transcripts`), not
# stored so: a library's few thousand titles take ~0.1 s, once, then come from here.
_searchable_title = functools.lru_cache(maxsize=16384)(_searchable)


def _query_forms(query: str) -> list[str]:
    """What a search looks for in the index: the query `_searchable`, and as typed (normalized
    but not converted), since the index converts a whole text by phrase and may keep a
    character that the query converted alone does not (乾隆 stays 乾隆, 乾 alone becomes 干)."""
    as_typed = normalize_text(query, NormalizeOptions(to_simplified=False))
    return [form for form in dict.fromkeys((_searchable(query), as_typed)) if form]


def _index(conn: sqlite3.Connection, tid: int, segments: Sequence[Segment]) -> None:
    """Put the current text of transcript `tid` in the search index (one row, rowid = tid)
    and its preview."""
    text = "".join(seg.text for seg in segments)
    conn.execute("DELETE FROM search WHERE rowid=?", (tid,))
    conn.execute(
        "INSERT INTO search(rowid, text, transcript) VALUES (?, ?, ?)",
        (tid, _searchable(text), tid),
    )
    conn.execute("UPDATE transcripts SET preview=? WHERE id=?", (text[:_PREVIEW_CHARS], tid))


@dataclass(frozen=True, slots=True)
class TranscriptSummary:
    """One row of the library."""

    id: int
    title: str
    audio_path: Path | None
    duration: float | None
    created_at: str
    updated_at: str
    edits: int  # edits in effect
    preview: str  # the start of the edited text


@dataclass(frozen=True, slots=True)
class StoredState:
    """A transcript's edits and speaker names as stored. A session saves over them only while
    they are as it read or last saved them: another window, or tingxie-cli, may have changed
    them since. `created_at` tells the transcript from a later one SQLite gave its id after a
    delete (stamped to the millisecond, after the one deleted was opened)."""

    created_at: str
    ops: tuple[EditOp, ...]
    head: int
    speaker_names: Mapping[int, str]


@dataclass(frozen=True, slots=True)
class EditRecord:
    """One entry of a transcript's history; `active` is False once undone or superseded."""

    seq: int | None
    op: EditOp
    created_at: str
    active: bool


def sha256_file(path: Path) -> str:
    """Checksum of a file read in 1 MiB blocks (recordings can be hours long)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _describe(path: Path, e: BaseException, kept: bool = False) -> StoreError:
    """The one-line error for a database failure, saying what to do. A full disk is told apart
    by what becomes of the change: `kept` where the caller keeps it and saves it with the next
    one (an `EditSession`, a transcription waiting for the library), otherwise it is not made
    and the user must do it again."""
    msg = str(e).lower()
    if "is full" in msg:
        return StoreError("store.disk_full" if kept else "store.disk_full_not_done", path=path)
    if isinstance(e, (FileExistsError, NotADirectoryError)):  # a file where a folder must be
        parent = next((p for p in path.parents if p.is_file()), path.parent)
        return StoreError("store.not_a_folder", path=path, parent=parent)
    if "readonly" in msg or "read-only" in msg or isinstance(e, PermissionError):
        return StoreError("store.read_only", path=path, variable=DATA_DIR_ENV)
    if "locked" in msg or "busy" in msg:
        return StoreError("store.busy", path=path)
    if "not a database" in msg or "malformed" in msg:
        return StoreError("store.damaged", path=path, detail=e)
    if "unable to open" in msg or isinstance(e, OSError):
        return StoreError("store.cannot_open", path=path, detail=e)
    return StoreError("store.error", path=path, detail=e)


def _connect(target: str | Path, uri: bool = False) -> sqlite3.Connection:
    """Open the database file, or a `file:` URI (a seam for tests that need a read-only
    connection), with `searchable()` for the title search."""
    conn = sqlite3.connect(
        target, timeout=10.0, isolation_level=None, check_same_thread=False, uri=uri
    )
    conn.create_function("searchable", 1, _searchable_title, deterministic=True)
    return conn


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that writes nothing: `mode=ro`, or, where SQLite cannot make the WAL index
    beside the file (a folder or disk the user cannot write), `immutable=1`. An immutable read
    skips the WAL, so SQLite's error stands while the WAL holds changes (a crash left them):
    those would otherwise be missing from what is read, unseen."""
    uri = path.absolute().as_uri()
    try:
        conn = _connect(f"{uri}?mode=ro", uri=True)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master")  # SQLite opens the file here
        except sqlite3.Error:
            conn.close()
            raise
        return conn
    except sqlite3.OperationalError as e:
        # "attempt to write a readonly database", or "unable to open database file" where even
        # opening the index is refused (a read-only mount)
        unwritable = any(words in str(e).lower() for words in ("readonly", "unable to open"))
        if not unwritable or _wal_size(path):
            raise
    return _connect(f"{uri}?mode=ro&immutable=1", uri=True)


def _wal_size(path: Path) -> int:
    """Bytes in the database's WAL file (0 when there is none: a clean close removes it)."""
    try:
        return os.stat(f"{path}-wal").st_size
    except OSError:
        return 0


class Store:
    """The database. Safe to share between threads: one connection, writes under a lock.

    `create=False` (for a path typed on the command line) refuses a file that does not exist,
    where a typo would otherwise start a new, empty library.

    `read_only` (listing, export: nothing to write) reads a library the user cannot write (a
    read-only file, folder or disk) without writing anything, where opening it for writing
    fails; a write then raises store.read_only. One an older Tingxie made must be upgraded
    first, which writes: the error stands for it.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        create: bool = True,
        read_only: bool = False,
        on_upgrade: Callable[[int, int], None] | None = None,
    ) -> None:
        # `--db=~/…` reaches here with the ~ (the shell expands it only at a word's start).
        self.path = Path(path).expanduser() if path is not None else default_path()
        # Called (old, new schema) before an older library is upgraded, which can take
        # seconds on a big one (_v5 re-indexes it): a front end says it is busy meanwhile.
        self._on_upgrade = on_upgrade
        self._lock = threading.RLock()
        # By id: (created_at, segments), see `original`.
        self._originals: OrderedDict[int, tuple[str, list[Segment]]] = OrderedDict()
        if self.path.is_dir():
            raise StoreError("store.is_folder", path=self.path, file=self.path / DB_NAME)
        if not create and not self.path.exists():
            raise StoreError("store.missing", path=self.path, default=default_path())
        try:
            self._open(read_only=False)
        except StoreError as e:
            if not read_only or e.code not in _UNWRITABLE or not self.path.is_file():
                raise
            self._open(read_only=True)
            if self.schema_version() < SCHEMA_VERSION:
                self.close()
                raise

    def _open(self, read_only: bool) -> None:
        self._read_only = read_only
        try:
            if read_only:
                self._conn = _connect_read_only(self.path)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = _connect(self.path)
        except (sqlite3.Error, OSError) as e:
            raise _describe(self.path, e) from e
        try:
            self._configure()
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    def _configure(self) -> None:
        try:
            self._check_ours()
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA busy_timeout=10000")
            if self._read_only:  # the journal and syncing are the writer's settings
                return
            if self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
                log.warning("%s: WAL mode unavailable, using the rollback journal", self.path)
            # FULL: a committed edit survives a power cut, not only a crash.
            self._conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as e:
            raise _describe(self.path, e) from e

    def _check_ours(self) -> None:
        """Refuse, before WAL mode or a migration changes anything, a database that is neither
        empty nor Tingxie's (--db naming another program's file), or one a newer Tingxie made.
        Reading the tables is the first real read: a damaged file fails here."""
        tables = {
            name
            for (name,) in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if tables and not _OWN_TABLES.issubset(tables):
            shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
            raise StoreError("store.not_tingxie", path=self.path, tables=shown)
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                "store.newer_schema", path=self.path, version=version, supported=SCHEMA_VERSION
            )

    # -- plumbing --

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self, kept: bool = False) -> Iterator[sqlite3.Connection]:
        """One committed transaction; any failure rolls back and becomes a StoreError (`kept`:
        the caller retries the change, see `_describe`)."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    # SQLite may have rolled back already (a full disk does).
                    if self._conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise _describe(self.path, e, kept) from e

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as e:
                raise _describe(self.path, e) from e

    def _migrate(self) -> None:
        """Bring the schema up to date; read-only, an older one is refused (`__init__`)."""
        if self._read_only:
            return
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if 0 < version < SCHEMA_VERSION and self._on_upgrade is not None:  # 0: a new file
            self._on_upgrade(version, SCHEMA_VERSION)
        for number in range(version + 1, SCHEMA_VERSION + 1):
            try:
                with self._write() as conn:
                    MIGRATIONS[number - 1](conn)
                    conn.execute(f"PRAGMA user_version={number}")
            except StoreError as e:
                if e.code != "store.error":  # full, busy, read-only: said as they are
                    raise
                detail = e.params["detail"]
                raise StoreError(
                    "store.migration_failed",
                    path=self.path,
                    version=number - 1,
                    number=number,
                    detail=detail,
                ) from e
            log.info("%s: migrated to schema %d", self.path, number)

    def schema_version(self) -> int:
        with self._read() as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]

    def integrity_ok(self) -> bool:
        with self._read() as conn:
            return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # -- transcripts --

    def add_transcript(
        self,
        segments: Sequence[Segment],
        *,
        audio: str | Path | None = None,
        title: str | None = None,
        info: TranscriptionInfo | None = None,
        duration: float | None = None,
    ) -> int:
        """Save a model's output and return its id. The audio is referenced, never copied."""
        audio_path = Path(audio).resolve() if audio is not None else None
        digest = None
        if audio_path is not None:
            try:
                digest = sha256_file(audio_path)
            except OSError as e:  # keep the transcript; the reference shows what is missing
                log.warning("%s: cannot read the recording for its checksum (%s)", audio_path, e)
        if duration is None:
            duration = info.duration if info else max((s.end for s in segments), default=0.0)
        if title is None:
            title = audio_path.name if audio_path else _now()[:19].replace("T", " ")
        now = _now()
        # The app keeps a transcript the library refused and adds it with the next change.
        with self._write(kept=True) as conn:
            rec_id = None
            if audio_path is not None:
                rec_id = conn.execute(
                    "INSERT INTO recordings(path, sha256, duration, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (str(audio_path), digest, duration, now),
                ).lastrowid
            tid = conn.execute(
                "INSERT INTO transcripts(recording_id, title, model, created_at, updated_at, "
                "info) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    rec_id,
                    title,
                    info.model if info else None,
                    now,
                    now,
                    json.dumps(_info_dict(info), ensure_ascii=False) if info else None,
                ),
            ).lastrowid
            for idx, seg in enumerate(segments):
                seg_id = conn.execute(
                    "INSERT INTO segments(transcript_id, idx, start_s, end_s, speaker) "
                    "VALUES (?,?,?,?,?)",
                    (tid, idx, float(seg.start), float(seg.end), seg.speaker),
                ).lastrowid
                conn.executemany(
                    "INSERT INTO chars(segment_id, idx, text, start_s, end_s, confidence, "
                    "alternatives, mark) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [_char_row(seg_id, i, c) for i, c in enumerate(seg.chars)],
                )
            _index(conn, tid, segments)
        return tid

    def original(self, tid: int) -> list[Segment]:
        """The model's output as it was saved (edits never change it). The last few read are
        kept (every decision replays its transcript's edits on it), not all: a 3-hour one holds
        ~12 MB, and a day of opening transcripts kept each of them.
        Each is kept with its transcript's created_at: another window may delete it, and SQLite
        give its id to the next transcript stored."""
        with self._read() as conn:
            (created,) = _row(conn, tid, "created_at")
            kept = self._originals.get(tid)
            if kept is None or kept[0] != created:
                kept = self._originals[tid] = (created, _original(conn, tid))
            # Under the lock: another thread's read or delete may drop `tid` from the cache.
            self._originals.move_to_end(tid)
            while len(self._originals) > _ORIGINALS_KEPT:
                self._originals.popitem(last=False)
        return list(kept[1])

    def chain(self, tid: int) -> tuple[list[EditOp], int]:
        """The edits that can be in effect (in order) and how many of them are (the head)."""
        with self._read() as conn:
            return _chain(conn, tid), _head(conn, tid)

    def state(self, tid: int) -> StoredState:
        """What a session compares before it saves (`save_chain`'s `base`)."""
        with self._read() as conn:
            return _state(conn, tid)

    def segments(self, tid: int) -> list[Segment]:
        """The transcript as edited (its current state)."""
        ops, head = self.chain(tid)
        return apply_edits(self.original(tid), ops[:head])

    def save_chain(
        self,
        tid: int,
        ops: Sequence[EditOp],
        head: int,
        edited: Sequence[Segment] | None = None,
        speaker_names: Mapping[int, str] | None = None,
        base: StoredState | None = None,
    ) -> StoredState:
        """Make the stored edits equal `ops` with `head` in effect, in one transaction; returns
        the state saved.

        Stored edits from the first difference on are kept as superseded history, never deleted.
        `edited` (the result of `ops[:head]`, when the caller has it) saves replaying them;
        `speaker_names`, when given, are saved in the same transaction. With `base` (what the
        caller read or last saved) nothing is saved over a change made since elsewhere: a
        transcript deleted, or deleted and its id given again, raises TranscriptNotFound, and
        one changed StoreError (store.changed_elsewhere).
        """
        if not 0 <= head <= len(ops):
            raise ValueError(f"head={head}: must be between 0 and {len(ops)}")
        if edited is None:
            edited = apply_edits(self.original(tid), ops[:head])
        now = _now()
        with self._write(kept=True) as conn:  # an EditSession keeps its changes and retries
            now_stored = _state(conn, tid)
            if base is not None:
                _refuse_changed(self.path, tid, base, now_stored)
            stored, old_head = now_stored.ops, now_stored.head
            same = 0
            while same < min(len(stored), len(ops)) and stored[same] == ops[same]:
                same += 1
            conn.execute(
                "UPDATE edits SET seq=NULL, superseded_at=? WHERE transcript_id=? AND seq>?",
                (now, tid, same),
            )
            conn.executemany(
                "INSERT INTO edits(transcript_id, seq, segment, first, stop, text, kind, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (tid, seq, op.segment, op.first, op.stop, op.text, op.kind, now)
                    for seq, op in enumerate(ops[same:], start=same + 1)
                ],
            )
            conn.execute("UPDATE transcripts SET head=?, updated_at=? WHERE id=?", (head, now, tid))
            if speaker_names is not None:
                conn.execute(
                    "UPDATE transcripts SET speaker_names=? WHERE id=?",
                    (json.dumps(dict(speaker_names), ensure_ascii=False), tid),
                )
            # Both states share the first `k` edits: the text differs only when edits after
            # them were in effect before or are now.
            k = min(same, old_head, head)
            if old_head > k or head > k:
                _index(conn, tid, edited)
        names = now_stored.speaker_names if speaker_names is None else dict(speaker_names)
        return StoredState(now_stored.created_at, tuple(ops), head, names)

    def add_edit(self, tid: int, op: EditOp) -> int:
        """Apply one edit after the current head (dropping anything undone); returns its seq."""
        ops, head = self.chain(tid)
        self.save_chain(tid, [*ops[:head], op], head + 1)
        return head + 1

    def revert(self, tid: int, head: int) -> None:
        """Return the transcript to its state after `head` edits (0: the model's output); the
        later edits stay redoable until a new edit is made."""
        ops, _ = self.chain(tid)
        self.save_chain(tid, ops, head)

    def history(self, tid: int) -> list[EditRecord]:
        """Every edit ever made to a transcript, oldest first, undone ones included."""
        with self._read() as conn:
            head = _head(conn, tid)
            rows = conn.execute(
                "SELECT seq, segment, first, stop, text, kind, created_at FROM edits "
                "WHERE transcript_id=? ORDER BY id",
                (tid,),
            ).fetchall()
        return [
            EditRecord(seq, EditOp(*op), created, seq is not None and seq <= head)
            for seq, *op, created in rows
        ]

    def verified_pairs(self, tid: int) -> list[VerifiedPair]:
        """The (audio span, text) pairs a person has checked, in time order."""
        ops, head = self.chain(tid)
        return [p for _, p in verified_pairs(self.original(tid), ops[:head])]

    def audio_path(self, tid: int) -> Path | None:
        return self.recording(tid)[0]

    def recording(self, tid: int) -> tuple[Path | None, str | None, float | None]:
        """(path, sha256, duration in seconds) of the transcript's recording as noted when it
        was transcribed (each None when not known)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT r.path, r.sha256, r.duration FROM transcripts t LEFT JOIN recordings r "
                "ON r.id = t.recording_id WHERE t.id=?",
                (tid,),
            ).fetchone()
        if row is None:
            raise TranscriptNotFound(tid)
        return (Path(row[0]) if row[0] else None), row[1], row[2]

    def info(self, tid: int) -> TranscriptionInfo | None:
        with self._read() as conn:
            row = conn.execute("SELECT info FROM transcripts WHERE id=?", (tid,)).fetchone()
        if row is None:
            raise TranscriptNotFound(tid)
        return TranscriptionInfo(**json.loads(row[0])) if row[0] else None

    def speaker_names(self, tid: int) -> dict[int, str]:
        """The names given to a transcript's speakers (by Segment.speaker); the others are
        called 说话人 N (engine.results.speaker_name)."""
        with self._read() as conn:
            (names,) = _row(conn, tid, "speaker_names")
        return _names(names)

    def rename_speaker(self, tid: int, speaker: int, name: str) -> dict[int, str]:
        """Call `speaker` `name` everywhere in the transcript (an empty name gives back its
        default one); returns all the names."""
        names = renamed_speakers(self.speaker_names(tid), speaker, name)
        with self._write() as conn:
            conn.execute(
                "UPDATE transcripts SET speaker_names=?, updated_at=? WHERE id=?",
                (json.dumps(names, ensure_ascii=False), _now(), tid),
            )
        return names

    def delete_transcript(self, tid: int) -> None:
        """Delete transcript `tid` (`delete_transcripts`)."""
        self.delete_transcripts([tid])

    def delete_transcripts(self, tids: Sequence[int]) -> None:
        """Delete transcripts `tids`, with their text and edits (their audio files stay), in one
        transaction: all of them, or, when the database cannot take it (locked, read-only, a
        full disk), none, and StoreError says why. An id no longer held is no error (deleted
        in another window, or with the command line)."""
        rows = [(tid,) for tid in tids]
        with self._write() as conn:
            # By rowid (= tid, `_index`): the transcript column is unindexed, and matching it
            # read the whole index once per id.
            conn.executemany("DELETE FROM search WHERE rowid=?", rows)
            conn.executemany("DELETE FROM transcripts WHERE id=?", rows)
            for tid in tids:  # under the lock, as `original` changes it
                self._originals.pop(tid, None)

    def rename_transcript(self, tid: int, title: str) -> str:
        """Give transcript `tid` the title `title` (spaces around it dropped); returns it.

        The search reads titles from the transcripts table itself (`list_transcripts`), so
        nothing else needs updating. updated_at stays: it is when the text or its speakers last
        changed (the library's Changed column, and its newest-first order), and a new title
        changes neither; it would otherwise move a years-old recording to the top.
        Raises ValueError for a blank title, StoreError (store.no_transcript) for an id the
        library no longer holds (deleted in another window, or with the command line)."""
        title = title.strip()
        if not title:
            raise ValueError("a transcript's title cannot be empty")
        with self._write() as conn:
            found = conn.execute("UPDATE transcripts SET title=? WHERE id=?", (title, tid))
            if found.rowcount == 0:
                raise StoreError("store.no_transcript", path=self.path, id=tid)
        return title

    # -- library --

    def list_transcripts(self, query: str = "", limit: int | None = 500) -> list[TranscriptSummary]:
        """Past transcripts, newest first (`limit` of them, None: all); `query` matches a
        substring of the title as typed, or of the title or the edited text in either script
        (the text across its segments), punctuation and spaces aside (`_query_forms`)."""
        query = query.strip()
        if len(query) > MAX_QUERY_CHARS:
            raise StoreError("store.query_too_long", length=len(query), limit=MAX_QUERY_CHARS)
        sql = (
            "SELECT t.id, t.title, r.path, r.duration, t.created_at, t.updated_at, t.head, "
            "t.preview FROM transcripts t LEFT JOIN recordings r ON r.id = t.recording_id "
        )
        args: list[object] = []
        if query:
            # The trigram index serves LIKE directly for patterns of 3+ characters.
            sql += "WHERE t.title LIKE ? ESCAPE '\\' "
            args.append("%" + _escape_like(query) + "%")
            for text in _query_forms(query):  # punctuation alone matches titles as typed only
                sql += (
                    "OR searchable(t.title) LIKE ? ESCAPE '\\' "
                    "OR t.id IN (SELECT transcript FROM search WHERE text LIKE ? ESCAPE '\\') "
                )
                args += ["%" + _escape_like(text) + "%"] * 2
        sql += "ORDER BY t.updated_at DESC, t.id DESC LIMIT ?"
        args.append(-1 if limit is None else limit)
        with self._read() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [
            TranscriptSummary(
                id=tid,
                title=title,
                audio_path=Path(path) if path else None,
                duration=duration,
                created_at=created,
                updated_at=updated,
                edits=head,
                preview=preview or "",
            )
            for tid, title, path, duration, created, updated, head, preview in rows
        ]

    # -- correction sets --

    def add_correction_set(
        self, name: str, transcript_ids: Sequence[int], path: Path, summary: dict
    ) -> int:
        """Record a tuning dataset made from verified pairs (replacing one of the same name),
        linked to those of `transcript_ids` the library still holds: one may be deleted while
        the set's clips are written (in the app, or by another process)."""
        with self._write() as conn:
            conn.execute("DELETE FROM correction_sets WHERE name=?", (name,))
            set_id = conn.execute(
                "INSERT INTO correction_sets(name, path, created_at, summary) VALUES (?,?,?,?)",
                (name, str(path), _now(), json.dumps(summary, ensure_ascii=False)),
            ).lastrowid
            conn.executemany(
                "INSERT INTO correction_set_transcripts SELECT ?, id FROM transcripts WHERE id=?",
                [(set_id, t) for t in dict.fromkeys(transcript_ids)],
            )
        return set_id

    def correction_sets(self) -> list[tuple[str, Path, dict]]:
        """(name, folder, summary) of every correction set, newest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT name, path, summary FROM correction_sets ORDER BY id DESC"
            ).fetchall()
        return [(n, Path(p), json.loads(s)) for n, p, s in rows]


def _refuse_changed(path: Path, tid: int, base: StoredState, stored: StoredState) -> None:
    """Raise when transcript `tid` as `stored` now is not as a session read or saved it
    (`base`): its id given to another transcript, or its edits or names changed elsewhere."""
    if stored.created_at != base.created_at:
        raise TranscriptNotFound(tid)
    if stored != base:
        raise StoreError("store.changed_elsewhere", path=path, id=tid)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _char_row(segment_id: int, index: int, c: Char) -> tuple:
    # float(): NumPy scalars from a decoder bind to neither SQLite nor JSON.
    start, end, confidence = float(c.start), float(c.end), float(c.confidence)
    return (segment_id, index, c.text, start, end, confidence, _alts_json(c), c.after)


def _alts_json(c: Char) -> str:
    return json.dumps([[a.text, float(a.prob)] for a in c.alternatives], ensure_ascii=False)


def _info_dict(info: TranscriptionInfo) -> dict:
    return {f: getattr(info, f) for f in info.__dataclass_fields__}


class EditSession:
    """One open transcript: the edited state in memory, every change written through.

    Memory is the truth while the transcript is open: when a write fails (full or read-only
    disk) the change stays in effect here, `StoreError` tells the caller, and the next change
    or `flush()` saves everything still pending. Another window's changes are never saved
    over: a save finding the stored state changed since this session read it raises instead.
    """

    def __init__(self, store: Store, tid: int) -> None:
        self.store = store
        self.tid = tid
        self.original = store.original(tid)
        self._stored = store.state(tid)  # what the store holds, as last read or saved here
        self.ops, self.head = list(self._stored.ops), self._stored.head
        self.segments = apply_edits(self.original, self.ops[: self.head])
        self.speaker_names = dict(self._stored.speaker_names)
        self.dirty = False

    def rename_speaker(self, speaker: int, name: str) -> None:
        """Call `speaker` `name` in every segment of this transcript (exports included), and
        save (a failed save keeps the name here, as it keeps an edit)."""
        self.speaker_names = renamed_speakers(self.speaker_names, speaker, name)
        self.flush()

    def apply(self, op: EditOp) -> int:
        """Make an edit (dropping anything undone) and save it; returns the new head."""
        self.segments = apply_edits(self.segments, [op])
        self.ops = [*self.ops[: self.head], op]
        self.head += 1
        self.flush()
        return self.head

    def restore(self, ops: Sequence[EditOp], head: int) -> None:
        """Undo or redo to a state this session was in: `ops` with `head` of them in effect
        (`apply` drops the edits beyond the head, so an undo may need them back), and save."""
        if not 0 <= head <= len(ops):
            raise ValueError(f"head={head}: must be between 0 and {len(ops)}")
        self.ops, self.head = list(ops), head
        self.segments = apply_edits(self.original, self.ops[:head])
        self.flush()

    def flush(self) -> None:
        """Save the in-memory state (edits and speaker names); raises StoreError (and stays
        dirty) when that fails. Nothing changed elsewhere since it was read or last saved here
        is saved over: StoreError (store.changed_elsewhere) asks for a new session, and
        TranscriptNotFound says the transcript was deleted (its id maybe given again)."""
        self.dirty = True
        self._stored = self.store.save_chain(
            self.tid, self.ops, self.head, self.segments, self.speaker_names, self._stored
        )
        self.dirty = False

    def verified_pairs(self) -> list[VerifiedPair]:
        return [p for _, p in verified_pairs(self.original, self.ops[: self.head])]
