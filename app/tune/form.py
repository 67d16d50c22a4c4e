"""Every TuneConfig setting as an editable field, generated from the dataclass: each field's type
picks its editor and its help sits beside it, in the UI language (`tune.help.<setting>`: the
English is `settings_help`, the text `tingxie-cli tune --help` shows; the Chinese is
app.tune.strings.SETTING_HELP_ZH). A setting added to the engine appears here without a widget
written for it.

Settings a preset fills are left empty and show the preset's value greyed; typing a value
overrides it, clearing the field gives it back to the preset. What is typed is read by TuneConfig
itself (a whole number may be written 200.0 or 1e3, as in a job file), and what it rejects is
said in the UI language, worded from its error code (app.errors), not from its English.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import partial
from typing import Any, Literal, Union

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QWidget,
)

from engine.tune.config import TuneConfig

from ..errors import error_text
from ..i18n import Message, tr
from . import strings  # noqa: F401  (registers the strings used below)

__all__ = ["ConfigForm", "FormError"]

# Chosen on the "What to teach" step, not in the form.
_ELSEWHERE = ("model", "data", "output_dir")
_TRISTATE = (None, True, False)  # a `bool | None` setting: automatic, on, off
_BLANK = partial(TuneConfig, model="", data="", output_dir="")  # the form's settings alone


class FormError(ValueError):
    """What keeps the form (or the page around it) from making a TuneConfig, worded in the UI
    language; `message` words it again, so that the page's notice follows a language switch."""

    def __init__(self, message: Message) -> None:
        super().__init__(message())
        self.message = message


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """(the type, whether None is allowed) of a field's annotation."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False


class _Field:
    """One setting's editor: reads and writes a Python value (a number as typed: TuneConfig
    reads it by the setting's type)."""

    def __init__(self, name: str, hint: Any, on_change) -> None:
        self.name = name
        self.kind, self.optional = _unwrap(hint)
        if typing.get_origin(self.kind) is Literal:
            self.widget = QComboBox()
            for choice in typing.get_args(self.kind):
                self.widget.addItem(str(choice), choice)
            self.widget.currentIndexChanged.connect(on_change)
        elif self.kind is bool and self.optional:
            self.widget = QComboBox()
            for value in _TRISTATE:
                self.widget.addItem("", value)
            self.widget.currentIndexChanged.connect(on_change)
        elif self.kind is bool:
            self.widget = QCheckBox()
            self.widget.setAccessibleName(name)  # a check box names itself, not by its label
            self.widget.toggled.connect(on_change)
        else:
            self.widget = QLineEdit()
            self.widget.textEdited.connect(on_change)
        self.widget.setObjectName(f"setting-{name}")

    def retranslate(self) -> None:
        if self.kind is bool and self.optional:
            for i, key in enumerate(("tune.auto", "tune.yes", "tune.no")):
                self.widget.setItemText(i, tr(key))

    def get(self) -> Any:
        w = self.widget
        if isinstance(w, QComboBox):
            return w.currentData()
        if isinstance(w, QCheckBox):
            return w.isChecked()
        text = w.text().strip()
        if not text:
            if self.optional:
                return None
            raise FormError(partial(tr, "tune.form.empty", name=self.name))
        return text

    def set(self, value: Any) -> None:
        w = self.widget
        if isinstance(w, QComboBox):
            w.setCurrentIndex(max(0, w.findData(value)))
        elif isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        else:
            w.setText(_shown(value))

    def show_default(self, value: Any) -> None:
        """What an empty field means (the preset's value)."""
        if isinstance(self.widget, QLineEdit):
            self.widget.setPlaceholderText(_shown(value))


def _shown(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


class ConfigForm(QWidget):
    """The form; `config(model, data, output_dir)` builds the TuneConfig it shows."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        hints = typing.get_type_hints(TuneConfig)
        self.fields: dict[str, _Field] = {}
        self._helps: list[tuple[str, QLabel, QWidget]] = []  # (setting, its note, its editor)
        self.normalize: dict[str, QCheckBox] = {}
        grid = QGridLayout(self)
        row = 0
        for f in dataclasses.fields(TuneConfig):
            if f.name in _ELSEWHERE:
                continue
            label, help_label = QLabel(f.name), QLabel()
            help_label.setWordWrap(True)
            help_label.setEnabled(False)  # greyed: a note, not a control
            if dataclasses.is_dataclass(hints[f.name]):
                editor = self._checkboxes(hints[f.name])
            else:
                field = _Field(f.name, hints[f.name], self._changed)
                self.fields[f.name] = field
                editor = field.widget
            self._helps.append((f.name, help_label, editor))
            label.setBuddy(editor)  # the setting's name names its field to a screen reader
            grid.addWidget(label, row, 0)
            grid.addWidget(editor, row, 1)
            grid.addWidget(help_label, row, 2)
            row += 1
        grid.setColumnStretch(2, 1)
        self.set_config(_BLANK())

    def _checkboxes(self, options_type: type) -> QWidget:
        box = QWidget()
        layout = QHBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        for option in dataclasses.fields(options_type):
            check = QCheckBox(option.name)
            check.toggled.connect(self._changed)
            layout.addWidget(check)
            self.normalize[option.name] = check
        self._normalize_type = options_type
        return box

    def _changed(self, *_: Any) -> None:
        self._show_preset()
        self.changed.emit()

    def retranslate(self) -> None:
        for field in self.fields.values():
            field.retranslate()
        for name, help_label, editor in self._helps:
            meaning = tr(f"tune.help.{name}")
            help_label.setText(meaning)
            editor.setToolTip(meaning)

    # ---- values --------------------------------------------------------------------------
    def set_config(self, config: TuneConfig) -> None:
        """Show `config`'s values (its model, data and output_dir are not part of the form)."""
        for name, field in self.fields.items():
            field.set(getattr(config, name))
        for name, check in self.normalize.items():
            check.setChecked(getattr(config.normalize, name))
        self.retranslate()
        self._show_preset()

    def set_value(self, name: str, value: Any) -> None:
        self.fields[name].set(value)
        self._changed()

    def value(self, name: str) -> Any:
        return self.fields[name].get()

    def config(self, model: str, data: str, output_dir: str) -> TuneConfig:
        """The TuneConfig shown; FormError names the setting that is wrong, in the UI
        language."""
        values = {name: field.get() for name, field in self.fields.items()}
        values["normalize"] = self._normalize_type(
            **{name: check.isChecked() for name, check in self.normalize.items()}
        )
        try:
            return TuneConfig(model=model, data=data, output_dir=output_dir, **values)
        except ValueError as e:  # a coded SettingError, worded by its code (app.errors)
            raise FormError(partial(error_text, e)) from e

    def _show_preset(self) -> None:
        """Grey the preset's values into the empty fields: those of the method and preset
        chosen, derived from the steps and rank typed (the preset's own while those are not
        numbers it takes)."""
        chosen = {name: self.fields[name].get() for name in ("method", "preset")}
        typed = {name: self.fields[name].get() for name in ("steps", "lora_rank")}
        try:
            resolved = _BLANK(**chosen, **typed).resolved()
        except ValueError:
            resolved = _BLANK(**chosen).resolved()
        for name, field in self.fields.items():
            field.show_default(getattr(resolved, name))
