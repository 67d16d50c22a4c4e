"""The demo model's broad-vocabulary stage: everyday text from Tatoeba and ~3,400 characters.

Steps run by `make demo-model-everyday` after the template stages (1-6):

1. `text OUT.txt`: the training sentences. Tatoeba's Mandarin sentences as the punctuation
   corpus cleaned them (`resources/corpus/punctuation/train-tatoeba.txt`, CC-BY 2.0 FR: already
   free of every HSK held-out line and every shared clip's transcript), keeping the lines whose
   characters all occur at least MIN_COUNT times in that file, shuffled with a seed. The
   held-out text is the HSK file beside it, another source (see that folder's README).
2. `grow MODEL OUT`: MODEL's vocabulary grown by every character of the training text. A new
   character's CTC row starts as a copy of the row of an old character with the same tonal
   syllable (the old set is homophone-free, so there is at most one) and otherwise at the
   engine's default (the mean row, never emitted until trained). espeak-ng speaks a syllable
   the same way whatever character it stands for, so a homophone's row is already the right
   acoustic detector: only the choice among homophones is left, which is the language model's.
3. `mix OUT MANIFEST...`: stage 7's data, the everyday passages with stage 5's template
   passages (so the template sentences the tests and benches use stay known).

Run from the repository root:
    .venv/bin/python resources/demo-model/recipe/everyday.py text out/demo-model/everyday.txt
    .venv/bin/python resources/demo-model/recipe/everyday.py grow MODEL out/demo-model/grown
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TATOEBA = ROOT / "resources" / "corpus" / "punctuation" / "train-tatoeba.txt"
MIN_COUNT = 2  # 3,366 characters; they cover 99.99 % of the HSK held-out text's characters


def training_lines(path: Path = TATOEBA, min_count: int = MIN_COUNT, seed: int = 0) -> list[str]:
    """Tatoeba's lines whose Han characters are all frequent enough, shuffled with `seed`."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    counts = Counter(c for line in lines for c in line if _is_han(c))
    kept = [line for line in lines if all(counts[c] >= min_count for c in line if _is_han(c))]
    random.Random(seed).shuffle(kept)
    return kept


def _is_han(c: str) -> bool:
    return "\u4e00" <= c <= "\u9fff"


def grow(model_dir: Path, out: Path, text: Path) -> None:
    import torch
    from pypinyin import Style, pinyin
    from transformers import AutoModelForCTC, AutoProcessor

    from engine.tune.vocab import extend_vocabulary

    # As a tuning job loads a base (engine.model's loader bakes weight norm in for inference).
    model = AutoModelForCTC.from_pretrained(model_dir)
    processor = AutoProcessor.from_pretrained(model_dir)
    old = dict(processor.tokenizer.get_vocab())
    chars = sorted({c for c in text.read_text(encoding="utf-8") if _is_han(c)})
    added, processor = extend_vocabulary(model, processor, chars)

    def syllable(c: str) -> str:
        return pinyin(c, style=Style.TONE3, neutral_tone_with_five=True)[0][0]

    by_syllable = {syllable(c): i for c, i in old.items() if len(c) == 1 and _is_han(c)}
    new = processor.tokenizer.get_vocab()
    copied = 0
    with torch.no_grad():
        for c in added:
            src = by_syllable.get(syllable(c))
            if src is not None:
                model.lm_head.weight[new[c]] = model.lm_head.weight[src]
                model.lm_head.bias[new[c]] = model.lm_head.bias[src]
                copied += 1
    print(
        f"{len(added)} characters added ({copied} start from a homophone's row); "
        f"vocabulary {len(new)}"
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)


def mix(out: Path, manifests: list[Path]) -> None:
    """One manifest of every row of `manifests`, paths relative to `out`'s folder."""
    import os

    from engine.atomic import atomic_write_text
    from engine.tune.data import from_manifest, manifest_text

    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        (os.path.relpath(e.audio.resolve(), out.parent.resolve()), e.text)
        for m in manifests
        for e in from_manifest(m).examples
    ]
    atomic_write_text(out, manifest_text(rows))
    print(f"{len(rows)} rows written to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    t = sub.add_parser("text", help="write the training sentences")
    t.add_argument("out", type=Path)
    t.add_argument("--seed", type=int, default=0)
    g = sub.add_parser("grow", help="grow a model's vocabulary to the training text's characters")
    g.add_argument("model", type=Path)
    g.add_argument("out", type=Path)
    g.add_argument("--text", type=Path, default=None, help="default: the training sentences")
    m = sub.add_parser("mix", help="one manifest of several")
    m.add_argument("out", type=Path)
    m.add_argument("manifests", type=Path, nargs="+")
    args = parser.parse_args()
    if args.step == "mix":
        mix(args.out, args.manifests)
    elif args.step == "text":
        lines = training_lines(seed=args.seed)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{len(lines)} sentences written to {args.out}")
    else:
        text = args.text
        if text is None:
            text = args.out.parent / "everyday-vocab.txt"
            text.write_text("\n".join(training_lines()) + "\n", encoding="utf-8")
        grow(args.model, args.out, text)


if __name__ == "__main__":
    main()
