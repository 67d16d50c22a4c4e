"""The transcript view: characters colored by confidence, the streaming tail in a lighter style.

`TranscriptView` shows one document at a time. Committed characters only ever get appended (so
a long live recording costs O(new characters) per update); the unstable tail at the end is
replaced on each update. Every committed character keeps its index in `chars`, which is what
the review mode builds on (`char_clicked`, `select_chars`). A character's punctuation mark
(`Char.after`) is drawn right after it in the plain text color: it belongs to no confidence
band, is never one of `chars`, and hit testing and selection skip it.

Speakers: a finished segment whose speaker (`Segment.speaker`) differs from the one before
starts with a bold label, its speaker's name and a colon (说话人 1：). Like a mark, a label is
text in the document but never one of `chars`: the positions in `_starts` step over it, so
coloring, hit testing, selection and review replacements are unaffected. Its characters carry
the speaker's number as a format property, which is how a label is found again (a click on it
asks to rename the speaker, `set_speaker_names` rewrites every label). Speakers are told apart
by name, as the TXT export does: a label whose name is the previous label's (two voices the user
gave one name) is a zero-width space, so the turn reads on and the label is there to be shown
again when a rename tells them apart.

Positions in the document count UTF-16 units, as Qt does: a character outside the Basic
Multilingual Plane (𠮷, 😀, in a name or a transcript) takes two, so every length added to a
position is `_units`, never `len`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import accumulate

from PySide6.QtCore import QEvent, QPoint, QSignalBlocker, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QFont,
    QKeySequence,
    QPainter,
    QTextBlock,
    QTextCharFormat,
    QTextCursor,
    QTextFormat,
    QUndoGroup,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QTextEdit,
    QToolTip,
    QWidget,
)

from engine.results import Char, Segment, speaker_name

from .confidence import BAND_COLORS, DEFAULT_THRESHOLD, LOW_BACKGROUND, Bands, char_tooltip
from .confidence import tail_color as _tail_color
from .fonts import cjk_font
from .i18n import Message, tr
from .plain import literal

__all__ = ["ConfidenceBar", "TranscriptView", "ask_speaker_name", "start_hint"]

# Format property holding the speaker number on the characters of a speaker label.
_SPEAKER = QTextFormat.Property.UserProperty + 1
_LABEL_COLOR = "#37474f"  # labels: dark slate, apart from the confidence bands
_HIDDEN_LABEL = "\u200b"  # the label of a turn whose speaker has the previous one's name


class TranscriptView(QTextEdit):
    """Read-only rich text of `Char`s; hover shows confidence, time and alternatives."""

    # Index into `chars` of a committed character the user clicked.
    char_clicked = Signal(int)
    # A speaker (Segment.speaker) whose label was clicked or whose "Rename" menu item was
    # chosen: the page showing the view asks for the name and applies it.
    speaker_rename_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None, *, empty_hint: Message | None = None) -> None:
        """`empty_hint`: what to do, shown in grey while the view is empty (the page the app
        opens on was a blank box); None shows nothing (Review says what to do itself)."""
        super().__init__(parent)
        self._empty_hint = empty_hint
        self.retranslate()
        self.setReadOnly(True)
        # No undo history for the document: the user cannot edit it, what they change
        # (speaker names, review fixes) is undone through the app's QUndoStack, and the
        # document's own history kept one step per character shown.
        self.document().setUndoRedoEnabled(False)
        self.setFont(cjk_font(point_size=16))
        self.viewport().setMouseTracking(True)
        self._bands = Bands(DEFAULT_THRESHOLD)
        self._chars: list[Char] = []  # committed, in order
        self._starts: list[int] = []  # document position of each committed character
        self._committed_end = 0  # document position after the last committed character
        self._tail: tuple[Char, ...] = ()
        self._open_paragraph = False  # committed characters since the last segment break
        self._speaker_names: dict[int, str] = {}  # names given to speakers (by number)
        self._last_speaker: int | None = None  # speaker of the last segment appended
        self._labelled_speaker: int | None = None  # speaker of the last label
        self._undo_stack: QUndoStack | QUndoGroup | None = None  # set_undo_stack

    def retranslate(self) -> None:
        """The empty view's hint (`hint`) in the UI language."""
        self.hint = self._empty_hint() if self._empty_hint else ""
        self.viewport().update()

    def paintEvent(self, event) -> None:
        """The hint, in grey, wrapped to the view, while nothing is in the document: gone
        with the first character, back after `clear` (Qt's placeholder is one line, cut)."""
        super().paintEvent(event)
        if self.hint and self.document().isEmpty():
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            margin = round(self.document().documentMargin())
            rect = self.viewport().rect().adjusted(margin, margin, -margin, -margin)
            painter.drawText(rect, Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap, self.hint)
            painter.end()

    # ---- content -------------------------------------------------------------------------
    @property
    def chars(self) -> Sequence[Char]:
        return self._chars

    @property
    def tail(self) -> tuple[Char, ...]:
        return self._tail

    def clear(self) -> None:
        super().clear()
        self._chars.clear()
        self._starts.clear()
        self._committed_end = 0
        self._tail = ()
        self._open_paragraph = False
        self._last_speaker = None
        self._labelled_speaker = None

    def set_segments(
        self, segments: Iterable[Segment], speaker_names: Mapping[int, str] | None = None
    ) -> None:
        """Show finished segments, one paragraph each (file results, a reopened transcript);
        `speaker_names`: the names given to its speakers (default: those set before)."""
        self.clear()
        if speaker_names is not None:
            self._speaker_names = dict(speaker_names)
        with self._one_edit():
            for segment in segments:
                self.append_segment(segment)
        self._scroll_to_end()

    def append_segment(self, segment: Segment) -> None:
        """Append a finished segment as its own paragraph, after its speaker's label when the
        speaker changes there."""
        if segment.chars:
            if segment.speaker is not None and segment.speaker != self._last_speaker:
                cursor = QTextCursor(self.document())
                cursor.setPosition(self._committed_end)  # before the tail, which goes below
                text = self._label_text(segment.speaker, self._labelled_speaker)
                cursor.insertText(text, _label_format(segment.speaker))
                self._committed_end = cursor.position()
                self._labelled_speaker = segment.speaker
            self._last_speaker = segment.speaker
        self.apply_update(segment.chars, ())
        self.end_segment()

    # ---- speakers ------------------------------------------------------------------------
    @property
    def speaker_names(self) -> dict[int, str]:
        return dict(self._speaker_names)

    def speaker_label(self, speaker: int) -> str:
        """What a speaker is called in this transcript (its name, else 说话人 N)."""
        return speaker_name(speaker, self._speaker_names)

    def _label_text(self, speaker: int, before: int | None = None) -> str:
        """The label of a turn of `speaker` after one of `before` (None: the first turn)."""
        name = self.speaker_label(speaker)
        if before is not None and self.speaker_label(before) == name:
            return _HIDDEN_LABEL
        return f"{name}："

    def speaker_labels(self) -> list[tuple[int, str]]:
        """(speaker, label text) of every label, in document order (for tests, tools)."""
        return [(sp, self._label_text_at(pos, n)) for pos, n, sp in self._labels()]

    def _label_text_at(self, pos: int, length: int) -> str:
        cursor = QTextCursor(self.document())
        cursor.setPosition(pos)
        cursor.setPosition(pos + length, QTextCursor.MoveMode.KeepAnchor)
        return cursor.selectedText()

    def _labels(self) -> Iterator[tuple[int, int, int]]:
        """(position, length, speaker) of every label, in document order."""
        block = self.document().begin()
        while block.isValid():
            label = _block_label(block)
            if label is not None:
                yield label
            block = block.next()

    def set_speaker_names(self, names: Mapping[int, str]) -> None:
        """Call the speakers by `names` (a speaker left out: 说话人 N) in every label; the
        characters keep their indexes, and their positions step over the new labels."""
        self._speaker_names = dict(names)
        labels = list(self._labels())
        if not labels:
            return
        cursor = QTextCursor(self.document())
        cursor.beginEditBlock()
        befores = [None, *(sp for _, _, sp in labels[:-1])]
        texts = [self._label_text(sp, b) for (_, _, sp), b in zip(labels, befores, strict=True)]
        for (pos, length, speaker), text in zip(reversed(labels), reversed(texts), strict=True):
            # last first: earlier positions hold
            cursor.setPosition(pos)
            cursor.setPosition(pos + length, QTextCursor.MoveMode.KeepAnchor)
            cursor.insertText(text, _label_format(speaker))
        cursor.endEditBlock()
        # Each position moves by what the labels before it grew by.
        at = [pos for pos, _, _ in labels]
        grown = [0, *accumulate(_units(t) - n for (_, n, _), t in zip(labels, texts, strict=True))]
        self._starts = [p + grown[bisect_left(at, p)] for p in self._starts]
        self._committed_end += grown[bisect_left(at, self._committed_end)]

    def speaker_at(self, point: QPoint) -> int | None:
        """The speaker whose label is under viewport point `point`, else None."""
        pos = self.cursorForPosition(point).position()
        label = _block_label(self.document().findBlock(pos))
        if label is None:
            return None
        start, length, speaker = label
        for candidate in (pos - 1, pos):
            if start <= candidate < start + length and self._box_contains(candidate, point):
                return speaker
        return None

    def speaker_of(self, pos: int) -> int | None:
        """The speaker of the text at document position `pos`: that of the last label at or
        before it; None when no label comes before it."""
        block = self.document().findBlock(pos)
        while block.isValid():
            label = _block_label(block)
            if label is not None:
                return label[2]
            block = block.previous()
        return None

    def apply_update(self, committed: Sequence[Char], tail: Sequence[Char]) -> None:
        """Append newly committed characters and replace the unstable tail."""
        with self._one_edit() as cursor:
            cursor.setPosition(self._committed_end)
            cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
            cursor.removeSelectedText()
            for char in committed:
                self._starts.append(cursor.position())
                self._chars.append(char)
                self._insert(cursor, char)
            self._open_paragraph = self._open_paragraph or bool(committed)
            self._committed_end = cursor.position()
            self._tail = tuple(tail)
            for char in self._tail:  # with its space or mark (Whisper's "Deep Learning")
                cursor.insertText(char.text + char.after, self._format(char, tail=True))
        self._scroll_to_end()

    @contextmanager
    def _one_edit(self) -> Iterator[QTextCursor]:
        """A cursor whose edits the document takes as one, laid out once at the end: laid
        out after each character, a 3 000-segment transcript took seconds to show."""
        cursor = QTextCursor(self.document())
        cursor.beginEditBlock()
        try:
            yield cursor
        finally:
            cursor.endEditBlock()

    def _insert(self, cursor: QTextCursor, char: Char) -> None:
        """A committed character at the cursor, then its mark."""
        cursor.insertText(char.text, self._format(char, tail=False))
        if char.after:
            cursor.insertText(char.after, _mark_format())

    def set_marks(self, first: int, chars: Sequence[Char]) -> None:
        """Give committed characters first, first+1, … the marks of `chars` (the same
        characters with `Char.after` set: a live segment once it is punctuated)."""
        shift = 0
        cursor = QTextCursor(self.document())
        for k, new in enumerate(chars):
            i = first + k
            if i >= len(self._chars):
                break
            old = self._chars[i]
            self._starts[i] += shift
            self._chars[i] = new
            if new.after == old.after:
                continue
            end = self._starts[i] + _units(old.text)
            cursor.setPosition(end)
            cursor.setPosition(end + _units(old.after), QTextCursor.MoveMode.KeepAnchor)
            cursor.insertText(new.after, _mark_format())
            shift += _units(new.after) - _units(old.after)
        for i in range(first + len(chars), len(self._starts)):
            self._starts[i] += shift
        self._committed_end += shift

    def end_segment(self, chars_before: int | None = None) -> None:
        """Start a new paragraph after the first `chars_before` committed characters (default:
        all of them). Streaming commits may already hold characters from after the pause that
        ended the segment; they move to the new paragraph."""
        n = len(self._chars) if chars_before is None else chars_before
        if n == len(self._chars) and not self._open_paragraph:
            return
        if n == 0 or (n < len(self._chars) and self._starts[n] == self._block_start(n)):
            return  # already at a paragraph start
        pos = self._committed_end if n == len(self._chars) else self._starts[n]
        cursor = QTextCursor(self.document())
        cursor.setPosition(pos)
        cursor.insertBlock()
        for i in range(n, len(self._starts)):
            self._starts[i] += 1
        self._committed_end += 1
        self._open_paragraph = n < len(self._chars)

    def _block_start(self, index: int) -> int:
        return self.document().findBlock(self._starts[index]).position()

    def replace_chars(self, first: int, count: int, chars: Sequence[Char]) -> None:
        """Put `chars` in place of committed characters first..first+count-1 (a live
        segment's final text in place of its streamed text, engine.twopass), colored by
        their own confidences. What follows keeps its look and paragraphs; the scroll
        position stays (or keeps following the end) and the user's cursor stays on the same
        text. With count 0 they are inserted as a paragraph of their own before `first`."""
        bar = self.verticalScrollBar()
        scroll, following = bar.value(), bar.value() >= bar.maximum() - 4
        start = self._starts[first] if first < len(self._starts) else self._committed_end
        end = self._char_end(first + count - 1) if count else start
        cursor = QTextCursor(self.document())
        cursor.beginEditBlock()
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        if not count and chars and cursor.block().position() != cursor.position():
            cursor.insertBlock()
        starts = []
        for char in chars:
            starts.append(cursor.position())
            self._insert(cursor, char)
        if not count and chars:
            cursor.insertBlock()
        cursor.endEditBlock()
        shift = cursor.position() - end
        self._starts[first : first + count] = starts
        self._chars[first : first + count] = chars
        for i in range(first + len(chars), len(self._starts)):
            self._starts[i] += shift
        self._committed_end += shift
        bar.setValue(bar.maximum() if following else scroll)

    def _char_end(self, i: int) -> int:
        """Document position after committed character `i` (and its mark)."""
        return self._starts[i] + _units(self._chars[i].text) + _units(self._chars[i].after)

    # ---- coloring ------------------------------------------------------------------------
    @property
    def threshold(self) -> float:
        return self._bands.threshold

    def set_threshold(self, threshold: float) -> None:
        """Recolor every character for a new doubt threshold (one edit block, one format call
        per run of same-band characters: a 20 000-character transcript recolors at once)."""
        self._bands = Bands(threshold)
        cursor = QTextCursor(self.document())
        cursor.beginEditBlock()
        for start, end, char in self._band_runs():
            cursor.setPosition(start)
            cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
            cursor.setCharFormat(self._format(char, tail=False))
        cursor.endEditBlock()
        self.apply_update((), self._tail)

    def _band_runs(self) -> Iterator[tuple[int, int, Char]]:
        """(start, end, first char) of each stretch of adjacent same-band characters."""
        run_start, run_char, run_end = None, None, 0
        for pos, char in zip(self._starts, self._chars, strict=True):
            same = run_char is not None and pos == run_end
            if same and self._bands.band(char.confidence) == self._bands.band(run_char.confidence):
                run_end = pos + _units(char.text)
                continue
            if run_char is not None:
                yield run_start, run_end, run_char
            run_start, run_char, run_end = pos, char, pos + _units(char.text)
        if run_char is not None:
            yield run_start, run_end, run_char

    def _format(self, char: Char, *, tail: bool) -> QTextCharFormat:
        fmt = QTextCharFormat()
        band = self._bands.band(char.confidence)
        color = BAND_COLORS[band]
        if tail:
            fmt.setForeground(QColor(_tail_color(color)))
            fmt.setFontItalic(True)
        else:
            fmt.setForeground(QColor(color))
            if band == "low":
                fmt.setBackground(QColor(LOW_BACKGROUND))
        return fmt

    def char_format(self, index: int) -> QTextCharFormat:
        """The format the document holds for committed character `index` (for tests, review)."""
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._starts[index] + 1)
        return cursor.charFormat()

    def tail_format(self, index: int) -> QTextCharFormat:
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._tail_starts()[index] + 1)
        return cursor.charFormat()

    def _tail_starts(self) -> list[int]:
        """Document position of each character of the tail."""
        units = (_units(c.text + c.after) for c in self._tail)
        return list(accumulate(units, initial=self._committed_end))[:-1]

    # ---- selection (for review) ----------------------------------------------------------
    def select_chars(self, first: int, last: int) -> None:
        """Select committed characters first..last inclusive and scroll them into view."""
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._starts[first])
        end = self._starts[last] + _units(self._chars[last].text)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(cursor)
        self.ensureCursorVisible()

    # ---- hit testing ---------------------------------------------------------------------
    def char_point(self, index: int) -> QPoint:
        """The viewport point at the middle of committed character `index` (for pointers,
        popups and tests)."""
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._starts[index])
        left = self.cursorRect(cursor)
        cursor.setPosition(self._starts[index] + _units(self._chars[index].text))
        right = self.cursorRect(cursor)
        return QPoint((left.left() + right.left()) // 2, left.center().y())

    def char_at(self, point: QPoint) -> tuple[Char, int | None] | None:
        """The character under viewport point `point`: (char, committed index or None for the
        tail), or None between characters."""
        pos = self.cursorForPosition(point).position()
        for candidate in (pos - 1, pos):
            hit = self._char_at_position(candidate)
            if hit is not None and self._box_contains(candidate, point):
                return hit
        return None

    def _char_at_position(self, pos: int) -> tuple[Char, int | None] | None:
        i = bisect_left(self._starts, pos)
        if i < len(self._starts) and self._starts[i] == pos:
            return self._chars[i], i
        starts = self._tail_starts()
        i = bisect_left(starts, pos)
        if i < len(starts) and starts[i] == pos:
            return self._tail[i], None
        return None

    def _box_contains(self, pos: int, point: QPoint) -> bool:
        cursor = QTextCursor(self.document())
        cursor.setPosition(pos)
        left = self.cursorRect(cursor)
        cursor.setPosition(pos + 1)
        right = self.cursorRect(cursor)
        same_line = left.top() == right.top()
        return (
            same_line
            and left.left() <= point.x() < right.left()
            and left.contains(QPoint(left.left(), point.y()))
        )

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            hit = self.char_at(event.pos())
            if hit is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(event.globalPos(), literal(char_tooltip(hit[0])), self.viewport())
            return True
        return super().viewportEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and not self.textCursor().hasSelection():
            point = event.position().toPoint()
            speaker = self.speaker_at(point)
            if speaker is not None:
                self.speaker_rename_requested.emit(speaker)
                return
            hit = self.char_at(point)
            if hit is not None and hit[1] is not None:
                self.char_clicked.emit(hit[1])

    def set_undo_stack(self, stack: QUndoStack | QUndoGroup) -> None:
        """Undo and redo of `stack` (what was changed here: speaker names; a group: its active
        stack, the shown document's) on Ctrl+Z and Ctrl+Shift+Z while the view has the focus,
        and in its menu while there is something to undo or redo."""
        self._undo_stack = stack
        for key, slot in ((QKeySequence.StandardKey.Undo, stack.undo),
                          (QKeySequence.StandardKey.Redo, stack.redo)):  # fmt: skip
            act = QAction(self)
            act.setShortcuts(key)
            act.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            act.triggered.connect(slot)
            self.addAction(act)

    def context_menu(self, point: QPoint) -> QMenu:
        """The standard menu, "Rename speaker…" for the speaker of the text at `point`, and
        undo/redo of the last renaming."""
        menu = self.createStandardContextMenu(point)
        speaker = self.speaker_of(self.cursorForPosition(point).position())
        if speaker is not None:
            menu.addSeparator()
            rename = menu.addAction(tr("action.rename_speaker", name=self.speaker_label(speaker)))
            rename.setObjectName("rename-speaker")
            rename.triggered.connect(lambda: self.speaker_rename_requested.emit(speaker))
        stack = self._undo_stack
        if stack is not None and (stack.canUndo() or stack.canRedo()):
            menu.addSeparator()
            for name, can, text, slot in (
                ("undo-rename", stack.canUndo(), stack.undoText(), stack.undo),
                ("redo-rename", stack.canRedo(), stack.redoText(), stack.redo),
            ):
                if can:
                    act = menu.addAction(tr(f"action.{name}", what=text))
                    act.setObjectName(name)
                    act.triggered.connect(slot)
        return menu

    def contextMenuEvent(self, event) -> None:
        menu = self.context_menu(event.pos())
        menu.exec(event.globalPos())
        menu.deleteLater()

    def _scroll_to_end(self) -> None:
        bar = self.verticalScrollBar()
        if bar.value() >= bar.maximum() - 4:  # follow the text unless the user scrolled up
            bar.setValue(bar.maximum())


def start_hint() -> str:
    """The Transcript page's `empty_hint`: record, or drop or open files (the window takes
    drops, and nothing said so)."""
    return tr("transcript.start_hint", record=tr("action.record"), open=tr("action.open"))


def ask_speaker_name(parent: QWidget, current: str) -> str | None:
    """The name the user gives a speaker now called `current` (stripped; empty: back to its
    default name), or None when they cancel."""
    name, ok = QInputDialog.getText(
        parent,
        tr("dialog.rename_speaker"),
        literal(tr("dialog.speaker_name", name=current)),
        text=current,
    )
    return name.strip() if ok else None


def _label_format(speaker: int) -> QTextCharFormat:
    """A speaker label: bold, its own color, the speaker's number as a property."""
    fmt = QTextCharFormat()
    fmt.setFontWeight(QFont.Weight.Bold)
    fmt.setForeground(QColor(_LABEL_COLOR))
    fmt.setProperty(_SPEAKER, speaker)
    return fmt


def _block_label(block: QTextBlock) -> tuple[int, int, int] | None:
    """(position, length, speaker) of the label a paragraph starts with, or None."""
    if not block.isValid():
        return None
    # (textFormats, not a fragment iterator: `block.begin()` hung once pyqtgraph was imported)
    first = next((r for r in block.textFormats() if r.start == 0), None)
    if first is None or not first.format.hasProperty(_SPEAKER):
        return None
    return block.position(), first.length, first.format.intProperty(_SPEAKER)


def _units(text: str) -> int:
    """How many document positions `text` takes: its UTF-16 code units (Qt's), not its
    code points (Python's len); 😀 is two."""
    return len(text.encode("utf-16-le")) // 2


def _mark_format() -> QTextCharFormat:
    """Punctuation marks: the plain text color, no band."""
    fmt = QTextCharFormat()
    fmt.setForeground(QColor(BAND_COLORS["high"]))
    return fmt


class ConfidenceBar(QWidget):
    """The legend of the three bands and the doubt-threshold box.

    `threshold_changed` reports a value the user committed (Enter, leaving the box, an arrow
    step), not every digit typed on the way: each change recolors a whole transcript.
    `set_threshold` shows a value decided elsewhere (the settings) without reporting it back.
    """

    threshold_changed = Signal(float)

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        self._label = QLabel()
        self.spin = QDoubleSpinBox()
        self.spin.setRange(0.0, 1.0)
        self.spin.setSingleStep(0.05)
        self.spin.setDecimals(2)
        self.spin.setValue(threshold)
        self.spin.setKeyboardTracking(False)  # valueChanged on commit, not per keystroke
        self._swatches = {band: QLabel() for band in ("high", "medium", "low", "tail")}
        self._label.setBuddy(self.spin)  # the box's accessible name
        layout.addWidget(self._label)
        layout.addWidget(self.spin)
        for swatch in self._swatches.values():
            layout.addWidget(swatch)
        layout.addStretch(1)
        self.spin.valueChanged.connect(self._changed)
        self.retranslate()

    @property
    def threshold(self) -> float:
        return self.spin.value()

    def set_threshold(self, value: float) -> None:
        """Show `value` (box and legend) without emitting `threshold_changed`."""
        with QSignalBlocker(self.spin):
            self.spin.setValue(value)
        self.retranslate()

    def _changed(self, value: float) -> None:
        self.retranslate()
        self.threshold_changed.emit(value)

    def retranslate(self) -> None:
        bands = Bands(self.spin.value())
        self._label.setText(tr("label.threshold"))
        texts = {
            "high": tr("legend.high", value=bands.high),
            "medium": tr("legend.medium", low=bands.threshold, high=bands.high),
            "low": tr("legend.low", value=bands.threshold),
            "tail": tr("legend.tail"),
        }
        for band, label in self._swatches.items():
            color = _tail_color(BAND_COLORS["high"]) if band == "tail" else BAND_COLORS[band]
            style = "font-style: italic;" if band == "tail" else ""
            if band == "low":
                style += f"background: {LOW_BACKGROUND};"
            label.setText(f"■ {texts[band]}")
            label.setStyleSheet(f"color: {color}; {style}")
