"""What happens to the user's files when two writers meet, a write fails half way, a state file is
damaged or a saved file is a symlink (the durability hunt): each writes whole files or none."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from disk_faults import fsync_full_at
from test_corrections import make_segments

import engine.atomic
from engine.atomic import (
    atomic_folder,
    atomic_write_files,
    atomic_write_text,
    staged_folder,
    staged_into,
)
from engine.errors import TingxieError
from engine.results import TranscriptionInfo
from engine.watch import STATE_FILE, FolderWatch, WatchOptions, WatchSpec

# ---- 1: two builds of one folder at once ----------------------------------------------------


def _writes(*names: str):
    """A folder writer that writes `names`, each holding its own name."""

    def write(folder: Path) -> None:
        for name in names:
            (folder / name).write_text(name, encoding="utf-8")

    return write


def _held(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()}


def test_a_build_started_while_another_writes_leaves_each_whole(tmp_path):
    """Before: both staged in one `.set.tmp`; the second removed the first's half-written files
    (a training set whose manifest named clips that were not there), and the first then failed
    writing into a folder that was gone."""
    target = tmp_path / "set"
    atomic_folder(target, _writes("old"))

    def first(folder: Path) -> None:
        (folder / "a1").write_text("a1", encoding="utf-8")
        atomic_folder(target, _writes("b1", "b2"))  # the second build, from start to end
        assert _held(target) == {"b1": "b1", "b2": "b2"}
        (folder / "a2").write_text("a2", encoding="utf-8")

    atomic_folder(target, first)
    assert _held(target) == {"a1": "a1", "a2": "a2"}  # the last to finish, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # no staging left


def test_a_build_put_in_between_the_swap_steps_is_moved_aside_too(tmp_path, monkeypatch):
    """The other build renames its folder in after this one moved the old set aside: this one's
    rename onto it fails (a folder is never merged) and is tried again, not given up."""
    target = tmp_path / "set"
    atomic_folder(target, _writes("old"))
    real = os.rename
    raced = []

    def rename(src, dst):
        if Path(dst) == target and Path(src).name.endswith(".tmp") and not raced:
            raced.append(src)
            atomic_folder(target, _writes("b1"))
        return real(src, dst)

    monkeypatch.setattr(engine.atomic.os, "rename", rename)
    atomic_folder(target, _writes("a1", "a2"))
    assert raced and _held(target) == {"a1": "a1", "a2": "a2"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def _gone_pid() -> str:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()


def test_only_staging_left_by_a_gone_process_on_this_host_is_removed(tmp_path):
    from engine.atomic import staging_tag

    target = tmp_path / "set"
    host = staging_tag().split("@", 1)[1].rsplit("-", 1)[0]
    gone = tmp_path / f".set.{_gone_pid()}@{host}-0123abcd.tmp"
    kept = [
        tmp_path / f".set.{os.getpid()}@{host}-89abcdef.tmp",  # a live build's
        tmp_path / f".set.{_gone_pid()}@elsewhere.invalid-0123abcd.tmp",  # another host's
        tmp_path / ".set.notes",
    ]
    for folder in (gone, *kept):
        folder.mkdir()
        (folder / "x").write_text("x", encoding="utf-8")
    atomic_folder(target, _writes("a"))
    assert not gone.exists() and all((f / "x").is_file() for f in kept)


def test_staging_folders_of_versions_before_the_tag_are_removed(tmp_path):
    """Earlier versions staged under one untagged name (".set.tmp", ".set.old"; inside an
    export's target ".tingxie-export.tmp"): no build of this version writes there. Before:
    never removed, a killed build's clips or model stayed hidden on the user's disk."""

    def left(folder: Path) -> Path:
        folder.mkdir(parents=True)
        (folder / "clip.wav").write_bytes(b"RIFF")
        return folder

    old = [left(tmp_path / ".set.tmp"), left(tmp_path / ".set.old"), left(tmp_path / ".new.tmp")]
    (tmp_path / ".set.tmp.notes").write_text("mine", encoding="utf-8")  # no staging name
    link = tmp_path / ".other.tmp"
    link.symlink_to(left(tmp_path / "elsewhere"))
    atomic_folder(tmp_path / "set", _writes("a"))
    with staged_into(tmp_path / "new") as new:  # staged beside a target not made yet
        (new.folder / "model.onnx").write_text("m", encoding="utf-8")
    export = tmp_path / "out"
    left(export / ".tingxie-export.tmp")
    with staged_into(export) as into:  # staged inside a target that exists
        (into.folder / "model.onnx").write_text("m", encoding="utf-8")
    assert not any(folder.exists() for folder in old)
    assert sorted(p.name for p in export.iterdir()) == ["model.onnx"]
    assert (tmp_path / ".set.tmp.notes").is_file() and (link / "clip.wav").is_file()
    with staged_into(tmp_path / "other"):  # a symlink of a staging name is left
        pass
    assert link.is_symlink() and (link / "clip.wav").is_file()


def test_an_export_started_while_another_writes_is_told_not_merged(tmp_path):
    """Before: the second export removed the first's staging folder inside the target (the
    first then failed with FileNotFoundError). Now the first finds the names taken and says so,
    with the other's whole export left as it is."""
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(TingxieError) as e, staged_into(target) as first:
        (first.folder / "model.onnx").write_text("a", encoding="utf-8")
        with staged_into(target) as second:
            (second.folder / "model.onnx").write_text("b", encoding="utf-8")
            (second.folder / "card.md").write_text("b", encoding="utf-8")
        (first.folder / "card.md").write_text("a", encoding="utf-8")
    assert e.value.code == "export.name_taken"
    assert _held(target) == {"model.onnx": "b", "card.md": "b"}


