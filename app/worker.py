"""The one object that owns the engine, living in a QThread.

The UI sends requests through slots (queued across threads) and gets typed signals back; it
never runs model code. Long work is cut into steps: a file job advances one item of the
transcriber's generator per event-loop pass, and microphone audio is drained from a queue on a
timer, so recording, file jobs and cancel requests interleave on one thread without blocking
each other for longer than one model call.

The microphone itself is driven at once, outside that queue: the capture slots (start, pause,
resume, stop, the device) are thread-safe and the UI thread calls them directly, so a model
loading or speakers being told apart hold back neither Record nor Stop. Each recording's start
and end are then queued to this thread for its live stream, in order.

Audio path: the Recorder hands 16 kHz blocks to the recording's listener in its own thread,
which puts them into that recording's `queue.Queue` and emits decimated waveform points
straight away (so the waveform moves even while the worker is inside a model call). The worker
drains everything queued on each tick (nothing is dropped however slow a model call was, or
however late the stream began) into the streaming transcriber.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, QTimer, Signal, Slot

from engine.audio import SAMPLE_RATE
from engine.errors import TingxieError
from engine.library.review import DEFAULT_THRESHOLD
from engine.results import Progress, Segment, TranscriptionInfo

from . import demo
from .levels import ENVELOPE_BIN, envelope, level_percent

__all__ = [
    "DatasetRequest",
    "Decoding",
    "EmbedRequest",
    "Engine",
    "EngineWorker",
    "ModelExportRequest",
    "ModelSummary",
    "SpeakersRequest",
    "WorkerHandle",
]

log = logging.getLogger("tingxie.app.worker")

_DRAIN_MS = 50  # how often queued microphone audio is consumed
# Microphone audio waiting this long when the stream takes it: the live text is behind (told
# once, until the waiting audio is back under _CAUGHT_UP_SECONDS).
_BEHIND_SECONDS = 2.0
_CAUGHT_UP_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """What the window shows about the loaded model."""

    source: str
    device: str
    dtype: str
    is_demo: bool
    # What the model's family can do (engine.registry.FEATURES): the window greys out the rest.
    features: frozenset[str] = frozenset()
    family: str = ""  # its engine.registry.Family.model_type ("whisper", "wav2vec2", …)
    runtime: str = "torch"  # engine.model.LoadedModel.runtime: torch, onnx or onnx-int8
    # What to know before using it (engine.model.LoadedModel.warnings: an ONNX export that
    # failed its parity check), shown above the transcript.
    warnings: tuple[TingxieError, ...] = ()

    @classmethod
    def of(cls, model: Any, source: str) -> ModelSummary:
        """The summary of `model`, a loaded model of any family, loaded from `source`."""
        return cls(
            source=source,
            device=str(getattr(model, "device", "cpu")),
            dtype=_dtype_shown(model),
            is_demo=demo.is_demo_model(source),
            features=_features(model),
            family=_family(model),
            runtime=str(getattr(model, "runtime", "torch")),
            warnings=tuple(getattr(model, "warnings", ())),
        )


@dataclass(frozen=True, slots=True)
class Decoding:
    """How CTC models decode files and live finals (app.settings.Preferences holds the same
    three): the worker reads the files, checks them against the loaded model and applies what
    is usable (Whisper models ignore all of it)."""

    decoder: str = "auto"  # app.settings.DECODER_CHOICES (engine TranscribeOptions.decoder)
    domain_text: str = ""  # a plain text of the user's domain (engine.lm.domain_lm); "": none
    hotwords: str = ""  # one term a line, optional weight (engine.lm.read_hotwords); "": none


@dataclass(frozen=True, slots=True)
class DatasetRequest:
    """A training set to build from the checked text of some transcripts (engine.corrections):
    it writes audio clips, so it runs in the worker, not the UI thread."""

    store: Any  # engine.store.Store (safe to share between threads)
    transcript_ids: tuple[int, ...]
    name: str
    model: str  # Hub id or folder the set is for (its vocabulary tells the new characters)
    # The review's doubt threshold (the app setting): a segment still holding a character below
    # it that nobody checked goes in only as its checked stretches.
    threshold: float = DEFAULT_THRESHOLD


@dataclass(frozen=True, slots=True)
class ModelExportRequest:
    """A model to write in another form (engine.tune.formats), checked before it is done."""

    source: str  # Hub id, model folder or tuning job folder
    out: str  # output folder (replaced atomically)
    options: Any  # engine.tune.formats.ExportOptions
    # Set from any thread to stop the export at its next stage, queued or running; nothing of
    # it is left (engine.tune.formats.iter_export).
    cancel: threading.Event = field(default_factory=threading.Event, compare=False)


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    """The loaded model's vectors for one audio file (engine.embed), written to `out`."""

    audio: str
    out: str
    layer: int = -1  # as engine.embed.EmbedOptions
    pool: str = "none"
    format: str = "npy"  # npy or parquet


@dataclass(frozen=True, slots=True)
class SpeakersRequest:
    """Speakers for a finished transcript (a file's or a recording's): engine.speakers over
    the whole audio, so it runs in the worker, never the UI thread."""

    key: int  # the window's number for the request; the reply carries it back
    audio: str
    segments: tuple[Segment, ...]
    # app.settings.SPEAKER_CHOICES: "auto" (the number found) or a number of speakers
    speakers: str = "auto"


