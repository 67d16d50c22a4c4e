"""Faults of engine.whisper found on real speech, checked with a fake faster-whisper: speech the
decode passed over inside one of its segments, prompt echoes, ASCII marks in Mandarin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import whisper
from engine.results import Char
from engine.transcribe import TranscribeOptions
from engine.whisper import LoadedWhisper, WhisperTranscriber

RATE = whisper.SAMPLE_RATE


def _segment(*words: tuple[str, float, float]):
    from faster_whisper.transcribe import Segment, Word

    found = [Word(start, end, text, 0.9) for text, start, end in words]
    text = "".join(w.word for w in found)
    return Segment(0, 0, found[0].start, found[-1].end, text, [], -0.3, 1.0, 0.1, found, 0.0)


def _audio(seconds: float, *speech: tuple[float, float]) -> np.ndarray:
    """Silence with ones where `speech` says (start, end in seconds)."""
    samples = np.zeros(round(seconds * RATE), np.float32)
    for a, b in speech:
        samples[round(a * RATE) : round(b * RATE)] = 1.0
    return samples


@pytest.fixture
def hears_ones(monkeypatch):
    """The voice detector hears speech where the samples are not zero."""

    def speech(samples: np.ndarray) -> list[tuple[float, float]]:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], samples != 0, [0]]).astype(int)))
        return [(a / RATE, b / RATE) for a, b in zip(edges[::2], edges[1::2], strict=True)]

    monkeypatch.setattr(whisper, "_speech", speech)


class Model:
    """A faster-whisper model that answers each length of audio (in seconds) as told."""

    def __init__(self, answers: dict[float, list]) -> None:
        self.answers, self.calls = answers, []

    def transcribe(self, samples, initial_prompt=None, **kwargs):
        seconds = round(len(samples) / RATE, 2)
        self.calls.append(seconds)
        return iter(self.answers[seconds]), None


def _said(model: Model, samples: np.ndarray, **options) -> list[tuple[str, float, float]]:
    loaded = LoadedWhisper(model, "fake", Path("fake"), "cpu", "float32")
    got = WhisperTranscriber(loaded).segments(samples, TranscribeOptions(**options))
    return [(w.word, round(w.start, 2), round(w.end, 2)) for s in got for w in s.words]


def test_speech_passed_over_inside_one_segment_is_decoded_in_its_place(hears_ones):
    """Three joined clips: faster-whisper wrote the first and the last as one segment, 垫。
    ending at 3.72 s and 我觉得 starting at 10.18 s, and the sentence between them was lost."""
    samples = _audio(11.0, (0.0, 3.7), (4.5, 9.5), (10.2, 10.8))
    model = Model(
        {
            11.0: [_segment(("鞋垫。", 3.0, 3.72), ("我", 10.18, 10.4), ("觉得", 10.4, 10.8))],
            # 3.72-10.18 s again: the speech starts 0.78 s in, less than the pad before it
            6.46: [_segment(("广州市", 0.8, 2.0), ("房地产", 2.0, 3.5), ("分析。", 3.5, 5.3))],
        }
    )
    assert _said(model, samples) == [
        ("鞋垫。", 3.0, 3.72),
        ("广州市", 4.52, 5.72),
        ("房地产", 5.72, 7.22),
        ("分析。", 7.22, 9.02),
        ("我", 10.18, 10.4),
        ("觉得", 10.4, 10.8),
    ]
    assert model.calls == [11.0, 6.46]


def test_words_stretched_over_passed_over_speech_give_way_to_it(hears_ones):
    """我觉得 placed at 6.04-12.40 s (觉 6.48-9.44, 得 9.44-12.40) over a sentence the decode
    passed over: the audio from the last word placed before them is decoded again, and what it
    gives stands for them."""
    samples = _audio(16.0, (0.0, 4.4), (5.5, 11.3), (12.0, 14.0))
    model = Model(
        {
            16.0: [
                _segment(("这样", 3.9, 4.4)),
                _segment(("我", 6.04, 6.48), ("觉", 6.48, 9.44), ("得", 9.44, 12.4)),
                _segment(("这个", 12.4, 13.0), ("计划", 13.0, 14.0)),
            ],
            # 4.5-12.4 s: from a second before the speech the gap of 4.4-6.04 s left alone
            7.9: [_segment(("欢迎大家", 1.0, 4.0), ("来体验", 4.0, 6.8), ("我觉得", 7.4, 7.9))],
        }
    )
    assert _said(model, samples) == [
        ("这样", 3.9, 4.4),
        ("欢迎大家", 5.5, 8.5),
        ("来体验", 8.5, 11.3),
        ("我觉得", 11.9, 12.4),
        ("这个", 12.4, 13.0),
        ("计划", 13.0, 14.0),
    ]
    assert model.calls == [16.0, 7.9]


def test_long_words_over_silence_or_over_all_the_audio_are_kept(hears_ones):
    """A word drawn out over silence is no sign of lost speech, and a stretched word over the
    whole audio is never decoded again (the same audio would give the same words)."""
    quiet = _audio(6.0, (0.0, 1.0))
    model = Model({6.0: [_segment(("好", 0.2, 1.0), ("吧。", 1.0, 4.0))]})
    assert _said(model, quiet) == [("好", 0.2, 1.0), ("吧。", 1.0, 4.0)]
    loud = _audio(6.0, (0.0, 6.0))
    model = Model({6.0: [_segment(("好", 0.2, 3.0), ("吧", 3.0, 5.6))]})
    assert _said(model, loud) == [("好", 0.2, 3.0), ("吧", 3.0, 5.6)]
    assert model.calls == [6.0]


def test_ascii_marks_beside_chinese_are_full_width():
    """Whisper-base wrote 你好,世界。 on a shared clip, and SRT lines ended with the ASCII comma
    the line end drops only full width. Between Latin words the mark and its space stay."""
    from types import SimpleNamespace

    from engine.results import Segment
    from engine.writers import render

    def chars(*texts: str):
        words = [
            SimpleNamespace(word=t, start=i, end=i + 1.0, probability=0.9)
            for i, t in enumerate(texts)
        ]
        return whisper.word_chars(words)

    said = chars("你好,", "世界", "?!", " OK:", "好")
    assert "".join(c.text + c.after for c in said) == "你好，世界？！OK：好"  # marks in `after`
    assert (
        "".join(c.text + c.after for c in chars(" Hello,", " world.", " 3:5"))
        == "Hello, world. 3:5"
    )
    assert "".join(c.text + c.after for c in chars("用", " Python,", "很好;")) == "用Python，很好；"
    cue = render([Segment(0, 0.0, 2.0, tuple(chars("你好,")))], "srt")
    assert cue.splitlines()[2] == "你好"


def test_a_decode_writes_no_more_tokens_than_its_audio_can_hold():
    """Whisper looping on a 0.38 s tail wrote 448 tokens at each temperature it tried (17 s to
    decode a 3.5 s clip): a short decode is bounded by its length, a long one by the model."""
    seen = []

    class Bounded:
        def transcribe(self, samples, max_new_tokens=None, **kwargs):
            seen.append((len(samples) // RATE, max_new_tokens))
            return iter(()), None

    transcriber = WhisperTranscriber(LoadedWhisper(Bounded(), "fake", Path("f"), "cpu", "float32"))
    for seconds in (3, 30):
        list(transcriber.segments(np.zeros(seconds * RATE, np.float32), TranscribeOptions()))
    assert seen == [(3, 92), (30, None)]


def test_a_segment_too_long_is_cut_between_whisper_words_never_inside_one(hears_ones):
    """Before: the 12 s limit cut at any character, and a word's two characters (体系: one
    span, one probability) ended one subtitle cue and began the next."""
    words = [("天地人", 0.9 * i, 0.9 * i + 0.9) for i in range(16)]
    model = Model({14.5: [_segment(*words)]})
    loaded = LoadedWhisper(model, "fake", Path("fake"), "cpu", "float32")
    items, _ = WhisperTranscriber(loaded).transcribe(_audio(14.5, (0.0, 14.5)))
    segments = [s for s in items if hasattr(s, "chars")]
    assert [len(s.chars) for s in segments] == [42, 6]  # cut at 12.6 s, word 14's start
    assert segments[0].end == 12.6 and segments[1].start == 12.6
    # the wav2vec2 path (no words) still cuts at the character that passes the limit
    from engine.transcribe import split_segments

    chars = [c for s in segments for c in s.chars]
    assert [len(s.chars) for s in split_segments(chars, max_segment_seconds=12.0)] == [40, 8]


def test_a_pause_inside_a_whisper_word_cuts_at_the_next_word():
    """A sentence's last word stretched into the silence after it: the pause fell inside it,
    was forgotten, and the next sentence joined the same cue."""
    from engine.transcribe import split_segments

    chars = [Char(t, 0.2 + 0.4 * i, 0.6 + 0.4 * i, 0.9) for i, t in enumerate("你好好的我们走")]
    starts = [True, True, True, False, True, False, True]  # 你 好 好的 我们 走
    segments = split_segments(chars, pauses=[1.3], max_segment_seconds=12.0, can_cut=starts)
    assert ["".join(c.text for c in s.chars) for s in segments] == ["你好好的", "我们走"]
