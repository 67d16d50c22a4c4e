"""`Transcriber`: audio file or array → a lazy stream of `Segment`s and `Progress` records.

Stages (each testable alone): audio blocks (engine.audio) → chunks with strides
(engine.chunking) → batched model forward (`Transcriber.log_probs`) → kept frames → greedy
decoding (engine.decode), or beam search with the model's language model, domain text and
hotwords (engine.lm) → segmentation at the pauses a voice-activity detector finds in the
same audio (engine.vad), and at a maximum length (`split_segments`).

Nothing long-lived is held: blocks are read as chunks need them and decoded frames are dropped
once their characters are out, so a 3-hour file never sits in memory as audio or as logits.
The work happens as the caller iterates; closing the generator stops it (cancellation).
"""

from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import audio
from .calibration import Calibration, load_calibration
from .chunking import Chunk, ChunkPlan, FrameGeometry, iter_chunks, join_frames, make_chunk
from .decode import ConfidenceMethod, ctc_greedy, silent_ids
from .lm import BeamDecoder, ModelLM
from .model import LoadedModel
from .results import Char, Progress, Segment, TranscriptionInfo
from .vad import PauseDetector, PauseOptions

if TYPE_CHECKING:  # imported where a CTC model runs: Whisper segments (split_segments) need none
    import torch

__all__ = [
    "SILENCE_MARGIN_SECONDS",
    "SpanDecoder",
    "TranscribeOptions",
    "Transcriber",
    "split_segments",
]

log = logging.getLogger("tingxie.transcribe")

# The feature extractor's variance floor in zero-mean unit-variance normalization.
_NORM_EPS = 1e-7
# A character run longer than this many frames (10 s at 20 ms) is decoded without waiting
# for it to end, which keeps the carried frames bounded on pathological output.
_MAX_CARRY_FRAMES = 500
# Beam search decodes up to the middle of a pause: a run of at least this many frames where
# the greedy path writes nothing (0.3 s at 20 ms), or, without one, after this many frames
# (30 s) at the longest such run. The language model's context starts anew after a cut.
_BEAM_PAUSE_FRAMES = 15
_BEAM_MAX_FRAMES = 1500
# Audio kept before the speech that follows a skipped silence (skip_silence): the span after
# a pause starts this long before the detector heard speech again, as the span before it
# ends half of pause_seconds (0.3 s by default) into the silence (engine.vad).
SILENCE_MARGIN_SECONDS = 0.3
DECODERS = ("auto", "greedy", "beam")


