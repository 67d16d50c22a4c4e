"""Two-pass live transcription: fast streamed partials, then each segment decoded as a file.

The first pass (`engine.stream.StreamingTranscriber`) shows characters from a bounded
window within a few hundred milliseconds, but with little context they disagree with an
offline decode on about one character in six (demo model). When the stream passes a segment
boundary (a pause, `max_segment_seconds`, the end), the audio since the previous boundary is
decoded again as the file path decodes it (`engine.transcribe.SpanDecoder`: same chunking,
same decoder, beam search with the model's language model when the folder has one). Its
characters come in the segments the file path makes of them (`split_segments` at
`TranscribeOptions.max_segment_seconds`), one `SegmentFinal` each, after the update that
closed the segment: the first replaces its streamed characters, the others follow it, as
FunASR's 2pass mode and sherpa-onnx's two-pass recognizers replace theirs. So a recording's
finals are its file transcript, segment for segment, as long as the stream cuts only at
pauses: its own `max_segment_seconds` (PARTIAL_OPTIONS) is a safety limit far above any
unbroken speech, since a cut there ends a decode where the file path decodes on. (Bit for
bit in fp32 and ONNX Runtime int8; in bf16 a near-tie can fall the other way, see
`engine.transcribe.SpanDecoder`.)

Finals run inside `push`, in the caller's thread. A segment's whole chunks (20 s) run as
they arrive, once no boundary can fall inside them, so its final decodes only the last chunk
or so, however long the segment (a first one after minutes of silence). Audio that arrives
meanwhile waits in the caller's queue and is caught up in one step (`StreamOptions.catch_up`;
README, "Live transcription", has the measured cost). The final is made ahead: once a
silence is `_AHEAD_SECONDS` short of being a pause, the audio up to its boundary is all
there, so its segment is decoded then and the final comes with the update that closes the
segment, without a decode in between. A silence that stops short of a pause costs that
decode for nothing.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from .audio import SAMPLE_RATE, as_samples, joined
from .chunking import resume_start
from .results import Char, Segment
from .stream import SegmentFinal, StreamingTranscriber, StreamOptions, StreamUpdate
from .transcribe import (
    SILENCE_MARGIN_SECONDS,
    SpanDecoder,
    TranscribeOptions,
    Transcriber,
    split_segments,
)
from .vad import PauseOptions

__all__ = ["FINAL_OPTIONS", "PARTIAL_OPTIONS", "TwoPassTranscriber"]

log = logging.getLogger("tingxie.twopass")

# The file path's defaults, less its pause detection: a segment is already one stretch between
# the stream's pauses, which are the pauses the file path cuts at (the same detector over the
# same recording), so the file path decodes it exactly so: alone, chunked from its start. A
# final splits its characters at max_segment_seconds alone (no pause lies inside a segment),
# so silero would only cost time (~0.2 s per 10 s of audio).
FINAL_OPTIONS = TranscribeOptions(cut_at_pauses=False, pauses=PauseOptions(vad="energy"))
# The first pass's defaults: its text lasts only until the segment's final replaces it, so it
# buys speed with context (bench_stream, 2026-12-02, full-size XLSR-53 on 2 cores: partials
# p50/p95 284/553 ms against 343/644 ms with 0.5/0.3 s of context at the same hop; demo model:
# 211/395 ms, 85 % of the offline text against 94 % at the stream's own 1.0/0.6 s, finals
# unchanged). A segment is cut without a pause at 120 s, not the stream's 30 s: such a cut ends
# a final's decode where the file path decodes on, so it only bounds how long unbroken speech
# (or a noise the detector takes for speech) stays streamed text, unpunctuated. Nothing else
# grows with it: a final holds a chunk of audio and the beam search's 30 s of frames at most,
# and decodes the last chunk (demo model with its LM, 110 s of speech with no pause, 2 loaded
# cores, 2026-12-06: memory traced flat at 14 MB from 40 to 100 s, slowest push 1.7 s, a chunk
# run ahead, against 2.7 s at 30 s; its finals are the file transcript's 9 segments, at 30 s
# they were not).
PARTIAL_OPTIONS = StreamOptions(
    hop_seconds=0.2,
    left_context_seconds=0.3,
    right_context_seconds=0.2,
    max_segment_seconds=120.0,
)
# How long before a silence becomes a pause its segment is decoded (module docstring): more
# than a segment's decode takes (demo model with its LM: ~0.1 s for 5 s of speech).
_AHEAD_SECONDS = 0.2


def _shifted(chars: list[Char], offset: int) -> list[Char]:
    """Characters of audio that starts at sample `offset` of the recording, in its time (kept
    to the millisecond, as the decoders give them)."""
    seconds = offset / SAMPLE_RATE
    return [
        replace(c, start=round(c.start + seconds, 3), end=round(c.end + seconds, 3)) for c in chars
    ]


class TwoPassTranscriber:
    """A `StreamingTranscriber` whose segments are replaced by finals (module docstring).

    `push`, `finish` and `reset` as the streamer's; the lists they return also hold
    `SegmentFinal`s. Holds the audio of the segment's decode from its next chunk on (its
    chunks run as they arrive, engine.transcribe.SpanDecoder), and of a long pause only its
    last SILENCE_MARGIN_SECONDS. Not thread-safe: one thread (the engine worker).
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
        self._start = 0  # sample index of the last boundary
        self._after_pause = False  # that boundary is a pause's
        # Where speech resumed after a pause, heard since the last boundary (one found late
        # may lie just before it).
        self._onsets: list[int] = []
        # The segment's decode (engine.transcribe.SpanDecoder), from `_begin` on: open from
        # the boundary, or after a pause from where speech resumed. Till then (inside a
        # pause) the audio waits in `_waiting`, from `_waiting_from` on.
        self._span: SpanDecoder | None = None
        self._begin = 0
        self._waiting: list[np.ndarray] = []
        self._waiting_from = 0
        self._finals = 0
        self._ahead: tuple[int, list[Char]] | None = None  # (segment end, its decode)

    @property
    def audio_seconds(self) -> float:
        return self.stream.audio_seconds

    def push(self, samples: np.ndarray) -> list[StreamUpdate | SegmentFinal]:
        updates = self.stream.push(samples)  # validates the samples first (and warns of NaN)
        x = as_samples(samples)  # the finals read what the stream read: integers scaled
        if self._span is not None:
            self._span.push(x)
        else:
            self._waiting.append(x)
        self._onsets += self.stream.take_onsets()
        if self._span is None and self._span_begin() is not None:
            self._open(joined(self._waiting), self._waiting_from)
        out = self._with_finals(updates)
        if self._span is not None:
            self._span.advance(self.stream.boundaries_settled - self._begin)
        self._decode_ahead()
        self._drop_silence()
        return out

    def _span_begin(self) -> int | None:
        """Where the segment's decode starts: at its boundary; after a pause, as the file path
        (TranscribeOptions.skip_silence), SILENCE_MARGIN_SECONDS before the speech resumed
        (on the frame grid), and None while it has not."""
        if not self._after_pause:
            return self._start
        if not self._onsets:
            return None
        margin = round(SILENCE_MARGIN_SECONDS * SAMPLE_RATE)
        return resume_start(self._start, self._onsets[0], margin, self.transcriber.geometry.hop)

    def _open(self, audio: np.ndarray, first: int) -> None:
        """Hold `audio` (from sample `first` on) for the segment after the last boundary: in
        its decode once it is known where that starts, else waiting. The decode takes
        `final_options` as they are now: a change (the app's domain text) applies from the
        next segment on."""
        begin = self._span_begin()
        if begin is None:
            self._span, self._waiting, self._waiting_from = None, [audio], first
            return
        self._span, self._begin, self._waiting = (
            SpanDecoder(self.transcriber, self.final_options),
            begin,
            [],
        )
        self._span.push(audio[begin - first :])

    def _drop_silence(self) -> None:
        """Inside a pause with no speech heard since, keep only the silence a final can still
        decode (SILENCE_MARGIN_SECONDS before where speech may yet resume): an hour of
        recorded silence is not held."""
        if self._span is not None:
            return
        margin = round(SILENCE_MARGIN_SECONDS * SAMPLE_RATE)
        hop = self.transcriber.geometry.hop
        # before every boundary still to come as well (a final takes the audio after its end)
        keep = resume_start(self._waiting_from, self.stream.boundaries_settled, margin, hop)
        if keep > self._waiting_from:
            self._waiting = [joined(self._waiting)[keep - self._waiting_from :]]
            self._waiting_from = keep

    def finish(self) -> list[StreamUpdate | SegmentFinal]:
        """Decode the rest; the last segment's final comes last."""
        return self._with_finals(self.stream.finish())

    def _with_finals(self, updates: list[StreamUpdate]) -> list[StreamUpdate | SegmentFinal]:
        out: list[StreamUpdate | SegmentFinal] = []
        for update in updates:
            out.append(update)
            if update.segment_end is not None:
                out += self._finals_of(update.segment, update.segment_end, update.at_pause)
        return out

    def _segment_chars(self, end: int) -> list[Char]:
        """The final characters of the audio from the last boundary to `end`: nothing after a
        pause when speech has not resumed before `end`."""
        if self._span is None or (self._after_pause and self._onsets[0] >= end):
            return []
        return _shifted(self._span.chars(end - self._begin), self._begin)

    def _decode_ahead(self) -> None:
        """Decode the segment a silence will end, once it is `_AHEAD_SECONDS` short of a pause."""
        pending = self.stream.pending_pause
        if pending is None or self._span is None:
            return
        boundary, silence = pending
        if silence < self.options.pauses.pause_seconds - _AHEAD_SECONDS:
            return
        end = round(boundary * SAMPLE_RATE)
        if not self._begin + self._span.ran_to < end <= self._begin + self._span.received:
            return
        if self._ahead is None or self._ahead[0] != end:
            self._ahead = (end, self._segment_chars(end))

    def _finals_of(
        self, streamed: Segment | None, end_seconds: float, at_pause: bool
    ) -> list[SegmentFinal]:
        """Decode the segment ending at `end_seconds` (or take the decode made ahead of it),
        move on to the next segment's audio, and give its finals: its characters in the
        segments the file path makes of them (`split_segments` at the final options'
        max_segment_seconds: a segment starts at a pause or the end of another, as a final
        does), the first in the place of the streamed characters, the others after it."""
        end = max(self._start, round(end_seconds * SAMPLE_RATE))
        offset = self._start / SAMPLE_RATE
        ahead, self._ahead = self._ahead, None
        chars = ahead[1] if ahead is not None and ahead[0] == end else self._segment_chars(end)
        # A segment cut at its longest inside a pause (a model can write a character in
        # silence) leaves the pause going on: the next still starts where speech resumes.
        resumed = any(o < end for o in self._onsets)
        self._after_pause = at_pause or (self._after_pause and not resumed)
        self._onsets = [o for o in self._onsets if o >= end]
        span, begin, self._start = self._span, self._begin, end
        if span is None or self._span_begin() != begin:  # else its decode goes on (after end)
            rest = (
                span.tail(end - begin)
                if span is not None
                else joined(self._waiting)[end - self._waiting_from :]
            )
            self._open(rest, end)
        replaces = len(streamed.chars) if streamed is not None else 0
        segments = split_segments(
            chars, max_segment_seconds=self.final_options.max_segment_seconds, first_id=self._finals
        )
        self._finals += len(segments)  # numbered as the file path numbers its segments
        if not segments and replaces:  # its streamed text goes (the next final has its id)
            segments = [Segment(self._finals, offset, end_seconds, ())]
        log.debug("final: %d streamed -> %d characters in %d", replaces, len(chars), len(segments))
        return [
            SegmentFinal(s, replaces if i == 0 else 0, self.audio_seconds)
            for i, s in enumerate(segments)
        ]
