from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.audio import write_wav
from engine.errors import MESSAGES
from engine.normalize import NormalizeOptions
from engine.tune.config import TuneConfig
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
from engine.tune.jobs import CHECKPOINT_STATE, check_resumable, examples_digest, resumed_split
from engine.tune.prepare import combine_sources, load_sources, validate_for_model

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


def _clip(path: Path, segment: int) -> Path:
    """A clip of its own sound (the recording's `segment`), as Review cuts one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(segment).standard_normal(16000) * 0.05
    write_wav(path, noise.astype(np.float32))
    return path


def _review_set(folder: Path, segments: Sequence[int]) -> Path:
    """A training set as Review writes one: clips/00000.wav, … by position, and a manifest."""
    rows = [(f"clips/{i:05d}.wav", f"第{s}句") for i, s in enumerate(segments)]
    for (name, _), segment in zip(rows, segments, strict=True):
        _clip(folder / name, segment)
    (folder / "manifest.tsv").write_text(manifest_text(rows), encoding="utf-8")
    return folder


def _sides(train: list[Example], heldout: list[Example]) -> dict[str, bool]:
    """Each clip's text (one per recorded segment) and whether it is held out."""
    return {e.text: False for e in train} | {e.text: True for e in heldout}


def test_split_is_stable_and_keeps_old_rows_in_place(tmp_path):
    examples = [Example(_clip(tmp_path / f"u{i}.wav", i), f"{i}") for i in range(200)]
    train, held = TuneDataset(examples).split(0.1)
    assert 10 <= len(held) <= 30 and len(train) + len(held) == 200
    again_train, again_held = TuneDataset(list(reversed(examples))).split(0.1)
    assert set(again_held) == set(held) and set(again_train) == set(train)
    more = examples + [Example(_clip(tmp_path / f"new{i}.wav", 1000 + i), "地") for i in range(50)]
    _, held_more = TuneDataset(more).split(0.1)
    assert set(held) <= set(held_more)


def test_one_clip_in_two_review_sets_trains_once_on_one_side(tmp_path):
    """Sets made on Monday (segments 0-39) and Tuesday (0-59) of one recording, both named
    clips/00000.wav, …: the 40 shared clips are repeats, never trained and held out at once.
    (Before: split and repeats went by path, and 8 of 11 held-out clips also trained.)"""
    sets = [_review_set(tmp_path / "mon", range(40)), _review_set(tmp_path / "tue", range(60))]
    report = validate(load_sources(sets), None)
    repeats = [f for f in report.findings if f.code == "dataset.row_repeated"]
    assert len(repeats) == 40 and len(report.kept) == 60
    train, heldout = TuneDataset(report.kept).split(0.2)
    assert heldout and not {e.text for e in train} & {e.text for e in heldout}


def test_a_set_rebuilt_or_combined_keeps_every_clip_on_its_side(tmp_path):
    """A tuned base is never scored on its own training clips: a second set added, or the set
    rebuilt with one more (earlier) segment, which renumbers its clips, moves no clip across.
    (Before: 2 of 3, then 4 of 4, of the new held-out clips had trained the first job.)"""
    first = _sides(*load_dataset(_review_set(tmp_path / "mon", range(40))).split(0.2))
    _review_set(tmp_path / "other", range(100, 130))
    combined = _sides(*load_sources([tmp_path / "mon", tmp_path / "other"]).split(0.2))
    rebuilt = _sides(*load_dataset(_review_set(tmp_path / "mon2", [999, *range(40)])).split(0.2))
    assert any(first.values())
    for later in (combined, rebuilt):
        assert {t: later[t] for t in first} == first


def _digests(train: list[Example], heldout: list[Example]) -> dict[str, str]:
    """The rows a checkpoint keeps (as engine.tune.loop's settings do)."""
    return {"train_examples": examples_digest(train), "heldout_examples": examples_digest(heldout)}


