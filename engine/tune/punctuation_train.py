"""Train the punctuation model (engine.punctuation) from punctuated text.

    OMP_NUM_THREADS=1 python -m engine.tune.punctuation_train            # 15 CPU minutes
    python -m engine.tune.punctuation_train --minutes 1 --out /tmp/p     # a quick check

Text: one punctuated sentence a line (`resources/corpus/punctuation/train-tatoeba.txt`; its
README says where it comes from); `--text` takes several files, pooled (e.g. the law and Common
Voice sentences that corpus's build.py can add, tried without gain: docs/measurements.md,
"Punctuation"). Each run of punctuation is read as the one mark a transcript would show
(`engine.punctuation.mark_of`: "," is ，, "?!" is ？, quotes are none), spaces are skipped, and a
line without characters ("……") is left out.
2 % of the lines (at least 50, at most a fifth), chosen by the seed, are a development split
that picks the best checkpoint and tunes each mark's bias for F1; the held-out evaluation is
another source entirely (bench/bench_punctuation.py).

What would stop the run is refused before training, in one line that says what to do (exit
status 2): an option that cannot work, a --text file that cannot be read as UTF-8, text of
fewer than MIN_SENTENCES lines, an --out no model can be saved in.

Examples are windows cut from runs of consecutive random sentences (starting and ending
anywhere, as a segment's window does in a transcript). Pauses are simulated, since text has
none: each window draws a speaking style (how long the gaps between characters are, how often
a comma or a sentence end comes with a pause, how often the speaker hesitates elsewhere), and
15 % of the windows carry no times at all, so the model reads plain text too. A few
characters are replaced (by unknown or by other characters), as a speech model's errors would.

Writes `model.safetensors` (fp16) and `config.json` (shape, vocabulary, biases, the settings
and development figures of the run) into `--out`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from engine.atomic import atomic_write_text, folder_problem
from engine.errors import TingxieError
from engine.punctuation import (
    CONFIG,
    DEFAULT_DIR,
    MARKS,
    WEIGHTS,
    NetworkShape,
    Punctuator,
    Vocabulary,
    build_network,
    gap_features,
    mark_of,
    split_marks,
)
from engine.shipped import resource

__all__ = [
    "MIN_SENTENCES",
    "Scores",
    "TrainOptions",
    "TrainingError",
    "labelled",
    "passages",
    "predict",
    "read_sentences",
    "score",
    "simulate_gaps",
    "train",
]

log = logging.getLogger("tingxie.punctuation_train")

ROOT = Path(__file__).resolve().parents[2]
TRAIN_TEXTS = (resource("corpus", "punctuation", "train-tatoeba.txt"),)
MARK_ID = {m: i for i, m in enumerate(MARKS)}
_IGNORE = -100
# The development split: 2 % of the lines, at least _DEV_LEAST, at most a fifth of them (a small
# text keeps most of its lines for training); MIN_SENTENCES lines give it 4 and training 16.
_DEV_SHARE = 0.02
_DEV_LEAST = 50
MIN_SENTENCES = 20


class TrainingError(TingxieError, ValueError):
    """Training cannot start (an option, the text, --out); found before training, so no
    training time is lost. The message names what is wrong and what to do."""


@dataclass(frozen=True, slots=True)
class TrainOptions:
    """One training run."""

    # Training text files, one punctuated sentence a line.
    texts: tuple[Path, ...] = TRAIN_TEXTS
    out: Path = DEFAULT_DIR
    seed: int = 0
    # Budget in minutes of this process's CPU time (not wall-clock time, which a shared
    # machine stretches) and a step limit; training stops at whichever comes first.
    minutes: float = 15.0
    steps: int = 60_000
    batch: int = 64
    lr: float = 3e-3
    # Window lengths (characters) cut from runs of sentences.
    min_window: int = 12
    max_window: int = 120
    # Characters appearing fewer times than this in the training split are "unknown".
    min_count: int = 2
    # Share of windows without times, and of characters replaced (ASR errors).
    untimed: float = 0.15
    replace: float = 0.03
    eval_every: int = 500
    # GRU units each way and stacked GRU layers (NetworkShape.hidden, .layers).
    hidden: int = 128
    layers: int = 1
    # Loss weight of each mark (no mark, ，。？！、): marks are rarer than their absence.
    class_weights: tuple[float, ...] = (1.0, 2.0, 1.5, 2.0, 2.0, 2.0)

    def __post_init__(self) -> None:
        """Refuse, before anything is read, a value that would crash the run (an empty range
        of window lengths, a checkpoint every 0 steps, a network of no units) or train nothing,
        naming its option and the least that works."""
        least = {
            "steps": 1,
            "eval_every": 1,
            "batch": 1,
            "min_window": 1,
            "max_window": self.min_window,
            "hidden": 1,
            "layers": 1,
        }
        for name, limit in least.items():
            if (value := getattr(self, name)) < limit:
                option = "--" + name.replace("_", "-")
                raise TrainingError(
                    "punctuation.bad_option", option=option, value=value, least=limit
                )


# ---- text ----------------------------------------------------------------------------------


def read_sentences(path: Path) -> list[str]:
    """The lines of `path` that hold characters: a blank line or punctuation alone ("……")
    teaches nothing. TrainingError, before training, when `path` cannot be read as UTF-8."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise TrainingError("punctuation.text_unreadable", path=path, detail="not UTF-8") from e
    except OSError as e:
        detail = e.strerror or str(e)
        raise TrainingError("punctuation.text_unreadable", path=path, detail=detail) from e
    return [s for s in text.split("\n") if labelled(s)[0]]


