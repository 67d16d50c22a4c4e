"""Live Whisper: the LocalAgreement policy (engine.whisper_stream) with a scripted decoder.

The fake decoder "hears" a fixed text at 4 characters per second of speech: characters wholly
inside the buffer come out right, one cut by the buffer's end comes out as a wrong guess "X",
as Whisper's last word is often wrong until more audio arrives.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from engine.results import Char
from engine.stream import StreamOptions
from engine.vad import PauseOptions
from engine.whisper import word_chars
from engine.whisper_stream import _MAX_BUFFER_SECONDS, WhisperStreamer, agreed, uncommitted

SR = 16_000
TEXT = "今天天气很好我们去公园散步吧"
RATE = 4.0  # characters per second of speech


def _c(text: str, start: float) -> Char:
    return Char(text, start, start + 0.2, 0.9)


def test_uncommitted_drops_what_is_committed_by_time_and_by_repeat():
    chars = [_c("你", 0.0), _c("好", 0.3), _c("吗", 0.6)]
    assert [c.text for c in uncommitted(chars, "你好", after=0.5)] == ["吗"]
    # "好" starts just before the commit point but is a repeat of the committed end
    assert [c.text for c in uncommitted(chars[1:], "你好", after=0.45)] == ["吗"]
    assert [c.text for c in uncommitted(chars, "", after=0.0)] == ["你", "好", "吗"]


def test_a_repeat_is_dropped_only_where_it_overlaps_the_committed_end():
    """A character heard twice starts before the committed end; the second of a pair starts
    where the committed text ends and is kept."""
    assert [c.text for c in uncommitted([_c("天", 0.42), _c("气", 0.6)], "今天", 0.5)] == ["气"]
    assert [c.text for c in uncommitted([_c("天", 0.5), _c("气", 0.7)], "今天", 0.5)] == [
        "天",
        "气",
    ]


def test_a_character_is_committed_with_its_mark_once_two_decodes_agree_on_both():
    """Whisper's marks are the `after` of the character before (engine.whisper.word_chars),
    never characters: a character is committed, never to change, only once two decodes agree
    on what follows it too (a decode that ended at 好 had not heard the ，after it)."""
    ended = [Char("你", 0.0, 0.2, 0.9), Char("好", 0.2, 0.4, 0.9)]
    went_on = [ended[0], Char("好", 0.2, 0.4, 0.9, after="，"), Char("吗", 0.4, 0.6, 0.9)]
    assert agreed(ended, went_on) == 1
    assert agreed(went_on, [*went_on[:2], Char("吗", 0.4, 0.6, 0.9, after="？")]) == 2


def test_agreed_is_the_common_prefix():
    a = [_c(t, i) for i, t in enumerate("今天天")]
    b = [_c(t, i) for i, t in enumerate("今天气好")]
    assert agreed(a, b) == 2 and agreed([], b) == 0 and agreed(b, b) == 4


class _Scripted:
    """Decodes a buffer into TEXT's characters at RATE per second of speech (see module)."""

    def __init__(self, speech: list[tuple[float, float]]) -> None:
        self.speech = speech  # (start, end) seconds of each stretch of speech
        self.calls = 0
        self.prompts: list[str] = []
        self.seconds: list[float] = []  # the length of each buffer decoded

    def _timeline(self) -> list[Char]:
        chars, k = [], 0
        for start, end in self.speech:
            t = start
            while t + 1 / RATE <= end + 1e-9 and k < len(TEXT):
                chars.append(Char(TEXT[k], t, t + 1 / RATE, 0.9))
                k, t = k + 1, t + 1 / RATE
        return chars

    def decode(self, samples, options=None, *, offset=0.0, prompt=None):
        self.calls += 1
        self.prompts.append(prompt or "")
        self.seconds.append(len(samples) / SR)
        end = offset + len(samples) / SR
        out = []
        for c in self._timeline():
            if c.start >= offset - 1e-9 and c.end <= end + 1e-9:
                out.append(c)
            elif c.start < end < c.end:
                out.append(Char("X", c.start, end, 0.3))  # cut by the buffer's end
        return out


def _audio(seconds: float, speech: list[tuple[float, float]]) -> np.ndarray:
    """Loud noise where there is speech, silence elsewhere (for the energy detector)."""
    x = np.zeros(round(seconds * SR), np.float32)
    rng = np.random.default_rng(0)
    for start, end in speech:
        a, b = round(start * SR), round(end * SR)
        x[a:b] = rng.uniform(-0.3, 0.3, b - a)
    return x


def _run(streamer: WhisperStreamer, audio: np.ndarray, block: float = 0.5):
    updates = []
    step = round(block * SR)
    for i in range(0, len(audio), step):
        updates += streamer.push(audio[i : i + step])
    return updates, streamer.finish()


OPTIONS = StreamOptions(pauses=PauseOptions(vad="energy", pause_seconds=0.6))