def test_a_job_started_before_content_keys_resumes_with_its_own_split(tmp_path):
    """A job whose checkpoint was trained on the split by file name (before content keys)
    still splits so, and resumes; a new job, and one checkpointed since, split by content."""
    sets = [_review_set(tmp_path / "mon", range(40)), _review_set(tmp_path / "tue", range(40, 80))]
    dataset = load_sources(sets)
    kept = TuneDataset(validate(dataset, None).kept)
    old, new = kept.split(0.2, "name"), kept.split(0.2)
    assert _sides(*old) != _sides(*new)
    for split in (old, new):
        out = tmp_path / f"job{len(list(tmp_path.glob('job*')))}"
        step = out / "checkpoints" / "step-10"
        step.mkdir(parents=True)
        settings = _digests(*split)
        (step / CHECKPOINT_STATE).write_text(json.dumps({"settings": settings}), encoding="utf-8")
        config = TuneConfig(model="m", data="d", output_dir=str(out), heldout_fraction=0.2)
        prepared = validate_for_model(dataset, None, config, 0.02, split_by=resumed_split)
        assert (prepared.train, prepared.heldout) == split
        check_resumable(step, _digests(prepared.train, prepared.heldout))
    config = replace(config, output_dir=str(tmp_path / "new"))
    fresh = validate_for_model(dataset, None, config, 0.02, split_by=resumed_split)
    assert (fresh.train, fresh.heldout) == new


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (["content", "name"], "name"),  # the newest checkpoint is the one resumed
        (["name", "{"], "name"),  # its state unreadable: the one before it is resumed
        (["neither"], "content"),  # trained on data since changed: a new job's split
    ],
)
def test_the_split_follows_the_checkpoint_a_job_resumes(tmp_path, states, expected):
    dataset = load_sources([_review_set(tmp_path / "mon", range(40))])
    kept = TuneDataset(validate(dataset, None).kept)
    splits = {"name": kept.split(0.2, "name"), "content": kept.split(0.2)}
    assert _sides(*splits["name"]) != _sides(*splits["content"])
    for step, state in enumerate(states, start=1):
        folder = tmp_path / "job" / "checkpoints" / f"step-{step}0"
        folder.mkdir(parents=True)
        settings = _digests(*splits[state]) if state in splits else {"train_examples": "1 rows [0]"}
        text = json.dumps({"settings": settings}) if state != "{" else state
        (folder / CHECKPOINT_STATE).write_text(text, encoding="utf-8")
    config = TuneConfig(model="m", data="d", output_dir=str(tmp_path / "job"), heldout_fraction=0.2)
    assert resumed_split(kept, config) == expected


@pytest.mark.parametrize("fraction", [0.001, 0.999])
def test_the_small_set_fallback_moves_every_row_of_a_clip(tmp_path, fraction):
    """A clip listed with two transcripts (both train, "conflicting") stays on one side when
    the one held out (or trained) clip is chosen by hand. (Before: one of its rows moved.)"""
    examples = [Example(_clip(tmp_path / f"a{i}.wav", i), t) for i in range(4) for t in "天地"]
    train, heldout = TuneDataset(examples).split(fraction)
    assert len({e.audio for e in (heldout if fraction < 0.5 else train)}) == 1
    assert not {e.audio for e in train} & {e.audio for e in heldout}


