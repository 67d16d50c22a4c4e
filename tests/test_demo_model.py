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
# Regression bounds, each just above what the committed model measures here, so that a real
# regression fails them; the targets themselves are measured on larger sets by
# bench/bench_accuracy.py (the README's figures). Synthesis and decoding are seeded and
# deterministic; the margins absorb another CPU's rounding (a few characters), no more.
# Mutation tried on the stage-6 model: left in train mode at load (dropout and time masking at
# inference) it measured 9.7 % held-out and 23.8 % on the passages, passing the old bounds
# (10 %, 25 %) and failing those of then. Greedy held-out CER rose with stage 7 (4.7 % then,
# 12.2 % on stage 7): the template characters now share their sounds with others
# (homophones), which the LM sorts.
HELDOUT_CER_BOUND = 0.085  # measured 6.5 % on stage 8 (26 errors in 401 characters): 8 more fail
PASSAGE_CER_BOUND = 0.17  # measured 14.2 % (34 in 239) on stage 8: 7 more fail
# AUROC of right vs wrong characters on the held-out sentences (13 wrong characters). Mutation
# tried: aggregation "mean" computing the minimum (0.846 for max_prob) fails; the old bound
# (0.8 for both) passed it. Measured on stage 8 (20 wrong characters): .896, .852.
AUROC_BOUND = {"max_prob:1:mean": 0.87, "entropy_gibbs_exp:1:min": 0.83}

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


def test_heldout_cer_stays_where_it_was_measured(demo, heldout):
    """40 unseen sentences; the target (10 %) is met with 5.7 % on all 200 held-out sentences
    (bench/bench_accuracy.py). Greedy decoding: the acoustic model alone."""
    from engine.tune.evaluate import EvalOptions, evaluate

    report = evaluate(demo, heldout, EvalOptions(decoder="greedy"))
    assert report.cer.reference_chars > 300
    assert report.cer.cer <= HELDOUT_CER_BOUND, f"held-out CER {report.cer.cer:.1%}"


# With the model folder's language model (lm/, a 4-gram of the training text), measured here
# on stage 6 2.0 % against 5.2 % greedy, on stage 8 0.75 % (3 errors) against 6.5 %
# (bench/bench_lm.py: 200 sentences, 1.5 % and 6.9 %). Bound: 9 more errors fail.
LM_CER_BOUND = 0.03


def test_the_model_folders_language_model_is_used_by_default_and_lowers_the_cer(demo, heldout):
    from engine.tune.evaluate import evaluate

    report = evaluate(demo, heldout)
    assert report.decoder.startswith("beam search, 4-gram LM")
    assert report.greedy_cer is not None
    assert report.cer.cer <= LM_CER_BOUND, f"CER with the LM {report.cer.cer:.1%}"
    assert report.cer.cer < report.greedy_cer.cer - 0.015


# Everyday sentences of another source than the training text (HSK 3.0; 310 of them in
# bench/bench_accuracy.py: 24.6 % with the LM, 36.8 % greedy, issue 12's target ≤ 25 %): the
# first 120 of the bench's test lines here (the lower HSK levels: shorter, easier), measured
# 18.1 % on stage 8 (172 errors in 952 characters; 9 more fail; stage 7: 19.9 %). The stage-6
# model, with its 345 characters, measured 72.5 % on the 310.
EVERYDAY_CER_BOUND = 0.19
# The confidence shown there (the beam map of calibration.json, fitted on the HSK dev lines):
# measured AUROC 0.859, ECE 0.034 on the 120 (stage 7 with its map: 0.868, 0.034); with the
# Platt map alone (what a model without the beam map shows) AUROC is ~0.73, which fails.
EVERYDAY_AUROC_BOUND = 0.84
EVERYDAY_ECE_BOUND = 0.06


def test_everyday_sentences_of_another_source_are_transcribed(demo, tmp_path):
    from engine.tune.evaluate import evaluate

    lines = (CORPUS / "punctuation" / "heldout-hsk.txt").read_text(encoding="utf-8")
    sentences = lines.splitlines()[13::14][:120]
    for _ in synthesize(sentences, tmp_path, SynthOptions(seed=101)):
        pass
    report = evaluate(demo, tmp_path / "manifest.tsv")
    print(f"everyday: CER {report.cer.cer:.2%} ({report.cer.reference_chars} characters), "
          f"greedy {report.greedy_cer.cer:.2%}; {report.confidence_measure} AUROC "
          f"{report.auroc:.3f}, ECE {report.ece:.3f}")  # fmt: skip
    assert report.cer.reference_chars > 900
    assert report.cer.cer <= EVERYDAY_CER_BOUND, f"everyday CER {report.cer.cer:.1%}"
    # the confidence shown: the folder's beam map (fitted on other HSK lines)
    assert report.confidence_measure == "max_prob:1:mean+beam"
    assert report.auroc >= EVERYDAY_AUROC_BOUND, f"AUROC {report.auroc:.3f}"
    assert report.ece <= EVERYDAY_ECE_BOUND, f"ECE {report.ece:.3f}"


