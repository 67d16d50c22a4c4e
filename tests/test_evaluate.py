"""Evaluation math on hand-made inputs, and the evaluate command end to end on a tiny model."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import soundfile as sf

from engine.tune.evaluate import (
    EvalOptions,
    EvalRow,
    auroc,
    evaluate,
    expected_calibration_error,
    reliability,
    summarize,
)


def test_auroc_by_hand():
    # positives 0.9 and 0.3 against negatives 0.8 and 0.1: 0.9>0.8, 0.9>0.1, 0.3<0.8, 0.3>0.1
    assert auroc([0.9, 0.8, 0.3, 0.1], [True, False, True, False]) == pytest.approx(0.75)
    assert auroc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.9], [True, False]) == 0.0
    assert auroc([0.5, 0.5, 0.5], [True, False, False]) == 0.5  # ties count one half
    assert auroc([0.4, 0.7], [True, True]) is None
    assert auroc([], []) is None


def test_auroc_matches_pairwise_counting():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(60), 1)  # many ties
    labels = rng.random(60) < 0.4
    pos, neg = scores[labels], scores[~labels]
    pairs = [(p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg)]
    assert auroc(scores, labels) == pytest.approx(np.mean(pairs))


def test_auroc_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="one per item"):
        auroc([0.1, 0.2], [True])


def test_ece_by_hand():
    # bin [0.9, 1): accuracy 1/2 at confidence 0.95 → |0.5 − 0.95| = 0.45, weight 1/2;
    # bin [0.1, 0.2): accuracy 0 at 0.15 → 0.15, weight 1/2; ECE = 0.225 + 0.075
    conf = [0.95, 0.95, 0.15, 0.15]
    ok = [True, False, False, False]
    assert expected_calibration_error(conf, ok, bins=10) == pytest.approx(0.3)
    assert expected_calibration_error([1.0, 0.0], [True, False], bins=10) == 0.0
    assert expected_calibration_error([], [], bins=10) == 0.0


def test_reliability_bins():
    table = reliability([0.05, 0.55, 0.56, 1.0], [False, True, False, True], bins=4)
    assert [b.count for b in table] == [1, 0, 2, 1]  # 1.0 falls in the last bin
    assert table[2].accuracy == 0.5
    assert table[2].mean_confidence == pytest.approx(0.555)
    assert np.isnan(table[1].accuracy)


def _row(ref: str, hyp: str, correct, conf) -> EvalRow:
    return EvalRow("a.wav", ref, hyp, 2.0, 0.1, tuple(correct), tuple(conf))


def test_summarize_hand_made_rows():
    options = EvalOptions(confidence="max_prob", compare=("entropy_gibbs_exp",))
    rows = [
        # reference 今天好, hypothesis 今大好: one substitution, confidences low on it
        _row("今天好", "今大好", [True, False, True], [(0.9, 0.2, 0.8), (0.7, 0.6, 0.5)]),
        # one deletion: no hypothesis character to score
        _row("你们", "你", [True], [(0.95,), (0.4,)]),
    ]
    report = summarize(rows, options, model="m", manifest="x.tsv")
    assert report.cer.substitutions == 1 and report.cer.deletions == 1
    assert report.cer.cer == pytest.approx(2 / 5)
    assert report.characters == 4 and report.wrong_characters == 1
    assert report.auroc == 1.0  # the wrong one has the lowest max_prob
    # right 0.7, 0.5, 0.4 against wrong 0.6: only 0.7 outscores it
    assert report.measures[1].auroc == pytest.approx(1 / 3)
    assert report.rtf == pytest.approx(0.2 / 4.0)
    assert json.loads(json.dumps(report.to_dict()))["cer"]["substitutions"] == 1


def _strict_json(text: str):
    """json.loads that refuses NaN and Infinity (Python's accepts them; JSON has neither)."""

    def refuse(name: str):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_report_json_has_null_where_a_bin_is_empty():
    """Empty reliability bins have NaN means; the old to_dict passed them on and the CLI
    printed `NaN`, which no strict JSON reader accepts."""
    rows = [_row("今天", "今天", [True, False], [(0.95, 0.15)])]
    report = summarize(rows, EvalOptions(confidence="max_prob", compare=()), model="m")
    assert np.isnan(report.reliability[5].accuracy)  # the report itself keeps NaN
    data = _strict_json(json.dumps(report.to_dict(), allow_nan=False))
    empty = data["reliability"][5]
    assert empty["count"] == 0 and empty["accuracy"] is None
    assert empty["mean_confidence"] is None
    assert data["reliability"][9]["accuracy"] == 1.0


def test_options_reject_unknown_measure():
    with pytest.raises(ValueError, match="confidence measure"):
        EvalOptions(compare=("loudness",))


@pytest.fixture
def tiny_manifest(tmp_path, tiny_model_dir):
    rng = np.random.default_rng(0)
    lines = ["path\ttext"]
    for i, text in enumerate(["你好", "我们在这里", "天气"]):
        sf.write(tmp_path / f"{i}.wav", 0.1 * rng.standard_normal(16_000 + 4000 * i), 16_000)
        lines.append(f"{i}.wav\t{text}")
    manifest = tmp_path / "m.tsv"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


def test_evaluate_runs_a_model_over_a_manifest(tiny_model_dir, tiny_manifest):
    report = evaluate(tiny_model_dir, tiny_manifest, EvalOptions(load=_cpu()))
    assert [r.reference for r in report.rows] == ["你好", "我们在这里", "天气"]
    assert report.audio_seconds == pytest.approx(1 + 1.25 + 1.5)
    assert report.rtf > 0
    assert report.cer.reference_chars == 9
    assert report.characters == sum(len(r.hypothesis) for r in report.rows)
    for row in report.rows:
        assert len(row.correct) == len(row.hypothesis)
        assert all(len(c) == len(row.hypothesis) for c in row.confidences)
    assert len(report.measures) == len(EvalOptions().measures)


def _cpu():
    from engine.model import LoadOptions

    return LoadOptions(device="cpu", precision="fp32")


def test_cli_evaluate_json_and_plot(tiny_model_dir, tiny_manifest, tmp_path, capsys):
    from engine.cli import main

    png = tmp_path / "rel.png"
    args = ["evaluate", "--model", str(tiny_model_dir), "--data", str(tiny_manifest)]
    assert main([*args, "--json", "--plot", str(png), "--device", "cpu"]) == 0
    data = _strict_json(capsys.readouterr().out)
    assert data["cer"]["reference_chars"] == 9
    empty = [b for b in data["reliability"] if b["count"] == 0]
    assert empty and all(b["accuracy"] is None for b in empty)
    assert len(data["rows"]) == 3 and data["rtf"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main([*args, "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "CER" in out and "AUROC" in out and "1 utterances" in out
    # The data, not the model: status 1, as a bad file for transcribe (2 is a model that
    # cannot be loaded)
    assert main(["evaluate", "--model", str(tiny_model_dir), "--data", str(tmp_path / "no")]) == 1
    assert "no" in capsys.readouterr().err
    bad = tmp_path / "bad.tsv"
    bad.write_text(tiny_manifest.read_text(encoding="utf-8") + "missing.wav\t你好\n", "utf-8")
    assert main(["evaluate", "--model", str(tiny_model_dir), "--data", str(bad)]) == 1
    assert "missing.wav" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(tmp_path / "none"), "--data", str(bad)]) == 2


@pytest.mark.parametrize(
    "where,says",
    [
        (lambda tmp: tmp / "no" / "rel.png", "does not exist"),
        (lambda tmp: tmp / "m.tsv" / "rel.png", "is not a folder"),
        (lambda tmp: tmp, "is a folder"),
    ],
)
def test_cli_evaluate_checks_the_plot_path_before_any_work(
    tiny_model_dir, tiny_manifest, tmp_path, monkeypatch, capsys, where, says
):
    """--plot into a missing folder was found only after the whole evaluation had run."""
    import engine.loader
    from engine.cli import main

    def load_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(engine.loader, "load_model", load_model)
    png = where(tmp_path)
    args = ["evaluate", "--model", str(tiny_model_dir), "--data", str(tiny_manifest)]
    assert main([*args, "--plot", str(png)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tingxie-cli evaluate: --plot: ") and says in err, err
    assert "\n" not in err and str(png) in err
