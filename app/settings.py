"""What the app remembers between runs, kept apart from session state, and its one owner.

`Preferences` is a frozen dataclass: a value, never changed in place. `Settings` is the only
object that changes it while the app runs: every change goes through `Settings.set`, is saved at
once and announced by `Settings.changed`, which every view listens to (so two pages can never
show two thresholds). `load` / `save` are the only code that touches QSettings, so tests can
point them at a temporary INI file.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QObject, QSettings, Signal

from .confidence import DEFAULT_THRESHOLD
from .i18n import LANGUAGES, tr

if TYPE_CHECKING:
    from engine.watch import WatchSpec

__all__ = [
    "BACKENDS",
    "DECODER_CHOICES",
    "SPEAKER_CHOICES",
    "DamagedFile",
    "Preferences",
    "Settings",
    "default_recordings_dir",
    "load",
    "open_settings",
    "save",
    "unreadable_watch_folders",
]

ORGANIZATION = "Tingxie"
BACKENDS = ("auto", "torch", "onnx")  # engine.model.Backend, without importing torch
APPLICATION = "Tingxie"
# Telling speakers apart in transcribed files and finished recordings (engine.speakers): off,
# auto (the number found), or exactly that many speakers.
SPEAKER_CHOICES = ("off", "auto", "2", "3", "4", "5", "6")
# How CTC models decode (engine.transcribe.TranscribeOptions.decoder): "auto" is beam search
# with the language model when the model has one or a domain text or hotwords are set, else
# greedy; "greedy" never searches (faster, and ignores the domain text and hotwords).
DECODER_CHOICES = ("auto", "greedy")

log = logging.getLogger("tingxie.app.settings")


def default_recordings_dir() -> Path:
    """Recordings live in the user's data folder beside the transcript store (the same folder,
    $TINGXIE_DATA_DIR honoured), never in a temp folder that may be wiped."""
    from engine.library.store import default_path

    return default_path().parent / "recordings"


@dataclass(frozen=True, slots=True)
class Preferences:
    # A Hub id or a local folder; empty means the engine's default checkpoint.
    model: str = ""
    # True once the user picked a model themselves (a failure then is reported, not replaced).
    model_chosen: bool = False
    language: str = "zh"
    # Doubt threshold of the transcript coloring and of the review (see app.confidence.Bands).
    threshold: float = DEFAULT_THRESHOLD
    # Input device name as sounddevice reports it; empty means the system default.
    input_device: str = ""
    recordings_dir: str = ""
    # The runtime models load on (engine.model.LoadOptions.backend): auto, torch or onnx.
    backend: str = "auto"
    # Watch folders with their auto-export templates (stored as a JSON list).
    watch_folders: tuple[WatchSpec, ...] = ()
    # Entries of that list this version cannot read (a hand edit, a newer version's format),
    # as JSON text: not watched, and written back unchanged after the others. A text that is
    # not JSON is the whole value, which did not read as JSON (a quote or bracket short).
    watch_unreadable: tuple[str, ...] = ()
    # Restore punctuation (，。？！、) in file transcripts and live segments (engine.punctuation).
    punctuation: bool = True
    # Speakers in file transcripts and finished recordings: one of SPEAKER_CHOICES.
    speakers: str = "off"
    # Decoding of CTC models (Whisper ignores all three): one of DECODER_CHOICES, and the
    # paths of a domain text and a hotword list (engine.lm; empty: none). Only the paths are
    # kept: the worker reads the files, so a big one never blocks the window.
    decoder: str = "auto"
    domain_text: str = ""
    hotwords: str = ""

    def __post_init__(self) -> None:
        # Frozen: the normalized values are set once, here.
        if self.language not in LANGUAGES:
            object.__setattr__(self, "language", "zh")
        object.__setattr__(self, "threshold", min(1.0, max(0.0, float(self.threshold))))
        if self.backend not in BACKENDS:
            object.__setattr__(self, "backend", "auto")
        if self.speakers not in SPEAKER_CHOICES:
            object.__setattr__(self, "speakers", "off")
        if self.decoder not in DECODER_CHOICES:
            object.__setattr__(self, "decoder", "auto")
        if not self.recordings_dir:
            object.__setattr__(self, "recordings_dir", str(default_recordings_dir()))


@dataclass(frozen=True, slots=True)
class DamagedFile:
    """A settings file that did not parse (NUL bytes after a power cut, a line cut off): what
    did read is used, the rest is at its default, and the next change rewrites the file."""

    path: str
    copy: str  # the file as it was found, kept for a hand repair; "" when it could not be

    def message(self) -> str:
        if self.copy:
            return tr("settings.damaged", path=self.path, copy=self.copy)
        return tr("settings.damaged_uncopied", path=self.path)


class Settings(QObject):
    """The one owner of the preferences while the app runs.

    Views read `prefs`, change values only through `set`, and follow `changed` (the window, the
    review page, …): a value changed on one page is the value every page shows.
    """

    changed = Signal(str, object)  # field name of Preferences, its new value
    save_failed = Signal(str)  # the settings file that could not be written

    def __init__(self, store: QSettings | None = None, parent: QObject | None = None) -> None:
        """Preferences read from `store` and saved back to it; None keeps them in memory
        (tests, screenshots)."""
        super().__init__(parent)
        self._store = store
        self._prefs = load(store) if store is not None else Preferences()
        # Told once by the app (app.main), and logged here; None for a file that read.
        self.damaged = _keep_damaged(store) if store is not None else None
        # What this window last read from or wrote to the file: only the differences from it
        # are written, so another window's changes to other settings stay (one shared file).
        self._saved = self._prefs

    @property
    def prefs(self) -> Preferences:
        return self._prefs

    def set(self, **values: Any) -> None:
        """Change some preferences (normalized as `Preferences` does), save them and announce
        each one that differs from before."""
        new = replace(self._prefs, **values)
        changed = [name for name in values if getattr(new, name) != getattr(self._prefs, name)]
        self._prefs = new
        if changed:
            self.save()
        for name in changed:
            self.changed.emit(name, getattr(new, name))

    def save(self) -> None:
        """Write the preferences; `save_failed` says when the file cannot be (a read-only or
        foreign-owned file): they hold until the app closes, and the user should know."""
        if self._store is None:
            return
        names = _changed(self._saved, self._prefs)
        save(self._store, self._prefs, names)
        saved = self._store.status() == QSettings.Status.NoError
        if self._store.status() == QSettings.Status.FormatError:
            # A read error stays the status of the store that met it, written or not: the
            # write took if a new reader finds it in the file, and that reader is used from
            # then on (its status tells later writes' failures).
            fresh = QSettings(self._store.fileName(), self._store.format())
            found = load(fresh)
            saved = fresh.status() == QSettings.Status.NoError and all(
                getattr(found, name) == getattr(self._prefs, name) for name in names
            )
            if saved:
                self._store = fresh
        if saved:
            self._saved = self._prefs
        else:
            self.save_failed.emit(self._store.fileName())  # unsaved: written again next time

    def window_layout(self) -> tuple[bytes, bytes]:
        """The main window's geometry and dock state as last closed (QMainWindow's
        saveGeometry / saveState); empty for none, or for a value that is no such blob."""
        if self._store is None:
            return b"", b""
        geometry, state = (_blob(self._store.value(f"window/{k}")) for k in ("geometry", "state"))
        return geometry, state

    def keep_window_layout(self, geometry: bytes, state: bytes) -> None:
        """Remember the window's geometry and dock state for the next start (at close: a
        failure has no one left to tell, and costs only the layout)."""
        if self._store is None:
            return
        self._store.setValue("window/geometry", QByteArray(geometry))
        self._store.setValue("window/state", QByteArray(state))
        self._store.sync()


def _blob(raw: Any) -> bytes:
    """A stored QByteArray as bytes; anything else (a hand edit's text) as none."""
    return bytes(raw.data()) if isinstance(raw, QByteArray) else b""


def _keep_damaged(store: QSettings) -> DamagedFile | None:
    """The settings file `store` read, when it did not parse: a copy of it is kept beside it
    (the first change rewrites it, and what did not read would be gone) and the damage logged."""
    if store.status() != QSettings.Status.FormatError:
        return None
    path = store.fileName()
    copy = f"{path}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        shutil.copyfile(path, copy)
    except OSError as e:
        log.warning("the settings file %s could not be copied to %s: %s", path, copy, e)
        copy = ""
    damaged = DamagedFile(path, copy)
    log.warning("%s", damaged.message())
    return damaged


def open_settings(path: Path | None = None) -> QSettings:
    """The user's settings store, or an INI file at `path` (tests, portable installs)."""
    if path is not None:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)


