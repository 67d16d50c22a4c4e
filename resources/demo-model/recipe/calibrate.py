"""Fit a confidence calibration for the demo model on dev sentences only (not shipped).

Dev set: the 100 general training lines that build_lm.py holds out of its dev n-gram (their
seed-7 renderings, a voice the training set did not use for them) and the 25 hand-written
medicine sentences of `resources/corpus/medicine/independent-dev.txt` (seed 41): everyday
template speech the model handles and domain speech it mostly cannot write, so the map sees
both. Decoded as transcription decodes (beam search with the folder's lm/), scored with the
default measure (max_prob, mean over the character's frames) and fitted by Platt scaling
(engine.calibration; the same as `tingxie-cli evaluate --calibrate`). Never fitted on the
held-out or independent test sentences that the README's figures come from.

The fit is not shipped: measured on the test sets it lowers the general held-out ECE (0.096 ->
0.074) but raises the independent medicine test's (0.569 -> 0.641), where the model writes
characters it cannot know with high confidence (README, "Calibrated confidence"). `--write`
puts it into resources/demo-model/calibration.json, which transcription then applies. Run
from the repository root after build_lm.py:
    .venv/bin/python resources/demo-model/recipe/calibrate.py [--work out/demo-model] [--write]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "resources" / "corpus"
MODEL = ROOT / "resources" / "demo-model"
DEV_LINES = 100  # as in build_lm.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "demo-model")
    parser.add_argument("--write", action="store_true", help="write calibration.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from engine.atomic import atomic_write_text
    from engine.model import LoadOptions, load_model
    from engine.ngram import split_sentences
    from engine.tune.data import from_manifest, manifest_text
    from engine.tune.evaluate import EvalOptions, fit_calibration, iter_rows, summarize
    from engine.tune.synth import SynthOptions, synthesize

    general = split_sentences((CORPUS / "general" / "train.txt").read_text(encoding="utf-8"))
    medicine = split_sentences((CORPUS / "medicine" / "independent-dev.txt").read_text("utf-8"))
    rows = []
    for name, sentences, seed in (
        ("lm-dev", general[-DEV_LINES:], 7),
        ("medicine-dev", medicine, 41),
    ):
        folder = args.work / name
        if not (folder / "manifest.tsv").is_file():
            for _ in synthesize(sentences, folder, SynthOptions(seed=seed, copies=1)):
                pass
        rows += [(str(e.audio), e.text) for e in from_manifest(folder / "manifest.tsv").examples]
    manifest = args.work / "calibration-dev" / "manifest.tsv"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(manifest, manifest_text(rows))
    model = load_model(MODEL, LoadOptions(device="cpu", precision="fp32"))
    options = EvalOptions(load=LoadOptions(device="cpu", precision="fp32"))
    scored = list(iter_rows(model, manifest, options))
    report = summarize(scored, options)
    fit = fit_calibration(scored, options.measures[0].name, options)
    if args.write:
        fit.calibration.write(MODEL)
    c = fit.calibration
    print(f"dev: {len(scored)} utterances, CER {report.cer.cer:.2%}, AUROC {report.auroc:.3f}")
    print(
        f"Platt a={c.a:.3f} b={c.b:.3f} on {c.characters} characters; ECE {fit.raw_ece:.3f} "
        f"raw, {fit.held_out_ece:.3f} calibrated on held-out rows"
    )


if __name__ == "__main__":
    main()
