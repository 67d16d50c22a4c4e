"""Faults left in the main window (each test failed on the code before its fix): a recording
that could not be written said "Recording saved to …", a path row without its accessible name
before it was shown, a library upgrade at start that showed nothing, and a window too tall for
a 768-px laptop screen."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
import test_app_live_faults
import test_app_window
from app_fakes import emitted, recorder_factory, tone
from PySide6.QtCore import QCoreApplication, QEvent, Qt
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import QApplication, QLabel, QProgressDialog
from test_app_window import _engine

from app.i18n import set_language, tr
from engine.library import store as store_mod
from engine.library.store import Store
from engine.recorder import MicrophoneError
from engine.results import Char, Segment

# Shared fixtures, bound by name as pytest finds them.
_ui_as_the_tests_expect = test_app_live_faults._ui_as_the_tests_expect
dialogs = test_app_window.dialogs
library = test_app_window.library
make_window = test_app_live_faults.make_window


# ---- 1: a recording the disk did not take ------------------------------------------------


def _full_disk(kept: float | None) -> MicrophoneError:
    """The real Recorder's error when the disk took only `kept` seconds of the recording
    (None: the file could not even be cut to what it took)."""
    where = dict(path="recording.wav", detail="No space left on device")
    if kept is None:
        return MicrophoneError("recording.write_failed", **where)
    return MicrophoneError("recording.write_failed_kept", seconds=kept, **where)


@pytest.mark.parametrize(
    ("signal", "kept", "said"),
    [
        (np.zeros(0, np.float32), 0.0, "status.not_saved"),
        (tone(0.3), 0.2, "status.saved_part"),
        (tone(0.3), None, "status.saved_unrepaired"),
    ],
    ids=["nothing", "part", "unrepaired"],
)
def test_a_recording_the_disk_did_not_take_is_not_said_saved(
    qtbot, make_window, dialogs, signal, kept, said
):
    """The error dialog said nothing (or only its first seconds) reached the disk, then the
    status bar said "Recording saved to …"."""
    make = recorder_factory(signal=signal, lose_device=_full_disk(kept))
    window = make_window(_engine(recorder=make))
    emitted(qtbot, window.worker.model_loaded, window.start)
    emitted(qtbot, window.worker.recording_saved, window.record_action.trigger)
    path = str(make.made[0].path)
    assert [title for title, _ in dialogs] == [tr("dialog.error")]
    assert window.statusBar().currentMessage() == tr(said, path=path, seconds=kept)
    assert window.statusBar().currentMessage() != tr("status.saved", path=path)
    assert window.record_action.isEnabled()


# ---- 2: a path row's name before it shows ---------------------------------------------------


def _name(widget) -> str:
    return QAccessible.queryAccessibleInterface(widget).text(QAccessible.Text.Name)


def _label_of(row) -> QLabel:
    return next(w for w in row.parentWidget().findChildren(QLabel) if w.buddy() is row)


def test_a_path_row_is_named_before_it_shows_and_after_a_language_switch(qtbot, make_window):
    """The edit was named when Qt polished the row, as it showed: a screen reader that read
    the dialog before, and the tests, heard an empty name."""
    from app.export.embeddings import EmbedDialog
    from app.export.model import ExportDialog

    window = make_window(_engine())
    export = ExportDialog(window.handle, "x", window, loaded=None)
    embed = EmbedDialog(window.handle, "a.wav", window)
    rows = {
        export.model: "export.model",
        export.check: "export.check",
        embed.out: "export.common.out",
    }
    for row, key in rows.items():
        assert not row.isVisible()
        assert row.edit.accessibleName() == _name(row.edit) == tr(key).replace("&", "")
    set_language("en")
    for row, key in rows.items():  # a dialog that rewords its labels on the switch
        _label_of(row).setText(tr(key))
        QCoreApplication.sendEvent(row, QEvent(QEvent.Type.LanguageChange))
        assert row.edit.accessibleName() == tr(key).replace("&", "")
        assert row.browse.text() == tr("export.common.browse")


# ---- 3: the library upgraded at start ------------------------------------------------------


def _version_4_library(path) -> None:
    """A library as Tingxie's schema 4 left it (its search index one row a segment)."""
    with Store(path) as s:
        s.add_transcript(
            [Segment(0, 0.0, 1.0, (Char("你", 0.0, 0.5, 0.9), Char("好", 0.5, 1.0, 0.9)))],
            title="a.wav",
        )
    with sqlite3.connect(path) as raw:
        raw.execute("ALTER TABLE transcripts DROP COLUMN preview")
        raw.execute("PRAGMA user_version=4")


def _notices() -> list[str]:
    return [
        w.labelText()
        for w in QApplication.topLevelWidgets()
        if isinstance(w, QProgressDialog) and w.isVisible()
    ]


def test_an_older_library_is_upgraded_under_a_notice(qtbot, make_window, monkeypatch, tmp_path):
    """The re-index of schema 5 ran before the window showed, with nothing on screen: the
    app looked as if it had not started. A notice names the library meanwhile, gone after."""
    monkeypatch.setenv("TINGXIE_DATA_DIR", str(tmp_path / "data"))
    path = store_mod.default_path()
    path.parent.mkdir(parents=True)
    _version_4_library(path)
    seen = []

    def v5(conn) -> None:
        seen.append(_notices())
        store_mod._v5(conn)

    monkeypatch.setattr(store_mod, "MIGRATIONS", (*store_mod.MIGRATIONS[:4], v5))
    window = make_window(_engine())  # the window's own library, in $TINGXIE_DATA_DIR
    assert seen == [[tr("library.upgrading", path=str(path))]]
    assert _notices() == []
    assert window.library.schema_version() == store_mod.SCHEMA_VERSION
    assert [t.title for t in window.library.list_transcripts()] == ["a.wav"]


# ---- 4: the window on a 768-px laptop screen --------------------------------------------------


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_window_fits_a_768_pixel_screen_on_every_page(qtbot, make_window, library, lang):
    """Its least height was 699 px, the Tune page's tallest panel's: a 1366x768 laptop with
    a taskbar leaves about 700 px, title bar included. The pages scroll instead."""
    set_language(lang)
    window = make_window(_engine(), library=library, language=lang)
    assert window.pages.tabText(0) == ("Transcript" if lang == "en" else "转写")
    assert window.pages.count() == 4  # Transcript, Review, Library, Tune
    for index in range(window.pages.count()):
        window.pages.setCurrentIndex(index)
        QApplication.processEvents()
        assert window.minimumSizeHint().height() <= 600, window.pages.tabText(index)
    central = window.centralWidget()
    assert central.focusPolicy() == Qt.FocusPolicy.NoFocus
