"""Fit the demo model's confidence calibration on dev sentences only.

Dev set: the HSK sentences of bench/bench_accuracy.py's dev split (every 14th line of
`resources/corpus/punctuation/heldout-hsk.txt` from the 8th: never trained on, and not the
bench's test lines, which start from the 14th) rendered with seed 7, and the 25 hand-written
medicine sentences of `resources/corpus/medicine/independent-dev.txt` (seed 41): everyday speech
of another source than the training text, and domain speech the model partly cannot write, so
the map sees both. Decoded as transcription decodes (beam search with the folder's lm/), scored
with the default measure (max_prob, mean over the character's frames) and fitted as
`tingxie-cli evaluate --calibrate` fits (engine.calibration): a Platt map of the measure for
greedy decoding, and the beam map of the search's evidence that beam-searched text shows.
Never fitted on the test sentences that the README's figures come from. `--write` puts it into
the model folder's calibration.json (--model, the shipped resources/demo-model by default; `make
demo-model` names its DEMO_INTO), which transcription then applies. Run from the repository root
after build_lm.py:
    .venv/bin/python resources/demo-model/recipe/calibrate.py [--model FOLDER]
        [--work out/demo-model] [--write]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "resources" / "corpus"
MODEL = ROOT / "resources" / "demo-model"
HSK = CORPUS / "punctuation" / "heldout-hsk.txt"
HSK_EVERY, HSK_DEV_START = 14, 7  # as bench/bench_accuracy.py's dev split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, default=MODEL, help="the model folder to score and write into"
    )
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

    hsk = HSK.read_text(encoding="utf-8").splitlines()[HSK_DEV_START::HSK_EVERY]
    medicine = split_sentences((CORPUS / "medicine" / "independent-dev.txt").read_text("utf-8"))
    rows = []
    for name, sentences, seed in (
        ("hsk-dev", hsk, 7),
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
    model = load_model(args.model, LoadOptions(device="cpu", precision="fp32"))
    options = EvalOptions(load=LoadOptions(device="cpu", precision="fp32"))
    scored = list(iter_rows(model, manifest, options))
    report = summarize(scored, options)
    fit = fit_calibration(scored, options.measures[0].name, options)
    if args.write:
        fit.calibration.write(args.model)
    c = fit.calibration
    print(f"dev: {len(scored)} utterances, CER {report.cer.cer:.2%}, AUROC {report.auroc:.3f}")
    print(
        f"Platt a={c.a:.3f} b={c.b:.3f}{' and a beam map' if c.beam else ''} on {c.characters} "
        f"characters; on held-out rows ECE {fit.raw_ece:.3f} raw, {fit.held_out_ece:.3f} "
        f"calibrated, AUROC {fit.raw_auroc:.3f} raw, {fit.held_out_auroc:.3f} calibrated"
    )


if __name__ == "__main__":
    main()
