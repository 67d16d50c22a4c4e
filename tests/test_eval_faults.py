"""Evaluation and training-set faults a bug hunt found: CER charged on characters converted
out of their phrase, blank references scored, --data messages and sources, and corrections
stopped by one lost recording. Each test failed before its fix."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from test_review_cli import make_segments, run_cli, store_with_edits  # noqa: F401 (a fixture)

from engine.audio import write_wav
from engine.library.corrections import CorrectionsError, build_dataset
from engine.library.review import EditOp
from engine.library.store import Store
from engine.metrics import cer
from engine.normalize import normalize_text
from engine.results import Char
from engine.tune.evaluate import EvalOptions, _align_decoded


@pytest.mark.parametrize("written", ["乾隆皇帝", "我瞭解了", "反覆檢查", "這是藉口"])
def test_a_hypothesis_written_as_its_reference_has_no_error(written):
    """OpenCC picks Simplified characters by phrase (乾隆 keeps 乾, 乾燥 gives 干): the reference
    was converted whole but the hypothesis one character at a time, so '乾隆皇帝' written
    exactly cost 25% CER. Punctuation (as Whisper writes it) still drops out, and each kept
    character keeps its own confidence."""
    texts = [*written[:2], "，", *written[2:], "。"]
    decoded = [[Char(t, 0.1 * i, 0.1 * i + 0.1, 0.5 + 0.01 * i) for i, t in enumerate(texts)]]
    options = EvalOptions()
    reference = normalize_text(written, options.normalize)
    hypothesis, correct, confidences = _align_decoded(decoded, reference, options)
    assert hypothesis == reference and all(correct)
    assert cer([reference], [hypothesis]).cer == 0
    assert confidences == ((0.5, 0.51, 0.53, 0.54),)


def _evaluate(model, data, capsys, *more: str) -> tuple[int, str, str]:
    """Run `tingxie-cli evaluate` on the CPU: (status, stdout, stderr)."""
    from engine.cli import main

    code = main(["evaluate", "--model", str(model), "--data", str(data), "--device", "cpu", *more])
    out, err = capsys.readouterr()
    return code, out, err


def _clips(folder, n: int = 2) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        sf.write(folder / f"{i}.wav", 0.1 * rng.standard_normal(16_000), 16_000)


def test_rows_without_a_reference_are_left_out_by_row(tiny_model_dir, tmp_path, capsys):
    """A blank or punctuation-only transcript was scored: CER inf% with status 0, or, beside
    other rows, all of its characters insertions in the corpus CER. Such rows are skipped,
    named by manifest row; with none left, status 1 says why."""
    _clips(tmp_path)
    mixed = tmp_path / "mixed.tsv"
    mixed.write_text("path\ttext\n0.wav\t你好\n1.wav\t\n1.wav\t……！\n", encoding="utf-8")
    code, out, err = _evaluate(tiny_model_dir, mixed, capsys, "--json")
    assert code == 0
    report = json.loads(out)
    assert [r["reference"] for r in report["rows"]] == ["你好"]
    assert report["cer"]["reference_chars"] == 2
    assert "mixed.tsv:3: transcript is empty" in err and "mixed.tsv:4: transcript is empty" in err
    blank = tmp_path / "blank.tsv"
    blank.write_text("path\ttext\n0.wav\t。。。\n", encoding="utf-8")
    code, out, err = _evaluate(tiny_model_dir, blank, capsys)
    assert code == 1 and "CER" not in out
    assert "blank.tsv:2: transcript is empty" in err and "no row left to score" in err


def test_evaluate_reads_what_tune_reads_and_words_data_errors(tiny_model_dir, tmp_path, capsys):
    """--data took only a manifest file (a training set's folder, which tune takes, was
    "cannot read the manifest as UTF-8 text"), said "fix that row or leave it out" of a path
    with no row in it, blamed the text encoding of a recording, and loaded the model before
    reading the data."""
    dataset = tmp_path / "clinic"
    (dataset / "clips").mkdir(parents=True)
    _clips(dataset / "clips", 1)
    (dataset / "manifest.tsv").write_text("path\ttext\nclips/0.wav\t你好\n", encoding="utf-8")
    code, out, _ = _evaluate(tiny_model_dir, dataset, capsys)
    assert code == 0 and "(1 utterances" in out
    typo = tmp_path / "clinc" / "manifest.tsv"
    code, _, err = _evaluate(tiny_model_dir, typo, capsys)
    assert code == 1 and "does not exist" in err and "fix that row" not in err
    code, _, err = _evaluate(tiny_model_dir, dataset / "clips" / "0.wav", capsys)
    assert code == 1 and "not a manifest" in err
    assert "UTF-8" not in err and "fix that row" not in err
    code, _, err = _evaluate(tmp_path / "no-model", typo, capsys)
    assert code == 1 and "does not exist" in err and "no-model" not in err
    # A row that cannot be read is named by its row, with the row advice.
    bad = dataset / "bad.tsv"
    bad.write_text("path\ttext\nclips/0.wav\t你好\ngone.wav\t你好\n", encoding="utf-8")
    code, _, err = _evaluate(tiny_model_dir, bad, capsys)
    assert code == 1 and "bad.tsv:3:" in err and "gone.wav" in err
    assert "fix that row or leave it out" in err


def _vocab_model(folder) -> str:
    folder.mkdir()
    (folder / "vocab.json").write_text('{"<pad>": 0, "今": 1, "天": 2}', encoding="utf-8")
    return str(folder)


def test_corrections_go_on_without_a_lost_recording(store_with_edits, tmp_path, capsys):  # noqa: F811
    """One moved or deleted recording stopped `corrections` (every transcript) with "transcript
    2: …: no such file", writing nothing of transcript 1's fixes either. Now the others are
    built and the one left out is listed with what to do; naming it with -t is an error that
    says the same, as is building it in the app (no skipping there)."""
    store, first = store_with_edits
    lost = tmp_path / "lost.wav"
    write_wav(lost, (0.3 * np.sin(np.arange(4 * 16_000) / 5)).astype(np.float32))
    second = store.add_transcript(make_segments(), audio=lost)
    store.add_edit(second, EditOp(0, 2, 3, "甜", "fix"))
    lost.unlink()
    model = _vocab_model(tmp_path / "model")
    args = ["corrections", "set1", "--db", str(store.path), "--model", model]
    assert run_cli(args) == 0
    out, err = capsys.readouterr()
    advice = f"transcript {second}'s recording {lost} is missing: put it back there or leave it out"
    assert advice in err
    assert "2 clips" in out and "from 1 transcript(s)" in out
    manifest = store.path.parent / "corrections" / "set1" / "manifest.tsv"
    assert len(manifest.read_text(encoding="utf-8").splitlines()) == 3  # header + 2 clips
    assert run_cli(["corrections", "set2", *args[2:], "-t", str(second)]) == 1
    assert advice in capsys.readouterr().err
    with pytest.raises(CorrectionsError) as e:
        build_dataset(store, [first, second], "set3", model=model)
    assert e.value.code == "dataset.recording_missing" and str(e.value) == advice


def test_a_set_in_use_is_named_where_it_is(store_with_edits, tmp_path, capsys):  # noqa: F811
    """`corrections clinic --folder usb` said the set exists at usb/clinic, which does not
    exist: the set the name is in use by is where the store recorded it."""
    store, _ = store_with_edits
    model = _vocab_model(tmp_path / "model")
    args = ["corrections", "clinic", "--db", str(store.path), "--model", model]
    assert run_cli(args) == 0
    capsys.readouterr()
    assert run_cli([*args, "--folder", str(tmp_path / "usb")]) == 1
    err = capsys.readouterr().err
    assert f"({store.path.parent / 'corrections' / 'clinic'})" in err
    assert "usb" not in err


def test_new_characters_are_judged_after_the_tuning_normalization(tmp_path):
    """A fix typed 'A２' was reported as two new characters, though tuning normalizes them to
    'a' and '2', which the vocabulary has."""
    rec = tmp_path / "rec.wav"
    write_wav(rec, (0.3 * np.sin(np.arange(4 * 16_000) / 5)).astype(np.float32))
    with Store(tmp_path / "db" / "tingxie.db") as store:
        tid = store.add_transcript(make_segments()[:1], audio=rec)
        store.add_edit(tid, EditOp(0, 2, 3, "天", "accept"))  # no doubt left: the whole segment
        store.add_edit(tid, EditOp(0, 4, 5, "好A２，", "fix"))
        vocab = [*"今天气好", "a", "2"]
        assert build_dataset(store, [tid], "s", model="m", vocab=vocab).new_chars == ()
        store.add_edit(tid, EditOp(0, 0, 1, "甜", "fix"))
        assert build_dataset(store, [tid], "t", model="m", vocab=vocab).new_chars == ("甜",)