@dataclass(frozen=True, slots=True)
class TranscribeOptions:
    """How to cut, run, decode and segment. Defaults suit the XLSR-53 large model on a CPU."""

    # Chunking: seconds the model sees at once, and context on each side whose output is
    # dropped (the pipeline's stride). Longer chunks waste less on overlap but use more memory.
    chunk_seconds: float = 20.0
    stride_seconds: float = 1.5
    # Chunks per forward pass; None: 4 on a CPU, 16 on a GPU. A CPU runs equal-length chunks
    # together only (no padding to compute); a GPU runs a batch of any lengths at once, padded
    # under an attention mask where the model allows it (`Transcriber.pads_batches`).
    batch_size: int | None = None
    # Cut the audio at the pauses (`pauses` below) and decode each stretch between two on its
    # own, in chunks when it is longer than chunk_seconds, as the live finals do
    # (engine.twopass): a model trained on utterances decodes one better alone than inside a
    # window that spans two, and a file's transcript then equals its live finals. False:
    # chunks run on across pauses, the HF pipeline's way. (CTC models; Whisper reads files in
    # its own windows, engine.whisper.)
    cut_at_pauses: bool = True
    # With cut_at_pauses: a pause's silence is not run through the model, but for its first
    # half pause_seconds and the last SILENCE_MARGIN_SECONDS before the speech resumes, nor
    # the silence after the last pause (a trained CTC model writes nothing there; live finals
    # skip the same, engine.twopass). Whisper skips silences of 2 s or more by faster-whisper's
    # own filter (engine.whisper). False: every sample is decoded.
    skip_silence: bool = True
    # Decoding: alternatives kept per character, and the confidence measure
    # (`measure[:alpha[:aggregation]]`, see engine.decode).
    top_k: int = 3
    confidence: str = "max_prob:1:mean"
    # "auto": beam search with a language model (engine.lm) when the model folder has one
    # (lm/) or domain text or hotwords are given, else greedy; "greedy": never; "beam": always.
    decoder: str = "auto"
    # A plain text file of the domain's sentences: a domain LM built from it (in seconds,
    # cached by content) is mixed with the model's LM. And a file of hotwords, one a line with
    # an optional weight (engine.lm.read_hotwords).
    domain_text: str | None = None
    hotwords: str | None = None
    # Search with the model folder's own LM (lm/) when it has one. False leaves it out and
    # keeps the domain text and hotwords: how the app goes on past a damaged lm/.
    model_lm: bool = True
    # Segmentation: a pause in the audio (engine.vad; the live stream uses the same rule)
    # ends a segment; a segment never runs longer than max_segment_seconds.
    pauses: PauseOptions = field(default_factory=PauseOptions)
    max_segment_seconds: float = 12.0
    # Seconds of audio read from a file at a time.
    block_seconds: float = 30.0
    # Sequence-to-sequence models (Whisper, engine.whisper; CTC models ignore both): text the
    # decoder continues from, which steers it to Simplified characters with punctuation (and
    # can carry names and terms), and the beam width (1 = greedy; 5 is Whisper's default).
    initial_prompt: str = "以下是普通话的句子。"
    beam_size: int = 5

    def __post_init__(self) -> None:
        positive = ("chunk_seconds", "stride_seconds", "max_segment_seconds")
        for name in (*positive, "block_seconds"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < math.inf):
                raise ValueError(f"{name}={value!r}: must be a positive number of seconds")
        if self.chunk_seconds <= 2 * self.stride_seconds:
            raise ValueError(
                f"chunk_seconds={self.chunk_seconds}: must exceed twice stride_seconds "
                f"({self.stride_seconds}); lengthen the chunk or shorten the stride"
            )
        if self.batch_size is not None and not (
            isinstance(self.batch_size, int) and self.batch_size >= 1
        ):
            raise ValueError(f"batch_size={self.batch_size!r}: must be a whole number ≥ 1")
        if not (isinstance(self.beam_size, int) and self.beam_size >= 1):
            raise ValueError(f"beam_size={self.beam_size!r}: must be a whole number ≥ 1")
        if not (isinstance(self.top_k, int) and self.top_k >= 0):
            raise ValueError(f"top_k={self.top_k!r}: must be a whole number ≥ 0")
        ConfidenceMethod.parse(self.confidence)  # raises a ValueError naming the problem
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder={self.decoder!r}: choose one of {', '.join(DECODERS)}")


def split_segments(
    chars: Sequence[Char],
    *,
    pauses: Sequence[float] = (),
    max_segment_seconds: float,
    first_id: int = 0,
    can_cut: Sequence[bool] | None = None,
) -> list[Segment]:
    """Group characters into segments: a new one starts at the first character at or after a
    pause boundary (seconds, ascending; see engine.vad), or where the next character would
    make the segment longer than max_segment_seconds. Gaps between characters alone never
    cut: a model that drops characters leaves long blank runs inside a sentence. With
    `can_cut` (one flag a character), a segment starts only at a character flagged: Whisper
    gives words, and a word cut in two split a subtitle cue inside it (体|系); the segment
    then runs past max_segment_seconds to the word's end, and a pause inside a word (one
    stretched into the silence after it) cuts at the next word's start.

    Each cut depends only on the current segment, the next character and the boundaries
    between them, so splitting a list in pieces that start at segment boundaries gives the
    same segments as splitting it whole.
    """
    groups: list[list[Char]] = []
    k = 0  # pauses[:k] lie at or before the last character's start
    crossed = False  # a pause lies before this character, not yet cut at (inside a word)
    for i, c in enumerate(chars):
        while k < len(pauses) and pauses[k] <= c.start:
            k, crossed = k + 1, True
        inside_word = can_cut is not None and not can_cut[i]
        if groups and (
            inside_word or (not crossed and c.end - groups[-1][0].start <= max_segment_seconds)
        ):
            groups[-1].append(c)
        else:
            groups.append([c])
            crossed = False
    return [
        Segment(id=first_id + i, start=g[0].start, end=g[-1].end, chars=tuple(g))
        for i, g in enumerate(groups)
    ]


