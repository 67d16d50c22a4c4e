"""Undo/redo of review decisions over an `EditSession`, and of speaker names (QUndoStack commands).

Each command moves the session to a state it was in: the session saves every move to the store
at once, so undo and redo are autosaved too. A failed save (full or read-only disk) leaves the
change in effect in memory; the command reports the `StoreError` through `on_saved` and the next
change saves everything. A save refused because the transcript was deleted elsewhere
(TranscriptNotFound) or changed elsewhere is reported the same way: the page closes or reloads it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.library.review import EditOp
from engine.library.store import EditSession, StoreError, TranscriptNotFound

from .i18n import Message

__all__ = ["EditCommand", "HeadCommand", "RenameSpeakerCommand", "retranslate"]

# Called after every change with the save error, or None when everything is saved.
Saved = Callable[[StoreError | TranscriptNotFound | None], None]


class _Worded(QUndoCommand):
    """A command whose text (what Undo names) is worded again in a new UI language."""

    def __init__(self, text: Message) -> None:
        super().__init__(text())
        self._text = text

    def retranslate(self) -> None:
        self.setText(self._text())


def retranslate(stack: QUndoStack) -> None:
    """Word every command of `stack` in the UI language (after a switch)."""
    for i in range(stack.count()):
        command = stack.command(i)
        if isinstance(command, _Worded):
            command.retranslate()


class HeadCommand(_Worded):
    """Move the session to `head` of its edits in effect (e.g. 0: back to the model's output).

    It keeps the session's edits as they are now: an edit made after it drops those beyond the
    head, and undoing down to this command must bring them back."""

    def __init__(self, session: EditSession, head: int, text: Message, on_saved: Saved) -> None:
        super().__init__(text)
        self.session = session
        self._ops = tuple(session.ops)
        self._before = session.head
        self._after = head
        self._on_saved = on_saved

    def _move(self, ops: tuple[EditOp, ...], head: int) -> None:
        try:
            self.session.restore(ops, head)
        except (StoreError, TranscriptNotFound) as e:
            self._on_saved(e)
            return
        self._on_saved(None)

    def redo(self) -> None:
        self._move(self._ops, self._after)

    def undo(self) -> None:
        self._move(self._ops, self._before)


class EditCommand(_Worded):
    """Edits made after the session's first `head` edits, one undo step: a decision (accept,
    fix, alternative), or every place "fix all occurrences" changed, undone together as an
    editor undoes a Replace All (one command a place replayed the history and saved it once
    a place: 30 s for 100 places, and 100 undos to take them back). Undo returns to the first
    `head` edits, redo makes these again after them; the history keeps one edit a place.

    A linear stack redoes a command from the state it was made in, so only the edits in effect
    matter; it keeps no copy of the others (a long review makes thousands of decisions)."""

    def __init__(
        self, session: EditSession, ops: Sequence[EditOp], text: Message, on_saved: Saved
    ) -> None:
        super().__init__(text)
        self.session = session
        self.ops = tuple(ops)
        self._head = session.head
        self._on_saved = on_saved

    def _move(self, move: Callable[[], None]) -> None:
        try:
            move()
        except (StoreError, TranscriptNotFound) as e:
            self._on_saved(e)
            return
        self._on_saved(None)

    def redo(self) -> None:
        session, head = self.session, self._head
        after = head + len(self.ops)
        if tuple(session.ops[head:after]) == self.ops:
            self._move(lambda: session.restore(session.ops, after))
        else:  # the first time, or after an undo brought other edits back
            self._move(lambda: session.restore([*session.ops[:head], *self.ops], after))

    def undo(self) -> None:
        self._move(lambda: self.session.restore(self.session.ops, self._head))


class RenameSpeakerCommand(_Worded):
    """Call a speaker `after` everywhere in a transcript (empty: its default name); undo gives
    back `before`. `rename(speaker, name)` does the renaming, wherever the transcript lives: a
    review session (which saves it), or the Transcript page's document and the library."""

    def __init__(
        self,
        rename: Callable[[int, str], None],
        speaker: int,
        before: str,
        after: str,
        text: Message,
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
