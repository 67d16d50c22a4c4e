"""The main window: record, watch the waveform and the text, transcribe files, review, save.

Thin by design: it forwards requests to the worker (`WorkerHandle`) and draws what the worker
reports. The window composes its own pages (`_build_pages`: transcript, review, library) from
the collaborators it is given (app.main.build_window passes them; tests pass fakes), and every
view follows the one owner of the preferences (`app.settings.Settings`).
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QByteArray,
    QCoreApplication,
    QEvent,
    QEventLoop,
    QObject,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QKeySequence,
    QShowEvent,
    QUndoGroup,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.library.store import Store, StoreError
from engine.recorder import find_device_name, mark_unfinished
from engine.results import Char, Segment, renamed_speakers, speaker_name

from . import demo as demo_model
from . import settings as app_settings
from .banner import ModelBanner
from .decoding import DecodingMenu, failure_text
from .errors import error_text
from .export.embeddings import EmbedDialog
from .export.model import ExportDialog
from .export.share import ShareDialog
from .features import capabilities, grey_out
from .filequeue import FileQueue
from .folders import FolderWatcher, WatchFoldersDialog, ask_folder_files
from .fonts import cjk_font
from .i18n import LANGUAGES, LiveText, Message, retranslate_qt_buttons, set_language, tr
from .library import LibraryView, UpgradeNotice
from .modeldialog import ModelDialog
from .plain import literal, plain
from .review.page import ReviewPanel
from .review.player import SoundDevicePlayer
from .savedialog import ask_save_path, write_error_text
from .transcript import ConfidenceBar, TranscriptView, ask_speaker_name, start_hint
from .tune.page import TunePage
from .tune.supervisor import SupervisorHandle, TuneSupervisor
from .undo import RenameSpeakerCommand
from .undo import retranslate as retranslate_undo
from .waveform import WaveformView
from .worker import ModelSummary, SpeakersRequest, WorkerHandle

__all__ = ["LIVE", "Document", "MainWindow", "media_patterns"]

log = logging.getLogger("tingxie.app.window")

LIVE = "live"  # document key of the microphone transcript; file jobs use their job id
_RIGHT = Qt.DockWidgetArea.RightDockWidgetArea
_FALLBACK_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".mp4", ".mkv")


@dataclass(slots=True)
class Document:
    """One transcript shown in the view: finished segments, where its audio is, its info."""

    audio: str = ""
    segments: list[Segment] = field(default_factory=list)
    info: Any = None
    # Live: how many of `segments` are finals (engine.twopass); the rest are streamed and
    # shown until their final replaces them.
    finals: int = 0
    # Live: characters committed after the last closed segment (the one still open), and the
    # unstable tail, so that the view can be built again when the user comes back to it.
    open: list[Char] = field(default_factory=list)
    tail: tuple[Char, ...] = ()
    # Speakers to tell apart once it is transcribed (app.settings.SPEAKER_CHOICES, the
    # setting when it began), the names given to them, and its id in the library once there.
    speakers: str = "off"
    speaker_names: dict[int, str] = field(default_factory=dict)
    tid: int | None = None
    job: int | None = None  # its file job's id (None: a recording), for `file_transcribed`
    # Its segments let go of while another is shown, the library holding them (`_release`):
    # read back when it is shown again.
    released: bool = False
    # What Ctrl+Z undoes while it is shown (its speaker names), made on first use: its own,
    # so that it never undoes a change to another transcript.
    undo: QUndoStack | None = field(default=None, repr=False, compare=False)

    @property
    def still_open(self) -> bool:
        """Live: text is shown that no finished segment holds yet (Save leaves it out)."""
        return bool(self.open or self.tail)


@dataclass(frozen=True, slots=True)
class _LoadRequest:
    """One model load the window asked the worker for, and what its outcome means."""

    source: str
    backend: str  # the runtime it was asked on (app.settings.BACKENDS)
    # Why it stands in for the default model (the default's load error), else None.
    stands_in_for: object = None
    # The start's load of a model the user never chose: its failure opens a stand-in.
    startup: bool = False
    # A reload for a runtime change: the runtime before it (its failure goes back to it).
    runtime_from: str | None = None
    # The user chose it (Model → Choose…, Use the demo, a tuned or exported model): the next
    # start opens it once it has loaded; one that fails leaves the remembered model as it was.
    chosen: bool = False


@dataclass(slots=True)
class _Unstored:
    """A finished transcript the library could not take yet (a full disk): kept, and added with
    the next change to the library or at close (`MainWindow._store_unstored`)."""

    audio: str
    segments: list[Segment]
    info: Any
    doc: Document | None  # the document shown, which gets its id in the library once there
    tid: int | None = None  # added, its speaker names not yet


def media_patterns() -> str:
    """Glob patterns of every format the engine reads, for the Open dialog."""
    try:
        from engine.audio import SUPPORTED_EXTENSIONS
    except ImportError:
        SUPPORTED_EXTENSIONS = _FALLBACK_EXTENSIONS
    return " ".join(f"*{ext}" for ext in sorted(SUPPORTED_EXTENSIONS))


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class _WindowShortcuts(QObject):
    """Lets the window's own shortcuts win over a text box's key binding for the same keys
    (Linux text boxes take Ctrl+E as "end of line"), so Record, Stop, Save … work whatever
    widget has the focus.

    An event filter on the widget that gets the focus and its parents (a spin box hands the
    key to its line edit), not on the whole application: a Python filter on every event of the
    UI thread slowed it enough to drop waveform frames while recording."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self._window = window
        QApplication.instance().focusChanged.connect(self._focus_changed)

    def _focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        widget = new if new is not None and new.window() is self._window else None
        while widget is not None and widget is not self._window:
            widget.installEventFilter(self)  # installing it again does not add it twice
            widget = widget.parentWidget()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and self._claimed(
            QKeySequence(event.keyCombination())
        ):
            event.ignore()  # the widget does not take it: the shortcut fires
            return True
        return False

    def _claimed(self, pressed: QKeySequence) -> bool:
        exact = QKeySequence.SequenceMatch.ExactMatch
        return any(
            act.isEnabled() and act.shortcut().matches(pressed) == exact
            for act in self._window.actions()
        )