def load(store: QSettings) -> Preferences:
    """Read preferences, falling back to the default for any missing or malformed value (a
    malformed one is logged with its setting and file: a hand edit must not vanish unsaid)."""
    defaults = Preferences()
    values = {}
    for f in fields(Preferences):
        if f.name == "watch_unreadable":
            continue  # read with watch_folders
        default = getattr(defaults, f.name)
        raw = store.value(f.name, default)
        try:
            if f.name == "watch_folders":
                values[f.name], values["watch_unreadable"] = _watch_specs(raw)
            elif isinstance(default, bool):
                values[f.name] = raw if isinstance(raw, bool) else str(raw).lower() == "true"
            elif isinstance(default, str):
                values[f.name] = _text(raw)
            else:
                values[f.name] = _number(raw, type(default))
        except (TypeError, ValueError):
            log.warning(
                "%s in the settings file %s is %r, which does not read; the default %r is used "
                "(set it in the app, or correct the file)",
                f.name,
                store.fileName(),
                _text(raw),
                default,
            )
            values[f.name] = default
    return Preferences(**values)


def _number(raw: Any, kind: type[float]) -> float:
    """A number setting as read. A hand edit may write a decimal comma (threshold=0,5, as most
    of Europe types it), which QSettings splits into ["0", "5"]: rejoined, the comma is the
    decimal point. ValueError for anything else, "nan" and "inf" too (no setting's value)."""
    text = ",".join(str(part) for part in raw) if isinstance(raw, list | tuple) else str(raw)
    number = kind(text.strip().replace(",", "."))
    if not math.isfinite(number):
        raise ValueError(f"{text} is not a finite number")
    return number


