"""What happens to the user's data on faults a durability hunt found, each with the test that
failed before its fix: a tuning job resumed from a damaged last checkpoint, a job folder deleted
while `tingxie-cli tune` trains in it, a library that cannot be written listed and exported, and
a transcript the app could not add to the library (a full disk)."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import test_app_window
import test_review_cli
import test_train
from test_app_window import _loaded
from test_review_cli import run_cli

from engine.library import store as store_mod
from engine.library.review import EditOp
from engine.library.store import Store, StoreError
from engine.tune.config import TuneConfig
from engine.tune.events import (
    CheckpointSetAside,
    JobFailed,
    JobFinished,
    JobStarted,
    StepProgress,
)
from engine.tune.jobs import (
    JobFolder,
    OutputDirError,
    checkpoint_dirs,
    claim_output_dir,
    delete_job,
    running_job,
)
from engine.tune.loop import run_job

# test_train's base model and tone corpus (bound by name, as pytest finds fixtures)
corpus = test_train.corpus


# ---- a damaged last checkpoint ------------------------------------------------------------------


def _two_checkpoints(corpus, out: Path) -> list[Path]:
    """A job cancelled after its second step, a checkpoint after each; those checkpoints."""
    cancel = threading.Event()
    for event in run_job(test_train._config(corpus, out, steps=4, save_every=1), cancel=cancel):
        if isinstance(event, StepProgress) and event.step == 2:
            cancel.set()
    found = checkpoint_dirs(out / "checkpoints")
    assert [p.name for p in found] == ["step-0000001", "step-0000002"]
    return found


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _emptied(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    ("name", "damage"),
    [("optimizer.pt", _cut_in_half), ("trainable.safetensors", _emptied)],
    ids=["optimizer-cut-short", "weights-emptied"],
)
def test_a_damaged_last_checkpoint_resumes_from_the_one_before(
    corpus, tmp_path, caplog, name, damage
):
    """Before: a traceback ending in EOFError (an emptied optimizer.pt), SafetensorError
    (emptied weights) or "not an optimizer state Tingxie wrote; start afresh" (one cut short),
    while the checkpoint before it was whole. Then: said only in a log warning, which the
    app's Tune page does not show; now an event after JobStarted says it, and the log keeps it."""
    out = tmp_path / "o"
    first, last = _two_checkpoints(corpus, out)
    size = (last / name).stat().st_size
    damage(last / name)
    with caplog.at_level(logging.INFO, logger="tingxie.train"):
        events = list(run_job(test_train._config(corpus, out, steps=4, save_every=1), resume=True))
    assert isinstance(events[-1], JobFinished), events[-1]
    started, told = events[:2]
    assert isinstance(started, JobStarted) and started.resumed_from_step == 1
    # kept aside, not resumed again (nor kept by the rotation in place of a whole one)
    (aside,) = (out / "checkpoints").glob("damaged-step-0000002-*")
    assert told == CheckpointSetAside(last, aside, told.problem, 1), told
    assert told.problem.startswith(f"{name}: ") and (aside / name).stat().st_size < size
    (logged,) = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert str(last / name) in logged and f"resumed from {first} (step 1)" in logged
    assert str(aside) in logged
    assert [p.name for p in checkpoint_dirs(out / "checkpoints")][-1] == "step-0000004"


def test_the_cli_says_which_checkpoint_it_set_aside_and_where_it_resumed(corpus, tmp_path, capsys):
    """Before: said only as a log warning of tingxie.train; now the CLI prints the job's event."""
    from engine.cli import tune

    out, job = tmp_path / "o", tmp_path / "job.yaml"
    _, last = _two_checkpoints(corpus, out)
    _emptied(last / "optimizer.pt")
    test_train._config(corpus, out, steps=4, save_every=1).save(job)
    assert tune.main([str(job), "--resume"]) == 0
    (aside,) = (out / "checkpoints").glob("damaged-step-0000002-*")
    said = capsys.readouterr().err
    assert (
        f"warning: checkpoint {last} could not be read (optimizer.pt: EOFError), so the job "
        f"resumed from step 1; the damaged checkpoint is kept as {aside}\n"
    ) in said, said


def test_no_readable_checkpoint_names_each_file_and_the_way_out(corpus, tmp_path):
    out = tmp_path / "o"
    first, last = _two_checkpoints(corpus, out)
    _emptied(last / "trainable.safetensors")
    (first / "optimizer.pt").unlink()
    events = list(run_job(test_train._config(corpus, out, steps=4, save_every=1), resume=True))
    failed = events[-1]
    assert isinstance(failed, JobFailed) and failed.code == "tune.checkpoints_unreadable"
    assert failed.message.startswith(f"{out}: no checkpoint there can be read")
    assert str(last / "trainable.safetensors") in failed.message
    assert str(first / "optimizer.pt") in failed.message and "afresh" in failed.message
    assert checkpoint_dirs(out / "checkpoints") == [first, last]  # left as they were


