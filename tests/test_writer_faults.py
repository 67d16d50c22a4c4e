"""Writers on transcripts the hunt found wrong: a character longer than a cue, Whisper's marks
as characters of their own, a segment emptied in review, a speaker name of two lines."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from types import SimpleNamespace as W

from engine.library.review import EditOp, apply_edits
from engine.results import Char, Segment, renamed_speakers, speaker_name
from engine.whisper import word_chars
from engine.writers import plan_cues, render


def whisper_segment(words: list[tuple[str, float, float]]) -> Segment:
    """A segment of faster-whisper words (text, start, end): marks become Chars of no time."""
    chars = word_chars([W(word=w, start=s, end=e, probability=0.9) for w, s, e in words])
    return Segment(0, chars[0].start, chars[-1].end, tuple(chars))


def back_to_back(words: list[str], step: float = 0.3) -> Segment:
    """Whisper words one after another with no gap, `step` seconds a spoken character."""
    t, timed = 0.0, []
    for w in words:
        spoken = sum(c not in "，。" for c in w)
        timed.append((w, t, t + step * spoken))
        t += step * spoken
    return whisper_segment(timed)


def test_a_character_longer_than_a_cue_is_one_cue_with_its_mark():
    # faster-whisper stretches the word before a long pause over the silence (好 over 8 s)
    seg = whisper_segment([("我们", 0.0, 0.5), ("好。", 0.5, 8.5), ("走吧", 8.5, 9.0)])
    assert [c.text for c in plan_cues([seg])] == ["我们", "好", "走吧"]
    # one such character with its mark: one cue, never an empty one
    (cue,) = plan_cues([whisper_segment([("嗯。", 0.0, 9.0)])])
    assert cue.text == "嗯" and [(c.text, c.after) for c in cue.chars] == [("嗯", "。")]


def test_whisper_lines_break_after_the_comma_never_before_it():
    # the comma inside the next word, as Whisper writes "，然后"
    words = ["今天", "我们", "讨论", "一下", "项目", "的", "进度", "，然后", "再", "安排", "下周"]
    (cue,) = plan_cues([back_to_back([*words, "的", "工作。"])])
    assert cue.text == "今天我们讨论一下项目的进度\n然后再安排下周的工作"
    # the comma at the end of its word ("进度，"): the line used to start with it
    words = ["今天", "我们", "讨论", "一下", "项目", "进度，", "然后", "再", "安排", "下周"]
    (cue,) = plan_cues([back_to_back([*words, "的", "工作。"])])
    assert cue.text == "今天我们讨论一下项目进度\n然后再安排下周的工作"


def test_whisper_cues_are_cut_after_a_mark():
    """Speech too long for one cue, every gap 0: the cut goes after the full stop."""
    words = [
        "今天",
        "我们",
        "讨论",
        "一下",
        "项目",
        "进度。",
        "然后",
        "再",
        "安排",
        "下周",
        "工作。",
    ]
    cues = plan_cues([back_to_back(words, step=0.4)])  # 21 characters over 8.4 s
    assert [c.text for c in cues] == ["今天我们讨论一下项目进度", "然后再安排下周工作"]
    assert all(c.chars[0].text not in "，。" for c in cues)


def test_txt_skips_a_segment_emptied_in_review():
    def seg(i: int, text: str, speaker: int) -> Segment:
        chars = tuple(Char(t, i + 0.2 * k, i + 0.2 * k + 0.15, 0.95) for k, t in enumerate(text))
        return Segment(i, chars[0].start, chars[-1].end, chars, speaker)

    segments = [seg(0, "你好请坐", 0), seg(2, "嗯嗯", 1), seg(4, "今天怎么了", 0)]
    edited = apply_edits(segments, [EditOp(1, 0, 2, "", "fix")])  # the cough deleted
    assert render(edited, "txt") == "说话人 1：你好请坐\n今天怎么了\n"
    plain = [Segment(s.id, s.start, s.end, s.chars) for s in edited]  # speakers not told apart
    assert render(plain, "txt") == "你好请坐\n今天怎么了\n"


def test_a_pasted_name_of_two_lines_is_one_line():
    names = renamed_speakers({}, 0, "王医生\n(主治)\t ")
    assert names == {0: "王医生 (主治)"}
    assert render(
        [Segment(0, 0.0, 0.1, (Char("好", 0.0, 0.1, 0.9),), 0)], "txt", speakers=names
    ) == ("王医生 (主治)：好\n")
    # a name stored before this rule is written on one line too
    assert speaker_name(0, {0: "王医生\n(主治)"}) == "王医生 (主治)"


def test_subtitle_lines_cut_between_two_latin_words_carry_no_space_at_the_cut():
    """A typed fix keeps the space between two Latin words as the mark after the first; a line
    or cue cut there (a space ranks as a mark for `_cut`) ended with that space."""

    def typed(text: str, seconds: float) -> Segment:
        heard = tuple(Char("嗯", 0.2 * k, 0.2 * k + 0.15, 0.9) for k in range(round(seconds / 0.2)))
        seg = Segment(0, heard[0].start, heard[-1].end, heard)
        return apply_edits([seg], [EditOp(0, 0, len(heard), text, "fix")])[0]

    (cue,) = plan_cues([typed("我们今天用Python and Java写一个小程序", 4.0)])
    assert cue.text == "我们今天用Python\nand Java写一个小程序"  # the space inside stays
    long = typed("今天我们讨论一下Deep Learning和Machine Learning的区别", 10.0)
    assert [c.text for c in plan_cues([long])] == [
        "今天我们讨论一下Deep",  # a cue cut between two words
        "Learning和Machine\nLearning的区别",  # and a line cut
    ]
    for fmt in ("srt", "vtt"):
        lines = render([long], fmt).splitlines()
        assert not [line for line in lines if line != line.strip()], fmt
        assert "Learning和Machine" in lines and "今天我们讨论一下Deep" in lines


def typed_over(text: str, seconds: float) -> Segment:
    """A segment whose words were typed as a fix over `seconds` of speech: as review stores
    it, each Latin letter a Char and the space between two words the last letter's `after`."""
    heard = tuple(Char("嗯", 0.2 * k, 0.2 * k + 0.15, 0.9) for k in range(round(seconds / 0.2)))
    seg = Segment(0, heard[0].start, heard[-1].end, heard)
    return apply_edits([seg], [EditOp(0, 0, len(heard), text, "fix")])[0]