# Hotwords (issue 12: errors on the terms fall >= 50 % on domain audio the model never heard):
# resources/corpus/build.py's 61 medical terms at the default weight, on the 40 hand-written
# medicine test sentences voiced as bench/bench_lm.py voices them (seed 43). Measured on stage 8
# with weight 5: missed terms 26 -> 9 of 37 (65 %); the old weight 3 gave 26 -> 16 (38 %), which
# fails. On the general held-out sentences the list costs at most a few characters.
HOTWORD_MISSES_BOUND = 0.5  # misses with the list / misses without: the target itself


def _misses(rows, terms: list[str]) -> int:
    return sum(max(0, r.reference.count(t) - r.hypothesis.count(t)) for r in rows for t in terms)


@pytest.fixture(scope="module")
def medicine_test(tmp_path_factory) -> Path:
    """The 40 hand-written medicine test sentences, voiced as bench/bench_lm.py voices them."""
    folder = tmp_path_factory.mktemp("medicine-test")
    return _manifest(folder, "medicine/independent-test.txt", 40, SynthOptions(seed=43))


def test_hotwords_halve_the_missed_terms_on_unseen_medicine_sentences(
    demo, heldout, medicine_test, tmp_path
):
    import importlib.util

    from engine.tune.evaluate import EvalOptions, evaluate

    spec = importlib.util.spec_from_file_location("corpus_build", CORPUS / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    terms = [t for group in build.MEDICINE.values() for t in group]
    hot = tmp_path / "hotwords.txt"
    hot.write_text("\n".join(terms) + "\n", encoding="utf-8")
    audio = medicine_test
    without = evaluate(demo, audio)
    with_list = evaluate(demo, audio, EvalOptions(hotwords=str(hot)))
    before, after = _misses(without.rows, terms), _misses(with_list.rows, terms)
    print(f"missed terms {before} -> {after}; CER {without.cer.cer:.2%} -> {with_list.cer.cer:.2%}")
    assert before >= 20  # the terms are there to miss
    assert after <= HOTWORD_MISSES_BOUND * before, f"missed terms {before} -> {after}"
    assert with_list.cer.cer < without.cer.cer
    general = evaluate(demo, heldout, EvalOptions(hotwords=str(hot))).cer
    plain = evaluate(demo, heldout).cer
    assert general.cer <= plain.cer + 0.005, f"general CER {plain.cer:.2%} -> {general.cer:.2%}"


# Domain text (issue 12: with >= 200 domain sentences that are not the test sentences, domain
# CER falls >= 25 %, no audio, no training): bench_lm.py's domain text (the medicine train.txt
# and train-natural.txt, 280 sentences) on the same 40 test sentences. Measured on stage 8 with
# homophone search (on with domain text): 37.0 -> 26.8 % (28 %); without it 32.2 % (13 %).
DOMAIN_TEXT_CUT_BOUND = 0.25  # the target itself


def test_domain_text_alone_cuts_the_cer_on_unseen_medicine_sentences(demo, medicine_test, tmp_path):
    from engine.tune.evaluate import EvalOptions, evaluate

    domain = tmp_path / "medicine.txt"
    domain.write_text(
        "".join(
            (CORPUS / "medicine" / f).read_text(encoding="utf-8")
            for f in ("train.txt", "train-natural.txt")
        ),
        encoding="utf-8",
    )
    before = evaluate(demo, medicine_test).cer.cer
    after = evaluate(demo, medicine_test, EvalOptions(domain_text=str(domain))).cer.cer
    print(f"medicine test CER {before:.2%} -> {after:.2%} with the domain text")
    assert after <= (1 - DOMAIN_TEXT_CUT_BOUND) * before, f"{before:.2%} -> {after:.2%}"


def test_passages_with_silence_are_transcribed(demo, tmp_path):
    """Longer input, as a file or a recording holds it: unseen sentences three at a time,
    joined by pauses, with silence around (a model that heard single sentences only measured
    ~80 %)."""
    from engine.tune.evaluate import EvalOptions, evaluate

    options = SynthOptions(seed=102, sentences_range=(3, 3), silence_range=(0.5, 1.0))
    sentences = read_sentences(CORPUS / "general/heldout.txt")[40:64]
    for _ in synthesize(sentences, tmp_path, options):
        pass
    report = evaluate(demo, tmp_path / "manifest.tsv", EvalOptions(decoder="greedy"))
    assert len(report.rows) == 8
    assert report.cer.cer <= PASSAGE_CER_BOUND, f"passage CER {report.cer.cer:.1%}"


@pytest.mark.parametrize("measure", ["max_prob:1:mean", "entropy_gibbs_exp:1:min"])
def test_confidence_is_lower_on_wrong_characters(demo, heldout, measure):
    """The transcriber's default (bench: AUROC 0.90 on 200 sentences, the best calibrated) and
    an entropy measure (0.86); 13 of the 400 characters here are wrong. Bounds and the mutation
    they catch: AUROC_BOUND."""
    from engine.tune.evaluate import EvalOptions, evaluate

    options = EvalOptions(confidence=measure, compare=(), decoder="greedy")
    report = evaluate(demo, heldout, options)
    conf = np.array([c for r in report.rows for c in r.confidences[0]])
    right = np.array([ok for r in report.rows for ok in r.correct])
    assert (~right).sum() >= 5, "too few errors to compare"
    assert conf[~right].mean() < conf[right].mean() - 0.1
    assert report.auroc >= AUROC_BOUND[measure], f"AUROC {report.auroc:.3f}"


# The short LoRA job below, measured on stage 6: medicine CER on unseen sentences 48.6 → 37.6 %
# (×0.77), general 4.7 → 11.7 % (+7.0 points); on stage 7: 34.9 → 11.5 % (×0.33), general
# 12.2 → 17.0 % (+4.8 points); on stage 8 (shipped): 36.7 → 11.5 % (×0.31), general 6.5 →
# 11.0 % (+4.5 points). Bounds: ×0.85 and +9 points. The
# settings (40 steps of 8 s, lr 3e-3, 40 general sentences replayed) were chosen on a dev split
# (medicine train sentences 100-119, never scored here) over 120 replayed (dev ×0.83, general
# +5.0) and none (general +28 points). bench/bench_accuracy.py measures the targets.
DOMAIN_CUT_BOUND = 0.85
GENERAL_RISE_BOUND = 0.09


@pytest.mark.slow
def test_short_tuning_run_learns_the_domain_without_forgetting(demo, heldout, tmp_path):
    """LoRA on 40 medicine sentences with 40 general ones replayed lowers the CER on 20 unseen
    medicine sentences, and the general CER (the 40 unseen sentences above) rises only within
    bounds. The old test scored its own training sentences and never looked at the general
    set.

    Mutations tried, each failing this test: the replayed general sentences left out of the job
    (general +28 points), and a learning rate of 1e-2, as a schedule bug would give (medicine
    48.6 → 48.6 %, general +26.7 points)."""
    from engine.tune.config import TuneConfig
    from engine.tune.data import manifest_text
    from engine.tune.evaluate import EvalOptions, evaluate
    from engine.tune.events import JobFinished
    from engine.tune.loop import run_job

    medicine = _manifest(tmp_path / "med", "medicine/train.txt", 40, SynthOptions(seed=103))
    general = _manifest(tmp_path / "gen", "general/train.txt", 40, SynthOptions(seed=107))
    unseen = tmp_path / "med-heldout"
    sentences = read_sentences(CORPUS / "medicine/heldout.txt")[:20]
    for _ in synthesize(sentences, unseen, SynthOptions(seed=106)):
        pass
    unseen = unseen / "manifest.tsv"
    rows = [
        (str((m.parent / row.split("\t")[0]).resolve()), row.split("\t")[1])
        for m in (medicine, general)
        for row in m.read_text(encoding="utf-8").splitlines()[1:]
    ]
    data = tmp_path / "train.tsv"
    data.write_text(manifest_text(rows), encoding="utf-8")
    config = TuneConfig(
        model=str(DEMO_MODEL_DIR),
        data=str(data),
        output_dir=str(tmp_path / "job"),
        method="lora",
        steps=40,
        learning_rate=3e-3,
        lora_rank=16,
        warmup_steps=4,
        batch_seconds=8.0,
        micro_batch_seconds=8.0,
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
    tuned = finished[0].result.model_dir
    greedy = EvalOptions(decoder="greedy")  # the acoustic model (tuning keeps the base's lm/)
    before, after = (evaluate(m, unseen, greedy).cer.cer for m in (demo, tuned))
    general_before, general_after = (evaluate(m, heldout, greedy).cer.cer for m in (demo, tuned))
    print(
        f"medicine {before:.1%} -> {after:.1%}, general {general_before:.1%} -> {general_after:.1%}"
    )
    assert before > 0.25  # the domain's terms are hard for the demo model
    assert after <= before * DOMAIN_CUT_BOUND, f"medicine CER {before:.1%} -> {after:.1%}"
    rise = general_after - general_before
    assert rise <= GENERAL_RISE_BOUND, f"general CER {general_before:.1%} -> {general_after:.1%}"