class MainWindow(QMainWindow):
    # (audio path, segments, TranscriptionInfo or None) for each finished recording or file.
    transcript_ready = Signal(str, list, object)
    # (job id, segments, info) of a queued file's, after its transcript_ready: by job, as the
    # watch folders need it (a path may be queued by the user too).
    file_transcribed = Signal(int, list, object)
    # The close is decided and the window is about to wait for the engine: it queues nothing
    # from now on (app.main stops taking a later start's files then, not once it has closed).
    closing = Signal()

    def __init__(
        self,
        handle: WorkerHandle,
        settings: app_settings.Settings,
        *,
        library: Store | None = None,
        player: Any = None,
    ) -> None:
        """`settings` owns the preferences; `library` is the transcript store (default: the
        user's, opened here) and `player` plays review spans (default: the sound card)."""
        super().__init__()
        self.handle = handle
        self.worker = handle.worker
        self.settings = settings
        self.documents: dict[Any, Document] = {LIVE: Document()}
        self.current = LIVE
        # The Review page changed the transcript shown while the Transcribe page was hidden:
        # the view is rebuilt when that page shows (`_page_changed`).
        self._view_stale = False
        self._job_ids = itertools.count(1)
        # Transcripts waiting for their speakers (engine.speakers in the worker), by request.
        self._speaker_requests = itertools.count(1)
        self._awaiting_speakers: dict[int, Document] = {}
        self._speakers_warned = False  # a failure was shown in a dialog since the setting
        self._ready: Document | None = None  # the document transcript_ready is announcing
        self._recording = self._paused = False
        # Stopped (capture ends at once), its last live text and recording_saved to come: the
        # worker sends them once free (a model load may hold them), and until then a new
        # recording would get that text.
        self._stopping = False
        # Recordings (made or recovered here) whose transcript has not been announced yet:
        # a close before it leaves them to be offered back at the next start.
        self._unkept: set[str] = set()
        self._unstored: list[_Unstored] = []  # transcripts the library could not take yet
        self._recording_status = "status.recording"  # what the status bar says while recording
        # The disk did not take all of the recording under way (its error): what it kept is
        # said once it stops (_recording_saved), not "saved".
        self._write_failure: Any = None
        # Why the input devices could not be listed (no PortAudio): Record is greyed out.
        self._devices_error: object = None
        self._closing_by_hand = False  # Quit (Ctrl+Q) is closing the window
        self._seconds = 0.0  # length of the recording shown by the elapsed label
        self._status = LiveText(self.statusBar().showMessage, self.statusBar().currentMessage)
        self.model: ModelSummary | None = None
        self._loading: str | None = None  # the source being loaded
        self._preparing = False  # that load makes this CPU's int8 copy first (said, reworded)
        # A status tip shown over the status bar's message: (the tip, the message under it).
        self._tip: tuple[str, str] | None = None
        # Loads asked for and not begun yet (the worker does them in order), the one it is
        # doing, and the last one asked for (which a runtime change applies to).
        self._requests: deque[_LoadRequest] = deque()
        self._current: _LoadRequest | None = None
        self._last_asked: _LoadRequest | None = None
        # The model the user asked for last, loaded or not: Model → Choose… opens on it, so
        # that a choice that failed can be corrected.
        self._choice = ""
        self._backend = settings.prefs.backend  # the runtime loads are asked on
        self._model_backend = self._backend  # the runtime the model in use was asked on
        set_language(self.prefs.language)
        self.setFont(cjk_font())
        self.setAcceptDrops(True)
        self.resize(1200, 800)
        self._build_actions()
        self._build_central()
        self._build_pages(library, player)
        self._build_docks()
        self._build_menus()
        self._connect_worker()
        settings.changed.connect(self._setting_changed)
        settings.save_failed.connect(self._settings_not_saved)
        self._settings_warned = False  # the dialog is shown once; the status bar after that
        self.retranslate()
        self._update_actions()
        self._restore_layout()

    @property
    def prefs(self) -> app_settings.Preferences:
        """The current preferences, read-only: change them with `settings.set`."""
        return self.settings.prefs

    # ---- construction --------------------------------------------------------------------
    def _build_actions(self) -> None:
        """Window-level actions: their keys work on every page, whatever has the focus (the
        pages' own keys are scoped to their page, e.g. the review's)."""

        def action(shortcut: str, slot) -> QAction:
            act = QAction(self)
            act.setShortcut(QKeySequence(shortcut))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            act.triggered.connect(slot)
            self.addAction(act)  # a shortcut even where no menu or toolbar shows it
            return act

        self.record_action = action("Ctrl+R", self.start_recording)
        self.pause_action = action("Ctrl+P", self.toggle_pause)
        self.stop_action = action("Ctrl+E", self.stop_recording)
        self.open_action = action("Ctrl+O", self.open_files)
        self.add_folder_action = action("", self.add_folder)
        self.watch_folders_action = action("", self.edit_watch_folders)
        self.save_action = action("Ctrl+S", self.save_transcript)
        self.quit_action = action("Ctrl+Q", self.quit)
        self.model_action = action("Ctrl+M", self.choose_model)
        self.demo_action = action("", self.use_demo_model)
        self.export_model_action = action("", self.export_model)
        self.share_model_action = action("", self.share_model)
        self.export_embeddings_action = action("", self.export_embeddings)
        self.cancel_all_action = action("", self.cancel_all)
        _WindowShortcuts(self)

    def _build_central(self) -> None:
        self.banner = ModelBanner()
        self.banner.choose_requested.connect(self.choose_model)
        self.banner.whisper_requested.connect(self.use_whisper_model)
        self.banner.demo_requested.connect(self.use_demo_model)
        self.banner.keep_requested.connect(self._keep_standing_in)
        self.waveform = WaveformView()
        self.transcript = TranscriptView(empty_hint=start_hint)
        self.transcript.set_threshold(self.prefs.threshold)
        self.confidence_bar = ConfidenceBar(self.prefs.threshold)
        self.confidence_bar.threshold_changed.connect(self.set_threshold)
        page = QWidget()
        page_layout = QVBoxLayout(page)
        page_layout.setContentsMargins(0, 0, 0, 0)
        # The recording's waveform on the Transcript page only: above the tabs it took the
        # height the other pages need at the default window size.
        page_layout.addWidget(self.waveform)
        page_layout.addWidget(self.confidence_bar)
        page_layout.addWidget(self.transcript, 1)
        # Undo of what the Transcript page changes (speaker names; the Review page has its own):
        # each transcript's own stack, the one shown active.
        self.transcript_undo = QUndoGroup(self)
        self.transcript.set_undo_stack(self.transcript_undo)
        self.transcript_undo.setActiveStack(self._undo_stack(self.documents[LIVE]))
        self.pages = QTabWidget()
        self._page_titles: dict[QWidget, str] = {}  # page -> i18n key of its tab title
        self.add_page(page, "page.transcript")
        self._transcript_page = page
        self.pages.currentChanged.connect(self._page_changed)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.banner)
        layout.addWidget(self.pages, 1)
        # Scrolled rather than the window kept taller than the tallest page needs (699 px):
        # a 1366x768 laptop leaves about 700 px, title bar included.
        self.setCentralWidget(_TallScroll(central))

        self.device_box = QComboBox()
        self.device_box.setMinimumWidth(220)
        self.device_box.activated.connect(self._device_chosen)
        self.device_label = QLabel()
        self.device_label.setBuddy(self.device_box)  # the label names the box to a screen reader
        self.refresh_devices_button = QToolButton()
        # The style's icon, not a "⟳" glyph: the CJK font the app uses has none.
        reload = self.style().standardIcon(self.style().StandardPixmap.SP_BrowserReload)
        self.refresh_devices_button.setIcon(reload)
        self.refresh_devices_button.clicked.connect(self.handle.list_devices)
        self.elapsed_label = QLabel()
        self.speakers_label = QLabel()
        self.speakers_box = QComboBox()
        self.speakers_label.setBuddy(self.speakers_box)
        for choice in app_settings.SPEAKER_CHOICES:
            self.speakers_box.addItem("", choice)
        self.speakers_box.setCurrentIndex(self.speakers_box.findData(self.prefs.speakers))
        self.speakers_box.activated.connect(
            lambda i: self.settings.set(speakers=self.speakers_box.itemData(i))
        )
        self.toolbar = QToolBar()
        self.toolbar.setObjectName("main-toolbar")
        for act in (self.record_action, self.pause_action, self.stop_action):
            self.toolbar.addAction(act)
        self.toolbar.addSeparator()
        self.toolbar.addWidget(self.device_label)
        self.toolbar.addWidget(self.device_box)
        self.toolbar.addWidget(self.refresh_devices_button)
        self.toolbar.addSeparator()
        self.toolbar.addWidget(self.speakers_label)
        self.toolbar.addWidget(self.speakers_box)
        self.toolbar.addSeparator()
        self.toolbar.addWidget(self.elapsed_label)
        self.addToolBar(self.toolbar)

        self.model_label = plain(QLabel())  # names the model folder or Hub id
        self.model_progress = QProgressBar()
        self.model_progress.setRange(0, 1000)
        self.model_progress.setMaximumWidth(200)
        self.model_progress.hide()
        self.statusBar().addPermanentWidget(self.model_progress)
        self.statusBar().addPermanentWidget(self.model_label)

    def _build_pages(self, library: Store | None, player: Any) -> None:
        """The pages after the transcript, in tab order, each built and wired by its own
        step. A library that cannot be opened leaves Review and Library out (recording and
        files still work) and says why."""
        self.review_panel: ReviewPanel | None = None
        self.library_view: LibraryView | None = None
        self.tune_page: TunePage | None = None
        self._own_library = library is None  # opened here, so closed here
        self.library = library if library is not None else self._open_library()
        if self.library is not None:
            self._build_review(self.library, player or SoundDevicePlayer(self))
            self._build_library(self.library)
        self._build_tune(self.library)
        # A new page goes here, after Tune: a _build_… step that add_page()s and wires it.

    def _open_library(self) -> Store | None:
        """The user's library; one an older Tingxie made is upgraded first, under a notice."""
        from engine.library.store import default_path

        try:
            with UpgradeNotice(default_path(), self) as notice:  # closed before any error
                return Store(on_upgrade=notice)
        except StoreError as e:
            log.error("%s", e)
            self.show_error("store", tr("store.failed", message=error_text(e)))
            return None

    def _build_review(self, library: Store, player: Any) -> None:
        panel = ReviewPanel(
            library,
            player,
            settings=self.settings,
            model_source=lambda: self.model.source if self.model else None,
        )
        self.add_page(panel, "page.review")
        # Building a training set writes audio clips: the worker does it, the panel shows it.
        panel.dataset_requested.connect(self.handle.build_dataset)
        self.worker.dataset_built.connect(panel.show_dataset)
        self.worker.dataset_failed.connect(panel.show_dataset_failed)
        self.transcript_ready.connect(self._add_to_library)
        panel.transcript_changed.connect(self._review_changed)
        panel.speakers_renamed.connect(self._review_changed)
        self.review_panel = panel

    def _build_library(self, library: Store) -> None:
        view = LibraryView(library)
        self.add_page(view, "page.library")
        view.open_requested.connect(self.open_in_review)
        view.deleted.connect(self._library_deleted)
        if self.review_panel is not None:
            self.review_panel.transcript_changed.connect(view.refresh_later)
        self.library_view = view

    def _build_tune(self, library: Store | None) -> None:
        """Tuning jobs run in a child process under a supervisor thread of their own; their
        folders live beside the library, whose training sets the page lists."""
        from engine.library.store import default_path

        root = (library.path if library is not None else default_path()).parent / "tuning"
        handle = SupervisorHandle(TuneSupervisor(root))
        handle.start_thread()
        sets = library.correction_sets if library is not None else list
        page = TunePage(handle, root, training_sets=sets)
        self.add_page(page, "page.tune")
        page.use_model_requested.connect(self.use_model)
        # Queued: it runs once the page has asked, deleted and switched back to the base.
        page.models.delete_requested.connect(
            self._forget_deleted, Qt.ConnectionType.QueuedConnection
        )
        page.export_requested.connect(self.open_export)  # the one Export dialog
        if self.review_panel is not None:
            self.review_panel.tune_requested.connect(self.open_tune)
        self.tune_page = page

    def open_tune(self, training_set: str) -> None:
        """The Tune page, with a training set made on the Review page selected and checked."""
        self.tune_page.open_training_set(training_set)
        self.pages.setCurrentWidget(self.tune_page)

    def _build_docks(self) -> None:
        self.queue = FileQueue()
        self.queue.cancel_requested.connect(self.cancel_file)
        self.queue.job_selected.connect(self.show_document)
        self.cancel_all_button = QPushButton()
        self.cancel_all_button.clicked.connect(self.cancel_all)
        self.live_button = QPushButton()
        self.live_button.clicked.connect(lambda: self.show_document(LIVE))
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.queue, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.live_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_all_button)
        layout.addLayout(buttons)
        # Below the pages: the queue gets the window's full width (all columns visible) and
        # leaves the pages their width.
        self.files_dock = self.add_dock(panel, "", Qt.DockWidgetArea.BottomDockWidgetArea)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        self.file_menu = bar.addMenu("")
        file_actions = (self.open_action, self.add_folder_action, self.watch_folders_action,
                        self.save_action, self.export_embeddings_action)  # fmt: skip
        for act in (*file_actions, None, self.quit_action):
            self.file_menu.addAction(act) if act else self.file_menu.addSeparator()
        self.file_menu.setToolTipsVisible(True)  # a greyed action says why
        self.model_menu = bar.addMenu("")
        self.model_menu.setToolTipsVisible(True)
        self.model_menu.addAction(self.model_action)
        self.model_menu.addAction(self.demo_action)
        self.model_menu.addSeparator()
        self.model_menu.addAction(self.export_model_action)
        self.model_menu.addAction(self.share_model_action)
        self.backend_menu = self.model_menu.addMenu("")
        backends = QActionGroup(self)
        self.backend_actions = {}
        for code in app_settings.BACKENDS:
            act = QAction("", self, checkable=True)
            act.setChecked(code == self.prefs.backend)
            act.triggered.connect(lambda _=False, c=code: self.settings.set(backend=c))
            backends.addAction(act)
            self.backend_menu.addAction(act)
            self.backend_actions[code] = act
        self.punctuation_action = QAction("", self, checkable=True)
        self.punctuation_action.setChecked(self.prefs.punctuation)
        self.punctuation_action.toggled.connect(lambda on: self.settings.set(punctuation=on))
        self.model_menu.addAction(self.punctuation_action)
        # Beam search, domain text and hotwords (app.decoding): it follows the settings itself.
        self.decoding_menu = DecodingMenu(self.settings, self.handle, self)
        self.model_menu.addMenu(self.decoding_menu)
        # The Files panel, closed with its title bar's button, comes back here (or by its key).
        self.view_menu = bar.addMenu("")
        files = self.files_dock.toggleViewAction()
        files.setShortcut(QKeySequence("Ctrl+J"))  # VS Code's bottom panel; no page's key
        self.addAction(files)  # its key wins over a text box's, as the others' (_WindowShortcuts)
        self.view_menu.addAction(files)
        self.language_menu = bar.addMenu("")
        group = QActionGroup(self)
        self.language_actions = {}
        for code, name in LANGUAGES.items():
            act = QAction(name, self, checkable=True)
            act.setChecked(code == self.prefs.language)
            act.triggered.connect(lambda _=False, c=code: self.set_language(c))
            group.addAction(act)
            self.language_menu.addAction(act)
            self.language_actions[code] = act
        self.help_menu = bar.addMenu("")
        self.about_action = self.help_menu.addAction("")
        self.about_action.triggered.connect(self.show_about)

    def _connect_worker(self) -> None:
        w = self.worker
        w.model_loading.connect(self._model_loading)
        w.model_progress.connect(self._model_progress)
        w.model_preparing.connect(self._model_preparing)
        w.model_loaded.connect(self._model_loaded)
        w.model_failed.connect(self._model_failed)
        w.devices_listed.connect(self._devices_listed)
        w.devices_failed.connect(self._devices_failed)
        w.audio_level.connect(self._audio_level)
        w.partial.connect(self._partial)
        w.live_behind.connect(self._live_behind)
        w.segment.connect(self._live_segment)
        w.final.connect(self._live_final)
        w.recording_started.connect(self._recording_started)
        w.recording_saved.connect(self._recording_saved)
        w.recording_lost.connect(self._recording_lost)
        w.unfinished_found.connect(self._unfinished_found)
        w.recovered.connect(self._recovered)
        # Bound methods of widgets only: a lambda has no receiver thread and would run in the
        # worker's thread.
        w.file_started.connect(self._file_started)
        w.file_info.connect(self._file_info)
        w.file_progress.connect(self.queue.set_progress)
        w.file_segment.connect(self._file_segment)
        w.file_done.connect(self._file_done)
        w.file_failed.connect(self._file_failed)
        w.file_cancelled.connect(self._file_cancelled)
        w.speakers_failed.connect(self._speakers_failed)
        w.speakers_done.connect(self._speakers_done)
        w.error.connect(self.show_error)
        w.error.connect(self._recording_failed)
        w.decoding_failed.connect(self._decoding_failed)
        self.transcript.speaker_rename_requested.connect(self.ask_rename_speaker)
        # Watch folders: polled once a model is loaded, files queued like any other.
        self.folder_watcher = FolderWatcher(self.settings, self.add_watched, self)
        self.folder_watcher.follow(w)
        self.file_transcribed.connect(self.folder_watcher.transcribed)
        self.folder_watcher.queued.connect(
            lambda folder, count: self._say("watch.queued", folder=folder, count=count)
        )
        self.folder_watcher.exported.connect(
            lambda _audio, files: self._say("watch.exported", files=", ".join(files))
        )
        self.folder_watcher.held_back.connect(
            lambda folder, failed: self._say(
                "watch.held_back", folder=folder, count=len(failed), name=failed[0].name
            )
        )
        self.folder_watcher.export_failed.connect(self._watch_export_failed)
        self.folder_watcher.reachable.connect(
            lambda folder, there: self._say("watch.back" if there else "watch.gone", folder=folder)
        )
        self._watch_warned: set[str] = set()  # watch outputs a dialog was shown for

    def _watch_export_failed(self, target: str, error: object) -> None:
        """A watch folder's transcript (or its state) could not be written: a dialog the first
        time for that file, the status bar after (while a disk stays full the same file comes
        back every few seconds)."""
        message = write_error_text(Path(target), error)
        if target in self._watch_warned:
            self._status.say(lambda: message)
            return
        self._watch_warned.add(target)
        self.show_error("file", message)

    # ---- extension points ----------------------------------------------------------------
    def add_page(self, widget: QWidget, title_key: str) -> int:
        """Add a tab titled by the i18n key `title_key`; on a language switch the title and
        the page (its `retranslate()`, when it has one) follow. Returns its index."""
        self._page_titles[widget] = title_key
        return self.pages.addTab(widget, tr(title_key))

    def add_dock(
        self, widget: QWidget, title: str, area: Qt.DockWidgetArea = _RIGHT
    ) -> QDockWidget:
        """Add a dockable panel (the file queue is one); returns the dock."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{len(self.findChildren(QDockWidget))}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _restore_layout(self) -> None:
        """The size, place and docks of the last close. Qt fits a geometry to a screen that
        has shrunk since, and keeps the default for a value that does not read."""
        geometry, state = self.settings.window_layout()
        if geometry and not self.restoreGeometry(QByteArray(geometry)):
            log.warning("the window's stored size does not read; the default is used")
        if state and not self.restoreState(QByteArray(state)):
            log.warning("the window's stored panels do not read; the default layout is used")

    # ---- startup -------------------------------------------------------------------------
    def start(self) -> None:
        """Ask the worker for devices, leftover recordings and the remembered model."""
        self.handle.list_devices_quietly.emit()  # no PortAudio: no dialog at every start
        self.handle.set_input_device.emit(self.prefs.input_device)
        self.handle.set_punctuation.emit(self.prefs.punctuation)
        self.decoding_menu.send()  # queued before the model: its load checks the files
        self.handle.scan_unfinished.emit(self.prefs.recordings_dir)
        source = self.prefs.model or _default_model()
        self._ask(_LoadRequest(source, self._backend, startup=True))

    def load_model(self, source: str) -> None:
        """Load `source` on the runtime chosen in Model → Runtime."""
        self._ask(_LoadRequest(source, self._backend))

    def _ask(self, request: _LoadRequest) -> None:
        self._requests.append(request)
        self._last_asked = request
        self.handle.set_backend.emit(request.backend)  # queued first: this load uses it
        self.handle.load_model.emit(request.source)

    def _load_begun(self, source: str) -> _LoadRequest:
        """The request the worker began loading `source` for (one asked another way: a plain
        one)."""
        if any(r.source == source for r in self._requests):
            while (request := self._requests.popleft()).source != source:
                log.warning("the load of %s was never begun", request.source)
            return request
        return _LoadRequest(source, self._backend)

    def _load_ended(self) -> _LoadRequest | None:
        request, self._current = self._current, None
        return request

    def _runtime_changed(self, backend: str) -> None:
        """Model → Runtime changed: the model asked for last (the one loading, if one is) is
        loaded again on it, once; with none asked for yet, the next load uses it."""
        before, self._backend = self._backend, backend
        if backend == before:
            return
        last = self._last_asked
        if last is None and self.model is not None:  # loaded some other way
            last = _LoadRequest(self.model.source, before)
        if last is None:
            return
        # A stand-in stays one (its banner and Keep it) until kept or replaced; the start's
        # load is one while it has not ended.
        chosen = self.prefs.model_chosen
        pending = last is self._current or any(r is last for r in self._requests)
        self._ask(
            replace(
                last,
                backend=backend,
                stands_in_for=None if chosen else last.stands_in_for,
                startup=last.startup and pending,
                runtime_from=before,
            )
        )

    def _undo_runtime(self, request: _LoadRequest) -> str:
        """A reload for a runtime change failed: back to the runtime of the model in use (the
        one before the change when none is), in the menu, the preferences and the worker.
        Returns that runtime."""
        back = self._model_backend if self.model is not None else request.runtime_from
        self._backend = back
        self.handle.set_backend.emit(back)
        self.settings.set(backend=back)  # the same as _backend: nothing is loaded again
        self.backend_actions[back].setChecked(True)
        return back

    # ---- exports, the Hub, embeddings ----------------------------------------------------
    def _model_source(self) -> str:
        return self.model.source if self.model else self.prefs.model or _default_model()

    def export_model(self) -> None:
        self.open_export(self._model_source())

    def open_export(self, source: str) -> ExportDialog:
        """The Export dialog with `source` preselected (a model, or a tuning job from the Tune
        page): window-modal, gone once closed."""
        dialog = ExportDialog(self.handle, source, self, loaded=self.model)
        dialog.use_requested.connect(self.use_model)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def share_model(self) -> None:
        ShareDialog(self.handle, self._model_source(), self).exec()

    def export_embeddings(self) -> None:
        """Vectors of the file shown (the recording or an opened file)."""
        EmbedDialog(self.handle, self.documents[self.current].audio, self).exec()

    # ---- model ---------------------------------------------------------------------------
    def choose_model(self) -> None:
        # the user's last choice (one that failed too, to correct it), else the model in use
        # (on a first start offline, the Whisper-base standing in; not the default it lacks)
        chosen = self._choice or (self.prefs.model if self.prefs.model_chosen else "")
        dialog = ModelDialog(chosen or self._model_source(), self)
        if dialog.exec() and dialog.source():
            self.use_model(dialog.source())

    def use_model(self, source: str) -> None:
        """Transcribe with `source` (a Hub id or folder, e.g. a tuned model) from now on, also
        after a restart once it has loaded (`_model_loaded` remembers it)."""
        self._choice = source
        self._ask(_LoadRequest(source, self._backend, chosen=True))

    def _forget_deleted(self, job_folder: str) -> None:
        """A tuned model's job folder was deleted in My models: a model remembered inside it is
        forgotten, so the next start opens the default model as a first start does (no error
        for a folder that is gone), unless the base the page switched back to loads and is
        remembered in its place. Nothing changes when the user said No or the delete failed:
        the folder is still there."""
        folder = Path(job_folder)
        if folder.exists():
            return
        if _inside(self.prefs.model, folder):
            self.settings.set(model="", model_chosen=False)
        if _inside(self._choice, folder):
            self._choice = ""  # Choose model… opens on the model in use instead

    def use_demo_model(self) -> None:
        demo = demo_model.demo_model_dir()
        if demo is not None:
            self.use_model(demo)  # remembered like any chosen model

    def use_whisper_model(self) -> None:
        """Whisper-base from the model cache, offered for real voices when a load failed."""
        whisper = demo_model.whisper_model_dir()
        if whisper is not None:
            self.use_model(whisper)

    def _model_loading(self, source: str) -> None:
        self._current = self._load_begun(source)
        self._loading, self._preparing = source, False
        self._show_model_status()
        self.model_progress.setRange(0, 0)  # busy until a download reports its bytes
        self.model_progress.show()

    def _show_model_status(self) -> None:
        """The status bar's model label, from the state: loading, the model in use, or none."""
        source = self._loading if self._loading is not None else getattr(self.model, "source", "")
        if self._loading is not None:
            key = "status.preparing_model" if self._preparing else "status.loading_model"
            text = tr(key, model=demo_model.model_display_name(source))
        elif self.model is not None:
            s = self.model
            dtype = _DTYPE_NAMES.get(s.dtype, s.dtype)
            text = tr(
                "status.model_ready",
                model=demo_model.model_display_name(source),
                device=s.device,
                dtype=dtype,
            )
        else:
            text = tr("status.no_model")
        self.model_label.setText(text)
        self.model_label.setToolTip(literal(source))  # the full folder or Hub id

    def _model_preparing(self) -> None:
        """The load makes an int8 copy first: say why it takes a minute, this once."""
        if self._loading is not None:
            self._preparing = True
            self._show_model_status()

    def _model_progress(self, fraction: float) -> None:
        self.model_progress.setRange(0, 1000)
        self.model_progress.setValue(round(1000 * fraction))

    def _model_loaded(self, summary: ModelSummary) -> None:
        request = self._load_ended()
        self.model, self._loading = summary, None
        self._model_backend = request.backend if request is not None else self._backend
        if request is not None and request.chosen:
            self.settings.set(model=request.source, model_chosen=True)
        self.model_progress.hide()
        self._show_model_status()
        # Why the demo (or Whisper-base) stands in at start, the default model missing, stays
        # visible above what stands in (also once loaded again on another runtime); an older
        # failure (a model chosen since, a stand-in that failed too) does not.
        reason = request.stands_in_for if request is not None else None
        if summary.is_demo:

            def message() -> str:
                demo_text = tr("status.demo_model")
                return f"{error_text(reason)}\n{demo_text}" if reason is not None else demo_text

            self.banner.show_message(message, offer_demo=False)
        elif reason is not None:  # another model stands in for the default (Whisper-base)
            name = demo_model.model_display_name(summary.source)

            def standing_in() -> str:
                return f"{error_text(reason)}\n{tr('status.fallback_model', model=name)}"

            self.banner.show_message(standing_in, offer_demo=False, offer_keep=True)
        elif summary.warnings:  # loaded, and to be used knowing this
            warnings = summary.warnings

            def warned() -> str:
                return "\n".join(error_text(w) for w in warnings)

            self.banner.show_message(warned, offer_demo=False)
        else:
            self.banner.hide()
        if self.tune_page is not None:
            self.tune_page.set_loaded_model(summary)
        self._update_actions()

    def _keep_standing_in(self) -> None:
        """The model that stood in for the missing default is kept: the next start opens it
        without trying the default first."""
        if self.model is not None:
            self.settings.set(model=self.model.source, model_chosen=True)

    def _model_failed(self, error: object) -> None:
        request = self._load_ended()
        self._loading = None
        if self.tune_page is not None and request is not None:
            self.tune_page.model_not_loaded(request.source)  # its "switching to…" is over
        self.model_progress.hide()
        self._show_model_status()  # the model still in use, if any
        if request is not None and self._requests:
            # Another model or runtime was asked for since: that load decides what is used.
            log.info("loading %s failed, another load follows: %s", request.source, error)
            return
        # The default checkpoint missing on first run is expected (offline machine): the app
        # opens ready to use, with Whisper-base when it is in the model cache (it understands
        # real voices), else the demo if there is one that runs on the runtime chosen, and
        # the reason in the banner. A model the user chose failing is an error worth a dialog.
        default_missing = request is not None and request.startup and not self.prefs.model_chosen
        ways = demo_model.ways_out(request.source, self._backend) if default_missing else ()
        fallback = next((way for way in ways if way is not None), None)
        if fallback is not None:
            self.banner.show_message(lambda: error_text(error), offer_demo=False)
            self._ask(_LoadRequest(fallback, self._backend, stands_in_for=error))
            return
        runtime: dict[str, str] = {}
        if request is not None and request.runtime_from is not None:
            # The runtime chosen cannot run this model: back to the one before, and the model
            # in use (if any) goes on; the next start loads on that runtime too.
            back = self._undo_runtime(request)
            runtime = dict(
                model=demo_model.model_display_name(request.source),
                runtime=f"backend.{request.backend}",
                back=f"backend.{back}",
            )
        # A stand-in that failed too: why the default model is missing stays said above it.
        reason = request.stands_in_for if request is not None else None

        def message(key: str = "runtime.failed") -> str:
            text = error_text(error)
            if not runtime:
                return text if reason is None else f"{error_text(reason)}\n{text}"
            names = dict(runtime, runtime=tr(runtime["runtime"]), back=tr(runtime["back"]))
            if self.model is not None:
                names["current"] = demo_model.model_display_name(self.model.source)
            return tr(key, message=text, **names)

        if runtime and self.model is not None:
            self.show_error("model", message("runtime.failed_kept"))
            return
        failed = request.source if request is not None else ""
        self._offer_ways_out(failed, message, dialog=not default_missing)

    def _offer_ways_out(self, failed: str, message: Message, *, dialog: bool) -> None:
        """The banner (and a `dialog`) say why `failed` did not load and offer what can be used
        instead: a folder, Whisper-base for real voices, the demo; never what just failed, nor
        the demo on a runtime it cannot run on (clicking it would fail the same way)."""
        whisper, demo = demo_model.ways_out(failed, self._backend)
        key = _WAYS_OUT[whisper is not None, demo is not None]
        # the demo left out for the runtime alone (not what failed): say how to have it
        there = demo_model.demo_model_dir() is not None
        runtime_only = there and demo is None and not demo_model.is_demo_model(failed)

        def text() -> str:
            said = tr(key, message=message())
            if runtime_only:
                said += "\n" + tr("dialog.demo_runtime", auto=tr("backend.auto"))
            return said

        self.banner.show_message(
            text, offer_demo=demo is not None, offer_whisper=whisper is not None
        )
        if dialog:
            self.show_error("model", text())

    # ---- recording -----------------------------------------------------------------------
    def start_recording(self) -> None:
        """Record at once, whatever the worker is busy with (it drives capture directly)."""
        if self._recording:
            return
        before = self.documents[LIVE]
        if before.undo is not None:  # its transcript is never shown here again
            before.undo.deleteLater()
        self.documents[LIVE] = Document(speakers=self.prefs.speakers)
        self.show_document(LIVE)
        self.waveform.reset()
        self.handle.start_recording.emit(self.prefs.recordings_dir)

    def toggle_pause(self) -> None:
        if not self._capturing:
            return
        self._paused = not self._paused
        signal = self.handle.pause_recording if self._paused else self.handle.resume_recording
        signal.emit()
        self._say("status.paused" if self._paused else self._recording_status)
        self._update_actions()

    def stop_recording(self) -> None:
        """Capture stops at once and its file is complete (nothing said after Stop is kept);
        the last live text and recording_saved follow once the worker gets to them."""
        if not self._capturing:
            return
        self._stopping = True
        self.handle.stop_recording.emit()
        self.waveform.meter.setValue(0)
        # "saved" once the worker reports it (_recording_saved), not before
        self._say("status.stopping", path=self.documents[LIVE].audio)
        self._update_actions()

    def _recording_lost(self, path: str) -> None:
        """The recording ended by itself (its device lost, the disk full): the handle stopped
        it and its error says why; this window stops as on Stop, not "Recording…" on."""
        if path == self.documents[LIVE].audio:
            self.stop_recording()

    @property
    def _capturing(self) -> bool:
        return self._recording and not self._stopping

    def _recording_started(self, path: str) -> None:
        self._recording, self._paused = True, False
        self._unkept.add(path)
        self.documents[LIVE].audio = path
        no_model = self.model is None
        self._recording_status = "status.recording_no_model" if no_model else "status.recording"
        self._say(self._recording_status)
        self._update_actions()

    def _recording_failed(self, kind: str, error: object) -> None:
        """Keep a write failure of the recording under way for its end (_recording_saved)."""
        if self._recording and getattr(error, "code", "") in _WRITE_FAILED:
            self._write_failure = error

    def _recording_saved(self, path: str, how: str, info: Any) -> None:
        """The worker saved the recording (EngineWorker.recording_saved): its live text goes on
        with the recording's info (the length the library lists, what Save writes), or its
        file is transcribed. One the disk did not take says what it kept, if anything."""
        self._recording = self._paused = self._stopping = False
        doc = self.documents[LIVE]
        doc.audio, doc.info = path, info
        self.waveform.meter.setValue(0)
        self._update_actions()
        failure, self._write_failure = self._write_failure, None
        # its file unreadable until the next start repairs it (the recorder left its marker)
        unrepaired = failure is not None and failure.code == "recording.write_failed"
        if failure is None:
            self._say("status.saved" if how == "live" else _SAVED_WITHOUT_LIVE_TEXT[how], path=path)
        elif unrepaired:
            self._say("status.saved_unrepaired", path=path)
        elif failure.params["seconds"]:
            self._say("status.saved_part", path=path, seconds=failure.params["seconds"])
        else:  # no audio, so no text: nothing to transcribe or offer back
            self._unkept.discard(path)
            self._say("status.not_saved", path=path)
            return
        if how == "live":
            self._transcribed(doc)
        elif not unrepaired:
            # No live text (no model when it began, or its live stream failed): the file is
            # queued like an opened one (waiting in the Files panel for a model when none is),
            # and its transcript then reaches the view and the library.
            self.add_files([path])

    def _live_behind(self, seconds: float) -> None:
        """The live text is late (the model runs slower than speech here): say so while it is."""
        if seconds > 0:
            self._say("status.live_behind", seconds=seconds)
        elif self._capturing:
            self._say(self._recording_status)

    def _audio_level(self, points, level: int, seconds: float) -> None:
        self.waveform.add_envelope(points, level)
        self._seconds = seconds
        self.elapsed_label.setText(tr("label.elapsed", time=_elapsed(seconds)))

    def _partial(self, committed: tuple, tail: tuple) -> None:
        doc = self.documents[LIVE]
        doc.open += committed
        doc.tail = tail
        if self.current == LIVE:
            self.transcript.apply_update(committed, tail)

    def _live_segment(self, segment: Segment) -> None:
        doc = self.documents[LIVE]
        segments = doc.segments
        first = sum(len(s.chars) for s in segments)
        segments.append(segment)
        del doc.open[: len(segment.chars)]  # (what follows was committed after its pause)
        if self.current == LIVE:
            self.transcript.set_marks(first, segment.chars)  # shown unpunctuated so far
            self.transcript.end_segment(first + len(segment.chars))

    def _live_final(self, final: Any) -> None:
        """A finished live segment decoded again (engine.stream.SegmentFinal): its final
        text takes the place of its streamed text, in the document and in the view."""
        doc = self.documents[LIVE]
        k = doc.finals
        first = sum(len(s.chars) for s in doc.segments[:k])
        if final.replaces and k < len(doc.segments):
            doc.segments[k : k + 1] = [final.segment] if final.segment.chars else []
        elif final.segment.chars:
            doc.segments.insert(k, final.segment)
        doc.finals = k + bool(final.segment.chars)
        if self.current == LIVE:
            self.transcript.replace_chars(first, final.replaces, final.segment.chars)

    def _devices_listed(self, devices: list) -> None:
        """The box shows the device Record records from, and the worker is told it: the one
        chosen, under the name it has now (a USB microphone's ALSA card number changes), else
        the system default (the box said so while Record tried the saved name and failed)."""
        names = [str(getattr(device, "name", device)) for device in devices]
        self._devices_error = None  # devices_failed follows when the listing failed
        self._update_actions()
        self.device_box.clear()
        self.device_box.addItem("", "")  # the system default; named below
        for name in names:
            self.device_box.addItem(name, name)
        shown = find_device_name(self.prefs.input_device, names) or ""
        self.device_box.setCurrentIndex(max(0, self.device_box.findData(shown)))
        self._name_default_device()
        self.handle.set_input_device.emit(shown)

    def _devices_failed(self, error: object) -> None:
        """The devices cannot be listed (no PortAudio): Record is greyed out, its tooltip and
        the status bar saying why and what to install; a listing that works gives it back.
        A dialog comes only when the user asked (the worker's `error` then)."""
        self._devices_error = error
        self._update_actions()
        self._say("status.no_microphone", message=error_text(error))

    def _name_default_device(self) -> None:
        """The first entry: the system default, or that no microphone was found at all."""
        if self.device_box.count():
            key = "label.default_device" if self.device_box.count() > 1 else "label.no_device"
            self.device_box.setItemText(0, tr(key))

    def _device_chosen(self, index: int) -> None:
        self.settings.set(input_device=str(self.device_box.itemData(index) or ""))
        self.handle.set_input_device.emit(self.prefs.input_device)

    def _unfinished_found(self, paths: list) -> None:
        answer = QMessageBox.question(
            self, tr("app.title"), tr("dialog.unfinished", count=len(paths))
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.handle.recover.emit(paths)

    def _recovered(self, path: str) -> None:
        self._say("dialog.recovered", path=path)
        self._unkept.add(path)
        self.add_files([path])

    # ---- files ---------------------------------------------------------------------------
    def open_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, tr("dialog.open_files"), "", tr("dialog.media_filter", patterns=media_patterns())
        )
        self.add_files(paths)

    def add_folder(self, folder: str = "") -> list[int]:
        """Queue the audio and video files of a folder (subfolders too), after a count."""
        return self.add_files(ask_folder_files(self, folder))

    def edit_watch_folders(self) -> None:
        WatchFoldersDialog(self.settings, self, self.folder_watcher).exec()

    def add_files(self, paths: list[str]) -> list[int]:
        """Queue files for transcription; returns their job ids. One waiting or transcribed
        already is not queued again (said): it would be transcribed, and stored, twice."""
        jobs = []
        paths, again = self.queue.split_queued(paths)
        if again:
            self._say("queue.already", count=len(again), name=Path(again[0]).name)
        for path in paths:
            job_id = next(self._job_ids)
            self.documents[job_id] = Document(audio=path, speakers=self.prefs.speakers, job=job_id)
            self.queue.add(job_id, path)
            self.handle.enqueue_file.emit(job_id, path)
            jobs.append(job_id)
        if jobs:
            self.files_dock.show()
        return jobs

    def add_watched(self, paths: list[str]) -> list[int | None]:
        """`add_files` for the watch folders: the job id of each of `paths`, None for one not
        queued (waiting or running already)."""
        jobs = {self.queue.path(job_id): job_id for job_id in self.add_files(paths)}
        return [jobs.get(path) for path in paths]

    def cancel_file(self, job_id: int) -> None:
        self.handle.cancel_file(job_id)

    def cancel_all(self) -> None:
        """Every file the queue shows waiting or running, those the engine thread has not
        taken in yet too (added while it was inside a model step or load)."""
        for job_id in self.queue.active_jobs():
            self.cancel_file(job_id)

    def _file_started(self, job_id: int) -> None:
        self.queue.set_state(job_id, "running")

    def _file_info(self, job_id: int, info: Any) -> None:
        self.documents[job_id].info = info  # its length, for a Save before it is done

    def _file_failed(self, job_id: int, error: object) -> None:
        self.queue.set_state(job_id, "failed", error)

    def _file_cancelled(self, job_id: int) -> None:
        self.queue.set_state(job_id, "cancelled")

    def _file_segment(self, job_id: int, segment: Segment) -> None:
        self.documents[job_id].segments.append(segment)
        if self.current == job_id:
            self.transcript.append_segment(segment)

    # ---- library and review --------------------------------------------------------------
    def _add_to_library(self, audio: str, segments: list, info: Any) -> None:
        """Every finished recording or file goes into the library; the first one since the
        start opens in review. One the library cannot take (a full disk) is kept, said so, and
        added with the next change to the library, or at close (`_store_unstored`)."""
        if not segments:
            return
        self._unstored.append(_Unstored(audio, list(segments), info, self._ready))
        error = self._store_unstored()
        if error is not None:
            text = tr("library.not_added", names=self._unstored_names(), message=error_text(error))
            self.show_error("store", text)

    def _store_unstored(self) -> StoreError | None:
        """Add the transcripts kept for the library, oldest first; the error when one still
        fails (kept, with those after it)."""
        while self._unstored:
            item = self._unstored[0]
            try:
                if item.tid is None:
                    item.tid = self.library.add_transcript(
                        item.segments, audio=item.audio or None, info=item.info
                    )
                if item.doc is not None:  # named before it was stored: the names go with it
                    item.doc.tid = item.tid
                    for speaker, name in item.doc.speaker_names.items():
                        self.library.rename_speaker(item.tid, speaker, name)
            except StoreError as e:
                return e
            del self._unstored[0]
            self.library_view.refresh()
            if self.review_panel.session is None:
                self.review_panel.open(item.tid)
            if item.doc is not None:
                self._release(item.doc)
        return None

    def _unstored_names(self) -> str:
        return ", ".join(Path(item.audio).name or "—" for item in self._unstored)

    def _library_takes_the_rest(self) -> bool:
        """At close: the transcripts kept for the library are added, or the user chooses
        between closing without them (Save keeps a file of each) and staying."""
        error = self._store_unstored()
        if error is None:
            return True
        question = tr(
            "library.close_unadded", names=self._unstored_names(), message=error_text(error)
        )
        return self._close_unsaved("page.library", question)

    def open_in_review(self, tid: int) -> None:
        self.review_panel.open(tid)
        self.pages.setCurrentWidget(self.review_panel)

    def _library_deleted(self, tids: list[int]) -> None:
        """Transcripts deleted on the Library page let go of: the one open on the Review page
        closes (a decision, or the close's save, raised TranscriptNotFound), a document on the
        Transcribe page keeps its text but no longer its id, and one the library took without
        its speaker names is not tried again. A speaker renamed later wrote to the deleted id,
        which SQLite gives again to the next transcript stored."""
        gone = set(tids)
        panel = self.review_panel
        if panel is not None and panel.session is not None and panel.session.tid in gone:
            panel.close_transcript()
        for doc in self.documents.values():
            if doc.tid in gone:
                doc.tid = None
                doc.released = False  # nothing to read back: its text was the library's
        self._unstored = [item for item in self._unstored if item.tid not in gone]

    def _file_done(self, job_id: int, info: Any) -> None:
        doc = self.documents[job_id]
        doc.info = info
        self.queue.set_state(job_id, "done")
        if self.current == LIVE and not self._recording and not self.documents[LIVE].segments:
            self.show_document(job_id)
        self._transcribed(doc)

    def show_document(self, key: Any) -> None:
        """Show a transcript in the view: LIVE or a file job id. The microphone's waveform
        shows with the live transcript only (beside a file's it showed another recording).
        The one shown before lets go of its text where the library holds it (`_release`)."""
        before = self.documents.get(self.current)
        self.current = key
        doc = self.documents[key]
        if doc.released:
            self._reload(doc)
        if before is not None:
            self._release(before)
        self._view_stale = False
        self.transcript_undo.setActiveStack(self._undo_stack(doc))
        self.transcript.set_segments(doc.segments, doc.speaker_names)
        if doc.still_open:
            self.transcript.apply_update(tuple(doc.open), doc.tail)
        self.waveform.setVisible(key == LIVE)

    def _page_changed(self, index: int) -> None:
        """The Transcribe page shows again: its transcript, changed on the Review page while
        the page was hidden, is rebuilt now."""
        if self._view_stale and self.pages.widget(index) is self._transcript_page:
            self.show_document(self.current)

    def _release(self, doc: Document) -> None:
        """Let go of the segments of a finished transcript the library holds, unless it is
        the one shown: each file queued kept its text for the whole session (32 MB for a
        3-hour recording, GBs for a batch). Shown again, it is read back (`_reload`)."""
        if doc.tid is not None and not doc.released and doc is not self.documents[self.current]:
            doc.segments, doc.released = [], True

    def _reload(self, doc: Document) -> None:
        """The segments of `doc`, let go of, read back: from the Review page's session when it
        has the transcript open (its changes may not be saved yet: a full disk), else from
        the library. One the library cannot give back stays empty, and a dialog says why."""
        panel = self.review_panel
        session = panel.session if panel is not None else None
        try:
            if session is not None and session.tid == doc.tid:
                doc.segments = list(session.segments)
            else:
                doc.segments = self.library.segments(doc.tid)
        except (StoreError, KeyError) as e:  # KeyError: deleted elsewhere (the command line)
            self.show_error("store", e)
            return
        doc.released = False

    def _undo_stack(self, doc: Document) -> QUndoStack:
        """`doc`'s own undo stack, in the group Ctrl+Z acts on: with one stack for all of them,
        Ctrl+Z on one transcript undid a rename in another, unseen."""
        if doc.undo is None:
            doc.undo = QUndoStack(self.transcript_undo)
        return doc.undo

    # ---- speakers ------------------------------------------------------------------------
    def _transcribed(self, doc: Document) -> None:
        """A recording or file is transcribed: its speakers are told apart first when the
        setting asked for them (in the worker), then it goes on (`transcript_ready`)."""
        if doc.speakers == "off" or not doc.segments or not doc.audio:
            self._announce(doc)
            return
        key = next(self._speaker_requests)
        self._awaiting_speakers[key] = doc
        self._say("status.speakers", path=doc.audio)
        request = SpeakersRequest(key, doc.audio, tuple(doc.segments), doc.speakers)
        self.handle.label_speakers.emit(request)

    def _announce(self, doc: Document) -> None:
        """transcript_ready for `doc` (its slots see it as `_ready`: the library keeps its id),
        then file_transcribed for a file's. A slot's modal dialog lets the next file's
        announce run inside this one: `_ready` is what it was after that, and the job goes
        by its id (found as `_ready` after the dialog, it was lost, its exports unwritten)."""
        self._unkept.discard(doc.audio)
        segments = list(doc.segments)
        before, self._ready = self._ready, doc
        try:
            self.transcript_ready.emit(doc.audio, segments, doc.info)
        finally:
            self._ready = before
        if doc.job is not None:
            self.file_transcribed.emit(doc.job, segments, doc.info)

    def _speakers_done(self, key: int, segments: list) -> None:
        doc = self._awaiting_speakers.pop(key, None)
        if doc is None:
            return
        doc.segments = list(segments)
        if self.documents.get(self.current) is doc:
            self.transcript.set_segments(doc.segments, doc.speaker_names)
        self._announce(doc)

    def _speakers_failed(self, key: int, error: object) -> None:
        """The transcript goes on without speakers (speakers_done follows); why is shown in a
        dialog once (the optional package missing: what to install), then in the status bar."""
        from engine.speakers import SpeakersUnavailable

        doc = self._awaiting_speakers.get(key)
        path = doc.audio if doc is not None else ""

        def message() -> str:
            if isinstance(error, SpeakersUnavailable):
                return error_text(error)
            return tr("speakers.failed", path=path, message=error_text(error))

        if self._speakers_warned:
            self._status.say(message)
            return
        self._speakers_warned = True
        self.show_error("speakers", message())

    def _settings_not_saved(self, path: str) -> None:
        """Preferences that cannot be written: a dialog once, the status bar after."""
        if self._settings_warned:
            self._status.say(lambda: tr("settings.not_saved", path=path))
            return
        self._settings_warned = True
        self.show_error("settings", tr("settings.not_saved", path=path))

    def ask_rename_speaker(self, speaker: int) -> None:
        """Ask for a new name of a speaker of the transcript shown (its label was clicked)."""
        name = ask_speaker_name(self, self.transcript.speaker_label(speaker))
        if name is not None:
            self.rename_speaker(speaker, name)

    def rename_speaker(self, speaker: int, name: str) -> None:
        """Call `speaker` `name` everywhere in the transcript shown: its labels, its exports
        and, once it is in the library, there. Undoable: on the Review page's stack when the
        transcript is open there, else on this page's (Ctrl+Z, or the view's menu). An empty
        name gives back 说话人 N. The name shown, typed again (the rename box starts with it),
        renames nothing."""
        doc = self.documents[self.current]
        shown = self.transcript.speaker_label(speaker)
        new = speaker_name(speaker, renamed_speakers(doc.speaker_names, speaker, name))
        if new == shown:
            return
        panel = self.review_panel
        session = panel.session if panel is not None else None
        if doc.tid is not None and session is not None and session.tid == doc.tid:
            panel.rename_speaker(speaker, name)  # its undo stack; _review_changed follows
            return
        before = doc.speaker_names.get(speaker, "")
        label = partial(tr, "undo.rename_speaker", old=shown, name=new)
        rename = partial(self._name_speaker, doc)
        self._undo_stack(doc).push(RenameSpeakerCommand(rename, speaker, before, name, label))

    def _name_speaker(self, doc: Document, speaker: int, name: str) -> None:
        panel = self.review_panel
        if panel is not None and panel.session is not None and panel.session.tid == doc.tid:
            # Opened on the Review page since: its session holds the names and saves them
            panel.name_speaker(speaker, name)  # _review_changed follows
            return
        names = renamed_speakers(doc.speaker_names, speaker, name)
        if doc.tid is not None and self.library is not None:
            try:
                names = self.library.rename_speaker(doc.tid, speaker, name)
            except StoreError as e:
                self.show_error("store", e)
                return
            if self.library_view is not None:
                self.library_view.refresh_later()
        doc.speaker_names = names
        if self.documents.get(self.current) is doc:
            self.transcript.set_speaker_names(names)

    def _review_changed(self, *_: object) -> None:
        """The transcript open on the Review page changed there (a fix, an undo, a speaker
        renamed): the same here, where Save writes it. Its session holds what the user sees
        there, saved to the library or not yet (a failed save). The view is rebuilt when the
        Transcribe page shows (`_page_changed`): rebuilt behind the Review page after every
        decision, a 3-hour transcript took seconds a decision."""
        self._store_unstored()  # the library takes changes again: those it could not, too
        session = self.review_panel.session
        if session is None:
            return
        for doc in self.documents.values():
            if doc.tid != session.tid:
                continue
            doc.speaker_names = dict(session.speaker_names)
            if doc.released:
                continue  # read back from the session when shown
            changed = doc.segments != session.segments
            doc.segments = list(session.segments)
            if self.documents.get(self.current) is not doc:
                continue
            if not changed:
                self.transcript.set_speaker_names(doc.speaker_names)
            elif self.pages.currentWidget() is self._transcript_page:
                self.transcript.set_segments(doc.segments, doc.speaker_names)
            else:
                self._view_stale = True

    def _close_unsaved(self, page: str, question: str) -> bool:
        """Changes on `page` could not be saved (`question` says which): close anyway (losing
        them) or stay?"""
        answer = QMessageBox.warning(
            self,
            tr(page),
            literal(question),
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Discard

    def dragEnterEvent(self, event) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        """Dropped files are queued; a dropped folder as File → Add folder… does it (its files
        counted, and queued once the user agrees)."""
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        event.acceptProposedAction()
        self.add_files([p for p in paths if Path(p).is_file()])
        for folder in (p for p in paths if Path(p).is_dir()):
            self.add_folder(folder)

    def save_transcript(self) -> None:
        """Save what the user sees: on the Review page the edited text, else the transcript."""
        panel = self.review_panel
        if panel is not None and self.pages.currentWidget() is panel and panel.session:
            panel.export_dialog()
            return
        doc = self.documents[self.current]
        if not doc.segments:
            QMessageBox.information(self, tr("app.title"), tr("dialog.nothing_to_save"))
            return
        reached = self._partial_extent(doc)
        if not self._confirm_save(doc, reached):
            return
        from engine import writers

        target = ask_save_path(self, tr("dialog.save_transcript"), doc.audio)
        if target is None:
            return
        try:
            written = writers.write(doc.segments, target, info=doc.info, speakers=doc.speaker_names)
        except (OSError, ValueError) as e:
            self.show_error("file", write_error_text(target, e))
            return
        if reached:
            self._say("dialog.saved_partial", reached=reached, path=str(written))
        else:
            self._say("dialog.saved", path=str(written))

    def _partial_extent(self, doc: Document) -> str:
        """How far the transcript shown reaches while it is only part of one (a recording
        still going on or its last text still to come; a file still transcribing, cancelled
        or failed), of how long when known: "01:00 of 1:00:00"; empty for a whole one."""
        if self.current == LIVE:
            if not (self._recording or doc.still_open):
                return ""
        elif self.queue.state(self.current) == "done":
            return ""
        reached = _elapsed(doc.segments[-1].end)
        total = getattr(doc.info, "duration", 0.0)
        return tr("save.position", done=reached, total=_elapsed(total)) if total > 0 else reached

    def _confirm_save(self, doc: Document, reached: str) -> bool:
        """Save a transcript that is not whole yet: part of a recording or file (`reached`),
        or one whose speakers are still being told apart? Saved silently, it passed for the
        whole one."""
        file = Path(doc.audio).name
        if reached:
            state = "recording" if self.current == LIVE else self.queue.state(self.current)
            question = tr(f"save.partial.{state}", file=file, reached=reached)
        elif any(waiting is doc for waiting in self._awaiting_speakers.values()):
            question = tr("save.no_speakers", file=file)
        else:
            return True
        answer = QMessageBox.question(self, tr("dialog.save_transcript"), literal(question))
        return answer == QMessageBox.StandardButton.Yes

    # ---- settings, language, errors ------------------------------------------------------
    def set_threshold(self, threshold: float) -> None:
        self.settings.set(threshold=threshold)

    def set_language(self, code: str) -> None:
        self.settings.set(language=code)

    def _setting_changed(self, name: str, value: Any) -> None:
        """Follow the settings, whichever page changed them."""
        if name == "threshold":
            self.confidence_bar.set_threshold(value)
            self.transcript.set_threshold(value)
        elif name == "punctuation":
            self.punctuation_action.setChecked(value)
            self.handle.set_punctuation.emit(value)  # for what is transcribed from now on
        elif name == "speakers":
            self.speakers_box.setCurrentIndex(self.speakers_box.findData(value))
            self._speakers_warned = False  # a new choice: a failure is worth a dialog again
        elif name == "backend":
            self.backend_actions[value].setChecked(True)
            self._runtime_changed(value)  # the new runtime applies from now on
        elif name == "language":
            set_language(value)
            self.language_actions[value].setChecked(True)
            self.retranslate()

    def _say(self, key: str, **values: Any) -> None:
        """Show a status bar message, reworded by a language switch while it shows."""
        self._status.say(lambda: tr(key, **values))

    def event(self, event: QEvent) -> bool:
        """Status tips. A menu item highlighted sends an empty one, which erased the status
        bar's message: "Recording…", why the live text lags, and what a switch from the
        Language menu was to reword. An empty tip is dropped, unless it ends a real tip shown
        over the message: the message comes back then, in the language of the moment."""
        if event.type() != QEvent.Type.StatusTip:
            return super().event(event)
        bar, tip = self.statusBar(), event.tip()
        on_show = self._tip is not None and bar.currentMessage() == self._tip[0]
        if tip:
            self._tip = (tip, self._tip[1] if on_show else bar.currentMessage())
            bar.showMessage(tip)
            return True
        if on_show:  # (a message said over the tip since stays)
            bar.showMessage(self._tip[1])
            self._status.retranslate()
        self._tip = None
        return True

    def _decoding_failed(self, part: str, error: object) -> None:
        """The worker could not use the domain text, the hotwords or the language model:
        files and live text go on without it, and the user learns which file and what to do."""
        self.show_error("model", failure_text(part, error))

    def show_error(self, kind: str, error: object) -> None:
        """A dialog for an error (an engine error is worded in the UI language) or a message."""
        title = tr("dialog.microphone") if kind == "microphone" else tr("dialog.error")
        QMessageBox.warning(self, title, literal(error_text(error)))

    def retranslate(self) -> None:
        self.setWindowTitle("Tingxie 听写")
        for stack in self.transcript_undo.stacks():
            retranslate_undo(stack)
        texts = {
            self.record_action: "action.record",
            self.stop_action: "action.stop",
            self.open_action: "action.open",
            self.add_folder_action: "action.add_folder",
            self.watch_folders_action: "action.watch_folders",
            self.save_action: "action.save",
            self.quit_action: "action.quit",
            self.model_action: "action.choose_model",
            self.demo_action: "action.use_demo",
            self.cancel_all_action: "action.cancel_all",
            self.export_model_action: "action.export_model",
            self.share_model_action: "action.share_model",
            self.export_embeddings_action: "action.export_embeddings",
        }
        for act, key in texts.items():
            act.setText(tr(key))
            act.setToolTip(_tooltip(act))
        self._update_actions()  # the pause text, and what is greyed out says why anew
        self.file_menu.setTitle(tr("menu.file"))
        self.model_menu.setTitle(tr("menu.model"))
        self.view_menu.setTitle(tr("menu.view"))
        self.language_menu.setTitle(tr("menu.language"))
        self.help_menu.setTitle(tr("menu.help"))
        self.about_action.setText(tr("action.about"))
        self.backend_menu.setTitle(tr("menu.backend"))
        self.punctuation_action.setText(tr("action.punctuation"))
        self.decoding_menu.retranslate()
        for code, act in self.backend_actions.items():
            act.setText(tr(f"backend.{code}"))
        for page, key in self._page_titles.items():
            self.pages.setTabText(self.pages.indexOf(page), tr(key))
            if hasattr(page, "retranslate"):
                page.retranslate()
        self.files_dock.setWindowTitle(tr("page.files"))  # and its View menu item's text
        retranslate_qt_buttons(self)  # the dock's float and close, the tabs' scroll arrows
        self.cancel_all_button.setText(tr("action.cancel_all"))
        self.live_button.setText(tr("action.show_live"))
        self.device_label.setText(tr("label.device"))
        self.refresh_devices_button.setToolTip(tr("action.refresh_devices"))
        self.refresh_devices_button.setAccessibleName(tr("action.refresh_devices"))  # an icon
        self.queue.setAccessibleName(tr("page.files"))  # as its panel's title
        self.elapsed_label.setText(tr("label.elapsed", time=_elapsed(self._seconds)))
        self.speakers_label.setText(tr("label.speakers"))
        self.speakers_box.setToolTip(tr("speakers.tooltip"))
        self.speakers_label.setToolTip(tr("speakers.tooltip"))
        for i, choice in enumerate(app_settings.SPEAKER_CHOICES):
            key = f"speakers.choice.{choice}" if not choice.isdigit() else "speakers.choice.count"
            self.speakers_box.setItemText(i, tr(key, count=choice))
        self._name_default_device()
        self._status.retranslate()
        self.confidence_bar.retranslate()
        self.transcript.retranslate()  # its empty page's hint
        self.banner.retranslate()
        self.queue.retranslate()
        self._show_model_status()

    def show_about(self) -> None:
        from .about import AboutDialog

        AboutDialog(self.model.source if self.model else None, self).exec()

    def _update_actions(self) -> None:
        no_devices = "" if self._devices_error is None else error_text(self._devices_error)
        grey_out(self.record_action, no_devices, _tooltip(self.record_action))
        # nor while a stop is finishing
        self.record_action.setEnabled(not no_devices and not self._recording)
        self.pause_action.setEnabled(self._capturing)
        self.stop_action.setEnabled(self._capturing)
        self.pause_action.setText(tr("action.resume") if self._paused else tr("action.pause"))
        self.pause_action.setToolTip(_tooltip(self.pause_action))  # its keys, as Record's
        # The device is chosen between recordings (a recording is one file from one device).
        self.device_box.setEnabled(not self._recording)
        self.refresh_devices_button.setEnabled(not self._recording)
        self._grey_out_features()

    def _grey_out_features(self) -> None:
        """What the loaded model's family cannot do (engine.registry, through the worker's
        ModelSummary) is disabled, its tooltip saying why and what to do; nothing is while no
        model is loaded. Formats in the Export dialog and tuning on the Tune page follow the
        model they are given (app.features)."""
        caps = capabilities(self.model.source, self.model) if self.model else None
        act = self.export_embeddings_action
        why = caps.why_not("embeddings") if caps else ""
        grey_out(act, why, _tooltip(act))
        self.decoding_menu.set_unavailable(caps.why_not("language_model") if caps else "")
        # Model → Runtime and Add punctuation, for a family that runs and punctuates itself
        grey_out(self.backend_menu.menuAction(), caps.why_not("runtime") if caps else "")
        grey_out(self.punctuation_action, caps.why_not("punctuation") if caps else "")
        if self.review_panel is not None:
            self.review_panel.set_capabilities(caps)

    def quit(self) -> None:
        """Ctrl+Q, File → Quit: the user's close, which asks before it drops queued files."""
        self._closing_by_hand = True
        try:
            self.close()
        finally:
            self._closing_by_hand = False

    def _confirm_dropping_files(self) -> bool:
        """Files waiting or being transcribed stop with the window, and nothing queues them
        again at the next start: quit anyway, or stay? Nothing is asked when none are."""
        count = len(self.queue.active_jobs())
        if not count:
            return True
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(tr("app.title"))
        box.setText(tr("quit.files_busy", count=count))
        quit_anyway = box.addButton(tr("quit.anyway"), QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
        box.exec()
        return box.clickedButton() is quit_anyway

    def closeEvent(self, event) -> None:
        """The user's close (Quit, or the window system's: the title bar, Alt+F4) asks first
        about queued files and a fix typed on the Review page but not entered; a close by code
        (a session ending, tests) has decided already."""
        by_hand = self._closing_by_hand or event.spontaneous()
        if by_hand and not self._confirm_dropping_files():
            event.ignore()
            return
        if self.tune_page is not None and not self.tune_page.confirm_close():
            event.ignore()  # a tuning job runs and the user chose to stay
            return
        panel = self.review_panel
        if by_hand and panel is not None and not panel.settle_typing():
            event.ignore()  # a fix typed on the Review page, not entered: the user stays
            return
        if (
            panel is not None
            and not panel.save_pending()
            and not self._close_unsaved("page.review", tr("review.close_unsaved"))
        ):
            event.ignore()  # review changes still cannot be saved, and the user stays
            return
        if not self._library_takes_the_rest():
            event.ignore()  # transcripts the library still cannot take, and the user stays
            return
        if self.tune_page is not None:
            self.tune_page.close_now()  # the close is certain: a job the user stops stops now
        self.closing.emit()
        # Before the hide below: a hidden window's docks would be saved as closed.
        self.settings.keep_window_layout(self.saveGeometry().data(), self.saveState().data())
        self.stop_recording()  # at once: the file is complete; its text comes back below
        # Gone from the screen before the wait below (up to 15 s while a model loads): events
        # pass once so that the window system hears of it (Wayland sends its requests then),
        # but no input and no socket's (a second start's files would be queued to be lost).
        self.hide()
        QCoreApplication.processEvents(
            QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents
            | QEventLoop.ProcessEventsFlag.ExcludeSocketNotifiers
        )
        self.handle.stop()  # the worker ends what it was sent (the recording's rest) and stops
        self._take_last_results()
        if self.tune_page is not None:
            self.tune_page.shutdown()  # a job the user let run goes on in its own process
        if self._own_library and self.library is not None:
            self.library.close()
        super().closeEvent(event)

    def _take_last_results(self) -> None:
        """What the stopped worker sent this window (a recording's last text, its
        recording_saved) is taken now, while the library is open: it came after the library
        was closed, and the live transcript was lost. A recording whose transcript still did
        not reach it (the worker busy past the wait, speakers not told apart yet, no model to
        transcribe it) is offered back at the next start, as after a crash."""
        QCoreApplication.sendPostedEvents(self, QEvent.Type.MetaCall)
        self.worker.disconnect(self)  # anything later is not for a closed window
        for path in sorted(self._unkept):
            if not Path(path).is_file():
                continue
            try:
                mark_unfinished(path)
            except OSError as e:
                log.warning("%s will not be offered back at the next start: %s", path, e)


_DTYPE_NAMES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
# What the status bar says of a recording saved without live text, by why (recording_saved).
_SAVED_WITHOUT_LIVE_TEXT = {
    "no_model": "status.saved_untranscribed",
    "live_failed": "status.saved_live_failed",
}
# A recording's errors that say the disk did not take all of it (engine.recorder).
_WRITE_FAILED = ("recording.write_failed", "recording.write_failed_kept")
# What a failed load's banner and dialog add, by (Whisper-base offered, the demo offered).
_WAYS_OUT = {
    (True, True): "dialog.offer_whisper_demo",
    (True, False): "dialog.offer_whisper",
    (False, True): "dialog.offer_demo",
    (False, False): "dialog.no_demo",
}


class _TallScroll(QScrollArea):
    """`page`, scrolled up and down when the window is lower than it needs, never sideways:
    the window stays as wide as the page needs, as it was without this."""

    def __init__(self, page: QWidget) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # no Tab stop of its own (it follows focus)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(page)

    def minimumSizeHint(self) -> QSize:
        width = (
            self.widget().minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
        )
        return QSize(width, super().minimumSizeHint().height())

    def showEvent(self, event: QShowEvent) -> None:
        """Pages added while the window was hidden left the page's layout its least size from
        before them (a hidden tab widget asks for no new layout): measured anew."""
        self.widget().layout().invalidate()
        self.updateGeometry()
        super().showEvent(event)

    def viewportEvent(self, event: QEvent) -> bool:
        """The page's least size changed (it asks its parent, the viewport, to lay it out
        anew): the window's own layout must learn it, as it did with the page its child."""
        if event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return super().viewportEvent(event)


def _inside(source: str, folder: Path) -> bool:
    """Whether the model `source` lies in `folder`: a folder (remembered as an absolute path,
    app.modeldialog) may; a Hub id never does, whatever folder the app was started in."""
    if not source:
        return False
    try:
        path = Path(source).expanduser()
        return path.is_absolute() and path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError, ValueError):  # ~nosuchuser, a symlink loop, a NUL byte
        return False


def _default_model() -> str:
    from engine.model import DEFAULT_MODEL

    return DEFAULT_MODEL


def _tooltip(action: QAction) -> str:
    """An action's text with its shortcut, when it has one ("导出向量… ()" otherwise)."""
    keys = action.shortcut().toString()
    return f"{action.text()} ({keys})" if keys else action.text()
