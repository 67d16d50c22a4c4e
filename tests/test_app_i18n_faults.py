"""Language and accessibility faults a bug hunt found: long alternatives widening the window, the
start-up dialog in the wrong language, Review actions out of the keyboard's reach, a failed
Library search leaving old rows to open, menus erasing the status message, texts left in the old
language after a switch, controls without an accessible name, and the Context box's unit."""

from __future__ import annotations

import re

import pytest
import test_app_review
import test_app_window
from app_fakes import FakePlayer
from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible, QAction, QGuiApplication, QStatusTipEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QInputDialog,
    QLineEdit,
    QMessageBox,
    QWidget,
)
from test_app_review import key

from app import i18n, settings
from app.i18n import tr
from app.library import LibraryView
from app.review.page import KEYS, ReviewPanel
from engine.library.store import Store
from engine.results import Alternative, Char, Segment


@pytest.fixture(autouse=True)
def _chinese_ui_after_each_test():
    yield
    i18n.set_language("zh")


# The review and window tests' fixtures, shared rather than copied (bound by name).
audio = test_app_review.audio
store = test_app_review.store
panel = test_app_review.panel
dialogs = test_app_window.dialogs
library = test_app_window.library
ini = test_app_window.ini
make_window = test_app_window.make_window


# ---- 1. long alternatives and the window's width ---------------------------------------------


def _long_span(length: int) -> list[Segment]:
    """One segment of `length` doubtful characters, each with three alternatives: nine
    whole-span choices of `length` characters each."""
    text = "今天我们在会议上讨论了下一季度的预算安排以及人员招聘"[:length]
    alternatives = tuple(Alternative(x, 0.3 - 0.01 * j) for j, x in enumerate("甲乙丙"))
    chars = tuple(Char(t, 0.1 * k, 0.1 * k + 0.08, 0.2, alternatives) for k, t in enumerate(text))
    return [Segment(0, 0.0, chars[-1].end, chars)]


def test_a_long_span_and_its_choices_leave_the_window_its_width(qtbot, make_window, library):
    """Old: the choices stood on one line whose width became the window's minimum: 1526 px
    for a span of 8 characters, 2966 px for 20, pushing the page's right side and its buttons
    off the screen. Now they wrap: a span of 20 shows all nine choices on three lines, and a
    longer one is cut there (the transcript above keeps its room)."""
    window = make_window()
    qtbot.waitExposed(window)
    narrowest = window.minimumSizeHint().width()
    review = window.review_panel
    for length in (20, 26):
        tid = library.add_transcript(_long_span(length), title="long.wav", duration=3.0)
        window.open_in_review(tid)
        QApplication.processEvents()  # the layout's pending update
        assert review.alternatives_label.text().count("Alt+") == 9
        assert (window.minimumSizeHint().width(), window.width()) == (narrowest, 1200)
        for label in (review.span_label, review.alternatives_label):
            assert label.height() < 4 * label.fontMetrics().lineSpacing()  # three lines
            if length == 20:
                assert label.heightForWidth(label.width()) <= label.height()  # all shown


# ---- 2. the start-up dialog's language -------------------------------------------------------


def test_the_data_folder_dialog_is_in_the_saved_language(qtbot, monkeypatch, tmp_path):
    """Old: with English chosen, "cannot make its data folder" came in Chinese: nothing had
    read the preference before the window (which the error keeps from opening)."""
    from app.main import main

    store = settings.open_settings(tmp_path / "settings.ini")
    settings.save(store, settings.Preferences(language="en"))
    monkeypatch.setattr(settings, "open_settings", lambda path=None: store)
    (tmp_path / "afile").write_text("in the way", encoding="utf-8")
    monkeypatch.setenv("TINGXIE_DATA_DIR", str(tmp_path / "afile" / "data"))
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda _p, *texts: shown.append(texts))
    assert main(["tingxie"]) == 1
    ((title, text),) = shown
    assert (title, text[:36]) == ("Tingxie: error", "Tingxie cannot make its data folder ")
    assert not re.search(r"[\u4e00-\u9fff]", text)


# ---- 3. every Review action within the keyboard's reach -------------------------------------


