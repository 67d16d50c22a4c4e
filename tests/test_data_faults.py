"""Tuning data faults found by a bug hunt: each test names what the importers or the check did
before. No model runs; the data check reads the demo model's vocabulary only."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from engine.audio import write_wav
from engine.normalize import NormalizeOptions
from engine.tune.config import TuneConfig
from engine.tune.data import (
    DatasetError,
    Example,
    TuneDataset,
    from_folder,
    from_manifest,
    load_dataset,
    manifest_text,
    validate,
)
from engine.tune.prepare import check_data, source_kind, validate_for_model

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "resources" / "demo-model"


def _wav(path: Path, seconds: float = 1.0, seed: int | None = None) -> Path:
    """A tone with its own noise: each file its own clip (a clip's content decides its train /
    held-out side), seeded by `seed` or by the path's last folders (never pytest's run
    folder), so the same on every run and machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * 16000)) / 16000
    if seed is None:
        seed = zlib.crc32(
            "/".join(p for p in path.parts[-3:] if not p.startswith("pytest-")).encode()
        )
    noise = np.random.default_rng(seed).standard_normal(len(t))
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * noise  # each file its own clip
    write_wav(path, tone.astype(np.float32))
    return path


def _config(**overrides) -> TuneConfig:
    return TuneConfig(model=str(DEMO), data="", output_dir="", **overrides)


# ---- 1: numbers never change their value in normalization -----------------------------------


def test_a_number_whose_digits_normalization_would_join_is_left_out_and_named(tmp_path):
    """(Before: 每次服用2.5毫克 trained as 每次服用25毫克, 血压120/80 as 血压12080, 下午3:30 as
    下午330, with no finding.) A thousands comma keeps the value and trains."""
    texts = ["每次服用2.5毫克", "血压120/80", "下午３：３０复查", "每日1,000毫升", "天地"]
    examples = [
        Example(_wav(tmp_path / f"{i}.wav", 3.0), t, origin=f"m.tsv:{i + 2}")
        for i, t in enumerate(texts)
    ]
    prepared = validate_for_model(TuneDataset(examples), None, _config(heldout_fraction=0.0), None)
    assert sorted(e.text for e in prepared.train) == ["天地", "每日1000毫升"]
    joined = {f.origin: f for f in prepared.report.findings}
    assert sorted(joined) == ["m.tsv:2", "m.tsv:3", "m.tsv:4"]
    first = joined["m.tsv:2"]
    assert first.skipped and first.code == "dataset.row_number_joined"
    assert "2.5" in first.detail and "25" in first.detail and "spoken" in first.detail
    assert "120/80" in joined["m.tsv:3"].detail
    assert prepared.report.total == 5 and len(prepared.report.kept) == 2
    # where punctuation stays, the number stays as written: nothing to leave out
    keep = NormalizeOptions(remove_punctuation=False)
    assert TuneDataset(examples[:1]).normalized(keep).import_problems == []


# ---- 4: the held-out split of same-named files ------------------------------------------------


def test_same_named_files_in_sub_folders_are_split_by_heldout_fraction(tmp_path):
    """One sub-folder per utterance, each holding audio.wav + audio.txt. (Before: every row
    hashed the same name, so all but one landed on one side whatever heldout_fraction was.)"""
    for i in range(40):
        _wav(tmp_path / f"utt{i:03d}" / "audio.wav", 0.5)
        (tmp_path / f"utt{i:03d}" / "audio.txt").write_text("天地", encoding="utf-8")
    dataset = from_folder(tmp_path)
    train, held = dataset.split(0.5)
    assert 8 <= len(held) <= 32 and len(train) + len(held) == 40
    # rows whose name no other row has keep the side the name gave them
    alone = [Example(tmp_path / "x" / f"u{i}.wav", "天") for i in range(100)]
    _, held_alone = TuneDataset(alone).split(0.2)
    _, held_mixed = TuneDataset(alone + dataset.examples).split(0.2)
    assert set(held_alone) == {e for e in held_mixed if e in alone}


# ---- 5: audio load_audio reads but the folder importer did not list ---------------------------


def _wma(path: Path, seconds: float = 1.0) -> Path:
    import av

    with av.open(str(path), "w", format="asf") as out:
        stream = out.add_stream("wmav2", rate=16000)
        stream.layout, stream.bit_rate = "mono", 32000
        t = np.arange(int(16000 * seconds)) / 16000
        hz = 300 + zlib.crc32(str(path).encode()) % 500  # each file its own clip
        frame = av.AudioFrame.from_ndarray(
            (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)[None, :],
            format="fltp",
            layout="mono",
        )
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path


def test_a_folder_of_wma_recordings_with_transcripts_trains(tmp_path):
    """(Before: the folder found nothing and said "none of 0 rows is usable ()".) A transcript
    with no recording beside it is a row that says so."""
    for i in range(2):
        _wma(tmp_path / f"会诊 {i}.wma")
        (tmp_path / f"会诊 {i}.txt").write_text("天地", encoding="utf-8")
    (tmp_path / "lonely.txt").write_text("人和", encoding="utf-8")
    dataset = from_folder(tmp_path)
    assert sorted(e.audio.name for e in dataset.examples) == ["会诊 0.wma", "会诊 1.wma"]
    (problem,) = dataset.import_problems
    assert problem.origin == str(tmp_path / "lonely.txt") and "lonely" in problem.detail
    report = validate(dataset, None)
    assert len(report.kept) == 2 and report.total == 3


