"""Build the demo model's language model (lm/): a character 4-gram of its training text, with
the beam-search weights chosen on sentences that n-gram did not see.

1. Weights: a 4-gram of the first 1700 lines of general/train.txt; the last 100 lines are
   synthesized (seed 7, one rendering each, a voice the training set did not use for them) and
   decoded with every (lm_weight, char_bonus) of a small grid; the lowest CER wins (ties: the
   smaller weights). The acoustic model did train on those 100 sentences, so its scores are
   surer than on new text: the weights chosen lean low, if anything.
2. The shipped model: the same estimator over all 1800 lines, written with those weights into
   resources/demo-model/lm/ (`engine.lm.build_model_lm`).

With `--everyday FILE` (the broad stage 7, recipe/everyday.py), that file's sentences join
the text, and the dev sentences are its last 100 lines instead (never voiced in training: only
the file's first lines are), left out of the dev n-gram.

Only the model's own training text goes in: no held-out (HSK), domain or independent sentence.
Run from the repository root (about a minute; a few with --everyday):
    .venv/bin/python resources/demo-model/recipe/build_lm.py [--work out/demo-model/lm-dev]
        [--model resources/demo-model] [--everyday out/demo-model/everyday.txt]
"""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "resources" / "corpus"
MODEL = ROOT / "resources" / "demo-model"
DEV_LINES = 100
GRID_WEIGHT = (0.3, 0.5, 0.7, 1.0)
GRID_BONUS = (0.0, 0.5, 1.0, 1.5, 2.0)
GRID_TOKENS = (8, 16, 32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "demo-model" / "lm-dev")
    parser.add_argument("--order", type=int, default=4)
    parser.add_argument("--model", type=Path, default=MODEL, help="the model folder to give lm/")
    parser.add_argument("--everyday", type=Path, help="stage 7's sentences (everyday.py text)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from engine import audio
    from engine.lm import BeamDecoder, BeamOptions, ModelLM, build_model_lm, decoder_chars
    from engine.metrics import cer
    from engine.model import LoadOptions, load_model
    from engine.ngram import split_sentences, train_ngram
    from engine.transcribe import Transcriber
    from engine.tune.data import from_manifest
    from engine.tune.synth import SynthOptions, synthesize

    text = CORPUS / "general" / "train.txt"
    lines = split_sentences(text.read_text(encoding="utf-8"))
    texts = [text]
    if args.everyday:
        texts.insert(0, args.everyday)
        everyday = split_sentences(args.everyday.read_text(encoding="utf-8"))
        fit, dev = everyday[:-DEV_LINES] + lines, everyday[-DEV_LINES:]
    else:
        fit, dev = lines[:-DEV_LINES], lines[-DEV_LINES:]
    manifest = args.work / "manifest.tsv"
    if not manifest.is_file():
        for _ in synthesize(dev, args.work, SynthOptions(seed=7, copies=1)):
            pass
    model = load_model(args.model, LoadOptions(device="cpu", precision="fp32"))
    t = Transcriber(model)
    rows = from_manifest(manifest).examples
    refs = [r.text for r in rows]
    lps = [t.log_probs([audio.load_audio(r.audio)])[0] for r in rows]
    chars = decoder_chars(model.vocab, model.blank_id, model.special_ids, model.word_delimiter)
    ngram = train_ngram(fit, args.order, chars)
    kw = dict(
        vocab=model.vocab,
        blank_id=model.blank_id,
        special_ids=model.special_ids,
        word_delimiter=model.word_delimiter,
    )
    greedy = cer(refs, ["".join(c.text for c in t.chars(lp, top_k=0)) for lp in lps]).cer
    print(f"dev: {len(rows)} sentences unseen by the dev n-gram; greedy CER {greedy:.2%}")
    results = []
    for weight, bonus in itertools.product(GRID_WEIGHT, GRID_BONUS):
        beam = BeamDecoder(**kw, lm=ngram, options=BeamOptions(lm_weight=weight, char_bonus=bonus))
        hyps = ["".join(c.text for c in t.chars(lp, top_k=0, beam=beam)) for lp in lps]
        score = cer(refs, hyps).cer
        results.append((score, weight, bonus))
        print(f"  lm_weight {weight:g} char_bonus {bonus:g}: CER {score:.2%}")
    score, weight, bonus = min(results)
    # Characters tried per hypothesis and frame, at the chosen weights: a syllable of many
    # homophones may need more than the default 8 (ties: the narrower, faster beam).
    tried = []
    for width in GRID_TOKENS:
        options = BeamOptions(lm_weight=weight, char_bonus=bonus, beam_size_token=width)
        beam = BeamDecoder(**kw, lm=ngram, options=options)
        hyps = ["".join(c.text for c in t.chars(lp, top_k=0, beam=beam)) for lp in lps]
        tried.append((cer(refs, hyps).cer, width))
        print(f"  beam_size_token {width}: CER {tried[-1][0]:.2%}")
    score, width = min(tried)
    print(f"chosen: lm_weight {weight:g}, char_bonus {bonus:g}, beam_size_token {width} "
          f"(dev CER {score:.2%})")  # fmt: skip
    options = BeamOptions(lm_weight=weight, char_bonus=bonus, beam_size_token=width)
    written = build_model_lm(args.model, texts, order=args.order, options=options)
    lm = ModelLM.from_folder(args.model)
    assert lm is not None
    size = sum(f.stat().st_size for f in written.parent.iterdir())
    print(f"wrote {written.parent} ({len(lm.ngram.probs)} n-grams, {size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
