"""Undo/redo of review decisions over an `EditSession`, and of speaker names (QUndoStack commands).

Each command moves the session's head: the session saves every move to the store at once, so
undo and redo are autosaved too. A failed save (full or read-only disk) leaves the change in
effect in memory; the command reports the `StoreError` through `on_saved` and the next change
saves everything.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand

from engine.library.review import EditOp
from engine.library.store import EditSession, StoreError

__all__ = ["EditCommand", "HeadCommand", "RenameSpeakerCommand"]

# Called after every change with the save error, or None when everything is saved.
Saved = Callable[[StoreError | None], None]


class HeadCommand(QUndoCommand):
    """Move the session to `head` edits in effect (e.g. 0: back to the model's output)."""

    def __init__(self, session: EditSession, head: int, text: str, on_saved: Saved) -> None:
        super().__init__(text)
        self.session = session
        self._before = session.head
        self._after = head
        self._on_saved = on_saved

    def _move(self, head: int) -> None:
        try:
            self.session.set_head(head)
        except StoreError as e:
            self._on_saved(e)
            return
        self._on_saved(None)

    def redo(self) -> None:
        self._move(self._after)

    def undo(self) -> None:
        self._move(self._before)


class EditCommand(HeadCommand):
    """One decision (accept, fix, alternative): the first redo applies it, later ones return
    to it."""

    def __init__(self, session: EditSession, op: EditOp, text: str, on_saved: Saved) -> None:
        super().__init__(session, session.head + 1, text, on_saved)
        self.op = op
        self._applied = False

    def redo(self) -> None:
        if self._applied:
            super().redo()
            return
        self._applied = True
        try:
            self.session.apply(self.op)
        except StoreError as e:
            self._on_saved(e)
            return
        self._on_saved(None)


class RenameSpeakerCommand(QUndoCommand):
    """Call a speaker `after` everywhere in a transcript (empty: its default name); undo gives
    back `before`. `rename(speaker, name)` does the renaming, wherever the transcript lives: a
    review session (which saves it), or the Transcript page's document and the library."""

    def __init__(
        self, rename: Callable[[int, str], None], speaker: int, before: str, after: str, text: str
    ) -> None:
        super().__init__(text)
        self._rename = rename
        self.speaker = speaker
        self._before = before
        self._after = after.strip()

    def redo(self) -> None:
        self._rename(self.speaker, self._after)

    def undo(self) -> None:
        self._rename(self.speaker, self._before)
