"""Watch folders and the file queue together: a file queued once however it comes (dropped
twice, dropped while watched), a watched file moved or renamed while it waits done once it is
back (not held back as failed), looks made off the GUI thread, overlapping watch folders that
leave no claim behind, and a watch folder gone (or back) said on the status line."""

# ruff: noqa: F811 -- `make_window`, the window fixture of test_app_folders, as an argument

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from app_fakes import emitted, tone
from test_app_folders import _Clock, _look, _poll, make_window  # noqa: F401 (its fixture)
from test_watch_faults import _cli_watch, _watcher

import engine.cli.watch
import engine.watch
from app.i18n import tr
from engine.audio import write_wav
from engine.results import Char, Segment
from engine.watch import STATE_FILE, FolderWatch, WatchOptions, WatchSpec


def test_a_file_dropped_twice_is_queued_once_and_the_user_told(make_window, tmp_path, qtbot):
    """Dropping one file twice queued it twice: transcribed twice, stored twice."""
    audio = tmp_path / "a.wav"
    write_wav(audio, tone(1.0))
    window = make_window(language="en")
    first = window.add_files([str(audio)])
    assert len(first) == 1
    assert window.add_files([str(tmp_path / "." / "a.wav")]) == []  # another spelling too
    said = tr("queue.already", name="a.wav", count=1)
    assert window.statusBar().currentMessage() == said
    emitted(qtbot, window.worker.model_loaded, window.start)
    qtbot.waitUntil(lambda: window.queue.state(first[0]) == "done", timeout=10_000)
    assert make_window.seen == [str(audio)]
    assert len(window.add_files([str(audio)])) == 1  # done: the user may do it again


def test_a_watched_file_the_user_queued_too_is_transcribed_once(make_window, tmp_path, qtbot):
    """A watched folder's file the user dropped as well was queued by both: transcribed twice,
    and the watch's export written from the user's copy."""
    watched = tmp_path / "in"
    watched.mkdir()
    write_wav(watched / "a.wav", tone(1.0))
    window = make_window(watch_folders=(WatchSpec(str(watched), ("txt",)),), language="en")
    clock = window.folder_watcher.clock = _Clock()
    assert len(window.add_files([str(watched / "a.wav")])) == 1  # the user's
    _look(window, clock)
    assert _look(window, clock, 3) == [str(watched / "a.wav")]  # not the watch's too
    assert window.statusBar().currentMessage() == tr("queue.already", name="a.wav", count=1)
    emitted(qtbot, window.worker.model_loaded, window.start)
    job = window.queue.job_ids()[0]
    qtbot.waitUntil(lambda: window.queue.state(job) == "done", timeout=10_000)
    qtbot.wait(200)
    assert make_window.seen == [str(watched / "a.wav")]
    assert _look(window, clock, 3) == [str(watched / "a.wav")]  # passed over until restart