def labelled(sentence: str) -> tuple[str, list[int]]:
    """Characters and the mark id after each, as a transcript would show them: a run of
    punctuation is its `mark_of` ("好吗？！" -> "好吗", [0, 3]; "走吧." -> [0, 2]), spaces are
    skipped (as resources/corpus/punctuation/build.py cleans the shipped corpus)."""
    chars, after = split_marks(sentence)
    return chars, [MARK_ID[mark_of(run)] for run in after]


def simulate_gaps(labels: Sequence[int], rng: random.Random) -> list[float]:
    """Seconds of silence after each character, for one window in one speaking style: a
    typical gap between characters, a pause after a comma or a sentence end only sometimes,
    and hesitations anywhere."""
    typical = rng.uniform(0.02, 0.22)
    p_comma = rng.uniform(0.3, 0.95)
    p_end = rng.uniform(0.6, 1.0)
    p_hesitate = rng.uniform(0.0, 0.04)
    gaps = []
    for label in labels:
        gap = typical * math.exp(rng.gauss(0.0, 0.6))
        mark = MARKS[label]
        if mark in "。？！" and mark and rng.random() < p_end:
            gap += rng.uniform(0.3, 2.0)
        elif mark == "，" and rng.random() < p_comma:
            gap += rng.uniform(0.1, 0.8)
        elif mark == "、" and rng.random() < 0.3:
            gap += rng.uniform(0.05, 0.3)
        elif rng.random() < p_hesitate:
            gap += rng.uniform(0.2, 1.0)
        gaps.append(gap)
    return gaps


def passages(sentences: Sequence[str], seed: int, most: int = 4) -> list[tuple[str, list[int]]]:
    """The sentences (shuffled by `seed`) joined in runs of 1..`most`: (characters, labels)."""
    rng = random.Random(seed)
    order = list(sentences)
    rng.shuffle(order)
    out = []
    i = 0
    while i < len(order):
        k = rng.randint(1, most)
        text, labels = "", []
        for s in order[i : i + k]:
            t, lab = labelled(s)
            text += t
            labels += lab
        out.append((text, labels))
        i += k
    return out


