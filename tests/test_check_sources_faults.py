"""Faults in the Tune page's data check and in reading its sources, each with the test that
failed before its fix: conflicting transcripts passed as clean, a vocabulary not at hand taken
from raw texts, a base model folder that does not exist, one usable row told to raise
heldout_fraction, a Common Voice folder without clips/, and a TSV with every cell quoted. No
model runs; the check reads the demo model's files only."""

from __future__ import annotations

from pathlib import Path

from test_data_faults import _config, _wav

from app.tune.strings import TUNE_STRINGS
from engine.tune.config import TuneConfig
from engine.tune.data import DatasetError, from_manifest, load_dataset
from engine.tune.prepare import check_data, source_kind


def _manifest(path: Path, rows: list[tuple[Path, str]]) -> Path:
    path.write_text("path\ttext\n" + "".join(f"{a}\t{t}\n" for a, t in rows), encoding="utf-8")
    return path


def _with_model(model: str, **overrides) -> TuneConfig:
    return TuneConfig(model=model, data="", output_dir="", **overrides)


def _kinds(check) -> list[str]:
    return [i.kind for i in check.issues]


def _worded(kind: str, **values: object) -> tuple[str, str]:
    """The issue's English and Chinese, formatted (a KeyError when the page cannot word it)."""
    return tuple(text.format(**values) for text in TUNE_STRINGS[f"tune.issue.{kind}"])


# ---- 2: two sources giving one clip different transcripts ------------------------------------


def test_conflicting_transcripts_are_a_warning_to_accept(tmp_path):
    """Before: both texts trained, the table flagged both rows as kept, and the verdict said
    "No problems found." with nothing to accept."""
    clips = [_wav(tmp_path / f"c{i}.wav", 1.0) for i in range(6)]
    first = _manifest(tmp_path / "set1.tsv", [(c, "天地") for c in clips])
    fix = _manifest(tmp_path / "fix.tsv", [(clips[0], "地地")])
    check = check_data([first, fix], _config(min_seconds=0.1))
    (issue,) = [i for i in check.issues if i.kind == "conflicting"]
    assert not issue.blocking and issue.count == 2  # the warning the user has to accept
    assert check.train_examples + check.heldout_examples == 7  # both still train
    english, chinese = _worded("conflicting", count=issue.count)
    assert "2 rows" in english and "contradicts" in english and "2" in chinese
    # one source alone: no such warning
    assert "conflicting" not in _kinds(check_data([first], _config(min_seconds=0.1)))


# ---- 3: the vocabulary not at hand -----------------------------------------------------------


def test_without_the_vocabulary_no_character_is_called_unknown(tmp_path):
    """A Hub id not downloaded. Before: the stand-in vocabulary came from the texts before
    normalization, so "做CT检查" (lower-cased to ct) was left out for "ct"."""
    clips = [_wav(tmp_path / f"c{i}.wav", 1.0) for i in range(4)]
    texts = ["做CT检查", "天地們", "天地", "地天"]
    manifest = _manifest(tmp_path / "m.tsv", list(zip(clips, texts, strict=True)))
    check = check_data([manifest], _with_model("someone/not-downloaded-model", min_seconds=0.1))
    assert "no_vocabulary" in _kinds(check) and not check.blocking
    assert "unknown_chars" not in _kinds(check) and "skipped_rows" not in _kinds(check)
    assert not [f for f in check.report.findings if f.kind == "unknown_chars"]
    assert len(check.report.kept) == 4


# ---- 7: a base model folder that does not exist ----------------------------------------------


def test_a_model_folder_that_does_not_exist_blocks_the_check(tmp_path):
    """A typo in a folder path. Before: only "the vocabulary is not at hand", and the job failed
    at Measure or Start with the loader's "model folder … does not exist"."""
    manifest = _manifest(tmp_path / "m.tsv", [(_wav(tmp_path / "a.wav"), "天地")])
    missing = tmp_path / "models" / "my-modle"
    check = check_data([manifest], _with_model(str(missing)))
    (issue,) = [i for i in check.issues if i.blocking]
    assert issue.kind == "no_model" and issue.code == "model.folder_missing"
    assert issue.params["path"] == missing and str(missing) in issue.detail
    assert "does not exist" in issue.detail and "no_vocabulary" not in _kinds(check)
    assert check.report is not None  # the data's verdict still shows
    english, chinese = _worded("no_model", detail=issue.detail)
    assert str(missing) in english and str(missing) in chinese


