"""Writers: every format renders the segments faithfully; SRT/VTT parse back to the times."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import replace

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.results import Alternative, Char, Segment, TranscriptionInfo, speaker_name
from engine.writers import FORMATS, CueLimits, plan_cues, render, timestamp, write, write_all

INFO = TranscriptionInfo(
    source="talk.wav",
    duration=3725.0,
    sampling_rate=16_000,
    model="tiny",
    device="cpu",
    dtype="bf16",
    attention="sdpa",
    confidence_measure="max_prob:1:mean",
)


def seg(i: int, start: float, text: str, step: float = 0.25) -> Segment:
    chars = tuple(
        Char(t, start + k * step, start + k * step + 0.1, 0.5 + k / 100, (Alternative("乙", 0.1),))
        for k, t in enumerate(text)
    )
    return Segment(i, chars[0].start, chars[-1].end, chars)


SEGMENTS = [
    seg(0, 0.5, "你好世界"),
    seg(1, 3.02, "今天天气很好我们去公园散步吧然后再去吃饭好吗还有一些别的事情要说"),  # 32 chars
    seg(2, 3723.456, "再见"),
]

TIME = r"(\d\d):(\d\d):(\d\d)[,.](\d{3})"
CUE = re.compile(rf"(\d+)\n{TIME} --> {TIME}\n(.+?)(?:\n\n|\n?$)", re.S)


def parse_cues(text: str) -> list[tuple[int, float, float, str]]:
    out = []
    for m in CUE.finditer(text):
        g = m.groups()
        start = int(g[1]) * 3600 + int(g[2]) * 60 + int(g[3]) + int(g[4]) / 1000
        end = int(g[5]) * 3600 + int(g[6]) * 60 + int(g[7]) + int(g[8]) / 1000
        out.append((int(g[0]), start, end, g[9]))
    return out


def test_timestamps_in_both_formats():
    assert timestamp(3723.456) == "01:02:03,456"
    assert timestamp(3723.456, ".") == "01:02:03.456"
    assert timestamp(59.9996) == "00:01:00,000"
    assert timestamp(0) == "00:00:00,000"


def test_txt_has_one_segment_per_line():
    assert render(SEGMENTS, "txt").splitlines() == [s.text for s in SEGMENTS]


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles_parse_back_to_the_character_times(fmt: str):
    text = render(SEGMENTS, fmt)
    assert text.startswith("WEBVTT\n\n") == (fmt == "vtt")
    assert ("," in text.split("-->")[0]) == (fmt == "srt")
    cues = parse_cues(text)
    expected = plan_cues(SEGMENTS)
    assert [n for n, *_ in cues] == list(range(1, len(expected) + 1))
    for (_, start, end, body), cue in zip(cues, expected, strict=True):
        assert start == pytest.approx(cue.start, abs=5e-4)
        assert end == pytest.approx(cue.end, abs=5e-4)
        assert body == cue.text
        assert all(len(line) <= 16 for line in body.split("\n"))
    assert "".join(b.replace("\n", "") for *_, b in cues) == "".join(s.text for s in SEGMENTS)
    assert cues[-1][1] == pytest.approx(3723.456)


def test_short_speech_stays_up_long_enough_to_read():
    """The old cues lasted exactly their characters' span: 40-100 ms for a short word."""
    one = (Char("喝", 2.0, 2.04, 0.9),)
    two = (Char("咖", 5.0, 5.06, 0.9), Char("啡", 5.1, 5.14, 0.9))
    segs = [Segment(0, 2.0, 2.04, one), Segment(1, 5.0, 5.14, two)]
    assert [(c.start, c.end, c.text) for c in plan_cues(segs)] == [
        (2.0, 3.0, "喝"),
        (5.0, 6.0, "咖啡"),
    ]
    # ... but never into the next cue
    near = [Segment(0, 2.0, 2.04, one), Segment(1, 2.5, 2.64, tuple(
        Char(c.text, c.start - 2.5, c.end - 2.5, 0.9) for c in two
    ))]  # fmt: skip
    assert (plan_cues(near)[0].start, plan_cues(near)[0].end) == (2.0, 2.5)
    # a long cue stays up long enough to read at 9 characters a second
    fast = seg(0, 0.0, "今天天气很好我们去公园散步吧然后再去", step=0.1)  # 18 in 1.8 s
    (cue,) = plan_cues([fast])
    assert cue.end == pytest.approx(2.0)


