"""The app around its window, on faults a bug hunt found: handing files to a Tingxie that is
quitting, the Files panel (a click on the row shown, many files at once), watch folders a hand
edit left unreadable, the window's state on "Open with", a model folder typed relative, and
quitting while a model still loads."""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
from app_fakes import FakePlayer, emitted
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMessageBox, QStyledItemDelegate, QVBoxLayout, QWidget
from test_app_window import _engine
from test_instance import ENV, _second_start, first  # noqa: F401 (a fixture)

from app import settings
from app.filequeue import FileQueue
from app.main import build_window
from app.window import LIVE
from engine.watch import WatchSpec

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch):
    """make_window(): the window on the fake engine, its library its own (closed with it)."""
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: QMessageBox.StandardButton.Ok)

    def make():
        store = settings.open_settings(tmp_path / "settings.ini")
        store.setValue("recordings_dir", str(tmp_path / "recordings"))
        window = build_window(store, _engine(), player=FakePlayer())
        qtbot.addWidget(window)
        window.show()
        return window

    return make


@pytest.fixture
def language():
    """`language(lang)` switches the UI language; the one before is back after the test."""
    from app import i18n

    before = i18n.language()
    yield i18n.set_language
    i18n.set_language(before)


@pytest.fixture
def queue(qtbot):
    view = FileQueue()
    qtbot.addWidget(view)
    view.resize(600, 300)
    view.show()
    qtbot.waitExposed(view)
    return view


def _click(qtbot, queue: FileQueue, job_id: int, column: int = 0) -> None:
    """A left click in `column` of the job's row, where the user sees it."""
    row = queue.visualItemRect(queue._rows[job_id].item)
    header = queue.header()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(queue.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, row.center().y()))


# ---- 3. "Open with Tingxie" while the running one quits ------------------------------------


def test_files_sent_to_a_quitting_app_are_not_taken_for_handed_over(first, qtbot, tmp_path):  # noqa: F811
    """The running app's window starts to close while a second start's message sits unread;
    the window then waits for the engine (a model still loading: up to 15 s) and the app
    quits. Old: the second start exited 0 once the message was written, and the files were
    lost; then it opened a window of its own 2 s later, on a library the first still held.
    Now only the running app's answer counts, and a second start that finds it quitting waits
    for it to quit and takes the library with its files."""
    second = _second_start(tmp_path, 2)
    try:
        assert second.stdout.readline().strip() == "claiming"
        time.sleep(1.5)  # nothing is read while the second start connects and writes
        first.stop_listening()  # the window starts to close (app.main: MainWindow.closing)
        time.sleep(3)  # it waits for the engine
        first._lock.unlock()  # the app has quit
        output = second.communicate(timeout=60)[0]
    finally:
        second.kill()
    assert "claim True holding the lock" in output, output
    assert "starting anyway" not in output, output
    qtbot.wait(300)
    assert first.received == []


def test_the_window_stops_taking_files_before_it_waits_for_the_engine(make_window, monkeypatch):
    """A later start learns that the app quits as its window starts to close, not after the
    engine wait (up to 15 s): app.main stops listening on `closing`. A close the user cancels
    says nothing."""
    window = make_window()
    order = []
    window.closing.connect(lambda: order.append("closing"))
    stop = window.handle.stop
    monkeypatch.setattr(
        window.handle, "stop", lambda *a, **k: (order.append("wait"), stop(*a, **k))
    )
    monkeypatch.setattr(window, "_confirm_dropping_files", lambda: False)
    window.quit()  # the user's Quit, then Cancel
    assert window.isVisible() and order == []
    window.close()
    assert order == ["closing", "wait"]


# ---- 4. a click on the row shown already ----------------------------------------------------


def test_clicking_a_files_row_after_show_live_shows_it_again(qtbot, make_window):
    window = make_window()
    emitted(qtbot, window.worker.model_loaded, window.start, 10_000)
    a, b = window.add_files(["/data/a.wav", "/data/b.wav"])
    qtbot.waitUntil(lambda: window.queue.state(b) == "done", timeout=10_000)
    selected = []
    window.queue.job_selected.connect(selected.append)
    _click(qtbot, window.queue, a)
    assert window.current == a and selected == [a]
    window.live_button.click()
    assert window.current == LIVE
    _click(qtbot, window.queue, a)  # old: nothing, the row was current already
    assert window.current == a and selected == [a, a]
    _click(qtbot, window.queue, b)
    assert window.current == b and selected == [a, a, b]  # once per click


# ---- 5. many files at once --------------------------------------------------------------------


def test_rows_add_no_widget_each(queue):
    """Each row held a progress bar and a button widget; every row added moved all of them
    (500 rows on 250 blocked the window 27 s). The rows are drawn now: the widgets in the view
    do not grow with the rows."""
    queue.add(0, "/data/first.wav")
    widgets = len(queue.viewport().findChildren(QWidget))
    for job in range(1, 301):
        queue.add(job, f"/data/f{job}.wav")
    assert len(queue.viewport().findChildren(QWidget)) == widgets
    assert queue.topLevelItemCount() == 301 and queue.state(300) == "waiting"


