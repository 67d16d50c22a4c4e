from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.audio import write_wav
from engine.errors import MESSAGES
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
    manifest_text,
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


def test_a_tsv_quote_is_text_and_never_joins_rows(tmp_path):
    """A transcript may begin with a quote that closes in a later row (a quoted speech split
    across clips). In a TSV, as Common Voice writes them, a quote is text: each line is one
    row. (Before: read with CSV quoting, the rows in between were merged into one text.)"""
    rows = 'a.wav\t"今天\nb.wav\t然后"他说\nc.wav\t明天见\n'
    m = tmp_path / "m.tsv"
    m.write_text(f"path\ttext\n{rows}", encoding="utf-8")
    ds = from_manifest(m)
    assert [(e.audio.name, e.text, e.origin) for e in ds.examples] == [
        ("a.wav", '"今天', "m.tsv:2"),
        ("b.wav", '然后"他说', "m.tsv:3"),
        ("c.wav", "明天见", "m.tsv:4"),
    ]
    assert ds.import_problems == []
    cv = tmp_path / "cv"
    (cv / "clips").mkdir(parents=True)
    (cv / "train.tsv").write_text(
        "client_id\tpath\tsentence\n" + "".join(f"x\t{row}" for row in rows.splitlines(True)),
        encoding="utf-8",
    )
    assert [e.text for e in from_common_voice(cv).examples] == ['"今天', '然后"他说', "明天见"]