@dataclass(slots=True)
class Engine:
    """The engine entry points the worker calls, injectable so tests can use fakes.

    Defaults import the engine lazily (the app starts before torch is imported).
    """

    load_model: Callable[[str, Any], Any] | None = None  # (source, tqdm_class) -> LoadedModel
    transcriber: Callable[[Any], Any] | None = None  # LoadedModel -> Transcriber
    streamer: Callable[[Any], Any] | None = None  # Transcriber -> StreamingTranscriber
    recorder: Callable[..., Any] | None = None  # (path, device, on_audio, on_error) -> Recorder
    list_devices: Callable[[], list] | None = None  # re-scans the system's input devices
    find_unfinished: Callable[[Path], list[Path]] | None = None
    recover: Callable[[Path], Path] | None = None
    build_dataset: Callable[[DatasetRequest], Any] | None = None  # -> CorrectionSummary
    # () -> engine.punctuation.Punctuator for the marks of file segments and live finals
    # (a stand-in returning None: no marks).
    punctuator: Callable[[], Any] | None = None
    # (audio path, segments, engine.speakers.SpeakerOptions) -> segments with speakers
    # (engine.speakers.label_speakers); raises SpeakersUnavailable without the packages.
    speakers: Callable[[str, list, Any], list] | None = None
    # The runtime the default `load_model` asks for (LoadOptions.backend: auto, torch or onnx);
    # the worker's `set_backend` sets it from the user's preference.
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.load_model is None:
            self.load_model = lambda source, tqdm_class: _load_model(
                source, tqdm_class, self.backend
            )
        if self.transcriber is None:
            self.transcriber = _transcriber
        if self.streamer is None:
            self.streamer = _streamer
        if self.list_devices is None:
            self.list_devices = _rescan_devices
        if self.build_dataset is None:
            self.build_dataset = _build_dataset
        if self.punctuator is None:
            self.punctuator = _punctuator
        if self.speakers is None:
            self.speakers = _label_speakers
        for name, target in (
            ("recorder", "Recorder"),
            ("find_unfinished", "find_unfinished"),
            ("recover", "recover"),
        ):
            if getattr(self, name) is None:
                setattr(self, name, _recorder_function(target))


def _load_model(source: str, tqdm_class: Any, backend: str) -> Any:
    from engine.loader import load_model
    from engine.model import LoadOptions

    return load_model(source, LoadOptions(backend=backend), tqdm_class=tqdm_class)


def _transcriber(model: Any) -> Any:
    from engine.loader import transcriber_for

    return transcriber_for(model)


def _streamer(transcriber: Any) -> Any:
    from engine.loader import streamer_for

    return streamer_for(transcriber)


def _build_dataset(request: DatasetRequest) -> Any:
    from engine.library.corrections import CorrectionOptions, build_dataset
    from engine.model import model_vocab

    vocab = model_vocab(request.model) or ()
    return build_dataset(
        request.store,
        request.transcript_ids,
        request.name,
        model=request.model,
        vocab=vocab,
        options=CorrectionOptions(threshold=request.threshold),
    )


def _punctuator() -> Any:
    from engine.punctuation import default_punctuator

    return default_punctuator()


def _label_speakers(audio: str, segments: list, options: Any) -> list:
    from engine.speakers import label_speakers

    return label_speakers(audio, segments, options)


def _speaker_options(choice: str) -> Any:
    """engine.speakers.SpeakerOptions for a choice of app.settings.SPEAKER_CHOICES."""
    from engine.speakers import SpeakerOptions

    return SpeakerOptions() if choice == "auto" else SpeakerOptions(speakers=int(choice))


def _failed_part(error: Exception) -> str:
    """Which part of a Decoding an error from building the beam search is about: domain_text,
    hotwords, model_lm (the model folder's own LM: the search goes on without it), or
    language_model (the decoder package, anything else: no search)."""
    code = getattr(error, "code", "")
    if code in ("lm.domain_unreadable", "lm.domain_empty", "lm.domain_unusable"):
        return "domain_text"
    if code.startswith("lm.hotword"):  # unreadable, empty, a bad weight, a term too long
        return "hotwords"
    if code in ("lm.bad_folder", "lm.other_vocabulary", "lm.bad_setting"):
        return "model_lm"
    return "language_model"


def _features(model: Any) -> frozenset[str]:
    """What the loaded model's family can do; a model naming no family (a stand-in) is taken
    for a CTC model, the default family."""
    from engine.registry import CTC_FEATURES

    family = getattr(model, "family", None)
    features = CTC_FEATURES if family is None else frozenset(family.features)
    if getattr(model, "runtime", "torch") == "onnx":  # an ONNX export: logits, no layers
        features -= {"embeddings"}
    return features


def _dtype_shown(model: Any) -> str:
    """The loaded weights' precision: engine.model's "int8" for a CPU's int8 copy, else the
    torch dtype's name."""
    if getattr(model, "runtime", "torch") == "onnx-int8":
        return model.precision
    return str(getattr(model, "dtype", "")).replace("torch.", "")


def _family(model: Any) -> str:
    return str(getattr(getattr(model, "family", None), "model_type", ""))


def _rescan_devices() -> list:
    from engine.recorder import list_input_devices

    return list_input_devices(refresh=True)


def _recorder_function(name: str) -> Callable:
    """engine.recorder.`name`, imported on first use (sounddevice loads PortAudio)."""

    def call(*args, **kwargs):
        from engine import recorder

        return getattr(recorder, name)(*args, **kwargs)

    return call


@dataclass(slots=True)
class _FileJob:
    job_id: int
    path: str
    items: Iterator | None = None