# ---- 6: a training-set folder, and Common Voice .tsv files picked as manifests ----------------


def test_a_training_set_folder_is_read_as_its_manifest(tmp_path):
    """Review writes clips/*.wav + manifest.tsv. (Before: the folder was read as audio + .txt and
    every clip reported "no transcript 00000.txt beside it".)"""
    folder = tmp_path / "clinic-notes"
    rows = [(f"clips/{i:05d}.wav", "天地") for i in range(3)]
    for name, _ in rows:
        _wav(folder / name)
    (folder / "manifest.tsv").write_text(manifest_text(rows), encoding="utf-8")
    assert source_kind(folder) == "manifest"
    assert load_dataset(folder).examples == from_manifest(folder / "manifest.tsv").examples
    assert len(validate(load_dataset(folder), None).kept) == 3


def test_a_common_voice_tsv_picked_as_a_manifest_finds_its_clips(tmp_path):
    """(Before: train.tsv or validated.tsv picked as a manifest looked for each clip beside
    itself, and every row was "missing audio"; the folder without train.tsv was read as audio +
    .txt.)"""
    cv = tmp_path / "cv"
    rows = "".join(f"c{i}\tcommon_voice_zh-CN_{i}.wav\t天地人\t2\t0\n" for i in range(3))
    for i in range(3):
        _wav(cv / "clips" / f"common_voice_zh-CN_{i}.wav")
    header = "client_id\tpath\tsentence\tup_votes\tdown_votes\n"
    (cv / "validated.tsv").write_text(header + rows, encoding="utf-8")
    dataset = load_dataset(cv / "validated.tsv")
    assert [e.audio.parent for e in dataset.examples] == [cv / "clips"] * 3
    assert len(validate(dataset, None).kept) == 3
    with pytest.raises(DatasetError) as no_train:
        load_dataset(cv)  # a Common Voice folder without train.tsv
    assert no_train.value.code == "dataset.common_voice_no_tsv"
    assert "validated.tsv" in str(no_train.value) and "manifest" in str(no_train.value)


@pytest.mark.parametrize("table", ["train.tsv", "validated.tsv"])
def test_a_common_voice_folder_without_clips_names_what_it_holds_and_lacks(tmp_path, table):
    """(Before: "cv is not a Common Voice folder: expected train.tsv and clips/ in it", for a
    folder holding train.tsv, and for one holding validated.tsv, which it did not name.)"""
    from app.errors import ZH

    cv = tmp_path / "cv"
    cv.mkdir()
    (cv / table).write_text("client_id\tpath\tsentence\nx\ta.mp3\t天地\n", encoding="utf-8")
    (cv / "clip_durations.tsv").write_text("clip\tduration[ms]\na.mp3\t900\n", encoding="utf-8")
    with pytest.raises(DatasetError) as no_clips:
        load_dataset(cv)
    error = no_clips.value
    assert error.code == "dataset.common_voice_no_clips"
    assert error.params == {"folder": cv, "found": table}  # not clip_durations.tsv: no rows
    english = str(error)
    assert english.startswith(f"{cv} holds {table} but no clips/ folder")
    assert "not a Common Voice folder" not in english
    assert "extract" in english and "choose the folder that holds clips/" in english
    assert "clips/" in ZH[error.code] and "{found}" in ZH[error.code]


# ---- 7: transcripts and manifests as Chinese Windows tools save them --------------------------


def test_gbk_and_utf16_transcripts_and_manifests_are_read(tmp_path):
    """Notepad's "ANSI" on a Chinese Windows is GBK, its "Unicode" UTF-16 with a byte order
    mark; Excel saves CSV as GBK. (Before: each was refused with a raw codec error.)"""
    for name, encoding in (("a", "gbk"), ("b", "utf-16"), ("c", "utf-8")):
        _wav(tmp_path / f"{name}.wav")
        (tmp_path / f"{name}.txt").write_bytes("今天天气很好".encode(encoding))
    dataset = from_folder(tmp_path)
    assert [e.text for e in dataset.examples] == ["今天天气很好"] * 3
    assert dataset.import_problems == []
    for name, encoding, sep in (("m.csv", "gbk", ","), ("m.tsv", "utf-16", "\t")):
        (tmp_path / name).write_bytes(f"path{sep}text\na.wav{sep}今天\n".encode(encoding))
        assert [e.text for e in from_manifest(tmp_path / name).examples] == ["今天"]


