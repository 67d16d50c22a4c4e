"""Folders and watch folders in the app, with a fake engine: File → Add folder queues exactly a
folder's media files after a count; a watch folder from the preferences picks up a file written
while the app runs only once it stops growing, writes its exports, and a new window on the same
settings does not redo it."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from app_fakes import FakePlayer, emitted, tone
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QFileDialog, QMessageBox

from app import settings
from app.folders import FolderWatcher, WatchFoldersDialog
from app.i18n import tr
from app.main import build_window
from app.worker import Engine
from engine.audio import write_wav
from engine.library.store import Store
from engine.results import Char, Progress, Segment, TranscriptionInfo
from engine.watch import STATE_FILE, FolderWatch, WatchOptions, WatchSpec


class _Transcriber:
    """One segment, 你好, for any file; remembers which files it was given."""

    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    def transcribe(self, path):
        self.seen.append(str(path))
        info = TranscriptionInfo(str(path), 1.0, 16_000, "fake", "cpu", "fp32", "eager", "mp")
        chars = (Char("你", 0.0, 0.4, 0.9), Char("好", 0.5, 0.9, 0.9))
        return iter([Progress(1.0, 1.0), Segment(0, 0.0, 0.9, chars)]), info


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch):
    """Windows on one settings file and library; `seen` lists the files transcribed."""
    monkeypatch.setattr("app.demo.whisper_model_dir", lambda: None)
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text: pytest.fail(text))
    ini, seen = tmp_path / "settings.ini", []
    store_path = tmp_path / "library.db"
    libraries = []

    def make(label_speakers=None, **prefs):
        store = settings.open_settings(ini)
        settings.save(store, replace(settings.load(store), **prefs))
        store.setValue("recordings_dir", str(tmp_path / "recordings"))
        engine = Engine(
            load_model=lambda source, tqdm: object(),
            transcriber=lambda model: _Transcriber(seen),
            streamer=lambda transcriber: object(),  # no recording here
            list_devices=lambda: [],
            find_unfinished=lambda folder: [],
            recover=lambda path: path,
            speakers=label_speakers,
        )
        libraries.append(Store(store_path))
        window = build_window(store, engine, library=libraries[-1], player=FakePlayer())
        qtbot.addWidget(window)
        window.show()
        return window

    make.seen = seen
    yield make
    for library in libraries:
        library.close()


def test_add_folder_counts_and_queues_exactly_its_media_files(make_window, tmp_path, monkeypatch):
    folder = tmp_path / "lectures"
    for name in ("a.wav", "sub/b.mp3", "sub/deeper/c.m4a", ".hidden/d.wav", "notes.txt", "x.png"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"\0" * 16)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    asked, answer = [], [QMessageBox.StandardButton.No]
    monkeypatch.setattr(
        QMessageBox, "question", lambda _p, _t, text: asked.append(text) or answer[0]
    )
    window = make_window(language="en")
    window.add_folder_action.trigger()  # declined: nothing queued
    assert asked == [f"Transcribe the files in {folder} (3 in all)?"]  # "1 files" read badly
    assert window.queue.job_ids() == []
    answer[0] = QMessageBox.StandardButton.Yes
    window.add_folder_action.trigger()
    queued = [window.queue.path(j) for j in window.queue.job_ids()]
    assert queued == [str(folder / n) for n in ("a.wav", "sub/b.mp3", "sub/deeper/c.m4a")]


def test_add_folder_without_media_says_so(make_window, tmp_path, monkeypatch):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "notes.txt").write_text("hi")
    told = []
    monkeypatch.setattr(QMessageBox, "information", lambda _p, _t, text: told.append(text))
    monkeypatch.setattr(QMessageBox, "question", lambda *a: pytest.fail("asked to confirm 0"))
    window = make_window(language="en")
    assert window.add_folder(str(tmp_path / "empty")) == []
    assert told == [f"{tmp_path / 'empty'} and its subfolders hold no audio or video files."]


def _write_in_pieces(path: Path, pieces: int):
    """A real WAV written as a recorder would: a piece at a time (yields after each)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    source = path.with_name("source.bin")  # not a media file: the watch ignores it
    write_wav(source, tone(1.0))
    data = source.read_bytes()
    source.unlink()
    step = -(-len(data) // pieces)
    with open(path, "wb") as f:
        for start in range(0, len(data), step):
            f.write(data[start : start + step])
            f.flush()
            yield


def _look(window, clock: _Clock, seconds: float = 0.0) -> list[str]:
    """Step the watch clock, look once, and return the paths in the queue."""
    clock.now += seconds
    _poll(window.folder_watcher)
    return [window.queue.path(j) for j in window.queue.job_ids()]


def test_watch_folder_takes_a_growing_file_once_complete_and_not_again_after_restart(
    qtbot, make_window, tmp_path
):
    watched, out = tmp_path / "inbox", tmp_path / "transcripts"
    watched.mkdir()
    spec = WatchSpec(str(watched), ("srt", "json"), str(out), "{stem}-auto")
    window = make_window(watch_folders=(spec,))
    clock = window.folder_watcher.clock = _Clock()
    recording = watched / "day1" / "call.wav"
    writer = _write_in_pieces(recording, 3)
    next(writer)
    assert not window.folder_watcher.timer.isActive()  # no model yet: no looking
    emitted(qtbot, window.worker.model_loaded, window.start)
    qtbot.waitUntil(window.folder_watcher.timer.isActive)  # the loaded model starts it
    settle = window.folder_watcher.options.settle_seconds
    for _ in writer:  # still growing at every look, however long between them
        assert _look(window, clock, settle + 1) == []
    assert _look(window, clock, settle / 2) == []  # complete, but not yet settled
    assert _look(window, clock, settle) == [str(recording)]
    assert _look(window, clock, settle) == [str(recording)]  # queued once, not per look
    srt, js = out / "day1" / "call-auto.srt", out / "day1" / "call-auto.json"
    qtbot.waitUntil(lambda: srt.exists() and js.exists(), timeout=10_000)
    assert "你好" in srt.read_text(encoding="utf-8")
    assert json.loads(js.read_text(encoding="utf-8"))["segments"][0]["text"] == "你好"
    qtbot.waitUntil(lambda: (out / STATE_FILE).exists(), timeout=5000)
    assert make_window.seen == [str(recording)]
    window.close()

    again = make_window()  # the same settings file: the watch folder is remembered
    assert again.prefs.watch_folders == (spec,)
    clock = again.folder_watcher.clock = _Clock()
    emitted(qtbot, again.worker.model_loaded, again.start)
    qtbot.waitUntil(again.folder_watcher.timer.isActive)
    assert _look(again, clock, settle + 1) == [] and _look(again, clock, settle + 1) == []
    assert make_window.seen == [str(recording)]


def test_a_watch_folders_exports_carry_the_speakers_when_the_setting_asks_for_them(
    qtbot, make_window, tmp_path
):
    """Exports are written once speakers are told apart (the window's transcript_ready), not
    when transcription ends: the TXT names the speaker. Exporting at file_done, before the
    speakers arrive, wrote a transcript without them."""
    import threading

    watched, out = tmp_path / "inbox", tmp_path / "transcripts"
    watched.mkdir()
    release = threading.Event()

    def speakers(audio, segments, options):  # the worker thread waits until released
        assert release.wait(10)
        return [replace(s, speaker=1) for s in segments]

    spec = WatchSpec(str(watched), ("txt",), str(out), "{stem}")
    window = make_window(label_speakers=speakers, speakers="auto", watch_folders=(spec,))
    clock = window.folder_watcher.clock = _Clock()
    write_wav(watched / "meeting.wav", tone(1.0))
    emitted(qtbot, window.worker.model_loaded, window.start)
    qtbot.waitUntil(window.folder_watcher.timer.isActive)
    settle = window.folder_watcher.options.settle_seconds
    _look(window, clock, settle + 1)
    assert _look(window, clock, settle + 1) == [str(watched / "meeting.wav")]
    qtbot.waitUntil(lambda: make_window.seen == [str(watched / "meeting.wav")], timeout=10_000)
    qtbot.wait(300)
    txt = out / "meeting.txt"
    assert not txt.exists()  # transcribed, but its speakers are still being told apart
    release.set()
    qtbot.waitUntil(txt.exists, timeout=10_000)
    assert txt.read_text(encoding="utf-8").startswith("说话人 2：你好")


def _watcher(tmp_path: Path, names: tuple[str, ...]) -> tuple[FolderWatcher, list[str]]:
    """A watcher of tmp_path/inbox holding `names` (TXT into tmp_path/out, no settling) and the
    paths it queues, without a window: the test answers for the worker."""
    (tmp_path / "inbox").mkdir()
    for name in names:
        write_wav(tmp_path / "inbox" / name, tone(1.0))
    prefs = settings.Settings()
    prefs.set(watch_folders=(WatchSpec(str(tmp_path / "inbox"), ("txt",), str(tmp_path / "out")),))
    queued: list[str] = []

    def queue(paths: list[str]) -> list[int]:
        queued.extend(paths)
        return list(range(len(queued) - len(paths), len(queued)))

    return FolderWatcher(prefs, queue, options=WatchOptions(settle_seconds=0)), queued


def _finished(state: Path) -> list[str]:
    """The files a watch state remembers as finished (claims of files handed out are no
    finish)."""
    if not state.exists():
        return []
    folders = json.loads(state.read_text(encoding="utf-8"))["folders"].values()
    return [key for finished in folders for key in finished["done"]]


def _transcribed(watcher: FolderWatcher, path: str, job: int | None = None) -> None:
    """The window's transcript_ready for the job of `path` queued last (or `job`)."""
    info = TranscriptionInfo(path, 1.0, 16_000, "fake", "cpu", "fp32", "eager", "mp")
    chars = (Char("你", 0.0, 0.4, 0.9), Char("好", 0.5, 0.9, 0.9))
    if job is None:
        job = max(j for j, queued in watcher._jobs.items() if str(queued.path) == path)
    watcher.transcribed(job, [Segment(0, 0.0, 0.9, chars)], info)


def _poll(watcher: FolderWatcher) -> None:
    """One look from now, waited for: it runs in a background thread, its files queued on
    this one (a look running already, the timer's, is waited for first)."""
    loop, limit = QEventLoop(), QTimer(singleShot=True, interval=10_000)
    watcher.looked.connect(loop.quit)
    limit.timeout.connect(loop.quit)
    for _ in range(2 if watcher._looking else 1):
        limit.start()
        watcher.poll()
        loop.exec()
        assert limit.isActive(), "no look ended"
    limit.stop()
    watcher.looked.disconnect(loop.quit)


def test_a_watch_folder_names_files_apart_and_redoes_one_that_grew_in_the_queue(qapp, tmp_path):
    watcher, queued = _watcher(tmp_path, ("talk.flac", "talk.wav"))
    _poll(watcher)
    _poll(watcher)
    flac, wav = (str(tmp_path / "inbox" / n) for n in ("talk.flac", "talk.wav"))
    assert queued == [flac, wav]
    with open(wav, "ab") as grown:  # the recorder went on while it waited in the queue
        grown.write(b"\0" * 3200)
    _transcribed(watcher, flac)
    _transcribed(watcher, wav)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.txt")) == ["talk-2.txt", "talk.txt"]
    _poll(watcher)
    _poll(watcher)
    assert queued == [flac, wav, wav]  # its grown version, again
    _transcribed(watcher, wav)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.txt")) == ["talk-2.txt", "talk.txt"]


def test_a_watch_state_that_cannot_be_written_is_told_and_the_file_done_again(
    qapp, qtbot, tmp_path, monkeypatch
):
    import engine.watch

    watcher, queued = _watcher(tmp_path, ("memo.wav",))
    _poll(watcher)
    _poll(watcher)

    def full(path, text):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as disk:
        disk.setattr(engine.watch, "atomic_write_text", full)
        with qtbot.waitSignal(watcher.export_failed) as failed:
            _transcribed(watcher, queued[0])
    target, error = failed.args
    assert target == str(tmp_path / "out" / STATE_FILE) and error.errno == 28
    _poll(watcher)
    _poll(watcher)
    assert queued == [str(tmp_path / "inbox" / "memo.wav")] * 2  # not marked done: again


def test_a_watch_state_that_cannot_be_encoded_is_told_and_the_file_given_back(
    qapp, qtbot, tmp_path, monkeypatch
):
    """A state write that fails other than with an OSError escaped into Qt's event loop: the
    UnicodeEncodeError of a name that is not UTF-8 (a Latin-1 réunion.wav) in the state as it
    was written before writers.json_text. Now it is told naming the state file and the
    recording, the transcripts stay, and the file is not transcribed again at every look (the
    same error would come back) but at the next start."""
    import engine.watch
    from app.savedialog import write_error_text

    name = "r\udce9union.wav"  # the bytes r\xe9union.wav, as os.fsdecode reads them
    watcher, queued = _watcher(tmp_path, (name,))
    _poll(watcher)
    _poll(watcher)
    with monkeypatch.context() as old:
        old.setattr(engine.watch, "json_text", lambda state: json.dumps(state, ensure_ascii=False))
        with qtbot.waitSignal(watcher.export_failed) as failed:
            _transcribed(watcher, queued[0])
        target, error = failed.args
        state = tmp_path / "out" / STATE_FILE
        assert target == str(state)
        told = write_error_text(Path(target), error)  # the window's dialog
        assert str(state) in told and str(tmp_path / "inbox" / name) in told
        assert (tmp_path / "out" / "r\udce9union.txt").is_file() and _finished(state) == []
        _poll(watcher)
        _poll(watcher)
        assert queued == [str(tmp_path / "inbox" / name)]  # not again at every look
    again = FolderWatcher(
        watcher.settings, lambda p: queued.extend(p) or [9], options=watcher.options
    )
    _poll(again)
    _poll(again)
    assert queued == [str(tmp_path / "inbox" / name)] * 2  # the next start does it


def test_a_watch_output_that_keeps_failing_is_shown_in_a_dialog_once(
    make_window, tmp_path, monkeypatch
):
    """While a disk stays full the same file comes back every few seconds: a dialog each time
    would stack up on the user."""
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text: shown.append(text))
    window = make_window()
    target = str(tmp_path / "out" / "a.txt")
    for _ in range(3):
        window.folder_watcher.export_failed.emit(target, OSError(28, "No space left on device"))
    assert len(shown) == 1 and "a.txt" in shown[0]
    assert "a.txt" in window.statusBar().currentMessage()
    window.folder_watcher.export_failed.emit(str(tmp_path / "b.txt"), OSError(28, "full"))
    assert len(shown) == 2  # another file: its own dialog