class EngineWorker(QObject):
    """Slots in, typed signals out; see the module docstring for the threading model."""

    # -- model
    model_loading = Signal(str)  # source
    model_progress = Signal(float)  # download (or int8 copy) fraction in [0, 1]
    model_preparing = Signal()  # the load makes this CPU's int8 copy first (once, ~a minute)
    model_loaded = Signal(object)  # ModelSummary
    model_failed = Signal(object)  # the error (app.errors.error_text words it)
    # -- microphone
    devices_listed = Signal(list)  # engine.recorder.InputDevice records
    # Why the devices could not be listed (no PortAudio: engine.recorder.MicrophoneError),
    # after devices_listed([]); a listing asked by hand (list_devices) tells `error` too.
    devices_failed = Signal(object)
    audio_level = Signal(object, int, float)  # envelope points, level 0..100, seconds recorded
    partial = Signal(tuple, tuple)  # newly committed chars, current tail chars
    # Seconds of recorded audio the live stream had not yet taken (its text is that late) when
    # it fell behind; 0.0 once it has caught up (or the recording stopped).
    live_behind = Signal(float)
    segment = Signal(object)  # Segment ended by a pause while recording
    # engine.stream.SegmentFinal: a finished segment decoded again as a file would be; its
    # text replaces the segment's streamed characters (engine.twopass)
    final = Signal(object)
    recording_started = Signal(str)  # path being written
    # Path of the finished WAV; how it was transcribed: "live", or not ("no_model": none was
    # loaded when it began; "live_failed": its live stream failed, `error` told why), and the
    # window transcribes the file instead; its TranscriptionInfo when "live" (the WAV's
    # duration, the model's name and precision; None if the file could not be read), else None.
    recording_saved = Signal(str, str, object)
    unfinished_found = Signal(list)  # paths of recordings a crash left behind
    recovered = Signal(str)  # path of a repaired recording
    # -- files
    file_started = Signal(int)
    # job id, engine.results.TranscriptionInfo: what is transcribed (its duration, 0 when not
    # known), once its decoding begins; file_done brings it again.
    file_info = Signal(int, object)
    file_progress = Signal(int, float)  # job id, fraction
    file_segment = Signal(int, object)  # job id, Segment
    file_done = Signal(int, object)  # job id, TranscriptionInfo
    file_failed = Signal(int, object)  # job id, the error
    file_cancelled = Signal(int)
    # -- speakers: (request key, the segments with speakers, or as they were when that failed)
    speakers_done = Signal(int, list)
    speakers_failed = Signal(int, object)  # request key, the error (before speakers_done)
    # -- training sets
    dataset_built = Signal(object)  # engine.corrections.CorrectionSummary
    dataset_failed = Signal(object)  # the error
    # -- exports, Hub uploads, embeddings
    export_progress = Signal(object)  # engine.tune.formats.ExportStage, as each one begins
    export_done = Signal(object)  # engine.tune.formats.ExportResult
    export_failed = Signal(object)  # the error
    export_cancelled = Signal(object)  # engine.tune.formats.ExportCancelled (nothing written)
    push_done = Signal(str)  # URL of the repository
    push_failed = Signal(object)  # the error (engine.tune.hub.HubError)
    embed_done = Signal(str)  # path of the vectors written
    embed_failed = Signal(object)  # the error
    # -- decoding: the part of the Decoding that cannot be used (domain_text, hotwords or
    # language_model) and why (engine.lm.LmError). Files and live finals go on without it;
    # each failure is told once per choice and model.
    decoding_failed = Signal(str, object)
    # -- anything else the user must hear about: (kind, error), kind in model/microphone/file
    error = Signal(str, object)
    # -- the recording at this path ended by itself (its device lost, the disk full), sent
    # from the recorder's thread. WorkerHandle stops it in the UI thread at once (`stop_lost`:
    # queued here it waited behind a model load, untold, while the UI said "Recording…"); its
    # error follows there, recording_saved once this thread is free.
    recording_lost = Signal(str)
    # Internal: capture began (the recording's audio queue) or ended (its path), in whichever
    # thread drove it; the live stream follows in this thread, in the same order.
    _capture_began = Signal(object)
    _capture_ended = Signal(str)
    # Internal: a cancel from the UI thread; queues a file step in this thread.
    _poke = Signal()

    def __init__(self, engine: Engine | None = None) -> None:
        super().__init__()
        self.engine = engine or Engine()
        self.model: Any = None
        self._transcriber: Any = None
        self._streamer: Any = None
        self._live: Any = None  # the streamer of the running recording, fixed when it began
        # The transcriber of the model loaded when it began (None: none was): it tells the
        # recording's info, and a failed live stream from a missing model.
        self._live_transcriber: Any = None
        # Capture: the recorder, its file and the device of the next one, guarded by _capture
        # (the UI thread drives them; it also keeps a device list from restarting PortAudio
        # under a stream being opened).
        self._recorder: Any = None
        self._recorder_path = Path()
        self._device: str | None = None
        self._capture = threading.RLock()
        # The audio of the recording the live stream takes (this thread's; one per recording).
        self._audio: queue.Queue[np.ndarray] = queue.Queue()
        self._jobs: deque[_FileJob] = deque()
        self._current: _FileJob | None = None
        self._cancelled: set[int] = set()
        self._lock = threading.Lock()  # guards _jobs, _current, _cancelled and _export
        self._export: ModelExportRequest | None = None  # the export running now
        # Children move to the worker thread with it.
        self._drain_timer = QTimer(self)
        self._drain_timer.setInterval(_DRAIN_MS)
        self._drain_timer.timeout.connect(self._drain_audio)
        self._step_timer = QTimer(self)
        self._step_timer.setSingleShot(True)
        self._step_timer.setInterval(0)
        self._step_timer.timeout.connect(self._step_file)
        self._capture_began.connect(self._begin_stream)
        self._capture_ended.connect(self._end_stream)
        self._poke.connect(self._step_file)
        # Punctuation of file segments and live finals (the user's preference), the model
        # loaded on first use, and the live segment before the current one (its context).
        self._punctuation = True
        self._punctuation_model: Any = None
        self._punctuation_failed = False
        self._live_before: Any = None
        self._behind = False  # the live stream is behind the microphone (see live_behind)
        # The user's decoding choice, and the failures already told (see decoding_failed).
        self._decoding = Decoding()
        self._decoding_told: set[tuple[str, str]] = set()

    # ---- model ---------------------------------------------------------------------------
    @Slot(str, str)
    def import_runtime(self, source: str, backend: str) -> None:
        """Import what loading `source` will need (engine.model.import_runtime), on this thread,
        the one that loads: the app asks for it while its window is still being built."""
        from engine.model import import_runtime

        import_runtime(source, backend)

    @Slot(str)
    def load_model(self, source: str) -> None:
        """Load (downloading if needed) and make it the model for recording and files."""
        from engine.model import ModelLoadError

        self.model_loading.emit(source)
        try:
            progress = _progress_tqdm(self.model_progress, self.model_preparing)
            model = self.engine.load_model(source, progress)
            transcriber = self.engine.transcriber(model)
            streamer = self.engine.streamer(transcriber)
        except ModelLoadError as e:
            log.debug("loading %s failed", source, exc_info=True)
            self.model_failed.emit(e)
            return
        except Exception as e:  # an engine bug must not kill the worker thread
            log.exception("loading %s failed", source)
            self.model_failed.emit(TingxieError("model.failed", source=source, detail=e))
            return
        self.model, self._transcriber, self._streamer = model, transcriber, streamer
        self._decoding_told.clear()  # a new model: a file it cannot use is worth telling again
        self._step_timer.start()  # files queued before a model was loaded start now
        self.model_loaded.emit(ModelSummary.of(model, source))
        self._apply_decoding()  # the domain model is built now, not in the first file's time

    # ---- training sets -------------------------------------------------------------------
    @Slot(object)
    def build_dataset(self, request: DatasetRequest) -> None:
        from engine.library.corrections import CorrectionsError
        from engine.library.store import StoreError

        try:
            summary = self.engine.build_dataset(request)
        except (CorrectionsError, StoreError, OSError, ValueError) as e:
            log.debug("building training set %s failed", request.name, exc_info=True)
            self.dataset_failed.emit(e)
            return
        except Exception as e:  # an engine bug must not kill the worker thread
            log.exception("building training set %s failed", request.name)
            self.dataset_failed.emit(TingxieError("dataset.failed", name=request.name, detail=e))
            return
        self.dataset_built.emit(summary)

    @Slot(str)
    def set_backend(self, backend: str) -> None:
        """The runtime of the next model load (auto, torch or onnx)."""
        self.engine.backend = backend

    @Slot(bool)
    def set_punctuation(self, on: bool) -> None:
        """Punctuate the files and live segments transcribed from now on, or not."""
        self._punctuation = on

    @Slot(object)
    def set_decoding(self, decoding: Decoding) -> None:
        """Decode the files and live finals transcribed from now on this way (the files are
        read here, in the worker's thread; a part that cannot be used is told, and left out)."""
        self._decoding = decoding
        self._decoding_told.clear()
        self._apply_decoding()

    def _apply_decoding(self) -> None:
        """Check the choice against the loaded model (building its beam search once per file
        contents) and give the streamer's finals the usable part."""
        usable = self._usable_decoding()
        streamer = self._streamer
        if usable is not None and hasattr(streamer, "final_options"):  # engine.twopass
            streamer.final_options = dataclasses.replace(streamer.final_options, **usable)

    def _usable_decoding(self) -> dict[str, Any] | None:
        """engine TranscribeOptions fields (decoder, model_lm, domain_text, hotwords) for the
        loaded model: the user's choice less what fails to build (told through
        decoding_failed): a damaged model LM is left out, and the domain text and hotwords
        still searched with; None for a model without the engine's beam search (Whisper, a
        stand-in)."""
        transcriber = self._transcriber
        if transcriber is None or not hasattr(transcriber, "beam_decoder"):
            return None
        from engine.transcribe import TranscribeOptions

        d = self._decoding
        usable: dict[str, Any] = {
            "decoder": d.decoder,
            "model_lm": True,
            "domain_text": d.domain_text or None,
            "hotwords": d.hotwords or None,
        }
        while True:
            try:
                transcriber.beam_decoder(TranscribeOptions(**usable))
                return usable
            except Exception as e:  # LmError says which file and what to do
                part = _failed_part(e)
                if part != "language_model" and not usable[part]:
                    part = "language_model"  # cannot happen; never loop
                self._tell_decoding_failed(part, e)
                if part == "language_model":
                    usable["decoder"] = "greedy"  # builds nothing: cannot fail
                else:
                    usable[part] = False if part == "model_lm" else None

    def _tell_decoding_failed(self, part: str, error: Exception) -> None:
        key = (part, str(error))
        if key in self._decoding_told:
            log.debug("%s still unusable: %s", part, error)
            return
        self._decoding_told.add(key)
        log.warning("%s not used: %s", part, error, exc_info=not isinstance(error, TingxieError))
        self.decoding_failed.emit(part, error)

    def _punctuator(self, transcriber: Any) -> Any:
        """The punctuation model for `transcriber`'s text when punctuation is on, its model
        takes it and it loads; None otherwise (a model that cannot be loaded is reported once,
        and transcripts go on without marks). A Whisper model writes its own marks: the
        hidden preference added the punctuation model's to its segments without them, while
        the greyed-out item said it does not apply."""
        if not self._punctuation or self._punctuation_failed:
            return None
        if "punctuation" not in _features(getattr(transcriber, "model", None)):
            return None
        if self._punctuation_model is None:
            try:
                self._punctuation_model = self.engine.punctuator()
            except Exception as e:  # PunctuationError: says what to do already
                log.warning("punctuation is off: %s", e, exc_info=True)
                self._punctuation_failed = True
                self.error.emit("model", e)
                return None
        return self._punctuation_model

    # ---- speakers ------------------------------------------------------------------------
    @Slot(object)
    def label_speakers(self, request: SpeakersRequest) -> None:
        """Tell the speakers of a finished transcript apart (one model call: the worker is busy
        for its length, about 0.04 s of CPU per 2.4 s window of speech). Without the optional
        packages, or when it fails, the transcript comes back as it was, after the error."""
        from engine.speakers import SpeakersUnavailable

        segments = list(request.segments)
        try:
            options = _speaker_options(request.speakers)
            labelled = self.engine.speakers(request.audio, segments, options)
        except SpeakersUnavailable as e:  # says what to install already
            log.info("speakers not told apart: %s", e, exc_info=True)
            self.speakers_failed.emit(request.key, e)
        except Exception as e:  # an unreadable file, an engine bug: the text is kept
            log.exception("telling the speakers of %s apart failed", request.audio)
            self.speakers_failed.emit(request.key, e)
        else:
            segments = list(labelled)
        self.speakers_done.emit(request.key, segments)

    # ---- exports, Hub uploads, embeddings ------------------------------------------------
    # One model call each (an export or an upload cannot be cut into steps): the worker is
    # busy for its length, and queued file jobs wait. An export can be cancelled between its
    # stages (its request's `cancel`), which is what a long ONNX or int8 export needs.
    @Slot(object)
    def export_model(self, request: ModelExportRequest) -> None:
        from engine.tune.formats import ExportCancelled, ExportResult, iter_export

        with self._lock:
            self._export = request
        try:
            items = iter_export(request.source, request.out, request.options, request.cancel)
            for item in items:
                if isinstance(item, ExportResult):
                    self.export_done.emit(item)
                else:
                    self.export_progress.emit(item)
        except ExportCancelled as e:
            log.debug("export to %s cancelled", request.out, exc_info=True)
            self.export_cancelled.emit(e)
        except (TingxieError, OSError, ValueError) as e:
            log.debug("exporting %s failed", request.source, exc_info=True)
            self.export_failed.emit(e)
        except Exception as e:  # an engine bug must not kill the worker thread
            log.exception("exporting %s failed", request.source)
            self.export_failed.emit(TingxieError("export.failed", path=request.out, detail=e))
        finally:
            with self._lock:
                self._export = None

    def cancel_export(self) -> None:
        """Thread-safe, like `cancel_file`: the running export stops at its next stage."""
        with self._lock:
            if self._export is not None:
                self._export.cancel.set()

    @Slot(object)
    def push_model(self, plan: Any) -> None:
        """Upload an `engine.tune.hub.UploadPlan` with the token of HF_TOKEN or the keyring."""
        from engine.tune.hub import HubError, push, resolve_token

        try:
            self.push_done.emit(push(plan, resolve_token()))
        except HubError as e:
            log.debug("pushing %s failed", plan.repo_id, exc_info=True)
            self.push_failed.emit(e)
        except Exception as e:  # a client error, an engine bug: the dialog must hear back
            log.exception("pushing %s failed", plan.repo_id)
            self.push_failed.emit(TingxieError("hub.failed", repo_id=plan.repo_id, detail=e))

    @Slot(object)
    def embed_file(self, request: EmbedRequest) -> None:
        """Vectors of the loaded model (a PyTorch CTC model) for one file."""
        from engine.embed import EmbedOptions, embed, write_embedding

        try:
            if self.model is None:
                raise TingxieError("embed.no_model")
            options = EmbedOptions(layer=request.layer, pool=request.pool)
            result = embed(self.model, request.audio, options)
            path = write_embedding(result, request.out, request.format)
        except TingxieError as e:  # no model, an unreadable file: says what to do already
            log.debug("embedding %s failed", request.audio, exc_info=True)
            self.embed_failed.emit(e)
            return
        except (OSError, ValueError, AttributeError) as e:
            # ValueError: an ONNX model or a layer it lacks; AttributeError: a Whisper model
            log.debug("embedding %s failed", request.audio, exc_info=True)
            self.embed_failed.emit(TingxieError("embed.failed", path=request.audio, detail=e))
            return
        self.embed_done.emit(str(path))

    # ---- microphone ----------------------------------------------------------------------
    @Slot()
    def list_devices(self) -> None:
        """List input devices, re-scanned so a newly plugged microphone shows. Not while
        recording: re-scanning restarts PortAudio under the open stream. A failure is also
        told as an `error`: the user asked (Look for microphones again)."""
        failed = self._list_devices()
        if failed is not None:
            self.error.emit("microphone", failed)

    @Slot()
    def list_devices_quietly(self) -> None:
        """As `list_devices`, a failure told by devices_failed only: the window's own listing
        at start, which on a machine without PortAudio would show a dialog at every start."""
        self._list_devices()

    def _list_devices(self) -> Exception | None:
        with self._capture:
            if self._recorder is not None:
                return None
            try:
                devices = list(self.engine.list_devices())
            except Exception as e:
                log.debug("listing input devices failed", exc_info=True)
                self.devices_listed.emit([])
                self.devices_failed.emit(e)
                return e
        self.devices_listed.emit(devices)
        return None

    @Slot(str)
    def set_input_device(self, device: str) -> None:
        """Record from `device` (a name; empty = system default) from the next recording on.
        Thread-safe (see start_recording)."""
        with self._capture:
            self._device = device or None

    @Slot(str)
    def start_recording(self, folder: str) -> None:
        """Start capture now. Thread-safe, and called in the UI thread (WorkerHandle connects it
        directly): queued, Record waited for a model load or speakers to end, and the speech
        meanwhile was never recorded. The audio waits in the recording's queue until this
        thread's live stream takes it (`_begin_stream`)."""
        path = Path(folder) / datetime.now().strftime("recording-%Y%m%d-%H%M%S-%f.wav")
        audio: queue.Queue[np.ndarray] = queue.Queue()
        with self._capture:
            if self._recorder is not None:
                return
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                recorder = self.engine.recorder(
                    path,
                    device=self._device,
                    on_audio=_listener(audio, _Meter(self.audio_level.emit)),
                    on_error=lambda _error: self.recording_lost.emit(str(path)),
                )
                recorder.start()
            except Exception as e:  # MicrophoneError, OSError: one line, nothing recorded yet
                log.debug("starting a recording to %s failed", path, exc_info=True)
                failed = e
            else:
                failed = None
                self._recorder, self._recorder_path = recorder, path
        if failed is not None:
            self.error.emit(*_recording_error(failed, folder))
            return
        self._capture_began.emit(audio)
        self.recording_started.emit(str(path))

    @Slot()
    def pause_recording(self) -> None:
        """Drop the audio from now on. Thread-safe, at once (see start_recording)."""
        with self._capture:
            if self._recorder is not None:
                self._recorder.pause()

    @Slot()
    def resume_recording(self) -> None:
        with self._capture:
            if self._recorder is not None:
                self._recorder.resume()

    @Slot()
    def stop_recording(self) -> None:
        """Stop capture now and keep the file. Thread-safe, at once (see start_recording):
        queued behind a model load, the microphone went on and the audio after Stop was saved.
        The live stream's rest and recording_saved follow in this thread (`_end_stream`)."""
        self._stop_capture()

    def stop_lost(self, path: str) -> None:
        """The recording at `path` ended by itself (recording_lost): it stops (unless the user
        stopped it already), and `recorder.stop()` raises the one-line error, which says where
        the audio so far is kept. Thread-safe, like stop_recording, but never in the recorder's
        own thread (stopping joins it)."""
        self._stop_capture(path)

    def _stop_capture(self, only: str | None = None) -> None:
        """Stop the recorder (only the one writing `only`, when given) and hand its end to
        this thread's live stream."""
        with self._capture:
            recorder, path = self._recorder, self._recorder_path
            if recorder is None or only not in (None, str(path)):
                return
            self._recorder = None
            try:
                path, failed = recorder.stop(), None
            except Exception as e:  # device lost, disk full: the recorder keeps what it wrote
                log.debug("stopping the recording %s failed", path, exc_info=True)
                failed = e
        if failed is not None:
            self.error.emit(*_recording_error(failed, str(path.parent)))
        self._capture_ended.emit(str(path))

    def _begin_stream(self, audio: queue.Queue) -> None:
        """A recording began: the live stream of the model loaded now takes its audio. Queued
        after whatever this thread was asked before Record, so a model still loading then
        joins from the first sample (its audio waited); one loaded later does not (a streamer
        that missed the beginning would time the text wrongly: such a recording is transcribed
        whole once it stops)."""
        self._audio = audio
        self._live, self._live_transcriber = self._streamer, self._transcriber
        if self._live is not None:  # from time 0: a failed push or finish left it mid-stream
            self._live.reset()
        self._live_before = None
        self._apply_decoding()  # a file changed since it was chosen is read again (cached)
        self._drain_timer.start()

    def _end_stream(self, path: str) -> None:
        """The recording stopped: the stream takes the rest of its audio and finishes."""
        self._drain_timer.stop()
        self._drain_audio()
        live, self._live = self._live, None
        transcriber = self._live_transcriber  # its last segment is punctuated as its model says
        try:
            transcribed = live is not None and self._stream_call(live, "finish")
        finally:
            self._live_transcriber = None
        if self._behind:  # finish() has taken the rest
            self._tell_lag(0.0)
        if transcribed:
            how, info = "live", self._recording_info(transcriber, path)
        else:
            how, info = ("no_model" if transcriber is None else "live_failed"), None
        self.recording_saved.emit(path, how, info)

    def _recording_info(self, transcriber: Any, path: str) -> Any:
        """The TranscriptionInfo of the recording at `path` as its file transcription tells it
        (the WAV's duration, not its last character's end; the model's name and precision):
        the library lists that length and a saved transcript carries it. None when the file
        cannot be read (the library then takes the last character's end)."""
        try:
            _, info = self._transcribe(transcriber, path)  # its items, never taken, decode nothing
        except Exception:  # AudioError, LmError: the live text is kept without it
            log.warning("the info of recording %s could not be read", path, exc_info=True)
            return None
        return info

    def _transcribe(self, transcriber: Any, path: str) -> tuple[Iterator, Any]:
        """`transcriber.transcribe(path)` with the usable part of the user's decoding choice:
        lazy, nothing is decoded until its items are taken."""
        usable = self._usable_decoding()
        if usable is None:
            return transcriber.transcribe(path)
        from engine.transcribe import TranscribeOptions

        return transcriber.transcribe(path, TranscribeOptions(**usable))

    def _drain_audio(self) -> None:
        """Feed everything queued since the last tick to the streaming transcriber at once."""
        blocks = []
        with contextlib.suppress(queue.Empty):
            while True:
                blocks.append(self._audio.get_nowait())
        if blocks and self._live is not None:
            samples = np.concatenate(blocks).astype(np.float32, copy=False)
            self._tell_lag(len(samples) / SAMPLE_RATE)
            self._stream_call(self._live, "push", samples)

    def _tell_lag(self, waiting: float) -> None:
        """Tell when the stream falls behind the microphone and when it has caught up: audio
        waits here while the previous push computes, so what waits is how late the text is."""
        if not self._behind and waiting >= _BEHIND_SECONDS:
            self._behind = True
            self.live_behind.emit(waiting)
        elif self._behind and waiting <= _CAUGHT_UP_SECONDS:
            self._behind = False
            self.live_behind.emit(0.0)

    def _stream_call(self, live: Any, call: str, *args: Any) -> bool:
        """Run `live.push` or `live.finish` and send on what it gives; False when it failed.
        The recording goes on without live text then (one message, not one a block): it is
        transcribed from its file once it stops."""
        try:
            updates = getattr(live, call)(*args)
        except Exception as e:
            log.exception("streaming transcription failed")
            self._live = None
            self.error.emit("model", TingxieError("transcribe.live_failed", detail=e))
            return False
        from engine.stream import SegmentFinal

        for update in updates:
            if isinstance(update, SegmentFinal):  # punctuated, not its streamed segment
                segment = self._punctuate_live(update.segment)
                self.final.emit(dataclasses.replace(update, segment=segment))
                continue
            self.partial.emit(tuple(update.committed), tuple(update.tail))
            if update.segment is not None:
                finals = getattr(live, "gives_finals", False)
                self.segment.emit(
                    update.segment if finals else self._punctuate_live(update.segment)
                )
        return True

    def _punctuate_live(self, segment: Segment) -> Segment:
        """A live segment with its marks: a pause closed it, and the one before is context."""
        if not segment.chars:  # a final that removes its streamed text: no context
            return segment
        punctuator = self._punctuator(self._live_transcriber)
        before, self._live_before = self._live_before, segment
        if punctuator is None:
            return segment
        try:
            return punctuator.punctuate_one(segment, before, None)
        except Exception:  # marks are a nicety: the text goes on without them
            log.exception("punctuating a live segment failed")
            return segment

    @Slot(str)
    def scan_unfinished(self, folder: str) -> None:
        try:
            found = self.engine.find_unfinished(Path(folder))
        except Exception as e:
            log.debug("looking for unfinished recordings in %s failed", folder, exc_info=True)
            error = TingxieError("recording.scan_failed", folder=folder, detail=e)
            self.error.emit(*_recording_error(error, folder))
            return
        if found:
            self.unfinished_found.emit([str(p) for p in found])

    @Slot(list)
    def recover(self, paths: list) -> None:
        for path in paths:
            try:
                recovered = self.engine.recover(Path(path))
            except Exception as e:
                log.debug("recovering %s failed", path, exc_info=True)
                error = (
                    e  # says what happened already
                    if isinstance(e, TingxieError)
                    else TingxieError("recording.recover_failed", path=path, detail=e)
                )
                self.error.emit(*_recording_error(error, str(Path(path).parent)))
            else:
                self.recovered.emit(str(recovered))

    # ---- files ---------------------------------------------------------------------------
    @Slot(int, str)
    def enqueue_file(self, job_id: int, path: str) -> None:
        """Queue a file; it waits for a model if none is loaded yet."""
        with self._lock:
            self._jobs.append(_FileJob(job_id, path))
        self._step_timer.start()

    def cancel_file(self, job_id: int) -> None:
        """Thread-safe: may be called directly from the UI thread; takes effect before the
        job's next step. A job whose enqueue_file has not reached this thread yet (it waits
        behind a model call) is dropped when it does."""
        with self._lock:
            self._cancelled.add(job_id)
        self._poke.emit()

    def cancel_all(self) -> None:
        """Thread-safe, like `cancel_file`: cancels the running and every queued job."""
        with self._lock:
            self._cancelled.update(j.job_id for j in self._jobs)
            if self._current is not None:
                self._cancelled.add(self._current.job_id)
        self._poke.emit()

    def _is_cancelled(self, job_id: int) -> bool:
        with self._lock:
            return job_id in self._cancelled

    def _step_file(self) -> None:
        """Advance the current file job by one item, then yield to the event loop. A waiting
        file cancelled goes at once (its row says so), not when its turn would have come."""
        self._drop_cancelled_waiting()
        if self._current is None and self._transcriber is None:
            return  # files wait for a model; a successful load restarts the steps
        with self._lock:
            if self._current is None:
                if not self._jobs:
                    return
                self._current = self._jobs.popleft()
            job = self._current
        if self._is_cancelled(job.job_id):
            self._finish_job(job, cancelled=True)
        elif job.items is None:
            self._begin_job(job)
        else:
            self._advance_job(job)
        if self._current is not None or self._jobs:
            self._step_timer.start()

    def _drop_cancelled_waiting(self) -> None:
        with self._lock:
            dropped = [j.job_id for j in self._jobs if j.job_id in self._cancelled]
            self._jobs = deque(j for j in self._jobs if j.job_id not in self._cancelled)
            self._cancelled.difference_update(dropped)
        for job_id in dropped:
            self.file_cancelled.emit(job_id)

    def _begin_job(self, job: _FileJob) -> None:
        self.file_started.emit(job.job_id)
        try:
            items, info = self._transcribe(self._transcriber, job.path)
        except Exception as e:
            self._fail_job(job, e)
            return
        self.file_info.emit(job.job_id, info)
        job.items = _with_info(_punctuated(items, self._punctuator(self._transcriber)), info)

    def _advance_job(self, job: _FileJob) -> None:
        try:
            item = next(job.items)
        except StopIteration as stop:
            self.file_done.emit(job.job_id, stop.value)
            self._finish_job(job)
        except Exception as e:  # a bad file or a decode failure: one line for the queue
            self._fail_job(job, e)
        else:
            if isinstance(item, Segment):
                self.file_segment.emit(job.job_id, item)
            elif isinstance(item, Progress):
                self.file_progress.emit(job.job_id, item.fraction)

    def _fail_job(self, job: _FileJob, error: Exception) -> None:
        """One line for the queue and the log; the traceback at debug level."""
        log.info("file job %s failed: %s", job.path, error)
        log.debug("file job %s failed", job.path, exc_info=error)
        self.file_failed.emit(job.job_id, error)
        self._finish_job(job)

    def _finish_job(self, job: _FileJob, cancelled: bool = False) -> None:
        if job.items is not None:
            job.items.close()  # closing the engine's generator stops its work
        if cancelled:
            self.file_cancelled.emit(job.job_id)
        with self._lock:
            self._cancelled.discard(job.job_id)
            self._current = None

    @Slot()
    def shutdown(self) -> None:
        """Finish a running recording (its file is kept) and drop queued jobs."""
        self.cancel_all()
        self.stop_recording()
        while self._current is not None or self._jobs:
            self._step_file()
        self._step_timer.stop()  # timers must stop in their own thread
        self._drain_timer.stop()
        app = QCoreApplication.instance()
        if app is not None and self.thread() is not app.thread():
            self.thread().quit()  # this thread's loop ends once this slot returns