def test_a_json_lines_manifest_is_read(tmp_path):
    """HF datasets' and NeMo's JSON lines: audio and text keys, spans as start/end or offset/
    duration; a bad line is named with what to do. (Before: read as a CSV, every row "missing
    audio" with half a JSON object as its path.)"""
    for name in ("a.wav", "clips/b.wav", "c.wav"):
        _wav(tmp_path / name, 2.0)
    lines = [
        '{"audio": "a.wav", "text": "天地"}',
        '{"audio_filepath": "clips/b.wav", "text": "人和", "offset": 0.5, "duration": 1.0}',
        '{"path": "%s", "sentence": "天", "start": 0, "end": 1.5}' % (tmp_path / "c.wav"),
        '{"audio": {"path": "c.wav"}, "transcript": "地"}',
        "",
        '{"audio": "a.wav", "text": ',
        '{"wav": "a.wav", "label": "天"}',
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ds = load_dataset(tmp_path / "m.jsonl")
    assert [(e.audio, e.text, e.start, e.end) for e in ds.examples] == [
        (tmp_path / "a.wav", "天地", None, None),
        (tmp_path / "clips" / "b.wav", "人和", 0.5, 1.5),
        (tmp_path / "c.wav", "天", 0.0, 1.5),
        (tmp_path / "c.wav", "地", None, None),
    ]
    bad = {f.origin: f for f in ds.import_problems}
    assert set(bad) == {"m.jsonl:6", "m.jsonl:7"}
    assert (
        bad["m.jsonl:6"].code == "dataset.row_bad_json"
        and "one object per line" in bad["m.jsonl:6"].detail
    )
    assert (
        bad["m.jsonl:7"].code == "dataset.row_json_keys" and "wav, label" in bad["m.jsonl:7"].detail
    )
    assert validate(ds, VOCAB).total == 6


def test_a_json_lines_row_says_which_key_is_wrong_and_reads_quoted_times(tmp_path):
    """Old: {"text": 123} was "no audio or text key (the line has audio, text)", and
    "start": "0.5" was "not a time in seconds" although a TSV reads that text. Now the message
    names the key and its value; a number in quotes is a time, as in a TSV."""
    _wav(tmp_path / "a.wav", 2.0)
    lines = [
        '{"audio": "a.wav", "text": 123}',
        '{"audio": "a.wav", "text": "天", "start": "0.5", "end": " 1.5 "}',
        '{"audio": 7, "text": "天"}',
        '{"audio": "a.wav", "text": "天", "start": "soon", "end": 1}',
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ds = load_dataset(tmp_path / "m.jsonl")
    assert [(e.origin, e.start, e.end) for e in ds.examples] == [("m.jsonl:2", 0.5, 1.5)]
    bad = {f.origin: f for f in ds.import_problems}
    assert (bad["m.jsonl:1"].code, bad["m.jsonl:1"].detail) == (
        "dataset.row_json_not_a_string",
        '"text" is 123, not a string; write it in quotes, e.g. "text": "…"',
    )
    assert bad["m.jsonl:3"].params["key"] == "audio" and "clips/a.wav" in bad["m.jsonl:3"].detail
    assert (bad["m.jsonl:4"].code, bad["m.jsonl:4"].params) == (
        "dataset.row_bad_time",
        {"value": "soon"},
    )


def test_a_common_voice_json_line_uses_the_path_that_exists(tmp_path):
    """HF's Common Voice export names each clip as a bare file name in its Audio feature and as
    an absolute path beside it: the file is where the absolute path says, not beside the
    manifest (old: every row "does not exist"). Where the bare name is the one that exists,
    it is used."""
    clip = _wav(tmp_path / "cache" / "clips" / "cv_1.wav", 1.0)
    beside = _wav(tmp_path / "data" / "cv_2.wav", 1.0)
    lines = [
        json.dumps({"audio": {"path": "cv_1.wav", "array": None}, "path": str(clip), "text": "天"}),
        json.dumps({"audio": {"path": "cv_2.wav"}, "path": "/gone/cv_2.wav", "text": "地"}),
        json.dumps({"audio": {"path": "cv_3.wav"}, "path": "/gone/cv_3.wav", "text": "人"}),
    ]
    manifest = tmp_path / "data" / "m.jsonl"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ds = load_dataset(manifest)
    assert [e.audio for e in ds.examples] == [clip, beside, tmp_path / "data" / "cv_3.wav"]


def test_a_job_on_several_sources_lists_the_rows_they_could_not_import(tmp_path):
    """The job's data.tsv keeps what the check left out (an audio without its .txt), so the
    job's table says 5 of 6 as the check did. (Before: 5 of 5.)"""
    for i in range(6):
        _clip(tmp_path / "fg"[i % 2] / f"{i}.wav", i)
        if i > 1:
            (tmp_path / "fg"[i % 2] / f"{i}.txt").write_text("天", encoding="utf-8")
    _review_set(tmp_path / "s", range(10, 13))
    sources = [tmp_path / "f", tmp_path / "g", tmp_path / "s"]
    check = validate(load_sources(sources), None)
    job = validate(load_dataset(combine_sources(sources, tmp_path / "job" / "data.tsv")), None)
    assert (
        (len(job.kept), job.total, job.left_out) == (len(check.kept), check.total, 2) == (7, 9, 2)
    )
    assert [f.origin for f in job.findings] == [f.origin for f in check.findings]


def test_a_json_lines_path_or_time_of_the_wrong_kind_is_a_problem(tmp_path):
    """An empty audio path named the manifest's folder, and "start": true read as 1.0 s."""
    _wav(tmp_path / "a.wav", 2.0)
    lines = ['{"audio": "", "text": "天"}', '{"audio": "a.wav", "text": "地", "start": true}']
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ds = load_dataset(tmp_path / "m.jsonl")
    assert ds.examples == []
    assert [f.code for f in ds.import_problems] == [
        "dataset.row_json_not_a_string",
        "dataset.row_bad_time",
    ]


def test_a_clip_is_known_by_its_sound_small_or_rewritten(tmp_path):
    """Copies of a short clip (under the sampled size) share a content key; a clip rewritten in
    place with other sound of the same length gets a new one."""
    a, b = _wav(tmp_path / "a.wav", 0.5), tmp_path / "b.wav"
    b.write_bytes(a.read_bytes())
    key = Example(a, "天").content_key
    assert key is not None and Example(b, "天").content_key == key
    write_wav(a, np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1)
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 10**9))
    assert a.stat().st_size == b.stat().st_size and Example(a, "天").content_key != key