def test_watch_dialog_edits_the_template_and_refuses_a_bad_one(qapp, tmp_path, qtbot):
    prefs = settings.Settings()
    dialog = WatchFoldersDialog(prefs)
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    dialog.add_folder(str(tmp_path))
    dialog.formats["txt"].setChecked(False)
    assert not ok.isEnabled() and dialog.problem.text()  # no format at all
    dialog.formats["vtt"].setChecked(True)
    dialog.name.setText("{stem}/{nope}")
    dialog.name.textEdited.emit(dialog.name.text())
    assert not ok.isEnabled() and "{stem}" in dialog.problem.text()
    dialog.name.setText("{date}-{stem}")
    dialog.name.textEdited.emit(dialog.name.text())
    dialog.out.setText(str(tmp_path / "out"))
    dialog.out.textEdited.emit(dialog.out.text())
    assert ok.isEnabled()
    ok.click()
    assert prefs.prefs.watch_folders == (
        WatchSpec(str(tmp_path), ("vtt",), str(tmp_path / "out"), "{date}-{stem}"),
    )


def test_quitting_with_watched_files_queued_leaves_them_for_the_next_start(
    qtbot, make_window, tmp_path
):
    """Closing the window cancels the queued files: they were marked done, so never
    transcribed at all, at the next start or after."""
    watched = tmp_path / "inbox"
    watched.mkdir()
    for name in ("a.wav", "b.wav"):
        write_wav(watched / name, tone(1.0))
    window = make_window(watch_folders=(WatchSpec(str(watched), ("txt",)),))
    clock = window.folder_watcher.clock = _Clock()
    settle = window.folder_watcher.options.settle_seconds
    _look(window, clock)
    queued = [str(watched / "a.wav"), str(watched / "b.wav")]
    assert _look(window, clock, settle + 1) == queued  # no model yet: they wait
    window.close()
    qtbot.wait(200)
    assert make_window.seen == [] and _finished(watched / STATE_FILE) == []

    again = make_window()
    clock = again.folder_watcher.clock = _Clock()
    _look(again, clock)
    assert _look(again, clock, settle + 1) == queued


