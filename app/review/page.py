"""The review mode: walk the doubtful spans of one transcript with the keyboard alone.

Keys (the panel's `KEYS`): next / previous span, play the span with context, accept it as
correct, type a fix and press Enter, or pick one of the model's alternatives with Alt+digit.
Any stretch, checked or not, can be put in hand again (select it, then "Check again").
Every decision is an undoable command (app.undo) saved to the store as it is made. Which spans
are doubtful, their order, the audio window and the time estimate come from `engine.review`;
this widget only shows them and forwards decisions.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QRect, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QFontMetrics,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QTextCursor,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from engine.audio import SAMPLE_RATE, AudioError
from engine.library import corrections, review, script
from engine.library.review import DoubtfulSpan, EditOp, ReviewOptions
from engine.library.store import EditSession, Store, StoreError, TranscriptNotFound
from engine.punctuation import is_mark, split_marks
from engine.results import Alternative, Char, speaker_name, tidy_speaker_name

from ..errors import error_text
from ..i18n import LiveText, Message, tr
from ..plain import literal, plain
from ..savedialog import ask_save_path, write_error_text
from ..settings import Settings
from ..transcript import ConfidenceBar, ask_speaker_name
from ..undo import (
    EditCommand,
    HeadCommand,
    RenameSpeakerCommand,
    push_each,
    retranslate,
    undo_to,
)
from ..worker import DatasetRequest
from . import strings  # noqa: F401  (registers the strings used below)
from .strings import format_duration  # the time left, in the UI language's units
from .view import ReviewView, SpanWaveform

__all__ = ["KEYS", "FixBox", "ReviewPanel", "format_duration", "stored_script", "to_stored"]

# Shortcuts of the review flow; none collides with the main window's (Ctrl+R/P/E/O/S/Q/M/J),
# nor with a key a line edit takes (Ctrl+H is Qt's Replace, which no line edit handles).
KEYS = {
    "next": "Ctrl+Down",
    "previous": "Ctrl+Up",
    "play": "Ctrl+L",
    "accept": "Ctrl+Return",
    "undo": "Ctrl+Z",
    "redo": "Ctrl+Shift+Z",
    "slower": "Ctrl+[",
    "faster": "Ctrl+]",
    "fix_all": "Ctrl+Shift+F",
    "history": "Ctrl+H",
    "copy": "Ctrl+Shift+C",
    "make_dataset": "Ctrl+Shift+D",
    "check_again": "Ctrl+Shift+R",
}
MAX_ALTERNATIVES = 9  # Alt+1 … Alt+9
_KEY_HINTS = {"fix": "Enter"}
# Buttons of occasional actions: beside the status line, their keys in the tooltip only. In the
# row of every span's decision, with the keys, they widened the page past a 1024 px screen.
_OCCASIONAL = ("history", "export", "copy", "make_dataset")
_MIN_TEXT_LINES = 4  # transcript lines kept in view however small the window
_SPAN_LINES = 3  # lines the span and its choices take at most (nine choices, `_around`)
# Characters shown either side of what a choice changes in a long span ("…" beyond them).
_CHOICE_CONTEXT = 2
_RECOLOR_DELAY_MS = 150  # keys handled by the fix box rather than an action
# How much of a term the offer to fix all its occurrences shows, and the message after it: as
# wide as this many CJK characters, its middle left out ("…"). Whole, a 60-character term made
# the button, and so the window, wider than the screen. The tooltip keeps the whole offer.
_TERM_CHARS = 12
# The page's buttons: Tab reaches them, a click leaves the keys in the fix box.
_BUTTON_FOCUS = Qt.FocusPolicy.TabFocus


@dataclass(frozen=True)
class _Offer:
    """What the fix-all button offers at undo index `index` (any other move of the history
    withdraws it): the change of `old` to `new` at the other places, `ops`; or, right after
    they were made, taking them all back to `undo_to`, the index before them."""

    ops: tuple[EditOp, ...]
    old: str
    new: str
    index: int
    undo_to: int | None = None
    fixed: tuple[int, int, int] | None = None  # the stretch just fixed, never offered


@dataclass(frozen=True)
class _Draft:
    """A fix `typed` over `span` (shown as `shown`) and not entered when the user left it."""

    span: DoubtfulSpan
    typed: str
    shown: str


def _elsewhere(error: StoreError | TranscriptNotFound) -> bool:
    """A save refused because another window or tingxie-cli deleted or changed the transcript:
    the session no longer holds what is stored, and saving it again would fail the same way."""
    return isinstance(error, TranscriptNotFound) or error.code == "store.changed_elsewhere"


def marked(texts: Sequence[str], span_chars: Sequence[Char]) -> str:
    """`texts`, one for each of `span_chars`, with the punctuation between them: a span's text
    as it is fixed, so that a fix keeps the marks inside the span (the mark after its last
    character stays anyway, unless the fix types another)."""
    last = len(span_chars) - 1
    return "".join(
        t + (c.after if i < last else "")
        for i, (t, c) in enumerate(zip(texts, span_chars, strict=True))
    )


def _elided(text: str, metrics: QFontMetrics, chars: int = _TERM_CHARS) -> str:
    """`text` as it is shown in a line that must not grow with it: whole when it is as wide
    as `chars` CJK characters or less, else cut to that width in the middle (一二三…八九十)."""
    width = metrics.horizontalAdvance("字" * chars)
    return metrics.elidedText(text, Qt.TextElideMode.ElideMiddle, width)


def _around(choice: str, text: str, context: int = _CHOICE_CONTEXT) -> str:
    """`choice` (a swap in span `text`) as the alternatives line shows it: whole when short,
    else what it changes with `context` characters either side, "…" where cut. Nine whole
    choices of a 20-character span took nine lines: the last ones never showed, their Alt keys
    picking text nobody could read (the line's tooltip lists them whole)."""
    if len(choice) <= _TERM_CHARS:
        return choice
    same = _common(choice, text)
    tail = _common(choice[same:][::-1], text[same:][::-1])
    lo, hi = max(0, same - context), min(len(choice), len(choice) - tail + context)
    return ("…" if lo else "") + choice[lo:hi] + ("…" if hi < len(choice) else "")


def _common(a: str, b: str) -> int:
    """How many characters `a` and `b` start with alike."""
    pairs = enumerate(zip(a, b, strict=False))
    return next((i for i, (x, y) in pairs if x != y), min(len(a), len(b)))


def span_choices(
    span_chars: tuple[Char, ...], limit: int = MAX_ALTERNATIVES, to: script.Script = "original"
) -> list[str]:
    """Whole-span texts with one character swapped for one of its alternatives, most likely
    swap first (so one key verifies the whole span). Each reads differently in the display
    script `to` and from the span itself: 于 and 於 are one choice in Traditional (the likelier
    is kept), and 於 for 于 is none."""
    swaps: list[tuple[float, int, Alternative]] = [
        (a.prob, i, a) for i, c in enumerate(span_chars) for a in c.alternatives if a.text
    ]
    swaps.sort(key=lambda s: -s[0])
    text = [c.text for c in span_chars]
    seen = {script.convert_text(marked(text, span_chars), to)}
    choices = []
    for _, i, alt in swaps:
        candidate = marked([*text[:i], alt.text, *text[i + 1 :]], span_chars)
        shown = script.convert_text(candidate, to)
        if shown not in seen:
            seen.add(shown)
            choices.append(candidate)
    return choices[:limit]


def stored_script(segments: Sequence[Any]) -> script.Script:
    """The script a transcript is stored in (the model's): "traditional" when converting it to
    Simplified changes more characters than converting it to Traditional, else "simplified"."""
    text = "".join(s.text for s in segments)

    def changed(to: script.Script) -> int:
        return sum(a != b for a, b in zip(text, script.convert_text(text, to), strict=False))

    return "traditional" if changed("simplified") > changed("traditional") else "simplified"


def to_stored(typed: str, shown: Sequence[Char], stored: Sequence[Char], to: script.Script) -> str:
    """A fix `typed` over a span displayed as `shown` (`stored` in the transcript), in the
    stored script `to`: each character the user left as shown is its stored original, every
    other one is converted; the punctuation (and a space between Latin words) stays as typed."""
    chars, marks = review.split_typed(typed)
    lead = ""
    for ch in typed:  # marks typed before the first character (apply_edit keeps them)
        if not ch.isspace() and not is_mark(ch):
            break
        lead += ch.strip()
    out = script.convert_pieces(list(chars), to)
    matcher = SequenceMatcher(None, [c.text for c in shown], list(chars), autojunk=False)
    for a, b, n in matcher.get_matching_blocks():
        for k in range(n):
            out[b + k] = stored[a + k].text
    return lead + "".join(c + m for c, m in zip(out, marks, strict=True))


class FixBox(QLineEdit):
    """The fix entry. Undo/redo keys undo its own typing while there is some, and otherwise
    reach the review's undo stack (after a decision the box is refilled, with no history).
    Alt+digit picks an alternative and is never typing: when no action takes it (no such
    alternative, an input method in between) it must not put the digit into the fix."""

    def keyPressEvent(self, event: QKeyEvent) -> None:
        alt = event.modifiers() & Qt.KeyboardModifier.AltModifier
        ctrl = event.modifiers() & Qt.KeyboardModifier.ControlModifier  # Ctrl+Alt is AltGr
        if alt and not ctrl and Qt.Key.Key_0 <= event.key() <= Qt.Key.Key_9:
            event.accept()
            return
        super().keyPressEvent(event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride:
            undo = event.matches(QKeySequence.StandardKey.Undo)
            redo = event.matches(QKeySequence.StandardKey.Redo)
            if (undo and not self.isUndoAvailable()) or (redo and not self.isRedoAvailable()):
                event.ignore()
                return True
        return super().event(event)


class _SpanLabel(QLabel):
    """A span's text or its choices: it wraps, _SPAN_LINES lines high at most (the rest is
    cut). On one line, a long span and its nine whole-span choices set the window's minimum
    width and pushed its right side off the screen; unbounded, they squeezed the transcript."""

    def __init__(self) -> None:
        super().__init__()
        plain(self)  # a span's text, as transcribed or typed
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self._fit_lines()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:  # the window's font, once inside it
            self._fit_lines()

    def _fit_lines(self) -> None:
        lines = "\n".join(["字"] * _SPAN_LINES)  # measured as the label measures its text
        flags = Qt.TextFlag.TextWordWrap
        height = self.fontMetrics().boundingRect(QRect(0, 0, 1000, 1000), flags, lines).height()
        self.setMaximumHeight(height)


class ReviewPanel(QWidget):
    """Review of one transcript at a time (see the module docstring for the keys)."""

    transcript_changed = Signal()  # after every decision, undo or redo (the library refreshes)
    dataset_requested = Signal(object)  # app.worker.DatasetRequest, for the engine worker
    tune_requested = Signal(str)  # a training set's folder: "Tune now" after it was built
    speakers_renamed = Signal(int, object)  # transcript id, all its speaker names (a dict)

    def __init__(
        self,
        store: Store,
        player: Any,
        *,
        settings: Settings | None = None,
        model_source: Callable[[], str | None] = lambda: None,
        parent: QWidget | None = None,
    ) -> None:
        """`settings` owns the doubt threshold (the main window passes the app's; default: a
        private one in memory)."""
        super().__init__(parent)
        self.store = store
        self.player = player
        self.settings = settings if settings is not None else Settings(parent=self)
        self.model_source = model_source
        self.session: EditSession | None = None
        self.spans: list[DoubtfulSpan] = []
        self.index = 0
        self.choices: list[str] = []  # texts Alt+1… put in place of the current span
        # "Also fix N other occurrences", then "Undo all N changes" (see _Offer).
        self._fix_all: _Offer | None = None
        # Why the loaded model gives no alternatives ("" when it does: app.features).
        self._no_alternatives_why = ""
        self._gaps: list[float] = []  # seconds the user took per recent decision, beyond listening
        self._shown_at = time.monotonic()  # when the current span was put on screen
        self.script: script.Script = "original"
        # The segments in the display script: only those a change touched are converted.
        self._converter = script.SegmentConverter(self.script)
        self._stored_script: tuple[int, script.Script] | None = None  # (transcript id, script)
        self._offsets: list[int] = []  # flat index of each segment's first character
        self._shown: list = []  # the segments on screen (in the display script)
        self._chars: list[Char] = []  # flat, as displayed
        self._char_starts: list[float] = []  # their start times, for the playing position
        self._heard: tuple[float, float] | None = None  # the stretch last played or drawn
        # What the fix box was last filled with, and for which span (`_span_key`): a redraw
        # of that span leaves what the user typed over it.
        self._box: tuple | None = None
        self._box_span: DoubtfulSpan | None = None
        self._filled = ""
        # Fixes typed but not entered over spans the user left (span key → _Draft): back in
        # the box when the span is, and asked about before the transcript closes.
        self._drafts: dict[tuple, _Draft] = {}
        # A stretch put in hand by "Check again" (any characters, checked or not), taking the
        # place of the doubtful span in hand until a decision on it, Next or Previous.
        self._again: DoubtfulSpan | None = None
        self.undo_stack = QUndoStack(self)
        self._stack_index = 0  # the undo stack's index before its latest move
        self._moving_many = False  # the stack moves many steps, drawn once they are made
        # Recoloring touches every character (~1 s for 8 000): once the threshold settles.
        self._recolor = QTimer(self)
        self._recolor.setSingleShot(True)
        self._recolor.setInterval(_RECOLOR_DELAY_MS)
        self._recolor.timeout.connect(self._apply_colors)
        self.undo_stack.indexChanged.connect(self._stack_moved)
        self._build()
        self._building = False  # a training set is being built: one at a time
        self._build_actions()
        self._update_enabled()
        self.settings.changed.connect(self._setting_changed)
        self.player.position.connect(self._playing_at)
        self.player.loaded.connect(self._audio_loaded)
        self.player.finished.connect(self._select_span)
        if hasattr(self.player, "failed"):
            self.player.failed.connect(
                lambda m: self._status.say(lambda: tr("review.play_failed", message=m))
            )
        self.retranslate()
        self._refresh(full=True)

    # ---- construction --------------------------------------------------------------------
    def _build(self) -> None:
        self.confidence_bar = ConfidenceBar(self.settings.prefs.threshold)
        self.confidence_bar.threshold_changed.connect(self._threshold_committed)
        # Sized to their texts, also after a language switch ("Lowest confider" otherwise).
        self.order_box = _fitting_combo()
        for order in ("risk", "time"):
            self.order_box.addItem("", order)
        self.order_box.currentIndexChanged.connect(lambda _: self._respan(self._place()))
        self.margin_spin = _spin(0.0, 3.0, 0.1, 0.3)  # its unit follows the language
        self.speed_spin = _spin(0.5, 2.0, 0.1, 1.0, "×")
        for spin in (self.margin_spin, self.speed_spin):
            spin.valueChanged.connect(lambda _: self._show_time_left())
        self.script_box = _fitting_combo()
        for name in script.SCRIPTS:
            self.script_box.addItem("", name)
        self.script_box.currentIndexChanged.connect(self._script_changed)
        self.autoplay = QCheckBox()
        self.autoplay.setChecked(True)
        self._labels = {k: QLabel() for k in ("order", "margin", "speed", "script")}
        options = QHBoxLayout()
        for key, widget in (
            ("order", self.order_box),
            ("margin", self.margin_spin),
            ("speed", self.speed_spin),
            ("script", self.script_box),
        ):
            self._labels[key].setBuddy(widget)  # the label names the box to a screen reader
            options.addWidget(self._labels[key])
            options.addWidget(widget)
        options.addWidget(self.autoplay)
        options.addStretch(1)

        self.view = ReviewView()
        self.view.setMinimumHeight(_text_height(self.view, _MIN_TEXT_LINES))
        self.waveform = SpanWaveform()
        self.view.char_clicked.connect(self.play_char)
        self.view.speaker_rename_requested.connect(self.ask_rename_speaker)
        self.span_label = _SpanLabel()
        self.alternatives_label = _SpanLabel()
        self.fix_all_button = QPushButton()
        self.fix_all_button.setFocusPolicy(_BUTTON_FOCUS)
        self.fix_all_button.hide()
        self.fix_edit = FixBox()
        self.fix_edit.returnPressed.connect(lambda: self.fix_span(self.fix_edit.text()))
        self.progress_label = QLabel()
        self.status = plain(QLabel())  # quotes paths, names and errors
        self.status.setWordWrap(True)  # a long message must not widen the page
        self._status = LiveText(self.status.setText, self.status.text)  # reworded on a switch
        self.buttons = QHBoxLayout()  # the decisions on a span
        self.occasional_buttons = QHBoxLayout()

        # Short labels share rows, so the text keeps several lines at the default window size.
        span_row = QHBoxLayout()
        span_row.addWidget(self.span_label)
        span_row.addWidget(self.alternatives_label, 1)
        # Beside the fix box: beside the choices, it squeezed them to a few characters.
        fix_row = QHBoxLayout()
        fix_row.addWidget(self.fix_edit, 1)
        fix_row.addWidget(self.fix_all_button)
        status_row = QHBoxLayout()
        status_row.addWidget(self.progress_label)
        status_row.addWidget(self.status, 1)
        status_row.addLayout(self.occasional_buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(self.confidence_bar)
        layout.addLayout(options)
        layout.addWidget(self.waveform)
        layout.addWidget(self.view, 1)
        layout.addLayout(span_row)
        layout.addLayout(fix_row)
        layout.addLayout(self.buttons)
        layout.addLayout(status_row)

    def _build_actions(self) -> None:
        def action(key: str, slot: Callable[[], Any], shortcut: str = "") -> QAction:
            act = QAction(self)
            act.setObjectName(key)
            if shortcut:
                act.setShortcut(QKeySequence(shortcut))
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            act.triggered.connect(slot)
            self.addAction(act)
            return act

        self.actions_by_name = {
            "previous": action("previous", self.previous_span, KEYS["previous"]),
            "play": action("play", self.play_span, KEYS["play"]),
            "next": action("next", self.next_span, KEYS["next"]),
            "accept": action("accept", self.accept_span, KEYS["accept"]),
            "fix": action("fix", lambda: self.fix_span(self.fix_edit.text())),
            "undo": action("undo", self.undo_stack.undo, KEYS["undo"]),
            "redo": action("redo", self.undo_stack.redo, KEYS["redo"]),
            "history": action("history", self._history_dialog, KEYS["history"]),
            "export": action("export", self.export_dialog),
            "copy": action("copy", self.copy_text, KEYS["copy"]),
            "make_dataset": action("make_dataset", self._dataset_dialog, KEYS["make_dataset"]),
        }
        self.fix_all_action = action("fix_all", self._take_offer, KEYS["fix_all"])
        self.fix_all_button.clicked.connect(self.fix_all_action.trigger)
        # In the text's context menu, not the button row (one more button widened the page).
        self.view.check_again_action = action("check_again", self.check_again, KEYS["check_again"])
        action("slower", self.speed_spin.stepDown, KEYS["slower"])
        action("faster", self.speed_spin.stepUp, KEYS["faster"])
        for n in range(1, MAX_ALTERNATIVES + 1):
            action(f"alt{n}", lambda _=False, n=n: self.pick_alternative(n), f"Alt+{n}")
        self._buttons = {}
        for name, act in self.actions_by_name.items():
            button = QPushButton()
            button.clicked.connect(act.trigger)
            act.enabledChanged.connect(button.setEnabled)
            button.setFocusPolicy(_BUTTON_FOCUS)
            row = self.occasional_buttons if name in _OCCASIONAL else self.buttons
            row.addWidget(button)
            self._buttons[name] = button

    def retranslate(self) -> None:
        for key, label in self._labels.items():
            label.setText(tr(f"review.{key}"))
        for i in range(self.order_box.count()):
            self.order_box.setItemText(i, tr(f"review.order.{self.order_box.itemData(i)}"))
        for i in range(self.script_box.count()):
            self.script_box.setItemText(i, tr(f"review.script.{self.script_box.itemData(i)}"))
        self.autoplay.setText(tr("review.autoplay"))
        self.view.check_again_action.setText(tr("action.check_again"))
        self.margin_spin.setSuffix(tr("review.margin_unit"))
        self.fix_edit.setPlaceholderText(tr("review.fix_placeholder"))
        self.fix_edit.setAccessibleName(tr("review.fix_name"))  # no label stands beside it
        self._label_buttons()
        self.confidence_bar.retranslate()
        self._status.retranslate()
        retranslate(self.undo_stack)
        self._show_fix_all()
        self._show_span()

    def _label_buttons(self) -> None:
        """Each button's text and tooltip: its key, or why it is greyed out (nothing open)."""
        names = {"previous": "previous_span", "next": "next_span", "play": "play_span"}
        names |= {"accept": "accept_span", "fix": "fix_span"}
        for name, button in self._buttons.items():
            text = tr(f"action.{names.get(name, name)}")
            shortcut = self.actions_by_name[name].shortcut().toString() or _KEY_HINTS.get(name)
            hint = f"{text} ({shortcut})" if shortcut else text
            button.setText(text if name in _OCCASIONAL else hint)
            if self.session is None:
                hint = tr("review.open_first")
            elif name == "play" and self._audio_path() is None:
                hint = tr("review.no_recording")  # greyed out: nothing to play
            button.setToolTip(hint)

    def _update_enabled(self) -> None:
        """The actions on a transcript are greyed out while none is open (a click did nothing
        at all), their tooltips saying why; Make training set… also while a build runs, Play
        for a transcript stored without its recording."""
        is_open = self.session is not None
        no_sound = self._audio_path() is None
        for name, act in self.actions_by_name.items():
            busy = (name == "make_dataset" and self._building) or (name == "play" and no_sound)
            act.setEnabled(is_open and not busy)
        self.view.check_again_action.setEnabled(is_open)
        self._label_buttons()

    def showEvent(self, event) -> None:
        """Keys work as soon as the page shows: they live in the fix box."""
        super().showEvent(event)
        self._focus_fix_box()

    def _focus_fix_box(self) -> None:
        """Typing goes to the fix box, but only while this page is on screen: a hidden box
        holding the focus would take keys meant for the page the user sees (Enter there
        would accept a doubtful span unseen)."""
        if self.isVisible():
            self.fix_edit.setFocus()

    # ---- opening ---------------------------------------------------------------------------
    def open(self, tid: int) -> None:
        """Show transcript `tid` for review; undo history starts afresh. Opening the one open
        keeps its session (history, span in hand, typing). The one open stays while changes to
        it are kept only in memory (a save failed) and still cannot be saved, and while the
        user keeps a fix typed but not entered (they are asked)."""
        if self.session is not None and self.session.tid == tid:
            self._focus_fix_box()
            return
        if not self.settle_typing() or not self.save_pending():
            return
        self.player.stop()
        try:
            session = EditSession(self.store, tid)
        except (StoreError, KeyError) as e:
            error = self._store_error(e, tid)
            self._status.say(lambda: error_text(error))
            return
        self._show_session(session)
        self._focus_fix_box()

    def close_transcript(self) -> None:
        """Show no transcript: the one open was deleted from the library. Nothing is saved
        (there is nothing to save to: a save raised TranscriptNotFound), and a fix typed over
        it goes with it, as does its undo history, whose steps would write to it."""
        self.player.stop()
        self._show_session(None)

    def _show_session(self, session: EditSession | None) -> None:
        """Put `session` on the page (None: no transcript) with an undo history of its own.
        What was kept by transcript id goes: a deleted transcript's id is given again to the
        next one stored."""
        self.session = session
        self._update_enabled()
        self._stored_script = None
        self.undo_stack.blockSignals(True)  # no redraw of the old state: one follows below
        self.undo_stack.clear()
        self.undo_stack.blockSignals(False)
        self._stack_index = 0
        self._fix_all = None  # an offer for the transcript closed
        self._show_fix_all()
        # Typing over the closed transcript was asked about (settle_typing), or it was deleted.
        self._drafts.clear()
        self._box, self._again = None, None
        self._heard = None
        self.waveform.clear()  # the closed transcript's audio (the new one's is drawn below)
        self.index = 0
        self.status.setText("")
        self._refresh(full=True)

    def settle_typing(self) -> bool:
        """Fixes typed but not entered (in the box, or left on other spans), before their
        transcript closes (another opens, the window closes): the user applies them, discards
        them, or stays (False)."""
        drafts = self._pending()
        if not drafts:
            return True
        buttons = QMessageBox.StandardButton
        answer = self._ask_typing(drafts, "review.pending_fix")
        if answer == buttons.Apply:
            for draft in drafts:
                span = self._locate(draft.span)
                if span is not None:  # (it is: a fix elsewhere leaves its characters' times)
                    self._again = span
                    self.fix_span(draft.typed)
        return answer in (buttons.Apply, buttons.Discard)

    def _pending(self) -> list[_Draft]:
        """The fix typed in the box, then those left on other spans still in the text."""
        typed, span = self._typed(), self.current_span()
        drafts = [] if typed is None or span is None else [_Draft(span, typed, self._filled)]
        return drafts + [d for d in self._drafts.values() if self._locate(d.span) is not None]

    def _ask_typing(self, drafts: Sequence[_Draft], key: str, **fields: Any) -> Any:
        """Ask (message `key`) whether to apply the typed `drafts`: Apply, Discard or Cancel."""
        one = (tr("review.pending_fix.one", typed=d.typed.strip(), text=d.shown) for d in drafts)
        fixes = tr("review.pending_fix.sep").join(one)
        buttons = QMessageBox.StandardButton
        return QMessageBox.question(
            self,
            tr("review.pending_fix.title"),
            literal(tr(key, fixes=fixes, **fields)),
            buttons.Apply | buttons.Discard | buttons.Cancel,
            buttons.Apply,
        )

    def save_pending(self) -> bool:
        """Save what a failed save left in memory; False (and the error shown) when that still
        fails, so the caller keeps the transcript open rather than lose it."""
        if self.session is None or not self.session.dirty:
            return True
        try:
            self.session.flush()
        except (StoreError, TranscriptNotFound) as e:
            if _elsewhere(e):  # closed (go on) or reloaded (stay: the change is to make again)
                self._reload(self.session, e)
                return self.session is None
            self._status.say(lambda error=e: tr("review.unsaved_kept", message=error_text(error)))
            return False
        self._saved(None)
        return True

    @property
    def threshold(self) -> float:
        return self.settings.prefs.threshold

    def _threshold_committed(self, value: float) -> None:
        self.settings.set(threshold=value)

    def _setting_changed(self, name: str, value: Any) -> None:
        """A new threshold, from this page or another: the doubtful spans at once, the colors
        when the value settles (arrow keys held down give a burst of values)."""
        if name == "threshold":
            self.confidence_bar.set_threshold(value)
            self._respan(self._place())
            self._recolor.start()

    def _apply_colors(self) -> None:
        self.view.set_threshold(self.threshold)

    def _options(self) -> ReviewOptions:
        return ReviewOptions(threshold=self.threshold, order=self.order_box.currentData())

    # ---- state → screen --------------------------------------------------------------------
    def _stack_moved(self, index: int) -> None:
        """Redraw after a decision, an undo or a redo. An undone decision's span is in hand
        again; one made (or made again) leaves the span after it in hand, as a decision does.
        Any other change (a speaker's name, a revert, fix all occurrences: nobody heard those
        places) keeps the span in hand where it can. Many steps at once are drawn once, after
        the last (`_one_redraw`)."""
        if self._moving_many:
            return
        if self._fix_all is not None and index != self._fix_all.index:
            self._fix_all = None  # undone, redone or superseded: the offer no longer fits
            self._show_fix_all()
        undone = index < self._stack_index
        command = self.undo_stack.command(index if undone else index - 1)
        self._stack_index = index
        if isinstance(command, EditCommand):  # its span (or the next) in hand, as below
            self._again = self._undone_stretch(command.op) if undone else None
        places = [self._place()]
        if isinstance(command, EditCommand):
            op = command.op
            where = (op.segment, op.first)
            decided = self._span_index(where)
            if undone:
                places.insert(0, where)
            elif decided is not None and op.kind != "replace":
                # Gone once made: its index passes to the next span.
                self.index, places = decided, []
        self._refresh(places=places)

    def _undone_stretch(self, op: EditOp) -> DoubtfulSpan | None:
        """The stretch an undone decision `op` covered when no doubtful span will hold it (it
        was checked again): in hand again, as an undone doubtful span is."""
        chars = self.session.segments[op.segment].chars[op.first : op.stop]
        if op.kind == "replace" or not chars:
            return None
        if any(c.confidence < self.threshold for c in chars):
            return None
        return self._stretch(op.segment, op.first, op.stop)

    def _refresh(self, full: bool = False, places: Sequence[tuple[int, int] | None] = ()) -> None:
        """Redraw after the transcript changed: only the segments that differ, unless `full`
        (another transcript, another script) or the layout changed. `places` as `_respan`."""
        segments = self.session.segments if self.session else []
        shown = self._converter.convert(segments)  # only the segments that changed
        if full or not self._redraw_changed(shown):
            self.view.clear()
            self.view.set_threshold(self.threshold)
            self._show_speaker_names()
            self.view.set_segments(shown)
        self._shown = shown
        self._chars = [c for s in shown for c in s.chars]
        self._char_starts = [c.start for c in self._chars]
        self._offsets = []
        total = 0
        for s in shown:
            self._offsets.append(total)
            total += len(s.chars)
        self._respan(*places)
        self.transcript_changed.emit()

    def _show_speaker_names(self) -> None:
        """Label the speakers in the display script, default names (说话人 N) too, as the
        export writes them (engine.library.script)."""
        segments = self.session.segments if self.session else []
        names = self.session.speaker_names if self.session else {}
        ids = {s.speaker for s in segments if s.speaker is not None}
        shown = {i: script.convert_text(speaker_name(i, names), self.script) for i in ids}
        self.view.set_speaker_names(shown)

    def _redraw_changed(self, shown: list) -> bool:
        """Replace the segments that changed in place; False when that cannot be done."""
        if len(shown) != len(self._shown):
            return False
        cursor = QTextCursor(self.view.document())
        cursor.beginEditBlock()  # laid out once ("fix all" replaces hundreds of segments)
        try:
            # Last first, so the offsets of the segments still to do stay valid.
            for i in reversed(range(len(shown))):
                old, new = self._shown[i], shown[i]
                if old == new:
                    continue
                if not old.chars or not new.chars:
                    return False
                first = self._offsets[i]
                self.view.replace_chars(first, first + len(old.chars), new.chars)
        finally:
            cursor.endEditBlock()
        return True

    def _respan(self, *places: tuple[int, int] | None) -> None:
        """Find the doubtful spans again (new text, threshold or order). The one in hand is
        the first found of `places` ((segment, character) each, see `_place`), else the one
        at the same index."""
        segments = self.session.segments if self.session else []
        self.spans = review.find_spans(segments, self._options())
        self._again = self._locate(self._again) if self._again is not None else None
        found = (self._span_index(p) for p in places if p is not None)
        self.index = next((i for i in found if i is not None), self.index)
        self.index = min(self.index, max(0, len(self.spans) - 1))
        self._show_span()

    def current_span(self) -> DoubtfulSpan | None:
        if self._again is not None:
            return self._again
        return self.spans[self.index] if self.spans else None

    def _stretch(self, segment: int, first: int, stop: int) -> DoubtfulSpan:
        """Characters [first, stop) of `segment` as a span to decide on (stored text)."""
        return review.stretch(self.session.segments[segment], segment, first, stop)

    def _locate(self, span: DoubtfulSpan) -> DoubtfulSpan | None:
        """`span` in the text as it is now: found by its characters' times and text (an edit
        before it in its segment moves its place, not its times), None once they changed."""
        segments = self.session.segments if self.session else []
        if span.segment >= len(segments):
            return None
        chars = segments[span.segment].chars
        first = next((i for i, c in enumerate(chars) if c.start == span.start), None)
        if first is None:
            return None
        stop = first + span.stop - span.first
        found = chars[first:stop]
        if "".join(c.text for c in found) != span.text or found[-1].end != span.end:
            return None
        return self._stretch(span.segment, first, stop)

    def check_again(self) -> None:
        """Put the characters selected in the text (or the one last clicked) in hand, checked
        or not: fix, accept and the alternatives then decide on them again (a later decision
        supersedes an earlier one over the same audio). Within the paragraph of the first (the
        status line says so when the selection goes on past it)."""
        picked = self.view.picked
        if self.session is None or picked is None:
            self._status.say(lambda: tr("review.check_again_how", keys=KEYS["check_again"]))
            return
        first, stop = picked
        segment = bisect_right(self._offsets, first) - 1
        offset = self._offsets[segment]
        end = offset + len(self.session.segments[segment].chars)
        self._again = self._stretch(segment, first - offset, min(stop, end) - offset)
        self._show_span()
        self._focus_fix_box()
        if stop > end:  # the rest of the selection is not in hand: say so, and how
            chars = self._span_chars(self._again)
            text = marked([c.text for c in chars], chars)
            keys = KEYS["check_again"]
            self._status.say(lambda: tr("review.check_again_clipped", text=text, keys=keys))
        self._autoplay()

    def _place(self) -> tuple[int, int] | None:
        """Where the span in hand starts: (segment, character)."""
        span = self.current_span()
        return (span.segment, span.first) if span is not None else None

    def _span_index(self, place: tuple[int, int]) -> int | None:
        """The index of the span holding character `place` = (segment, character), if any."""
        segment, char = place
        return next(
            (
                i
                for i, s in enumerate(self.spans)
                if s.segment == segment and s.first <= char < max(s.stop, s.first + 1)
            ),
            None,
        )

    def _span_key(self, span: DoubtfulSpan) -> tuple:
        """What makes `span` the same span to the fix box: its times and stored text (not the
        display script: a fix typed in one is stored right from another; not its place, which
        a fix before it in its segment moves)."""
        return (self.session.tid, span.segment, span.start, span.end, span.text)

    def _typed(self) -> str | None:
        """The fix box's text where the user typed over the span in it, else None."""
        text = self.fix_edit.text()
        return text if text.strip() != self._filled else None

    def _span_chars(self, span: DoubtfulSpan) -> tuple[Char, ...]:
        first = self._offsets[span.segment] + span.first
        return tuple(self._chars[first : first + span.stop - span.first])

    def _stored_chars(self, span: DoubtfulSpan) -> tuple[Char, ...]:
        """The span's characters in the stored script (`_span_chars`: as shown)."""
        return self.session.segments[span.segment].chars[span.first : span.stop]

    def _show_span(self) -> None:
        span = self.current_span()
        if self.session is None:
            self.span_label.setText(tr("review.none_open"))
        elif span is None:
            self.span_label.setText(tr("review.done"))
        self._show_time_left()
        typed = self._typed()
        key = self._span_key(span) if span is not None else None
        if key != self._box and typed is not None and self._box is not None:
            self._drafts[self._box] = _Draft(self._box_span, typed, self._filled)
        if span is None:
            self.alternatives_label.setText("")
            self.fix_edit.setText("")  # (clear() would be undoable typing)
            self._box, self._filled = None, ""
            return
        chars = self._span_chars(span)
        text = marked([c.text for c in chars], chars)
        if span is self._again:
            self.span_label.setText(tr("review.span_again", text=text))
        else:
            self.span_label.setText(
                tr(
                    "review.span",
                    index=self.index + 1,
                    count=len(self.spans),
                    text=text,
                    confidence=span.confidence,
                )
            )
        # Choices in the stored script (what the model knows), shown in the display script.
        self.choices = span_choices(self._stored_chars(span), to=self.script)
        self._show_alternatives()
        if key != self._box or typed is None:  # another span, or nothing typed over this one
            draft = self._take_draft(span, chars) if key != self._box else None
            self.fix_edit.setText(draft if draft is not None else text)
            self.fix_edit.selectAll()
        self._box, self._box_span, self._filled = key, span, text
        self._select_span()
        self._play(span.start, span.end, sound=False)
        self._shown_at = time.monotonic()

    def _take_draft(self, span: DoubtfulSpan, chars: Sequence[Char]) -> str | None:
        """The fix typed over a stretch inside `span` (shown as `chars`), taken out of the
        drafts: the characters of `span` around it as shown. A new threshold grows or merges
        spans, and the typing must stay in the box, not the old text Ctrl+Enter would accept."""
        for draft_key, draft in self._drafts.items():
            inner = self._locate(draft.span)  # (drafts are of the open transcript)
            if inner is None or inner.segment != span.segment:
                continue
            if span.first <= inner.first and inner.stop <= span.stop:
                del self._drafts[draft_key]
                k, j = inner.first - span.first, inner.stop - span.first
                before = "".join(c.text + c.after for c in chars[:k])
                after = chars[j - 1].after + marked([c.text for c in chars[j:]], chars[j:])
                return before + draft.typed + (after if j < len(chars) else "")
        return None

    def _show_time_left(self) -> None:
        """The spans left and the time to hear and decide them: it follows the speed and
        margin boxes as they change, not only when the next span shows."""
        left = review.estimate_review_seconds(
            self.spans,
            margin=self.margin_spin.value(),
            speed=self.speed_spin.value(),
            seconds_per_decision=review.decision_pace(self._gaps),
        )
        self.progress_label.setText(
            tr("review.progress", count=len(self.spans), time=format_duration(left))
        )

    def _show_alternatives(self) -> None:
        """The current span's choices, each cut to what it changes when long (the tooltip
        lists them whole). None, and the loaded model makes none (Whisper): the line is greyed
        and says why; a transcript an earlier model made keeps its choices."""
        span = self.current_span()
        chars = self._span_chars(span) if span is not None else ()
        text = marked([c.text for c in chars], chars)
        shown = [script.convert_text(c, self.script) for c in self.choices]
        cut = [_around(c, text) for c in shown]
        items = "  ".join(f"Alt+{i}: {c}" for i, c in enumerate(cut, start=1))
        self.alternatives_label.setText(
            tr("review.alternatives", items=items) if items else tr("review.no_alternatives")
        )
        why = self._no_alternatives_why if not items else ""
        self.alternatives_label.setEnabled(not why)
        if cut != shown:  # the choices cut, whole
            why = "\n".join(f"Alt+{i}: {c}" for i, c in enumerate(shown, start=1))
        self.alternatives_label.setToolTip(literal(why))

    def set_capabilities(self, caps: Any) -> None:
        """What the loaded model can do (`app.features.Capabilities`; None: no model loaded)."""
        self._no_alternatives_why = caps.why_not("alternatives") if caps is not None else ""
        if self.current_span() is not None:
            self._show_alternatives()

    def _select_span(self) -> None:
        span = self.current_span()
        if span is not None:
            first = self._offsets[span.segment] + span.first
            self.view.select_chars(first, first + span.stop - span.first - 1)

    # ---- navigation and playback -----------------------------------------------------------
    def next_span(self) -> None:
        self._move(+1)

    def previous_span(self) -> None:
        self._move(-1)

    def _move(self, step: int) -> None:
        """To the doubtful span `step` away; from a stretch checked again, back to the one left
        for it. What was typed over the span left stays with it (`_show_span`)."""
        if self._again is not None:
            self._again = None
        elif self.spans:
            self.index = min(max(self.index + step, 0), len(self.spans) - 1)
        else:
            return
        self._show_span()
        self._autoplay()

    def _autoplay(self) -> None:
        if self.autoplay.isChecked():
            self.play_span()

    def _play(self, start: float, end: float, *, sound: bool = True) -> None:
        """Play [start, end] with the context margin, its waveform shaded; without `sound`,
        only draw it (a span on screen before it is heard)."""
        audio = self._audio_path()
        if audio is None:
            return
        lo, hi = review.audio_window(start, end, self.margin_spin.value())
        self._heard = (start, end)
        self.waveform.set_span(start, end)
        if sound:
            self.player.play(str(audio), lo, hi, self.speed_spin.value())
        else:
            self.player.preview(str(audio), lo, hi)

    def _audio_path(self) -> Path | None:
        """The open transcript's recording: None without one, or once deleted elsewhere (the
        decision that found it so closes it)."""
        if self.session is None:
            return None
        try:
            return self.store.audio_path(self.session.tid)
        except KeyError:
            return None

    def _audio_loaded(self, start: float, samples: Any) -> None:
        """Draw the stretch read. Where the recording ends before the span starts (replaced by
        a shorter one), only context could be heard: say so."""
        self.waveform.show_audio(start, samples)
        ends = start + len(samples) / SAMPLE_RATE
        path = self._audio_path()
        if self._heard is None or path is None or ends >= self._heard[0]:
            return
        lo, hi = self._heard
        error = AudioError("audio.span_after_end", path=path, start=lo, end=hi, duration=ends)
        self._status.say(lambda: tr("review.play_failed", message=error_text(error)))

    def play_span(self) -> None:
        """Play the current span with the context margin either side."""
        span = self.current_span()
        if span is not None:
            self._play(span.start, span.end)

    def play_char(self, flat_index: int) -> None:
        """Play one character (a click in the text) with the context margin."""
        if 0 <= flat_index < len(self._chars):
            c = self._chars[flat_index]
            self._play(c.start, c.end)

    def _playing_at(self, seconds: float) -> None:
        """Highlight the character being heard (the selection follows playback) and the
        position on the waveform."""
        self.waveform.set_position(seconds)
        i = bisect_right(self._char_starts, seconds) - 1
        if i >= 0 and seconds <= self._chars[i].end:
            self.view.select_chars(i, i)

    # ---- decisions -------------------------------------------------------------------------
    def _decide(self, op: EditOp, label: Message) -> None:
        if self.session is None:
            return
        span = self.current_span()
        margin, speed = self.margin_spin.value(), self.speed_spin.value()
        listen = review.estimate_review_seconds(
            [span], margin=margin, speed=speed, seconds_per_decision=0.0
        )
        self._gaps = [*self._gaps[-19:], time.monotonic() - self._shown_at - listen]
        self.player.stop()
        self._box, self._again = None, None  # the box's text is decided: no draft to keep
        self.undo_stack.push(EditCommand(self.session, op, label, self._saved))
        self._focus_fix_box()
        if self.spans:
            self._autoplay()

    def _saved(self, error: StoreError | TranscriptNotFound | None) -> None:
        if error is None:
            self._status.say(lambda: tr("review.saved"))
        elif _elsewhere(error):
            # Called inside the undo stack's push, undo or redo: the stack goes once they end.
            QTimer.singleShot(0, partial(self._reload, self.session, error))
        else:
            self._status.say(lambda: tr("review.unsaved", message=error_text(error)))

    def _reload(self, session: EditSession | None, error: StoreError | TranscriptNotFound) -> None:
        """Show the transcript of `session` as stored now, since a save found it deleted (it
        closes) or changed elsewhere (read again), and say which. Its undo history goes: its
        steps return to states the store no longer holds. Nothing when another was opened."""
        if session is None or session is not self.session:
            return
        self.player.stop()
        fresh = None
        if isinstance(error, StoreError):
            try:
                fresh = EditSession(self.store, session.tid)
            except (StoreError, KeyError) as e:
                error = e
        error = self._store_error(error, session.tid)
        self._show_session(fresh)
        self._status.say(lambda: error_text(error))

    def _store_error(self, error: StoreError | KeyError, tid: int) -> StoreError:
        """`error` as the UI words it: a transcript deleted elsewhere (KeyError, whose text is
        the engine's English) says so in the UI language and where to choose another."""
        if isinstance(error, KeyError):
            return StoreError("store.no_transcript", path=self.store.path, id=tid)
        return error

    def accept_span(self) -> None:
        """The span's text is right as it is (Ctrl+Enter). A fix typed over it in the box is
        entered instead, as Enter would: the key that ends a decision never drops typing, nor
        stores the old text as checked."""
        typed, span = self._typed(), self.current_span()
        if typed is not None:
            self.fix_span(typed)
        elif span is not None:
            self._accept(span)

    def _accept(self, span: DoubtfulSpan) -> None:
        op = EditOp(span.segment, span.first, span.stop, span.text, "accept")
        self._decide(op, partial(tr, "undo.accept", text=span.text))

    def fix_span(self, text: str) -> None:
        """Replace the span's text with `text` (unchanged text accepts it). Typed in the
        display script, it is stored in the transcript's own (the model's): a character left
        as shown keeps its stored original."""
        span = self.current_span()
        if span is None:
            return
        shown, stored = self._span_chars(span), self._stored_chars(span)
        old = marked([c.text for c in stored], stored)
        text = text.strip()
        if text in (marked([c.text for c in shown], shown), old):
            self._accept(span)
            return
        if self.script != "original":
            text = to_stored(text, shown, stored, self._transcript_script())
            if text == old:
                self._accept(span)
                return
        op = EditOp(span.segment, span.first, span.stop, text, "fix")
        self._decide(op, partial(tr, "undo.fix", old=span.text, text=text))
        self._offer_fix_all(op, old)

    def pick_alternative(self, n: int) -> None:
        """Take choice `n` (1-based) of the span's alternatives. Over a fix typed and not
        entered, the user is asked which to take (or neither)."""
        span, typed = self.current_span(), self._typed()
        if span is not None and 1 <= n <= len(self.choices):
            text = self.choices[n - 1]
            if typed is not None:
                buttons = QMessageBox.StandardButton
                shown = script.convert_text(text, self.script)
                draft = _Draft(span, typed, self._filled)
                answer = self._ask_typing([draft], "review.pending_fix.pick", n=n, choice=shown)
                if answer == buttons.Apply:
                    self.fix_span(typed)
                if answer != buttons.Discard:
                    return
            stored = self._stored_chars(span)
            old = marked([c.text for c in stored], stored)
            op = EditOp(span.segment, span.first, span.stop, text, "alternative")
            self._decide(op, partial(tr, "undo.alternative", text=text))
            self._offer_fix_all(op, old)

    def _transcript_script(self) -> script.Script:
        """The open transcript's stored script (worked out once per transcript)."""
        tid = self.session.tid
        if self._stored_script is None or self._stored_script[0] != tid:
            self._stored_script = (tid, stored_script(self.session.original))
        return self._stored_script[1]

    # ---- fix all occurrences ---------------------------------------------------------------
    def _offer_fix_all(self, op: EditOp, old: str) -> None:
        """After `op` replaced `old` (with the marks between its characters): offer the same
        change where else the transcript has `old` (engine.library.review finds them and makes
        the edits). Stretches the user has accepted or fixed are left as they are."""
        if self.session is None:
            return
        new = review.inner_text(op.text)
        fixed = (op.segment, op.first, op.first + len(split_marks(new)[0]))
        ops = self._occurrence_ops(old, new, fixed)
        self._fix_all = _Offer(ops, old, new, self.undo_stack.index(), fixed=fixed) if ops else None
        self._show_fix_all()

    def _occurrence_ops(
        self, old: str, new: str, fixed: tuple[int, int, int]
    ) -> tuple[EditOp, ...]:
        """The replace edits of `old` by `new` outside `fixed`, leaving out checked stretches
        and those with a fix typed over them and not entered: replaced, the typing was lost
        unasked and the place stored as text nobody checked."""
        checked = review.checked_chars(self.session.original, self.session.ops[: self.session.head])
        for draft in self._pending():
            span = self._locate(draft.span)
            if span is not None:
                checked[span.segment][span.first : span.stop] = [True] * (span.stop - span.first)
        found = review.find_occurrences(self.session.segments, old, skip=fixed, checked=checked)
        return tuple(review.replace_ops(found, new))

    def _show_fix_all(self) -> None:
        offer = self._fix_all
        self.fix_all_action.setEnabled(offer is not None)
        self.fix_all_button.setVisible(offer is not None)
        if offer is None:
            return
        count, shortcut = len(offer.ops), f" ({KEYS['fix_all']})"
        if offer.undo_to is not None:
            short = whole = tr("review.undo_all", count=count)
        else:
            old, new = (script.convert_text(t, self.script) for t in (offer.old, offer.new))
            key = "review.fix_all" if new else "review.fix_all_delete"
            metrics = self.fix_all_button.fontMetrics()
            short = tr(key, count=count, old=_elided(old, metrics), text=_elided(new, metrics))
            whole = tr(key, count=count, old=old, text=new)
        self.fix_all_button.setText(short + shortcut)
        self.fix_all_button.setToolTip(whole + shortcut)
        self.fix_all_button.setAccessibleName(whole + shortcut)  # a screen reader reads it all

    def _take_offer(self) -> None:
        """The fix-all button, or its key: what it offers now."""
        if self._fix_all is not None and self._fix_all.undo_to is not None:
            self.undo_all()
        else:
            self.fix_all()

    def fix_all(self) -> None:
        """Make the offered changes: one edit and one undo step a place (each named for its
        change), replayed, saved and drawn once; then offer to undo them all."""
        offer = self._fix_all
        if offer is None or offer.undo_to is not None or self.session is None:
            return
        # Typed over one of the places since it was offered: that place is left out.
        offer = replace(offer, ops=self._occurrence_ops(offer.old, offer.new, offer.fixed))
        self._fix_all = None
        if not offer.ops:
            self._show_fix_all()
            return
        before, count = self.undo_stack.index(), len(offer.ops)
        texts = [
            partial(tr, "undo.replace", old=offer.old, text=offer.new, n=n, count=count)
            for n in range(1, count + 1)
        ]
        with self._one_redraw():
            push_each(self.undo_stack, self.session, offer.ops, texts, self._saved)
        self._fix_all = replace(offer, index=self.undo_stack.index(), undo_to=before)
        self._show_fix_all()
        self._say_done(offer, "review.fixed_all")

    def undo_all(self) -> None:
        """Take back every place "fix all" just changed (offered right after it), replayed,
        saved and drawn once: the history is as one Undo a place leaves it (History… lists them,
        undone), the fix heard stays, and redo makes them again one at a time."""
        offer = self._fix_all
        if offer is None or offer.undo_to is None or self.session is None:
            return
        self._fix_all = None
        self._show_fix_all()
        with self._one_redraw():
            undo_to(self.undo_stack, offer.undo_to, self.session, self._saved)
        self._say_done(offer, "review.undone_all")

    @contextmanager
    def _one_redraw(self) -> Iterator[None]:
        """The undo stack's moves inside are drawn once, at the end (app.undo saves them
        once): a redraw a place re-found every doubtful span of the transcript each time."""
        self._moving_many = True
        try:
            yield
        finally:
            self._moving_many = False
        self._stack_moved(self.undo_stack.index())

    def _say_done(self, offer: _Offer, key: str) -> None:
        """Say what `offer` changed (`key`, or its "_delete" wording for a deletion), unless
        the save failed: its error stays on the status line."""
        if self.session is None or self.session.dirty:
            return
        old, new = (
            _elided(script.convert_text(text, self.script), self.status.fontMetrics())
            for text in (offer.old, offer.new)
        )
        key += "" if offer.new else "_delete"
        self._status.say(lambda: tr(key, count=len(offer.ops), old=old, text=new))

    # ---- speakers --------------------------------------------------------------------------
    def ask_rename_speaker(self, speaker: int) -> None:
        """Ask for a speaker's new name (its label was clicked, or "Rename" chosen). The box
        starts with the label as shown, perhaps converted to the display script: taken as it
        is, it renames nothing."""
        if self.session is not None:
            shown = self.view.speaker_label(speaker)
            name = ask_speaker_name(self, shown)
            if name is not None and tidy_speaker_name(name) != shown:
                self.rename_speaker(speaker, name)

    def rename_speaker(self, speaker: int, name: str) -> None:
        """Call `speaker` `name` everywhere in the open transcript, its labels and exports
        (undoable; an empty name gives back 说话人 N)."""
        name = tidy_speaker_name(name)
        if self.session is None or name == self.session.speaker_names.get(speaker, ""):
            return
        old = self.view.speaker_label(speaker)
        new = name or speaker_name(speaker)
        before = self.session.speaker_names.get(speaker, "")
        label = partial(tr, "undo.rename_speaker", old=old, name=new)
        self.undo_stack.push(RenameSpeakerCommand(self.name_speaker, speaker, before, name, label))

    def name_speaker(self, speaker: int, name: str) -> None:
        """Rename in the session (saved at once; a failed save keeps the name in memory), for
        this page's undo stack and the Transcript page's, whose transcript may be open here."""
        error = None
        try:
            self.session.rename_speaker(speaker, name)
        except (StoreError, TranscriptNotFound) as e:
            error = e
        names = self.session.speaker_names
        self._show_speaker_names()
        self._saved(error)
        if error is None or not _elsewhere(error):  # else the name goes with the reload
            self.speakers_renamed.emit(self.session.tid, dict(names))

    def revert_to(self, head: int) -> None:
        """Back to the state after `head` edits of the stored history, 0 being the model's
        output (undoable; later edits stay in the history)."""
        if self.session is not None and head != self.session.head:
            label = partial(tr, "undo.revert_to", head=head) if head else partial(tr, "undo.revert")
            self.undo_stack.push(HeadCommand(self.session, head, label, self._saved))

    def _history_entries(self) -> list[str]:
        """Each stored decision as History… lists it: its kind, the text it replaced and the
        new one (in the display script), and whether it is undone (beyond the head)."""
        entries, segments = [], self.session.original
        for seq, op in enumerate(self.session.ops, start=1):
            chars = segments[op.segment].chars[op.first : op.stop]
            old = marked([c.text for c in chars], chars)
            new = review.inner_text(op.text)
            if op.kind == "accept" or new == review.inner_text(old):
                key = "history.entry_same"
            else:
                key = "history.entry" if new else "history.entry_delete"
            old, new = (script.convert_text(t, self.script) for t in (old, new))
            undone = tr("history.undone") if seq > self.session.head else ""
            kind = tr(f"history.kind.{op.kind}")
            entries.append(tr(key, seq=seq, kind=kind, old=old, text=new, undone=undone))
            segments = review.apply_edit(segments, op)
        return entries

    def _history_dialog(self) -> None:
        if self.session is None:
            return
        items = [tr("history.original"), *self._history_entries()]
        item, ok = QInputDialog.getItem(
            self, tr("action.history"), tr("history.pick"), items, self.session.head, False
        )
        if ok:
            self.revert_to(items.index(item))

    # ---- output ----------------------------------------------------------------------------
    def _script_changed(self) -> None:
        self.script = self.script_box.currentData()
        self._converter = script.SegmentConverter(self.script)
        self._refresh(full=True, places=[self._place()])

    def export(self, path: str | Path, fmt: str | None = None) -> Path:
        """Write the edited transcript in the chosen script."""
        info = self.store.info(self.session.tid)
        names = self.session.speaker_names
        written = script.export(
            self.session.segments, path, fmt=fmt, script=self.script, info=info, speakers=names
        )
        self._status.say(lambda: tr("review.exported", path=str(written)))
        return written

    def copy_text(self) -> None:
        if self.session is not None:
            names = self.session.speaker_names
            text = script.render(self.session.segments, "txt", script=self.script, speakers=names)
            QGuiApplication.clipboard().setText(text)
            self._status.say(lambda: tr("review.copied"))

    def export_dialog(self) -> None:
        """Export through the shared Save dialog: next to the recording, in the chosen type."""
        if self.session is None:
            return
        audio = self.store.audio_path(self.session.tid)
        target = ask_save_path(self, tr("action.export"), audio)
        if target is not None:
            try:
                self.export(target)
            except (OSError, ValueError) as e:
                QMessageBox.warning(self, tr("dialog.error"), literal(write_error_text(target, e)))

    def _dataset_dialog(self) -> None:
        """Ask for a name and have the worker build the training set from the store: changes
        a failed save kept in memory are saved first (or nothing is built), and a name already
        in use is replaced only when the user says so."""
        if self.session is None or not self.save_pending():
            return
        from engine.model import DEFAULT_MODEL

        name = self._ask_dataset_name()
        if name is None:
            return
        source = self.model_source() or DEFAULT_MODEL
        self._building = True
        self._update_enabled()
        self._status.say(lambda: tr("dataset.building", name=name))
        self.dataset_requested.emit(
            DatasetRequest(self.store, (self.session.tid,), name, source, self.threshold)
        )

    def _ask_dataset_name(self) -> str | None:
        """The training set's name, asked again (with the name typed, to change) while the
        engine refuses it: a name taken by a folder that is no training set, or no folder name,
        is said before the build starts, not after. A set it would replace is confirmed first.
        None: cancelled. The worker's build checks again: the folder may change meanwhile."""
        title, name = tr("action.make_dataset"), ""
        while True:
            name, ok = QInputDialog.getText(self, title, tr("dataset.name"), text=name)
            if not ok or not name:
                return None
            try:
                corrections.check_name(self.store, name)
                in_use = corrections.name_in_use(self.store, name)
            except corrections.CorrectionsError as e:
                QMessageBox.warning(self, title, literal(error_text(e)))
                continue
            except StoreError as e:
                QMessageBox.warning(self, tr("dialog.error"), literal(error_text(e)))
                return None
            if not in_use:
                return name
            yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
            answer = QMessageBox.question(
                self, title, literal(tr("dataset.replace", name=name)), yes | no, no
            )
            return name if answer == yes else None

    def show_dataset(self, s: Any) -> None:
        """The worker built the training set (an engine.corrections.CorrectionSummary)."""
        self._building = False
        self._update_enabled()
        self.status.setText("")
        new = "".join(s.new_chars) or "—"
        text = tr(
            "dataset.summary",
            name=s.name,
            examples=s.examples,
            hours=s.hours,
            corrections=s.corrections,
            accepted=s.accepted,
            new=new,
        )
        if s.trimmed or s.skipped:  # doubtful text nobody checked kept them out
            text += " " + tr("dataset.doubtful", trimmed=s.trimmed, skipped=s.skipped)
        box = plain(
            QMessageBox(QMessageBox.Icon.Information, tr("action.make_dataset"), text, parent=self)
        )
        tune = box.addButton(tr("dataset.tune_now"), QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Close)
        box.exec()
        if box.clickedButton() is tune:  # the Tune page opens with this set selected
            self.tune_requested.emit(str(s.folder))

    def show_dataset_failed(self, error: object) -> None:
        self._building = False
        self._update_enabled()
        self.status.setText("")
        QMessageBox.warning(self, tr("dialog.error"), literal(error_text(error)))


def _text_height(view: ReviewView, lines: int) -> int:
    """Pixels `view` needs to show `lines` lines of its text."""
    margin = view.document().documentMargin()
    return round(lines * view.fontMetrics().lineSpacing() + 2 * (margin + view.frameWidth()))


def _fitting_combo() -> QComboBox:
    """A combo box as wide as its longest item, whatever the language, and never narrower
    (its minimum size hint keeps the width of its first texts)."""
    box = QComboBox()
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
    box.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
    return box


def _spin(lo: float, hi: float, step: float, value: float, suffix: str = "") -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(lo, hi)
    spin.setSingleStep(step)
    spin.setDecimals(1)
    spin.setValue(value)
    spin.setSuffix(suffix)
    return spin
