"""Watch folders that go wrong: a file cancelled (quitting cancels the queued ones) is not
remembered as finished, an output folder that cannot be made is told once and the file not
transcribed again and again, file-name patterns that only plain {stem}, {date} and {time} pass,
folders that overlap, relative output folders, and settings entries this version cannot read.
Then what a watch must never lose: a file already where a transcript goes (the user's notes, the
transcript of an earlier recording of the same name), the transcripts and state of another
watch folder writing into the same output folder, a recording whose transcripts could not be
written; and what it must say: a transcript name too long, a subfolder that cannot be read, the
watched folder gone."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from app_fakes import tone
from disk_faults import fsync_full_at
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox
from test_app_folders import _poll, _transcribed

from app import i18n, settings
from app.folders import FolderWatcher, WatchFoldersDialog
from engine.atomic import atomic_write_text
from engine.audio import write_wav
from engine.cli import main as cli
from engine.results import Char, Segment, TranscriptionInfo
from engine.watch import STATE_FILE, FolderWatch, WatchOptions, WatchSpec, media_files


@pytest.fixture
def english():
    """The dialogs' texts in English, Chinese again after."""
    i18n.set_language("en")
    yield
    i18n.set_language("zh")


class _Worker(QObject):
    """The worker's signals the watcher follows."""

    model_loaded = Signal(object)
    file_failed = Signal(int, object)
    file_cancelled = Signal(int)


def _watcher(specs: tuple[WatchSpec, ...]) -> tuple[FolderWatcher, list[str], _Worker]:
    """A watcher of `specs` (no settling) following a fake worker, and the paths it queues
    (job ids are their places in that list)."""
    prefs = settings.Settings()
    prefs.set(watch_folders=specs)
    queued: list[str] = []

    def queue(paths: list[str]) -> list[int]:
        queued.extend(paths)
        return list(range(len(queued) - len(paths), len(queued)))

    watcher = FolderWatcher(prefs, queue, options=WatchOptions(settle_seconds=0))
    worker = _Worker()
    watcher.follow(worker)
    return watcher, queued, worker


def _look(watcher: FolderWatcher) -> None:
    _poll(watcher)  # seen
    _poll(watcher)  # settled


def _state(folder: Path) -> dict:
    """The files the state file in `folder` remembers as finished, of every watched folder."""
    path = folder / STATE_FILE
    if not path.exists():
        return {}
    folders = json.loads(path.read_text(encoding="utf-8"))["folders"].values()
    return {key: stamp for finished in folders for key, stamp in finished["done"].items()}


