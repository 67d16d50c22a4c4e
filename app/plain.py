"""Text from outside the app (file names, paths, titles, search text, names, a model's
config.json, error messages that quote them) shown as typed, never as HTML.

A QLabel, a QMessageBox and a tooltip guess: a text whose first line holds a tag is shown as
rich text, so "<b>" vanishes and "<img src=PATH>" makes Qt read PATH on the GUI thread (a FIFO
there froze the app). Labels that show such text are made `plain`; the static QMessageBox
functions and tooltips, which cannot be told the format, are given the text `literal`."""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtGui import Qt  # QtGui's Qt: it has mightBeRichText and convertFromPlainText
from PySide6.QtWidgets import QLabel, QMessageBox

__all__ = ["literal", "plain"]

_Shows = TypeVar("_Shows", QLabel, QMessageBox)


def plain(widget: _Shows) -> _Shows:
    """`widget` set to show every text it is given as typed (returned, to wrap a constructor)."""
    widget.setTextFormat(Qt.TextFormat.PlainText)
    return widget


def literal(text: str) -> str:
    """`text` for a widget that guesses rich text (a static QMessageBox, a tooltip): unchanged
    where Qt would show it as plain text anyway (so most texts stay as they were), else as HTML
    that reads as `text` does: "a <b>b</b>" -> "<p>a &lt;b&gt;b&lt;/b&gt;</p>"."""
    if not Qt.mightBeRichText(text):
        return text
    return Qt.convertFromPlainText(text)
