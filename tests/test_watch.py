"""Folders and watch folders: media files found recursively, a new file handed over only once
it stops growing, finished files remembered across restarts; `transcribe DIR --recursive` and
`watch` end to end with files written while the watch runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from engine.audio import write_wav
from engine.cli import main as cli
from engine.errors import TingxieError
from engine.watch import STATE_FILE, FolderWatch, WatchOptions, WatchSpec, media_files


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 16_000)) / 16_000
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_media_files_are_found_recursively_without_hidden_or_other_files(tmp_path):
    for rel in ("a.wav", "sub/b.mp3", "sub/deeper/c.m4a", "notes.txt", ".hidden/d.wav", "e.wav~"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    names = [p.relative_to(tmp_path).as_posix() for p in media_files(tmp_path)]
    assert names == ["a.wav", "sub/b.mp3", "sub/deeper/c.m4a"]
    assert [p.name for p in media_files(tmp_path, recursive=False)] == ["a.wav"]


def test_a_file_is_ready_once_it_stops_growing(tmp_path):
    clock = Clock()
    watch = FolderWatch(tmp_path, tmp_path / "state.json", WatchOptions(settle_seconds=2), clock)
    growing = tmp_path / "call.wav"
    growing.write_bytes(b"\0" * 100)
    assert watch.ready() == []  # first seen: wait
    clock.now = 1.5
    with open(growing, "ab") as f:
        f.write(b"\0" * 100)  # still being written
    assert watch.ready() == []
    clock.now = 3.0
    assert watch.ready() == []  # 1.5 s since it last changed
    clock.now = 3.6
    assert watch.ready() == [growing]
    assert watch.pending() == 1
    watch.done(growing)
    assert watch.ready() == [] and watch.pending() == 0


def test_finished_files_are_remembered_across_restarts_and_new_versions_redone(tmp_path):
    clock = Clock()
    options = WatchOptions(settle_seconds=0)
    f = tmp_path / "memo.wav"
    f.write_bytes(b"\0" * 10)
    first = FolderWatch(tmp_path, tmp_path / "out" / "state.json", options, clock)
    first.ready()
    (ready,) = first.ready()
    first.done(ready)
    again = FolderWatch(tmp_path, tmp_path / "out" / "state.json", options, clock)
    again.ready()
    assert again.ready() == [] and again.pending() == 0
    f.write_bytes(b"\1" * 20)  # replaced by a new version
    os.utime(f, ns=(time.time_ns(), time.time_ns() + 10**9))
    again.ready()
    assert again.ready() == [f]


def _settled(watch: FolderWatch) -> list:
    """What a watch with settle_seconds=0 hands out (the first look only sees the files)."""
    watch.ready()
    return watch.ready()


def test_a_file_that_grows_while_it_is_transcribed_is_done_again(tmp_path):
    """done() records the version ready() handed out, not the one there when it is called (the
    recorder resumed, or the file grew while it waited in the app's queue)."""
    f = tmp_path / "call.wav"
    f.write_bytes(b"\0" * 10)
    watch = FolderWatch(tmp_path, tmp_path / "out" / "state.json", WatchOptions(settle_seconds=0))
    (ready,) = _settled(watch)
    with open(f, "ab") as grown:  # while it is transcribed
        grown.write(b"\0" * 10)
    watch.done(ready)
    assert watch.pending() == 1
    assert _settled(watch) == [f]


def test_an_empty_file_is_not_pending_until_it_has_content(tmp_path):
    """`watch --once` waits for pending files: an empty one, never ready, kept it waiting."""
    (tmp_path / "new.wav").touch()
    watch = FolderWatch(tmp_path, tmp_path / "state.json", WatchOptions(settle_seconds=0))
    assert _settled(watch) == [] and watch.pending() == 0
    (tmp_path / "new.wav").write_bytes(b"\0" * 10)
    assert watch.pending() == 1 and _settled(watch) == [tmp_path / "new.wav"]


def test_a_folder_named_relatively_or_absolutely_is_one_folder_to_the_state(tmp_path, monkeypatch):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "sub" / "a.wav").write_bytes(b"\0" * 10)
    monkeypatch.chdir(tmp_path)
    options = WatchOptions(settle_seconds=0)
    relative = FolderWatch("in", "out/state.json", options)
    relative.done(*_settled(relative))
    absolute = FolderWatch(tmp_path / "in", tmp_path / "out" / "state.json", options)
    assert absolute.pending() == 0
    # a state file written before: keyed by the path as the folder was typed
    stat = (tmp_path / "in" / "sub" / "a.wav").stat()
    old = {"folder": "in", "done": {"in/sub/a.wav": [stat.st_size, stat.st_mtime_ns]}}
    (tmp_path / "out" / "state.json").write_text(json.dumps(old), encoding="utf-8")
    assert FolderWatch(tmp_path / "in", tmp_path / "out" / "state.json", options).pending() == 0


