"""Live transcription for Whisper: the LocalAgreement policy over a growing buffer.

Whisper has no streaming pass: it decodes a whole buffer at once, and the end of its output
changes as audio arrives. So, as whisper_streaming does (Macháček et al. 2023,
LocalAgreement-2): every hop the buffer is decoded again, and the characters on which two
consecutive decodes agree (their longest common prefix past what is committed) are committed
and never change; the rest is the unstable tail. A Latin word that ends a decode stays in the
tail until the next word is decoded: only then is it known whether a space follows it ("Deep
Learning", the space being its last character's `after`). A pause in the audio (engine.vad,
the same rule as for files and the CTC stream) ends the segment: the buffer up to the pause is
decoded once more and all of it committed, and the next buffer starts there, with the
committed text as the prompt it continues. A buffer that grows to `_MAX_BUFFER_SECONDS`
without a pause is cut after its last committed character (or, when nothing agreed, its last
decoded one but a Latin word at its end; when a decode writes nothing at all, as over music or
a fan the detector hears as speech, all but its last moment is dropped).
While nothing but silence has come since the last cut (or the start), it is not decoded: the
buffer keeps only its last second, so a microphone left on in a quiet room costs neither a
decode per hop over a growing buffer nor the memory of the silence.

The policy (`uncommitted`, `agreed`) is pure; `WhisperStreamer` feeds it and keeps the same
`push` / `finish` / `reset` protocol as `engine.stream.StreamingTranscriber`, which the app's
worker drives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .audio import SAMPLE_RATE, SampleGuard
from .punctuation import latin_word_start
from .results import Char
from .stream import StreamOptions, StreamUpdate, _SegmentBuilder
from .transcribe import TranscribeOptions
from .vad import PauseDetector
from .whisper import SPEECH_PAD_SECONDS

__all__ = ["WhisperStreamer", "agreed", "uncommitted"]

# Whisper decodes are costly (a second or more of CPU for a few seconds of audio): never more
# often than this, whatever StreamOptions.hop_seconds asks.
_MIN_HOP_SECONDS = 1.0
# A growing buffer shorter than this is not decoded (Whisper hallucinates on fragments); a
# finished segment is, however short ("好。" at the start of a recording).
_MIN_DECODE_SECONDS = 1.0
# Whisper sees 30 s at a time; cut before that.
_MAX_BUFFER_SECONDS = 20.0
# A character of a new decode that starts this much before the committed end may still be
# new (word times are approximate), as in whisper_streaming.
_TIME_TOLERANCE = 0.1
# How many committed characters a decode may repeat at its start (whisper_streaming: 5 words).
_MAX_REPEAT = 5
# Committed text carried into the next buffer's prompt (characters).
_PROMPT_CHARS = 100


class Decoder(Protocol):
    """What the streamer needs from `engine.whisper.WhisperTranscriber`."""

    def decode(
        self,
        samples: np.ndarray,
        options: TranscribeOptions | None = None,
        *,
        offset: float = 0.0,
        prompt: str | None = None,
    ) -> list[Char]: ...


def uncommitted(chars: Sequence[Char], committed: str, after: float) -> list[Char]:
    """The characters of a decode past what is committed: those starting no earlier than
    `after` (the end of the last committed character, less a tolerance), less a leading run
    that repeats the end of the `committed` text where it starts before `after`: a character
    near the commit point can be heard twice (Whisper-base on the shared clips: every such
    repeat started 0-0.1 s before `after`), but one that starts where the committed text ends
    is the second of a pair (天天, 谢谢), not a repeat.

    >>> c = lambda t, s: Char(t, s, s + 0.2, 1.0)
    >>> [x.text for x in uncommitted([c("你", 0.0), c("好", 0.3), c("吗", 0.6)], "你好", 0.4)]
    ['吗']
    >>> [x.text for x in uncommitted([c("好", 0.35), c("吗", 0.6)], "你好", 0.5)]
    ['吗']
    >>> [x.text for x in uncommitted([c("天", 0.5), c("气", 0.7)], "今天", 0.5)]
    ['天', '气']
    """
    fresh = [c for c in chars if c.start >= after - _TIME_TOLERANCE]
    if not fresh or fresh[0].start >= after:
        return fresh
    text = "".join(c.text for c in fresh)
    for n in range(min(_MAX_REPEAT, len(committed), len(fresh)), 0, -1):
        if text[:n] == committed[-n:]:
            return fresh[n:]
    return fresh


def agreed(previous: Sequence[Char], current: Sequence[Char]) -> int:
    """How many leading characters two consecutive decodes share, with what follows each (a
    mark, a space): LocalAgreement-2 commits them, and a committed character never changes, so
    its mark is committed with it once two decodes agree on it (好 then 好。 is no agreement:
    the decode that ended at 好 had not heard whether a mark follows).

    >>> c = lambda t, after="": Char(t, 0.0, 0.1, 1.0, after=after)
    >>> agreed([c("今"), c("天"), c("天")], [c("今"), c("天"), c("气"), c("好")])
    2
    >>> agreed([c("你"), c("好")], [c("你"), c("好", "，"), c("吗")])
    1
    """
    n = 0
    for p, c in zip(previous, current, strict=False):
        if (p.text, p.after) != (c.text, c.after):
            break
        n += 1
    return n


class WhisperStreamer:
    """Incremental transcription of one live stream with a Whisper model (module docstring).

    Not thread-safe: call `push`, `finish` and `reset` from one thread (the engine worker).
    """

    def __init__(
        self,
        transcriber: Decoder,
        options: StreamOptions | None = None,
        decoding: TranscribeOptions | None = None,
    ) -> None:
        self.transcriber = transcriber
        self.options = options or StreamOptions()
        self.decoding = decoding or TranscribeOptions()
        self._hop = round(max(self.options.hop_seconds, _MIN_HOP_SECONDS) * SAMPLE_RATE)
        self._pauses = PauseDetector(self.options.pauses)
        self.reset()

    def reset(self) -> None:
        """Forget everything; the next push starts a new stream at time 0."""
        self._guard = SampleGuard("samples", SAMPLE_RATE)
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # absolute sample of _buf[0]
        self._received = 0
        self._decoded_to = 0
        self._committed_text = ""  # what is committed, as characters (repeats are matched on)
        self._written = ""  # and as written, with what follows each (a space, a mark): the prompt
        self._committed_end = 0.0  # seconds: end of the last committed character
        self._previous: list[Char] = []  # the last decode's uncommitted characters
        self._pending_pauses: list[int] = []
        self._segments = _SegmentBuilder(self.options.max_segment_seconds)
        self._pauses.reset()
        self._finished = False

    @property
    def audio_seconds(self) -> float:
        return self._received / SAMPLE_RATE

    def push(self, samples: np.ndarray) -> list[StreamUpdate]:
        """Add 16 kHz mono float32 samples; returns the updates they made due: one per pause
        reached and one per hop (at least `_MIN_HOP_SECONDS`) of new audio."""
        if self._finished:
            raise RuntimeError("WhisperStreamer.push after finish(): call reset() first")
        if np.ndim(samples) != 1:
            shape = np.shape(samples)
            raise ValueError(f"samples have shape {shape}; push mono 1-D 16 kHz audio")
        x = self._guard(samples)  # integers scaled to [-1, 1), NaN and inf as 0 (warned once)
        self._buf = np.concatenate([self._buf, x])
        self._received += len(x)
        self._pending_pauses += self._pauses.push(x)
        updates: list[StreamUpdate] = []
        while self._pending_pauses:
            updates.append(self._cut(self._pending_pauses.pop(0)))
        if self._received - self._decoded_to >= self._hop:
            quiet = self._pauses.quiet and not self._previous
            updates.append(self._drop_silence() if quiet else self._agree())
        return updates

    def finish(self) -> list[StreamUpdate]:
        """Decode the rest and commit everything; closes the last segment."""
        if self._finished:
            return []
        self._finished = True
        return [self._cut(self._received)]

    def _decode(self, stop: int, *, whole: bool = False) -> list[Char]:
        """Characters of the buffer up to absolute sample `stop` not yet committed. `whole`:
        the buffer is a finished segment (a pause or the end cut it), decoded however short,
        not a fragment still growing."""
        samples = self._buf[: stop - self._buf_start]
        self._decoded_to = max(self._decoded_to, stop)
        if len(samples) < _MIN_DECODE_SECONDS * SAMPLE_RATE and not whole:
            return []
        prompt = self.decoding.initial_prompt + self._written[-_PROMPT_CHARS:]
        chars = self.transcriber.decode(
            samples, self.decoding, offset=self._buf_start / SAMPLE_RATE, prompt=prompt
        )
        return uncommitted(chars, self._committed_text, self._committed_end)

    def _agree(self) -> StreamUpdate:
        """Decode the whole buffer; commit what this decode and the last agree on."""
        fresh = self._decode(self._received)
        # A Latin word ending the decode waits for the next one: a committed character never
        # changes, and whether a space follows it ("Deep Learning") is not known yet.
        settled = latin_word_start(fresh)
        n = min(agreed(self._previous, fresh), settled)
        full = self._received - self._buf_start > _MAX_BUFFER_SECONDS * SAMPLE_RATE
        if full and not n:  # nothing agreed in a whole buffer: take this decode but a Latin
            # word at its end, unless the buffer holds nothing committed to be cut after
            cuttable = self._committed_end * SAMPLE_RATE > self._buf_start
            n = settled if settled or cuttable else len(fresh)
        committed, self._previous = fresh[:n], fresh[n:]
        self._commit(committed)
        if full:
            stop = round(self._committed_end * SAMPLE_RATE)
            if stop <= self._buf_start:  # nothing written in a whole buffer: keep its end only
                stop = self._received - round(SPEECH_PAD_SECONDS * SAMPLE_RATE)
            self._trim(stop)
        return self._update(committed, tuple(self._previous))

    def _drop_silence(self) -> StreamUpdate:
        """Only silence since the last cut: keep its last SPEECH_PAD_SECONDS before where the
        detector has listened to (what the file path keeps around speech), decode nothing."""
        self._decoded_to = self._received
        self._trim(self._pauses.settled - round(SPEECH_PAD_SECONDS * SAMPLE_RATE))
        return self._update([], ())

    def _cut(self, stop: int) -> StreamUpdate:
        """Decode the buffer up to a pause (or the end), commit all of it, close the segment."""
        committed = self._decode(stop, whole=True) if stop > self._buf_start else []
        self._commit(committed)
        self._previous = []
        self._trim(stop)
        # The audio after the cut is not decoded yet: no tail until the next hop.
        return StreamUpdate(tuple(committed), (), self._segments.close(), self.audio_seconds)

    def _commit(self, chars: Sequence[Char]) -> None:
        if chars:
            self._segments.chars += list(chars)
            self._committed_text += "".join(c.text for c in chars)
            self._written = (self._written + "".join(c.text + c.after for c in chars))[
                -_PROMPT_CHARS:
            ]
            self._committed_end = max(self._committed_end, chars[-1].end)

    def _trim(self, stop: int) -> None:
        stop = min(max(stop, self._buf_start), self._received)
        self._buf = self._buf[stop - self._buf_start :]
        self._buf_start = stop
        self._committed_end = max(self._committed_end, stop / SAMPLE_RATE)

    def _update(self, committed: Sequence[Char], tail: tuple[Char, ...]) -> StreamUpdate:
        segment = self._segments.close() if self._segments.too_long() else None
        return StreamUpdate(tuple(committed), tail, segment, self.audio_seconds)