def test_long_speech_is_cut_at_the_widest_gap_and_lines_are_balanced():
    # 32 characters over 7.85 s: too long for one cue; equal gaps, so cut in the middle
    assert [len(c.chars) for c in plan_cues([SEGMENTS[1]])] == [16, 16]
    # 40 characters over 6 s (too many for two lines of 16) with a pause after the 12th
    text = "今天天气很好我们去公园散步吧然后再去吃饭好吗还有一些别的事情要说明天见了朋友再见"
    chars = [Char(t, k * 0.15, k * 0.15 + 0.1, 0.9) for k, t in enumerate(text)]
    chars[12:] = [Char(c.text, c.start + 0.4, c.end + 0.4, 0.9) for c in chars[12:]]
    cues = plan_cues([Segment(0, 0.0, chars[-1].end, tuple(chars))])
    assert (
        [c.text for c in cues]
        == [
            text[:12],  # one line: 12 characters fit
            text[12:26] + "\n" + text[26:],  # 28 characters: two lines of 14
        ]
    )


SPEECH = st.lists(
    st.lists(
        # gap before, duration; often none (Whisper's symbols take no time)
        st.tuples(
            st.one_of(st.just(0.0), st.floats(0.0, 1.5)),
            st.one_of(st.just(0.0), st.floats(0.0, 0.4)),
        ),
        min_size=1,
        max_size=90,
    ),
    max_size=5,
)


def make_segments(spec) -> list[Segment]:
    segments, t = [], 0.0
    for i, chars_spec in enumerate(spec):
        t += 1.0  # segments are apart
        chars = []
        for k, (gap, duration) in enumerate(chars_spec):
            t += gap
            chars.append(Char(chr(0x4E00 + k), t, t + duration, 0.9))
            t += duration
        segments.append(Segment(i, chars[0].start, chars[-1].end, tuple(chars)))
    return segments


@settings(max_examples=300, deadline=None)
@given(spec=SPEECH, one_line=st.booleans())
@example(spec=[[(0.0, 0.0)] * 17], one_line=True)  # a cue of no length, before
def test_cue_plan_properties(spec, one_line):
    limits = CueLimits(max_lines=1 if one_line else 2)
    segments = make_segments(spec)
    cues = plan_cues(segments, limits)
    # every character in exactly one cue, in order; no cue across two segments
    assert [c for cue in cues for c in cue.chars] == [c for s in segments for c in s.chars]
    owner = {id(c): s.id for s in segments for c in s.chars}
    assert all(len({owner[id(c)] for c in cue.chars}) == 1 for cue in cues)
    for n, cue in enumerate(cues):
        chars = cue.chars
        # never shorter than the characters' own span; cues never overlap; a cue starts with
        # its first character, or where the one before it, of characters taking no time, ends
        assert cue.start == chars[0].start or (n and cue.start == cues[n - 1].end)
        assert cue.end >= chars[-1].end
        following = cues[n + 1].start if n + 1 < len(cues) else float("inf")
        assert cue.end <= following
        # on screen for a while, as written too (before: 00:00:01,000 --> 00:00:01,000)
        assert timestamp(cue.end) > timestamp(cue.start)
        # readable: at least min_seconds unless the next cue starts sooner
        assert cue.end - cue.start >= limits.min_seconds - 1e-9 or cue.end == following
        # the line bound, and the speech a cue holds is at most max_seconds long
        assert 1 <= len(cue.lines) <= limits.max_lines
        assert all(1 <= len(line) <= limits.line_chars for line in cue.lines)
        assert len(chars) == 1 or chars[-1].end - chars[0].start <= limits.max_seconds


MIXED = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from("今天我们讨论一下的区别"), st.text("abcXYZ09", min_size=1, max_size=20)
        ),
        st.sampled_from(["", "", "，"]),  # a mark after the token
        st.floats(0.0, 0.3),  # gap before its first character
        st.floats(0.05, 0.4),  # each character's duration
    ),
    min_size=1,
    max_size=40,
)


def mixed_segment(spec) -> tuple[Segment, list[int]]:
    """Chinese characters and Latin words as typed fixes hold them (a Char a letter, the space
    between two words the first one's `after`), with the length of the word of each Char."""
    chars, lengths, t = [], [], 0.0
    for n, (token, mark, gap, duration) in enumerate(spec):
        t += gap
        latin = token.isascii()
        after_word = latin and n + 1 < len(spec) and spec[n + 1][0].isascii()
        for k, letter in enumerate(token):
            last = k == len(token) - 1
            after = (mark or (" " if after_word else "")) if last else ""
            chars.append(Char(letter, t, t + duration, 0.9, after=after))
            lengths.append(len(token) if latin else 1)
            t += duration
    return Segment(0, 0.0, t, tuple(chars)), lengths