class _Meter:
    """Decimates one recording's microphone blocks for the waveform and meter. Called only
    from its recorder's thread; emits (points, level, seconds)."""

    def __init__(self, emit: Callable[[np.ndarray, int, float], None]) -> None:
        self._emit = emit
        self._rest = np.zeros(0, dtype=np.float32)
        self._samples = 0

    def __call__(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float32)
        self._samples += len(block)
        joined = np.concatenate([self._rest, block])
        usable = len(joined) - len(joined) % ENVELOPE_BIN
        self._rest = joined[usable:]
        points = envelope(joined[:usable], ENVELOPE_BIN)
        self._emit(points, level_percent(block), self._samples / SAMPLE_RATE)


def _listener(audio: queue.Queue, meter: _Meter) -> Callable[[np.ndarray], None]:
    """A recording's `on_audio` (the recorder's thread): each block queued for the live stream
    and drawn at once, so the waveform keeps moving however long a model call takes."""

    def on_audio(block: np.ndarray) -> None:
        audio.put(block)
        meter(block)

    return on_audio


def _recording_error(error: Exception, folder: str) -> tuple[str, Exception]:
    """(kind, error) to report for a recording that failed (to start or stop, to be found or
    recovered at start-up). The recordings folder's errors (it cannot be made or written, a
    full disk, a recording that cannot be repaired: engine code recording.*, or an OSError
    from making it) are not the microphone's: they came as the raw errno under "Microphone
    problem"."""
    if isinstance(error, OSError):
        error = TingxieError("recording.folder", path=folder, detail=error.strerror or str(error))
    kind = "recordings" if getattr(error, "code", "").startswith("recording.") else "microphone"
    return kind, error