class _Segmenter:
    """Incremental `split_segments`: releases a segment once nothing can join it: a known
    pause boundary follows it, before which every character has been decoded."""

    def __init__(self, options: TranscribeOptions) -> None:
        self.max_len = options.max_segment_seconds
        self.pending: list[Char] = []
        self.pauses: list[float] = []
        self.next_id = 0

    def push(self, chars: list[Char], pauses: list[float], known: float) -> list[Segment]:
        """Add characters and pause boundaries; `known` is the time before which every
        character has been decoded and every boundary found."""
        self.pending.extend(chars)
        self.pauses.extend(pauses)
        ready = [c for c in self.pending if c.start < known]
        segs = split_segments(
            ready, pauses=self.pauses, max_segment_seconds=self.max_len, first_id=self.next_id
        )
        if segs and not any(segs[-1].chars[-1].start < p <= known for p in self.pauses):
            segs.pop()  # the next character may still join it
        return self._release(segs)

    def finish(self) -> list[Segment]:
        return self._release(
            split_segments(
                self.pending,
                pauses=self.pauses,
                max_segment_seconds=self.max_len,
                first_id=self.next_id,
            )
        )

    def _release(self, segs: list[Segment]) -> list[Segment]:
        if segs:
            done = sum(len(s.chars) for s in segs)
            last = segs[-1].chars[-1].start
            self.pending = self.pending[done:]
            self.pauses = [p for p in self.pauses if p > last]
            self.next_id += len(segs)
        return segs