def test_subtitles_never_cut_inside_a_latin_word():
    """A cue read "Learning的区别然后再看S\\npeech Recognition": the only cut leaving both lines
    16 characters was inside "Speech", so the cue must be cut elsewhere."""
    text = "今天我们讨论一下Deep Learning和Machine Learning的区别然后再看Speech Recognition"
    words = {"Deep", "Learning", "Machine", "Speech", "Recognition"}
    for seconds in (10.0, 12.0, 15.0, 20.0):
        cues = plan_cues([typed_over(text, seconds)])
        assert "".join(c.text.replace("\n", " ") for c in cues).replace(" ", "") == text.replace(
            " ", ""
        )
        for cue in cues:
            assert set(re.findall(r"[A-Za-z]+", cue.text)) <= words, (seconds, cue.text)
            assert len(cue.lines) <= 2 and all(len(line) <= 16 for line in cue.lines)
    assert "Learning的区别然后再看S\npeech Recognition" not in render(
        [typed_over(text, 10.0)], "srt"
    )


def test_a_word_longer_than_a_line_is_cut_and_only_it():
    word = "Pneumonoultramicroscopicsilicovolcanoconiosis"  # 45 letters, a line holds 16
    cues = plan_cues([typed_over(f"这个词是{word}对吧还有Python", 12.0)])
    lines = [line for cue in cues for line in cue.text.split("\n")]
    assert all(len(line) <= 16 for line in lines)
    assert "".join(lines) == f"这个词是{word}对吧还有Python"
    assert any(line.endswith("Python") for line in lines)  # a short word stays whole