@pytest.mark.parametrize("version", [1, 2])
def test_a_state_of_one_relatively_typed_folder_is_the_watchs_whatever_the_cwd(
    tmp_path, monkeypatch, version
):
    """A state written before version 3 by `watch in` (typed relatively) was taken for the
    folder "in" under the current directory: opened from elsewhere, or by its absolute path,
    every finished file was transcribed again, and a phantom folder stayed in the state."""
    inbox = tmp_path / "in"
    (inbox / "sub").mkdir(parents=True)
    (inbox / "a.wav").write_bytes(b"\0" * 10)
    (inbox / "sub" / "b.wav").write_bytes(b"\0" * 12)
    stamps = {k: [(inbox / k).stat().st_size, (inbox / k).stat().st_mtime_ns]
              for k in ("a.wav", "sub/b.wav")}  # fmt: skip
    if version == 1:  # as the code up to 3643cd4 wrote it: keyed by the path as typed
        old = {"folder": "in", "done": {f"in/{k}": v for k, v in stamps.items()}}
    else:  # as bb921b5..b9c6f40 wrote it: keyed by the path in the folder
        old = {"version": 2, "folder": "in", "done": stamps, "names": {"a.wav": "a"}}
    (inbox / STATE_FILE).write_text(json.dumps(old, indent=1), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    watch = FolderWatch(inbox, inbox / STATE_FILE, WatchOptions(settle_seconds=0))
    assert watch.pending() == 0
    (inbox / "c.wav").write_bytes(b"\0" * 14)
    watch.done(*_settled(watch), inbox / "c")
    state = json.loads((inbox / STATE_FILE).read_text(encoding="utf-8"))
    assert list(state["folders"]) == [str(inbox.resolve())]
    assert sorted(state["folders"][str(inbox.resolve())]["done"]) == ["a.wav", "c.wav", "sub/b.wav"]


def test_files_whose_transcripts_would_share_a_name_keep_apart_ones_across_restarts(tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    for name in ("talk.flac", "talk.wav", "memo.wav"):
        (inbox / name).write_bytes(b"\0" * 10)
    options = WatchOptions(settle_seconds=0)

    def transcribe_all(spec: WatchSpec) -> dict[str, str]:
        watch = FolderWatch(inbox, spec.state_file, options)
        bases = {}
        for path in _settled(watch):
            bases[path.name] = spec.base(path, watch.names(path))
            watch.done(path, bases[path.name])
        return {name: base.name for name, base in bases.items()}

    spec = WatchSpec(str(inbox), out=str(tmp_path / "out"))
    assert transcribe_all(spec) == {"memo.wav": "memo", "talk.flac": "talk", "talk.wav": "talk-2"}
    (inbox / "talk.flac").write_bytes(b"\1" * 20)  # new versions, after a restart
    (inbox / "talk.wav").write_bytes(b"\1" * 20)
    assert transcribe_all(spec) == {"talk.flac": "talk", "talk.wav": "talk-2"}
    dated = WatchSpec(str(inbox), out=str(tmp_path / "dated"), name="{date}")
    day = datetime.now().strftime("%Y-%m-%d")
    assert sorted(transcribe_all(dated).values()) == [day, f"{day}-2", f"{day}-3"]


def test_a_folder_with_a_transcripts_name_is_passed_by_unless_it_is_the_recordings_own(tmp_path):
    """A new recording passes by a folder named like its transcript as by a file (talk-2); a
    resumed one, whose own transcript a folder has replaced, was given that folder's name, and
    its transcript failed "Is a directory" once the model had run: it is said first, naming
    the folder."""
    (tmp_path / "talk.wav").write_bytes(b"\0" * 10)
    (tmp_path / "talk.srt").mkdir()
    spec = WatchSpec(str(tmp_path), ("txt", "srt"))
    own = tmp_path / "talk"
    assert spec.base(tmp_path / "talk.wav") == tmp_path / "talk-2"
    with pytest.raises(TingxieError) as told:
        spec.base(tmp_path / "talk.wav", own=own)
    assert told.value.code == "transcribe.folder_in_the_way"
    assert str(told.value).startswith(f"{tmp_path / 'talk.srt'}: that is a folder")
    with pytest.raises(TingxieError):  # before the model runs
        spec.check_name(tmp_path / "talk.wav", own=own)
    spec.check_name(tmp_path / "talk.wav", own=tmp_path / "talk-2")  # not the pattern's name


def test_watch_writes_apart_transcripts_for_files_that_share_a_name(tiny_model_dir, tmp_path):
    write_wav(tmp_path / "talk.wav", _tone(1.0))
    write_wav(tmp_path / "talk.flac", _tone(3.0))
    args = ["watch", str(tmp_path), "--once", "--settle", "0", "--poll", "0.1", "--model",
            str(tiny_model_dir), "--no-punctuation", "--format", "json"]  # fmt: skip
    assert cli(args) == 0
    sources = {
        json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))["info"]["source"]
        for name in ("talk", "talk-2")
    }
    assert sources == {str(tmp_path / "talk.wav"), str(tmp_path / "talk.flac")}