@settings(max_examples=300, deadline=None)
@given(spec=MIXED, one_line=st.booleans())
def test_mixed_text_is_never_cut_inside_a_word_that_fits_a_line(spec, one_line):
    limits = CueLimits(max_lines=1 if one_line else 2)
    segment, lengths = mixed_segment(spec)
    cues = plan_cues([segment], limits)
    lines = [line for cue in cues for line in cue.lines]
    assert [c for line in lines for c in line] == list(segment.chars)
    assert all(1 <= len(cue.lines) <= limits.max_lines for cue in cues)
    assert all(len(line) <= limits.line_chars for line in lines)
    k = 0
    for line in lines[:-1]:  # each cut, between cues or between a cue's lines
        k += len(line)
        before, after = segment.chars[k - 1], segment.chars[k]
        inside_word = before.text.isascii() and after.text.isascii() and not before.after
        assert not inside_word or lengths[k] > limits.line_chars, "".join(c.text for c in line)


def test_json_keeps_everything():
    doc = json.loads(render(SEGMENTS, "json", INFO))
    assert doc["info"]["confidence_measure"] == INFO.confidence_measure
    assert doc["info"]["duration"] == 3725.0
    assert [s["text"] for s in doc["segments"]] == [s.text for s in SEGMENTS]
    first = doc["segments"][0]
    assert first["confidence"] == SEGMENTS[0].confidence
    assert first["chars"][1] == {
        "text": "好",
        "start": 0.75,
        "end": 0.85,
        "confidence": 0.51,
        "alternatives": [{"text": "乙", "prob": 0.1}],
        "after": "",
    }
    assert "你好" in render(SEGMENTS, "json")  # not \\u-escaped


def test_empty_transcripts_are_valid():
    assert render([], "txt") == "" and render([], "srt") == ""
    assert render([], "vtt").startswith("WEBVTT")
    assert json.loads(render([], "json"))["segments"] == []


def _spoken() -> list[Segment]:
    """Segments with speakers (and one without), alternatives, punctuation and a Latin word."""
    out = []
    for i, (text, speaker) in enumerate([("你好世界", 0), ("今天天气很好", 1), ("OK再见", None)]):
        s = seg(i, 2.0 * i, text)
        chars = tuple(replace(c, after="，" if k == 1 else "") for k, c in enumerate(s.chars))
        out.append(replace(s, chars=(*chars[:-1], replace(chars[-1], after="。")), speaker=speaker))
    return out


def _before(segments: list[Segment], info: TranscriptionInfo, names: dict[int, str]) -> dict:
    """The JSON export's data as it was built before: dataclasses.asdict of each segment."""
    ids = sorted({s.speaker for s in segments if s.speaker is not None})
    return {
        "info": dataclasses.asdict(info),
        "text": "\n".join(s.punctuated for s in segments),
        "speakers": {str(k): speaker_name(k, names) for k in ids},
        "segments": [
            dataclasses.asdict(s)
            | {"text": s.text, "punctuated": s.punctuated, "confidence": s.confidence}
            | {"speaker": None if s.speaker is None else speaker_name(s.speaker, names)}
            | {"speaker_id": s.speaker}
            for s in segments
        ],
    }


def test_json_export_reads_back_as_the_data_it_always_held():
    info = replace(INFO, source="r\udce9union.wav")  # bytes that are not UTF-8 (os.fsdecode)
    text = render(_spoken(), "json", info, {1: "张三"})
    before = json.loads(json.dumps(_before(_spoken(), info, {1: "张三"})))  # tuples as lists
    assert json.loads(text) == before
    assert os.fsencode(json.loads(text)["info"]["source"]) == b"r\xe9union.wav"


def test_json_export_is_one_segment_a_line_by_the_c_encoder(monkeypatch):
    """A 3-hour transcript (16 MB of JSON) blocked for 2.5 s: each segment copied through
    dataclasses.asdict, and the whole indented by Python's own encoder. Each segment is one
    line now, written by json's C encoder."""
    copied, real = [], dataclasses._asdict_inner
    monkeypatch.setattr(dataclasses, "_asdict_inner", lambda o, f: copied.append(o) or real(o, f))
    monkeypatch.setattr(json.encoder, "_make_iterencode", None)  # the pure-Python encoder
    spoken = _spoken()
    text = render(spoken, "json", INFO, {1: "张三"})
    assert not any(isinstance(o, Segment | Char) for o in copied)
    records = json.loads(text)["segments"]
    lines = [line.removesuffix(",") for line in text.splitlines()]
    for record in records:
        assert json.dumps(record, ensure_ascii=False) in lines
    assert len(lines) == len(spoken) + 7  # {, info, text, speakers, "segments": [, ], }