def _marks_as_chars(segment: Segment) -> Segment:
    """`segment` as Whisper transcripts stored before marks went into `after`: each mark a
    character of no length."""
    chars = []
    for c in segment.chars:
        chars.append(replace(c, after=""))
        chars.extend(replace(c, text=m, start=c.end, after="") for m in c.after if m.strip())
    return replace(segment, chars=tuple(chars))


def test_a_cue_of_two_lines_is_never_three_around_a_whisper_mark():
    """32 characters fit two lines of 16, but not when the 17th is Whisper's comma (a line
    never starts with one; a transcript stored when Whisper's marks were characters): the cue
    had three lines; now the speech is two cues."""
    words = ["今天天气很好我们去公园散步吧然后，", "再去吃饭好吗还有一些别的事情要"]
    segment = _marks_as_chars(back_to_back(words, step=0.2))
    cues = plan_cues([segment])  # 31 spoken over 6.2 s, 32 Chars
    assert all(len(cue.lines) <= 2 for cue in cues)
    assert [c.text for c in cues] == [
        "今天天气很好我们\n去公园散步吧然后",
        "再去吃饭好吗还有一些别的事情要",
    ]


def test_a_segment_cut_between_two_latin_words_has_no_space_at_its_ends_in_any_format():
    """Whisper keeps the space after "Deep" as its `after` across its segments; a segment
    ending there was written "学习Deep " in TXT and JSON (SRT and VTT stripped it), while
    the space inside a segment ("Deep Learning") stays in every format."""
    chars = whisper_segment(
        [("学习", 0.0, 1.0), (" Deep", 1.0, 1.5), (" Learning", 1.5, 2.0), ("好", 2.0, 2.5)]
    ).chars
    cut = [c.text for c in chars].index("p") + 1
    parts = [Segment(0, 0.0, 1.5, chars[:cut]), Segment(1, 1.5, 2.5, chars[cut:])]
    whole = [Segment(0, 0.0, 2.5, chars)]
    for fmt in ("txt", "srt", "vtt", "json"):
        assert "学习Deep Learning好" in render(whole, fmt), fmt
    assert render(parts, "txt") == "学习Deep\nLearning好\n"
    doc = json.loads(render(parts, "json"))
    assert doc["text"] == "学习Deep\nLearning好"
    assert [s["punctuated"] for s in doc["segments"]] == ["学习Deep", "Learning好"]
    assert doc["segments"][0]["chars"][-1]["after"] == " "  # the characters stay as they are
    assert [c.text for c in plan_cues(parts)] == ["学习Deep", "Learning好"]


def _plain(i: int, text: str, start: float) -> Segment:
    chars = tuple(Char(t, start + 0.2 * k, start + 0.2 * k + 0.2, 0.9) for k, t in enumerate(text))
    return Segment(i, chars[0].start, chars[-1].end, chars)


def test_a_segment_of_marks_only_has_no_cue():
    """A transcript stored before marks went into `after` holds a lone 。 as a segment of its
    own; its cue had a timing line and no text, which strict SRT readers lose their place on.
    Cues are numbered as written."""
    segments = [_plain(0, "你好", 0.0), _plain(1, "。", 1.0), _plain(2, "再见", 3.0)]
    srt = render(segments, "srt")
    assert srt == (
        "1\n00:00:00,000 --> 00:00:01,000\n你好\n\n2\n00:00:03,000 --> 00:00:04,000\n再见\n"
    )
    assert render(segments, "vtt") == "WEBVTT\n\n" + srt.replace(",", ".")


def test_json_text_skips_a_segment_emptied_in_review_as_txt_does():
    segments = [_plain(0, "你好", 0.0), Segment(1, 2.0, 3.0, ()), _plain(2, "再见", 4.0)]
    assert render(segments, "txt") == "你好\n再见\n"
    assert json.loads(render(segments, "json"))["text"] == "你好\n再见"