def _failed_before(spec: WatchSpec, path: Path) -> None:
    """Record `path` in `spec`'s watch state as failed (an earlier run: it waits for a new
    version)."""
    spec.state_file.parent.mkdir(exist_ok=True)
    watch = FolderWatch(spec.folder, spec.state_file, WatchOptions(settle_seconds=0), spec=spec)
    watch.ready()  # seen: ready at the next look
    assert watch.ready() == [path]
    watch.done(path)  # no transcripts named: failed
    assert watch.failed() == [path]


def test_a_watch_folder_starting_with_files_that_failed_says_so_once_and_retries_them(
    qapp, tmp_path
):
    """The app's watch held back the files that failed before without a word (the CLI names
    them): each watch folder that starts with some says so once, and they can be retried."""
    watcher, queued = _watcher(tmp_path, ("bad.wav",))
    spec = watcher.settings.prefs.watch_folders[0]
    bad = tmp_path / "inbox" / "bad.wav"
    _failed_before(spec, bad)
    told: list[tuple[str, list[Path]]] = []
    watcher.held_back.connect(lambda folder, failed: told.append((folder, failed)))
    _poll(watcher)
    _poll(watcher)
    assert told == [(spec.folder, [bad])] and queued == []
    other = WatchSpec(str(tmp_path / "other"), ("txt",), str(tmp_path / "out2"))
    (tmp_path / "other").mkdir()
    write_wav(tmp_path / "other" / "worse.wav", tone(1.0))
    _failed_before(other, tmp_path / "other" / "worse.wav")
    watcher.settings.set(watch_folders=(spec, other))  # a folder added
    _poll(watcher)
    _poll(watcher)
    assert told == [(spec.folder, [bad]), (other.folder, [tmp_path / "other" / "worse.wav"])]
    assert watcher.failed(spec) == [bad]
    assert watcher.retry_failed(spec) == [bad]
    assert watcher.failed(spec) == []
    _poll(watcher)  # seen again: ready at the next look
    _poll(watcher)
    assert queued == [str(bad)]  # the other folder's stays held back
    assert len(told) == 2


