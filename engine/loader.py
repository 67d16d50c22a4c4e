"""One entry point for every model family: source → loaded model → transcriber → streamer.

CTC checkpoints (engine.model, engine.transcribe, engine.stream) and Whisper models
(engine.whisper, engine.whisper_stream) give the same records through the same calls; callers
that should not care which family a model is (the CLI, the app's worker, evaluation, benches)
go through here. `model.family.features` (engine.registry) says what the loaded one can do.
"""

from __future__ import annotations

import os
from typing import Any

from . import model as ctc_model
from . import whisper
from .model import LoadOptions
from .registry import model_source
from .stream import StreamingTranscriber, StreamOptions
from .transcribe import Transcriber
from .twopass import TwoPassTranscriber
from .whisper_stream import WhisperStreamer

__all__ = ["is_whisper", "load_model", "streamer_for", "transcriber_for"]

is_whisper = whisper.is_whisper


def load_model(
    source: str | os.PathLike, options: LoadOptions | None = None, *, tqdm_class: Any = None
) -> Any:
    """A `LoadedModel` (CTC) or `LoadedWhisper` for a Hub id or folder. With `tqdm_class`, a
    CTC download reports its bytes through it first (the model then names its local folder),
    and the making of a CPU's int8 copy its stages (engine.model.load_model). A Hub model
    page's address loads as its Hub id (`engine.registry.model_source`)."""
    options = options or LoadOptions()
    source = model_source(source)
    if whisper.is_whisper(source):
        return whisper.load_whisper(source, options)
    if tqdm_class is not None:
        source = ctc_model.resolve_model(
            source,
            local_files_only=options.local_files_only,
            tqdm_class=tqdm_class,
            allow_pickle=options.allow_pickle,
        )
    return ctc_model.load_model(source, options, tqdm_class=tqdm_class)


def transcriber_for(model: Any) -> Transcriber | whisper.WhisperTranscriber:
    """The transcriber that runs `model` (see `load_model`)."""
    if isinstance(model, whisper.LoadedWhisper):
        return whisper.WhisperTranscriber(model)
    return Transcriber(model)


def streamer_for(
    transcriber: Any, options: StreamOptions | None = None, *, two_pass: bool = True
) -> StreamingTranscriber | TwoPassTranscriber | WhisperStreamer:
    """The live-stream transcriber for `transcriber` (see `transcriber_for`). CTC models get
    the two-pass one (engine.twopass: each segment's streamed text replaced by a file-path
    decode of its audio) unless `two_pass` is False."""
    if isinstance(transcriber, whisper.WhisperTranscriber):
        return WhisperStreamer(transcriber, options)
    if two_pass:
        return TwoPassTranscriber(transcriber, options)
    return StreamingTranscriber(transcriber, options)
