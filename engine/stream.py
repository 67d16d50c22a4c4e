"""Streaming transcription: audio blocks in, partial and committed characters out.

wav2vec2 attends to the whole input, so a streaming decode re-runs the model over a sliding
window. The window is bounded so compute per second of audio stays constant however long the
recording runs:

    |<- left context ->|<-------- uncommitted -------->|
    [ already committed | frames to commit | right ctx ]  <- newest audio
                        ^ commit point     ^ end - right_context_seconds

Every `hop_seconds` of audio the window [commit point - left context, newest sample] is decoded.
Frames that have seen at least `right_context_seconds` of audio after them are committed and
never change; the rest is the unstable tail, replaced by every update. The log-probabilities of
the last committed frame are carried into the next decode so a character whose frames straddle
the commit point is neither doubled nor lost: the concatenation of committed text equals a
greedy decode of the stitched frames.

Pauses found in the audio by a voice-activity detector (`engine.vad`, the same rule as for
files) end segments. Each update that passes a segment boundary says where it lies in the
audio (`StreamUpdate.segment_end`), so a second pass (`engine.twopass`) can decode the
segment's audio again with full context and replace its characters (`SegmentFinal`). Inside
a pause, once its boundary is committed, the hops commit the silence without running the model
until the detector hears speech again, as files skip it (`TranscribeOptions.skip_silence`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .audio import SAMPLE_RATE, SampleGuard
from .chunking import FrameGeometry
from .results import Char, Segment
from .vad import PauseDetector, PauseOptions

__all__ = [
    "CachedFrontEnd",
    "SegmentFinal",
    "StreamOptions",
    "StreamUpdate",
    "StreamingTranscriber",
]

log = logging.getLogger("tingxie.stream")


class FrameModel(Protocol):
    """What streaming needs from `engine.transcribe.Transcriber`."""

    frame_seconds: float
    geometry: FrameGeometry  # samples per frame and receptive field
    silent: np.ndarray  # bool per output id: True where it never becomes a character

    def log_probs(self, batch: list[np.ndarray]) -> list[np.ndarray]: ...

    def chars(self, log_probs: np.ndarray, offset_seconds: float = 0.0) -> list[Char]: ...


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """How often to decode, how much context to use and when a pause ends a segment."""

    # Decode after this much new audio; an update comes at least this often (seconds).
    hop_seconds: float = 0.3
    # Audio before the commit point the model sees again (seconds): accuracy vs compute.
    left_context_seconds: float = 1.0
    # Audio a frame must have after it before it is committed (seconds): stability vs delay.
    right_context_seconds: float = 0.6
    # When one push brings several hops (the caller fell behind real time), decode them in one
    # step instead of one per hop, so a slow machine catches up instead of lagging further.
    # Pushes of at most one hop give one update per hop either way.
    catch_up: bool = True
    # Compute each frame's convolutional features once instead of once per window (wav2vec2
    # checkpoints with a layer-norm feature encoder; others ignore it). Audio is then scaled by
    # the stream's running level instead of each window's (the offline path's per-chunk
    # normalization), which changes the log-probabilities slightly.
    reuse_features: bool = True
    # What counts as a pause, which ends the current segment (engine.vad).
    pauses: PauseOptions = field(default_factory=PauseOptions)
    # A segment is closed when it grows this long without a pause (seconds). Under the two
    # passes (engine.twopass) this also ends a final's decode, where the file path decodes on:
    # its PARTIAL_OPTIONS make it a safety limit far above any unbroken speech.
    max_segment_seconds: float = 30.0

    def __post_init__(self) -> None:
        for name in ("hop_seconds", "max_segment_seconds"):
            if not 0 < getattr(self, name) < math.inf:
                raise ValueError(
                    f"StreamOptions.{name}={getattr(self, name)!r}: must be a number > 0"
                )
        for name in ("left_context_seconds", "right_context_seconds"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ValueError(
                    f"StreamOptions.{name}={getattr(self, name)!r}: must be a number >= 0"
                )


@dataclass(frozen=True, slots=True)
class StreamUpdate:
    """What changed after some audio: newly committed characters (final), the current tail
    (replaces the previous tail), a segment closed by a pause, and audio received so far.

    `segment_end` (seconds) is set when the update passes a segment boundary: the pause
    boundary, the commit point of a segment cut at `max_segment_seconds`, or the end of the
    stream. The segment's audio runs from the previous boundary (or 0) to it. It is set even
    when the stream committed nothing there (`segment` None): the audio may still hold speech.
    `at_pause`: the boundary is a pause's.
    """

    committed: tuple[Char, ...]
    tail: tuple[Char, ...]
    segment: Segment | None = None
    audio_seconds: float = 0.0
    segment_end: float | None = None
    at_pause: bool = False


@dataclass(frozen=True, slots=True)
class SegmentFinal:
    """A finished segment decoded again as a file would be (the second pass, engine.twopass).

    `segment` holds the final characters, timed on the recording, with confidences from that
    decode; they replace the `replaces` characters the stream committed for the same audio
    (the streamed segment's characters; 0 when the stream wrote none there). A streamed
    segment's audio may give several finals, its characters split as the file path splits
    them (engine.transcribe.split_segments): the first replaces the streamed characters, the
    others replace none. Finals come in the order of their audio, so the k-th final replaces
    what follows the (k-1)-th. `segment.id` numbers the finals with characters from 0, as the
    file path numbers its segments; one without (its streamed text was written into silence)
    has the id of the next.
    """

    segment: Segment
    replaces: int
    audio_seconds: float = 0.0  # audio received when the final was made


class CachedFrontEnd:
    """Log-probabilities for stream windows that reuse each frame's convolutional features.

    The feature encoder of wav2vec2 has no padding, so frame f's features depend only on
    samples [f * hop, f * hop + receptive_field): they are computed once, as the audio arrives,
    and kept for the frames the window can still reach. Only the transformer re-runs per
    window. `scale` fixes the audio normalization (None: the stream's running RMS level).
    """

    def __init__(self, transcriber: FrameModel, scale: float | None = None) -> None:
        import torch

        self._torch = torch
        loaded = transcriber.model
        self._net = loaded.model
        self._device, self._dtype = loaded.device, loaded.dtype
        self._hop = transcriber.geometry.hop
        self._field = transcriber.geometry.receptive_field
        self._fixed_scale = scale
        self.reset()

    @staticmethod
    def supports(transcriber: FrameModel) -> bool:
        net = getattr(getattr(transcriber, "model", None), "model", None)
        config = getattr(net, "config", None)
        return (
            hasattr(net, "wav2vec2")  # the torch modules it calls, not an ONNX Runtime session
            and getattr(config, "model_type", None) == "wav2vec2"
            and getattr(config, "feat_extract_norm", None) == "layer"
            and not getattr(config, "add_adapter", False)
        )

    def reset(self) -> None:
        self._hidden = None  # (frames, hidden) projected features of frames [_first, _end)
        self._first = self._end = 0
        self._sum_sq = 0.0
        self._count = 0

    def log_probs(self, window: np.ndarray, first: int) -> np.ndarray:
        """(frames, vocab) log-probs of `window`, whose sample 0 is frame `first`'s start."""
        torch = self._torch
        n = 0 if len(window) < self._field else (len(window) - self._field) // self._hop + 1
        if n == 0:
            return np.zeros((0, 0), np.float32)
        stop = first + n
        with torch.inference_mode():
            if stop > self._end:
                self._extend(window, first, stop)
            keep = self._hidden[first - self._first :]
            self._hidden, self._first = keep, first
            hidden = self._net.wav2vec2.encoder(keep[None, : stop - first]).last_hidden_state
            logits = self._net.lm_head(hidden)[0]
            return torch.log_softmax(logits.float(), dim=-1).cpu().numpy()

    def _extend(self, window: np.ndarray, first: int, stop: int) -> None:
        torch = self._torch
        start = max(self._end, first)
        new = window[(start - first) * self._hop : (stop - 1 - first) * self._hop + self._field]
        self._sum_sq += float(np.square(new, dtype=np.float64).sum())  # (overlap: negligible)
        self._count += len(new)
        scale = self._fixed_scale or np.sqrt(self._sum_sq / max(self._count, 1) + 1e-7)
        x = torch.from_numpy(np.ascontiguousarray(new / scale, dtype=np.float32))
        x = x[None].to(self._device, self._dtype)
        features = self._net.wav2vec2.feature_extractor(x).transpose(1, 2)
        hidden, _ = self._net.wav2vec2.feature_projection(features)
        if self._hidden is None or start > self._end:
            self._hidden, self._first = hidden[0], start
        else:
            self._hidden = torch.cat([self._hidden, hidden[0]])
        self._end = stop


@dataclass(slots=True)
class _SegmentBuilder:
    """Collects committed characters and closes segments at pauses or a maximum length."""

    max_seconds: float
    next_id: int = 0
    chars: list[Char] = field(default_factory=list)

    def close(self, before: float | None = None) -> Segment | None:
        """Close a segment from the characters starting before `before` (all if None)."""
        n = len(self.chars) if before is None else sum(c.start < before for c in self.chars)
        if n == 0:
            return None
        chars, self.chars = tuple(self.chars[:n]), self.chars[n:]
        segment = Segment(self.next_id, chars[0].start, chars[-1].end, chars)
        self.next_id += 1
        return segment

    def too_long(self) -> bool:
        return bool(self.chars) and self.chars[-1].end - self.chars[0].start >= self.max_seconds


class StreamingTranscriber:
    """Incremental transcription of one live stream (see the module docstring).

    Not thread-safe: call `push`, `finish` and `reset` from one thread (the engine worker).
    """

    def __init__(
        self, transcriber: FrameModel, options: StreamOptions | None = None, onsets: bool = False
    ) -> None:
        """`onsets`: note where speech resumes after each pause (`take_onsets`)."""
        self.transcriber = transcriber
        self.options = options or StreamOptions()
        geometry = transcriber.geometry
        self._hop = geometry.hop  # samples per output frame
        self._field = geometry.receptive_field  # samples one frame sees
        o = self.options
        self._step = max(1, round(o.hop_seconds * SAMPLE_RATE / self._hop)) * self._hop
        self._left_frames = round(o.left_context_seconds * SAMPLE_RATE / self._hop)
        self._right = round(o.right_context_seconds * SAMPLE_RATE)
        # A character still running at the commit point is held back for the next decode,
        # unless it already spans this many frames (so the window stays bounded).
        self._hold_frames = max(1, round(1.0 * SAMPLE_RATE / self._hop))
        self._pauses = PauseDetector(o.pauses, onsets=onsets)
        self._guard = SampleGuard("samples", SAMPLE_RATE)
        self._front = (
            CachedFrontEnd(transcriber)
            if o.reuse_features and CachedFrontEnd.supports(transcriber)
            else None
        )
        self.reset()

    def reset(self) -> None:
        """Forget everything; the next push starts a new stream at time 0."""
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # absolute sample index of _buf[0]
        self._received = 0
        self._decoded_to = 0  # end sample of the last decode
        self._committed = 0  # absolute frame index: frames before it are final
        self._carry: np.ndarray | None = None  # log-probs of frame _committed - 1
        self._pending_pauses: list[int] = []
        self._last_pause = 0  # sample of the last pause boundary decoded
        self._segments = _SegmentBuilder(self.options.max_segment_seconds)
        self._pauses.reset()
        self._guard.reset()
        if self._front is not None:
            self._front.reset()
        self._finished = False
        self.samples_decoded = 0  # audio the model has run over, for cost accounting

    @property
    def audio_seconds(self) -> float:
        return self._received / SAMPLE_RATE

    @property
    def pending_pause(self) -> tuple[float, float] | None:
        """(boundary, silence so far), in seconds, of a silence after speech that will end the
        segment at that boundary if it lasts the pause length; None while there is none."""
        pending = self._pauses.pending
        return None if pending is None else (pending[0] / SAMPLE_RATE, pending[1] / SAMPLE_RATE)

    @property
    def boundaries_settled(self) -> int:
        """Sample before which no segment boundary can come any more, nor an onset: the pause
        detector has found every boundary and onset before its settled point, and a segment
        cut at its longest or closed inside a pause ends at the commit point, which only
        moves on."""
        return min(self._pauses.settled, self._committed * self._hop)

    def take_onsets(self) -> list[int]:
        """Where speech resumed after a pause (sample positions) in the audio pushed since the
        last call (engine.vad.PauseDetector.take_onsets; needs `onsets`)."""
        return self._pauses.take_onsets()

    def push(self, samples: np.ndarray) -> list[StreamUpdate]:
        """Add 16 kHz mono samples; returns the updates they made due: one per
        `hop_seconds` of audio (with `catch_up`, one for a push that brings several hops),
        and one as soon as a pause is heard; none while less than a hop is pending.

        Float samples are read as they are; integers (a microphone's int16) are scaled to
        [-1, 1) as soundfile scales them, and NaN or infinite samples are read as silence with
        one warning per stream (engine.audio.SampleGuard): one would otherwise stop the text
        for the rest of the stream."""
        if self._finished:
            raise RuntimeError("StreamingTranscriber.push after finish(): call reset() first")
        if np.ndim(samples) != 1:
            raise ValueError(f"samples have shape {np.shape(samples)}; push mono 1-D 16 kHz audio")
        x = self._guard(samples)
        self._buf = np.concatenate([self._buf, x])
        self._received += len(x)
        self._pending_pauses += self._pauses.push(x)
        updates: list[StreamUpdate] = []
        while self._received - self._decoded_to >= self._step:
            end = self._decoded_to + self._step
            if self.options.catch_up:
                end = self._received - (self._received - self._decoded_to) % self._step
            updates += self._decode(end, final=False)
        if any(p < self._received for p in self._pending_pauses):
            # A pause heard: end its segment now, not at the next hop (the second pass,
            # engine.twopass, starts on it; up to a hop sooner).
            updates += self._decode(self._received, final=False)
        return updates

    def finish(self) -> list[StreamUpdate]:
        """Decode the rest and commit everything; closes the last segment."""
        if self._finished:
            return []
        self._finished = True
        updates = self._decode(self._received, final=True)
        last = self._segments.close()
        updates.append(StreamUpdate((), (), last, self.audio_seconds, self.audio_seconds))
        return updates

    def _decode(self, end: int, *, final: bool) -> list[StreamUpdate]:
        """One model run over [commit point - left context, end); commit what is settled.
        Inside a pause, once everything up to its boundary is committed and the detector has
        heard no speech since, the model is not run: the silence is committed empty (the file
        path skips it too)."""
        pauses = [p for p in self._pending_pauses if p < end]
        if pauses:
            self._last_pause = pauses[-1]
        elif (
            not final and self._pauses.in_pause and self._committed * self._hop >= self._last_pause
        ):
            return self._skip(end)
        first = max(0, self._committed - self._left_frames)  # absolute frame of lp[0]
        window = self._buf[first * self._hop - self._buf_start : end - self._buf_start]
        self._decoded_to = end
        n = self._geometry_frames(len(window))
        if n == 0:
            lp = np.zeros((0, 0), np.float32)
        elif self._front is not None:
            lp = self._front.log_probs(window, first)[:n]
        else:
            lp = self.transcriber.log_probs([window])[0][:n]
        self.samples_decoded += len(window)
        self._pending_pauses = self._pending_pauses[len(pauses) :]
        stop = first + len(lp)
        if final:
            cut = stop
        else:
            settled = (end - self._right - self._field) // self._hop + 1
            cut = min(max([settled, *(p // self._hop for p in pauses)]), stop)
            cut = self._hold_running(lp, first, max(cut, self._committed))
        committed = self._chars(lp[self._committed - first : cut - first], self._committed)
        if cut > self._committed:
            self._carry = lp[cut - 1 - first]
            self._committed = cut
        tail = () if final else tuple(self._chars(lp[cut - first :], cut))
        keep = max(0, self._committed - self._left_frames) * self._hop
        self._buf, self._buf_start = self._buf[keep - self._buf_start :], keep
        return self._updates(committed, tail, pauses, end / SAMPLE_RATE)

    def _skip(self, end: int) -> list[StreamUpdate]:
        """Commit the silence up to what `end` settles, without the model. Characters the
        model wrote between the pause's boundary and now (a model can write one into
        silence) are closed as a segment of their own here, so that they do not make the
        speech after the pause a segment too long, cut where it runs."""
        self._decoded_to = end
        settled = (end - self._right - self._field) // self._hop + 1
        if settled > self._committed:
            self._committed, self._carry = settled, None
        keep = max(0, self._committed - self._left_frames) * self._hop
        self._buf, self._buf_start = self._buf[keep - self._buf_start :], keep
        updates = self._updates([], (), [], end / SAMPLE_RATE)
        stray = self._segments.close()
        if stray is not None:
            at = self._committed * self._hop / SAMPLE_RATE
            updates.append(StreamUpdate((), (), stray, end / SAMPLE_RATE, at, False))
        return updates

    def _hold_running(self, lp: np.ndarray, first: int, cut: int) -> int:
        """Move the commit point back to the start of a character still running across it,
        so its frames are decoded together next time."""
        if cut <= self._committed or cut >= first + len(lp):
            return cut
        best = lp.argmax(axis=1)
        i = cut - first
        if best[i - 1] != best[i] or self.transcriber.silent[best[i]]:
            return cut
        start = i - 1
        while start > self._committed - first and best[start - 1] == best[i]:
            start -= 1
        held = first + start
        return held if cut - held < self._hold_frames else cut

    def _chars(self, rows: np.ndarray, frame: int) -> list[Char]:
        """Decode frames starting at absolute `frame`, continuing the committed stream: the
        carried last committed frame goes first so a character it began is not repeated."""
        if len(rows) == 0:
            return []
        fs = self.transcriber.frame_seconds
        if self._carry is None or frame == 0:
            return self.transcriber.chars(rows, frame * fs)
        chars = self.transcriber.chars(np.vstack([self._carry, rows]), (frame - 1) * fs)
        return [c for c in chars if c.start >= (frame - 0.5) * fs]

    def _updates(
        self, committed: list[Char], tail: tuple[Char, ...], pauses: list[int], seconds: float
    ) -> list[StreamUpdate]:
        self._segments.chars += committed
        ends = [p / SAMPLE_RATE for p in pauses]
        closed = [(self._segments.close(before=end), end, True) for end in ends]
        if self._segments.too_long():
            at = self._committed * self._hop / SAMPLE_RATE
            closed.append((self._segments.close(), at, False))
        (segment, end, at_pause), *rest = closed or [(None, None, False)]
        first = StreamUpdate(tuple(committed), tail, segment, seconds, end, at_pause)
        return [first] + [StreamUpdate((), tail, s, seconds, e, p) for s, e, p in rest]

    def _geometry_frames(self, n_samples: int) -> int:
        if n_samples < self._field:
            return 0
        return (n_samples - self._field) // self._hop + 1