def test_a_staged_folder_that_fails_leaves_no_staging(tmp_path):
    target = tmp_path / "set"
    with pytest.raises(OSError), staged_folder(target) as tmp:
        (tmp / "a").write_text("a", encoding="utf-8")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def store_with_edits(tmp_path):
    import numpy as np

    from engine.audio import write_wav
    from engine.library.review import EditOp
    from engine.library.store import Store

    rec = tmp_path / "rec.wav"
    t = np.arange(4 * 16_000) / 16_000
    write_wav(rec, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    store = Store(tmp_path / "db" / "tingxie.db")
    tid = store.add_transcript(make_segments(), audio=rec)
    store.add_edit(tid, EditOp(0, 2, 3, "甜", "fix"))
    store.add_edit(tid, EditOp(1, 2, 3, "去", "accept"))
    yield store, tid
    store.close()


def test_two_training_set_builds_at_once_leave_a_whole_set(store_with_edits, monkeypatch):
    """The hunt's two `corrections set1 --replace` at once: one said it wrote 400 clips while
    56 were missing. Here the second build runs whole while the first has written its clips."""
    from engine.library import corrections
    from engine.tune.data import load_dataset

    store, tid = store_with_edits
    real = corrections._write_folder
    calls = []

    def write_folder(tmp, *args):
        real(tmp, *args)
        calls.append(tmp)
        if len(calls) == 1:  # the first build's clips are written: the second runs whole
            corrections.build_dataset(store, [tid], "set1", model="m")

    monkeypatch.setattr(corrections, "_write_folder", write_folder)
    summary = corrections.build_dataset(store, [tid], "set1", model="m")
    examples = load_dataset(summary.manifest).examples
    assert len(examples) == 2 and all(Path(e.audio).is_file() for e in examples)
    assert sorted(p.name for p in summary.folder.parent.iterdir()) == ["set1"]


@pytest.mark.parametrize("code", [errno.EACCES, errno.EEXIST])
def test_only_a_full_disk_asks_to_free_space_for_a_training_set(store_with_edits, monkeypatch,
                                                                code):  # fmt: skip
    """Before: "[Errno 17] File exists: '…/.set1.tmp'); free space" for the two builds' clash."""
    from engine.library import corrections

    store, tid = store_with_edits
    raised = [code]

    def fail(target, write):
        raise OSError(raised[0], os.strerror(raised[0]), str(target.with_name(".set1.x.tmp")))

    monkeypatch.setattr(engine.atomic, "atomic_folder", fail)
    with pytest.raises(corrections.CorrectionsError) as e:
        corrections.build_dataset(store, [tid], "set1", model="m")
    assert "free" not in str(e.value) and os.strerror(code) in str(e.value)
    assert "set1" in str(e.value)
    raised[0] = errno.ENOSPC
    with pytest.raises(corrections.CorrectionsError) as e:
        corrections.build_dataset(store, [tid], "set1", model="m")
    assert e.value.code == "dataset.write_failed" and "free space" in str(e.value)


# ---- 5: the formats of one input are written together ---------------------------------------


_INFO = TranscriptionInfo("a.wav", 3.0, 16_000, "tiny", "cpu", "fp32", "sdpa", "softmax")


def test_the_formats_of_one_input_are_all_new_or_none(tmp_path, monkeypatch):
    """Before: `--format txt,json --overwrite` on a full disk wrote the new a.txt, failed on
    a.json (kept old) and said nothing was written."""
    from engine.cli.transcribe import OutputError, _write_all

    txt, js = tmp_path / "a.txt", tmp_path / "a.json"
    txt.write_text("OLD TXT\n", encoding="utf-8")
    js.write_text('{"old": true}\n', encoding="utf-8")
    real = os.fsync
    monkeypatch.setattr(engine.atomic.os, "fsync", fsync_full_at(2))  # the second file
    with pytest.raises(OutputError) as e:
        _write_all(make_segments(), [txt, js], _INFO)
    assert txt.read_text(encoding="utf-8") == "OLD TXT\n"
    assert js.read_text(encoding="utf-8") == '{"old": true}\n'
    message = str(e.value)
    assert str(txt) in message and str(js) in message and "No space left" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.txt"]  # no temporary
    monkeypatch.setattr(engine.atomic.os, "fsync", real)
    assert _write_all(make_segments(), [txt, js], _INFO) == [txt, js]
    assert txt.read_text(encoding="utf-8") == "今天天气好\n我们去公园\n"
    assert json.loads(js.read_text(encoding="utf-8"))["text"] == "今天天气好\n我们去公园"


# ---- 6: a damaged watch state -----------------------------------------------------------------


def _watched(tmp_path: Path, *names: str) -> tuple[Path, WatchSpec]:
    inbox = tmp_path / "in"
    inbox.mkdir()
    for name in names:
        (inbox / name).write_bytes(b"\0" * 10)
    return inbox, WatchSpec(str(inbox), ("txt", "json"), str(tmp_path / "out"))


def _finish(watch: FolderWatch, spec: WatchSpec, path: Path) -> None:
    """What the CLI's watch does with a ready file: its transcripts, then `done`."""
    base = spec.base(path, watch.names(path), watch.own(path))
    for target in spec.targets(base):
        target.write_text("transcript", encoding="utf-8")
    watch.done(path, base)


def _settled(watch: FolderWatch) -> list[Path]:
    watch.ready()
    return watch.ready()


def _damage(state: Path) -> bytes:
    damaged = state.read_bytes()[:60]
    state.write_bytes(damaged)
    return damaged


def test_a_damaged_watch_state_is_kept_aside_not_written_over(tmp_path, caplog):
    """Before: "unreadable watch state; finished files may be done again", and the next file
    done wrote over it: nothing was left to look into or mend."""
    inbox, spec = _watched(tmp_path, "a.wav", "b.wav")
    options = WatchOptions(settle_seconds=0)
    watch = FolderWatch(inbox, spec.state_file, options)
    _settled(watch)
    _finish(watch, spec, inbox / "a.wav")
    damaged = _damage(spec.state_file)
    caplog.set_level(logging.WARNING, "tingxie.watch")
    watch = FolderWatch(inbox, spec.state_file, options)
    (aside,) = (tmp_path / "out").glob(f"{STATE_FILE}.damaged-*")
    assert aside.read_bytes() == damaged and str(aside) in caplog.text
    assert str(spec.state_file) in caplog.text
    _settled(watch)
    _finish(watch, spec, inbox / "b.wav")
    assert aside.read_bytes() == damaged
    assert json.loads(spec.state_file.read_text(encoding="utf-8"))["version"] == 3


def test_after_a_damaged_state_files_whose_transcripts_are_there_are_not_done_again(tmp_path):
    """Before: every file was transcribed again, beside its transcripts (a-2.txt, b-2.txt)."""
    inbox, spec = _watched(tmp_path, "a.wav", "b.wav", "c.wav")
    options = WatchOptions(settle_seconds=0)
    watch = FolderWatch(inbox, spec.state_file, options, spec=spec)
    for path in _settled(watch)[:2]:
        _finish(watch, spec, path)
    _damage(spec.state_file)
    watch = FolderWatch(inbox, spec.state_file, options, spec=spec)
    assert _settled(watch) == [inbox / "c.wav"]
    restarted = FolderWatch(inbox, spec.state_file, options, spec=spec)  # the rebuilt state kept
    assert _settled(restarted) == [inbox / "c.wav"]


def test_the_cli_watch_rebuilds_a_damaged_state_from_its_transcripts(tiny_model_dir, tmp_path):
    """The CLI's watch hands its spec to the state: a.wav, done before the state was damaged,
    is not transcribed again (a-2.txt) on the next run."""
    from app_fakes import tone

    from engine.audio import write_wav
    from engine.cli import main as cli

    write_wav(tmp_path / "a.wav", tone(1.0))
    args = ["watch", str(tmp_path), "--once", "--settle", "0", "--poll", "0.01", "--model",
            str(tiny_model_dir), "--no-punctuation", "--device", "cpu"]  # fmt: skip
    assert cli(args) == 0 and (tmp_path / "a.txt").is_file()
    _damage(tmp_path / STATE_FILE)
    write_wav(tmp_path / "b.wav", tone(1.5))
    assert cli(args) == 0
    assert (tmp_path / "b.txt").is_file() and not (tmp_path / "a-2.txt").exists()


def test_a_lost_state_takes_no_older_file_nor_a_dated_name_for_a_transcript(tmp_path):
    """Only transcripts of the pattern's name, in every format, none older than the recording,
    are taken for the watch's own: older notes of that name, or one format alone, are not."""
    inbox, spec = _watched(tmp_path, "a.wav", "b.wav")
    out = tmp_path / "out"
    out.mkdir()
    for name in ("a.txt", "a.json", "b.txt"):
        (out / name).write_text("notes", encoding="utf-8")
    old = (inbox / "a.wav").stat().st_mtime_ns - 10**9
    for name in ("a.txt", "a.json"):
        os.utime(out / name, ns=(old, old))
    spec.state_file.write_text("{damaged", encoding="utf-8")
    watch = FolderWatch(inbox, spec.state_file, WatchOptions(settle_seconds=0), spec=spec)
    assert _settled(watch) == [inbox / "a.wav", inbox / "b.wav"]
    dated = WatchSpec(spec.folder, ("txt",), spec.out, "{stem}-{date}")
    (out / f"b-{datetime.now():%Y-%m-%d}.txt").write_text("notes", encoding="utf-8")
    dated.state_file.write_text("{damaged", encoding="utf-8")
    watch = FolderWatch(inbox, dated.state_file, WatchOptions(settle_seconds=0), spec=dated)
    assert _settled(watch) == [inbox / "a.wav", inbox / "b.wav"]


# ---- 7: a saved file that is a symlink ------------------------------------------------------


def test_a_file_saved_over_a_symlink_is_written_where_it_points(tmp_path):
    """Before: the link was replaced by a plain file, and the file it named kept the old text."""
    real = tmp_path / "real" / "a.txt"
    real.parent.mkdir()
    real.write_text("old notes", encoding="utf-8")
    real.chmod(0o640)
    link = tmp_path / "out" / "a.txt"
    link.parent.mkdir()
    link.symlink_to(Path("..") / "real" / "a.txt")
    atomic_write_text(link, "new")
    assert link.is_symlink() and real.read_text(encoding="utf-8") == "new"
    assert real.stat().st_mode & 0o777 == 0o640
    dangling = tmp_path / "out" / "b.txt"
    dangling.symlink_to(tmp_path / "real" / "b.txt")
    atomic_write_files([(dangling, lambda f: f.write(b"b"))])
    assert dangling.is_symlink() and (tmp_path / "real" / "b.txt").read_bytes() == b"b"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt", "b.txt"]


# ---- 8: two runs writing one transcript name at once ------------------------------------------


def test_files_written_without_replacing_are_all_new_or_none_when_a_name_is_taken(tmp_path):
    """Without `replace`, a file another writer made meanwhile is never replaced: the write
    fails naming it as given, and none of the set is new."""
    txt, srt = tmp_path / "a.txt", tmp_path / "a.srt"
    srt.write_text("the other run's", encoding="utf-8")
    with pytest.raises(FileExistsError) as e:
        atomic_write_files([(p, lambda f: f.write(b"mine")) for p in (txt, srt)], replace=False)
    assert e.value.filename == str(srt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.srt"]  # no a.txt, no temporary
    assert srt.read_text(encoding="utf-8") == "the other run's"
    srt.unlink()
    atomic_write_files([(p, lambda f: f.write(b"mine")) for p in (txt, srt)], replace=False)
    assert [p.read_bytes() for p in (txt, srt)] == [b"mine", b"mine"]


def test_a_transcript_another_run_wrote_since_the_check_is_not_replaced(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    """`transcribe x/talk.wav --out o` and `transcribe y/talk.wav --out o` at once: both
    found no o/talk.txt before their models ran, both said "wrote o/talk.txt", and the one
    that ended last replaced the other's. Without --overwrite, a transcript made there since
    the check is refused as one there before: named, and nothing of this input written."""
    import numpy as np

    import engine.cli.transcribe as transcribe
    from engine.audio import write_wav
    from engine.cli import main as cli

    (tmp_path / "x").mkdir()
    write_wav(tmp_path / "x" / "talk.wav", np.zeros(16_000, dtype=np.float32))
    out = tmp_path / "o"
    check = transcribe.check_new

    def then_the_other_run_writes(targets, *args):
        check(targets, *args)
        (out / "talk.txt").write_text("the other run's", encoding="utf-8")

    monkeypatch.setattr(transcribe, "check_new", then_the_other_run_writes)
    args = ["transcribe", str(tmp_path / "x" / "talk.wav"), "--out", str(out),
            "--format", "json,txt", "--model", str(tiny_model_dir), "--no-punctuation"]  # fmt: skip
    assert cli(args) == 1
    err = capsys.readouterr().err
    assert f"{out / 'talk.txt'} already exists; add --overwrite" in err and "wrote" not in err
    assert sorted(p.name for p in out.iterdir()) == ["talk.txt"]  # no talk.json, no temporary
    assert (out / "talk.txt").read_text(encoding="utf-8") == "the other run's"


def test_without_hard_links_a_taken_name_is_still_refused(tmp_path, monkeypatch):
    """A memory card's FAT has no hard links (EPERM): a name taken is still refused, one free
    is written."""

    def no_links(source, target):
        raise PermissionError(errno.EPERM, "Operation not permitted", source)

    monkeypatch.setattr(engine.atomic.os, "link", no_links)
    txt, srt = tmp_path / "a.txt", tmp_path / "a.srt"
    srt.write_text("the other run's", encoding="utf-8")
    with pytest.raises(FileExistsError):
        atomic_write_files([(p, lambda f: f.write(b"mine")) for p in (txt, srt)], replace=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.srt"]
    srt.unlink()
    atomic_write_files([(p, lambda f: f.write(b"mine")) for p in (txt, srt)], replace=False)
    assert [p.read_bytes() for p in (txt, srt)] == [b"mine", b"mine"]


def test_a_staged_folder_is_on_the_disk_before_it_is_swapped_in(tmp_path, monkeypatch):
    """Each file of a staged folder, and the folder, is synced before the rename that puts it in
    place: else a power cut can leave the new folder's names with none of their bytes (a
    model.safetensors of 0 bytes in the weights cache). A link inside is passed by."""
    synced, real = [], os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    target = tmp_path / "out"

    def write(tmp: Path) -> None:
        (tmp / "sub").mkdir()
        (tmp / "a.bin").write_bytes(b"a")
        (tmp / "sub" / "b.bin").write_bytes(b"b")
        (tmp / "link").symlink_to(tmp_path / "nowhere")

    atomic_folder(target, write)
    names = [Path(p).name for p in synced]
    assert "a.bin" in names and "b.bin" in names and "sub" in names and "link" not in names
    assert names.index("b.bin") < names.index("sub")  # a folder after its files
    assert (target / "a.bin").read_bytes() == b"a"
