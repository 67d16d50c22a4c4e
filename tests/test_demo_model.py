"""The committed demo model really recognizes synthetic Mandarin, its confidences point at its
errors, and a short tuning run teaches it domain sentences. Audio is synthesized (seeded) from
the corpus' held-out and domain text with espeak-ng; the full measurements are in
bench/bench_accuracy.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.model import DEMO_MODEL_DIR, LoadOptions, load_model
from engine.tune.synth import SynthOptions, read_sentences, synthesize

CORPUS = Path(__file__).resolve().parents[1] / "resources" / "corpus"
# The committed model measures 14 % on the passages below (11 % on 48 passages in
# bench/bench_accuracy.py); trained on single sentences only, it measured ~80 %.
PASSAGE_CER_BOUND = 0.25

pytestmark = [
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing"),
    pytest.mark.skipif(
        not (DEMO_MODEL_DIR / "model.safetensors").is_file(), reason="no demo model committed"
    ),
]


def _manifest(folder: Path, text: str, n: int, options: SynthOptions) -> Path:
    sentences = read_sentences(CORPUS / text)[:n]
    for _ in synthesize(sentences, folder, options):
        pass
    return folder / "manifest.tsv"


@pytest.fixture(scope="module")
def demo():
    return load_model(DEMO_MODEL_DIR, LoadOptions(device="cpu", precision="fp32"))


@pytest.fixture(scope="module")
def heldout(tmp_path_factory) -> Path:
    """40 unseen general sentences, rendered with the training set's variation."""
    folder = tmp_path_factory.mktemp("heldout")
    return _manifest(folder, "general/heldout.txt", 40, SynthOptions(seed=101))


def test_heldout_cer_meets_the_target(demo, heldout):
    """The issue's target, 10 %, on 40 unseen sentences; the committed model measures 4.7 %
    here and 5.7 % on all 200 held-out sentences (bench/bench_accuracy.py)."""
    from engine.tune.evaluate import evaluate

    report = evaluate(demo, heldout)
    assert report.cer.reference_chars > 300
    assert report.cer.cer <= 0.10, f"held-out CER {report.cer.cer:.1%}"


def test_passages_with_silence_are_transcribed(demo, tmp_path):
    """Longer input, as a file or a recording holds it: unseen sentences three at a time,
    joined by pauses, with silence around (a model that heard single sentences only fails)."""
    from engine.tune.evaluate import evaluate

    options = SynthOptions(seed=102, sentences_range=(3, 3), silence_range=(0.5, 1.0))
    sentences = read_sentences(CORPUS / "general/heldout.txt")[40:52]
    for _ in synthesize(sentences, tmp_path, options):
        pass
    report = evaluate(demo, tmp_path / "manifest.tsv")
    assert len(report.rows) == 4
    assert report.cer.cer <= PASSAGE_CER_BOUND, f"passage CER {report.cer.cer:.1%}"


@pytest.mark.parametrize("measure", ["max_prob:1:mean", "entropy_gibbs_exp:1:min"])
def test_confidence_is_lower_on_wrong_characters(demo, heldout, measure):
    """The transcriber's default (bench: AUROC 0.90 on 200 sentences, the best calibrated) and
    an entropy measure (0.86); 13 of the 400 characters here are wrong."""
    from engine.tune.evaluate import EvalOptions, evaluate

    report = evaluate(demo, heldout, EvalOptions(confidence=measure, compare=()))
    conf = np.array([c for r in report.rows for c in r.confidences[0]])
    right = np.array([ok for r in report.rows for ok in r.correct])
    assert (~right).sum() >= 5, "too few errors to compare"
    assert conf[~right].mean() < conf[right].mean() - 0.1
    assert report.auroc > 0.8


@pytest.mark.slow
def test_short_tuning_run_learns_domain_sentences(demo, tmp_path):
    from engine.tune.config import TuneConfig
    from engine.tune.evaluate import evaluate
    from engine.tune.events import JobFinished
    from engine.tune.loop import run_job

    options = SynthOptions(seed=103, copies=2)
    manifest = _manifest(tmp_path / "med", "medicine/train.txt", 8, options)
    before = evaluate(demo, manifest).cer.cer
    config = TuneConfig(
        model=str(DEMO_MODEL_DIR),
        data=str(manifest),
        output_dir=str(tmp_path / "job"),
        method="lora",
        steps=40,
        learning_rate=3e-3,
        lora_rank=16,
        warmup_steps=4,
        batch_seconds=12.0,
        micro_batch_seconds=12.0,
        mask_time_prob=0.0,
        heldout_fraction=0.0,
        eval_every=0,
        save_every=40,
        precision="fp32",
        device="cpu",
    )
    events = list(run_job(config))
    finished = [e for e in events if isinstance(e, JobFinished)]
    assert finished, f"tuning failed: {events[-1]}"
    after = evaluate(finished[0].result.model_dir, manifest).cer.cer
    assert before > 0.2  # the medical terms are unknown to the demo model
    assert after < before * 0.7, f"CER {before:.1%} -> {after:.1%}"
