"""Faults around confidence calibration (third hunt), each test failing before its fix: damaged
or foreign calibration.json files, non-finite confidences in the scores, `evaluate` losing its
report when --plot or --calibrate fails, and Whisper tuning jobs (a resume measuring CER before
and after on different rows, a cancel before the first step, a time limit that outlived its
run, a tuned model without a calibration)."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.calibration import (
    CALIBRATION_FILE,
    BeamCalibration,
    Calibration,
    load_calibration,
    read_calibration,
)

_PLATT = '"measure": "m", "characters": 10, "method": "platt"'


def _platt(rest: str) -> str:
    """A calibration.json's text: a Platt map's fields, then `rest`."""
    return "{" + _PLATT + ", " + rest + "}"


SHARED_AUDIO = Path(__file__).resolve().parents[1].parent / "shared" / "audio"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[]", "a list"),
        ("null", "null"),
        ('"max_prob"', "a string"),
        (_platt('"a": 1.0, "b": 0.0, "beam": []'), "beam holds a list"),
        (_platt('"a": 1.0, "b": 0.0, "beam": 3'), "beam holds a number"),
        (_platt('"a": NaN, "b": 0.0'), "a is nan"),
        (_platt('"a": Infinity, "b": -Infinity'), "a is inf"),
        (_platt('"a": 1.0, "b": "0.5"'), "b is '0.5'"),
        (_platt('"a": null, "b": 0.0'), "a is None"),
        (_platt('"a": -0.5, "b": 0.0'), "a is -0.5: a map that does not rise"),
        (_platt('"a": 0, "b": 0.0'), "a is 0: a map that does not rise"),
        (
            _platt(
                '"a": 1.0, "b": 0.0, "beam": {"features": ["log_confidence"], "coef": [NaN],'
                ' "intercept": 0.0, "characters": 10}'
            ),
            "beam.coef[0] is nan",
        ),
    ],
)
def test_a_calibration_file_tingxie_cannot_use_is_ignored_with_a_warning_naming_it(
    tmp_path, caplog, text, named
):
    """Valid JSON that is not an object crashed every model load (AttributeError); NaN,
    Infinity or a string as a parameter was accepted, and confidences came out NaN (or a
    TypeError on the first character). Now: the documented warning, naming the file and what
    is wrong in it, and no calibration."""
    (tmp_path / CALIBRATION_FILE).write_text(text, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="tingxie.calibration"):
        assert read_calibration(tmp_path, "m") is None
    assert f"{tmp_path / CALIBRATION_FILE}: not a calibration Tingxie can read" in caplog.text
    assert named in caplog.text and "confidences stay raw" in caplog.text


def test_a_fit_on_confidences_that_fall_with_correctness_keeps_their_order():
    """Characters wrong more often the surer the model was: the unconstrained fit's slope was
    negative (−0.86 here), and the map it kept showed the surest characters as the most
    doubtful, so review went to them first. The slope is held positive; the level still
    matches how often these characters are right."""
    from engine.calibration import fit_platt

    rng = np.random.default_rng(0)
    p = rng.uniform(0.5, 0.99, 300)
    right = rng.uniform(size=300) > p
    fit = fit_platt(p, right, "m")
    shown = fit.apply(np.sort(p))
    assert fit.a > 0 and (np.diff(shown) > 0).all()
    assert abs(float(np.mean(fit.apply(p))) - right.mean()) < 0.02


def test_a_map_is_built_only_from_finite_numbers():
    with pytest.raises(ValueError, match="a is nan"):
        Calibration("m", float("nan"), 0.0, 10)
    with pytest.raises(ValueError, match="intercept"):
        BeamCalibration(("x",), (1.0,), float("inf"), 10)
    extreme = Calibration("m", 1e300, -1e300, 10).apply(np.array([0.0, 0.5, 1.0]))
    assert np.isfinite(extreme).all() and ((extreme >= 0) & (extreme <= 1)).all()


def test_a_model_loads_with_its_calibration_file_damaged(tiny_model_dir, tmp_path, caplog):
    """Both families read calibration.json when a model loads (the transcriber, for CTC):
    a list there stopped every transcription."""
    from engine.model import LoadOptions, load_model
    from engine.transcribe import Transcriber

    folder = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, folder)
    (folder / CALIBRATION_FILE).write_text("[]", encoding="utf-8")
    t = Transcriber(load_model(folder, LoadOptions(device="cpu", precision="fp32")))
    audio = np.random.default_rng(3).normal(scale=0.1, size=16000).astype(np.float32)
    (lp,) = t.log_probs([audio])
    assert t.calibration() is None
    assert t.chars(lp) == t.chars(lp, calibrate=False)
    assert "not a calibration Tingxie can read" in caplog.text


def test_whisper_loads_with_a_calibration_file_that_is_not_an_object(tmp_path):
    from engine.loader import load_model
    from engine.whisper import WHISPER_BASE_DIR

    if not (WHISPER_BASE_DIR / "model.bin").is_file():
        pytest.skip(f"{WHISPER_BASE_DIR} is absent: run packaging/fetch-whisper-base.py")
    folder = tmp_path / "wb"
    folder.mkdir()
    for name in ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt"):
        if (WHISPER_BASE_DIR / name).is_file():
            (folder / name).symlink_to(WHISPER_BASE_DIR / name)
    (folder / CALIBRATION_FILE).write_text("null", encoding="utf-8")
    assert load_model(folder).calibration is None


def test_non_finite_confidences_are_refused_not_scored_as_perfect():
    """NaN falls in no reliability bin: the ECE of all-NaN confidences came out 0.000."""
    from engine.tune.evaluate import auroc, expected_calibration_error, reliability

    nan = [float("nan"), float("nan"), 0.5]
    ok = [True, False, True]
    for score in (expected_calibration_error, reliability, auroc):
        with pytest.raises(ValueError, match="2 of 3 confidences are not finite"):
            score(nan, ok)
    with pytest.raises(ValueError, match="not finite"):
        expected_calibration_error([float("inf")], [True])


def _foreign(folder: Path) -> None:
    beam = BeamCalibration(("x", "y"), (1.0, 2.0), 0.0, 100)
    Calibration("max_prob:1:mean", a=0.5, b=-1.0, characters=100, beam=beam).write(folder)


def test_a_beam_map_over_other_features_is_dropped_and_the_platt_map_kept(tmp_path, caplog):
    _foreign(tmp_path)
    with caplog.at_level(logging.WARNING, logger="tingxie.calibration"):
        calibration = load_calibration(tmp_path)
    assert calibration is not None and calibration.beam is None and calibration.a == 0.5
    assert f"{tmp_path / CALIBRATION_FILE}: its beam map reads x, y" in caplog.text
    assert "refit it" in caplog.text


def test_beam_search_works_with_a_foreign_beam_map(tiny_with_lm):
    """A beam map over 2 features where the search gives 7 broke every beam-search
    transcription ("cannot reshape array of size … into shape (2)"), the file not named."""
    from engine.model import LoadOptions, load_model
    from engine.transcribe import Transcriber

    _foreign(tiny_with_lm)
    t = Transcriber(load_model(tiny_with_lm, LoadOptions(device="cpu", precision="fp32")))
    audio = np.random.default_rng(3).normal(scale=0.1, size=16000 * 2).astype(np.float32)
    (lp,) = t.log_probs([audio])
    beam = t.beam_decoder()
    assert beam is not None
    shown = t.chars(lp, beam=beam)
    raw = t.chars(lp, beam=beam, calibrate=False)
    assert shown and [c.text for c in shown] == [c.text for c in raw]
    platt = t.calibration().apply(np.array([c.confidence for c in raw]))
    assert [c.confidence for c in shown] == pytest.approx(list(platt), abs=1e-4)


# --- tingxie-cli evaluate: --plot and --calibrate fail after the report, not instead of it


@pytest.fixture
def small_manifest(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["path\ttext"]
    for i, text in enumerate(["你好", "我们在这里"]):
        sf.write(tmp_path / f"{i}.wav", 0.1 * rng.standard_normal(16_000 + 4000 * i), 16_000)
        lines.append(f"{i}.wav\t{text}")
    manifest = tmp_path / "m.tsv"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


def _evaluate(model, manifest, *extra):
    from engine.cli import main

    return main(["evaluate", "--model", str(model), "--data", str(manifest), "--device", "cpu",
                 *extra])  # fmt: skip


def test_evaluate_refuses_a_missing_plot_folder_before_the_evaluation(
    tiny_model_dir, small_manifest, tmp_path, capsys
):
    """It evaluated every row, then said the folder was missing."""
    png = tmp_path / "no" / "such" / "rel.png"
    assert _evaluate(tiny_model_dir, small_manifest, "--plot", str(png)) == 2
    out, err = capsys.readouterr()
    assert out == "" and f"--plot: folder {png.parent} of {png} does not exist" in err


def test_evaluate_prints_the_report_when_the_plot_cannot_be_written(
    tiny_model_dir, small_manifest, tmp_path, capsys, monkeypatch
):
    """The folder went (or filled up) during the evaluation: the report stands."""
    import engine.tune.evaluate

    def full(report, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(engine.tune.evaluate, "write_reliability_png", full)
    png = tmp_path / "rel.png"
    assert _evaluate(tiny_model_dir, small_manifest, "--plot", str(png)) == 1
    out, err = capsys.readouterr()
    assert "CER" in out and "2 utterances" in out and "reliability diagram" not in out
    assert f"--plot: cannot write {png} (No space left on device)" in err
    assert "fix that row" not in err
    # the JSON report too: whole on stdout, the failure on stderr
    assert _evaluate(tiny_model_dir, small_manifest, "--json", "--plot", str(png)) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["cer"]["reference_chars"] == 7 and "--plot: cannot write" in err


def test_evaluate_plot_without_matplotlib_stops_before_the_model_loads(
    tiny_model_dir, small_manifest, tmp_path, capsys, monkeypatch
):
    """It evaluated every row, then said matplotlib was missing (naming `tingxie[plot]`, which
    on PyPI is an unrelated project)."""
    import sys

    import engine.loader

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # not installed: found nowhere

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(engine.loader, "load_model", never)
    assert _evaluate(tiny_model_dir, small_manifest, "--plot", str(tmp_path / "r.png")) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.startswith("tingxie-cli evaluate: --plot: ") and "matplotlib" in err
    assert "pip install -e '.[plot]'" in err
    assert not (tmp_path / "r.png").exists()


def test_evaluate_calibrate_on_one_utterance_says_so_and_writes_nothing(
    tiny_model_dir, small_manifest, tmp_path, capsys
):
    folder = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, folder)
    assert _evaluate(folder, small_manifest, "--calibrate", "--limit", "1") == 1
    out, err = capsys.readouterr()
    assert "CER" in out and "1 utterances" in out
    assert "--calibrate needs at least 2 utterances" in err and "nothing written" in err
    assert "fix that row" not in err
    assert not (folder / CALIBRATION_FILE).exists()


def _rows(confidences, right, per_row=30):
    """EvalRows of one measure ("m"), `per_row` characters each."""
    from engine.tune.evaluate import EvalRow

    return [
        EvalRow(f"{i}.wav", "", "", 1.0, 0.1, tuple(right[i : i + per_row]),
                (tuple(confidences[i : i + per_row]),), ("m",))
        for i in range(0, len(right), per_row)
    ]  # fmt: skip


def test_evaluate_calibrate_writes_only_a_map_that_does_better(tmp_path, monkeypatch):
    """--calibrate wrote whatever it fitted: a map whose held-out ECE was worse than the raw
    confidences', or one replacing the folder's calibration.json when that did better on the
    same rows (a second run on the dev set it was fitted on replaced it with a worse fit). It
    writes now only a map that beats both, and says why it did not."""
    from types import SimpleNamespace

    from engine.cli.evaluate import _calibrate
    from engine.tune.evaluate import fit_calibration

    monkeypatch.setattr("engine.tune.evaluate.calibrated_measure", lambda model, options: "m")
    model = SimpleNamespace(path=tmp_path)
    rng = np.random.default_rng(0)
    sure = rng.uniform(0.9, 1.0, 600)  # sure of everything, right on 60 %
    rows = _rows(sure, rng.uniform(size=600) < 0.6)
    fit, _, unwritten = _calibrate(model, rows, None)
    assert unwritten is None and fit.held_out_ece < fit.raw_ece
    written = (tmp_path / CALIBRATION_FILE).read_text(encoding="utf-8")

    # The folder's map was fitted on these very rows: it does better than a held-out fit.
    _, _, unwritten = _calibrate(model, rows, None)
    assert "the folder's calibration.json does better on these rows" in unwritten
    assert f"remove {tmp_path / CALIBRATION_FILE}" in unwritten
    assert (tmp_path / CALIBRATION_FILE).read_text(encoding="utf-8") == written

    (tmp_path / CALIBRATION_FILE).unlink()
    # Right as often as they say overall (90 %), but all right in one utterance and 80 % in
    # the other: each fold's map, fitted on the other utterance, misjudges its own.
    rows = _rows([0.9] * 200, [True] * 100 + [True, False, True, True, True] * 20, per_row=100)
    fit = fit_calibration(rows, "m", None, 2)
    assert fit.held_out_ece >= fit.raw_ece  # what the case is about
    _, _, unwritten = _calibrate(model, rows, None)
    assert unwritten == "it does not lower the ECE of the raw confidences on these rows"
    assert not (tmp_path / CALIBRATION_FILE).exists()


def _beam_calibrated(folder, measure):
    """A calibration.json with a beam map (over this version's evidence) for `measure`: one
    that shows every beam-searched character at 0.5."""
    from engine.lm import EVIDENCE

    beam = BeamCalibration(EVIDENCE, (0.0,) * len(EVIDENCE), 0.0, 900)
    Calibration(measure, a=1.0, b=0.0, characters=900, beam=beam).write(folder)
    return beam


def test_evaluate_calibrate_keeps_the_folders_beam_map_when_it_fits_none(tmp_path, monkeypatch):
    """--calibrate on rows it fits no beam map on (greedy ones here) wrote a Platt-only
    calibration.json over the folder's, losing its beam map, and judged the new Platt map
    against what the folder shows, not against its Platt map. It replaces the Platt map now,
    judged against the folder's Platt map on the same rows, and keeps the beam map."""
    from types import SimpleNamespace

    from engine.cli.evaluate import _calibrate

    monkeypatch.setattr("engine.tune.evaluate.calibrated_measure", lambda model, options: "m")
    beam = _beam_calibrated(tmp_path, "m")
    rng = np.random.default_rng(0)
    rows = _rows(rng.uniform(0.9, 1.0, 600), rng.uniform(size=600) < 0.6)  # no evidence
    fit, written, unwritten = _calibrate(SimpleNamespace(path=tmp_path), rows, None)
    assert unwritten is None and fit.calibration.beam is None and fit.no_beam_map is None
    kept = load_calibration(tmp_path)
    assert kept == written and kept.beam == beam
    assert (kept.a, kept.b) == (fit.calibration.a, fit.calibration.b)

    # The folder's Platt map now fits these rows in-sample: it does better than a held-out fit.
    fit, written, unwritten = _calibrate(SimpleNamespace(path=tmp_path), rows, None)
    assert "the folder's calibration.json does better on these rows" in unwritten
    assert load_calibration(tmp_path) == kept


def test_evaluate_calibrate_with_few_wrong_characters_keeps_the_folders_calibration(
    tiny_with_lm, tmp_path, capsys, monkeypatch
):
    """Beam-searched rows with no wrong character: no beam map can be fitted, which was logged
    at INFO only, and a Platt-only fit replaced the folder's calibration.json (its beam map
    lost), judged against the ECE of the folder's beam map. Now stderr says why no beam map was
    fitted, and too few wrong characters to judge leave the folder's file as it was."""
    import engine.model
    from engine.audio import write_wav
    from engine.tune.evaluate import MIN_WRONG_TO_REPLACE

    monkeypatch.setattr(engine.model, "cpu_has_fast_bf16", lambda: False)  # auto: fp32
    rng = np.random.default_rng(1)
    lines = []
    for i in range(6):
        write_wav(tmp_path / f"{i}.wav", rng.normal(scale=0.1, size=16000).astype(np.float32))
        lines.append(f"{i}.wav\t的一是")
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("path\ttext\n" + "\n".join(lines) + "\n", encoding="utf-8")
    assert _evaluate(tiny_with_lm, manifest, "--json") == 0
    said = [r["hypothesis"] for r in json.loads(capsys.readouterr().out)["rows"]]
    right = [f"{i}.wav\t{text}" for i, text in enumerate(said) if text]
    assert len(right) >= 2  # what the case is about: rows the model writes exactly
    manifest.write_text("path\ttext\n" + "\n".join(right) + "\n", encoding="utf-8")
    _beam_calibrated(tiny_with_lm, "max_prob:1:mean")
    before = (tiny_with_lm / CALIBRATION_FILE).read_text(encoding="utf-8")

    assert _evaluate(tiny_with_lm, manifest, "--calibrate") == 0
    out, err = capsys.readouterr()
    assert "warning: --calibrate: no beam map fitted" in err
    assert "(0 of " in out and "not written" in out
    assert f"0 wrong characters are too few to judge (it takes {MIN_WRONG_TO_REPLACE}" in out
    assert (tiny_with_lm / CALIBRATION_FILE).read_text(encoding="utf-8") == before


def test_a_tuned_models_card_says_whether_its_calibration_was_kept():
    from engine.tune.evaluate import calibration_outcome, fit_calibration

    rng = np.random.default_rng(0)
    sure = rng.uniform(0.9, 1.0, 600)
    kept = fit_calibration(_rows(sure, rng.uniform(size=600) < 0.6), "m", None, 2)
    said = calibration_outcome(kept)
    assert said.startswith("refitted on 600 held-out characters, ECE ") and "shown raw" not in said
    rows = _rows([0.9] * 200, [True] * 100 + [True, False, True, True, True] * 20, per_row=100)
    said = calibration_outcome(fit_calibration(rows, "m", None, 2))
    assert said.startswith("not kept, it did not help on 200") and said.endswith("shown raw")
    assert calibration_outcome(None).startswith("not refitted (too few held-out characters")


def test_a_cancel_with_no_checkpoint_is_not_offered_for_resume(capsys):
    """`--resume` fails where no checkpoint was saved: the CLI said to use it all the same."""
    from engine.cli.tune import _consume
    from engine.tune.events import JobCancelled

    assert _consume([JobCancelled(0, None)], None, 0) == 130
    out = capsys.readouterr().out
    assert "stopped before the first checkpoint; run the job again (without --resume)" in out
    assert _consume([JobCancelled(3, Path("c/step-0000003"))], None, 0) == 130
    assert "stopped at step 3; continue with --resume" in capsys.readouterr().out


# --- Whisper tuning jobs (a tiny random Whisper; the held-out scoring faked where it is slow)


def _need_whisper() -> Path:
    from engine.whisper import WHISPER_BASE_DIR

    if not (WHISPER_BASE_DIR / "tokenizer.json").is_file():
        pytest.skip(f"{WHISPER_BASE_DIR} is absent: run packaging/fetch-whisper-base.py")
    return WHISPER_BASE_DIR


@pytest.fixture(scope="module")
def whisper_data(tmp_path_factory):
    """A tiny Whisper in a CTranslate2 folder (as the app runs Whisper; its Hugging Face
    weights beside it, in hf/) and the manifest rows of the four shortest real clips: (base,
    rows)."""
    from engine.tune.whisper_lora import build_tiny_whisper, convert_for_ctranslate2

    if not (SHARED_AUDIO / "manifest.tsv").is_file():
        pytest.skip("../shared/audio is not present beside this checkout")
    where = tmp_path_factory.mktemp("whisper-job")
    base = convert_for_ctranslate2(
        build_tiny_whisper(where / "hf", _need_whisper()), where / "base"
    )
    rows = [r.split("\t") for r in (SHARED_AUDIO / "manifest.tsv").read_text("utf-8").splitlines()]
    rows = sorted((r for r in rows[1:] if r[0].endswith(".wav")), key=lambda r: float(r[3]))[:4]
    return base, rows


def _job(tmp_path, whisper_data, **settings):
    from engine.tune.config import TuneConfig

    base, rows = whisper_data
    data = tmp_path / "data"
    data.mkdir()
    for name, _, text, *_ in rows:
        shutil.copy(SHARED_AUDIO / name, data / name)
        (data / name).with_suffix(".txt").write_text(text, encoding="utf-8")
    # 0.5: two of the four clips held out (their split keys hash to 0.11 and 0.39, the others
    # to 0.67 and 0.98)
    settings = {"steps": 2, "learning_rate": 1e-3, "heldout_fraction": 0.5, **settings}
    return TuneConfig(model=str(base), data=str(data), output_dir=str(tmp_path / "job"),
                      **settings)  # fmt: skip


class _Scores:
    """Stands for the held-out scoring (engine.tune.evaluate.score_examples in whisper_job):
    records which model scored which texts, and gives each row `per_row` characters, right
    with the chance σ(0.5·logit(p) − 0.5) of their confidence p (overconfident, as raw Whisper
    word probabilities are); the hypothesis is 你好 whatever the reference."""

    def __init__(self, per_row: int = 150) -> None:
        self.calls: list[tuple[Path, list[str]]] = []
        self.per_row = per_row

    def __call__(self, model, examples, options):
        from engine.normalize import normalize_text
        from engine.tune.evaluate import EvalRow
        from engine.whisper import MEASURES, measure_name

        self.calls.append((Path(model.path), [e.text for e in examples]))
        rng = np.random.default_rng(len(self.calls))
        names = tuple(measure_name(n) for n in MEASURES)
        for example in examples:
            p = rng.uniform(0.05, 0.999, self.per_row)
            z = np.log(p / (1 - p))
            ok = rng.random(self.per_row) < 1 / (1 + np.exp(-(0.5 * z - 0.5)))
            reference = normalize_text(example.text, options.normalize)
            confidences = tuple(tuple(float(x) for x in p) for _ in names)
            correct = tuple(bool(x) for x in ok)
            yield EvalRow(str(example.audio), reference, "你好", 1.0, 0.1, correct, confidences,
                          names)  # fmt: skip


@pytest.mark.slow
def test_a_resumed_whisper_job_measures_the_base_again_on_changed_heldout_rows(
    tmp_path, whisper_data, monkeypatch
):
    """A held-out transcript corrected between a cancel and its resume: the card's CER before
    came from the old rows (cer-before.json, reused on any resume), its CER after from the new
    ones. Now the file says which rows it measured, and other rows are measured again."""
    from engine.metrics import cer
    from engine.tune import whisper_job
    from engine.tune.events import JobFinished, StepProgress
    from engine.tune.loop import run_job

    scores = _Scores(per_row=2)
    monkeypatch.setattr(whisper_job, "score_examples", scores)
    config = _job(tmp_path, whisper_data, save_every=1)
    cancel = threading.Event()
    for event in run_job(config, cancel=cancel):
        if isinstance(event, StepProgress):
            cancel.set()
    heldout = whisper_job.prepare_job(config.resolved()).prepared.heldout
    for example in heldout:
        example.audio.with_suffix(".txt").write_text("你好", encoding="utf-8")
    base = Path(config.model)
    scores.calls.clear()
    resumed = list(run_job(config, resume=True))
    assert isinstance(resumed[-1], JobFinished), resumed[-1]
    assert (base, ["你好"] * len(heldout)) in scores.calls  # measured again, on the new rows
    assert (
        resumed[-1].result.cer_before == cer(["你好"] * len(heldout), ["你好"] * len(heldout)).cer
    )
    # what the figure was measured on is kept with it
    key = json.loads((Path(config.output_dir) / "cer-before.json").read_text("utf-8"))
    assert key["cer"] == 0.0 and len(key["heldout"]) == 64


@pytest.mark.slow
def test_a_whisper_job_cancelled_before_its_first_step_stops_before_measuring_the_base(
    tmp_path, whisper_data, monkeypatch, capsys
):
    from engine.cli.tune import _consume
    from engine.tune import whisper_job
    from engine.tune.events import JobCancelled, JobStarted
    from engine.tune.loop import run_job

    scores = _Scores(per_row=2)
    monkeypatch.setattr(whisper_job, "score_examples", scores)
    config = _job(tmp_path, whisper_data)
    cancel = threading.Event()
    seen = []

    def events():
        for event in run_job(config, cancel=cancel):
            seen.append(event)
            if isinstance(event, JobStarted):
                cancel.set()  # Ctrl+C while the model loads
            yield event

    assert _consume(events(), lambda **kw: None, 0) == 130
    assert [type(e) for e in seen] == [JobStarted, JobCancelled]
    assert seen[-1] == JobCancelled(0, None)
    assert scores.calls == []  # the base was not measured first
    assert "run the job again (without --resume)" in capsys.readouterr().out


@pytest.mark.slow
def test_a_cancel_while_the_whisper_base_is_measured_stops_between_two_rows(
    tmp_path, whisper_data, monkeypatch
):
    """A cancel while the base's held-out CER was measured waited for every row (seconds each
    on a CPU). Now the job stops after the row in hand, keeps no partial figure (a resume
    measures the base whole) and no checkpoint was made."""
    from engine.tune import whisper_job
    from engine.tune.events import JobCancelled, JobStarted
    from engine.tune.loop import run_job

    cancel = threading.Event()
    scores = _Scores(per_row=2)
    read = []

    def cancelled_after_one_row(model, examples, options):
        for row in scores(model, examples, options):
            read.append(row)
            cancel.set()
            yield row

    monkeypatch.setattr(whisper_job, "score_examples", cancelled_after_one_row)
    config = _job(tmp_path, whisper_data)
    events = list(run_job(config, cancel=cancel))
    assert [type(e) for e in events] == [JobStarted, JobCancelled]
    assert events[-1] == JobCancelled(0, None)
    heldout = events[0].heldout_examples
    assert heldout > 1 and len(read) == 1
    assert not (Path(config.output_dir) / "cer-before.json").exists()


@pytest.mark.slow
def test_a_tuned_whisper_model_gets_a_calibration_refitted_on_its_heldout_rows(
    tmp_path, whisper_data, monkeypatch
):
    """The base's calibration.json maps the base's confidences: a tuned model had none at all
    (a CTC job refits its own on the held-out rows). Refitted as a CTC job does, and kept only
    where it lowers the cross-fitted ECE; too few characters: none, and confidences raw."""
    from engine.loader import load_model
    from engine.tune import whisper_job
    from engine.tune.events import JobFinished
    from engine.tune.loop import run_job
    from engine.whisper import DEFAULT_MEASURE, measure_name

    base, rows = whisper_data
    with_calibration = tmp_path / "base"
    shutil.copytree(base, with_calibration)
    Calibration(measure_name(DEFAULT_MEASURE), 0.7, 0.2, 900).write(with_calibration)
    monkeypatch.setattr(whisper_job, "score_examples", _Scores(per_row=150))
    config = _job(tmp_path, (with_calibration, rows), steps=1)
    events = list(run_job(config))
    assert isinstance(events[-1], JobFinished), events[-1]
    model_dir = events[-1].result.model_dir
    calibration = load_model(model_dir).calibration
    assert calibration is not None and calibration.characters == 300
    assert calibration.a == pytest.approx(0.5, abs=0.3)  # the rows' map, not the base's 0.7


@pytest.mark.slow
def test_a_whisper_run_resumed_without_its_time_limit_runs_the_steps_asked(
    tmp_path, whisper_data, monkeypatch
):
    """A time limit cut 4 steps to 2 and the run was stopped after step 1: resumed without
    the limit, it still ended at step 2 (the cut-down count came back from the checkpoint)."""
    from engine.audio import load_audio
    from engine.tune import whisper_lora
    from engine.tune.whisper_lora import (
        WhisperCheckpoints,
        WhisperLoraOptions,
        WhisperStep,
        learning_rate,
        tune_whisper_lora,
    )

    class Clock:  # each step takes 10 s
        now = 0.0

        def monotonic(self) -> float:
            self.now += 10.0
            return self.now

    monkeypatch.setattr(whisper_lora, "time", Clock())
    base, rows = whisper_data
    audio = load_audio(SHARED_AUDIO / rows[0][0])
    examples = [(audio, "你好"), (audio[:16_000], "你")]
    options = WhisperLoraOptions(steps=4, batch_size=1, micro_batch_size=1)
    where = WhisperCheckpoints(tmp_path / "job" / "checkpoints", every=1)
    done = []
    first = tune_whisper_lora(
        base.parent / "hf", examples, tmp_path / "job", options, checkpoints=where,
        steps_that_fit=lambda _, step_time: int(15.0 / step_time),
        stop=lambda: len(done) >= 1,
    )  # fmt: skip
    for event in first:
        if isinstance(event, WhisperStep):
            done.append((event.step, event.total_steps))
    assert done == [(1, 2)]  # 15 s left: one more step of 10 s fits
    resumed = tune_whisper_lora(
        base.parent / "hf", examples, tmp_path / "job", options, checkpoints=where, resume=True
    )
    steps = [e for e in resumed if isinstance(e, WhisperStep)]
    assert [(s.step, s.total_steps) for s in steps] == [(2, 4), (3, 4), (4, 4)]
    assert steps[0].learning_rate == pytest.approx(learning_rate(1e-3, 2, 1, 4))
    assert steps[-1].learning_rate == 0.0
    assert (tmp_path / "job" / "model" / "model.bin").is_file()
