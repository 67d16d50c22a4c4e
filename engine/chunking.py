"""Long audio → overlapping chunks whose edge frames are dropped before joining.

This is the method of the Hugging Face ASR pipeline ("chunk_length_s" with left/right strides):
each chunk is run through the model with some extra context on both sides, and the output
frames computed from that context are thrown away, so every kept frame saw audio on both sides.

Unlike the pipeline, which rounds stride lengths to frames after the fact, all lengths here are
whole multiples of the model's hop (320 samples = 20 ms for wav2vec2), so chunk starts fall on
frame boundaries and kept frame ranges meet exactly: no frame is lost or doubled.

Frame geometry. A stack of convolutions with kernels k_i and strides s_i turns n samples into
``frames(n) = (n - R) // H + 1`` frames (0 when n < R), where H = prod(s_i) is the hop and
R = k_1 + sum_{i>1} (k_i - 1) * s_1 * ... * s_{i-1} the receptive field (400 samples for
wav2vec2). Frame j of a chunk starting at sample S (a multiple of H) is frame S / H + j of the
whole file, computed from the same samples.

Worked example (16 kHz, H = 320, chunk 10 s = 160 000 samples, stride 1 s = 16 000 samples,
step = chunk - 2 * stride = 8 s) on a 25 s file (400 000 samples, 1249 frames in one pass):

    chunk  samples             last?  local frames  kept (local)  kept (absolute)
    0      [0, 160000)         no     499           [0, 450)      [0, 450)
    1      [128000, 288000)    no     499           [50, 450)     [450, 850)
    2      [256000, 400000)    yes    449           [50, 449)     [850, 1249)

A chunk is the last one when it reaches the end of the audio (start + chunk >= length); the
first chunk keeps its left edge and the last keeps its right edge. Kept frames of a non-last
chunk end at ``(chunk - stride) / H``; its last kept frame still lies inside the chunk because
the stride is at least one hop and the receptive field overhangs the hop by less than a hop.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = [
    "Chunk",
    "ChunkPlan",
    "FrameGeometry",
    "SpanEnds",
    "frame_slices",
    "iter_chunks",
    "join_frames",
    "make_chunk",
    "resume_start",
]


@dataclass(frozen=True, slots=True)
class FrameGeometry:
    """How a model's convolutional front end maps samples to output frames."""

    hop: int  # samples between consecutive frames (product of the conv strides)
    receptive_field: int  # samples one frame sees (derivation in the module docstring)

    def __post_init__(self) -> None:
        if self.hop < 1:
            raise ValueError(f"hop={self.hop}: must be a positive number of samples")
        if self.receptive_field < self.hop or self.receptive_field >= 2 * self.hop:
            raise ValueError(
                f"receptive_field={self.receptive_field}: must lie in [hop, 2 * hop) "
                f"(hop={self.hop}) for frame-exact chunking"
            )

    @classmethod
    def from_convs(cls, kernels: Sequence[int], strides: Sequence[int]) -> FrameGeometry:
        """Geometry of a conv stack (e.g. ``config.conv_kernel``, ``config.conv_stride``)."""
        if len(kernels) != len(strides) or not kernels:
            raise ValueError("conv kernels and strides must be non-empty and of equal length")
        hop, field = 1, 0
        for k, s in zip(kernels, strides, strict=True):
            field += (k - 1) * hop
            hop *= s
        return cls(hop=hop, receptive_field=field + 1)

    def frames(self, n_samples: int) -> int:
        """Output frames the model produces for `n_samples` input samples."""
        if n_samples < self.receptive_field:
            return 0
        return (n_samples - self.receptive_field) // self.hop + 1