class _MeasuredCells(QStyledItemDelegate):
    """A plain item delegate that counts the cells measured (its sizeHint calls)."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.measured = 0

    def sizeHint(self, option, index):
        self.measured += 1
        return super().sizeHint(option, index)


def test_a_status_change_does_not_measure_every_row(qtbot, queue):
    """The status column was sized to its contents: each change measured every row (17 ms a
    change at 2 000 rows, 34 s over a batch), and one long failure widened it past the
    window. Now it is as wide as the longest status in either language, computed once."""
    cells = _MeasuredCells(queue)
    queue.setItemDelegateForColumn(2, cells)
    rows = 40
    for job in range(rows):
        queue.add(job, f"/data/f{job}.wav")
    qtbot.wait(10)
    width = queue.header().sectionSize(2)
    cells.measured = 0
    for job in range(rows):
        queue.set_state(job, "running")
        qtbot.wait(1)  # each change laid out, as the window's event loop does
    assert cells.measured < rows  # old: every row at every change, 41 * 40
    queue.set_state(0, "failed", "x" * 300)
    qtbot.wait(10)
    assert queue.header().sectionSize(2) == width
    assert queue._rows[0].item.toolTip(2) == queue.status_text(0)  # the whole message


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("state", ["waiting", "running", "done", "cancelled"])
def test_every_status_fits_its_column_in_either_language_and_font(qtbot, language, lang, state):
    """The fixed width fits each status, in the language the queue was built in and in the
    other after a switch, and again in the font of the window it is placed in."""
    language("zh" if lang == "en" else "en")
    view = FileQueue()
    view.add(1, "/data/a.wav")
    view.set_state(1, state)
    language(lang)
    view.retranslate()
    window = QWidget()
    qtbot.addWidget(window)
    font = window.font()
    font.setPointSize(2 * font.pointSize())
    window.setFont(font)
    QVBoxLayout(window).addWidget(view)
    window.show()
    assert view.sizeHintForColumn(2) <= view.header().sectionSize(2)


def test_a_rows_cancel_is_a_button_that_does_not_select_the_row(qtbot, queue):
    cancelled, selected = [], []
    queue.cancel_requested.connect(cancelled.append)
    queue.job_selected.connect(selected.append)
    for job in (1, 2, 3):
        queue.add(job, f"/data/{job}.wav")
    _click(qtbot, queue, 1)
    assert selected == [1]
    _click(qtbot, queue, 2, column=3)
    assert cancelled == [2] and selected == [1] and queue.currentItem() is queue._rows[1].item
    queue.set_state(2, "cancelled")
    assert not queue.can_cancel(2) and queue.can_cancel(3)
    _click(qtbot, queue, 2, column=3)  # a cancelled file's button is disabled
    assert cancelled == [2]
    qtbot.keyClick(queue, Qt.Key.Key_Delete)  # the keyboard's way: the current row
    assert cancelled == [2, 1]


def test_every_rows_state_is_drawn(qtbot, queue, language):
    language("en")
    for job, path in enumerate(("a.wav", "b.webm", "c.wav", "d.wav", "e.wav")):
        queue.add(job, f"/data/{path}")
    queue.set_state(0, "running")
    queue.set_progress(0, 0.4)
    queue.set_state(1, "running")
    queue.set_progress(1, math.nan)  # length unknown: Qt's busy indicator
    queue.set_state(2, "done")
    queue.set_state(3, "failed", "no audio")
    queue.set_state(4, "cancelled")
    assert queue.progress(0) == 0.4 and math.isnan(queue.progress(1)) and queue.progress(2) == 1.0
    assert not queue.grab().isNull()  # every delegate painted (an exception fails the test)
    language("zh")
    queue.retranslate()
    assert queue._rows[0].item.text(3) == "取消"


# ---- 7. a watch_folders value that does not parse at all ------------------------------------

_UNQUOTED = 'watch_folders=[{"folder": "/home/u/Rec", "formats": ["txt"]}]'
_SHORT = 'watch_folders="[{\\"folder\\": \\"/home/u/Rec\\", \\"formats\\": [\\"txt\\"]}"'


@pytest.mark.parametrize("line", [_UNQUOTED, _SHORT], ids=["unquoted", "bracket-short"])
def test_a_watch_value_that_does_not_parse_is_kept_and_told(tmp_path, line, caplog):
    """Old: it read as no watch folder, and the next change of any preference wrote [] over the
    hand edit."""
    ini = tmp_path / "s.ini"
    ini.write_text("[General]\nlanguage=en\n" + line + "\n")
    before = settings.open_settings(ini).value("watch_folders")
    with caplog.at_level(logging.WARNING, logger="tingxie.app.settings"):
        prefs = settings.Settings(settings.open_settings(ini))
    assert prefs.prefs.watch_folders == ()
    assert any("watch_folders" in r.getMessage() for r in caplog.records)
    ((folder, reason),) = settings.unreadable_watch_folders(prefs.prefs)
    assert "/home/u/Rec" in folder and reason
    prefs.set(threshold=0.5)  # another preference: the hand edit stays as written, to mend
    assert settings.open_settings(ini).value("watch_folders") == before


def test_an_unparsed_watch_value_stays_beside_folders_added_later(qtbot, tmp_path):
    from app.folders import WatchFoldersDialog

    ini = tmp_path / "s.ini"
    ini.write_text("[General]\n" + _SHORT + "\n")
    prefs = settings.Settings(settings.open_settings(ini))
    prefs.set(watch_folders=(WatchSpec(str(tmp_path / "inbox")),))
    again = settings.Settings(settings.open_settings(ini))
    assert again.prefs.watch_folders == (WatchSpec(str(tmp_path / "inbox")),)
    ((text, _reason),) = settings.unreadable_watch_folders(again.prefs)
    assert "/home/u/Rec" in text
    dialog = WatchFoldersDialog(again)
    qtbot.addWidget(dialog)
    assert "/home/u/Rec" in dialog.skipped.text() and not dialog.skipped.isHidden()


# ---- 9. "Open with" keeps the window maximized or full screen --------------------------------


@pytest.mark.parametrize("state", ["maximized", "full screen", "minimized"])
def test_open_with_keeps_the_windows_size(qtbot, make_window, tmp_path, state):
    from app.main import bring_forward

    window = make_window()
    show = {"maximized": window.showMaximized, "full screen": window.showFullScreen,
            "minimized": window.showMinimized}[state]  # fmt: skip
    show()
    qtbot.waitUntil(lambda: window.windowState() != Qt.WindowState.WindowNoState)
    before = window.windowState()
    bring_forward(window, [str(tmp_path / "talk.wav")])
    assert len(window.queue.job_ids()) == 1
    if state == "minimized":
        assert not window.isMinimized()
    else:
        assert window.windowState() == before


# ---- 10. a model folder typed relative to where the app started ------------------------------


def test_a_model_folder_typed_relative_is_kept_absolute(qtbot, tmp_path, monkeypatch):
    from app.modeldialog import ModelDialog

    (tmp_path / "models" / "mine").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    dialog = ModelDialog("")
    qtbot.addWidget(dialog)
    dialog.edit.setText(" models/mine ")
    assert dialog.source() == str(tmp_path / "models" / "mine")
    dialog.edit.setText("org/model-on-the-hub")  # no such folder: a Hub id, as typed
    assert dialog.source() == "org/model-on-the-hub"


def test_a_file_inside_a_model_folder_chooses_the_folder(qtbot, tmp_path, monkeypatch):
    """config.json or the weights, pasted for the folder that holds them, were kept and the
    load said "is a file"."""
    from app.modeldialog import ModelDialog

    mine = tmp_path / "models" / "mine"
    mine.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (mine / name).write_text("{}", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    dialog = ModelDialog("")
    qtbot.addWidget(dialog)
    for typed in ("models/mine/config.json", f'"{mine / "model.safetensors"}"'):
        dialog.edit.setText(typed)
        assert dialog.source() == str(mine), typed
    dialog.edit.setText("notes.txt")  # in no model's folder: kept, and the load says so
    assert dialog.source() == "notes.txt"


# ---- 2. quitting while the model still loads ---------------------------------------------------

_QUIT_WHILE_LOADING = """
import sys, threading
from pathlib import Path
sys.path.insert(0, {tests!r})
from PySide6.QtCore import QMetaObject, Qt
from app_fakes import FakePlayer
from test_app_window import _engine
import app.main
from app import settings
from app.worker import WorkerHandle

