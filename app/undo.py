"""Undo/redo of review decisions over an `EditSession`, and of speaker names (QUndoStack commands).

Each command moves the session to a state it was in: the session saves every move to the store
at once, so undo and redo are autosaved too. A failed save (full or read-only disk) leaves the
change in effect in memory; the command reports the `StoreError` through `on_saved` and the next
change saves everything. A save refused because the transcript was deleted elsewhere
(TranscriptNotFound) or changed elsewhere is reported the same way: the page closes or reloads it.

Many commands moved at once ("fix all occurrences", and "undo all" after it: `push_each`,
`undo_to`) replay the history and save it once for all of them, not once a command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from weakref import WeakSet

from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.library.review import EditOp
from engine.library.store import EditSession, StoreError, TranscriptNotFound

from .i18n import Message

__all__ = [
    "EditCommand",
    "HeadCommand",
    "RenameSpeakerCommand",
    "push_each",
    "retranslate",
    "undo_to",
]

# Called after every change with the save error, or None when everything is saved.
Saved = Callable[[StoreError | TranscriptNotFound | None], None]

# Sessions whose commands move only their edits and head, till `_one_save` ends.
_deferred: WeakSet[EditSession] = WeakSet()


def _move(session: EditSession, ops: Sequence[EditOp], head: int, on_saved: Saved) -> None:
    """Put `session` at `head` of `ops` (replayed and saved), and report the save. Inside
    `_one_save`, set its edits and head only."""
    if session in _deferred:
        session.ops, session.head = list(ops), head
        return
    try:
        session.restore(ops, head)
    except (StoreError, TranscriptNotFound) as e:
        on_saved(e)
        return
    on_saved(None)


@contextmanager
def _one_save(session: EditSession, on_saved: Saved) -> Iterator[None]:
    """Commands of `session` moved inside set its edits and head only (its segments are stale
    till the end: nothing inside may read them); the state they leave is replayed and saved
    once, at the end. One replay and save a command cost 30 s for 100 places on a 3-hour
    transcript."""
    _deferred.add(session)
    try:
        yield
    finally:
        _deferred.discard(session)
        _move(session, session.ops, session.head, on_saved)


def push_each(
    stack: QUndoStack,
    session: EditSession,
    ops: Sequence[EditOp],
    texts: Sequence[Message],
    on_saved: Saved,
) -> None:
    """Make `ops`, each its own undo step worded by its text of `texts`, and save them once."""
    with _one_save(session, on_saved):
        for op, text in zip(ops, texts, strict=True):
            stack.push(EditCommand(session, op, text, on_saved))


def undo_to(stack: QUndoStack, index: int, session: EditSession, on_saved: Saved) -> None:
    """Undo `stack` back to `index` and save once. The history is left as one undo a command
    leaves it: the edits undone stay in it beyond the head (History… lists them and can revert
    to them), and their commands can redo them."""
    with _one_save(session, on_saved):
        stack.setIndex(index)


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

    def redo(self) -> None:
        _move(self.session, self._ops, self._after, self._on_saved)

    def undo(self) -> None:
        _move(self.session, self._ops, self._before, self._on_saved)


class EditCommand(_Worded):
    """One edit made after the session's first `head` edits, one undo step: a decision
    (accept, fix, alternative), or one place "fix all occurrences" changed (`push_each`).
    Undo returns to the first `head` edits, redo makes the edit again after them.

    A linear stack redoes a command from the state it was made in, so only the edits in effect
    matter; it keeps no copy of the others (a long review makes thousands of decisions)."""

    def __init__(self, session: EditSession, op: EditOp, text: Message, on_saved: Saved) -> None:
        super().__init__(text)
        self.session = session
        self.op = op
        self._head = session.head
        self._on_saved = on_saved

    def redo(self) -> None:
        session, head = self.session, self._head
        if session.ops[head : head + 1] == [self.op]:
            _move(session, session.ops, head + 1, self._on_saved)
        else:  # the first time, or after an undo brought other edits back
            _move(session, [*session.ops[:head], self.op], head + 1, self._on_saved)

    def undo(self) -> None:
        _move(self.session, self.session.ops, self._head, self._on_saved)


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
