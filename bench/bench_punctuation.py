"""How well does the punctuation model restore ，。？！、 in text it never saw, from a source it
was not trained on?

    .venv/bin/python bench/bench_punctuation.py [--model DIR] [--text FILE] [--seed N]

The model (default: the shipped resources/punctuation) was trained on Tatoeba sentences; the
held-out text is the HSK 3.0 graded sentences of hsk-sentences-audio (another source, written
for learners; resources/corpus/punctuation/README.md; no line equal to a training line). The
sentences are shuffled and joined into passages of 1-4, as a transcript runs sentences
together, and every mark is scored at every character (precision, recall and F1 per mark).

Two conditions, each against a baseline in the same run:
- simulated pauses: the gap after each character drawn by the training recipe's pause
  simulator (engine.tune.punctuation_train.simulate_gaps) with a seed the training never
  used. Optimistic: the model was trained on pauses drawn the same way, and real speech is
  messier; the baseline puts 。 (？ after 吗/呢) at gaps of 0.5 s and more, ， at 0.25-0.5 s.
- text only: no times; the baseline puts 。 (？ after 吗/呢) at the end of each passage.

The last line is the simulated-pause condition (the product always has the characters' times).
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from engine.punctuation import DEFAULT_DIR, MARKS, Punctuator
from engine.tune.punctuation_train import (
    MARK_ID,
    Scores,
    passages,
    read_sentences,
    score,
    simulate_gaps,
)

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "resources" / "corpus" / "punctuation" / "heldout-hsk.txt"
SOURCE = "HSK 3.0 sentences (hsk-sentences-audio)"
_QUESTION_ENDINGS = "吗呢么"


def baseline_marks(text: str, gaps: list[float] | None) -> list[int]:
    """Rules a transcript could use without a model: marks from pauses alone (and ？ after a
    question particle); with no times, a sentence mark at the end only."""

    def final(i: int) -> int:
        return MARK_ID["？"] if text[i] in _QUESTION_ENDINGS else MARK_ID["。"]

    if gaps is None:
        return [0] * (len(text) - 1) + [final(len(text) - 1)] if text else []
    out = []
    for i, gap in enumerate(gaps):
        if gap >= 0.5 or i == len(text) - 1:
            out.append(final(i))
        elif gap >= 0.25:
            out.append(MARK_ID["，"])
        else:
            out.append(0)
    return out


def run(
    punctuator: Punctuator, items, seed: int, timed: bool
) -> tuple[Scores, Scores, float, float]:
    """(model scores, baseline scores, model seconds, the share of gold ， the model marked
    with 。) over the passages."""
    rng = random.Random(seed)
    gold, model, rules = [], [], []
    seconds = 0.0
    for text, labels in items:
        gaps = simulate_gaps(labels, rng) if timed else None
        t0 = time.perf_counter()
        marks = punctuator.marks(text, gaps)
        seconds += time.perf_counter() - t0
        gold += labels
        model += [MARK_ID[m] for m in marks]
        rules += baseline_marks(text, gaps)
    commas = [p for g, p in zip(gold, model, strict=True) if g == MARK_ID["，"]]
    as_period = commas.count(MARK_ID["。"]) / max(1, len(commas))
    return score(gold, model), score(gold, rules), seconds, as_period


def print_table(name: str, model: Scores, baseline: Scores) -> None:
    print(f"\n{name}")
    print(f"{'mark':<6}{'n':>6}  {'model P / R / F1':<22}{'baseline P / R / F1':<22}")
    for mark in MARKS[1:]:
        m = f"{model.precision[mark]:.2f} / {model.recall[mark]:.2f} / {model.f1[mark]:.2f}"
        b = (
            f"{baseline.precision[mark]:.2f} / {baseline.recall[mark]:.2f} / "
            f"{baseline.f1[mark]:.2f}"
        )
        print(f"{mark:<6}{model.gold[mark]:>6}  {m:<22}{b:<22}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=DEFAULT_DIR)
    p.add_argument("--text", type=Path, default=HELDOUT, help="held-out sentences, one a line")
    p.add_argument("--seed", type=int, default=101, help="passages and simulated pauses")
    p.add_argument("--limit", type=int, default=0, help="use the first N sentences (0: all)")
    args = p.parse_args()
    torch.set_num_threads(1)
    punctuator = Punctuator.load(args.model)
    sentences = read_sentences(args.text)
    if args.limit:
        sentences = sentences[: args.limit]
    items = passages(sentences, seed=args.seed)
    print(
        f"held-out: {args.text.name}, {len(sentences)} sentences in {len(items)} passages of "
        f"1-4 sentences; model {args.model}"
    )
    timed, timed_base, seconds, timed_swap = run(punctuator, items, args.seed, timed=True)
    text, text_base, _, text_swap = run(punctuator, items, args.seed, timed=False)
    print_table("simulated pauses (model vs pause rules)", timed, timed_base)
    print_table("text only (model vs a mark at each passage end)", text, text_base)
    print(
        f"\nof the gold ，, marked 。 by the model: {timed_swap:.0%} with pauses, "
        f"{text_swap:.0%} text only (a clause boundary found, the other mark chosen)"
    )
    ms = 1000 * seconds / len(sentences)
    print(f"\nspeed: {ms:.2f} ms per sentence on one CPU thread ({len(sentences)} sentences)")
    print(f"text only F1: ，{text.f1['，']:.2f} 。{text.f1['。']:.2f} ？{text.f1['？']:.2f}")
    print(
        f"punctuation F1: ，{timed.f1['，']:.2f} 。{timed.f1['。']:.2f} ？{timed.f1['？']:.2f}  "
        f"(held-out: {SOURCE}, simulated pauses, {len(sentences)} sentences)"
    )


if __name__ == "__main__":
    main()