def _segments(speech: list[tuple[float, float]], seconds: float, block: float):
    """(the scripted decoder, the segments the streamer closed) for `seconds` of audio."""
    decoder = _Scripted(speech)
    live, final = _run(WhisperStreamer(decoder, OPTIONS), _audio(seconds, speech), block)
    return decoder, [u.segment for u in live + final if u.segment is not None]


def test_only_what_two_decodes_agree_on_is_committed_and_finish_commits_the_rest():
    speech = [(0.0, 3.5)]
    decoder = _Scripted(speech)
    streamer = WhisperStreamer(decoder, OPTIONS)
    live, final = _run(streamer, _audio(3.5, speech), block=0.35)  # decodes cut characters
    committed_live = "".join(c.text for u in live for c in u.committed)
    assert "X" not in committed_live  # a guess at a cut character never got agreed on
    assert committed_live and TEXT.startswith(committed_live)
    assert any("X" in "".join(c.text for c in u.tail) for u in live)  # it was shown as tail
    everything = committed_live + "".join(c.text for u in final for c in u.committed)
    assert everything == TEXT[:14]  # each character once, in order
    starts = [c.start for u in live + final for c in u.committed]
    assert starts == sorted(starts)
    assert final[-1].segment is not None and final[-1].segment.text == everything
    assert decoder.calls <= 3.5 / 1.0 + 2  # at most one decode per second, whatever the hop


def test_a_pause_ends_the_segment_and_the_next_buffer_continues_the_prompt():
    decoder, segments = _segments([(0.0, 1.5), (2.5, 4.0)], 4.5, block=0.25)
    assert [s.text for s in segments] == [TEXT[:6], TEXT[6:12]]
    assert segments[0].end <= 2.5 <= segments[1].start
    assert any(p.endswith(TEXT[:6]) for p in decoder.prompts)  # committed text carried on


def test_silence_is_neither_decoded_nor_held():
    """20 s of silence before the speech and 60 s between two stretches of it, as from a
    microphone left on: the buffer decoded never holds more than a few seconds (it had grown
    to the whole silence, decoded again every second), and the text is the same."""
    decoder, segments = _segments([(20.0, 21.5), (81.5, 83.0)], 83.5, block=0.5)
    assert [s.text for s in segments] == [TEXT[:6], TEXT[6:12]]
    assert segments[1].start >= 81.5
    assert max(decoder.seconds) < 5.0
    assert decoder.calls < 20  # a decode a second over the 83 s would be 80


def test_sound_that_decodes_to_nothing_is_not_held_or_decoded_again_and_again():
    """Two minutes of music or a fan, heard as speech but written as nothing: the buffer was
    never cut (no character to cut after), so every hop decoded the whole recording again."""
    decoder = _Scripted([])  # writes nothing, whatever it hears
    streamer = WhisperStreamer(decoder, OPTIONS)
    _run(streamer, _audio(120.0, [(0.0, 120.0)]), block=0.5)
    assert max(decoder.seconds) <= _MAX_BUFFER_SECONDS + 1.5
    assert len(streamer._buf) <= (_MAX_BUFFER_SECONDS + 1.5) * SR


def test_a_short_first_utterance_is_not_lost():
    """ "好的" and a pause at the very start of a recording: the buffer the pause cuts is
    shorter than the least a growing buffer is decoded at, and was dropped unheard."""
    _, segments = _segments([(0.0, 0.6)], 2.0, block=0.25)
    assert [s.text for s in segments] == [TEXT[:2]]


def test_every_character_once_in_order_on_random_recordings():
    """200 recordings of 1-3 stretches of speech (0.5-1.2 s, so TEXT's 天天 falls across
    commit points and pauses) after a leading silence of 0-40 s, with gaps of 0.05-40 s, in
    blocks of 0.05-2.5 s: the committed text and the segments are each the scripted text,
    every character once, in order. Before the two fixes above 75 of them were not."""
    import random

    differ = []
    for seed in range(200):
        rng = random.Random(seed)
        t = rng.choice([0.0, rng.uniform(0, 3), rng.uniform(3, 40)])
        speech = []
        for _ in range(rng.randint(1, 3)):
            length = rng.uniform(0.5, 1.2)
            speech.append((round(t, 2), round(t + length, 2)))
            gap = rng.choice([rng.uniform(0.05, 0.5), rng.uniform(0.7, 3), rng.uniform(3, 40)])
            t += length + gap
        decoder = _Scripted(speech)
        block = rng.choice([0.05, 0.25, 0.5, 1.0, 2.5])
        live, final = _run(WhisperStreamer(decoder, OPTIONS), _audio(t, speech), block)
        expected = "".join(c.text for c in decoder._timeline())
        committed = "".join(c.text for u in live + final for c in u.committed)
        segments = "".join(u.segment.text for u in live + final if u.segment is not None)
        if committed != expected or segments != expected:
            differ.append(seed)
    assert differ == []