def test_a_cancelled_file_is_not_remembered_and_a_failed_one_is(qapp, tmp_path):
    """Quitting cancels the queued files: marked done, they were never transcribed at all."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("cancelled.wav", "failed.wav"):
        write_wav(inbox / name, tone(1.0))
    spec = WatchSpec(str(inbox), ("txt",))
    watcher, queued, worker = _watcher((spec,))
    _look(watcher)
    assert queued == [str(inbox / "cancelled.wav"), str(inbox / "failed.wav")]
    worker.file_cancelled.emit(0)
    worker.file_failed.emit(1, ValueError("not audio"))
    assert list(_state(inbox)) == ["failed.wav"]  # not retried forever
    _look(watcher)
    assert len(queued) == 2  # a cancelled file does not come back at the next look
    with open(inbox / "cancelled.wav", "ab") as grown:
        grown.write(b"\0" * 320)
    _look(watcher)
    assert queued[2:] == [str(inbox / "cancelled.wav")]  # its new version does

    again, queued, _ = _watcher((spec,))  # the next start
    _look(again)
    assert queued == [str(inbox / "cancelled.wav")]


def test_a_folder_watch_given_a_file_back_hands_it_out_after_a_restart(tmp_path):
    write_wav(tmp_path / "a.wav", tone(1.0))
    state = tmp_path / "out" / STATE_FILE
    watch = FolderWatch(tmp_path, state, WatchOptions(settle_seconds=0))
    watch.ready()
    assert watch.ready() == [tmp_path / "a.wav"]
    watch.release(tmp_path / "a.wav")
    assert watch.ready() == [] and _state(state.parent) == {}
    assert FolderWatch(tmp_path, state, WatchOptions(settle_seconds=0)).ready() == []  # seen
    restarted = FolderWatch(tmp_path, state, WatchOptions(settle_seconds=0))
    restarted.ready()
    assert restarted.ready() == [tmp_path / "a.wav"]


def test_an_output_folder_that_cannot_be_made_is_told_once_and_not_redone_now(qapp, tmp_path):
    """A file where the output folder should be: the slot raised, the file was never marked,
    and it was transcribed again at every look (a library entry each time)."""
    inbox, out = tmp_path / "inbox", tmp_path / "transcripts"
    inbox.mkdir()
    out.write_text("a file, typed as the output folder")
    write_wav(inbox / "call.wav", tone(1.0))
    watcher, queued, _ = _watcher((WatchSpec(str(inbox), ("txt", "srt"), str(out)),))
    failed = []
    watcher.export_failed.connect(lambda target, error: failed.append((target, error)))
    _look(watcher)
    assert queued == [str(inbox / "call.wav")]
    _transcribed(watcher, queued[0])
    assert [(t, e.code, e.params["path"]) for t, e in failed] == [
        (str(out), "transcribe.out_is_file", str(out))
    ]
    _look(watcher)
    _look(watcher)
    assert queued == [str(inbox / "call.wav")]  # not again and again
    again, queued, _ = _watcher((WatchSpec(str(inbox), ("txt", "srt"), str(out)),))
    _look(again)
    assert queued == [str(inbox / "call.wav")]  # the next start tries again


def test_nested_watch_folders_queue_a_file_once(qapp, tmp_path):
    inbox = tmp_path / "inbox"
    calls = inbox / "calls"
    calls.mkdir(parents=True)
    write_wav(calls / "call.wav", tone(1.0))
    write_wav(inbox / "memo.wav", tone(1.0))
    for specs in ((WatchSpec(str(inbox)), WatchSpec(str(calls))),
                  (WatchSpec(str(calls)), WatchSpec(str(inbox)))):  # fmt: skip
        for stale in tmp_path.rglob(STATE_FILE):
            stale.unlink()
        watcher, queued, _ = _watcher(specs)
        _look(watcher)
        assert sorted(queued) == [str(calls / "call.wav"), str(inbox / "memo.wav")]
        for path in list(queued):
            _transcribed(watcher, path)
        _look(watcher)
        _look(watcher)
        assert len(queued) == 2  # not once more by the other watch folder


_UNUSABLE = ["{stem.upper}", "{date.year}", "{stem.x}", "{stem[a]}", "{stem!r}", "{stem:>9}"]


@pytest.mark.parametrize("name", [*_UNUSABLE, "{}", "{0}", "{stem", "stem}"])
def test_a_file_name_pattern_takes_only_plain_stem_date_and_time(name):
    with pytest.raises(ValueError, match=r"use only \{stem\}, \{date\} and \{time\}"):
        WatchSpec("inbox", ("txt",), "", name)


@pytest.mark.parametrize("name", [".", "..", ".{stem}", "{stem}/.", " "])
def test_a_file_name_pattern_must_name_a_visible_file(name):
    with pytest.raises(ValueError, match="give a file name"):
        WatchSpec("inbox", ("txt",), "", name)


def test_plain_file_name_patterns_still_pass():
    for name in ("{stem}", "{date}-{stem}", "{stem}_{time}", "{{x}}{stem}", "a.{stem}"):
        WatchSpec("inbox", ("txt",), "", name)


def _settings_file(tmp_path: Path, entries: list) -> Path:
    ini = tmp_path / "s.ini"
    store = settings.open_settings(ini)
    store.setValue("watch_folders", json.dumps(entries))
    store.sync()
    return ini


def test_a_watch_entry_that_does_not_read_is_skipped_kept_and_told(qtbot, tmp_path, english):
    """{date.year} crashed the start (AttributeError); a format this version lacks dropped the
    entry, and the next change of any preference erased it from the file."""
    good = {"folder": str(tmp_path / "a"), "formats": ["txt"], "out": "", "name": "{stem}"}
    year = {"folder": str(tmp_path / "b"), "formats": ["txt"], "out": "", "name": "{date.year}"}
    docx = {"folder": str(tmp_path / "c"), "formats": ["txt", "docx"], "out": "", "name": "{stem}"}
    ini = _settings_file(tmp_path, [good, None, year, docx])
    prefs = settings.Settings(settings.open_settings(ini))
    assert prefs.prefs.watch_folders == (WatchSpec(**good),)
    prefs.set(threshold=0.5)  # another preference must not erase them
    assert json.loads(settings.open_settings(ini).value("watch_folders")) == [
        good, None, year, docx,
    ]  # fmt: skip
    skipped = dict(settings.unreadable_watch_folders(prefs.prefs))
    assert set(skipped) - {"null"} == {str(tmp_path / "b"), str(tmp_path / "c")}
    assert "docx" in skipped[str(tmp_path / "c")]
    dialog = WatchFoldersDialog(prefs)
    qtbot.addWidget(dialog)
    assert str(tmp_path / "c") in dialog.skipped.text() and "docx" in dialog.skipped.text()
    assert not dialog.skipped.isHidden()


def test_watch_entries_that_do_not_read_can_be_removed_from_the_dialog(qtbot, tmp_path, english):
    """The dialog said such entries were kept in the settings file, with no way to remove them
    but editing the file by hand. Cancel keeps them; the button and OK remove them only."""
    good = {"folder": str(tmp_path / "a"), "formats": ["txt"], "out": "", "name": "{stem}"}
    docx = {"folder": str(tmp_path / "c"), "formats": ["docx"], "out": "", "name": "{stem}"}
    ini = _settings_file(tmp_path, [good, docx])
    prefs = settings.Settings(settings.open_settings(ini))
    dialog = WatchFoldersDialog(prefs)
    qtbot.addWidget(dialog)
    dialog.forget.click()
    assert dialog.skipped.isHidden() and dialog.forget.isHidden()
    dialog.reject()
    assert json.loads(settings.open_settings(ini).value("watch_folders")) == [good, docx]
    dialog = WatchFoldersDialog(prefs)
    qtbot.addWidget(dialog)
    dialog.forget.click()
    dialog.accept()
    assert json.loads(settings.open_settings(ini).value("watch_folders")) == [good]
    assert settings.unreadable_watch_folders(prefs.prefs) == []


def test_a_watch_entry_of_an_unknown_format_is_not_erased_by_another_change(tmp_path):
    good = {"folder": str(tmp_path / "a"), "formats": ["txt"], "out": "", "name": "{stem}"}
    docx = {"folder": str(tmp_path / "c"), "formats": ["docx"], "out": "", "name": "{stem}"}
    ini = _settings_file(tmp_path, [good, docx])
    prefs = settings.Settings(settings.open_settings(ini))
    prefs.set(watch_folders=(*prefs.prefs.watch_folders, WatchSpec(str(tmp_path / "d"))))
    entries = json.loads(settings.open_settings(ini).value("watch_folders"))
    assert entries == [good, {**good, "folder": str(tmp_path / "d")}, docx]


def _dialog(qtbot, folders: tuple[str, ...] = ()) -> tuple[WatchFoldersDialog, settings.Settings]:
    prefs = settings.Settings()
    prefs.set(watch_folders=tuple(WatchSpec(f) for f in folders))
    dialog = WatchFoldersDialog(prefs)
    qtbot.addWidget(dialog)
    return dialog, prefs


def _type(field, text: str) -> None:
    field.setText(text)
    field.textEdited.emit(text)  # as typing does


def test_the_dialog_refuses_an_output_folder_that_is_relative_or_a_file(qtbot, tmp_path, english):
    """A relative "transcripts" was read from wherever the app was started: the state file was
    not found from another, and everything was transcribed again."""
    dialog, prefs = _dialog(qtbot, (str(tmp_path),))
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    _type(dialog.out, "transcripts")
    assert not ok.isEnabled() and "full path" in dialog.problem.text()
    (tmp_path / "a-file").write_text("x")
    _type(dialog.out, str(tmp_path / "a-file"))
    assert not ok.isEnabled() and "is a file, not a folder" in dialog.problem.text()
    _type(dialog.out, str(tmp_path / "out"))
    assert ok.isEnabled()
    ok.click()
    assert prefs.prefs.watch_folders[0].out == str(tmp_path / "out")


@pytest.mark.parametrize(
    ("name", "says"),
    [("{date.year}", "can use only"), ("{stem.upper}", "can use only"), (".", "starts with")],
)
def test_the_dialog_refuses_a_file_name_it_cannot_use(qtbot, tmp_path, name, says, english):
    dialog, _ = _dialog(qtbot, (str(tmp_path),))
    _type(dialog.name, name)
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    assert says in dialog.problem.text() and dialog.specs[0].name == "{stem}"


def test_the_dialog_refuses_a_folder_that_overlaps_one_listed(qtbot, tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    (inbox / "calls").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text: shown.append(text))
    dialog, _ = _dialog(qtbot, (str(inbox),))
    for folder in (inbox, inbox / "calls", tmp_path, Path(f"{inbox}/calls/..")):
        dialog.add_folder(str(folder))
    assert [s.folder for s in dialog.specs] == [str(inbox)]
    assert len(shown) == 4 and all(str(inbox) in text for text in shown)
    assert str(inbox / "calls") in shown[1] and str(tmp_path) in shown[2]
    dialog.add_folder(str(tmp_path / "other"))
    assert [s.folder for s in dialog.specs] == [str(inbox), str(tmp_path / "other")]


def _cli_watch(folder: Path, model: Path, *more: str) -> int:
    """`tingxie-cli watch FOLDER --once` with no settling, TXT unless `more` says otherwise."""
    return cli(["watch", str(folder), "--once", "--settle", "0", "--poll", "0.01", "--model",
                str(model), "--no-punctuation", "--device", "cpu", *more])  # fmt: skip


def test_the_cli_watch_does_not_write_over_a_file_already_there(tiny_model_dir, tmp_path):
    """The user's own meeting.txt beside a new meeting.wav was replaced by its transcript."""
    (tmp_path / "meeting.txt").write_text("my own notes\n", encoding="utf-8")
    write_wav(tmp_path / "meeting.wav", tone(1.0))
    assert _cli_watch(tmp_path, tiny_model_dir) == 0
    assert (tmp_path / "meeting.txt").read_text(encoding="utf-8") == "my own notes\n"
    assert (tmp_path / "meeting-2.txt").read_text(encoding="utf-8").strip()


