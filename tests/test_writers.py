"""Writers: every format renders the segments faithfully; SRT/VTT parse back to the times."""

from __future__ import annotations

import json
import os
import re

import pytest

from engine.results import Alternative, Char, Segment, TranscriptionInfo
from engine.writers import FORMATS, render, split_cues, timestamp, write

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
    expected = split_cues(SEGMENTS)
    assert [n for n, *_ in cues] == list(range(1, len(expected) + 1))
    for (_, start, end, body), chars in zip(cues, expected, strict=True):
        assert start == pytest.approx(chars[0].start, abs=5e-4)
        assert end == pytest.approx(chars[-1].end, abs=5e-4)
        assert body.replace("\n", "") == "".join(c.text for c in chars)
        assert all(len(line) <= 16 for line in body.split("\n"))
    assert "".join(b.replace("\n", "") for *_, b in cues) == "".join(s.text for s in SEGMENTS)
    assert cues[-1][1] == pytest.approx(3723.456)


def test_cues_are_cut_at_max_length_and_duration():
    cues = split_cues(SEGMENTS, max_seconds=2.0, max_chars=5)
    assert all(len(c) <= 5 and c[-1].end - c[0].start <= 2.0 for c in cues)
    # never across segments
    assert [len(c) for c in cues[:2]] == [4, 5]
    long_cues = split_cues([SEGMENTS[1]])
    assert [len(c) for c in long_cues] == [28, 4]  # 7 s at 0.25 s per character


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
    }
    assert "你好" in render(SEGMENTS, "json")  # not \\u-escaped


def test_empty_transcripts_are_valid():
    assert render([], "txt") == "" and render([], "srt") == ""
    assert render([], "vtt").startswith("WEBVTT")
    assert json.loads(render([], "json"))["segments"] == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_picks_the_format_from_the_suffix(tmp_path, fmt: str):
    path = write(SEGMENTS, tmp_path / f"out.{fmt}", info=INFO)
    assert path.read_text(encoding="utf-8") == render(SEGMENTS, fmt, INFO)
    assert os.listdir(tmp_path) == [f"out.{fmt}"]


def test_bad_format_or_suffix_says_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="choose one of txt, srt, vtt, json"):
        render(SEGMENTS, "docx")
    with pytest.raises(ValueError, match=r"out\.docx.*pass fmt"):
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