def _punctuated(items: Iterator, punctuator: Any) -> Iterator:
    """The transcriber's items with each segment punctuated (one segment later; see
    engine.punctuation.punctuate_stream), or as they are without a punctuator."""
    if punctuator is None:
        return items
    from engine.punctuation import punctuate_stream

    return punctuate_stream(items, punctuator)


def _with_info(items: Iterator, info: Any) -> Iterator:
    """Re-yield the transcriber's items and return `info` when they run out, with the length
    they read (TranscriptionInfo.decoded: a header's guess ended the last cue too late);
    closing this closes them, which stops the engine's work."""
    last = None
    try:
        for item in items:
            if isinstance(item, Progress):
                last = item
            yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()
    return info.decoded(last) if isinstance(info, TranscriptionInfo) else info


def _progress_tqdm(signal: Any, preparing: Any) -> type:
    """A tqdm class that reports through `signal` the byte progress of a Hub download (not its
    count of files) and the stages of a CPU's int8 copy (engine.model.load_model), whose start
    it tells `preparing`."""
    import io

    from tqdm import tqdm

    class QtTqdm(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs.pop("name", None)
            kwargs["file"] = io.StringIO()  # nothing printed; the window draws the bar
            super().__init__(*args, **kwargs)
            if self.unit == "stage":
                preparing.emit()

        def update(self, n=1):
            result = super().update(n)
            if self.unit in ("B", "stage") and self.total:
                signal.emit(min(1.0, self.n / self.total))
            return result

    return QtTqdm


# The worker's thread-safe capture slots: the handle's signals call them at once, in the
# emitting (UI) thread, never queued behind a model call.
_CAPTURE_SLOTS = frozenset(
    ("set_input_device", "start_recording", "pause_recording", "resume_recording", "stop_recording")
)


class WorkerHandle(QObject):
    """Lives in the UI thread: emitting its signals queues the worker's slots in its thread,
    but for the microphone's (_CAPTURE_SLOTS), which run at once."""

    import_runtime = Signal(str, str)
    load_model = Signal(str)
    list_devices = Signal()
    list_devices_quietly = Signal()
    set_input_device = Signal(str)
    start_recording = Signal(str)
    pause_recording = Signal()
    resume_recording = Signal()
    stop_recording = Signal()
    scan_unfinished = Signal(str)
    recover = Signal(list)
    enqueue_file = Signal(int, str)
    build_dataset = Signal(object)
    set_backend = Signal(str)
    set_punctuation = Signal(bool)
    set_decoding = Signal(object)
    label_speakers = Signal(object)
    export_model = Signal(object)
    push_model = Signal(object)
    embed_file = Signal(object)
    shutdown = Signal()

    def __init__(self, worker: EngineWorker) -> None:
        super().__init__()
        self.worker = worker
        at_once = Qt.ConnectionType.DirectConnection
        for name in (
            "import_runtime",
            "load_model",
            "list_devices",
            "list_devices_quietly",
            "set_input_device",
            "start_recording",
            "pause_recording",
            "resume_recording",
            "stop_recording",
            "scan_unfinished",
            "recover",
            "enqueue_file",
            "build_dataset",
            "set_backend",
            "set_punctuation",
            "set_decoding",
            "label_speakers",
            "export_model",
            "push_model",
            "embed_file",
            "shutdown",
        ):
            kind = at_once if name in _CAPTURE_SLOTS else Qt.ConnectionType.AutoConnection
            getattr(self, name).connect(getattr(worker, name), kind)
        # Queued to this (the UI) thread, which drives capture: never the worker's, which a
        # model load may hold for minutes, nor the recorder's own thread.
        worker.recording_lost.connect(self._recording_lost)
        self.thread: QThread | None = None

    @Slot(str)
    def _recording_lost(self, path: str) -> None:
        self.worker.stop_lost(path)

    def cancel_file(self, job_id: int) -> None:
        self.worker.cancel_file(job_id)  # thread-safe, immediate

    def cancel_all(self) -> None:
        self.worker.cancel_all()

    def cancel_export(self) -> None:
        self.worker.cancel_export()

    def start(self) -> None:
        """Move the worker to its own thread and start it."""
        self.thread = QThread()
        self.thread.setObjectName("tingxie-engine")
        self.worker.moveToThread(self.thread)
        self.thread.start()

    def stop(self, timeout_ms: int = 15_000) -> None:
        """Finish the worker's work (a running recording is saved) and end its thread.

        Waits at most `timeout_ms`: a model call that is still running (a large download)
        must not hang the window's closing. Recordings are on disk as they are captured, so
        even then nothing recorded is lost (the next start offers them back).
        """
        if self.thread is None:
            return
        self.worker.cancel_export()  # stops at its next stage, leaving nothing half-written
        self.shutdown.emit()
        if not self.thread.wait(timeout_ms):
            log.warning("engine thread still busy after %d ms; closing anyway", timeout_ms)
            return  # keep the QThread referenced: destroying a running one aborts
        self.thread = None