def test_watch_once_names_a_failed_file_once_and_exits_1(tiny_model_dir, tmp_path, capsys):
    """As transcribe does: each failure one line (its path once), a summary, status 1 (it
    said 0, with the path twice)."""
    write_wav(tmp_path / "a.wav", _tone(1.0))
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    args = ["watch", str(tmp_path), "--once", "--settle", "0", "--poll", "0.1", "--model",
            str(tiny_model_dir), "--no-punctuation"]  # fmt: skip
    assert cli(args) == 1
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert line.count(str(tmp_path / "bad.wav")) == 1
    assert err.rstrip().endswith(f"failed:\n  {tmp_path / 'bad.wav'}")
    assert (tmp_path / "a.txt").is_file()


def test_a_file_that_failed_is_held_back_until_it_changes_or_is_retried(tmp_path):
    """A failed file is remembered in its version (it waits for a new one), as failed: a
    restart can tell it from the finished ones and give it back."""
    options = WatchOptions(settle_seconds=0)
    for name in ("good.wav", "bad.wav", "gone.wav"):
        (tmp_path / name).write_bytes(b"\0" * 10)
    first = FolderWatch(tmp_path, tmp_path / STATE_FILE, options)
    for path in _settled(first):
        first.done(path, tmp_path / "good" if path.name == "good.wav" else None)
    (tmp_path / "gone.wav").unlink()
    again = FolderWatch(tmp_path, tmp_path / STATE_FILE, options)
    assert again.pending() == 0 and again.failed() == [tmp_path / "bad.wav"]
    assert again.retry_failed() == [tmp_path / "bad.wav"]
    assert again.failed() == [] and again.pending() == 1
    (bad,) = _settled(again)
    again.done(bad, tmp_path / "bad")  # done this time
    assert FolderWatch(tmp_path, tmp_path / STATE_FILE, options).failed() == []


