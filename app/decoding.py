"""Model → Language model: how CTC models decode, with a domain text and hotwords.

The engine's beam search (engine.lm) mixes a plain text of the user's domain into the model's
n-gram and favours the terms of a hotword list; greedy decoding uses neither. This menu
chooses them (a file each, or none) and turns the search off, keeps them in the preferences
(`decoder`, `domain_text`, `hotwords`) and sends each change to the worker as a `Decoding`.
Only paths pass here: the worker reads the files in its thread, so a big domain text never
blocks the window, and tells through `decoding_failed` what it could not use
(`failure_text` words that). Whisper models have their own decoder: the menu is greyed out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from .errors import error_text
from .features import grey_out
from .i18n import tr
from .settings import Settings
from .worker import Decoding, WorkerHandle

__all__ = ["PARTS", "DecodingMenu", "failure_text"]

PARTS = ("domain_text", "hotwords")  # the files, by their Preferences / Decoding field


def failure_text(part: str, error: object) -> str:
    """What the user reads when the worker could not use `part` (domain_text, hotwords or
    language_model): the engine's error (it names the file) and what to do in the app."""
    return tr(f"decoding.{part}_failed", message=error_text(error))


class DecodingMenu(QMenu):
    """The Language model submenu; follows the settings, whichever code changes them."""

    def __init__(self, settings: Settings, handle: WorkerHandle, parent: QWidget) -> None:
        super().__init__(parent)
        self.setToolTipsVisible(True)
        self.settings = settings
        self.handle = handle
        self._unavailable = ""  # why the loaded model cannot use any of it ("" when it can)
        self.search_action = QAction("", self, checkable=True)
        self.search_action.toggled.connect(
            lambda on: settings.set(decoder="auto" if on else "greedy")
        )
        self.addAction(self.search_action)
        self.addSeparator()
        self.choose_actions: dict[str, QAction] = {}
        self.clear_actions: dict[str, QAction] = {}
        for part in PARTS:
            choose = QAction("", self, checkable=True)  # checked while a file is set
            choose.triggered.connect(lambda _=False, p=part: self.choose(p))
            clear = QAction("", self)
            clear.triggered.connect(lambda _=False, p=part: settings.set(**{p: ""}))
            self.addAction(choose)
            self.addAction(clear)
            self.choose_actions[part], self.clear_actions[part] = choose, clear
        settings.changed.connect(self._setting_changed)
        self.retranslate()

    def decoding(self) -> Decoding:
        p = self.settings.prefs
        return Decoding(p.decoder, p.domain_text, p.hotwords)

    def send(self) -> None:
        """Tell the worker the current choice (it applies from the next file or final on)."""
        self.handle.set_decoding.emit(self.decoding())

    def choose(self, part: str) -> None:
        """Ask for the `part` file; cancelling keeps the one set."""
        current = getattr(self.settings.prefs, part)
        path = ask_text_file(self.parentWidget(), tr(f"dialog.{part}"), current)
        if path:
            self.settings.set(**{part: path})
        self._refresh()  # the checkmark follows the setting, not the click

    def set_unavailable(self, why: str) -> None:
        """Grey the whole menu out with `why` as its tooltip (the loaded model has no beam
        search), or enable it again with "" ."""
        self._unavailable = why
        self._refresh()

    def _setting_changed(self, name: str, _value: Any) -> None:
        if name in ("decoder", *PARTS):
            self._refresh()
            self.send()

    def retranslate(self) -> None:
        self.setTitle(tr("menu.language_model"))
        self._refresh()

    def _refresh(self) -> None:
        prefs = self.settings.prefs
        why = self._unavailable
        grey_out(self.menuAction(), why, tr("lm.tooltip"))
        search = self.search_action
        search.blockSignals(True)  # showing the setting is not changing it
        search.setChecked(prefs.decoder != "greedy")
        search.blockSignals(False)
        search.setText(tr("action.use_lm"))
        grey_out(search, why, tr("lm.tooltip"))
        files_why = why or (tr("lm.greedy_why") if prefs.decoder == "greedy" else "")
        for part in PARTS:
            path = getattr(prefs, part)
            choose = self.choose_actions[part]
            choose.setChecked(bool(path))
            if path:
                choose.setText(tr(f"action.{part}_set", name=Path(path).name))
            else:
                choose.setText(tr(f"action.{part}"))
            grey_out(choose, files_why, path or tr(f"lm.{part}_tip"))
            self.clear_actions[part].setText(tr(f"action.clear_{part}"))
            grey_out(self.clear_actions[part], files_why)
            self.clear_actions[part].setVisible(bool(path))


def ask_text_file(parent: QWidget | None, title: str, current: str) -> str:
    """A UTF-8 text file chosen by the user ("" when cancelled), starting beside `current`."""
    start = str(Path(current).parent) if current else ""
    path, _ = QFileDialog.getOpenFileName(
        parent, title, start, f"{tr('dialog.text_files')} (*.txt);;{tr('dialog.all_files')} (*)"
    )
    return path