@dataclass(frozen=True, slots=True)
class Scores:
    """Precision, recall and F1 per mark (MARKS[1:]), and the counts behind them."""

    precision: dict[str, float]
    recall: dict[str, float]
    f1: dict[str, float]
    gold: dict[str, int]


def score(gold: Sequence[int], predicted: Sequence[int]) -> Scores:
    """Per-mark precision, recall and F1 of predicted mark ids against gold ones."""
    g = np.asarray(gold)
    p = np.asarray(predicted)
    precision, recall, f1, counts = {}, {}, {}, {}
    for i, mark in enumerate(MARKS[1:], start=1):
        tp = int(((g == i) & (p == i)).sum())
        n_pred, n_gold = int((p == i).sum()), int((g == i).sum())
        pr = tp / n_pred if n_pred else 0.0
        rc = tp / n_gold if n_gold else 0.0
        precision[mark], recall[mark], counts[mark] = pr, rc, n_gold
        f1[mark] = 2 * pr * rc / (pr + rc) if pr + rc else 0.0
    return Scores(precision, recall, f1, counts)


# ---- batches -------------------------------------------------------------------------------


class _Windows:
    """Random training windows from the sentences."""

    def __init__(self, sentences: Sequence[str], vocab: Vocabulary, o: TrainOptions) -> None:
        # (A sentence without characters would give a window nowhere to start.)
        self.items = [item for item in map(labelled, sentences) if item[0]]
        self.ids = [vocab.ids(t) for t, _ in self.items]
        self.vocab_size = len(vocab)
        self.o = o

    def window(self, rng: random.Random, length: int) -> tuple[list[int], list[int]]:
        """A run of random sentences cut to `length`; half the windows begin inside their
        first sentence."""
        ids: list[int] = []
        labels: list[int] = []
        first = 0
        while len(ids) < first + length:
            k = rng.randrange(len(self.items))
            if not ids and rng.random() < 0.5:
                first = rng.randrange(len(self.ids[k]))
            ids += self.ids[k]
            labels += self.items[k][1]
        return ids[first : first + length], labels[first : first + length]

    def batch(self, rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # One length a batch: nothing is padded (a GRU step costs the same for padding).
        width = rng.randint(self.o.min_window, self.o.max_window)
        rows = [self.window(rng, width) for _ in range(self.o.batch)]
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        feats = torch.zeros((len(rows), width, 3), dtype=torch.float32)
        labels = torch.full((len(rows), width), _IGNORE, dtype=torch.long)
        for b, (row_ids, row_labels) in enumerate(rows):
            row_ids = [self._noisy(i, rng) for i in row_ids]
            n = len(row_ids)
            gaps = None if rng.random() < self.o.untimed else simulate_gaps(row_labels, rng)
            ids[b, :n] = torch.tensor(row_ids)
            feats[b, :n] = torch.tensor(gap_features(gaps, n))
            labels[b, :n] = torch.tensor(row_labels)
        return ids, feats, labels

    def _noisy(self, i: int, rng: random.Random) -> int:
        if rng.random() >= self.o.replace:
            return i
        return Vocabulary.UNK if rng.random() < 0.5 else rng.randrange(2, self.vocab_size)


# ---- training ------------------------------------------------------------------------------


def predict(punctuator: Punctuator, items, seed: int, timed: bool) -> tuple[list, list]:
    """Gold and predicted mark ids over passages, with simulated pauses when `timed`."""
    rng = random.Random(seed)
    gold, predicted = [], []
    for text, labels in items:
        gaps = simulate_gaps(labels, rng) if timed else None
        marks = punctuator.marks(text, gaps)
        gold += labels
        predicted += [MARK_ID[m] for m in marks]
    return gold, predicted


def _objective(s: Scores) -> float:
    """What the checkpoint and the biases are chosen for: the three marks the targets name
    first, the rarer two a little."""
    return s.f1["，"] + s.f1["。"] + s.f1["？"] + 0.25 * (s.f1["！"] + s.f1["、"])


def _tune_bias(net, vocab: Vocabulary, dev, seed: int) -> list[float]:
    """Per-mark score offsets for F1 on the development passages (timed and untimed pooled),
    by coordinate search over a small grid."""
    logits, gold = [], []
    rng = random.Random(seed)
    with torch.inference_mode():
        for timed in (True, False):
            for text, labels in dev:
                gaps = simulate_gaps(labels, rng) if timed else None
                ids = torch.tensor([vocab.ids(text)])
                feats = torch.tensor([gap_features(gaps, len(text))], dtype=torch.float32)
                logits.append(net(ids, feats)[0])
                gold += labels
    scores = torch.cat(logits)
    bias = [0.0] * len(MARKS)
    best = _objective(score(gold, (scores + torch.tensor(bias)).argmax(-1).tolist()))
    for _ in range(2):
        for k in range(1, len(MARKS)):
            for value in np.arange(-1.5, 1.51, 0.25):
                trial = list(bias)
                trial[k] = float(value)
                got = _objective(score(gold, (scores + torch.tensor(trial)).argmax(-1).tolist()))
                if got > best + 1e-6:
                    best, bias = got, trial
    return bias


def _check_out(out: Path) -> None:
    """Found before training, not when saving after it: an --out no model can be saved in
    (made if needed; a scratch file is written and removed)."""
    problem = folder_problem(out)
    if problem is not None:
        raise TrainingError("punctuation.out_unusable", path=out, problem=problem)


def _dev_size(n: int) -> int:
    """Lines of the development split among `n` (see _DEV_SHARE)."""
    return min(max(_DEV_LEAST, round(_DEV_SHARE * n)), n // 5)


def train(o: TrainOptions) -> dict:
    """Train, pick the best checkpoint on the development split, tune biases, save. Raises
    TrainingError, before training, for too little text or an --out that cannot be written."""
    sentences = [s for path in o.texts for s in read_sentences(path)]
    if len(sentences) < MIN_SENTENCES:
        paths = ", ".join(map(str, o.texts))
        raise TrainingError(
            "punctuation.too_little_text", path=paths, count=len(sentences), least=MIN_SENTENCES
        )
    _check_out(o.out)
    rng = random.Random(o.seed)
    torch.manual_seed(o.seed)
    order = list(range(len(sentences)))
    rng.shuffle(order)
    n_dev = _dev_size(len(sentences))
    dev_sents = [sentences[i] for i in order[:n_dev]]
    train_sents = [sentences[i] for i in order[n_dev:]]
    counts = Counter(c for s in train_sents for c in labelled(s)[0])
    vocab = Vocabulary(sorted(c for c, n in counts.items() if n >= o.min_count))
    shape = NetworkShape(vocab_size=len(vocab), hidden=o.hidden, layers=o.layers)
    net = build_network(shape)
    windows = _Windows(train_sents, vocab, o)
    dev = passages(dev_sents, seed=o.seed + 1)
    optimizer = torch.optim.AdamW(net.parameters(), lr=o.lr, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(o.class_weights), ignore_index=_IGNORE)
    began = time.process_time()
    deadline = began + 60 * o.minutes
    best: tuple[float, dict, dict] | None = None
    step = 0
    while step < o.steps and time.process_time() < deadline:
        lr = o.lr * min(1.0, (step + 1) / 200)
        if time.process_time() > began + 0.7 * 60 * o.minutes:  # the last 30 %: lower
            lr *= 0.3
        for group in optimizer.param_groups:
            group["lr"] = lr
        net.train()
        ids, feats, labels = windows.batch(rng)
        logits = net(ids, feats)
        loss = loss_fn(logits.reshape(-1, len(MARKS)), labels.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % o.eval_every == 0:
            best = _keep_best(net, vocab, dev, o, step, loss.item(), best)
    best = _keep_best(net, vocab, dev, o, step, float("nan"), best)
    _, state, figures = best
    net.load_state_dict(state)
    net.eval()
    bias = _tune_bias(net, vocab, dev, o.seed + 2)
    punctuator = Punctuator(net, vocab, bias)
    dev_timed = score(*predict(punctuator, dev, o.seed + 3, timed=True))
    dev_text = score(*predict(punctuator, dev, o.seed + 3, timed=False))
    report = {
        "steps": step,
        "best_step": figures["step"],
        "cpu_minutes": round((time.process_time() - began) / 60, 1),
        "train_sentences": len(train_sents),
        "dev_sentences": len(dev_sents),
        "dev_f1_simulated_pauses": {k: round(v, 3) for k, v in dev_timed.f1.items()},
        "dev_f1_text_only": {k: round(v, 3) for k, v in dev_text.f1.items()},
    }
    _save(net, vocab, shape, bias, o, report)
    return report


def _keep_best(net, vocab, dev, o: TrainOptions, step: int, loss: float, best):
    net.eval()
    punctuator = Punctuator(net, vocab)
    timed = score(*predict(punctuator, dev, o.seed + 3, timed=True))
    text = score(*predict(punctuator, dev, o.seed + 3, timed=False))
    objective = _objective(timed) + _objective(text)
    log.info(
        "step %d loss %.3f dev F1 timed %s text %s",
        step,
        loss,
        " ".join(f"{k}{v:.2f}" for k, v in timed.f1.items()),
        " ".join(f"{k}{v:.2f}" for k, v in text.f1.items()),
    )
    if best is None or objective > best[0]:
        state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        return objective, state, {"step": step}
    return best


def _save(net, vocab: Vocabulary, shape: NetworkShape, bias, o: TrainOptions, report) -> None:
    from safetensors.torch import save_file

    o.out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().half().contiguous() for k, v in net.state_dict().items()}
    tmp = o.out / (WEIGHTS + ".tmp")
    save_file(state, str(tmp))
    tmp.chmod(0o644)  # a resource anyone may read (safetensors writes 0600)
    tmp.replace(o.out / WEIGHTS)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(o).items()}
    settings["texts"] = [_relative(t) for t in o.texts]
    settings.pop("out")
    config = {
        "marks": list(MARKS),
        "shape": asdict(shape),
        "bias": [round(b, 3) for b in bias],
        "training": settings | report,
        "vocab": vocab.chars,
    }
    atomic_write_text(o.out / CONFIG, json.dumps(config, ensure_ascii=False, indent=1) + "\n")


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    defaults = TrainOptions()
    p = argparse.ArgumentParser(
        prog="python -m engine.tune.punctuation_train",
        description="Train the punctuation model from punctuated text (one sentence a line).",
    )
    p.add_argument("--text", type=Path, nargs="+", default=list(defaults.texts))
    p.add_argument("--out", type=Path, default=defaults.out)
    p.add_argument("--minutes", type=float, default=defaults.minutes)
    p.add_argument("--steps", type=int, default=defaults.steps)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--eval-every", type=int, default=defaults.eval_every)
    p.add_argument("--hidden", type=int, default=defaults.hidden, help="GRU units each way")
    p.add_argument("--layers", type=int, default=defaults.layers, help="stacked GRU layers")
    p.add_argument("--max-window", type=int, default=defaults.max_window)
    p.add_argument(
        "--class-weights",
        type=float,
        nargs=len(MARKS),
        default=list(defaults.class_weights),
        help="loss weight of no mark and of ，。？！、",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        options = TrainOptions(
            texts=tuple(args.text),
            out=args.out,
            minutes=args.minutes,
            steps=args.steps,
            seed=args.seed,
            eval_every=args.eval_every,
            hidden=args.hidden,
            layers=args.layers,
            max_window=args.max_window,
            class_weights=tuple(args.class_weights),
        )
        report = train(options)
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