def test_history_copy_and_training_set_have_keys_and_tab_reaches_every_button(
    qtbot, panel: ReviewPanel, monkeypatch
):
    """Old: History…, Copy text and Make training set… had no key and their buttons took no
    focus: without a mouse they could not be used (the page promises the keyboard alone)."""
    asked = []
    monkeypatch.setattr(
        QInputDialog, "getItem", lambda *a, **k: asked.append("history") or ("", False)
    )
    monkeypatch.setattr(
        QInputDialog, "getText", lambda *a, **k: asked.append("dataset") or ("", False)
    )
    QGuiApplication.clipboard().setText("")
    key(qtbot, panel, KEYS["history"])
    key(qtbot, panel, KEYS["copy"])
    key(qtbot, panel, KEYS["make_dataset"])
    assert asked == ["history", "dataset"]
    assert QGuiApplication.clipboard().text().startswith("今添天气好")
    for name in ("history", "copy", "make_dataset"):  # the key is said where the button is
        assert panel._buttons[name].toolTip().endswith(f"({KEYS[name]})")

    reached = set()
    for _ in range(40):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        reached.add(QApplication.focusWidget())
    assert set(panel._buttons.values()) <= reached
    panel.fix_edit.setFocus()
    qtbot.mouseClick(panel._buttons["copy"], Qt.MouseButton.LeftButton)
    assert QApplication.focusWidget() is panel.fix_edit  # a click leaves the keys there


def test_the_new_keys_belong_to_one_action_each(qtbot, make_window, library):
    """No other action of the window, on any page, answers the keys given above (a key two
    actions share does nothing: Qt calls it ambiguous)."""
    window = make_window()
    tid = library.add_transcript(_long_span(2), title="t.wav", duration=1.0)
    window.open_in_review(tid)
    for name in ("history", "copy", "make_dataset"):
        owners = [
            a
            for a in window.findChildren(QAction)
            if any(s.toString() == KEYS[name] for s in a.shortcuts())
        ]
        assert [a.objectName() for a in owners] == [name]


# ---- 4. a Library search that fails ----------------------------------------------------------


def _said(text: str) -> list[Segment]:
    chars = tuple(Char(t, 0.1 * k, 0.1 * k + 0.05, 0.9) for k, t in enumerate(text))
    return [Segment(0, 0.0, chars[-1].end, chars)]


def test_a_failed_search_lists_nothing_and_says_why_in_the_ui_language(qtbot, store: Store):
    """Old: a query over 1000 characters kept the last search's rows (trip.wav for "开会…"),
    Enter opened one of them, and the reason stayed Chinese after a switch to English."""
    store.add_transcript(_said("今天开会"), title="meeting.wav", duration=2.0)
    store.add_transcript(_said("明天出差"), title="trip.wav", duration=2.0)
    view = LibraryView(store)
    qtbot.addWidget(view)
    view.show()
    view.search.setText("trip")
    view.refresh()
    assert view.table.rowCount() == 1
    view.search.setText("开会" * 501)
    view.refresh()
    opened: list[int] = []
    view.open_requested.connect(opened.append)
    qtbot.keyClick(view.search, Qt.Key.Key_Return)
    assert (view.table.rowCount(), view.ids, opened) == (0, [], [])
    chinese = view.message.text()
    assert "1002" in chinese
    i18n.set_language("en")
    view.retranslate()
    assert view.message.text() != chinese and "1002 characters" in view.message.text()
    view.search.setText("trip")  # the next search that works says nothing of it
    view.refresh()
    assert view.table.rowCount() == 1 and view.message.text() == ""


# ---- 5. menus and the status bar's message ---------------------------------------------------


def test_a_menu_keeps_the_status_message_and_a_switch_rewords_it(qtbot, make_window):
    """Old: highlighting a menu item (which sends an empty status tip) erased the message, so
    a switch from the Language menu, the only place to switch, had nothing left to reword."""
    window = make_window()
    window._say("status.saved", path="/home/u/rec/a.wav")
    chinese = window.statusBar().currentMessage()
    window.activateWindow()
    window.menuBar().setActiveAction(window.language_menu.menuAction())
    qtbot.waitUntil(window.language_menu.isVisible)
    window.language_menu.setActiveAction(window.language_actions["en"])
    assert window.statusBar().currentMessage() == chinese
    window.language_actions["en"].trigger()
    window.language_menu.close()
    assert window.statusBar().currentMessage() == tr("status.saved", path="/home/u/rec/a.wav")


def test_a_real_status_tip_shows_and_gives_the_message_back(qtbot, make_window):
    """A tip an action sets still shows over the message; the empty tip that ends it brings the
    message back, in the language chosen meanwhile."""
    window = make_window()
    window._say("status.saved", path="/a.wav")
    QApplication.sendEvent(window, QStatusTipEvent("a tip"))
    assert window.statusBar().currentMessage() == "a tip"
    i18n.set_language("en")  # as a switch would while the tip shows
    window.retranslate()
    QApplication.sendEvent(window, QStatusTipEvent(""))
    assert window.statusBar().currentMessage() == tr("status.saved", path="/a.wav")
    QApplication.sendEvent(window, QStatusTipEvent("a tip"))
    window._say("status.recording")  # said over the tip: stays when the tip ends
    QApplication.sendEvent(window, QStatusTipEvent(""))
    assert window.statusBar().currentMessage() == tr("status.recording")


# ---- 6. texts left in the old language -------------------------------------------------------