def test_a_file_in_no_known_encoding_is_named_with_what_to_do(tmp_path):
    _wav(tmp_path / "a.wav")
    (tmp_path / "a.txt").write_bytes(b"caf\xe9 \xff")  # neither UTF-8 nor GB18030
    (problem,) = from_folder(tmp_path).import_problems
    assert problem.origin == str(tmp_path / "a.txt") and "save it as UTF-8" in problem.detail
    assert "codec" not in problem.detail
    (tmp_path / "m.tsv").write_bytes(b"path\ttext\na.wav\tcaf\xe9 \xff\n")
    with pytest.raises(DatasetError, match="save it as UTF-8") as refused:
        from_manifest(tmp_path / "m.tsv")
    assert str(tmp_path / "m.tsv") in str(refused.value)


# ---- 8: what a row's columns say when they do not match the header ----------------------------


def test_extra_numeric_cells_and_a_headerless_third_column_are_worded_for_what_they_are(tmp_path):
    """(Before: spans the header did not name were blamed on "a tab in the text"; a headerless
    path,text,duration row was told to "give both start and end".)"""
    _wav(tmp_path / "a.wav", 3.0)
    (tmp_path / "spans.tsv").write_text("path\ttext\na.wav\t天地\t0.5\t1.5\n", encoding="utf-8")
    (problem,) = from_manifest(tmp_path / "spans.tsv").import_problems
    assert "tab" not in problem.detail
    assert "0.5, 1.5" in problem.detail and "header" in problem.detail
    (tmp_path / "dur.csv").write_text("a.wav,天地,3.0\n", encoding="utf-8")
    (problem,) = from_manifest(tmp_path / "dur.csv").import_problems
    assert problem.code == "dataset.row_no_header_half_span"
    assert "no header row" in problem.detail and "path, text, start, end" in problem.detail


# ---- 9: the check's counts, empty sources and duplicate rows ----------------------------------


def test_rows_left_out_at_import_count_in_the_total(tmp_path):
    """(Before: "6 of 6 rows usable" and "4 rows will not train"; with no .txt at all, "none of
    0 rows is usable (4 bad_row)".)"""
    for i in range(10):
        _wav(tmp_path / "d" / f"{i}.wav", 2.0)
        if i < 6:
            (tmp_path / "d" / f"{i}.txt").write_text("天地", encoding="utf-8")
    check = check_data([tmp_path / "d"], _config())
    assert (len(check.report.kept), check.report.total) == (6, 10)
    assert {i.kind: i.count for i in check.issues}["skipped_rows"] == 4
    assert check.report.table().startswith("6 of 10 rows usable")
    for i in range(6):
        (tmp_path / "d" / f"{i}.txt").unlink()
    (issue,) = check_data([tmp_path / "d"], _config()).issues
    assert "none of 10 rows is usable (10 bad_row)" in issue.detail


@pytest.mark.parametrize(
    "name, text", [("header_only.tsv", "path\ttext\n"), ("blank.tsv", "\n\n\n")]
)
def test_a_manifest_without_rows_says_so(tmp_path, name, text):
    """(Before: "none of 0 rows is usable (); fix the rows the validation table lists", with an
    empty table.)"""
    (tmp_path / name).write_text(text, encoding="utf-8")
    (issue,) = check_data([tmp_path / name], _config()).issues
    assert issue.blocking and issue.code == "dataset.no_rows"
    assert str(tmp_path / name) in issue.detail and "0 rows" not in issue.detail


def test_an_empty_folder_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    (issue,) = check_data([tmp_path / "empty"], _config()).issues
    assert issue.code == "dataset.no_rows" and str(tmp_path / "empty") in issue.detail


def test_a_clip_listed_twice_trains_once_and_conflicting_transcripts_are_flagged(tmp_path):
    """Two manifests pasted together, one clip with another transcript. (Before: every row
    trained, 0.wav three times with two different texts, and no finding said so.)"""
    for i in range(4):
        _wav(tmp_path / f"{i}.wav", 2.0)
    rows = "".join(f"{i}.wav\t天地\n" for i in range(4))
    (tmp_path / "m.tsv").write_text(
        "path\ttext\n" + rows + rows + "0.wav\t人和\n", encoding="utf-8"
    )
    report = validate(from_manifest(tmp_path / "m.tsv"), None)
    assert sorted((e.audio.name, e.text) for e in report.kept) == [
        ("0.wav", "人和"),
        ("0.wav", "天地"),
        ("1.wav", "天地"),
        ("2.wav", "天地"),
        ("3.wav", "天地"),
    ]
    assert report.total == 9 and report.left_out == 4
    found = {f.origin: f for f in report.findings}
    assert sorted(found) == ["m.tsv:10", "m.tsv:2", "m.tsv:6", "m.tsv:7", "m.tsv:8", "m.tsv:9"]
    repeat = found["m.tsv:7"]
    assert repeat.skipped and repeat.code == "dataset.row_repeated" and "m.tsv:3" in repeat.detail
    assert found["m.tsv:6"].skipped and "m.tsv:2" in found["m.tsv:6"].detail
    conflict = found["m.tsv:2"]  # trains, flagged with the row that says otherwise
    assert not conflict.skipped and conflict.code == "dataset.row_conflicting"
    assert "m.tsv:10" in conflict.detail and "m.tsv:2" in found["m.tsv:10"].detail