class _FrameDecoder:
    """Decodes joined log-prob frames as they arrive. Greedy decoding cuts only where no
    character run can continue, so the result equals decoding all frames at once; beam search
    cuts in the middle of pauses (`_beam_cut`)."""

    def __init__(self, transcriber: Transcriber, options: TranscribeOptions) -> None:
        self.t = transcriber
        self.top_k = options.top_k
        self.method = ConfidenceMethod.parse(options.confidence)
        self.beam = transcriber.beam_decoder(options)
        self.buf: np.ndarray | None = None
        self.buf_frame = 0  # absolute index of buf[0]

    @property
    def horizon(self) -> float:
        """Time up to which every character has been decoded."""
        return self.buf_frame * self.t.frame_seconds

    def push(self, frames: np.ndarray, first_frame: int) -> list[Char]:
        if self.buf is None or len(self.buf) == 0:
            self.buf, self.buf_frame = frames, first_frame
        else:
            self.buf = np.concatenate([self.buf, frames])
        if len(self.buf) == 0:
            return []
        best = self.buf.argmax(axis=1)
        if self.beam is not None:
            return self._decode(self._beam_cut(best))
        cut = len(best)
        if not self.t.silent[best[-1]]:  # a character run may continue into the next chunk
            change = np.flatnonzero(best[1:] != best[:-1])
            cut = int(change[-1]) + 1 if len(change) else 0
            if len(best) - cut > _MAX_CARRY_FRAMES:
                cut = len(best)
        return self._decode(cut)

    def _beam_cut(self, best: np.ndarray) -> int:
        """The middle of the last pause (a silent run of `_BEAM_PAUSE_FRAMES`), or 0 to wait;
        past `_BEAM_MAX_FRAMES`, the middle of the longest silent run (or everything)."""
        silent = np.concatenate([[False], self.t.silent[best], [False]])
        edges = np.flatnonzero(silent[1:] != silent[:-1])
        starts, ends = edges[0::2], edges[1::2]  # silent runs [start, end)
        lengths = ends - starts
        long = np.flatnonzero(lengths >= _BEAM_PAUSE_FRAMES)
        if len(long):
            i = long[-1]
            return int(starts[i] + _BEAM_PAUSE_FRAMES // 2)
        if len(best) <= _BEAM_MAX_FRAMES:
            return 0
        if len(lengths) == 0:
            return len(best)
        i = int(np.argmax(lengths))
        return int(starts[i] + lengths[i] // 2) or len(best)

    def finish(self) -> list[Char]:
        return self._decode(0 if self.buf is None else len(self.buf))

    def _decode(self, cut: int) -> list[Char]:
        if cut == 0:
            return []
        chars = self.t.chars(
            self.buf[:cut],
            offset_seconds=self.horizon,
            top_k=self.top_k,
            confidence=self.method,
            beam=self.beam,
        )
        self.buf, self.buf_frame = self.buf[cut:], self.buf_frame + cut
        return chars


class SpanDecoder:
    """One span of audio decoded as `Transcriber.transcribe` decodes it alone (with
    cut_at_pauses=False: chunks from its start, the last one ending at its end, the same frame
    decoder), while the audio still arrives: a chunk runs through the model once the caller
    knows the span goes on past its end (`advance`), so ending a long span decodes only its
    last chunk. The live finals (engine.twopass) use it: a first span after minutes of silence
    was otherwise decoded whole at its first pause, while the audio waited.

    The chunks run ahead go through the model one at a time where `transcribe` batches equal
    lengths together. In torch fp32 and ONNX Runtime int8 a chunk's output does not depend on
    its batch (checked bit for bit), so the characters are the same; in bf16 on a CPU with AMX
    it can differ in the last bits (~0.005 in a log-probability at some lengths, 2026-12-06),
    enough to flip a near-tie: 6 of 187 segments of a 20-minute recording differed with the
    tiny random test model. Holds the audio from the next chunk's start on: at most a chunk
    more than what arrived since.
    """

    def __init__(self, transcriber: Transcriber, options: TranscribeOptions) -> None:
        self._t = transcriber
        self._plan = ChunkPlan.from_seconds(
            options.chunk_seconds,
            options.stride_seconds,
            transcriber.geometry,
            transcriber.model.sampling_rate,
        )
        self._batch = options.batch_size or default_batch_size(transcriber.model.device.type)
        self._decoder = _FrameDecoder(transcriber, options)
        self._chars: list[Char] = []  # decoded from the chunks run ahead
        self._index = 0  # the next chunk
        # the span's samples from the next chunk's start, in the blocks pushed
        self._blocks: list[np.ndarray] = []
        self.received = 0  # samples pushed

    @property
    def ran_to(self) -> int:
        """The end of the last chunk run ahead (0: none): the span must end after it."""
        return (self._index - 1) * self._plan.step + self._plan.chunk_samples if self._index else 0

    @property
    def _from(self) -> int:
        return self._index * self._plan.step

    def push(self, samples: np.ndarray) -> None:
        self._blocks.append(np.asarray(samples, np.float32))
        self.received += len(samples)

    def tail(self, start: int) -> np.ndarray:
        """The samples pushed from `start` on (at or after the next chunk's start)."""
        if start < self._from:
            raise ValueError(f"samples before {self._from} are gone (asked from {start})")
        return audio.joined(self._blocks)[start - self._from :]

    def advance(self, known: int) -> None:
        """Run every chunk that has arrived whole and ends before `known`: the caller knows
        the span ends at or after that sample."""
        plan, chunks, held = self._plan, [], None
        while True:
            start = self._from + len(chunks) * plan.step
            stop = start + plan.chunk_samples
            if stop >= min(known, self.received + 1):
                break
            held = audio.joined(self._blocks) if held is None else held
            samples = held[start - self._from : stop - self._from]
            chunks.append(make_chunk(plan, self._index + len(chunks), start, samples, False))
        if held is not None:
            self._chars += self._run(self._decoder, chunks)
            self._index += len(chunks)
            self._blocks = [held[len(chunks) * plan.step :]]

    def chars(self, end: int) -> list[Char]:
        """Every character of the span's first `end` samples, as `transcribe` decodes them
        (times from the span's start). The span stays open: `end` may be a boundary that
        does not come (the live finals decode a segment ahead of its pause)."""
        if end > self.received or (self._index and end <= self.ran_to):
            raise ValueError(
                f"end={end}: must lie after {self.ran_to} and at most at {self.received}"
            )
        plan, chunks, start, held = self._plan, [], self._from, audio.joined(self._blocks)
        while start < end:
            stop = min(start + plan.chunk_samples, end)
            samples = held[start - self._from : stop - self._from]
            last = stop == end
            chunks.append(make_chunk(plan, self._index + len(chunks), start, samples, last))
            start += plan.step
            if stop == end:
                break
        # its frame buffer is replaced, never written to, so the copy leaves this one as it was
        decoder = copy.copy(self._decoder)
        return self._chars + self._run(decoder, chunks) + decoder.finish()

    def _run(self, decoder: _FrameDecoder, chunks: list[Chunk]) -> list[Char]:
        chars: list[Char] = []
        for batch in _batches(chunks, self._batch):
            outputs = self._t.log_probs([c.audio for c in batch])
            for chunk, lp in zip(batch, outputs, strict=True):
                chars += decoder.push(join_frames(chunk, lp), chunk.kept_start)
        return chars


class _Listener:
    """Runs the pause detector over the audio blocks on their way to the chunker, and hands
    the boundaries it finds to the segmenter (`take`) and the chunker (`take_ends`), and where
    speech resumes after each to the chunker (`take_resumes`).

    With `ahead` > 0 the blocks are read and scanned in a thread up to that many blocks ahead
    of the chunker, while the model runs: on a GPU, reading the file and the detector's
    thousands of tiny calls (silero, 32 ms a call) otherwise take most of the time. What the
    chunker and the segmenter see after each block is the same as without the thread."""

    def __init__(self, options: PauseOptions, ahead: int = 0) -> None:
        self.detector = PauseDetector(options, onsets=True)
        self.ahead = ahead
        self.found: list[int] = []
        self.ends: list[int] = []
        self.resumes: list[int] = []
        self._settled = 0
        self.read = 0  # samples handed on: the length decoded, whatever the header said

    def _scan(
        self, blocks: Iterable[np.ndarray]
    ) -> Iterator[tuple[np.ndarray, list[int], list[int], int]]:
        for block in blocks:
            found = self.detector.push(block)
            yield block, found, self.detector.take_onsets(), self.detector.settled

    def tap(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        scanned = self._scan(blocks)
        stream = read_ahead(scanned, self.ahead) if self.ahead else scanned
        try:
            for block, found, onsets, settled in stream:
                self.found += found
                self.ends += found
                self.resumes += onsets
                self._settled = settled
                self.read += len(block)
                yield block
        finally:
            stream.close()  # stops the thread before the caller closes `blocks`

    @property
    def settled(self) -> int:
        """Sample before which every pause boundary has been found."""
        return self._settled

    def take(self) -> list[float]:
        """The boundaries (seconds) found since the last call."""
        found, self.found = self.found, []
        return [p / audio.SAMPLE_RATE for p in found]

    def take_ends(self) -> list[int]:
        """As `take`, in samples, for the chunker (engine.chunking.SpanEnds)."""
        ends, self.ends = self.ends, []
        return ends

    def take_resumes(self) -> list[int]:
        """Where speech resumed after each pause (engine.chunking.SpanEnds)."""
        resumes, self.resumes = self.resumes, []
        return resumes


def read_ahead(items: Iterator, depth: int) -> Iterator:
    """`items`, produced in a thread up to `depth` ahead of the consumer. Its exceptions reach
    the consumer where they happened in order; closing this generator stops the thread (and
    closes `items` there) before it returns."""
    import queue
    import threading

    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((end, None))
        except BaseException as e:  # handed over, raised in the consumer
            slots.put((end, e))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is end:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                thread.join(0.05)


def _file_key(path: str | os.PathLike | None) -> tuple | None:
    """A file's identity for caching what was built from it (its contents may change)."""
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return (str(path),)  # building from it reports the error
    return (str(path), st.st_mtime_ns, st.st_size)


def default_batch_size(device_type: str) -> int:
    """Chunks per forward pass where TranscribeOptions.batch_size is None: 4 on a CPU, 16 on a
    GPU ("cuda")."""
    return 16 if device_type == "cuda" else 4


def _batches(chunks: Iterable[Chunk], size: int) -> Iterator[list[Chunk]]:
    batch: list[Chunk] = []
    for c in chunks:
        batch.append(c)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _log_softmax_(x: torch.Tensor) -> torch.Tensor:
    """log_softmax over the last axis, written over `x`."""
    return x.sub_(x.logsumexp(-1, keepdim=True))


def _configure_threads(device: torch.device) -> None:
    """Use every core this process may run on, but no more (containers often report the
    host's cores to torch, and oversubscribed threads slow matrix products down)."""
    import torch

    if device.type != "cpu":
        return
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    if torch.get_num_threads() > usable:
        torch.set_num_threads(usable)
        log.info("torch threads set to %d", usable)


class Transcriber:
    """Runs one loaded CTC model over audio. Not thread-safe: use one per worker thread.

    Public attributes (engine.stream and engine.evaluate build on them): `model` (the
    LoadedModel), `geometry` (samples → frames), `frame_seconds`, `silent` (bool per model
    output: True where it never becomes a character), and `read_ahead` (blocks read ahead of
    the model in a thread; 0: none).
    """

    _NO_LM: object = object()

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        config = model.model.config
        self.geometry = FrameGeometry.from_convs(config.conv_kernel, config.conv_stride)
        self.frame_seconds = model.frame_seconds
        self.silent = silent_ids(
            model.vocab,
            int(config.vocab_size),
            model.blank_id,
            model.special_ids,
            model.word_delimiter,
        )
        self._model_lm: ModelLM | object | None = self._NO_LM
        self._beams: dict[tuple, BeamDecoder | None] = {}
        self._calibration: Calibration | object | None = self._NO_LM
        # audio blocks read and scanned for pauses ahead of the model, in a thread (_Listener):
        # on a GPU; a CPU's cores are busy with the model already
        self.read_ahead = 2 if model.device.type == "cuda" else 0
        _configure_threads(model.device)

    def calibration(self, method: ConfidenceMethod | None = None) -> Calibration | None:
        """The model folder's confidence calibration (calibration.json, engine.calibration)
        when it maps `method`'s measure (default: the transcriber's); None otherwise."""
        if self._calibration is self._NO_LM:
            self._calibration = load_calibration(self.model.path)
        cal = self._calibration
        name = (method or ConfidenceMethod.parse(TranscribeOptions().confidence)).name
        return cal if isinstance(cal, Calibration) and cal.measure == name else None

    @property
    def model_lm(self) -> ModelLM | None:
        """The language model in the model's folder (`lm/`), read once; None if it has none."""
        if self._model_lm is self._NO_LM:
            self._model_lm = ModelLM.from_folder(self.model.path)
        return self._model_lm  # type: ignore[return-value]

    def beam_decoder(self, options: TranscribeOptions | None = None) -> BeamDecoder | None:
        """The beam search `options` ask for (see TranscribeOptions.decoder), built once per
        choice of the model's LM, domain text and hotwords (and their files' contents); None:
        greedy.
        Raises engine.lm.LmError when a file cannot be read or the decoder is missing."""
        o = options or TranscribeOptions()
        if o.decoder == "greedy":
            return None
        lm = self.model_lm if o.model_lm else None
        if o.decoder == "auto" and lm is None and not o.domain_text and not o.hotwords:
            return None
        key = (o.decoder, o.model_lm, _file_key(o.domain_text), _file_key(o.hotwords))
        if key not in self._beams:
            m = self.model
            self._beams[key] = BeamDecoder.for_model(
                m.vocab,
                m.blank_id,
                m.special_ids,
                m.word_delimiter,
                model_lm=lm,
                domain_text=o.domain_text,
                hotwords=o.hotwords,
            )
        return self._beams[key]

    def _normalize(self, samples: np.ndarray) -> np.ndarray:
        """What the feature extractor does to one utterance (here: one chunk), to samples read
        as every entry reads them (`audio.as_samples`: a NaN would make the chunk all NaN)."""
        x = audio.as_samples(samples)
        if self.model.do_normalize:
            x = (x - x.mean()) / np.sqrt(x.var() + _NORM_EPS)
        return x

    def log_probs(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        """Model forward only: each 16 kHz float32 array → (frames, vocab) float32 log-probs.

        Arrays of equal length run together; different lengths run apart, so no padding can
        change a result, except where `pads_batches`: there all run at once, padded under an
        attention mask (the same function, other rounding). Arrays shorter than one frame's
        receptive field give zero frames.
        """
        # In place: the fp32 logits of a batch of 20 s chunks are ~55 MB, a copy more at the peak.
        return self._forward(batch, lambda out: _log_softmax_(out.logits.float()))

    def logits(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        """As `log_probs`, the raw logits (to compare two backends of one model)."""
        return self._forward(batch, lambda out: out.logits)

    def hidden_states(self, batch: list[np.ndarray], layer: int = -1) -> list[np.ndarray]:
        """As `log_probs`, one layer's hidden states (frames, hidden size): 0 is the input to
        the transformer, 1… its layers, -1 the last (torch backend only)."""
        width = int(self.model.model.config.hidden_size)
        return self._forward(batch, lambda out: out.hidden_states[layer], width, hidden=True)

    def _forward(
        self, batch: list[np.ndarray], select, width: int | None = None, hidden: bool = False
    ) -> list[np.ndarray]:
        import torch

        width = width or int(self.model.model.config.vocab_size)
        out: list[np.ndarray] = [np.zeros((0, width), np.float32)] * len(batch)
        groups: dict[int, list[int]] = {}
        for i, a in enumerate(batch):
            if np.ndim(a) != 1:
                raise ValueError(f"audio #{i} has shape {np.shape(a)}; expected mono 1-D samples")
            if self.geometry.frames(len(a)):
                groups.setdefault(0 if self.pads_batches else len(a), []).append(i)
        for idx in groups.values():
            lengths = [len(batch[i]) for i in idx]
            x = torch.zeros(len(idx), max(lengths))
            for j, i in enumerate(idx):
                x[j, : lengths[j]] = torch.from_numpy(self._normalize(batch[i]))
            kwargs: dict = {"output_hidden_states": True} if hidden else {}
            if min(lengths) < x.shape[1]:
                mask = torch.arange(x.shape[1]) < torch.tensor(lengths)[:, None]
                kwargs["attention_mask"] = mask.to(self.model.device)
            x = x.to(self.model.device, self.model.dtype)
            with torch.inference_mode():
                values = select(self.model.model(x, **kwargs)).float().cpu().numpy()
            for j, i in enumerate(idx):
                out[i] = values[j, : self.geometry.frames(lengths[j])]
        return out

    @property
    def pads_batches(self) -> bool:
        """Whether a batch of different lengths runs as one padded forward pass: on a GPU,
        where one large launch beats many small ones and padding costs little, for models
        whose feature encoder normalizes each frame alone (feat_extract_norm "layer", as
        XLSR-53 and every large checkpoint): their output for the real samples does not
        depend on the padding. Group-norm encoders (wav2vec2-base) normalize over time, and
        data2vec-audio's stacked positional convolutions carry the padding into the last
        frames (Family.pads_exactly), so padding would change them."""
        m = self.model
        exact = m.family.pads_exactly_with(m.model.config)
        return m.runtime == "torch" and m.device.type == "cuda" and exact

    def chars(
        self,
        log_probs: np.ndarray,
        offset_seconds: float = 0.0,
        *,
        top_k: int = 3,
        confidence: ConfidenceMethod | None = None,
        beam: BeamDecoder | None = None,
        calibrate: bool = True,
    ) -> list[Char]:
        """Decode (frames, vocab) log-probs with this model's vocabulary: greedy, or with
        `beam` (see `beam_decoder`). Confidences go through the folder's calibration when it
        has one for the measure (`calibrate=False`: the raw measure): its beam map after a
        beam search when it has one, else its Platt map."""
        cal = self.calibration(confidence) if calibrate else None
        paths = None
        if beam is None:
            chars = self._greedy(log_probs, offset_seconds, top_k, confidence)
        else:
            paths = beam.paths(log_probs)
            chars = beam.chars(
                log_probs,
                frame_seconds=self.frame_seconds,
                offset_seconds=offset_seconds,
                top_k=top_k,
                confidence=confidence,
                paths=paths,
            )
        if cal is None or not chars:
            return chars
        evidence = None
        if beam is not None and cal.beam is not None:
            evidence = beam.evidence(log_probs, paths, confidence)
        mapped = cal.shown(np.array([c.confidence for c in chars]), evidence)
        return [
            replace(c, confidence=round(float(p), 4)) for c, p in zip(chars, mapped, strict=True)
        ]

    def _greedy(
        self,
        log_probs: np.ndarray,
        offset_seconds: float,
        top_k: int,
        confidence: ConfidenceMethod | None,
    ) -> list[Char]:
        m = self.model
        return ctc_greedy(
            log_probs,
            vocab=m.vocab,
            blank_id=m.blank_id,
            special_ids=m.special_ids,
            word_delimiter=m.word_delimiter,
            frame_seconds=self.frame_seconds,
            offset_seconds=offset_seconds,
            top_k=top_k,
            confidence=confidence,
        )

    def transcribe(
        self, source: str | Path | np.ndarray, options: TranscribeOptions | None = None
    ) -> tuple[Iterator[Segment | Progress], TranscriptionInfo]:
        """Start transcribing a file (any format engine.audio reads) or a 16 kHz mono array.

        File errors found by probing (missing, unreadable, unsupported) raise
        `engine.audio.AudioError` here; errors found while decoding raise during iteration.
        """
        options = options or TranscribeOptions()
        self.beam_decoder(options)  # a bad domain text or hotword file fails here, not later
        sr = self.model.sampling_rate
        name, duration, blocks = audio.open_source(
            source, block_seconds=options.block_seconds, sampling_rate=sr
        )
        m = self.model
        info = TranscriptionInfo(
            source=name,
            duration=duration,
            sampling_rate=sr,
            model=m.source,
            device=str(m.device),
            dtype=m.precision,
            attention=m.attention,
            confidence_measure=ConfidenceMethod.parse(options.confidence).name,
        )
        return self._run(blocks, options, duration), info

    def _run(
        self, blocks: Iterable[np.ndarray], options: TranscribeOptions, total: float
    ) -> Iterator[Segment | Progress]:
        plan = ChunkPlan.from_seconds(
            options.chunk_seconds, options.stride_seconds, self.geometry, self.model.sampling_rate
        )
        decoder = _FrameDecoder(self, options)
        segmenter = _Segmenter(options)
        vad = _Listener(options.pauses, ahead=self.read_ahead)
        tapped = vad.tap(blocks)
        margin = round(SILENCE_MARGIN_SECONDS * self.model.sampling_rate)
        chunks = iter_chunks(
            tapped,
            plan,
            vad if options.cut_at_pauses else None,
            gap_margin=margin if options.skip_silence and options.cut_at_pauses else None,
        )
        done = 0.0
        try:
            size = options.batch_size or default_batch_size(self.model.device.type)
            for batch in _batches(chunks, size):
                outputs = self.log_probs([c.audio for c in batch])
                for chunk, lp in zip(batch, outputs, strict=True):
                    chars = decoder.push(join_frames(chunk, lp), chunk.kept_start)
                    if chunk.is_last:  # the end of a span: its frames end here
                        chars += decoder.finish()
                    known = min(decoder.horizon, vad.settled / self.model.sampling_rate)
                    yield from segmenter.push(chars, vad.take(), known)
                done = (batch[-1].start + len(batch[-1].audio)) / self.model.sampling_rate
                if total > 0:  # MP3 and raw AAC lengths are estimates: may run past
                    total = max(total, done)
                yield Progress(done=done, total=total)  # total 0: not known until the end
            yield from segmenter.push(decoder.finish(), vad.take(), decoder.horizon)
            yield from segmenter.finish()
            total = vad.read / self.model.sampling_rate  # TranscriptionInfo.decoded
            yield Progress(done=total, total=total)
        finally:
            chunks.close()
            tapped.close()  # before `blocks`, which its read-ahead thread may be reading
            close = getattr(blocks, "close", None)
            if close is not None:
                close()