def test_a_larger_held_out_fraction_only_moves_rows_out_of_training(tmp_path):
    """Where every clip would be held out, the one kept for training is the one a slightly
    smaller fraction trains, so raising the fraction never moves a row back into training."""
    examples = [Example(_clip(tmp_path / f"a{i}.wav", i), "天") for i in range(6)]
    trains = [{e.audio for e in TuneDataset(examples).split(f)[0]} for f in (0.001, 0.5, 0.999)]
    assert trains[0] >= trains[1] >= trains[2] and len(trains[2]) == 1


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
        f"data {tmp_path / 'nowhere.tsv'} does not exist; "
        "give a manifest (.tsv, .csv or .jsonl) or a folder"
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


def test_a_long_recording_is_told_apart_by_more_than_its_ends(tmp_path):
    """Two recordings of one length whose first and last seconds are the same digital silence
    are different rows; a copy under another name is the same one."""
    from engine.tune import data as data_mod

    quiet = bytes(100_000)  # the first and last 16 KiB read are all silence
    a, b, copy = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "copy.wav"
    a.write_bytes(quiet + b"\x01" * 200_000 + quiet)
    b.write_bytes(quiet + b"\x02" * 200_000 + quiet)
    copy.write_bytes(a.read_bytes())
    prints = [data_mod._fingerprint(p) for p in (a, b, copy)]
    assert prints[0] != prints[1] and prints[0] == prints[2]


def test_clips_are_fingerprinted_by_a_bounded_read_once_per_run(tmp_path, monkeypatch):
    """Old: every clip up to 4 MiB was read whole (a 100-hour WAV dataset: ~11.5 GB per
    check), by an LRU of 131 072 entries that a bigger corpus (AISHELL-1: 141 k clips), walked
    in order by each pass, never hit. Now a clip is read ~48 KiB whatever its length, and a
    second pass over the dataset opens no file."""
    from engine.tune import data as data_mod

    rng = np.random.default_rng(0)
    clips = [tmp_path / f"{i}.wav" for i in range(6)]
    for clip in clips:
        clip.write_bytes(rng.bytes(1 << 20))
    opened, read = [], []

    class Counted:
        def __init__(self, path, mode):
            opened.append(path)
            self.file = open(path, mode)  # noqa: SIM115 - closed by __exit__

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def read(self, *size):
            data = self.file.read(*size)
            read.append(len(data))
            return data

        def seek(self, *where):
            return self.file.seek(*where)

    monkeypatch.setattr(data_mod, "open", Counted, raising=False)
    data_mod._fingerprint_of.cache_clear()
    ds = TuneDataset([Example(clip, "天") for clip in clips])
    first = ds.split(0.5)
    assert len(opened) == len(clips) and sum(read) <= len(clips) * (48 << 10)
    assert ds.split(0.5) == first and len(opened) == len(clips)
    assert data_mod._fingerprint_of.cache_parameters()["maxsize"] >= 1 << 20
