"""What the CLI's transcribe, evaluate and embed say with a Whisper model, and the held-out
AUROC `evaluate --calibrate` prints, each with the test that failed before its fix: a tiny
random Whisper in a CTranslate2 folder (as the app runs Whisper) on tone clips."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import test_calibration_faults

from engine.cli import main
from engine.tune.testdata import tone_corpus


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny Whisper as a CTranslate2 folder and a manifest of two tone clips."""
    from engine.tune.whisper_lora import build_tiny_whisper, convert_for_ctranslate2

    tokenizer = test_calibration_faults._need_whisper()
    where = tmp_path_factory.mktemp("whisper-cli")
    base = convert_for_ctranslate2(build_tiny_whisper(where / "hf", tokenizer), where / "base")
    return base, tone_corpus(where / "tones", 2)


def test_evaluate_says_whisper_decodes_by_beam_search_and_which_options_it_ignores(
    tiny_whisper, tmp_path, capsys
):
    """Before: the report said "decoder greedy" (Whisper decodes with beam 5), and --hotwords
    or --decoder beam with a Whisper model changed nothing without a word."""
    base, manifest = tiny_whisper
    hotwords = tmp_path / "terms.txt"
    hotwords.write_text("天地\n", encoding="utf-8")
    argv = ["evaluate", "--model", str(base), "--data", str(manifest), "--json"]
    assert main([*argv, "--decoder", "beam", "--hotwords", str(hotwords)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["decoder"] == "Whisper beam search (beam 5, no language model)"
    assert "warning: --decoder, --hotwords are for CTC models and not used with" in err
    assert main(argv) == 0
    assert "warning" not in capsys.readouterr().err  # nothing set, nothing said


def test_the_report_says_how_fast_a_run_slower_than_real_time_was():
    """Before: RTF 4.6152 printed as "(0x real time)"."""
    from engine.cli.evaluate import format_report

    cer = SimpleNamespace(cer=0.1, substitutions=1, deletions=0, insertions=0, reference_chars=10)
    report = SimpleNamespace(
        model="m", manifest="d", rows=(), audio_seconds=10.0, decoder="greedy", cer=cer,
        rtf=4.6152, auroc=None, ece=0.1, confidence_measure="c", wrong_characters=1,
        characters=10, greedy_cer=None, measures=(),
    )  # fmt: skip
    assert "RTF 4.6152 (0.22x real time)" in format_report(report)
    assert "(100x real time)" in format_report(SimpleNamespace(**{**vars(report), "rtf": 0.01}))


def test_transcribe_names_every_option_a_whisper_model_ignores(tiny_whisper, capsys):
    """Before: only --domain-text and --hotwords were said unused with Whisper; --decoder,
    --confidence, --backend and --batch-size were ignored without a word."""
    from engine.cli.transcribe import _load_models
    from engine.model import LoadOptions
    from engine.transcribe import TranscribeOptions

    base, _ = tiny_whisper
    args = argparse.Namespace(
        no_punctuation=True, model=str(base), domain_text=None, hotwords=None,
        decoder="greedy", confidence="entropy", backend="onnx", batch_size=3,
    )  # fmt: skip
    assert not isinstance(_load_models(args, TranscribeOptions(), LoadOptions()), int)
    err = capsys.readouterr().err
    expected = "--decoder, --confidence, --backend, --batch-size are for CTC models and not used"
    assert f"warning: {expected} with {base}" in err and "--prompt" in err


def test_embed_with_a_whisper_model_says_embeddings_need_a_ctc_model(
    tiny_whisper, tmp_path, capsys
):
    """Before: "model type '?' is not a supported CTC family"."""
    base, manifest = tiny_whisper
    clip = manifest.parent / manifest.read_text(encoding="utf-8").splitlines()[1].split("\t")[0]
    assert main(["embed", str(clip), "--model", str(base), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "this is a Whisper model; give a CTC model's folder or Hub id" in err, err
    assert "model type" not in err


def test_the_held_out_auroc_of_a_platt_map_is_the_raw_ranking_within_each_fold():
    """Before: the held-out AUROC pooled two folds' Platt maps (0.684 raw, 0.565 "calibrated"
    in one run), though each map, and the one written, keeps the ranking."""
    from engine.tune.evaluate import EvalOptions, EvalRow, auroc, fit_calibration

    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):  # row i in fold i % 2: the folds' confidences lie on other scales
        conf = rng.uniform(0, 0.5) + rng.uniform(0, 0.5, 40) if i % 2 else rng.uniform(0, 1, 40)
        correct = rng.uniform(0, 1, 40) < (conf - 0.3 if i % 2 else conf)
        rows.append(EvalRow(f"{i}.wav", "", "", 1.0, 0.1, tuple(correct), (tuple(conf),)))
    measure = EvalOptions().measures[0].name
    fit = fit_calibration(rows, measure)
    fold = np.array([i % 2 for i, r in enumerate(rows) for _ in r.correct])
    conf = np.array([c for r in rows for c in r.confidences[0]])
    ok = np.array([x for r in rows for x in r.correct])
    within = np.mean([auroc(conf[fold == k], ok[fold == k]) for k in (0, 1)])
    assert fit.raw_auroc == pytest.approx(within)
    assert fit.held_out_auroc == pytest.approx(within)


def test_transcribe_keeps_whisper_s_own_marks_and_adds_none(tiny_whisper, monkeypatch):
    """Before: the punctuation model added marks to each Whisper segment without one (a pause
    cut its sentence: 一二线尝试虽然 became 一二线尝试，虽然), guessing with no context, though
    --help says Whisper's own marks are kept; --no-punctuation still leaves them out."""
    import engine.cli.transcribe as cli
    from engine.model import LoadOptions
    from engine.results import Char, Segment
    from engine.transcribe import TranscribeOptions

    def refused():
        raise AssertionError("the punctuation model was loaded for a Whisper model")

    monkeypatch.setattr(cli, "default_punctuator", refused)
    unset = TranscribeOptions()
    args = argparse.Namespace(
        no_punctuation=False, model=str(tiny_whisper[0]), domain_text=None, hotwords=None,
        decoder=unset.decoder, confidence=unset.confidence, backend="auto",
        batch_size=unset.batch_size,
    )  # fmt: skip
    _, _, punctuator = cli._load_models(args, unset, LoadOptions())
    chars = (Char("好", 0.0, 0.2, 0.9, (), "，"), Char("吗", 0.2, 0.4, 0.9))
    whisper_wrote = [Segment(0, 0.0, 0.4, chars)]
    assert punctuator.punctuate(whisper_wrote) == whisper_wrote
    args.no_punctuation = True
    assert cli._load_models(args, unset, LoadOptions())[2] is None


def test_a_damaged_punctuation_model_is_told_before_the_speech_model_loads(
    tiny_model_dir, monkeypatch, capsys
):
    """A CTC model uses the punctuation model: its error comes first (exit 2), not after a
    speech model's load (minutes of a download from the Hub)."""
    import engine.cli.transcribe as cli
    from engine.model import LoadOptions
    from engine.punctuation import PunctuationError
    from engine.transcribe import TranscribeOptions

    def damaged():
        raise PunctuationError("punctuation.load_failed", path="p", detail="cut short")

    def loaded(*_args, **_kwargs):
        raise AssertionError("the speech model loaded before the punctuation model was checked")

    monkeypatch.setattr(cli, "default_punctuator", damaged)
    monkeypatch.setattr(cli, "load_model", loaded)
    args = argparse.Namespace(no_punctuation=False, model=str(tiny_model_dir))
    assert cli._load_models(args, TranscribeOptions(), LoadOptions()) == 2
    assert "cannot load the punctuation model (cut short)" in capsys.readouterr().err