stop = WorkerHandle.stop
WorkerHandle.stop = lambda self, timeout_ms=300: stop(self, timeout_ms)  # the 15 s wait, cut
windows = []

def loading(source, tqdm):  # a download that outlives the window
    QMetaObject.invokeMethod(windows[0], "close", Qt.ConnectionType.QueuedConnection)
    threading.Event().wait()

real = app.main.build_window

def build_window():
    store = settings.open_settings(Path({data!r}) / "settings.ini")
    windows.append(real(store, _engine(load_model=loading), player=FakePlayer()))
    return windows[0]

app.main.build_window = build_window
sys.exit(app.main.main(["tingxie"]))
"""


def test_quitting_while_the_model_loads_ends_the_app_cleanly(tmp_path):
    """Old: the process aborted as main returned (SIGABRT, "QThread: Destroyed while thread is
    still running"), a crash report for every quit during a download."""
    ends_cleanly(_QUIT_WHILE_LOADING, tmp_path)


def ends_cleanly(template: str, tmp_path: Path) -> None:
    """Run the app as `template` (a script with {tests} and {data}) drives it: it must end with
    status 0, leaving a thread still busy unfinished instead of aborting on it."""
    script = template.format(tests=str(TESTS), data=str(tmp_path))
    env = {**ENV, "TINGXIE_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "QThread: Destroyed" not in output and "Traceback" not in output, output
    assert "leaving it unfinished" in output