def test_an_app_watch_folder_does_not_write_over_a_file_already_there(qapp, tmp_path):
    (tmp_path / "meeting.txt").write_text("my own notes\n", encoding="utf-8")
    write_wav(tmp_path / "meeting.wav", tone(1.0))
    watcher, queued, _ = _watcher((WatchSpec(str(tmp_path), ("txt",)),))
    _look(watcher)
    _transcribed(watcher, queued[0])
    assert (tmp_path / "meeting.txt").read_text(encoding="utf-8") == "my own notes\n"
    assert "你" in (tmp_path / "meeting-2.txt").read_text(encoding="utf-8")


def _transcribe_watched(spec: WatchSpec, text: str) -> list[str]:
    """A watch of `spec` started afresh writes `text` as the transcript of each ready file;
    the transcripts' names."""
    watch = FolderWatch(spec.folder, spec.state_file, WatchOptions(settle_seconds=0))
    names = []
    for path in _settled(watch):
        base = spec.base(path, watch.names(path), watch.own(path))
        for target in spec.targets(base):
            atomic_write_text(target, text)
        watch.done(path, base)
        names.append(base.name)
    return names


def _settled(watch: FolderWatch) -> list[Path]:
    watch.ready()
    return watch.ready()


def test_a_recording_that_reuses_a_name_keeps_the_earlier_ones_transcript(tmp_path):
    """A recorder reuses REC001.wav once its card is emptied: the new recording's transcript
    replaced the earlier one's. A recording that grew (the recorder resumed) still replaces
    its own."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    spec = WatchSpec(str(inbox), ("json",), str(out))
    write_wav(inbox / "REC001.wav", tone(1.0))
    assert _transcribe_watched(spec, "first") == ["REC001"]
    (inbox / "REC001.wav").unlink()  # the card emptied, the name used again
    write_wav(inbox / "REC001.wav", tone(3.0) * 0.5)
    assert _transcribe_watched(spec, "second") == ["REC001-2"]
    with open(inbox / "REC001.wav", "ab") as resumed:
        resumed.write(b"\1" * 3200)
    assert _transcribe_watched(spec, "second, resumed") == ["REC001-2"]
    texts = {p.name: p.read_text(encoding="utf-8") for p in out.glob("REC*")}
    assert texts == {"REC001.json": "first", "REC001-2.json": "second, resumed"}


def test_two_watch_folders_writing_into_one_folder_keep_both(tmp_path):
    """phone/talk.wav and recorder/talk.wav into one Transcripts folder: the second watch
    wrote over the first's transcript and state, and the first then did its file again."""
    out = tmp_path / "Transcripts"
    specs = [WatchSpec(str(tmp_path / name), ("txt",), str(out)) for name in ("phone", "recorder")]
    for spec, seconds in zip(specs, (1.0, 2.0), strict=True):
        Path(spec.folder).mkdir()
        write_wav(Path(spec.folder) / "talk.wav", tone(seconds))
    assert _transcribe_watched(specs[0], "phone") == ["talk"]
    assert _transcribe_watched(specs[1], "recorder") == ["talk-2"]
    for spec in specs:  # restarted: neither is done again
        assert FolderWatch(spec.folder, spec.state_file).pending() == 0
    assert _transcribe_watched(specs[0], "again") == []
    texts = {p.name: p.read_text(encoding="utf-8") for p in out.glob("*.txt")}
    assert texts == {"talk.txt": "phone", "talk-2.txt": "recorder"}