def test_watch_once_again_says_the_files_that_failed_and_retries_them_when_asked(
    tiny_model_dir, tmp_path, capsys
):
    """Run again after a failure, it printed "(0 files to do)" and exited 0: the failed file
    was passed by without a word."""
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    args = ["watch", str(tmp_path), "--once", "--settle", "0", "--poll", "0.1", "--model",
            str(tiny_model_dir), "--no-punctuation"]  # fmt: skip
    assert cli(args) == 1
    capsys.readouterr()
    assert cli(args) == 0
    err = capsys.readouterr().err
    assert "(0 files to do)" in err
    assert f"1 file that failed before is held back until it changes: {tmp_path / 'bad.wav'}" in err
    assert "--retry-failed" in err and err.count("bad.wav") == 1
    assert cli([*args, "--retry-failed"]) == 1
    assert capsys.readouterr().err.rstrip().endswith(f"failed:\n  {tmp_path / 'bad.wav'}")


def test_a_watch_that_cannot_record_a_finished_file_says_so_and_stops(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    """A full disk: the state file cannot be written. The watch stops with a message instead of
    a traceback, and the file is not recorded, so it is transcribed again."""
    import engine.watch

    write_wav(tmp_path / "memo.wav", _tone(1.0))

    def full(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(engine.watch, "atomic_write_text", full)
    args = ["watch", str(tmp_path), "--once", "--settle", "0", "--poll", "0.1", "--model",
            str(tiny_model_dir), "--no-punctuation"]  # fmt: skip
    assert cli(args) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / STATE_FILE}: could not record {tmp_path / 'memo.wav'}" in err
    assert "No space left on device" in err and "Traceback" not in err
    watch = FolderWatch(tmp_path, tmp_path / STATE_FILE, WatchOptions(settle_seconds=0))
    assert watch.pending() == 1
    (ready,) = _settled(watch)
    with pytest.raises(OSError):
        watch.done(ready)
    assert watch.pending() == 1 and watch.ready() == []  # once it has settled again
    assert watch.ready() == [ready]


def test_an_unreadable_state_file_is_a_warning_not_a_crash(tmp_path, caplog):
    (tmp_path / "state.json").write_text("{not json", encoding="utf-8")
    watch = FolderWatch(tmp_path, tmp_path / "state.json")
    assert watch.pending() == 0
    assert "unreadable watch state" in caplog.text


# -- a folder of many recordings ----------------------------------------------------------------


def _recordings(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"\0" * 10)


def test_a_look_resolves_no_path_per_file(tmp_path, monkeypatch):
    """A look at 2 000 recordings took 0.3 s of the app's UI thread, most of it resolving every
    file not yet done to compare it with the state file, which a look never lists (its name
    is hidden and .json). Beside the recordings, the state file is still never handed out."""
    _recordings(tmp_path, "a.wav", "b.wav", "day2/c.wav")
    spec = WatchSpec(str(tmp_path))  # the state file in the watched folder
    watch = FolderWatch(tmp_path, spec.state_file, WatchOptions(settle_seconds=0))
    resolved = []
    real = Path.resolve
    monkeypatch.setattr(Path, "resolve", lambda p, *a, **k: resolved.append(p) or real(p, *a, **k))
    ready = _settled(watch)
    assert len(ready) == 3 and watch.pending() == 3
    assert resolved == []
    for path in ready:
        watch.done(path, spec.base(path, watch.names(path)))
    assert spec.state_file.is_file() and _settled(watch) == [] and watch.pending() == 0


def test_finishing_a_file_parses_and_writes_the_state_once(tmp_path, monkeypatch):
    """names() and done() each read and parsed the whole state file again, and done() wrote it
    indented by Python's slow encoder: at 2 000 files finished, 160 ms a file. The state is
    kept in memory and parsed only when another watch changed it; each file writes it once,
    through json's C encoder."""
    import engine.watch

    _recordings(tmp_path / "in", "a.wav", "b.wav", "c.wav")
    spec = WatchSpec(str(tmp_path / "in"), out=str(tmp_path / "out"))
    watch = FolderWatch(spec.folder, spec.state_file, WatchOptions(settle_seconds=0))
    parsed, written = [], []
    loads, write = json.loads, engine.watch.atomic_write_text
    monkeypatch.setattr(json, "loads", lambda text: parsed.append(text) or loads(text))
    monkeypatch.setattr(
        engine.watch, "atomic_write_text", lambda *a: written.append(a) or write(*a)
    )
    monkeypatch.setattr(json.encoder, "_make_iterencode", None)  # the pure-Python encoder
    for path in _settled(watch):
        watch.done(path, spec.base(path, watch.names(path), watch.own(path)))
    assert parsed == [] and len(written) == 1 + 3  # the three claimed at once, each finished
    other = Path(spec.folder, "d.wav")
    given = watch.names(other)
    made, join = [], Path.__truediv__
    monkeypatch.setattr(Path, "__truediv__", lambda p, name: made.append(name) or join(p, name))
    assert watch.names(other) == given and made == []  # no path made again for a name
    monkeypatch.undo()
    again = FolderWatch(spec.folder, spec.state_file, WatchOptions(settle_seconds=0))
    assert again.pending() == 0
    assert again.names(Path(spec.folder, "d.wav")) == {tmp_path / "out" / s for s in "abc"}


def test_a_state_file_another_watch_changed_is_read_again(tmp_path):
    """Two watches share a state file (two folders written into one, or the CLI's watch and
    the app's): each keeps the other's files and names, even where the other's write leaves the
    file's size and time as they were."""
    out = tmp_path / "out"
    specs = [WatchSpec(str(tmp_path / name), out=str(out)) for name in ("phone", "recorder")]
    _recordings(tmp_path / "phone", "talk.wav", "memo.wav")
    _recordings(tmp_path / "recorder", "talk.wav")
    options = WatchOptions(settle_seconds=0)
    phone, recorder = (FolderWatch(s.folder, s.state_file, options) for s in specs)
    (memo, talk), (other,) = _settled(phone), _settled(recorder)
    phone.done(talk, specs[0].base(talk, phone.names(talk)))
    assert recorder.names(other) == {out / "talk"}
    recorder.done(other, specs[1].base(other, recorder.names(other)))
    assert phone.names(memo) == {out / "talk", out / "talk-2"}
    state = specs[0].state_file
    before = state.stat()
    state.write_text(state.read_text(encoding="utf-8").replace("talk-2", "talk-3"), "utf-8")
    os.utime(state, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert state.stat().st_size == before.st_size
    assert phone.names(memo) == {out / "talk", out / "talk-3"}
    phone.done(memo, specs[0].base(memo, phone.names(memo)))
    restarted = [FolderWatch(s.folder, s.state_file, options) for s in specs]
    assert [w.pending() for w in restarted] == [0, 0]
    assert restarted[1].names(other) == {out / "talk", out / "memo"}


def test_a_state_damaged_while_the_watch_runs_is_kept_aside_and_written_anew(tmp_path):
    """The watch knows what it finished: a state file damaged under it is moved aside, not
    written over, and the next file finished writes a whole new one."""
    _recordings(tmp_path / "in", "a.wav", "b.wav")
    spec = WatchSpec(str(tmp_path / "in"), out=str(tmp_path / "out"))
    watch = FolderWatch(spec.folder, spec.state_file, WatchOptions(settle_seconds=0))
    a, b = _settled(watch)
    watch.done(a, spec.base(a, watch.names(a)))
    spec.state_file.write_text("{damaged", encoding="utf-8")
    assert watch.names(b) == {tmp_path / "out" / "a"}
    (aside,) = (tmp_path / "out").glob(f"{STATE_FILE}.damaged-*")
    assert aside.read_text(encoding="utf-8") == "{damaged"
    watch.done(b, spec.base(b, watch.names(b)))
    restarted = FolderWatch(spec.folder, spec.state_file, WatchOptions(settle_seconds=0))
    assert restarted.pending() == 0


def test_transcribe_a_folder_recursively_keeps_its_layout(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "in" / "day2").mkdir(parents=True)
    write_wav(tmp_path / "in" / "a.wav", _tone(1.0))
    write_wav(tmp_path / "in" / "day2" / "a.wav", _tone(1.0))
    args = ["transcribe", str(tmp_path / "in"), "--recursive", "--model", str(tiny_model_dir),
            "--out", str(tmp_path / "out"), "--format", "json"]  # fmt: skip
    assert cli(args) == 0
    assert (tmp_path / "out" / "a.json").is_file()
    assert (tmp_path / "out" / "day2" / "a.json").is_file()
    err = capsys.readouterr().err
    assert "2 audio and video files" in err and "2 of 2 files transcribed" in err


@pytest.mark.slow
def test_watch_transcribes_files_written_while_it_runs(tiny_model_dir, tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    cli_main = "import sys; from engine.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", cli_main, "watch", str(inbox), "--model",
           str(tiny_model_dir), "--format", "srt,json", "--out", str(out), "--settle", "1.5",
           "--poll", "0.2"]  # fmt: skip
    watcher = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(watcher.stderr), daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while not any("watching" in line for line in lines):
            assert watcher.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        # a recorder writing the file in pieces, pausing between them
        whole = tmp_path / "whole.wav"
        write_wav(whole, _tone(3.0))
        data = whole.read_bytes()
        target = inbox / "meeting" / "call.wav"
        target.parent.mkdir()
        with open(target, "wb") as f:
            for i in range(0, len(data), len(data) // 4):
                f.write(data[i : i + len(data) // 4])
                f.flush()
                time.sleep(0.6)
                assert not (out / "meeting" / "call.json").exists()  # not while it grows
        while not (out / "meeting" / "call.json").exists():
            assert watcher.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        assert (out / "meeting" / "call.srt").is_file()
        assert json.loads((out / "meeting" / "call.json").read_text(encoding="utf-8"))
        # remembered just after the transcripts are written: stopped before, it is done again
        while not any("call.wav" in key for key in _done_keys(out / ".tingxie-watch.json")):
            assert watcher.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)
    written = (out / "meeting" / "call.json").stat().st_mtime_ns
    again = subprocess.run([*cmd, "--once"], capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    assert "0 files to do" in again.stderr and "wrote" not in again.stderr
    assert (out / "meeting" / "call.json").stat().st_mtime_ns == written


def _held(lock: Path) -> bool:
    """Whether another holder has `lock` (a watch state's lock file) locked now."""
    import fcntl

    with open(lock, "a+b") as other:
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False


def _done_keys(state: Path) -> list[str]:
    """The files a watch state file remembers as finished."""
    folders = json.loads(state.read_text(encoding="utf-8"))["folders"].values()
    return [key for finished in folders for key in finished["done"]]


# -- two processes writing one state file ---------------------------------------------------------

# One process's watch: marks each file of its folder finished once the test says go.
_FINISHER = """
import sys, time
from pathlib import Path
from engine.watch import FolderWatch, WatchOptions, WatchSpec
folder, out, go = sys.argv[1:4]
spec = WatchSpec(folder, out=out)
watch = FolderWatch(folder, spec.state_file, WatchOptions(settle_seconds=0), spec=spec)
watch.ready()
files = watch.ready()
print("ready", flush=True)
while not Path(go).exists():
    time.sleep(0.01)
for path in files:
    watch.done(path, spec.base(path, watch.names(path), watch.own(path)))
"""


def test_two_processes_finishing_files_into_one_state_file_keep_all_of_them(tmp_path):
    """Two watches in two processes (two folders written into one output folder, the CLI's
    and the app's) read, changed and wrote the state file unguarded: each write dropped what
    the other had written since its read (300 files finished, 174 kept) and a restart did the
    lost ones again. The state's lock keeps every one."""
    n = 120
    folders = [tmp_path / name for name in ("phone", "recorder")]
    for folder in folders:
        _recordings(folder, *(f"{folder.name}{i:03d}.wav" for i in range(n)))
    out, go = tmp_path / "out", tmp_path / "go"
    finishers = [
        subprocess.Popen(
            [sys.executable, "-c", _FINISHER, str(f), str(out), str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for f in folders
    ]
    assert [p.stdout.readline() for p in finishers] == ["ready\n"] * 2
    go.touch()  # both start at once
    for p in finishers:
        p.communicate(timeout=300)
    assert [p.returncode for p in finishers] == [0, 0]
    state = json.loads((out / STATE_FILE).read_text(encoding="utf-8"))
    assert sorted(len(f["done"]) for f in state["folders"].values()) == [n, n]
    options = WatchOptions(settle_seconds=0)
    assert [FolderWatch(f, out / STATE_FILE, options).pending() for f in folders] == [0, 0]


def test_finishing_a_file_holds_the_state_lock_from_its_read_to_its_write(tmp_path, monkeypatch):
    """What another process's watch meets while this one finishes a file: the state's lock
    held from reading the state to writing it, let go after."""

    _recordings(tmp_path / "in", "a.wav")
    (tmp_path / "out").mkdir()
    spec = WatchSpec(str(tmp_path / "in"), out=str(tmp_path / "out"))
    watch = FolderWatch(spec.folder, spec.state_file, WatchOptions(settle_seconds=0))
    lock = spec.state_file.with_name(STATE_FILE + ".lock")

    locked = partial(_held, lock)

    seen = []
    refresh, save = FolderWatch._refresh, FolderWatch._save
    monkeypatch.setattr(
        FolderWatch, "_refresh", lambda w, **kw: seen.append(locked()) or refresh(w, **kw)
    )
    monkeypatch.setattr(FolderWatch, "_save", lambda w, f: seen.append(locked()) or save(w, f))
    (a,) = _settled(watch)
    watch.done(a, spec.base(a, watch.names(a)))
    assert seen[-2:] == [True, True] and not locked()


# -- two watches of one folder, or into one folder ------------------------------------------------

# One process's watch of a folder: claims what is ready, says which, then waits until killed.
_CLAIMER = """
import sys
from engine.watch import FolderWatch, WatchOptions, WatchSpec
spec = WatchSpec(sys.argv[1])
watch = FolderWatch(spec.folder, spec.state_file, WatchOptions(settle_seconds=0), spec=spec)
watch.ready()
print(" ".join(p.name for p in watch.ready()), flush=True)
sys.stdin.read()
"""


def test_two_watches_of_one_folder_in_two_processes_hand_each_file_to_one(tmp_path):
    """The app's watch folder and `tingxie-cli watch` on one folder each transcribed every file:
    no claim crossed processes. A file is claimed by the first; the other takes it only once
    that process is gone (killed -9 mid-file: the file is not left forever)."""
    _recordings(tmp_path, "a.wav", "b.wav")
    first = subprocess.Popen([sys.executable, "-c", _CLAIMER, str(tmp_path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert first.stdout.readline().split() == ["a.wav", "b.wav"]
        spec = WatchSpec(str(tmp_path))
        other = FolderWatch(tmp_path, spec.state_file, WatchOptions(settle_seconds=0), spec=spec)
        assert _settled(other) == [] and other.ready() == []
    finally:
        first.kill()
        first.wait(timeout=30)
    assert other.ready() == [tmp_path / "a.wav", tmp_path / "b.wav"]


def test_a_file_finished_or_given_back_by_another_watch_is_not_held_by_it(tmp_path):
    """What another process's watch leaves: a file it finished is not done here, one it gave
    back is taken here."""
    _recordings(tmp_path, "a.wav", "b.wav")
    spec = WatchSpec(str(tmp_path))
    first = FolderWatch(tmp_path, spec.state_file, WatchOptions(settle_seconds=0), spec=spec)
    a, b = _settled(first)
    state = json.loads(spec.state_file.read_text(encoding="utf-8"))
    (claims,) = [f["claims"] for f in state["folders"].values()]
    assert sorted(claims) == ["a.wav", "b.wav"]  # by this process: pid@host
    assert {c[0].split("@")[0] for c in claims.values()} == {str(os.getpid())}
    first.done(a, spec.base(a, first.names(a)))
    first.release(b)
    state = json.loads(spec.state_file.read_text(encoding="utf-8"))
    assert [f["claims"] for f in state["folders"].values()] == [{}]
    restarted = FolderWatch(tmp_path, spec.state_file, WatchOptions(settle_seconds=0), spec=spec)
    assert _settled(restarted) == [b]


# One process's watch writing into OUT: chooses its file's transcript name, says it, waits.
_NAMER = """
import sys
from engine.watch import FolderWatch, WatchOptions, WatchSpec
spec = WatchSpec(sys.argv[1], out=sys.argv[2])
watch = FolderWatch(spec.folder, spec.state_file, WatchOptions(settle_seconds=0), spec=spec)
watch.ready()
(path,) = watch.ready()
print(watch.base(spec, path).name, flush=True)
sys.stdin.read()
"""


def test_two_watches_into_one_folder_choose_apart_names_before_either_writes(tmp_path):
    """phone/talk.wav and recorder/talk.wav watched in two processes into one folder: each
    chose "talk" (none was written yet) and the second wrote over the first's transcript. The
    name is kept with the claim from the moment it is chosen."""
    out = tmp_path / "Transcripts"
    for name in ("phone", "recorder"):
        _recordings(tmp_path / name, "talk.wav")
    first = subprocess.Popen([sys.executable, "-c", _NAMER, str(tmp_path / "phone"), str(out)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert first.stdout.readline().split() == ["talk"]
        spec = WatchSpec(str(tmp_path / "recorder"), out=str(out))
        second = FolderWatch(spec.folder, spec.state_file, WatchOptions(settle_seconds=0))
        (path,) = _settled(second)
        assert second.base(spec, path) == out / "talk-2"
    finally:
        first.kill()
        first.wait(timeout=30)
    assert second.names(path) == set()  # the killed watch's name is free again


def test_a_damaged_state_is_rebuilt_under_the_state_lock(tmp_path, monkeypatch):
    """A damaged state was moved aside and rebuilt without the lock: another watch's state
    written meanwhile was moved aside as the damaged one, or written over."""

    _recordings(tmp_path, "a.wav")
    spec = WatchSpec(str(tmp_path))
    spec.state_file.write_text("{damaged", encoding="utf-8")
    lock = spec.state_file.with_name(STATE_FILE + ".lock")

    locked = partial(_held, lock)

    seen = []
    keep, save = FolderWatch._keep, FolderWatch._save
    monkeypatch.setattr(FolderWatch, "_keep", lambda w: seen.append(locked()) or keep(w))
    monkeypatch.setattr(FolderWatch, "_save", lambda w, f: seen.append(locked()) or save(w, f))
    FolderWatch(tmp_path, spec.state_file, WatchOptions(settle_seconds=0), spec=spec)
    assert seen == [True, True] and not locked()
