"""Text from outside the app (a path, a folder name, a model's config.json, an error message
quoting them) is shown as typed. Old: labels, message boxes and tooltips guessed rich text, so
"<b>" vanished and "<img src=PATH>" had Qt read PATH on the GUI thread (a FIFO froze the app)."""

from __future__ import annotations

import test_app_model_choice_faults
import test_app_model_switch
from PySide6.QtGui import QAction, QTextDocument
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtWidgets import QLabel, QMessageBox, QPushButton
from test_app_model_choice_faults import _loader
from test_app_model_switch import _engine

from app.about import AboutDialog
from app.banner import ModelBanner
from app.export.form import StatusLine
from app.features import grey_out
from app.folders import WatchFoldersDialog, ask_folder_files
from app.library import LibraryView
from app.settings import Settings
from app.tune.how import HowPanel
from app.tune.sources import SourcesPanel
from engine.library.store import Store
from engine.results import Char, Segment

# The model-switch tests' fixtures (English UI, a window, the shipped models), bound by name.
_english_ui_then_chinese = test_app_model_switch._english_ui_then_chinese
make_window = test_app_model_switch.make_window
shipped = test_app_model_choice_faults.shipped

# No file is there: were it rendered, Qt would only fail to find it.
MARKUP = '<img src="/nonexistent/tingxie.png"> <b>bold</b>'


def displayed(text: str, fmt: GuiQt.TextFormat = GuiQt.TextFormat.AutoText) -> str:
    """The characters a QLabel, a QMessageBox or a tooltip in `fmt` shows of `text`, by Qt's
    own rule (AutoText: rich when the first line looks like HTML)."""
    plain = fmt == GuiQt.TextFormat.PlainText
    if plain or (fmt == GuiQt.TextFormat.AutoText and not GuiQt.mightBeRichText(text)):
        return text
    document = QTextDocument()
    document.setHtml(text)  # (an <img> is read when laid out, never here)
    return document.toPlainText()


def _label_shows(label: QLabel) -> str:
    return displayed(label.text(), label.textFormat())


def test_the_banner_shows_a_message_with_markup_as_typed(qtbot):
    banner = ModelBanner()
    qtbot.addWidget(banner)
    banner.show_message(lambda: f"model type '{MARKUP}'\nchoose another", offer_demo=False)
    assert _label_shows(banner.label) == f"model type '{MARKUP}'\nchoose another"


def test_a_model_that_fails_with_markup_in_its_path_is_said_as_typed(
    qtbot, make_window, dialogs, shipped
):
    """The error dialog (MainWindow.show_error) and the banner quote the path as it is."""
    source = f"/models/{MARKUP}"
    load, _tried = _loader(shipped.whisper, shipped.demo)
    window = make_window(_engine(load), model=source, model_chosen=True)
    window.start()
    qtbot.waitUntil(lambda: len(dialogs) == 1)
    assert source in displayed(dialogs[0])
    assert source in _label_shows(window.banner.label)


def test_a_folder_named_with_markup_is_asked_about_as_typed(qapp, dialogs, monkeypatch, tmp_path):
    folder = tmp_path / "<b>bold<i>"
    folder.mkdir()
    assert ask_folder_files(None, str(folder)) == []  # empty: said in an information box
    assert str(folder) in displayed(dialogs[0])
    (folder / "a.wav").write_bytes(b"")
    asked = []
    monkeypatch.setattr(
        QMessageBox,
        "question",
        lambda _p, _t, text: asked.append(text) or QMessageBox.StandardButton.No,
    )
    assert ask_folder_files(None, str(folder)) == []
    assert str(folder) in displayed(asked[0])


def test_the_watch_dialog_quotes_a_folder_and_a_name_as_typed(qtbot, dialogs, tmp_path):
    folder = tmp_path / "<b>bold<i>"
    dialog = WatchFoldersDialog(Settings())
    qtbot.addWidget(dialog)
    dialog.add_folder(str(folder))
    dialog.add_folder(str(folder))  # twice: refused in a warning naming both
    assert str(folder) in displayed(dialogs[0])
    dialog.name.setText("<b>x<i>{nope}")
    dialog.name.textEdited.emit(dialog.name.text())
    assert "<b>x<i>{nope}" in _label_shows(dialog.problem)


def test_labels_that_quote_paths_and_errors_show_them_as_typed(qtbot):
    about = AboutDialog(MARKUP)
    qtbot.addWidget(about)
    assert MARKUP in _label_shows(about.model_label)
    status = StatusLine(QPushButton())
    qtbot.addWidget(status)
    status.finished(MARKUP)
    assert _label_shows(status) == MARKUP
    how = HowPanel()
    qtbot.addWidget(how)
    how.say(lambda: MARKUP)
    how.set_lora_only(MARKUP)
    assert _label_shows(how.estimate) == MARKUP and _label_shows(how.note) == MARKUP
    sources = SourcesPanel(list)
    qtbot.addWidget(sources)
    sources.set_model_note(MARKUP)
    assert _label_shows(sources.model_note) == MARKUP


def test_tooltips_that_quote_paths_and_reasons_show_them_as_typed(qtbot):
    action = QAction()
    grey_out(action, MARKUP)
    assert displayed(action.toolTip()) == MARKUP
    sources = SourcesPanel(list)
    qtbot.addWidget(sources)
    sources.select_source(f"/data/{MARKUP}")
    assert displayed(sources.table.item(0, 0).toolTip()) == f"/data/{MARKUP}"


def test_the_library_quotes_a_search_and_a_title_as_typed(qtbot, monkeypatch, tmp_path):
    """LibraryView's message under the table and its Delete question."""
    with Store(tmp_path / "library.db") as store:
        chars = tuple(Char(t, 0.1 * k, 0.1 * k + 0.08, 0.3) for k, t in enumerate("今天开会"))
        store.add_transcript([Segment(0, 0.0, 0.4, chars)], title=f"{MARKUP}.m4a")
        view = LibraryView(store)
        qtbot.addWidget(view)
        view.refresh()
        asked = []
        monkeypatch.setattr(
            QMessageBox,
            "question",
            lambda _p, _t, text, *a: asked.append(text) or QMessageBox.StandardButton.No,
        )
        view.table.selectRow(0)
        view.delete_selected()
        assert f"{MARKUP}.m4a" in displayed(asked[0])
        view.search.setText("x <b>bold</b> y")
        view.refresh()
        assert "x <b>bold</b> y" in _label_shows(view.message)