def test_app_watch_folders_writing_into_one_folder_keep_both(qapp, tmp_path):
    """Two watches in one app, one state file: each wrote its own in-memory copy over it."""
    out = tmp_path / "Transcripts"
    specs = tuple(WatchSpec(str(tmp_path / n), ("txt",), str(out)) for n in ("phone", "recorder"))
    for spec in specs:
        Path(spec.folder).mkdir()
        write_wav(Path(spec.folder) / "talk.wav", tone(1.0))
    watcher, queued, _ = _watcher(specs)
    _look(watcher)
    for path in list(queued):
        _transcribed(watcher, path)
    assert sorted(p.name for p in out.glob("*.txt")) == ["talk-2.txt", "talk.txt"]
    again, queued, _ = _watcher(specs)  # the next start
    _look(again)
    assert queued == []


def test_the_cli_watch_does_not_remember_a_file_whose_transcripts_were_not_written(
    tiny_model_dir, tmp_path, capsys
):
    """A file stands where the output subfolder goes: the recording was recorded as finished
    anyway, so never transcribed once the user moved that file."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    (inbox / "sub").mkdir(parents=True)
    out.mkdir()
    (out / "sub").write_text("a stray file")
    write_wav(inbox / "sub" / "a.wav", tone(1.0))
    assert _cli_watch(inbox, tiny_model_dir, "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert f"{out / 'sub'} is a file, where a folder for transcripts should be" in err
    assert "move or rename that file" in err
    assert _state(out) == {}
    (out / "sub").unlink()
    assert _cli_watch(inbox, tiny_model_dir, "--out", str(out)) == 0
    assert (out / "sub" / "a.txt").is_file()


def test_the_cli_watch_says_a_folder_where_a_resumed_recordings_transcript_goes(
    tiny_model_dir, tmp_path, capsys
):
    """A resumed recording replaces its own transcript, which a folder of that name had taken
    the place of: "could not be written (Is a directory); free some space", after the model
    ran."""
    write_wav(tmp_path / "talk.wav", tone(1.0))
    assert _cli_watch(tmp_path, tiny_model_dir) == 0
    (tmp_path / "talk.txt").unlink()
    (tmp_path / "talk.txt").mkdir()
    with open(tmp_path / "talk.wav", "ab") as resumed:
        resumed.write(b"\1" * 3200)
    done = _state(tmp_path)
    capsys.readouterr()
    assert _cli_watch(tmp_path, tiny_model_dir) == 1
    err = capsys.readouterr().err
    (error,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert f"{tmp_path / 'talk.txt'}: that is a folder" in error and "--out DIR" in error
    assert "Is a directory" not in err and "free some space" not in err
    assert "s audio" not in err  # no transcription's progress: the model did not run
    assert _state(tmp_path) == done  # the new version is not remembered: a restart does it
    (tmp_path / "talk.txt").rmdir()
    assert _cli_watch(tmp_path, tiny_model_dir) == 0
    assert (tmp_path / "talk.txt").read_text(encoding="utf-8").strip()


def _resumed_with_a_folder_for_its_txt(folder: Path, spec: WatchSpec) -> str:
    """talk.wav transcribed by an app watch of `spec` into talk.txt and talk.srt, then its
    talk.txt made a folder (the user's) and the recording resumed; the srt's text."""
    write_wav(folder / "talk.wav", tone(1.0))
    watcher, queued, _ = _watcher((spec,))
    _look(watcher)
    _transcribed(watcher, queued[0])
    (folder / "talk.txt").unlink()
    (folder / "talk.txt").mkdir()
    with open(folder / "talk.wav", "ab") as resumed:
        resumed.write(b"\1" * 3200)
    return (folder / "talk.srt").read_text(encoding="utf-8")


def test_an_app_watch_folder_says_a_folder_where_a_resumed_recordings_transcript_goes(
    qapp, tmp_path, english
):
    """The resumed recording was transcribed, its talk.srt replaced, talk.txt failed "Is a
    directory" with no way out, and the recording was remembered as done: its TXT never came.
    As the CLI watch: told before it is queued, naming the folder and what to do, nothing
    written or remembered; the next start does it once the folder is out of the way."""
    from app.savedialog import write_error_text

    spec = WatchSpec(str(tmp_path), ("txt", "srt"))
    srt = _resumed_with_a_folder_for_its_txt(tmp_path, spec)
    done = _state(tmp_path)
    watcher, queued, _ = _watcher((spec,))
    failed = []
    watcher.export_failed.connect(lambda target, error: failed.append((target, error)))
    _look(watcher)
    _look(watcher)
    assert queued == []  # the model does not run for transcripts that cannot be written
    ((target, error),) = failed  # told once
    assert error.code == "transcribe.folder_in_the_way"
    told = write_error_text(Path(target), error)  # the window's dialog
    assert str(tmp_path / "talk.txt") in told and "rename or move that folder" in told
    assert (tmp_path / "talk.srt").read_text(encoding="utf-8") == srt
    assert _state(tmp_path) == done
    (tmp_path / "talk.txt").rmdir()
    again, queued, _ = _watcher((spec,))  # the next start
    _look(again)
    _transcribed(again, queued[0])
    assert "你" in (tmp_path / "talk.txt").read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.glob("talk*.*")) == ["talk.srt", "talk.txt", "talk.wav"]


def test_a_folder_made_where_a_queued_resumed_recordings_transcript_goes_is_told(qapp, tmp_path):
    """The folder came while the recording waited in the queue: nothing is written (its
    talk.srt was replaced, and the recording remembered as done), and it is given back."""
    spec = WatchSpec(str(tmp_path), ("txt", "srt"))
    srt = _resumed_with_a_folder_for_its_txt(tmp_path, spec)
    (tmp_path / "talk.txt").rmdir()
    done = _state(tmp_path)
    watcher, queued, _ = _watcher((spec,))
    failed = []
    watcher.export_failed.connect(lambda target, error: failed.append(error))
    _look(watcher)
    (tmp_path / "talk.txt").mkdir()
    _transcribed(watcher, queued[0])
    assert [(e.code, e.params["path"]) for e in failed] == [
        ("transcribe.folder_in_the_way", str(tmp_path / "talk.txt"))
    ]
    assert (tmp_path / "talk.srt").read_text(encoding="utf-8") == srt
    assert _state(tmp_path) == done
    _look(watcher)
    assert len(queued) == 1  # given back: not again at every look


def test_the_formats_of_a_watched_recording_are_all_new_or_none(
    qapp, tmp_path, english, monkeypatch
):
    """A full disk at the third format of a resumed recording: talk.txt and talk.srt were
    replaced one by one while talk.json kept the earlier version, and the recording was
    remembered as done, so the folder kept that mix. Now the formats are written together, as
    the CLI writes them (engine.writers.write_all): none changed, told once naming them all,
    not remembered; the next start writes all three."""
    import engine.atomic
    from app.savedialog import write_error_text

    spec = WatchSpec(str(tmp_path), ("txt", "srt", "json"))
    write_wav(tmp_path / "talk.wav", tone(1.0))
    watcher, queued, _ = _watcher((spec,))
    _look(watcher)
    _transcribed(watcher, queued[0])
    names = [tmp_path / f"talk.{fmt}" for fmt in ("txt", "srt", "json")]
    before, done = [p.read_text(encoding="utf-8") for p in names], _state(tmp_path)
    with open(tmp_path / "talk.wav", "ab") as resumed:
        resumed.write(b"\1" * 3200)
    watcher, queued, _ = _watcher((spec,))
    _look(watcher)
    failed = []
    watcher.export_failed.connect(lambda target, error: failed.append((target, error)))
    info = TranscriptionInfo(queued[0], 2.0, 16_000, "fake", "cpu", "fp32", "eager", "mp")
    again = [Segment(0, 0.0, 0.9, (Char("再", 0.0, 0.4, 0.9), Char("见", 0.5, 0.9, 0.9)))]
    with monkeypatch.context() as disk:
        disk.setattr(engine.atomic.os, "fsync", fsync_full_at(3))  # the third format
        watcher.transcribed(0, again, info)  # its job
    assert [p.read_text(encoding="utf-8") for p in names] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [STATE_FILE, f"{STATE_FILE}.lock", "talk.wav", *(p.name for p in names)]
    )  # no temporary file left (the state's lock file is kept)
    assert _state(tmp_path) == done  # the resumed version is not remembered
    ((target, error),) = failed  # told once, not once per format
    assert error.code == "transcribe.watch_write_failed"
    told = write_error_text(Path(target), error)  # the window's dialog
    assert all(str(p) in told for p in names) and "No space left" in told
    assert "none of the transcripts" in told and "next start" in told
    _look(watcher)
    assert len(queued) == 1  # given back: not again at every look
    watcher, queued, _ = _watcher((spec,))  # the next start, the disk freed
    _look(watcher)
    watcher.transcribed(0, again, info)
    assert all("再" in p.read_text(encoding="utf-8") for p in names)
    assert _state(tmp_path) != done


def test_a_folder_with_a_new_recordings_transcript_name_is_passed_by_as_a_file_is(qapp, tmp_path):
    """A folder named talk.txt beside a new talk.wav: the app's watch, as the CLI's, writes
    talk-2 and leaves the folder as it was."""
    (tmp_path / "talk.txt").mkdir()
    (tmp_path / "talk.txt" / "notes.md").write_text("mine", encoding="utf-8")
    write_wav(tmp_path / "talk.wav", tone(1.0))
    watcher, queued, _ = _watcher((WatchSpec(str(tmp_path), ("txt",)),))
    _look(watcher)
    _transcribed(watcher, queued[0])
    assert [p.name for p in (tmp_path / "talk.txt").iterdir()] == ["notes.md"]
    assert "你" in (tmp_path / "talk-2.txt").read_text(encoding="utf-8")


_LONG = "会议" * 41  # 246 bytes: with ".wav" or ".txt" a name a file system takes


def test_a_transcript_with_a_long_legal_name_is_written(tmp_path):
    """The temporary file beside it had a name 14 bytes longer, which no file system takes."""
    assert (
        atomic_write_text(tmp_path / f"{_LONG}.txt", "你好").read_text(encoding="utf-8") == "你好"
    )
    assert [p.name for p in tmp_path.iterdir()] == [f"{_LONG}.txt"]


def test_a_transcript_name_too_long_is_said_before_the_model_runs(tiny_model_dir, tmp_path, capsys):
    """It said "could not be written (File name too long); free some space" after the model
    ran, and recorded the recording as finished."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    write_wav(tmp_path / "x.wav", tone(1.0))
    (tmp_path / "x.wav").rename(inbox / f"{_LONG}.wav")
    assert _cli_watch(inbox, tiny_model_dir, "--name", "{stem}-{date}", "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert "bytes, longer than a file name may be (255); rename the recording, or choose a " in err
    assert "s audio" not in err  # no transcription's progress: the model did not run
    assert _state(out) == {}


def test_an_app_watch_folder_does_not_queue_a_file_whose_transcript_name_is_too_long(
    qapp, tmp_path
):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_wav(tmp_path / "x.wav", tone(1.0))
    (tmp_path / "x.wav").rename(inbox / f"{_LONG}.wav")
    watcher, queued, _ = _watcher((WatchSpec(str(inbox), ("txt",), "", "{stem}-{date}"),))
    failed = []
    watcher.export_failed.connect(lambda target, error: failed.append(error.code))
    _look(watcher)
    _look(watcher)
    assert queued == [] and failed == ["transcribe.name_too_long"]  # told once


def test_a_subfolder_that_cannot_be_read_is_skipped_with_one_warning(tmp_path, monkeypatch, caplog):
    """A dropped network mount (ENOTCONN) inside the watched folder: the CLI died with a
    traceback and the app skipped the whole folder."""
    (tmp_path / "nas").mkdir()
    write_wav(tmp_path / "memo.wav", tone(1.0))
    scandir = os.scandir

    def dropped(path="."):
        if str(path).endswith("nas"):
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN), str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", dropped)
    assert media_files(tmp_path) == [tmp_path / "memo.wav"]
    watch = FolderWatch(tmp_path, tmp_path / STATE_FILE, WatchOptions(settle_seconds=0))
    caplog.clear()
    assert _settled(watch) == [tmp_path / "memo.wav"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [f"{tmp_path / 'nas'}: cannot be read ({os.strerror(errno.ENOTCONN)}); "
                        "its files are skipped"]  # fmt: skip


def _sleeps(monkeypatch, *steps) -> None:
    """The CLI watch's sleeps between looks do `steps` in turn (then stop it), not wait."""
    import engine.cli.watch

    todo = iter(steps)

    def sleep(_seconds: float) -> None:
        step = next(todo, None)
        if step is None:
            raise KeyboardInterrupt
        step()

    monkeypatch.setattr(engine.cli.watch.time, "sleep", sleep)


def test_the_cli_watch_says_when_the_folder_is_gone_and_back(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    """Renamed or unmounted while watched, it polled silently forever."""
    inbox, away = tmp_path / "inbox", tmp_path / "unmounted"
    inbox.mkdir()
    nothing = lambda: None  # noqa: E731
    _sleeps(monkeypatch, lambda: inbox.rename(away), nothing, nothing,
            lambda: away.rename(inbox), nothing)  # fmt: skip
    args = ["watch", str(inbox), "--settle", "0", "--poll", "0.01", "--model",
            str(tiny_model_dir), "--no-punctuation", "--device", "cpu"]  # fmt: skip
    assert cli(args) == 0
    lines = capsys.readouterr().err.splitlines()
    gone = f"{inbox}: folder is gone (renamed or unmounted); waiting for it to come back"
    assert lines.count(gone) == 1
    assert lines.count(f"{inbox}: folder is back; watching it again") == 1
    assert lines.index(gone) < lines.index(f"{inbox}: folder is back; watching it again")


def test_the_cli_watch_once_exits_1_when_the_folder_is_gone(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_wav(inbox / "memo.wav", tone(1.0))  # seen at the first look, ready at the next
    _sleeps(monkeypatch, lambda: inbox.rename(tmp_path / "unmounted"))
    args = ["watch", str(inbox), "--once", "--settle", "0", "--poll", "0.01", "--model",
            str(tiny_model_dir), "--no-punctuation", "--device", "cpu"]  # fmt: skip
    assert cli(args) == 1
    assert f"error: {inbox}: folder is gone (renamed or unmounted)" in capsys.readouterr().err


@pytest.mark.parametrize(("once", "status"), [(True, 130), (False, 0)])
def test_the_cli_watch_stopped_with_ctrl_c_says_whether_it_finished(
    tiny_model_dir, tmp_path, monkeypatch, capsys, once, status
):
    """`watch --once` stopped by Ctrl+C before its files were done exited 0, so that
    `watch --once && archive` went on: 130, as `transcribe` and the other commands. A watch
    without --once has no other end: stopped, it ends as --once does when done."""
    write_wav(tmp_path / "memo.wav", tone(1.0))  # seen at the first look, ready at the next
    _sleeps(monkeypatch)  # Ctrl+C at the first pause
    args = ["watch", str(tmp_path), "--settle", "0", "--poll", "0.01", "--model",
            str(tiny_model_dir), "--no-punctuation", "--device", "cpu"]  # fmt: skip
    assert cli([*args, "--once"] if once else args) == status
    err = capsys.readouterr().err
    assert "finished files are remembered" in err
    assert ("interrupted" in err) == once
    assert not (tmp_path / "memo.txt").exists()


def test_the_dialog_says_a_new_output_folder_transcribes_the_finished_files_again(
    qtbot, tmp_path, english
):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    prefs = settings.Settings()
    prefs.set(watch_folders=(WatchSpec(str(inbox), ("txt",), str(tmp_path / "T1")),))
    dialog = WatchFoldersDialog(prefs)
    qtbot.addWidget(dialog)
    assert dialog.note.text() == ""
    dialog.out.setText(str(tmp_path / "T2"))
    dialog.out.textEdited.emit(dialog.out.text())
    assert "will all be transcribed again" in dialog.note.text()
    assert str(inbox) in dialog.note.text()
    dialog.out.setText(str(tmp_path / "T1"))
    dialog.out.textEdited.emit(dialog.out.text())
    assert dialog.note.text() == ""


def test_an_app_watch_folder_passes_by_a_name_taken_while_it_wrote(qapp, tmp_path, monkeypatch):
    """Another program (`tingxie-cli transcribe`, the user) made meeting.txt after the watch
    chose that name: the watch's transcript replaced it. Now it is published without
    replacing, and the next name taken."""
    import app.folders

    write_wav(tmp_path / "meeting.wav", tone(1.0))
    watcher, queued, _ = _watcher((WatchSpec(str(tmp_path), ("txt",)),))
    _look(watcher)
    write = app.folders.write_all

    def taken_meanwhile(segments, targets, **kw):
        if not (tmp_path / "meeting.txt").exists():
            (tmp_path / "meeting.txt").write_text("made meanwhile\n", encoding="utf-8")
        return write(segments, targets, **kw)

    monkeypatch.setattr(app.folders, "write_all", taken_meanwhile)
    _transcribed(watcher, queued[0])
    assert (tmp_path / "meeting.txt").read_text(encoding="utf-8") == "made meanwhile\n"
    assert "你" in (tmp_path / "meeting-2.txt").read_text(encoding="utf-8")
    state = json.loads((tmp_path / STATE_FILE).read_text(encoding="utf-8"))
    assert [f["names"] for f in state["folders"].values()] == [{"meeting.wav": "meeting-2"}]


def test_the_cli_watch_does_not_write_over_a_name_taken_while_it_transcribed(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    """The CLI chooses the name before the model runs: a file made there meanwhile was
    replaced, then refused (the file given back, told to "add --overwrite", an option watch
    does not have). It is kept, and the transcript published under the next name, as the
    app's watch does (FolderWatch.publish)."""
    import engine.cli.watch

    write_wav(tmp_path / "meeting.wav", tone(1.0))
    one = engine.cli.watch._transcribe_one

    def taken_meanwhile(*args, **kw):  # the name is chosen, the transcript not yet written
        (tmp_path / "meeting.txt").write_text("made meanwhile\n", encoding="utf-8")
        return one(*args, **kw)

    monkeypatch.setattr(engine.cli.watch, "_transcribe_one", taken_meanwhile)
    assert _cli_watch(tmp_path, tiny_model_dir) == 0
    assert (tmp_path / "meeting.txt").read_text(encoding="utf-8") == "made meanwhile\n"
    assert (tmp_path / "meeting-2.txt").read_text(encoding="utf-8").strip()
    assert "--overwrite" not in capsys.readouterr().err
    state = json.loads((tmp_path / STATE_FILE).read_text(encoding="utf-8"))
    assert [f["names"] for f in state["folders"].values()] == [{"meeting.wav": "meeting-2"}]
