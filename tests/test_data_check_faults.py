"""Faults in checking data before the work it feeds, each with the test that failed before its
fix: the Tune page's check and SpecAugment's time masks, a recording given where a manifest
belongs, punctuation-only references in an export's check manifest, and the punctuation
trainer's --text files. No model runs; the check reads the demo model's files only."""

from __future__ import annotations

from pathlib import Path

from test_data_faults import _config, _wav

from engine.cli import main as cli
from engine.tune.data import DatasetError, load_dataset
from engine.tune.evaluate import read_examples
from engine.tune.formats import read_check_manifest
from engine.tune.prepare import check_data
from engine.tune.punctuation_train import main as train_punctuation


def _manifest(path: Path, rows: list[tuple[Path, str]]) -> Path:
    path.write_text("path\ttext\n" + "".join(f"{a}\t{t}\n" for a, t in rows), encoding="utf-8")
    return path


# ---- 1: the check refuses clips shorter than one SpecAugment time mask -----------------------


def test_the_check_blocks_clips_shorter_than_a_time_mask_and_lists_them(tmp_path):
    """The presets' masking (10 frames of the demo model, 0.21 s) with min_seconds=0.1. Before:
    the check passed these 0.15 s clips and the job refused them once the model had loaded."""
    short = [_wav(tmp_path / f"s{i}.wav", 0.15) for i in range(3)]
    long = [_wav(tmp_path / f"l{i}.wav", 1.0) for i in range(12)]
    manifest = _manifest(tmp_path / "m.tsv", [(a, "天地") for a in short + long])
    check = check_data([manifest], _config(min_seconds=0.1))
    assert check.blocking
    (issue,) = [i for i in check.issues if i.blocking]
    assert issue.code == "dataset.clips_shorter_than_mask"
    assert "min_seconds=0.1" in issue.detail and "mask_time_length=10" in issue.detail
    assert "raise min_seconds to 0.21" in issue.detail and "mask_time_prob: 0" in issue.detail
    listed = [f for f in check.report.findings if f.code == "dataset.row_shorter_than_mask"]
    short_rows = {f"m.tsv:{i + 2}" for i in range(3)}
    assert {f.origin for f in listed} <= short_rows and listed
    assert all("0.15 s" in f.detail and "mask_time_length=10" in f.detail for f in listed)
    assert check.train_examples > 0 and check.histogram  # the rest of the verdict still shows
    # what the message offers works: no masking, or a min_seconds that skips them
    assert not check_data([manifest], _config(min_seconds=0.1, mask_time_prob=0.0)).blocking
    assert not check_data([manifest], _config(min_seconds=0.21)).blocking


# ---- 2: a recording given where a manifest belongs ------------------------------------------


def test_a_recording_given_as_data_says_it_is_one(tmp_path, capsys):
    """`tune --set data=clip.wav` and `export --check clip.wav`. Before: "not UTF-8, UTF-16 or
    GBK text; save it as UTF-8"."""
    clip = _wav(tmp_path / "clip.wav", 1.0)
    for read in (load_dataset, lambda path: read_check_manifest(path, 10)):
        try:
            read(clip)
        except DatasetError as e:
            assert e.code == "dataset.source_is_audio" and e.params["path"] == clip
            assert "is a recording, not a manifest" in str(e)
        else:
            raise AssertionError("a recording was read as a manifest")
    model = str(tmp_path / "no-model")  # read before any model: status 1, not 2
    out = tmp_path / "out"
    assert cli(["export", model, str(out), "--format", "onnx", "--check", str(clip)]) == 1
    err = capsys.readouterr().err
    assert "clip.wav is a recording, not a manifest" in err and "UTF-8" not in err


# ---- 3: punctuation-only references in an export's check manifest ----------------------------


def test_the_export_check_leaves_out_references_of_punctuation_only(tmp_path):
    """Before: "。" and "，，" were kept as references, which normalize to nothing (CER inf, or
    every character the model writes charged as an insertion)."""
    clip = _wav(tmp_path / "a.wav", 1.0)
    manifest = _manifest(tmp_path / "check.tsv", [(clip, "。"), (clip, "天地"), (clip, "，，")])
    report = read_check_manifest(manifest, 10)
    assert [e.text for e in report.kept] == ["天地"]
    left_out = [(f.origin, f.code) for f in report.skipped]
    assert left_out == [(f"check.tsv:{row}", "dataset.row_empty_text") for row in (2, 4)]
    # evaluate leaves out the same rows
    examples, skipped = read_examples(manifest)
    assert [e.text for e in examples] == ["天地"]
    assert [(f.origin, f.code) for f in skipped] == left_out


# ---- 4: the punctuation trainer's --text files ------------------------------------------------


def test_a_text_the_punctuation_trainer_cannot_read_is_named(tmp_path, capsys):
    """Before: a FileNotFoundError or UnicodeDecodeError traceback."""
    missing, gbk = tmp_path / "missing.txt", tmp_path / "gbk.txt"
    gbk.write_bytes("你好，世界。\n".encode("gbk"))
    for text, why in ((missing, "No such file"), (gbk, "not UTF-8")):
        assert train_punctuation(["--text", str(text), "--out", str(tmp_path / "p")]) == 2
        err = capsys.readouterr().err
        assert f"--text {text}: cannot read it ({why}" in err and "UTF-8 text file" in err
    assert not (tmp_path / "p").exists()