def test_the_window_says_the_held_back_files_and_its_watch_dialog_retries_them(
    qtbot, make_window, tmp_path, monkeypatch
):
    watched, out = tmp_path / "inbox", tmp_path / "transcripts"
    watched.mkdir()
    bad = watched / "bad.wav"
    write_wav(bad, tone(1.0))
    spec = WatchSpec(str(watched), ("txt",), str(out))
    _failed_before(spec, bad)
    window = make_window(watch_folders=(spec,))
    clock = window.folder_watcher.clock = _Clock()
    emitted(qtbot, window.worker.model_loaded, window.start)
    qtbot.waitUntil(window.folder_watcher.timer.isActive)
    said = tr("watch.held_back", folder=str(watched), count=1, name="bad.wav")
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == said)  # the first look's
    opened: list[WatchFoldersDialog] = []
    monkeypatch.setattr(WatchFoldersDialog, "exec", lambda dialog: opened.append(dialog) or 0)
    window.edit_watch_folders()
    dialog = opened[0]
    qtbot.addWidget(dialog)
    assert dialog.retry.isVisibleTo(dialog)
    qtbot.waitUntil(dialog.retry.isEnabled)  # once the watch state is read
    dialog.retry.click()
    assert not dialog.retry.isEnabled()
    settle = window.folder_watcher.options.settle_seconds
    _look(window, clock, settle + 1)
    assert _look(window, clock, settle + 1) == [str(bad)]
    qtbot.waitUntil((out / "bad.txt").exists, timeout=10_000)
    assert make_window.seen == [str(bad)]