def test_a_checkpoint_is_on_the_disk_before_it_is_marked_complete(corpus, tmp_path, monkeypatch):
    """Before: only state.json (and the random states) were synced; the weights and optimizer
    files it marks complete could still be in the page cache when the power went."""
    synced: list[str] = []
    fsync = os.fsync

    def recording(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    out = tmp_path / "o"
    events = list(run_job(test_train._config(corpus, out, steps=1, save_every=1)))
    assert isinstance(events[-1], JobFinished), events[-1]
    staged = out / "checkpoints" / ".tmp-step-0000001"
    order = [p.removeprefix(f"{staged}/") for p in synced]
    weights, optimizer = order.index("trainable.safetensors"), order.index("optimizer.pt")
    state = max(i for i, p in enumerate(order) if p.startswith(".tingxie-"))  # state.json's
    folder = order.index(str(staged))
    assert max(weights, optimizer) < state < folder < order.index(str(out / "checkpoints"))


# ---- a job folder `tingxie-cli tune` trains in ------------------------------------------------

# What `tingxie-cli tune` does to the job folder it trains in: claims it, holding its lock.
_CLI_RUN = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from engine.tune.jobs import claim_output_dir\n"
    "held = claim_output_dir(Path(sys.argv[1]), resume=False)\n"
    "print('training', flush=True)\n"
    "time.sleep(600)\n"
)


def test_a_job_folder_a_cli_run_trains_in_is_running_and_not_deleted(tmp_path):
    """Before: state "new", running_pid None, and Discard or Delete removed the folder under the
    run, which died of a missing cache file (its lock, not a child.pid, says it runs)."""
    config = TuneConfig(model="m", data="x", output_dir="y")
    job = JobFolder.create(tmp_path, "j", [str(tmp_path / "a.tsv")], config)
    repo = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-c", _CLI_RUN, str(job.path)]
    run = subprocess.Popen(command, cwd=repo, stdout=subprocess.PIPE, text=True)
    try:
        assert run.stdout.readline() == "training\n"
        assert job.running_pid() == run.pid and job.state() == "running"
        assert running_job(tmp_path) == job
        with pytest.raises(ValueError, match=rf"\(pid {run.pid}\) is still working on it"):
            delete_job(job)
        assert (job.path / "config.json").is_file()
        with pytest.raises(OutputDirError):  # looking took nothing from the run: it holds on
            claim_output_dir(job.path, resume=False)
    finally:
        run.kill()
        run.wait()
    assert job.running_pid() is None and job.state() == "new"
    delete_job(job)
    assert not job.path.exists()


# ---- a library the user cannot write -----------------------------------------------------------


def _library(path: Path) -> Path:
    with Store(path) as store:
        store.add_transcript(test_review_cli.make_segments(), title="walk.wav")
    return path


def _listed_and_exported(db: Path, tmp_path: Path, capsys) -> None:
    assert run_cli(["library", "--db", str(db)]) == 0
    assert "walk.wav" in capsys.readouterr().out
    out = tmp_path / "walk.txt"
    assert run_cli(["library", "--export", "1", str(out), "--db", str(db)]) == 0
    assert out.read_text(encoding="utf-8").startswith("今天天气好")


def test_a_library_whose_folder_cannot_be_written_is_listed_and_exported(tmp_path, capsys):
    """Before: "cannot open the database (unable to open database file)", just to list it. SQLite
    says so where it cannot make the WAL index beside the file (a read-only folder or mount);
    here the index's name leads into a missing folder, which fails the same way, as root too."""
    db = _library(tmp_path / "tingxie.db")
    Path(f"{db}-shm").symlink_to(tmp_path / "missing" / "index")
    with pytest.raises(StoreError, match="unable to open database file"):
        Store(db)  # as it was opened for listing
    _listed_and_exported(db, tmp_path, capsys)
    with Store(db, read_only=True) as store, pytest.raises(StoreError) as e:
        store.add_transcript(test_review_cli.make_segments())
    assert e.value.code == "store.read_only" and str(db) in str(e.value)


def test_a_library_sqlite_opens_read_only_is_listed_and_writes_say_so(
    tmp_path, monkeypatch, capsys
):
    """The error a user who may not write the folder gets (chmod cannot make a folder read-only
    for root, who runs CI): SQLite's, where the read-only open decides what to do next."""
    db = _library(tmp_path / "tingxie.db")
    connect = store_mod._connect

    def unwritable_folder(target, uri=False):
        if "immutable=1" not in str(target):
            raise sqlite3.OperationalError("attempt to write a readonly database")
        return connect(target, uri)

    monkeypatch.setattr(store_mod, "_connect", unwritable_folder)
    _listed_and_exported(db, tmp_path, capsys)
    with Store(db, read_only=True) as store, pytest.raises(StoreError) as e:
        store.add_edit(1, EditOp(0, 0, 1, "昨", "fix"))
    assert e.value.code == "store.read_only"