def test_the_int8_copy_message_follows_a_language_switch(qtbot, make_window):
    """Old: after a switch the label said "Loading model …" while the int8 copy was made."""
    window = make_window()
    window._model_loading("/models/m")
    window._model_preparing()
    assert window.model_label.text() == tr("status.preparing_model", model="/models/m")
    window.set_language("en")
    assert window.model_label.text() == tr("status.preparing_model", model="/models/m")
    assert window.model_label.text().startswith("Preparing an int8 copy")
    window._model_loading("/models/n")  # the next load says what it does, afresh
    assert window.model_label.text() == tr("status.loading_model", model="/models/n")


def test_the_tune_notice_follows_a_language_switch(qtbot, tmp_path):
    """Old: "请先至少勾选一行数据。" (and a setting the form cannot take) stayed Chinese after a
    switch to English: the notice held the text, not the message."""
    from app.tune.page import TunePage
    from app.tune.supervisor import SupervisorHandle, TuneSupervisor

    page = TunePage(SupervisorHandle(TuneSupervisor(tmp_path)), tmp_path)
    qtbot.addWidget(page)
    page.check()
    assert page.notice.text() == tr("tune.no_data")
    i18n.set_language("en")
    page.retranslate()
    assert page.notice.text() == tr("tune.no_data") == "Check at least one row of data first."

    i18n.set_language("zh")
    page.sources.select_source(tmp_path / "data.tsv")
    page.sources.model_box.setCurrentText("models/m")
    page.how.form.fields["learning_rate"].widget.setText("fast")
    page.measure()  # the job's own path to the form
    chinese = page.notice.text()
    assert "learning_rate" in chinese
    i18n.set_language("en")
    page.retranslate()
    assert "learning_rate" in page.notice.text() and page.notice.text() != chinese


# ---- 7. accessible names ---------------------------------------------------------------------


_CONTROLS = (QAbstractButton, QComboBox, QLineEdit, QAbstractSpinBox, QAbstractItemView)


def _unnamed(root: QWidget, skip: QWidget | None = None) -> list[str]:
    """The controls shown in `root` (but not in `skip`) that Tab reaches, and buttons, which a
    screen reader cannot name: no accessible name, and no label naming them (setBuddy). A
    combo box's or spin box's own line edit is part of its box; Qt's own parts (qt_*: a
    table's corner button, a toolbar's overflow) are left to Qt."""
    found = []
    for widget in [root, *root.findChildren(QWidget)]:
        reached = widget.focusPolicy() & Qt.FocusPolicy.TabFocus
        if (
            not isinstance(widget, _CONTROLS)
            or not (reached or isinstance(widget, QAbstractButton))
            or not (widget is root or widget.isVisibleTo(root))
            or (skip is not None and skip.isAncestorOf(widget))
            or isinstance(widget.parentWidget(), (QComboBox, QAbstractSpinBox))
            or widget.objectName().startswith("qt_")
        ):
            continue
        iface = QAccessible.queryAccessibleInterface(widget)
        labelled = iface.relations(QAccessible.RelationFlag.Label)
        if not iface.text(QAccessible.Text.Name) and not labelled:
            found.append(f"{type(widget).__name__} {widget.objectName()}")
    return found


def test_the_controls_have_names_that_follow_the_language(qtbot, make_window):
    """Old: the microphone's icon button, its box, the Review page's Context and Speed boxes,
    every Tune form field, the Library's search box and table, the step list and the Files
    panel had no name a screen reader could say (63 controls in all)."""
    window = make_window()
    review, tune = window.review_panel, window.tune_page
    panels = [tune.nav, tune.sources, tune.checker, tune.how, tune.watch, tune.result, tune.models]
    roots = [window.toolbar, window.queue, window.library_view, review, *panels]
    found = sorted({name for root in roots for name in _unnamed(root)})
    assert found == []
    assert window.device_label.buddy() is window.device_box
    assert window.speakers_label.buddy() is window.speakers_box
    button = QAccessible.queryAccessibleInterface(window.refresh_devices_button)
    assert button.text(QAccessible.Text.Name) == "重新查找麦克风"
    window.set_language("en")
    assert button.text(QAccessible.Text.Name) == "Look for microphones again"
    assert review.fix_edit.accessibleName() == tr("review.fix_name")


# ---- 8. the Context box's unit ---------------------------------------------------------------


def test_the_context_box_reads_seconds_in_the_ui_language(qtbot, store: Store):
    """Old: '0.3 s' in the Chinese UI, with '约需 0 秒' just below it."""
    review = ReviewPanel(store, FakePlayer())
    qtbot.addWidget(review)
    assert review.margin_spin.text() == "0.3 秒"
    i18n.set_language("en")
    review.retranslate()
    assert review.margin_spin.text() == "0.3 s"
