from __future__ import annotations

import random

import jiwer
import pytest

from engine.metrics import align, cer


def _random_pairs(seed: int, n: int = 40) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    alphabet = "天地人和的一是 ab"
    refs = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(n)]
    hyps = []
    for r in refs:
        chars = list(r)
        for _ in range(rng.randint(0, 4)):
            op, pos = rng.choice("sdi"), rng.randint(0, len(chars))
            if op == "i":
                chars.insert(pos, rng.choice(alphabet))
            elif chars and pos < len(chars):
                chars[pos : pos + 1] = [] if op == "d" else [rng.choice(alphabet)]
        hyps.append("".join(chars))
    return refs, hyps


@pytest.mark.parametrize("seed", range(5))
def test_cer_matches_jiwer(seed):
    refs, hyps = _random_pairs(seed)
    ours = cer(refs, hyps)
    theirs = jiwer.process_characters(refs, hyps)
    assert ours.cer == pytest.approx(jiwer.cer(refs, hyps))
    assert ours.errors == theirs.substitutions + theirs.deletions + theirs.insertions
    assert ours.hits == theirs.hits


@pytest.mark.parametrize(
    "hyp, counts",
    [
        ("今天汽好", (1, 0, 0)),
        ("今天好", (0, 1, 0)),
        ("今天气很好", (0, 0, 1)),
        ("今天气好", (0, 0, 0)),
    ],
)
def test_counts_by_kind(hyp, counts):
    r = cer(["今天气好"], [hyp])
    assert (r.substitutions, r.deletions, r.insertions) == counts
    assert r.reference_chars == 4
    assert r.cer == pytest.approx(sum(counts) / 4)


def test_corpus_cer_weights_long_references():
    assert cer(["a", "bbbbbbbbb"], ["x", "bbbbbbbbb"]).cer == pytest.approx(0.1)


def test_empty_reference_and_hypothesis():
    assert cer([""], [""]).cer == 0.0
    assert cer([""], ["x"]).cer == float("inf")


def test_mismatched_lengths_and_bare_strings_are_rejected():
    with pytest.raises(ValueError, match="2 references but 1"):
        cer(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="sequences"):
        cer("abc", "abd")


def test_align_marks_each_hypothesis_char():
    pairs = align("今天天气很好", "今天汽很好啊")
    assert [p.char for p in pairs] == list("今天汽很好啊")
    assert [p.correct for p in pairs] == [True, True, False, True, True, False]
    assert pairs[2].reference in ("天", "气")  # substituted
    assert pairs[-1].reference == ""  # inserted


def test_align_perfect_and_empty():
    assert all(p.correct for p in align("你好", "你好"))
    assert align("你好", "") == []