def test_push_after_finish_needs_reset():
    streamer = WhisperStreamer(_Scripted([(0.0, 1.0)]), OPTIONS)
    streamer.push(np.zeros(SR, np.float32))
    streamer.finish()
    with pytest.raises(RuntimeError, match="reset"):
        streamer.push(np.zeros(10, np.float32))
    streamer.reset()
    assert streamer.push(np.zeros(10, np.float32)) == []


class _Worded:
    """Decodes a buffer into the faster-whisper words (text, start, end) it holds whole, as
    engine.whisper does (`word_chars`: each letter a Char, the space before a Latin word on the
    Char before it); a word cut by the buffer's end is not written yet."""

    def __init__(self, words: list[tuple[str, float, float]]) -> None:
        self.words = words
        self.prompts: list[str | None] = []

    def decode(self, samples, options=None, *, offset=0.0, prompt=None):
        self.prompts.append(prompt)
        end = offset + len(samples) / SR
        said = [
            SimpleNamespace(word=w, start=s - offset, end=e - offset, probability=0.9)
            for w, s, e in self.words
            if s >= offset - 1e-9 and e <= end + 1e-9
        ]
        return word_chars(said, offset=offset)


def _written(chars) -> str:
    return "".join(c.text + c.after for c in chars)


def test_a_space_between_latin_words_survives_a_commit_point_between_them():
    """Two decodes agreeing on "…Deep" (the next word not heard whole yet) committed its "p"
    without the space the next decode puts after it: "DeepLearning" live and in the
    segment. After a comma ("Learning, AI") the space is the comma's."""
    words = [("我们", 0.0, 0.5), (" 学习", 0.5, 1.0), (" Deep", 1.0, 1.5)]
    words += [(" Learning,", 1.5, 3.5), (" AI", 3.5, 4.0), ("很", 4.0, 4.25), ("有用", 4.25, 4.75)]
    expected = "我们学习Deep Learning, AI很有用"
    for block in (0.05, 0.25, 0.3, 0.5, 1.0, 2.0):
        decoder = _Worded(words)
        live, final = _run(WhisperStreamer(decoder, OPTIONS), _audio(5.5, [(0.0, 4.75)]), block)
        assert _written(c for u in live + final for c in u.committed) == expected, block
        segments = [u.segment for u in live + final if u.segment is not None]
        assert [_written(s.chars) for s in segments] == [expected], block
        # the prompt continues the text as written (it read "DeepLearning" without the space)
        assert any("Deep Learning, AI" in (p or "") for p in decoder.prompts), block
        assert not any("DeepLearning" in (p or "") for p in decoder.prompts), block


def test_a_space_between_latin_words_survives_a_buffer_cut_between_them():
    """Half a minute of speech without a pause, English words between Mandarin ones: buffers
    cut where nothing agreed, or after their last committed character, never drop the space
    between two English words."""
    said = [" 我们", " 用", " Deep", " Learning,", " AI", "和", " Speech", " Recognition", "做"]
    words, t = [], 0.0
    for k in range(40):
        w = said[k % len(said)]
        length = 0.25 * len(w.strip())
        words.append((w, round(t, 2), round(t + length, 2)))
        t += length
    expected = _written(
        word_chars([SimpleNamespace(word=w, start=s, end=e, probability=0.9) for w, s, e in words])
    )
    for block in (0.25, 0.5, 1.0, 2.5):
        decoder = _Worded(words)
        live, final = _run(WhisperStreamer(decoder, OPTIONS), _audio(t + 1.0, [(0.0, t)]), block)
        assert _written(c for u in live + final for c in u.committed) == expected, block


def test_int16_and_a_nan_push_as_their_float_samples():
    """int16 blocks (a microphone's) were cast unscaled: 9830 where 0.3 was, so the pauses were
    found nowhere; a NaN reached the decoder. They stream as the float samples they stand for."""
    speech = [(0.0, 1.5), (2.5, 4.0)]
    audio = _audio(4.5, speech)
    decoder = _Scripted(speech)
    expected = _run(WhisperStreamer(decoder, OPTIONS), audio)
    as_int16 = np.round(audio * 32768).astype(np.int16)
    decoder16 = _Scripted(speech)
    assert _run(WhisperStreamer(decoder16, OPTIONS), as_int16) == expected
    assert decoder16.seconds == decoder.seconds
    with_nan = audio.copy()
    with_nan[int(3.0 * SR)] = np.nan
    scripted, seen = _Scripted(speech), []
    decode = scripted.decode
    scripted.decode = lambda samples, *a, **k: seen.append(samples) or decode(samples, *a, **k)
    _run(WhisperStreamer(scripted, OPTIONS), with_nan)
    assert seen and all(np.isfinite(s).all() for s in seen)
