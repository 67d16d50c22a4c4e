"""Platt calibration of confidences (engine.calibration) and its fit on evaluated rows."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from engine.calibration import (
    CALIBRATION_FILE,
    Calibration,
    cross_fitted,
    fit_platt,
    read_calibration,
)
from engine.tune.evaluate import EvalRow, expected_calibration_error, fit_calibration


def _overconfident(n: int = 4000, seed: int = 0):
    """Confidences whose true accuracy is σ(0.5·logit(p) − 0.5): overconfident, as raw
    Whisper word probabilities are on hard audio."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.999, n)
    z = np.log(p / (1 - p))
    correct = rng.random(n) < 1 / (1 + np.exp(-(0.5 * z - 0.5)))
    return p, correct


def test_platt_recovers_the_true_map_and_lowers_the_ece():
    p, ok = _overconfident()
    fit = fit_platt(p, ok, "m")
    assert fit.a == pytest.approx(0.5, abs=0.08) and fit.b == pytest.approx(-0.5, abs=0.15)
    before = expected_calibration_error(p, ok)
    after = expected_calibration_error(fit.apply(p), ok)
    assert before > 0.1 and after < 0.03
    assert np.all(np.diff(fit.apply(np.sort(p))) >= 0)  # monotone: AUROC unchanged


def test_platt_fit_stays_finite_and_monotone_when_every_character_is_right():
    """A tuning job's held-out split the model gets all right (one class): the fit leans on its
    prior (the raw confidences) instead of running to a constant 1 or failing."""
    p = np.random.default_rng(3).uniform(0.3, 0.99, 200)
    fit = fit_platt(p, np.ones(200, bool), "m")
    assert np.isfinite([fit.a, fit.b]).all() and 0 < fit.a < 3
    shown = fit.apply(np.sort(p))
    assert np.all(np.diff(shown) > 0)  # still ranks, still monotone
    assert np.all(shown >= np.sort(p)) and shown.max() < 1 - 1e-6  # raised, not to certainty
    wrong = fit_platt(p, np.zeros(200, bool), "m").apply(p)
    assert np.all(wrong <= p) and wrong.min() > 1e-6


def test_cross_fitting_never_uses_an_items_own_fold():
    p, ok = _overconfident(400)
    groups = np.arange(400) // 10
    held = cross_fitted(p, ok, groups, "m", folds=2)
    even = groups % 2 == 0
    # each fold mapped by the other's fit (both folds: the last one was once fitted on itself)
    assert np.allclose(held[even], fit_platt(p[~even], ok[~even], "m").apply(p[even]))
    assert np.allclose(held[~even], fit_platt(p[even], ok[even], "m").apply(p[~even]))
    with pytest.raises(ValueError, match="fold"):
        cross_fitted(p, ok, np.zeros(400, int), "m")


def test_calibration_file_round_trip_and_mismatch(tmp_path, caplog):
    c = Calibration("whisper_word_root", 0.7, 0.2, 300)
    c.write(tmp_path)
    assert read_calibration(tmp_path, "whisper_word_root") == c
    assert read_calibration(tmp_path, "max_prob:1:mean") is None  # another measure: raw
    assert "calibrates whisper_word_root, not max_prob:1:mean" in caplog.text
    caplog.clear()  # the damaged file's own warning, not the one above
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps({"kind": "something else"}))
    assert read_calibration(tmp_path, "whisper_word_root") is None
    assert "not a calibration Tingxie can read" in caplog.text
    assert "confidences stay raw" in caplog.text
    assert read_calibration(tmp_path / "none", "whisper_word_root") is None


def test_fit_on_rows_reports_a_held_out_ece():
    p, ok = _overconfident(600, seed=1)
    rows = [
        EvalRow(f"{i}.wav", "", "", 1.0, 0.1, tuple(ok[i::20]), (tuple(p[i::20]),), ("m",))
        for i in range(20)
    ]
    fit = fit_calibration(rows, "m")
    assert fit.calibration.characters == 600 and fit.folds == 2
    assert fit.held_out_ece < fit.raw_ece
    with pytest.raises(ValueError, match="not scored"):
        fit_calibration(rows, "other")


def _beam_rows(n_rows: int = 40, per_row: int = 30, seed: int = 2):
    """Rows as a beam search leaves them: the raw measure barely tells right from wrong (the
    LM's homophone choices keep the frames' posteriors), the beams' agreement does."""
    from engine.lm import EVIDENCE

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_rows):
        ok = rng.random(per_row) < 0.75
        conf = np.clip(rng.normal(0.8, 0.1, per_row) + 0.03 * ok, 0.01, 0.999)
        agreement = np.where(ok, 0.9, 0.5) + rng.normal(0, 0.2, per_row)  # log-odds linear
        evidence = np.zeros((per_row, len(EVIDENCE)))
        evidence[:, 0] = np.log(conf)
        evidence[:, EVIDENCE.index("beam_agreement")] = agreement
        row = EvalRow(f"{i}.wav", "", "", 1.0, 0.1, tuple(ok), (tuple(conf),), ("m",))
        rows.append(replace(row, evidence=tuple(map(tuple, evidence))))
    return rows


def test_beam_rows_get_a_beam_map_that_ranks_errors_better(tmp_path, caplog):
    from engine.lm import EVIDENCE

    rows = _beam_rows()
    fit = fit_calibration(rows, "m")
    beam = fit.calibration.beam
    assert beam is not None and beam.features == EVIDENCE and beam.characters == 1200
    print(f"AUROC raw {fit.raw_auroc:.3f}, beam map held out {fit.held_out_auroc:.3f}")
    assert fit.held_out_auroc > fit.raw_auroc + 0.15
    assert fit.held_out_ece < 0.05
    agreement = EVIDENCE.index("beam_agreement")
    assert beam.coef[agreement] == max(beam.coef)
    fit.calibration.write(tmp_path)
    assert read_calibration(tmp_path, "m") == fit.calibration
    # rows of greedy decoding (no evidence) get the Platt map alone
    greedy = [replace(r, evidence=()) for r in rows]
    assert fit_calibration(greedy, "m").calibration.beam is None
    # a beam map whose coefficients do not match its features is not applied
    data = json.loads((tmp_path / CALIBRATION_FILE).read_text(encoding="utf-8"))
    data["beam"]["coef"] = data["beam"]["coef"][:3]
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps(data), encoding="utf-8")
    assert read_calibration(tmp_path, "m") is None
    assert "refit it" in caplog.text
