"""OpenCC script conversion on display and export, never on the stored original."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.library.review import EditOp
from engine.library.script import convert_segments, convert_text, export
from engine.library.store import Store
from engine.results import Alternative, Char, Segment


def segment(text: str) -> Segment:
    chars = tuple(
        Char(t, 0.2 * i, 0.2 * i + 0.1, 0.5, (Alternative("发", 0.2),)) for i, t in enumerate(text)
    )
    return Segment(0, 0.0, 0.2 * len(text), chars)


def test_convert_text_both_ways_and_by_phrase():
    assert convert_text("头发发展", "traditional") == "頭髮發展"
    assert convert_text("頭髮發展", "simplified") == "头发发展"
    assert convert_text("软件", "taiwan") == "軟件"
    assert convert_text("头发", "original") == "头发"
    with pytest.raises(ValueError, match="script"):
        convert_text("头发", "klingon")  # type: ignore[arg-type]


def test_convert_segments_keeps_times_and_leaves_input_alone():
    seg = segment("头发很长")
    (out,) = convert_segments([seg], "traditional")
    assert out.text == "頭髮很長"
    assert [(c.start, c.end, c.confidence) for c in out.chars] == [
        (c.start, c.end, c.confidence) for c in seg.chars
    ]
    assert out.chars[0].alternatives == (Alternative("發", 0.2),)
    assert seg.text == "头发很长"
    assert convert_segments([seg], "original") == [seg]


def test_alternatives_that_convert_alike_are_shown_once_and_never_as_the_chosen_character():
    chars = (
        Char("于", 0.0, 0.2, 0.55, (Alternative("於", 0.3), Alternative("鱼", 0.05))),
        Char("着", 0.2, 0.4, 0.5, (Alternative("于", 0.2), Alternative("於", 0.1))),
    )
    for script in ("traditional", "taiwan", "hongkong"):
        (out,) = convert_segments([Segment(0, 0.0, 0.4, chars)], script)
        first, second = out.chars
        assert first.text == "於" and first.alternatives == (Alternative("魚", 0.05),), script
        # 于 and 於 both read 於: one alternative with both posteriors
        assert [a.text for a in second.alternatives] == ["於"], script
        assert second.alternatives[0].prob == pytest.approx(0.3), script


def test_export_writes_edited_text_in_traditional(tmp_path: Path):
    with Store(tmp_path / "t.db") as db:
        tid = db.add_transcript([segment("头发很短")])
        db.add_edit(tid, EditOp(0, 3, 4, "长", "fix"))
        edited = db.segments(tid)
        for fmt in ("txt", "srt", "vtt", "json"):
            path = export(edited, tmp_path / f"out.{fmt}", script="traditional")
            text = path.read_text(encoding="utf-8")
            if fmt == "json":
                text = json.dumps(json.loads(text), ensure_ascii=False)
            assert "頭髮很長" in text, fmt
            assert "短" not in text and "头" not in text, fmt
        assert db.segments(tid)[0].text == "头发很长"  # the store keeps the original script


@pytest.mark.parametrize("fmt", ["txt", "vtt", "json"])
def test_speaker_labels_are_written_in_the_chosen_script(tmp_path: Path, fmt):
    """The characters were converted and the default labels stayed Simplified (说话人 1：這個)."""
    from dataclasses import replace

    from engine.library.script import render

    segs = [replace(segment("这个问题"), speaker=0), replace(segment("说话"), id=1, speaker=1)]
    names = {1: "王医生"}
    for text in (
        render(segs, fmt, script="traditional", speakers=names),
        export(segs, tmp_path / f"out.{fmt}", script="traditional", speakers=names).read_text(
            encoding="utf-8"
        ),
    ):
        if fmt == "json":
            text = json.dumps(json.loads(text), ensure_ascii=False)
        assert "說話人 1" in text and "王醫生" in text, text
        assert "说话人" not in text and "医" not in text, text
    original = render(segs, fmt, speakers=names)
    if fmt == "json":
        original = json.dumps(json.loads(original), ensure_ascii=False)
    assert "说话人 1" in original and "王医生" in original
