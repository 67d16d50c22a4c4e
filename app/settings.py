"""What the app remembers between runs, kept apart from session state.

`Preferences` is a plain dataclass; `load` / `save` are the only code that touches QSettings,
so tests can point them at a temporary INI file.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from PySide6.QtCore import QSettings

from .confidence import DEFAULT_THRESHOLD
from .i18n import LANGUAGES

__all__ = ["Preferences", "default_recordings_dir", "load", "open_settings", "save"]

ORGANIZATION = "Tingxie"
APPLICATION = "Tingxie"


def default_recordings_dir() -> Path:
    """Recordings live in the user's data folder beside the transcript store (the same folder,
    $TINGXIE_DATA_DIR honoured), never in a temp folder that may be wiped."""
    from engine.library.store import default_path

    return default_path().parent / "recordings"


@dataclass(slots=True)
class Preferences:
    # A Hub id or a local folder; empty means the engine's default checkpoint.
    model: str = ""
    # True once the user picked a model themselves (a failure then is reported, not replaced).
    model_chosen: bool = False
    language: str = "zh"
    # Doubt threshold of the transcript coloring (see app.confidence.Bands).
    threshold: float = DEFAULT_THRESHOLD
    # Input device name as sounddevice reports it; empty means the system default.
    input_device: str = ""
    recordings_dir: str = ""

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            self.language = "zh"
        self.threshold = min(1.0, max(0.0, float(self.threshold)))
        if not self.recordings_dir:
            self.recordings_dir = str(default_recordings_dir())


def open_settings(path: Path | None = None) -> QSettings:
    """The user's settings store, or an INI file at `path` (tests, portable installs)."""
    if path is not None:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)


def load(store: QSettings) -> Preferences:
    """Read preferences, falling back to the default for any missing or malformed value."""
    defaults = Preferences()
    values = {}
    for f in fields(Preferences):
        default = getattr(defaults, f.name)
        raw = store.value(f.name, default)
        try:
            if isinstance(default, bool):
                values[f.name] = raw if isinstance(raw, bool) else str(raw).lower() == "true"
            else:
                values[f.name] = type(default)(raw)
        except (TypeError, ValueError):
            values[f.name] = default
    return Preferences(**values)


def save(store: QSettings, prefs: Preferences) -> None:
    for f in fields(Preferences):
        store.setValue(f.name, getattr(prefs, f.name))
    store.sync()
