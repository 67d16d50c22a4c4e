"""Faults of the settings file, the window's layout, keys and accessible names: a damaged
settings file, fields a screen reader could not name, Qt's own buttons after a language
switch, the Files panel once closed, and Pause's tooltip."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import test_app_window
from PySide6.QtCore import QByteArray
from PySide6.QtGui import QAccessible, QGuiApplication
from PySide6.QtWidgets import QAbstractButton, QLabel, QLineEdit

from app import settings
from app.i18n import tr
from app.main import tell_damaged_settings

# The window tests' own fixtures, shared rather than copied (bound by name, as pytest finds them).
_no_whisper_in_the_model_cache = test_app_window._no_whisper_in_the_model_cache
_chinese_ui_after_each_test = test_app_window._chinese_ui_after_each_test
dialogs = test_app_window.dialogs
library = test_app_window.library
ini = test_app_window.ini
make_window = test_app_window.make_window

DAMAGED = {
    "nuls": b"\x00" * 64,  # what a crash or power cut often leaves
    "cut_off": b"[General]\nthreshold=0.3\nlang",
    "no_equals": b"[General]\nthreshold 0.3\n",
    "bad_section": b"[General\nthreshold=0.3\n",
}


def _name(widget) -> str:
    return QAccessible.queryAccessibleInterface(widget).text(QAccessible.Text.Name)


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_settings_file_is_told_once_and_never_as_unsaved(tmp_path, content):
    path = tmp_path / "settings.ini"
    path.write_bytes(content)
    owner = settings.Settings(settings.open_settings(path))
    failed = []
    owner.save_failed.connect(failed.append)
    owner.set(threshold=0.45)
    owner.set(language="en")
    assert failed == []  # both were written: no "cannot be saved"
    assert owner.damaged is not None and owner.damaged.path == str(path)
    kept = owner.damaged.copy
    assert Path(kept).read_bytes() == content  # the file as found, for a hand repair
    assert str(path) in owner.damaged.message() and kept in owner.damaged.message()
    again = settings.Settings(settings.open_settings(path))
    assert again.damaged is None  # the file reads now
    assert (again.prefs.threshold, again.prefs.language) == (pytest.approx(0.45), "en")


def test_a_damaged_settings_file_that_cannot_be_written_is_said_unsaved(tmp_path):
    folder = tmp_path / "config"
    folder.mkdir()
    path = folder / "settings.ini"
    path.write_bytes(DAMAGED["nuls"])
    owner = settings.Settings(settings.open_settings(path))
    failed = []
    owner.save_failed.connect(failed.append)
    shutil.rmtree(folder)
    folder.write_text("a file where the folder was")  # nothing can be written there now
    owner.set(threshold=0.45)
    assert failed == [str(path)]


def test_the_damage_is_told_once_as_the_app_starts(qtbot, make_window, ini, dialogs):
    ini.write_bytes(DAMAGED["nuls"])
    window = make_window()
    tell_damaged_settings(window)
    assert dialogs == [(tr("dialog.error"), window.settings.damaged.message())]
    window.confidence_bar.spin.setValue(0.35)
    assert len(dialogs) == 1  # the change is saved: no "cannot be saved" after it
    assert tr("settings.not_saved", path=str(ini)) not in window.statusBar().currentMessage()


def test_path_fields_of_the_dialogs_have_names(qtbot, make_window):
    from app.export.embeddings import EmbedDialog
    from app.export.model import ExportDialog
    from app.export.share import ShareDialog
    from app.folders import WatchFoldersDialog
    from app.modeldialog import ModelDialog

    window = make_window()
    model = ModelDialog("x", window)
    assert _name(model.edit) == tr("dialog.model_field")
    export = ExportDialog(window.handle, "x", window, loaded=None)
    share = ShareDialog(window.handle, "x", window)
    embed = EmbedDialog(window.handle, "a.wav", window)
    for dialog, rows in (
        (export, {export.model: "export.model", export.check: "export.check"}),
        (export, {export.out: "export.common.out"}),
        (share, {share.model: "share.model"}),
        (embed, {embed.out: "export.common.out"}),
    ):
        dialog.ensurePolished()
        for row, key in rows.items():
            assert _name(row.edit) == tr(key).replace("&", "")
            assert row.focusProxy() is row.edit  # its label's Alt+key types in the field
    watch = WatchFoldersDialog(window.settings, window, window.folder_watcher)
    assert _name(watch.out) == tr("watch.out")
    label = next(w for w in watch.findChildren(QLabel) if w.text() == tr("watch.out"))
    assert label.buddy() is watch.out
    assert all(_name(edit) for edit in watch.findChildren(QLineEdit) if edit.isVisibleTo(watch))


def test_qt_own_buttons_follow_a_language_switch(qtbot, make_window):
    window = make_window(language="zh")
    close = window.files_dock.findChild(QAbstractButton, "qt_dockwidget_closebutton")
    scroll = window.findChild(QAbstractButton, "ScrollLeftButton")
    assert (close.accessibleName(), scroll.accessibleName()) == ("关闭", "向左滚动")
    window.set_language("en")
    assert (close.accessibleName(), scroll.accessibleName()) == ("Close", "Scroll Left")
    assert close.accessibleDescription() == "Closes the dock widget"
    window.set_language("zh")
    assert (close.accessibleName(), scroll.accessibleName()) == ("关闭", "向左滚动")


def test_a_closed_files_panel_comes_back_from_the_view_menu_and_its_key(qtbot, make_window):
    window = make_window()
    toggle = window.files_dock.toggleViewAction()
    assert toggle in window.view_menu.actions() and window.view_menu.title() == "视图(&V)"
    keys = [a.shortcut() for a in window.actions() if not a.shortcut().isEmpty()]
    assert keys.count(toggle.shortcut()) == 1  # no other window key
    window.files_dock.close()
    assert not window.files_dock.isVisible()
    toggle.trigger()
    assert window.files_dock.isVisible()


def test_window_size_and_panels_are_kept_across_starts(qtbot, make_window):
    window = make_window()
    window.resize(790, 720)  # within the test screen (800 x 800), above the least size
    window.files_dock.close()
    window.close()
    again = make_window()
    assert (again.width(), again.height()) == (790, 720)
    assert not again.files_dock.isVisible()


def test_a_bad_or_too_large_stored_layout_still_opens_the_window(qtbot, make_window, ini):
    big = make_window()
    screen = QGuiApplication.primaryScreen().availableGeometry()
    big.resize(screen.width() * 3, screen.height() * 3)  # saved on a larger screen
    big.close()
    again = make_window()
    assert again.width() <= screen.width() and again.height() <= screen.height()
    again.close()
    store = settings.open_settings(ini)
    store.setValue("window/geometry", QByteArray(b"not a geometry"))
    store.setValue("window/state", "a hand edit")
    store.sync()
    third = make_window()
    assert third.files_dock.isVisible()
    assert (third.width(), third.height()) == (1200, 800)  # the default size


def test_pause_tooltip_shows_its_key(qtbot, make_window):
    window = make_window()
    for act in (window.record_action, window.pause_action, window.stop_action):
        assert act.toolTip() == f"{act.text()} ({act.shortcut().toString()})"
