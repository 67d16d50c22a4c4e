"""Undo/redo of review decisions and speaker names (QUndoStack commands) over an `EditSession`.

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
    """Call a speaker `name` everywhere in the transcript (empty: its default name); undo
    gives back the name it had. `on_saved` follows every change, as for edits."""

    def __init__(
        self, session: EditSession, speaker: int, name: str, text: str, on_saved: Saved
    ) -> None:
        super().__init__(text)
        self.session = session
        self.speaker = speaker
        self._before = session.speaker_names.get(speaker, "")
        self._after = name.strip()
        self._on_saved = on_saved

    def _name(self, name: str) -> None:
        try:
            self.session.rename_speaker(self.speaker, name)
        except StoreError as e:
            self._on_saved(e)
            return
        self._on_saved(None)

    def redo(self) -> None:
        self._name(self._after)

    def undo(self) -> None:
        self._name(self._before)
