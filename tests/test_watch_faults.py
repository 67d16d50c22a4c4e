"""Watch folders that go wrong: a file cancelled (quitting cancels the queued ones) is not
remembered as finished, an output folder that cannot be made is told once and the file not
transcribed again and again, file-name patterns that only plain {stem}, {date} and {time} pass,
folders that overlap, relative output folders, and settings entries this version cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from app_fakes import tone
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox

from app import i18n, settings
from app.folders import FolderWatcher, WatchFoldersDialog
from engine.audio import write_wav
from engine.results import Char, Segment, TranscriptionInfo
from engine.watch import STATE_FILE, FolderWatch, WatchOptions, WatchSpec


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
    watcher.poll()  # seen
    watcher.poll()  # settled


def _transcribed(watcher: FolderWatcher, path: str) -> None:
    """The window's transcript_ready for `path`."""
    info = TranscriptionInfo(path, 1.0, 16_000, "fake", "cpu", "fp32", "eager", "mp")
    watcher.transcribed(path, [Segment(0, 0.0, 0.9, (Char("你", 0.0, 0.4, 0.9),))], info)


def _state(folder: Path) -> dict:
    path = folder / STATE_FILE
    return json.loads(path.read_text(encoding="utf-8"))["done"] if path.exists() else {}


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
    assert watch.ready() == [] and not state.exists()
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
    assert [(t, type(e)) for t, e in failed] == [(str(out), NotADirectoryError)]
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
    prefs.set(threshold=0.5)  # any change saves every preference
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
