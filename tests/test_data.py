from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.audio import write_wav
from engine.normalize import NormalizeOptions
from engine.tune.data import (
    DatasetError,
    Example,
    TuneDataset,
    ValidationOptions,
    ctc_frames_needed,
    from_common_voice,
    from_folder,
    from_manifest,
    from_pairs,
    load_dataset,
    load_example_audio,
    validate,
)

VOCAB = list("天地人和")


def _wav(path: Path, seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * 16000)) / 16000
    write_wav(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    return path


def test_manifest_tsv_with_header_spans_and_relative_paths(tmp_path):
    _wav(tmp_path / "clips" / "a.wav", 2.0)
    m = tmp_path / "m.tsv"
    m.write_text(
        "path\ttext\tstart\tend\nclips/a.wav\t天地\t0.5\t1.5\nclips/a.wav\t人和\t\t\n",
        encoding="utf-8",
    )
    ds = from_manifest(m)
    assert [e.text for e in ds.examples] == ["天地", "人和"]
    first, second = ds.examples
    assert first.audio == tmp_path / "clips" / "a.wav"
    assert (first.start, first.end) == (0.5, 1.5)
    assert second.start is None
    assert first.origin == "m.tsv:2"
    assert len(load_example_audio(first)) == pytest.approx(16000, abs=2)
    assert len(load_example_audio(second)) == pytest.approx(32000, abs=2)


def test_manifest_csv_without_header_and_bad_rows(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text(f"{tmp_path / 'x.wav'},天地\nonly-one-column\ny.wav,人,2,1\n", encoding="utf-8")
    ds = from_manifest(m)
    assert [e.audio.name for e in ds.examples] == ["x.wav"]
    assert ds.examples[0].audio == tmp_path / "x.wav"  # absolute stays absolute
    assert [(p.origin, p.kind) for p in ds.import_problems] == [
        ("m.csv:2", "bad_row"),
        ("m.csv:3", "bad_row"),
    ]


def test_manifest_accepts_common_column_names(tmp_path):
    m = tmp_path / "m.tsv"
    m.write_text("file\tduration\ttext_for_scoring\na.wav\t1.0\t天\n", encoding="utf-8")
    assert from_manifest(m).examples[0].text == "天"


def test_folder_of_audio_and_transcripts(tmp_path):
    _wav(tmp_path / "s" / "one.wav", 1.0)
    (tmp_path / "s" / "one.txt").write_text("天地\n", encoding="utf-8")
    _wav(tmp_path / "s" / "sub" / "two.flac".replace(".flac", ".wav"), 1.0)
    (tmp_path / "s" / "sub" / "two.txt").write_text("人", encoding="utf-8")
    _wav(tmp_path / "s" / "orphan.wav", 1.0)
    ds = from_folder(tmp_path / "s")
    assert sorted(e.text for e in ds.examples) == ["人", "天地"]
    assert [p.kind for p in ds.import_problems] == ["bad_row"]
    assert "orphan" in ds.import_problems[0].origin
    assert load_dataset(tmp_path / "s").examples == ds.examples


def test_common_voice_layout(tmp_path):
    cv = tmp_path / "cv"
    _wav(cv / "clips" / "common_voice_zh-CN_1.wav", 1.0)
    (cv / "train.tsv").write_text(
        "client_id\tpath\tsentence\tup_votes\nabc\tcommon_voice_zh-CN_1.wav\t天地人\t2\n",
        encoding="utf-8",
    )
    ds = from_common_voice(cv)
    assert ds.examples[0].audio == cv / "clips" / "common_voice_zh-CN_1.wav"
    assert ds.examples[0].text == "天地人"
    assert load_dataset(cv).examples == ds.examples
    with pytest.raises(DatasetError, match="Common Voice"):
        from_common_voice(tmp_path)


def test_pairs_from_the_app(tmp_path):
    audio = _wav(tmp_path / "r.wav", 3.0)
    ds = from_pairs(
        [(audio, 0.0, 1.0, "天"), (audio, 2.0, 1.0, "地"), (str(audio), None, None, "人")]
    )
    assert [e.text for e in ds.examples] == ["天", "人"]
    assert ds.import_problems[0].origin == "pairs#2"


def test_split_is_stable_and_keeps_old_rows_in_place(tmp_path):
    examples = [Example(tmp_path / f"u{i}.wav", "天") for i in range(200)]
    train, held = TuneDataset(examples).split(0.1)
    assert 10 <= len(held) <= 30 and len(train) + len(held) == 200
    again_train, again_held = TuneDataset(list(reversed(examples))).split(0.1)
    assert set(again_held) == set(held) and set(again_train) == set(train)
    more = examples + [Example(tmp_path / f"new{i}.wav", "地") for i in range(50)]
    _, held_more = TuneDataset(more).split(0.1)
    assert set(held) <= set(held_more)


def test_split_keeps_one_example_on_each_side(tmp_path):
    two = [Example(tmp_path / "a.wav", "天"), Example(tmp_path / "b.wav", "地")]
    train, held = TuneDataset(two).split(0.01)
    assert len(train) == 1 and len(held) == 1
    train, held = TuneDataset(two).split(0.0)
    assert len(train) == 2 and held == []


def test_ctc_frames_needed_counts_repeats():
    assert ctc_frames_needed("天地") == 2
    assert ctc_frames_needed("天天地地地") == 8


@pytest.fixture
def messy(tmp_path) -> TuneDataset:
    good = _wav(tmp_path / "good.wav", 1.0)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    rows = [
        (good, "天地"),
        (tmp_path / "missing.wav", "天"),
        (bad, "天"),
        (_wav(tmp_path / "empty.wav", 1.0), ""),
        (_wav(tmp_path / "short.wav", 0.1), "天"),
        (_wav(tmp_path / "long.wav", 3.0), "天"),
        (_wav(tmp_path / "dense.wav", 0.32), "天地人和" * 5),
        (_wav(tmp_path / "oov.wav", 1.0), "天龙"),
        (_wav(tmp_path / "oov2.wav", 1.0), "龙凤"),
    ]
    return TuneDataset([Example(p, t, origin=f"m.tsv:{i + 2}") for i, (p, t) in enumerate(rows)])


def test_validation_finds_every_problem(messy):
    report = validate(messy, VOCAB, ValidationOptions(min_seconds=0.3, max_seconds=2.0))
    kinds = {f.origin: f.kind for f in report.findings}
    assert kinds == {
        "m.tsv:3": "missing_audio",
        "m.tsv:4": "unreadable_audio",
        "m.tsv:5": "empty_text",
        "m.tsv:6": "too_short",
        "m.tsv:7": "too_long",
        "m.tsv:8": "text_too_long",
        "m.tsv:9": "unknown_chars",
        "m.tsv:10": "unknown_chars",
    }
    assert [e.origin for e in report.kept] == ["m.tsv:2"]
    assert report.unknown_chars == {"龙": 2, "凤": 1}
    assert report.unknown_examples["龙"] == ["m.tsv:9", "m.tsv:10"]
    table = report.table()
    assert "1 of 9 rows usable" in table and "龙×2" in table and "missing_audio" in table


def test_new_characters_can_be_kept(messy):
    report = validate(messy, VOCAB, ValidationOptions(allow_new_chars=True, max_seconds=2.0))
    assert {e.origin for e in report.kept} == {"m.tsv:2", "m.tsv:9", "m.tsv:10"}
    assert all(not f.skipped for f in report.findings if f.kind == "unknown_chars")


def test_nothing_usable_is_fatal(tmp_path):
    ds = TuneDataset([Example(tmp_path / "gone.wav", "天")], source="m.tsv")
    with pytest.raises(DatasetError, match="none of 1 rows"):
        validate(ds, VOCAB)


def test_normalized_dataset_rewrites_text(tmp_path):
    ds = TuneDataset([Example(tmp_path / "a.wav", "天，地！ 人")])
    assert ds.normalized(NormalizeOptions()).examples[0].text == "天地人"
    assert ds.examples[0].text == "天，地！ 人"  # the original is untouched