def test_a_csv_quote_that_closes_on_a_later_line_is_reported_not_merged(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text(
        'path,text\na.wav,"今天\nb.wav,然后"他说\nc.wav,明天见\nd.wav,"他说,""好"""\n',
        encoding="utf-8",
    )
    ds = from_manifest(m)
    assert [(e.audio.name, e.text, e.origin) for e in ds.examples] == [
        ("c.wav", "明天见", "m.csv:4"),  # numbered by its line, not by the rows before it
        ("d.wav", '他说,"好"', "m.csv:5"),  # quoted as CSV quotes: read as meant
    ]
    (problem,) = ds.import_problems
    assert (problem.origin, problem.kind) == ("m.csv:2", "bad_row")
    assert "closes only on line 3" in problem.detail and "stray quote" in problem.detail


def test_a_written_manifest_reads_back_cell_for_cell(tmp_path):
    """What the app writes (Review's training sets, a job's combined sources) reads back as it
    was: a quote, a backslash, U+2028 and other characters `str.splitlines` breaks at. (Before:
    a text holding U+2028 was cut there, and its rest reported on a line the file lacks.)"""
    texts = ["今天很好\u2028我们去公园", '"他说"你好', "甲\x85乙\x0c丙\x1e丁", "C:\\路径", "“引号”"]
    m = tmp_path / "m.tsv"
    m.write_text(manifest_text((f"{i}.wav", t) for i, t in enumerate(texts)), encoding="utf-8")
    ds = from_manifest(m)
    assert [e.text for e in ds.examples] == texts and ds.import_problems == []
    assert [e.origin for e in ds.examples] == [f"m.tsv:{i + 2}" for i in range(len(texts))]
    m.write_text(manifest_text([("a.wav", "天\t地\n人")]), encoding="utf-8")
    assert [e.text for e in from_manifest(m).examples] == ["天 地 人"]  # no TSV cell holds them


def test_a_comma_in_a_csv_text_is_reported_unless_the_text_is_quoted(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text(
        'path,text\na.wav,好的,我们明天去北京\nb.wav,"好的,我们"\nc.wav,你好,\n', encoding="utf-8"
    )
    ds = from_manifest(m)
    assert [e.text for e in ds.examples] == ["好的,我们", "你好"]  # an empty cell after: fine
    (problem,) = ds.import_problems
    assert (problem.origin, problem.kind) == ("m.csv:2", "bad_row")
    assert "3 columns where 2 are expected" in problem.detail and "double quotes" in problem.detail


def test_a_header_without_a_text_column_says_what_it_has_and_what_it_needs(tmp_path):
    """(Before: a Common Voice train.tsv whose text column is `sentence_zh` was read as rows
    of data, and every row reported as "'你好' is not a time in seconds".)"""
    cv = tmp_path / "cv"
    _wav(cv / "clips" / "a.wav", 1.0)
    (cv / "train.tsv").write_text(
        "client_id\tpath\tsentence_zh\tup_votes\nc\ta.wav\t你好\t2\n", encoding="utf-8"
    )
    with pytest.raises(DatasetError) as found:
        load_dataset(cv)
    message = str(found.value)
    assert str(cv / "train.tsv") in message
    assert "client_id, path, sentence_zh, up_votes" in message
    assert "transcript (text, sentence" in message and "audio path" not in message
    m = tmp_path / "m.csv"
    m.write_text("audio_file,text\na.wav,天\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"none for the audio path \(path, audio"):
        from_manifest(m)


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


def test_a_byte_order_mark_or_zero_width_character_never_reaches_training(tmp_path):
    """Windows Notepad saves "UTF-8 with BOM"; text pasted from web pages holds zero-width
    spaces. (Before: such a row was skipped as "not in vocabulary: \ufeff", or with
    extend_vocab the invisible character joined the vocabulary.)"""
    _wav(tmp_path / "a.wav", 1.0)
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbf" + "天地".encode())
    assert [e.text for e in from_folder(tmp_path).examples] == ["天地"]
    pasted = TuneDataset([Example(tmp_path / "a.wav", "\ufeff天\u200b地\u200d人\u2060")])
    assert pasted.normalized(NormalizeOptions()).examples[0].text == "天地人"
    none = NormalizeOptions(False, False, False, False, False)
    assert pasted.normalized(none).examples[0].text == "天地人"


def test_same_named_files_in_two_folders_keep_their_own_durations(tmp_path):
    """Review writes each training set as clips/00000.wav, …: two sets checked together.
    (Before: durations were kept by file name, so one set's counted for both.)"""
    short = _wav(tmp_path / "a" / "clips" / "00000.wav", 1.0)
    long = _wav(tmp_path / "b" / "clips" / "00000.wav", 3.0)
    report = validate(TuneDataset([Example(short, "天"), Example(long, "地")]), VOCAB)
    assert report.kept_seconds == pytest.approx(4.0, abs=0.01)
    assert sorted(report.durations.values()) == pytest.approx([1.0, 3.0], abs=0.01)
    # the held-out side is still the file name's: moving the data moves no row across
    here = [Example(tmp_path / "x" / f"{i:05d}.wav", "天") for i in range(100)]
    there = [Example(tmp_path / "y" / e.audio.name, "天") for e in here]
    names = [{e.audio.name for e in TuneDataset(d).split(0.2)[1]} for d in (here, there)]
    assert names[0] == names[1]


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


def test_findings_and_dataset_errors_carry_a_code_to_word_them_by(messy, tmp_path):
    """Old: a finding's detail and a DatasetError were English text only ('transcript is empty',
    '0.10 s < 0.3 s', 'data … does not exist; …'), shown so in the Chinese UI. Each now carries
    an engine.errors code and its parameters; its English (the CLI's table) reads as before."""
    report = validate(messy, VOCAB, ValidationOptions(min_seconds=0.3, max_seconds=2.0))
    for f in report.findings:
        assert f.code in MESSAGES and MESSAGES[f.code].format(**f.params) == f.detail, f
    found = {f.origin: f for f in report.findings}
    assert found["m.tsv:3"].detail == f"{tmp_path / 'missing.wav'} does not exist"
    assert found["m.tsv:3"].params == {"path": tmp_path / "missing.wav"}
    assert found["m.tsv:4"].code.startswith("audio.")  # the audio module's own error
    assert (found["m.tsv:5"].code, found["m.tsv:5"].detail) == (
        "dataset.row_empty_text",
        "transcript is empty",
    )
    short = found["m.tsv:6"]
    assert short.detail == "0.10 s < 0.3 s" and short.code == "dataset.row_too_short"
    assert short.params["limit"] == 0.3 and short.params["seconds"] == pytest.approx(0.1)
    assert found["m.tsv:9"].params == {"chars": "龙"}
    manifest = tmp_path / "m.tsv"
    manifest.write_text("path\ttext\tstart\tend\na.wav\t天\tsoon\t\n", encoding="utf-8")
    (bad,) = from_manifest(manifest).import_problems
    assert (bad.code, bad.params, bad.detail) == (
        "dataset.row_bad_time",
        {"value": "soon"},
        "'soon' is not a time in seconds",
    )
    with pytest.raises(DatasetError) as error:
        load_dataset(tmp_path / "nowhere.tsv")
    assert error.value.code == "dataset.source_missing"
    assert error.value.params == {"source": tmp_path / "nowhere.tsv"}
    assert str(error.value) == (
        f"data {tmp_path / 'nowhere.tsv'} does not exist; give a manifest (.tsv/.csv) or a folder"
    )


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