def test_changes_a_crash_left_in_the_wal_are_never_listed_without(tmp_path):
    """Reading the file alone (immutable) would leave out what only the WAL holds: the error
    stands instead, naming the file."""
    db = tmp_path / "tingxie.db"
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    with Store(db) as store:
        store.add_transcript(test_review_cli.make_segments(), title="walk.wav")
        for suffix in ("", "-wal"):  # copied while open, as a crash leaves them
            shutil.copy(f"{db}{suffix}", crashed / f"tingxie.db{suffix}")
    assert (crashed / "tingxie.db-wal").stat().st_size > 0
    Path(crashed / "tingxie.db-shm").symlink_to(tmp_path / "missing" / "index")
    with pytest.raises(StoreError, match="unable to open database file") as e:
        Store(crashed / "tingxie.db", read_only=True)
    assert str(crashed / "tingxie.db") in str(e.value)


def test_a_library_in_a_read_only_folder_is_listed_and_exported(tmp_path, lock_folder, capsys):
    db = _library(tmp_path / "locked" / "tingxie.db")
    lock_folder(db.parent)
    _listed_and_exported(db, tmp_path, capsys)


# ---- a transcript the library could not take ---------------------------------------------------

# The window tests' own fixtures, shared rather than copied (bound by name, as pytest finds them).
dialogs = test_app_window.dialogs
library = test_app_window.library
ini = test_app_window.ini
make_window = test_app_window.make_window
_no_whisper_in_the_model_cache = test_app_window._no_whisper_in_the_model_cache
_chinese_ui_after_each_test = test_app_window._chinese_ui_after_each_test


def _full_disk(library: Store, monkeypatch) -> SimpleNamespace:
    """The library's disk, full while `disk.full`: adding a transcript fails as SQLite's full
    disk does (store.disk_full)."""
    disk = SimpleNamespace(full=True)
    add = library.add_transcript

    def adding(*args, **kwargs):
        if disk.full:
            raise StoreError("store.disk_full", path=library.path)
        return add(*args, **kwargs)

    monkeypatch.setattr(library, "add_transcript", adding)
    return disk


def _not_added(qtbot, window, dialogs, name: str) -> str:
    """Transcribe the file `name`; the message saying the library could not take it."""
    (job,) = window.add_files([f"/data/{name}"])
    qtbot.waitUntil(lambda: window.queue.state(job) == "done", timeout=5000)
    qtbot.waitUntil(lambda: bool(dialogs), timeout=5000)
    (shown,) = [text for _, text in dialogs]
    dialogs.clear()
    return shown


def _in_library(library: Store) -> list[str]:
    return sorted(t.audio_path.name for t in library.list_transcripts(limit=None))


def test_a_transcript_the_library_could_not_take_goes_in_with_the_next_change(
    qtbot, make_window, library, dialogs, monkeypatch
):
    """Before: "the disk is full … your work is kept and saved with the next change", and the
    transcript was dropped: the next one went into the library alone."""
    disk = _full_disk(library, monkeypatch)
    window = make_window(language="en")
    _loaded(qtbot, window)
    shown = _not_added(qtbot, window, dialogs, "first.wav")
    assert shown.startswith("Not in the library yet: first.wav (") and "disk is full" in shown
    assert "adds it with the next change to the library, or when it closes" in shown
    assert _in_library(library) == []
    disk.full = False  # space freed
    window.add_files(["/data/second.wav"])
    qtbot.waitUntil(lambda: len(_in_library(library)) == 2, timeout=5000)
    assert _in_library(library) == ["first.wav", "second.wav"] and dialogs == []
    first = next(d for d in window.documents.values() if d.audio == "/data/first.wav")
    assert first.tid == library.list_transcripts(limit=None)[-1].id  # its edits go there


def test_at_close_a_transcript_kept_for_the_library_goes_in_or_the_user_is_asked(
    qtbot, make_window, library, dialogs, monkeypatch
):
    disk = _full_disk(library, monkeypatch)
    window = make_window(language="en")
    _loaded(qtbot, window)
    _not_added(qtbot, window, dialogs, "first.wav")
    assert not window.close()  # still full: asked, and Discard not chosen, the window stays
    ((title, question),) = dialogs
    assert title == "Library" and question.startswith("Still not in the library: first.wav (")
    disk.full = False
    assert window.close()
    assert _in_library(library) == ["first.wav"]


def test_a_fix_on_the_review_page_takes_a_transcript_kept_for_the_library_with_it(
    qtbot, make_window, library, dialogs, monkeypatch
):
    disk = _full_disk(library, monkeypatch)
    disk.full = False
    window = make_window(language="en")
    _loaded(qtbot, window)
    window.add_files(["/data/first.wav"])
    panel = window.review_panel
    qtbot.waitUntil(lambda: panel.session is not None, timeout=5000)
    disk.full = True
    _not_added(qtbot, window, dialogs, "second.wav")
    disk.full = False
    window.pages.setCurrentWidget(panel)
    panel.fix_span("视界")  # the next change to the library
    assert _in_library(library) == ["first.wav", "second.wav"] and dialogs == []
