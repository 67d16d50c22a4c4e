"""Folders and watch folders in the app: a folder's media files queued after a count, and the
watch folders of the preferences polled while the app runs, each new file queued once it has
stopped growing and its transcripts written by the folder's auto-export template.

The engine does the work (`engine.watch`: which files, when a file is complete, what was
finished; `engine.writers`: the transcripts); this module only times the looks, queues through
the window's file queue and answers the queue's outcome.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.errors import TingxieError
from engine.watch import FolderWatch, WatchOptions, WatchSpec, media_files, overlaps
from engine.writers import FORMATS, write_all

from .i18n import tr
from .plain import literal, plain
from .settings import Settings, unreadable_watch_folders

__all__ = ["FolderWatcher", "WatchFoldersDialog", "ask_folder_files"]

log = logging.getLogger("tingxie.app.folders")


def ask_folder_files(parent: QWidget, folder: str = "") -> list[str]:
    """The audio and video files of a folder (subfolders too) the user chose and agreed to
    transcribe once told how many; empty when they declined or there are none."""
    folder = folder or QFileDialog.getExistingDirectory(parent, tr("dialog.add_folder"))
    if not folder:
        return []
    files = media_files(folder, recursive=True)
    if not files:
        text = literal(tr("dialog.empty_folder", folder=folder))
        QMessageBox.information(parent, tr("app.title"), text)
        return []
    question = literal(tr("dialog.confirm_folder", count=len(files), folder=folder))
    if QMessageBox.question(parent, tr("app.title"), question) != QMessageBox.StandardButton.Yes:
        return []
    return [str(f) for f in files]


@dataclass(frozen=True, slots=True)
class _Job:
    spec: WatchSpec
    watch: FolderWatch
    path: Path


@dataclass(frozen=True, slots=True)
class _Look:
    """What a look found in a watch folder: its ready files; no watch while it is missing."""

    spec: WatchSpec
    watch: FolderWatch | None
    paths: list[Path]


class FolderWatcher(QObject):
    """Looks at the watch folders of the preferences every `options.poll_seconds` once a model
    is loaded (`follow` starts it; queued files would only wait before), queues the files that
    are ready through `queue_files`, and when one's transcript is ready (`transcribed`: the
    window's transcript_ready, after its speakers are told apart when the setting asks for
    them) writes its transcripts and marks it done. A failed file is marked done too, as the
    CLI does: it waits for a new version instead of coming back at the next look (not one
    moved or renamed while it waited: it is done once it is back). A file the user queued too
    is queued once, by the user. A cancelled
    file (by the user, or by quitting while it waited) and one whose transcripts could not be
    written (its formats are written together, all new or none: a full disk, the output folder
    cannot be made, a read-only drive, a name too long or a folder where a resumed recording's
    own transcript was: those two are told before it is queued) are not marked done: the next
    start does them, and until then only a new version of them is queued (not the same file
    again at every look). A transcript never replaces a folder, nor a file that is there but
    the watch's own of the same recording.

    A look is a stat per file of the watched folders, made in a background thread: thousands of
    files, or a network share, would stall the window at every look. A folder that is missing
    (an unplugged drive) is said (`reachable`) and skipped until it is back, said again, and a
    subfolder that cannot be read (a dropped network mount) until it can be. A file
    in two watch folders (one inside the other, or one listed twice by hand) is queued by the
    first listed only, never twice, and left to it by the other.

    A watch folder that starts (with the app, or added) holding files that failed before says
    so once (`held_back`): they wait for a new version, or `retry_failed`. Which files failed
    is read in the background for a dialog (`read_failed`): a damaged state is rebuilt by
    scanning the whole folder, minutes on a network drive."""

    queued = Signal(str, int)  # watched folder, files queued from it
    held_back = Signal(str, list)  # watched folder, its files that failed before (Paths)
    exported = Signal(str, list)  # recording, transcript paths written
    export_failed = Signal(str, object)  # transcript path, the OSError, ValueError or TingxieError
    failed_read = Signal(int, list)  # ticket of `read_failed`, the folder's failed files (Paths)
    reachable = Signal(str, bool)  # watched folder, there again (True) or missing (False)
    looked = Signal()  # a look's files are queued
    _found = Signal(object)  # a look's `_Look`s, from its thread

    def __init__(
        self,
        settings: Settings,
        queue_files: Callable[[list[str]], list[int | None]],
        parent: QObject | None = None,
        options: WatchOptions | None = None,
    ) -> None:
        """`queue_files` queues paths and returns the job id of each, None for one not queued
        (waiting or running already: the window's `add_watched`)."""
        super().__init__(parent)
        self.settings = settings
        self.options = options or WatchOptions()
        self.clock: Callable[[], float] = time.monotonic  # the watches' clock (tests step it)
        self._queue_files = queue_files
        # One watch per folder and state file: editing a template keeps what it has seen.
        self._watches: dict[tuple[str, Path], FolderWatch] = {}
        self._jobs: dict[int, _Job] = {}
        self._told: set[tuple[str, Path]] = set()  # watches whose held-back files were said
        self._gone: set[str] = set()  # watch folders said to be missing
        self._failing: set[str] = set()  # watch folders whose last look failed (its thread's)
        # The watches are used by the look's thread and this one, one at a time: this one
        # waits at most for one folder's look (a file finished meanwhile).
        self._lock = threading.Lock()
        self._looking = False  # a look runs, or its files wait to be queued
        self._found.connect(self._queue)
        self._tickets = itertools.count(1)  # `read_failed`'s: 0 is never one
        self.timer = QTimer(self)
        self.timer.setInterval(round(1000 * self.options.poll_seconds))
        self.timer.timeout.connect(self.poll)

    def follow(self, worker: QObject) -> None:
        """Start with the first loaded model and answer the files queued that fail."""
        worker.model_loaded.connect(self.start)
        worker.file_failed.connect(self._failed)
        worker.file_cancelled.connect(self._cancelled)

    def start(self, _model: object = None) -> None:
        if not self.timer.isActive():
            self.timer.start()
            self.poll()

    def poll(self) -> None:
        """Look at every watch folder in a background thread (a walk of its files, thousands
        of them each second, seconds on a network share, froze the window); the files found
        ready are queued on this thread (`_queue`). A look still running is not doubled."""
        if self._looking:
            return
        self._looking = True
        specs = self.settings.prefs.watch_folders

        def look() -> None:
            looks: list[_Look] = []
            try:
                looks = self._look(specs)
            finally:
                with contextlib.suppress(RuntimeError):  # the watcher is gone: the app quit
                    self._found.emit(looks)

        threading.Thread(target=look, daemon=True, name="watch-look").start()

    def _look(self, specs: tuple[WatchSpec, ...]) -> list[_Look]:
        """The files of `specs`' folders that are ready (a background thread's: no Qt here but
        signals). A file in a folder listed before (one inside another) is given back, not
        left claimed: that folder's watch does it. A folder whose look fails unexpectedly (a
        state it cannot read) is logged and left out of this look, not the others: raised
        here, the files handed out for the folders before it were neither queued nor given
        back. What it handed out stays its own: its next look hands it out again."""
        looks = []
        keys = {_key(s) for s in specs}
        with self._lock:
            self._watches = {k: w for k, w in self._watches.items() if k in keys}
        for i, spec in enumerate(specs):
            try:
                looks.append(self._look_at(spec, [s.folder for s in specs[:i]]))
            except Exception:  # its traceback once, not at every look (each second)
                again = spec.folder in self._failing
                (log.debug if again else log.exception)(
                    "watch folder %s: look failed; its files wait", spec.folder, exc_info=True
                )
                self._failing.add(spec.folder)
            else:
                self._failing.discard(spec.folder)
        return looks

    def _look_at(self, spec: WatchSpec, before: list[str]) -> _Look:
        """One folder's part of `_look`; `before`: the folders listed before it."""
        earlier = [folder for folder in before if overlaps(folder, spec.folder)]
        with self._lock:
            watch = self._watch(spec)
            if watch is None:
                return _Look(spec, None, [])
            try:
                ready = watch.ready()
            except OSError as e:  # the folder went away between two looks
                log.warning("%s: %s", spec.folder, e)
                self._watches.pop(_key(spec), None)
                return _Look(spec, None, [])
            for path in ready:
                if any(overlaps(path, e) for e in earlier):
                    watch.release(path)
        return _Look(spec, watch, [p for p in ready if not any(overlaps(p, e) for e in earlier)])

    def _queue(self, looks: list[_Look]) -> None:
        """Queue what a look found that is still handed out and not queued yet, each folder's
        files together (one by one, each was checked against the whole queue: n² on this
        thread): one the user queued already is not queued again but given back (that job
        transcribes it, and the watch does at its next start). A folder gone, or back, is
        said once (`reachable`). A folder removed or edited in the preferences while the
        look ran is not queued with its old template (`_stale`)."""
        self._looking = False
        queued = {job.path for job in self._jobs.values()}
        specs = self.settings.prefs.watch_folders
        for look in looks:
            if look.spec not in specs:
                self._stale(look, {_key(s) for s in specs}, queued)
                continue
            self._tell_reachable(look)
            fresh = [p for p in look.paths if p not in queued and self._handed(look.watch, p)]
            fresh = [p for p in fresh if self._nameable(look.spec, look.watch, p)]
            if not fresh:
                continue
            ids = self._queue_files([str(p) for p in fresh])
            for path, job_id in zip(fresh, ids, strict=True):
                if job_id is None:
                    with self._lock:
                        look.watch.release(path)
                else:
                    self._jobs[job_id] = _Job(look.spec, look.watch, path)
            count = sum(job_id is not None for job_id in ids)
            if count:
                self.queued.emit(look.spec.folder, count)
        self._gone &= {s.folder for s in specs}
        self.looked.emit()

    def _stale(self, look: _Look, keys: set[tuple[str, Path]], queued: set[Path]) -> None:
        """A look of a folder no longer watched as it was: its files are given back when its
        watch goes (the folder removed, or its state file moved with the output folder), else
        left handed out: the next look hands them out again, with the template now set
        (given back, they would wait for the next start)."""
        if look.watch is None or _key(look.spec) in keys:
            return
        with self._lock:
            for path in look.paths:
                if path not in queued:
                    look.watch.release(path)

    def _tell_reachable(self, look: _Look) -> None:
        """Say a watch folder found missing, and found again, once each (not at every look)."""
        folder, gone = look.spec.folder, look.watch is None
        if gone != (folder in self._gone):
            (self._gone.add if gone else self._gone.discard)(folder)
            self.reachable.emit(folder, not gone)

    def _handed(self, watch: FolderWatch | None, path: Path) -> bool:
        """Whether `path` is still `watch`'s to queue: not finished, failed nor cancelled
        since the look found it."""
        with self._lock:
            return watch is not None and watch.handed(path)

    def _nameable(self, spec: WatchSpec, watch: FolderWatch, path: Path) -> bool:
        """Whether `path`'s transcripts can be named, checked before the model runs on it: one
        whose name would be too long, or a resumed recording whose own transcript's name a
        folder has taken, is told and given back (its next start, or a new version, tries
        again)."""
        try:
            with self._lock:
                own = watch.own(path)
            spec.check_name(path, own=own)
        except TingxieError as e:
            self.export_failed.emit(str(path), e)
            with self._lock:
                watch.release(path)
            return False
        return True

    def _watch(self, spec: WatchSpec) -> FolderWatch | None:
        """`spec`'s watch, made at its first look (the caller holds `_lock`); None while its
        folder is missing."""
        key = _key(spec)
        if key not in self._watches:
            try:
                self._watches[key] = FolderWatch(*key, self.options, self.clock, spec=spec)
            except FileNotFoundError:
                return None
            if key not in self._told:
                self._told.add(key)
                self._tell_held_back(spec, self._watches[key])
        return self._watches[key]

    def _tell_held_back(self, spec: WatchSpec, watch: FolderWatch) -> None:
        """A watch starting with files that failed before: say so, not pass them by."""
        failed = self._held(watch)
        if failed:
            self.held_back.emit(spec.folder, failed)

    def failed(self, spec: WatchSpec) -> list[Path]:
        """The files of `spec`'s watch folder that failed and wait for a new version, read by a
        watch of its own, so any thread may ask: the watches of one state file share it only
        through the file, under its lock. A damaged state is rebuilt (the folder scanned)."""
        try:
            watch = FolderWatch(*_key(spec), self.options, spec=spec)
        except FileNotFoundError:  # the folder is gone (an unplugged drive)
            return []
        return self._held(watch)

    def read_failed(self, spec: WatchSpec) -> int:
        """Read `failed(spec)` in a background thread, not to freeze the window; the answer
        comes on `failed_read` with the ticket returned here (a later question's answer may
        come first)."""
        ticket = next(self._tickets)

        def read() -> None:
            failed = self.failed(spec)
            with contextlib.suppress(RuntimeError):  # the watcher is gone: the app quit
                self.failed_read.emit(ticket, failed)

        threading.Thread(target=read, daemon=True, name="watch-failed").start()
        return ticket

    @staticmethod
    def _held(watch: FolderWatch) -> list[Path]:
        try:
            return watch.failed()
        except OSError as e:  # a state locked or read on a dropped mount: not known now
            log.warning("%s: %s", watch.state_file, e)
            return []

    def retry_failed(self, spec: WatchSpec) -> list[Path]:
        """Give back the files of `spec`'s watch folder that failed before
        (`FolderWatch.retry_failed`): the next looks queue them; those given back. A state
        that cannot be written is told (`export_failed`) and nothing given back."""
        try:
            with self._lock:
                watch = self._watch(spec)
                return [] if watch is None else watch.retry_failed()
        except OSError as e:
            self.export_failed.emit(str(spec.state_file), e)
            return []

    def transcribed(self, job_id: object, segments: list, info: Any) -> None:
        """A transcript is ready (of job `job_id`: the window's transcript_ready): when it is
        of a watched file's job, write its exports. By job, not path: the user may have queued
        the watched file as well, and that job's transcript is no watch's."""
        job = self._jobs.pop(job_id, None)
        if job is None:
            return
        with self._lock:
            self._write(job, segments, info)

    def _write(self, job: _Job, segments: list, info: Any) -> None:
        """Write `job`'s transcripts and mark it done (the caller holds `_lock`)."""
        targets: list[Path] = []  # the last tried: a failure to write them names them

        def write(paths: list[Path], replace: bool) -> None:
            targets[:] = paths
            write_all(segments, paths, info=info, replace=replace)

        try:  # a name another program took meanwhile is passed by, not written over
            base = job.watch.publish(job.spec, job.path, write)
        except (OSError, TingxieError) as e:
            self._unwritten(job, targets, e)
            return
        except ValueError as e:  # text UTF-8 cannot encode: the same at every try, so done
            self.export_failed.emit(str(targets[0]), e)
            self._finish(job)
            return
        self._finish(job, base)
        self.exported.emit(str(job.path), [str(p) for p in targets])

    def _unwritten(self, job: _Job, targets: list[Path], error: Exception) -> None:
        """Say why `job`'s transcripts were not written and give it back: the next start does
        it again. No `targets`: no name was chosen (a file or folder in the way, no drive, a
        name too long); else none of them was written (a full disk)."""
        if not targets:
            self.export_failed.emit(str(job.spec.out_folder(job.path)), error)
        else:
            paths = ", ".join(map(str, targets))
            detail = getattr(error, "strerror", None) or error
            told = TingxieError(
                "transcribe.watch_write_failed", paths=paths, audio=str(job.path), detail=detail
            )
            self.export_failed.emit(paths, told)
        job.watch.release(job.path)

    def _failed(self, job_id: int, _error: object = None) -> None:
        """A file that cannot be transcribed is marked failed: it waits for a new version. One
        moved, renamed or rewritten while it waited is given back (`FolderWatch.fail`)."""
        job = self._jobs.pop(job_id, None)
        if job is not None:
            with self._lock:
                self._finish(job)

    def _cancelled(self, job_id: int) -> None:
        """A cancelled file (quitting cancels the queued ones) is not marked done."""
        job = self._jobs.pop(job_id, None)
        if job is not None:
            with self._lock:
                job.watch.release(job.path)

    def _finish(self, job: _Job, base: Path | None = None) -> None:
        """Mark the file done (no `base`: failed, `FolderWatch.fail`; the caller holds
        `_lock`); when its watch state cannot be written, say so: the file is not
        marked. After a full disk (an OSError) it is queued again once it has settled again;
        after any other failure (a name the state cannot encode) only at the next start, as
        the same failure would come back at every look. What was written stays."""
        state = str(job.watch.state_file)
        try:
            if base is None:
                job.watch.fail(job.path)
            else:
                job.watch.done(job.path, base)
        except OSError as e:
            self.export_failed.emit(state, e)
        except ValueError as e:  # UnicodeEncodeError too: the window would show no file name
            error = TingxieError(
                "transcribe.watch_state_failed", path=state, audio=str(job.path), detail=e
            )
            self.export_failed.emit(state, error)
            job.watch.release(job.path)


def _key(spec: WatchSpec) -> tuple[str, Path]:
    return spec.folder, spec.state_file


class WatchFoldersDialog(QDialog):
    """Add and remove watch folders and edit the selected one's export template; OK saves them
    in the preferences (the watcher follows from its next look). With the `watcher`, the
    selected folder's files that failed before can be tried again now."""

    def __init__(
        self,
        settings: Settings,
        parent: QWidget | None = None,
        watcher: FolderWatcher | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(tr("watch.title"))
        self.settings = settings
        self.watcher = watcher
        self._showing = False  # the form is being filled from a spec, not edited
        self._asked = 0  # the ticket of the selected folder's failed files (0: none asked)
        self.specs: list[WatchSpec] = list(settings.prefs.watch_folders)
        self.list = QListWidget()
        self.list.addItems([s.folder for s in self.specs])
        self.list.currentRowChanged.connect(self._show)
        add, self.remove = QPushButton(tr("watch.add")), QPushButton(tr("watch.remove"))
        add.clicked.connect(lambda: self.add_folder())
        self.remove.clicked.connect(self.remove_selected)
        self.retry = QPushButton(tr("watch.retry_failed"))
        self.retry.setToolTip(tr("watch.retry_failed_help"))
        self.retry.clicked.connect(self.retry_failed)
        self.retry.setVisible(watcher is not None)
        if watcher is not None:
            watcher.failed_read.connect(self._failed_read)
        self.formats = {fmt: QCheckBox(fmt.upper()) for fmt in FORMATS}
        self.out = QLineEdit(placeholderText=tr("watch.out_beside"))
        self.browse = QPushButton(tr("dialog.browse"))
        self.browse.clicked.connect(self._browse)
        self.name = QLineEdit()
        self.problem = plain(QLabel(wordWrap=True))  # quotes the name typed
        self.problem.setStyleSheet("color: #b00020")
        self.note = plain(QLabel(wordWrap=True))  # what the edit means, when it is allowed
        # Entries of the settings file this version cannot read: not watched, kept in the file.
        skipped = [
            tr("watch.unreadable", folder=folder, reason=reason)
            for folder, reason in unreadable_watch_folders(settings.prefs)
        ]
        self.skipped = plain(QLabel("\n".join(skipped), wordWrap=True))
        self.forget = QPushButton(tr("watch.forget_unreadable"))
        self.forget.clicked.connect(self._forget_unreadable)
        self._unreadable = settings.prefs.watch_unreadable  # what OK keeps of them
        for widget in (self.skipped, self.forget):
            widget.setVisible(bool(skipped))
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._layout(add)
        for box in self.formats.values():
            box.toggled.connect(self._edited)
        self.out.textEdited.connect(self._edited)
        self.name.textEdited.connect(self._edited)
        self.list.setCurrentRow(0 if self.specs else -1)
        self._show(self.list.currentRow())

    def _layout(self, add: QPushButton) -> None:
        side = QVBoxLayout()
        for button in (add, self.remove, self.retry):
            side.addWidget(button)
        side.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.list, 1)
        top.addLayout(side)
        formats, out = QHBoxLayout(), QHBoxLayout()
        for box in self.formats.values():
            formats.addWidget(box)
        formats.addStretch(1)
        out.addWidget(self.out, 1)
        out.addWidget(self.browse)
        self.form = QFormLayout()
        self.form.addRow(tr("watch.formats"), formats)
        out_label = QLabel(tr("watch.out"))
        out_label.setBuddy(self.out)  # a row of a layout has no buddy: the field is named so
        self.form.addRow(out_label, out)
        self.form.addRow(tr("watch.name"), self.name)
        self.form.addRow("", QLabel(tr("watch.name_help")))
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(tr("watch.explain"), wordWrap=True))
        layout.addLayout(top)
        skipped = QHBoxLayout()
        skipped.addWidget(self.skipped, 1)
        skipped.addWidget(self.forget)
        layout.addLayout(skipped)
        layout.addLayout(self.form)
        layout.addWidget(self.problem)
        layout.addWidget(self.note)
        layout.addWidget(self.buttons)
        self.resize(640, 420)

    def add_folder(self, folder: str = "") -> None:
        """Add a folder, unless it is one listed, inside one or holds one: the files of both
        would be transcribed twice (said in a message naming both)."""
        folder = folder or QFileDialog.getExistingDirectory(self, tr("watch.title"))
        if not folder:
            return
        other = next((s.folder for s in self.specs if overlaps(s.folder, folder)), None)
        if other is not None:
            text = literal(tr("watch.overlap", folder=folder, other=other))
            QMessageBox.warning(self, tr("watch.title"), text)
            return
        self.specs.append(WatchSpec(folder))
        self.list.addItem(folder)
        self.list.setCurrentRow(len(self.specs) - 1)

    def remove_selected(self) -> None:
        row = self.list.currentRow()
        if row >= 0:
            del self.specs[row]
            self.list.takeItem(row)

    def retry_failed(self) -> None:
        """Give back the selected folder's files that failed (the watcher queues them)."""
        row = self.list.currentRow()
        if self.watcher is not None and 0 <= row < len(self.specs):
            self.watcher.retry_failed(self.specs[row])
        self._show_failed(row)

    def _show_failed(self, row: int) -> None:
        """The retry button, disabled until the selected folder's failed files are read (in
        the background: `FolderWatcher.read_failed`)."""
        spec = self.specs[row] if 0 <= row < len(self.specs) else None
        self.retry.setEnabled(False)
        self._asked = self.watcher.read_failed(spec) if self.watcher and spec else 0

    def _failed_read(self, ticket: int, failed: list[Path]) -> None:
        """Enable the retry button when the selected folder has failed files; an answer for
        a folder selected before (or before a retry) is dropped."""
        if ticket == self._asked:
            self.retry.setEnabled(bool(failed))

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, tr("watch.out"), self.out.text())
        if folder:
            self.out.setText(folder)
            self._edited()

    def _show(self, row: int) -> None:
        """The selected folder's template in the form (nothing to edit when none is, and
        each greyed-out control says why in its tooltip)."""
        spec = self.specs[row] if 0 <= row < len(self.specs) else WatchSpec("")
        self._showing = True
        for fmt, box in self.formats.items():
            box.setChecked(fmt in spec.formats)
        self.out.setText(spec.out)
        self.name.setText(spec.name)
        self._showing = False
        why = "" if row >= 0 else tr("watch.select_first", add=tr("watch.add"))
        for widget in (*self.formats.values(), self.out, self.browse, self.name, self.remove):
            widget.setEnabled(row >= 0)
            widget.setToolTip(why)
        self.name.setToolTip(why or tr("watch.name_help"))
        self._show_failed(row)
        self._check(_out_problem(spec.out) if row >= 0 else None)

    def _edited(self) -> None:
        row = self.list.currentRow()
        if self._showing or row < 0:
            return
        formats = tuple(fmt for fmt, box in self.formats.items() if box.isChecked())
        if not formats:
            self._check(tr("watch.no_format"))
            return
        out = self.out.text().strip()
        problem = _out_problem(out)
        if problem is not None:
            self._check(problem)
            return
        name = self.name.text()
        try:
            self.specs[row] = WatchSpec(self.specs[row].folder, formats, out, name)
        except ValueError:
            hidden = name.startswith(".")
            self._check(tr("watch.hidden_name" if hidden else "watch.bad_name", name=name))
            return
        self._check(None)

    def _check(self, problem: str | None) -> None:
        """Say what is wrong with the form (OK waits until it is right), or what it means."""
        self.problem.setText(problem or "")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(problem is None)
        row = self.list.currentRow()
        spec = self.specs[row] if problem is None and 0 <= row < len(self.specs) else None
        self.note.setText(self._out_note(spec) if spec is not None else "")

    def _out_note(self, spec: WatchSpec) -> str:
        """A saved watch folder given another output folder: the files it finished are
        remembered in the old one, so all are transcribed again (say so before OK)."""
        saved = next(
            (s for s in self.settings.prefs.watch_folders if s.folder == spec.folder), None
        )
        if saved is None or saved.state_file == spec.state_file:
            return ""
        return tr("watch.out_changed", folder=spec.folder)

    def _forget_unreadable(self) -> None:
        """Let OK drop the entries this version cannot read (kept until the user says so:
        a newer version may read them)."""
        self._unreadable = ()
        for widget in (self.skipped, self.forget):
            widget.setVisible(False)

    def accept(self) -> None:
        self.settings.set(watch_folders=tuple(self.specs), watch_unreadable=self._unreadable)
        super().accept()


def _out_problem(out: str) -> str | None:
    """What is wrong with an output folder as typed (empty: beside each file): a relative path
    would be read from wherever the app was started, and a file cannot hold transcripts."""
    if not out:
        return None
    path = Path(out)
    if not path.is_absolute():
        return tr("watch.out_relative", out=out)
    if path.exists() and not path.is_dir():
        return tr("watch.out_not_folder", out=out)
    return None