def _text(raw: Any) -> str:
    """A text setting as read. Without the quotes QSettings writes, it splits a value at its
    commas (a hand-edited path "/models/zh, v2", or JSON, whose quotes it drops too): its
    parts, rejoined, are the nearest text of it there is."""
    return ", ".join(str(part) for part in raw) if isinstance(raw, list | tuple) else str(raw)


def _watch_specs(raw: Any) -> tuple[tuple[WatchSpec, ...], tuple[str, ...]]:
    """Watch folders from their JSON list, and the entries that do not read (logged) as JSON
    text: they are not watched, but kept. A value that is not JSON at all is kept whole, as
    its text: a hand edit a quote short is mended in the file, not replaced by []."""
    text = _text(raw)
    if not text.strip():
        return (), ()
    try:
        entries = json.loads(text)
    except ValueError as e:
        log.warning("watch_folders in the settings file is not a JSON list (%s); no folder is "
                    "watched, and the text is kept as it is: %s", e, text)  # fmt: skip
        return (), (text,)
    specs, unreadable = [], []
    for entry in entries if isinstance(entries, list) else [entries]:
        try:
            specs.append(_watch_spec(entry))
        except ValueError as e:
            log.warning("watch folder %r left out of the preferences: %s", entry, e)
            unreadable.append(json.dumps(entry, ensure_ascii=False))
    return tuple(specs), tuple(unreadable)


def _watch_spec(entry: Any) -> WatchSpec:
    """One watch folder of the settings file; ValueError says why it does not read."""
    from engine.watch import WatchSpec

    if not isinstance(entry, dict):
        raise ValueError("not a watch folder's settings")
    try:
        return WatchSpec(**entry)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as e:
        raise ValueError(str(e)) from e  # a hand edit may hold anything: never fatal


def unreadable_watch_folders(prefs: Preferences) -> list[tuple[str, str]]:
    """The watch folders of the settings file that are not watched, as (folder, why)."""
    found = []
    for text in prefs.watch_unreadable:
        try:
            entry = json.loads(text)
        except ValueError as e:  # the whole value, as it was found
            found.append((text, f"not a JSON list: {e}"))
            continue
        folder = entry.get("folder") if isinstance(entry, dict) else None
        try:
            _watch_spec(entry)
        except ValueError as e:
            found.append((str(folder) if folder is not None else text, str(e)))
    return found


def save(store: QSettings, prefs: Preferences, names: Collection[str] | None = None) -> None:
    """Write the preferences named (all of them by default); the others keep what the file
    holds, which another app window may have written since this one read it."""
    for f in fields(Preferences):
        value = getattr(prefs, f.name)
        if f.name == "watch_unreadable" or (names is not None and f.name not in names):
            continue  # watch_unreadable is written with watch_folders
        if f.name == "watch_folders":
            value = _watch_value(value, prefs.watch_unreadable)
        store.setValue(f.name, value)
    store.sync()


def _changed(old: Preferences, new: Preferences) -> set[str]:
    """The settings that differ from `old`, watch_unreadable counted as watch_folders (the
    setting it is written in)."""
    names = {f.name for f in fields(Preferences) if getattr(old, f.name) != getattr(new, f.name)}
    if "watch_unreadable" in names:
        names.add("watch_folders")
    return names


def _watch_value(specs: tuple[WatchSpec, ...], unreadable: tuple[str, ...]) -> str:
    """The watch folders' JSON list, the unreadable entries after the others. A whole value
    that was not JSON is written back as it was while nothing else is to be kept, and as a
    text entry of the list once folders are added beside it (still kept, and still told)."""
    entries: list[Any] = [asdict(spec) for spec in specs]
    for text in unreadable:
        try:
            entries.append(json.loads(text))
        except ValueError:
            if unreadable == (text,) and not specs:
                return text
            entries.append(text)
    return json.dumps(entries, ensure_ascii=False)
