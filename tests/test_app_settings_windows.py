"""Two app windows on one settings file (a second start while the first does not answer the
single-instance handover): each window's change must leave the other's in place."""

from __future__ import annotations

from app import settings
from engine.watch import WatchSpec


def test_a_change_in_one_window_keeps_the_other_windows_changes(tmp_path):
    """Window B added a watch folder, window A then changed the threshold: A wrote every
    preference it had read at start, and the watch folder was gone (watch_folders=[])."""
    ini = tmp_path / "settings.ini"
    a = settings.Settings(settings.open_settings(ini))
    b = settings.Settings(settings.open_settings(ini))
    b.set(watch_folders=(WatchSpec(str(tmp_path / "in")),))
    a.set(threshold=0.42)
    b.set(language="en")
    again = settings.load(settings.open_settings(ini))
    assert again.watch_folders == (WatchSpec(str(tmp_path / "in")),)
    assert again.threshold == 0.42
    assert again.language == "en"


def test_forgetting_unreadable_watch_entries_is_saved(tmp_path):
    """The unreadable entries are written with watch_folders: removing only them must still
    write that setting."""
    ini = tmp_path / "settings.ini"
    ini.write_text('[General]\nwatch_folders="[5]"\n', encoding="utf-8")
    prefs = settings.Settings(settings.open_settings(ini))
    assert prefs.prefs.watch_unreadable == ("5",)
    prefs.set(watch_unreadable=())
    assert settings.load(settings.open_settings(ini)).watch_unreadable == ()