def frame_slices(n_samples: int, geometry: FrameGeometry, frames: int) -> list[tuple[int, int]]:
    """Sample ranges whose outputs, each of at most `frames` frames, concatenate to the output
    of all `n_samples` (consecutive ranges overlap by receptive_field - hop samples). Exact for
    a front end that sees only each frame's own samples (no normalization over time)."""
    if frames < 1:
        raise ValueError(f"frames={frames}: a slice holds at least one frame")
    total, hop = geometry.frames(n_samples), geometry.hop
    return [
        (first * hop, (min(first + frames, total) - 1) * hop + geometry.receptive_field)
        for first in range(0, total, frames)
    ]


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    """Chunk and stride lengths in samples, whole multiples of the hop.

    chunk_samples: audio the model sees at once (longer: less overlap, more memory).
    stride_samples: context added on each side whose output frames are dropped (≥ one hop).
    """

    chunk_samples: int
    stride_samples: int
    geometry: FrameGeometry

    def __post_init__(self) -> None:
        hop = self.geometry.hop
        for name in ("chunk_samples", "stride_samples"):
            if getattr(self, name) % hop:
                raise ValueError(f"{name}={getattr(self, name)}: must be a multiple of {hop}")
        if self.stride_samples < hop:
            raise ValueError(f"stride_samples={self.stride_samples}: must be at least {hop}")
        if self.chunk_samples <= 2 * self.stride_samples:
            raise ValueError(
                f"chunk_samples={self.chunk_samples}: must exceed twice the stride "
                f"({2 * self.stride_samples}); lower the stride or lengthen the chunk"
            )

    @classmethod
    def from_seconds(
        cls,
        chunk_seconds: float,
        stride_seconds: float,
        geometry: FrameGeometry,
        sampling_rate: int,
    ) -> ChunkPlan:
        """A plan with lengths rounded to whole frames (a stride of at least one frame)."""
        hop = geometry.hop
        chunk = max(1, round(chunk_seconds * sampling_rate / hop)) * hop
        stride = max(1, round(stride_seconds * sampling_rate / hop)) * hop
        return cls(chunk_samples=chunk, stride_samples=stride, geometry=geometry)

    @property
    def step(self) -> int:
        """Samples between consecutive chunk starts."""
        return self.chunk_samples - 2 * self.stride_samples

    def count(self, n_samples: int) -> int:
        """Number of chunks for `n_samples` of audio (0 for empty audio)."""
        if n_samples <= 0:
            return 0
        if n_samples <= self.chunk_samples:
            return 1
        return math.ceil((n_samples - self.chunk_samples) / self.step) + 1


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of audio to run through the model, and which of its output frames to keep."""

    index: int
    start: int  # first sample, counted from the start of the audio
    audio: np.ndarray
    is_last: bool
    keep_from: int  # first kept output frame (local index)
    keep_to: int | None  # end of kept frames (local, exclusive); None: up to the last frame
    first_frame: int  # absolute index of the chunk's local frame 0

    @property
    def kept_start(self) -> int:
        """Absolute index of the first kept frame."""
        return self.first_frame + self.keep_from


def make_chunk(plan: ChunkPlan, index: int, start: int, audio: np.ndarray, last: bool) -> Chunk:
    """Chunk `index` of a span, its `audio` starting at sample `start` (the frames it keeps
    are numbered from sample 0)."""
    hop = plan.geometry.hop
    stride_frames = plan.stride_samples // hop
    return Chunk(
        index=index,
        start=start,
        audio=audio,
        is_last=last,
        keep_from=0 if index == 0 else stride_frames,
        keep_to=None if last else (plan.chunk_samples - plan.stride_samples) // hop,
        first_frame=start // hop,
    )


class SpanEnds(Protocol):
    """Where spans end, found as the audio arrives (engine.transcribe: the pauses of speech)."""

    @property
    def settled(self) -> int:
        """Sample position before which every span end has been reported."""
        ...

    def take_ends(self) -> Sequence[int]:
        """Span ends (sample positions, ascending) found since the last call."""
        ...

    def take_resumes(self) -> Sequence[int]:
        """Where the audio resumes after a span end (sample positions, ascending; the speech
        after a pause), found since the last call; every one before `settled` is reported."""
        ...


def resume_start(end: int, resume: int, margin: int, hop: int) -> int:
    """Where the span after a skipped gap starts: `margin` samples before the audio resumes,
    floored to a hop, never before the previous span's `end` (the file path's chunker and the
    live finals, engine.twopass, cut at the same sample)."""
    return max(end, (resume - margin) // hop * hop)


def iter_chunks(
    blocks: Iterable[np.ndarray],
    plan: ChunkPlan,
    spans: SpanEnds | None = None,
    gap_margin: int | None = None,
) -> Iterator[Chunk]:
    """Cut a stream of 1-D sample blocks into chunks, holding at most one chunk plus one block.

    A chunk is emitted as soon as audio beyond its end has arrived (so it cannot be the last);
    the last chunk is emitted when the stream ends.

    With `spans` (polled after each block is taken), the audio is first cut at the span ends
    it reports, floored to whole hops, and each span is chunked on its own: its first chunk
    keeps its left edge, its last chunk (``is_last``) ends at the span's end and keeps its
    right edge, and the span's frames are the model's frames of that span alone. Frames do
    not run on across a span end (one frame there belongs to neither), so a caller decodes
    each span apart. A chunk is released only once every span end inside it is known.

    With `gap_margin` (samples) as well, the gap after each span end is skipped: the next span
    starts `gap_margin` before the audio resumes (`spans.take_resumes`; floored to a hop, never
    before the end), and when it does not resume, nothing after the last end is chunked. While
    a gap lasts only its last `gap_margin` samples are held.
    """
    hop = plan.geometry.hop
    buf = np.zeros(0, dtype=np.float32)
    buf_start = 0  # absolute index of buf[0]
    span, index = 0, 0  # where the current span starts; its next chunk's index
    ends: list[int] = []  # known ends of the spans after the current one, ascending
    resumes: list[int] = []  # known resumes (gap_margin), ascending
    in_gap = False  # the current span ended at a span end; the next starts at a resume

    def release(known: int | None) -> Iterator[Chunk]:
        """Every chunk that the audio received and the ends known before `known` (None: the
        stream has ended) determine."""
        nonlocal buf, buf_start, span, index, in_gap
        while True:
            if in_gap:
                while resumes and resumes[0] < span:  # the resume of an end passed over
                    resumes.pop(0)
                if resumes:
                    span, in_gap = resume_start(span, resumes.pop(0), gap_margin, hop), False
                elif known is not None:  # no resume before `known`: drop all but the margin
                    span = resume_start(span, known, gap_margin, hop)
                if span > buf_start:
                    buf, buf_start = buf[span - buf_start :], span
                if in_gap:
                    return
            start = span + index * plan.step
            received = buf_start + len(buf)
            gap = False  # the span ends at a span end, before a gap
            if ends and ends[0] <= start + plan.chunk_samples:
                stop, span_ended, gap = ends.pop(0), True, gap_margin is not None
            elif received > start + plan.chunk_samples and (
                known is None or known > start + plan.chunk_samples
            ):
                stop, span_ended = start + plan.chunk_samples, False
            elif known is None and received > start:
                stop, span_ended = received, True
            else:
                return
            lo = start - buf_start
            yield make_chunk(plan, index, start, buf[lo : stop - buf_start].copy(), span_ended)
            span, index = (stop, 0) if span_ended else (span, index + 1)
            in_gap = gap
            start = span + index * plan.step
            buf = buf[start - buf_start :]
            buf_start = start

    def take_ends() -> None:
        # Ends are kept on whole hops, after the current chunk's start (where one may still
        # fall) and ascending.
        last = ends[-1] if ends else span + index * plan.step
        for end in spans.take_ends():
            end = end // hop * hop
            if end > last:
                ends.append(end)
                last = end
        if gap_margin is not None:
            resumes.extend(spans.take_resumes())

    for block in blocks:
        buf = np.concatenate([buf, np.asarray(block, dtype=np.float32).reshape(-1)])
        known = buf_start + len(buf)
        if spans is not None:
            take_ends()
            known = min(known, spans.settled)
        yield from release(known)
    if spans is not None:
        take_ends()
    yield from release(None)


def join_frames(chunk: Chunk, frames: np.ndarray) -> np.ndarray:
    """The kept part of one chunk's model output (frames along axis 0)."""
    return frames[chunk.keep_from : chunk.keep_to]
