"""The Save dialog for transcripts, shared by the Transcript page's Save and Review's Export
(and, through `ask_save_file`, by other files the app writes: the Tune check's report).

It opens next to the audio file, named after it; it offers every format the writers know; and a
name typed without a suffix gets the type chosen in the dialog (the writers tell the format by
the suffix), asking before it replaces a file of that name. It never saves over the audio
itself (recordings are recognized by their content, so one may be named memo.txt). Failures
to write are worded in the UI language.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from .errors import error_text
from .i18n import tr
from .plain import literal

__all__ = ["ask_save_file", "ask_save_path", "save_start", "save_target", "write_error_text"]

_DEFAULT_STEM = "transcript"


def save_target(path: str, chosen_filter: str, formats: tuple[str, ...]) -> Path:
    """The file to write: `path` as typed, with the chosen filter's suffix added when the
    typed name has none of the known ones (so "notes" + "SRT (*.srt)" saves notes.srt).

    >>> str(save_target("/t/notes", "SRT (*.srt)", ("txt", "srt")))
    '/t/notes.srt'
    """
    target = Path(path)
    if target.suffix.lower().lstrip(".") in formats:
        return target
    for fmt in formats:
        if f"*.{fmt})" in chosen_filter:
            return target.with_name(f"{target.name}.{fmt}")
    return target.with_name(f"{target.name}.txt")


def save_start(audio: str | Path | None, fmt: str = "txt") -> str:
    """Where the dialog opens: beside the audio, named after it (a bare name when there is no
    audio, which Qt places in the folder it used last); never the audio itself.

    >>> save_start("/rec/meeting.m4a")
    '/rec/meeting.txt'
    >>> save_start("/rec/memo.TXT")
    '/rec/memo.TXT.txt'
    """
    if not audio:
        return f"{_DEFAULT_STEM}.{fmt}"
    audio = Path(audio)
    stem = audio.name if audio.suffix.lower() == f".{fmt}" else audio.stem
    return str(audio.with_name(f"{stem}.{fmt}"))


def ask_save_path(parent: QWidget, title: str, audio: str | Path | None) -> Path | None:
    """Ask where to save a transcript of `audio`; None when the user cancels, or chooses the
    audio itself (said in a message box: the transcript would replace the recording)."""
    from engine import writers

    protected = (audio,) if audio else ()
    return ask_save_file(
        parent, title, save_start(audio), writers.FORMATS, protected, "dialog.save_over_audio"
    )


def ask_save_file(
    parent: QWidget,
    title: str,
    start: str,
    formats: tuple[str, ...],
    protected: Sequence[str | Path] = (),
    refusal: str = "dialog.save_over_audio",
) -> Path | None:
    """Ask where to save a file of one of `formats` (suffixes; the first when a typed name has
    none and no type is chosen), the dialog opening at `start`. None when the user cancels,
    chooses one of the `protected` files (the data it is made from: said by the message
    `refusal`, given the `path`), or does not want the file an added suffix names replaced."""
    filters = [f"{fmt.upper()} (*.{fmt})" for fmt in formats]
    path, chosen = QFileDialog.getSaveFileName(parent, title, start, ";;".join(filters))
    if not path:
        return None
    target = save_target(path, chosen or filters[0], formats)
    if any(_same_file(target, Path(p)) for p in protected):
        QMessageBox.warning(parent, title, literal(tr(refusal, path=str(target))))
        return None
    # The dialog asked about the name as typed; the suffix added since may name a file there.
    if target != Path(path) and target.exists():
        yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
        asked = QMessageBox.question(
            parent, title, literal(tr("dialog.replace_file", path=str(target))), yes | no, no
        )
        if asked != yes:
            return None
    return target


def _same_file(a: Path, b: Path) -> bool:
    """Whether both name one existing file (by case-folding or a link too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def write_error_text(target: Path, error: Exception) -> str:
    """A failed save, in the UI language: the file and the system's reason."""
    if isinstance(error, OSError):
        return tr("dialog.cannot_write", path=str(target), detail=error.strerror or error)
    return error_text(error)