def test_webvtt_cue_text_is_escaped():
    """Typed fixes can hold '<', '&' or '-->': unescaped, a VTT reader takes a tag, an entity
    or a timing line from them and loses the rest of the cue."""
    text = render([seg(0, 0.0, "价格3<5元"), seg(1, 3.0, "AT&T"), seg(2, 6.0, "A-->B")], "vtt")
    timing = re.compile(r"\d\d:\d\d:\d\d\.\d{3} --> ")
    lines = text.splitlines()[2:]
    payload = [line for line in lines if line and not line.isdigit() and not timing.match(line)]
    assert payload == ["价格3&lt;5元", "AT&amp;T", "A--&gt;B"]
    assert "3<5" in render([seg(0, 0.0, "价格3<5元")], "srt")  # SRT has no escapes


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_picks_the_format_from_the_suffix(tmp_path, fmt: str):
    path = write(SEGMENTS, tmp_path / f"out.{fmt}", info=INFO)
    assert path.read_text(encoding="utf-8") == render(SEGMENTS, fmt, INFO)
    assert os.listdir(tmp_path) == [f"out.{fmt}"]


def test_bad_format_or_suffix_says_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="choose one of txt, srt, vtt, json"):
        render(SEGMENTS, "docx")
    with pytest.raises(ValueError, match=r"out\.docx.*name the file .*\.json$"):
        write(SEGMENTS, tmp_path / "out.docx")


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    path.write_text("old transcript\n", encoding="utf-8")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        write(SEGMENTS, path)
    assert path.read_text(encoding="utf-8") == "old transcript\n"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_write_all_writes_each_format_by_its_suffix_and_none_when_one_is_no_format(tmp_path):
    """The formats of one transcript go together (the CLI's and the watch folders' writes): a
    suffix that is no format is told before any file is written."""
    paths = [tmp_path / f"out.{fmt}" for fmt in FORMATS]
    with pytest.raises(ValueError, match=r"out\.docx.*name the file"):
        write_all(SEGMENTS, [*paths, tmp_path / "out.docx"], INFO)
    assert os.listdir(tmp_path) == []
    assert write_all(SEGMENTS, paths, INFO) == paths
    for path, fmt in zip(paths, FORMATS, strict=True):
        assert path.read_text(encoding="utf-8") == render(SEGMENTS, fmt, INFO)


def test_the_last_cue_is_not_held_past_the_end_of_the_recording():
    """The last cue is held for reading (min_seconds) but, before, past the recording's end: a
    3-hour file's last cue ended at 03:00:00.807. Held to the end now, never cut short of its
    last character."""
    last = seg(0, 9.0, "好的")  # speech to 9.35 s of a 9.8 s recording
    info = replace(INFO, duration=9.8)
    for fmt in ("srt", "vtt"):
        timing = [line for line in render([last], fmt, info).splitlines() if "-->" in line]
        assert timing[-1].endswith("00:00:09" + ("." if fmt == "vtt" else ",") + "800")
    assert plan_cues([last])[-1].end == pytest.approx(10.0)  # no length given: a second, as before
    # a length before the last character's end was estimated wrong (an MP3's, from its bit
    # rate): ignored. Before, the cue was cut to its characters (0.25 s of 好的 on screen).
    assert plan_cues([last], end=9.2)[-1].end == pytest.approx(10.0)


def test_cues_of_characters_taking_no_time_are_on_screen():
    """Whisper's symbols take no time; with the next cue at the same instant, a cue was
    00:00:01,000 --> 00:00:01,000, which players skip and editors refuse."""
    you, hao = Char("你", 1.0, 1.0, 0.9), Char("好", 1.0, 1.0, 0.9)
    segments = [Segment(0, 1.0, 1.0, (you,)), Segment(1, 1.0, 1.0, (hao,))]
    assert parse_cues(render(segments, "srt")) == [
        (1, 1.0, 1.001, "你"),
        (2, 1.001, 2.001, "好"),
    ]
