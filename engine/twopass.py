"""Two-pass live transcription: fast streamed partials, then each segment decoded as a file.

The first pass (`engine.stream.StreamingTranscriber`) shows characters from a bounded
window within a few hundred milliseconds, but with little context they disagree with an
offline decode on about one character in six (demo model). When the stream passes a segment
boundary (a pause, `max_segment_seconds`, the end), the audio since the previous boundary is
decoded again by `Transcriber.transcribe`, the file path itself: same chunking, same decoder
(beam search with the model's language model when the folder has one). A `SegmentFinal`
follows the update that closed the segment and replaces its streamed characters, as
FunASR's 2pass mode and sherpa-onnx's two-pass recognizers do.

Finals run inside `push`, in the caller's thread: one more model call per segment, over at
most `max_segment_seconds` of audio (README, "Live transcription", has the measured cost).
Audio that arrives meanwhile waits in the caller's queue and is caught up in one step
(`StreamOptions.catch_up`). The call is made ahead: once a silence is `_AHEAD_SECONDS` short of
being a pause, the audio up to its boundary is all there, so its segment is decoded then and
the final comes with the update that closes the segment, without a decode in between. A
silence that stops short of a pause costs that decode for nothing.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from .audio import SAMPLE_RATE
from .chunking import resume_start
from .results import Char, Segment
from .stream import SegmentFinal, StreamingTranscriber, StreamOptions, StreamUpdate
from .transcribe import SILENCE_MARGIN_SECONDS, TranscribeOptions, Transcriber
from .vad import PauseOptions

__all__ = ["FINAL_OPTIONS", "PARTIAL_OPTIONS", "TwoPassTranscriber", "final_chars"]

log = logging.getLogger("tingxie.twopass")

# The file path's defaults, less its pause detection: a segment is already one stretch between
# the stream's pauses, which are the pauses the file path cuts at (the same detector over the
# same recording), so the file path decodes it exactly so: alone, chunked from its start. Its
# final keeps every character and ignores how the decode splits them, so silero would only
# cost time (~0.2 s per 10 s of audio): energy decides that split.
FINAL_OPTIONS = TranscribeOptions(cut_at_pauses=False, pauses=PauseOptions(vad="energy"))
# The first pass's defaults: its text lasts only until the segment's final replaces it, so it
# buys speed with context (bench_stream, 2026-12-02, full-size XLSR-53 on 2 cores: partials
# p50/p95 284/553 ms against 343/644 ms with 0.5/0.3 s of context at the same hop; demo model:
# 211/395 ms, 85 % of the offline text against 94 % at the stream's own 1.0/0.6 s, finals
# unchanged).
PARTIAL_OPTIONS = StreamOptions(
    hop_seconds=0.2, left_context_seconds=0.3, right_context_seconds=0.2
)
# How long before a silence becomes a pause its segment is decoded (module docstring): more
# than a segment's decode takes (demo model with its LM: ~0.1 s for 5 s of speech).
_AHEAD_SECONDS = 0.2


def final_chars(
    transcriber: Transcriber,
    audio: np.ndarray,
    offset_seconds: float,
    options: TranscribeOptions = FINAL_OPTIONS,
) -> list[Char]:
    """Every character of `audio` decoded as a file would be (`Transcriber.transcribe`),
    its times moved by `offset_seconds` (where the audio starts in the recording) and kept to
    the millisecond, as the decoders give them."""
    items, _ = transcriber.transcribe(audio, options)
    return [
        replace(c, start=round(c.start + offset_seconds, 3), end=round(c.end + offset_seconds, 3))
        for item in items
        if isinstance(item, Segment)
        for c in item.chars
    ]


class TwoPassTranscriber:
    """A `StreamingTranscriber` whose segments are replaced by finals (module docstring).

    `push`, `finish` and `reset` as the streamer's; the lists they return also hold
    `SegmentFinal`s. Keeps the audio since the last segment boundary (at most about
    `max_segment_seconds`), and of a long pause only its last SILENCE_MARGIN_SECONDS. Not
    thread-safe: one thread (the engine worker).
    """

    # Its segments are provisional: a caller punctuating or storing text waits for finals.
    gives_finals = True

    def __init__(
        self,
        transcriber: Transcriber,
        options: StreamOptions | None = None,
        final_options: TranscribeOptions = FINAL_OPTIONS,
    ) -> None:
        self.transcriber = transcriber
        self.stream = StreamingTranscriber(transcriber, options or PARTIAL_OPTIONS, onsets=True)
        self.options = self.stream.options
        self.final_options = final_options
        self.reset()

    def reset(self) -> None:
        """Forget everything; the next push starts a new stream at time 0."""
        self.stream.reset()
        self._audio: list[np.ndarray] = []  # samples from _held_from on
        self._start = 0  # sample index of the last boundary
        self._held_from = 0  # _start, or later inside a pause (_drop_silence)
        self._after_pause = False  # that boundary is a pause's
        # Where speech resumed after a pause, heard since the last boundary (one found late
        # may lie just before it).
        self._onsets: list[int] = []
        self._finals = 0
        self._ahead: tuple[int, list[Char]] | None = None  # (segment end, its decode)

    @property
    def audio_seconds(self) -> float:
        return self.stream.audio_seconds

    def push(self, samples: np.ndarray) -> list[StreamUpdate | SegmentFinal]:
        updates = self.stream.push(samples)  # validates the samples first
        self._audio.append(np.asarray(samples, dtype=np.float32))
        self._onsets += self.stream.take_onsets()
        out = self._with_finals(updates)
        self._decode_ahead()
        self._drop_silence()
        return out

    def _drop_silence(self) -> None:
        """Inside a pause with no speech heard since, keep only the silence a final can still
        decode (SILENCE_MARGIN_SECONDS before where speech may yet resume): an hour of
        recorded silence is not held."""
        if not self._after_pause or self._onsets:
            return
        margin = round(SILENCE_MARGIN_SECONDS * SAMPLE_RATE)
        hop = self.transcriber.geometry.hop
        keep = resume_start(self._held_from, self.stream.speech_settled, margin, hop)
        if keep > self._held_from:
            self._audio = [self._held()[keep - self._held_from :]]
            self._held_from = keep

    def finish(self) -> list[StreamUpdate | SegmentFinal]:
        """Decode the rest; the last segment's final comes last."""
        return self._with_finals(self.stream.finish())

    def _with_finals(self, updates: list[StreamUpdate]) -> list[StreamUpdate | SegmentFinal]:
        out: list[StreamUpdate | SegmentFinal] = []
        for update in updates:
            out.append(update)
            if update.segment_end is not None:
                final = self._final(update.segment, update.segment_end, update.at_pause)
                if final is not None:
                    out.append(final)
        return out

    def _held(self) -> np.ndarray:
        """The audio since the last boundary, as one array."""
        self._audio = [np.concatenate(self._audio) if self._audio else np.zeros(0, np.float32)]
        return self._audio[0]

    def _segment_chars(self, end: int) -> list[Char]:
        """The final characters of the audio from the last boundary to `end`. After a pause,
        as the file path (TranscribeOptions.skip_silence): from SILENCE_MARGIN_SECONDS before
        the speech resumed (on the frame grid), and nothing when it has not resumed."""
        begin = self._start
        if self._after_pause:
            onsets = [o for o in self._onsets if o < end]
            if not onsets:
                return []
            margin = round(SILENCE_MARGIN_SECONDS * SAMPLE_RATE)
            begin = resume_start(begin, onsets[0], margin, self.transcriber.geometry.hop)
        audio = self._held()[begin - self._held_from : end - self._held_from]
        return final_chars(self.transcriber, audio, begin / SAMPLE_RATE, self.final_options)

    def _decode_ahead(self) -> None:
        """Decode the segment a silence will end, once it is `_AHEAD_SECONDS` short of a pause."""
        pending = self.stream.pending_pause
        if pending is None:
            return
        boundary, silence = pending
        if silence < self.options.pauses.pause_seconds - _AHEAD_SECONDS:
            return
        end = round(boundary * SAMPLE_RATE)
        held = self._held()
        if end <= self._start or end > self._held_from + len(held):
            return
        if self._ahead is None or self._ahead[0] != end:
            self._ahead = (end, self._segment_chars(end))

    def _final(
        self, streamed: Segment | None, end_seconds: float, at_pause: bool
    ) -> SegmentFinal | None:
        """Decode the segment ending at `end_seconds` (or take the decode made ahead of it)
        and drop its audio."""
        end = max(self._start, round(end_seconds * SAMPLE_RATE))
        offset = self._start / SAMPLE_RATE
        ahead, self._ahead = self._ahead, None
        chars = ahead[1] if ahead is not None and ahead[0] == end else self._segment_chars(end)
        self._audio = [self._held()[max(0, end - self._held_from) :]]
        # A segment cut at its longest inside a pause (a model can write a character in
        # silence) leaves the pause going on: the next still starts where speech resumes.
        resumed = any(o < end for o in self._onsets)
        self._after_pause = at_pause or (self._after_pause and not resumed)
        self._start, self._held_from = end, max(end, self._held_from)
        self._onsets = [o for o in self._onsets if o >= end]
        replaces = len(streamed.chars) if streamed is not None else 0
        if not chars and not replaces:
            return None
        start, stop = (chars[0].start, chars[-1].end) if chars else (offset, end_seconds)
        segment = Segment(self._finals, start, stop, tuple(chars))
        self._finals += 1
        log.debug("final %d: %d streamed -> %d characters", segment.id, replaces, len(chars))
        return SegmentFinal(segment, replaces, self.audio_seconds)
