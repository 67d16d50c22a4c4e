"""Whisper's marks in `after` (engine.whisper.word_chars) through what the CLI and the app do
with a transcript: --no-punctuation removes them (engine.punctuation.without_marks), and the
punctuation model leaves a segment that holds them alone."""

from __future__ import annotations

from types import SimpleNamespace as W

from engine.punctuation import default_punctuator, without_marks
from engine.results import Segment
from engine.whisper import word_chars


def _segment(words: list[tuple[str, float, float]]) -> Segment:
    chars = word_chars([W(word=w, start=s, end=e, probability=0.9) for w, s, e in words])
    return Segment(0, chars[0].start, chars[-1].end, tuple(chars))


def test_no_punctuation_removes_whisper_marks_and_keeps_the_space_between_latin_words():
    seg = _segment(
        [("好的，", 0.0, 0.4), ("Hello,", 0.4, 0.8), (" world", 0.8, 1.2), ("吗？", 1.2, 1.4)]
    )
    (plain,) = without_marks([seg])
    assert plain.text == seg.text and plain.punctuated == "好的Hello world吗"
    assert [(c.start, c.end, c.confidence) for c in plain.chars] == [
        (c.start, c.end, c.confidence) for c in seg.chars
    ]


def test_the_punctuation_model_keeps_whisper_marks():
    seg = _segment([("我们", 0.0, 0.4), ("走吧，", 0.4, 0.8), ("好吗", 0.8, 1.2)])
    assert default_punctuator().punctuate([seg]) == [seg]