# ---- 9: one usable row -----------------------------------------------------------------------


def test_one_usable_row_asks_for_more_rows_not_a_higher_fraction(tmp_path):
    """Before: "Nothing is held out … (raise heldout_fraction)", which no fraction helps."""
    manifest = _manifest(tmp_path / "m.tsv", [(_wav(tmp_path / "a.wav"), "天地")])
    for fraction in (0.1, 0.9):
        check = check_data([manifest], _config(min_seconds=0.1, heldout_fraction=fraction))
        assert "one_row" in _kinds(check) and "no_heldout" not in _kinds(check)
        assert check.heldout_examples == 0 and not check.blocking
    english, chinese = _worded("one_row")
    assert "two" in english and "heldout_fraction" not in english + chinese


# ---- 6: a Common Voice folder without clips/ -------------------------------------------------


def test_a_common_voice_folder_without_clips_says_what_it_lacks(tmp_path):
    """Before: read as an audio + .txt folder, "holds nothing to train on"."""
    cv = tmp_path / "cv"
    cv.mkdir()
    (cv / "train.tsv").write_text("client_id\tpath\tsentence\nx\ta.mp3\t天地\n", encoding="utf-8")
    assert source_kind(cv) == "common_voice"
    try:
        load_dataset(cv)
    except DatasetError as e:
        assert e.code == "dataset.common_voice_no_clips" and "train.tsv" in str(e)
        assert "no clips/ folder" in str(e)
    else:
        raise AssertionError("a Common Voice folder without clips/ was read")
    # a folder of audio + .txt beside some other table stays a folder
    other = tmp_path / "other"
    _wav(other / "a.wav")
    (other / "a.txt").write_text("天地", encoding="utf-8")
    (other / "notes.tsv").write_text("speaker\tage\nx\t30\n", encoding="utf-8")
    assert source_kind(other) == "folder" and len(load_dataset(other).examples) == 1


# ---- 8: a TSV with every cell quoted ---------------------------------------------------------


def test_a_tsv_with_every_cell_quoted_is_read(tmp_path):
    """("path"<TAB>"text", as csv's QUOTE_ALL writes it.) Before: the header was read as a row
    and every path as …/"clips/u0000.wav", missing."""
    clips = [_wav(tmp_path / "clips" / f"u{i}.wav", 1.0) for i in range(3)]
    manifest = tmp_path / "quoted.tsv"
    rows = "".join(f'"clips/{c.name}"\t"天地"\n' for c in clips)
    manifest.write_text('"path"\t"text"\n' + rows, encoding="utf-8")
    dataset = from_manifest(manifest)
    assert not dataset.import_problems
    assert [e.audio for e in dataset.examples] == clips
    assert {e.text for e in dataset.examples} == {'"天地"'}  # a TSV quote in a text is text
    check = check_data([manifest], _config(min_seconds=0.1))
    assert not check.blocking and check.train_examples + check.heldout_examples == 3


def test_add_manifest_lists_json_lines_and_the_data_help_names_them():
    """Old: the engine read JSON-lines manifests, but Add a manifest… offered *.tsv *.csv only
    (train.jsonl, manifest.json not listed) and the data setting's help said .tsv/.csv."""
    import fnmatch
    import re

    for text in TUNE_STRINGS["tune.sources.manifest_filter"]:
        patterns = re.search(r"\(([^()]+)\)$", text)[1].split()
        for name in ("train.jsonl", "manifest.json", "m.tsv", "m.csv"):
            assert any(fnmatch.fnmatch(name, p) for p in patterns), (text, name)
    assert all("JSON lines" in text for text in TUNE_STRINGS["tune.help.data"])
