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

import numpy as np
import pytest

from engine.audio import write_wav
from engine.cli import main as cli
from engine.watch import FolderWatch, WatchOptions, media_files


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


def test_an_unreadable_state_file_is_a_warning_not_a_crash(tmp_path, caplog):
    (tmp_path / "state.json").write_text("{not json", encoding="utf-8")
    watch = FolderWatch(tmp_path, tmp_path / "state.json")
    assert watch.pending() == 0
    assert "unreadable watch state" in caplog.text


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
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)
    written = (out / "meeting" / "call.json").stat().st_mtime_ns
    again = subprocess.run([*cmd, "--once"], capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    assert "0 files to do" in again.stderr and "wrote" not in again.stderr
    assert (out / "meeting" / "call.json").stat().st_mtime_ns == written