def test_the_watch_dialog_reads_the_failed_files_off_the_gui_thread_and_keeps_the_latest(
    qtbot, tmp_path, monkeypatch
):
    """Old: selecting a folder read its watch state on the GUI thread, where a damaged one is
    rebuilt by scanning the folder (thousands of files on a network drive froze the window).
    The retry button waits, disabled, for the answer, and a late answer for the folder
    selected before never sets it for the one selected now."""
    watcher, _queued = _watcher(tmp_path, ("bad.wav",))
    slow = watcher.settings.prefs.watch_folders[0]  # has a failed file; read slowly
    _failed_before(slow, tmp_path / "inbox" / "bad.wav")
    (tmp_path / "other").mkdir()
    other = WatchSpec(str(tmp_path / "other"), ("txt",), str(tmp_path / "out2"))
    watcher.settings.set(watch_folders=(slow, other))
    real_refresh = FolderWatch._refresh
    on_gui, readers, release = [], [], threading.Event()

    def refresh(watch: FolderWatch, *args, **kwargs) -> None:
        if threading.current_thread() is threading.main_thread():
            on_gui.append(watch.folder)
        elif watch.folder == Path(slow.folder):
            readers.append(threading.current_thread())
            release.wait()
        real_refresh(watch, *args, **kwargs)

    monkeypatch.setattr(FolderWatch, "_refresh", refresh)
    try:
        dialog = WatchFoldersDialog(watcher.settings, watcher=watcher)
        qtbot.addWidget(dialog)
        assert on_gui == []
        assert not dialog.retry.isEnabled()  # not known yet
        dialog.list.setCurrentRow(1)  # the other folder, no failed files, answers first
        assert not dialog.retry.isEnabled()
    finally:
        release.set()
    for reader in readers:
        reader.join()
    QApplication.processEvents()  # the late answers posted to the dialog are delivered
    assert readers and not dialog.retry.isEnabled()
    dialog.list.setCurrentRow(0)
    qtbot.waitUntil(dialog.retry.isEnabled)
    assert on_gui == []


def test_the_greyed_out_watch_settings_say_why(qtbot, tmp_path):
    """Format, Output folder and File name were greyed out until a folder was added and
    selected, and nothing said so."""
    prefs = settings.Settings(settings.open_settings(tmp_path / "settings.ini"))
    dialog = WatchFoldersDialog(prefs)
    qtbot.addWidget(dialog)
    greyed = [*dialog.formats.values(), dialog.out, dialog.browse, dialog.name, dialog.remove]
    assert not any(w.isEnabled() for w in greyed)
    why = {w.toolTip() for w in greyed}
    assert len(why) == 1 and "添加文件夹…" in why.pop()

    dialog.add_folder(str(tmp_path))
    assert all(w.isEnabled() for w in greyed)
    assert dialog.name.toolTip() == tr("watch.name_help")  # its help again, no reason
    assert not any(w.toolTip() for w in greyed if w is not dialog.name)