def test_a_watched_file_renamed_while_queued_is_done_once_it_is_back(qapp, tmp_path):
    """Moved away while it waited, its job failed (no such file) and it was held back as
    failed forever, even once renamed back as it was."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_wav(inbox / "a.wav", tone(1.0))
    watcher, queued, worker = _watcher((WatchSpec(str(inbox), ("txt",)),))
    _poll(watcher)
    _poll(watcher)
    assert queued == [str(inbox / "a.wav")]
    (inbox / "a.wav").rename(inbox / "a.tmp")
    worker.file_failed.emit(0, FileNotFoundError(2, "No such file", str(inbox / "a.wav")))
    state = json.loads((inbox / STATE_FILE).read_text(encoding="utf-8"))
    assert [f["failed"] for f in state["folders"].values()] == [[]]
    (inbox / "a.tmp").rename(inbox / "a.wav")  # the same size and time
    _poll(watcher)
    _poll(watcher)
    assert queued == [str(inbox / "a.wav")] * 2
    worker.file_failed.emit(1, ValueError("not audio"))  # there, unchanged: held back
    assert watcher.failed(watcher.settings.prefs.watch_folders[0]) == [inbox / "a.wav"]


def test_fail_holds_back_only_the_version_handed_out(tmp_path):
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "a.wav"
    write_wav(path, tone(1.0))
    watch = FolderWatch(tmp_path / "in", tmp_path / STATE_FILE, WatchOptions(settle_seconds=0))
    watch.ready()
    assert watch.ready() == [path]
    path.rename(path.with_suffix(".tmp"))
    assert watch.fail(path) is False  # gone: given back, not held back
    path.with_suffix(".tmp").rename(path)
    watch.ready()
    assert watch.ready() == [path] and watch.failed() == []
    assert watch.fail(path) is True and watch.failed() == [path]


def test_the_cli_watch_gives_back_a_file_moved_while_it_was_transcribed(
    tiny_model_dir, tmp_path, monkeypatch
):
    write_wav(tmp_path / "a.wav", tone(1.0))

    def moved(_transcriber, path, *args):
        Path(path).rename(tmp_path / "a.moved")  # not a media file: nothing left to do
        raise FileNotFoundError(2, "No such file or directory", str(path))

    monkeypatch.setattr(engine.cli.watch, "_transcribe_one", moved)
    assert _cli_watch(tmp_path, tiny_model_dir) == 1
    state = json.loads((tmp_path / STATE_FILE).read_text(encoding="utf-8"))
    assert [(f["done"], f["failed"]) for f in state["folders"].values()] == [({}, [])]


def test_a_look_does_not_walk_the_folders_on_the_gui_thread(qapp, tmp_path, monkeypatch):
    """A look walked every watch folder on the GUI thread each second: 0.15-0.4 s at 5,000
    files, seconds on a network share, the window stalling each time."""
    walked: list[threading.Thread] = []
    walk = engine.watch.os.walk

    def spied(*args, **kwargs):
        walked.append(threading.current_thread())
        return walk(*args, **kwargs)

    monkeypatch.setattr(engine.watch.os, "walk", spied)
    (tmp_path / "inbox").mkdir()
    write_wav(tmp_path / "inbox" / "a.wav", tone(1.0))
    watcher, queued, _ = _watcher((WatchSpec(str(tmp_path / "inbox"), ("txt",)),))
    watcher.poll()  # the timer's slot
    assert threading.main_thread() not in walked
    _poll(watcher)
    _poll(watcher)
    assert queued == [str(tmp_path / "inbox" / "a.wav")]  # queued all the same
    assert walked and threading.main_thread() not in walked


def test_overlapping_watch_folders_leave_no_claim_behind(qapp, tmp_path):
    """A file of a folder inside another listed before was claimed by both watches and
    queued by one: the other's claim stayed, and another program's watch of that folder
    (`tingxie-cli watch`) never got the file while the app ran."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    (inbox / "sub").mkdir(parents=True)
    write_wav(inbox / "sub" / "a.wav", tone(1.0))
    specs = (
        WatchSpec(str(inbox), ("txt",), str(out)),
        WatchSpec(str(inbox / "sub"), ("txt",), str(out)),
    )
    watcher, queued, _ = _watcher(specs)
    for _ in range(3):
        _poll(watcher)
    assert queued == [str(inbox / "sub" / "a.wav")]
    state = json.loads((out / STATE_FILE).read_text(encoding="utf-8"))
    claims = {folder: f["claims"] for folder, f in state["folders"].items()}
    assert claims[str(inbox.resolve())] and not claims.get(str((inbox / "sub").resolve()))
    code = (
        "from engine.watch import FolderWatch, WatchOptions\n"
        f"w = FolderWatch({str(inbox / 'sub')!r}, {str(out / STATE_FILE)!r}, "
        "WatchOptions(settle_seconds=0))\n"
        "w.ready()\nprint(len(w.ready()))\n"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == "1"  # not held for as long as the app runs


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_watch_folder_gone_and_back_is_said_once_each(make_window, tmp_path, language):
    """A watch folder missing (an unplugged drive) was passed over without a word: its new
    recordings were silently left alone."""
    watched = tmp_path / "usb"
    window = make_window(watch_folders=(WatchSpec(str(watched), ("txt",)),), language=language)
    clock = window.folder_watcher.clock = _Clock()
    said: list[tuple[str, bool]] = []
    window.folder_watcher.reachable.connect(lambda folder, there: said.append((folder, there)))
    _look(window, clock)
    message = window.statusBar().currentMessage()
    assert message == tr("watch.gone", folder=str(watched))
    assert ("监视文件夹" in message) == (language == "zh")
    _look(window, clock, 1)
    assert said == [(str(watched), False)]  # once, not at every look
    watched.mkdir()
    _look(window, clock, 1)
    assert window.statusBar().currentMessage() == tr("watch.back", folder=str(watched))
    _look(window, clock, 1)
    assert said == [(str(watched), False), (str(watched), True)]


def _settle(watcher) -> float:
    return watcher.options.settle_seconds + 1


def test_a_watched_files_exports_survive_a_dialog_that_lets_the_next_file_finish(
    make_window, tmp_path, monkeypatch
):
    """The library's error dialog (a full disk) runs an event loop in which the next file's
    transcript is announced: the first file's job was then looked up as the window's
    `_ready`, reset to None by the nested announce, and its exports never written."""
    watched, out = tmp_path / "in", tmp_path / "out"
    watched.mkdir()
    for name in ("a.wav", "b.wav"):
        write_wav(watched / name, tone(1.0))
    spec = WatchSpec(str(watched), ("txt",), str(out), "{stem}")
    window = make_window(watch_folders=(spec,), language="en")
    clock = window.folder_watcher.clock = _Clock()
    _look(window, clock)
    assert len(_look(window, clock, _settle(window.folder_watcher))) == 2
    first, second = window.queue.job_ids()
    chars = (Char("你", 0.0, 0.4, 0.9), Char("好", 0.5, 0.9, 0.9))
    for job in (first, second):
        window.documents[job].segments = [Segment(0, 0.0, 0.9, chars)]
    nested = [second]

    def dialog(_kind, _error):  # its event loop: the next file finishes meanwhile
        if nested:
            window._announce(window.documents[nested.pop()])

    monkeypatch.setattr(window, "show_error", dialog)
    full = [OSError(28, "No space left on device")]  # once: the close finds room again
    monkeypatch.setattr(window, "_store_unstored", lambda: full.pop() if full else None)
    window._announce(window.documents[first])
    assert not nested
    assert (out / "a.txt").is_file() and (out / "b.txt").is_file()
    assert window.folder_watcher._jobs == {} and window._ready is None


def test_a_look_queues_a_folders_files_in_one_batch(qapp, tmp_path):
    """Each watched file was queued by itself, each checked against the whole queue: n² on
    the GUI thread for a folder of thousands (seconds at 20,000 files)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(20):
        write_wav(inbox / f"{i:02}.wav", tone(0.2))
    watcher, queued, _ = _watcher((WatchSpec(str(inbox), ("txt",)),))
    calls: list[int] = []
    queue = watcher._queue_files
    watcher._queue_files = lambda paths: calls.append(len(paths)) or queue(paths)
    _poll(watcher)
    _poll(watcher)
    assert calls == [20] and len(queued) == 20
    assert sorted(str(job.path) for job in watcher._jobs.values()) == sorted(queued)


def test_a_batch_with_a_file_the_user_queued_maps_each_job_to_its_file(make_window, tmp_path):
    """The window queues only the files not waiting already: each job the watch keeps is the
    one of its own file, and the user's file is given back to the watch."""
    watched = tmp_path / "in"
    watched.mkdir()
    for name in ("a.wav", "b.wav", "c.wav"):
        write_wav(watched / name, tone(0.2))
    window = make_window(watch_folders=(WatchSpec(str(watched), ("txt",)),), language="en")
    clock = window.folder_watcher.clock = _Clock()
    (user,) = window.add_files([str(watched / "b.wav")])
    _look(window, clock)
    _look(window, clock, _settle(window.folder_watcher))
    jobs = window.folder_watcher._jobs
    assert sorted(window.queue.path(j) for j in jobs) == [
        str(watched / "a.wav"),
        str(watched / "c.wav"),
    ]
    assert all(window.queue.path(j) == str(job.path) for j, job in jobs.items())
    assert user not in jobs
    watch = next(iter(window.folder_watcher._watches.values()))
    assert not watch.handed(watched / "b.wav")  # given back: the user's job does it


def test_a_folder_edited_or_removed_during_a_look_is_not_queued_with_its_old_template(
    qapp, tmp_path
):
    """The look's snapshot of the watch folders was queued after the user had changed them:
    files transcribed and exported with a template (or a folder) no longer set."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    write_wav(inbox / "a.wav", tone(0.2))
    spec = WatchSpec(str(inbox), ("txt",), str(out))
    watcher, queued, _ = _watcher((spec,))
    _poll(watcher)  # seen
    looks = watcher._look(watcher.settings.prefs.watch_folders)  # settled: handed out
    edited = replace(spec, formats=("srt",))
    watcher.settings.set(watch_folders=(edited,))
    watcher._queue(looks)
    assert queued == []
    _poll(watcher)  # the next look, with the template now set
    assert queued == [str(inbox / "a.wav")]
    assert [job.spec for job in watcher._jobs.values()] == [edited]

    write_wav(inbox / "b.wav", tone(0.3))
    _poll(watcher)  # seen
    looks = watcher._look(watcher.settings.prefs.watch_folders)
    watcher.settings.set(watch_folders=())
    watcher._queue(looks)
    assert queued == [str(inbox / "a.wav")]
    assert not looks[0].watch.handed(inbox / "b.wav")  # given back, its claim dropped
    state = json.loads((out / STATE_FILE).read_text(encoding="utf-8"))
    claims = [key for f in state["folders"].values() for key in f["claims"]]
    assert not any(key.endswith("b.wav") for key in claims)


def test_a_look_failing_in_one_folder_still_queues_the_others(qapp, tmp_path, monkeypatch, caplog):
    """An unexpected error in one folder's look (a state it cannot read) lost the whole look:
    the files handed out for the folders before it were neither queued nor given back."""
    folders = [tmp_path / name for name in ("one", "two", "three")]
    for folder in folders:
        folder.mkdir()
        write_wav(folder / "a.wav", tone(0.2))
    specs = tuple(WatchSpec(str(f), ("txt",), str(tmp_path / "out" / f.name)) for f in folders)
    watcher, queued, _ = _watcher(specs)
    ready = FolderWatch.ready

    def broken(watch):
        if watch.folder == folders[1]:
            raise ValueError("a state it cannot read")
        return ready(watch)

    monkeypatch.setattr(FolderWatch, "ready", broken)
    _poll(watcher)
    _poll(watcher)
    assert queued == [str(folders[0] / "a.wav"), str(folders[2] / "a.wav")]
    assert str(folders[1]) in caplog.text and "a state it cannot read" in caplog.text
    # its traceback once for two failed looks, not at every look (each second)
    failed = [r.levelname for r in caplog.records if "look failed" in r.getMessage()]
    assert failed.count("ERROR") == 1
    monkeypatch.setattr(FolderWatch, "ready", ready)
    _poll(watcher)
    _poll(watcher)
    assert queued[2:] == [str(folders[1] / "a.wav")]  # once it can be read
