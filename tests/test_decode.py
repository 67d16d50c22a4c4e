"""CTC greedy decoding: text, times, confidence measures and alternatives on built log-probs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from engine.decode import (
    CONFIDENCE_MEASURES,
    ConfidenceMethod,
    aggregate,
    ctc_greedy,
    frame_confidence,
)

VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", "你", "好", "吗"]
BLANK, UNK, DELIM, NI, HAO, MA = 0, 3, 4, 5, 6, 7
SPECIALS = frozenset({0, 1, 2, 3})


def frames(ids: list[int], peak: float = 0.9) -> np.ndarray:
    """Log-softmax frames whose argmax is each id, with the rest spread evenly."""
    v = len(VOCAB)
    p = np.full((len(ids), v), (1 - peak) / (v - 1))
    p[np.arange(len(ids)), ids] = peak
    return np.log(p).astype(np.float32)


def decode(lp: np.ndarray, **kw):
    args = dict(
        vocab=VOCAB,
        blank_id=BLANK,
        special_ids=SPECIALS,
        word_delimiter="|",
        frame_seconds=0.02,
    )
    return ctc_greedy(lp, **(args | kw))


def test_text_collapses_runs_and_drops_blank_special_and_delimiter():
    ids = [BLANK, NI, NI, BLANK, HAO, DELIM, HAO, UNK, HAO, HAO, BLANK, MA]
    chars = decode(frames(ids))
    assert "".join(c.text for c in chars) == "你好好好吗"


def test_times_span_each_run_and_start_at_the_offset():
    ids = [BLANK, NI, NI, BLANK, BLANK, HAO, MA, MA, MA, BLANK]
    chars = decode(frames(ids), offset_seconds=10.0)
    spans = [(c.text, c.start, c.end) for c in chars]
    assert spans == [("你", 10.02, 10.06), ("好", 10.1, 10.12), ("吗", 10.12, 10.18)]


def test_empty_and_all_blank_input_give_no_characters():
    assert decode(np.zeros((0, len(VOCAB)), np.float32)) == []
    assert decode(frames([BLANK, DELIM, UNK, BLANK])) == []


def test_bad_shape_is_a_clear_error():
    with pytest.raises(ValueError, match="frames, vocab"):
        decode(np.zeros(8, np.float32))


def test_every_character_has_confidence_times_and_ranked_alternatives():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(200, len(VOCAB))) * 3
    lp = (logits - np.log(np.exp(logits).sum(1, keepdims=True))).astype(np.float32)
    chars = decode(lp, top_k=2)
    assert chars
    for prev, c in itertools.pairwise(chars):
        assert prev.end <= c.start
    for c in chars:
        assert 0.0 <= c.confidence <= 1.0 and c.start < c.end
        assert len(c.alternatives) == 2
        probs = [a.prob for a in c.alternatives]
        assert probs == sorted(probs, reverse=True)
        assert all(a.text in "你好吗" and a.text != c.text for a in c.alternatives)


def test_alternatives_are_mean_posteriors_over_the_characters_frames():
    p = np.full((2, len(VOCAB)), 0.01)
    p[:, NI] = 0.6
    p[0, HAO], p[1, HAO] = 0.3, 0.1
    p[0, MA], p[1, MA] = 0.03, 0.23
    p /= p.sum(1, keepdims=True)
    (char,) = decode(np.log(p).astype(np.float32), top_k=5)
    assert char.text == "你"
    # only characters: blank, specials and the delimiter are never alternatives
    assert [a.text for a in char.alternatives] == ["好", "吗"]
    assert char.alternatives[0].prob == pytest.approx((p[0, HAO] + p[1, HAO]) / 2, abs=1e-4)
    assert char.alternatives[1].prob == pytest.approx((p[0, MA] + p[1, MA]) / 2, abs=1e-4)
    assert decode(np.log(p).astype(np.float32), top_k=0)[0].alternatives == ()


def _entropies(p: np.ndarray, a: float) -> dict[str, tuple[float, float]]:
    """(H, H_max) per family, written from the textbook definitions (Gibbs: NeMo's α-scaled
    −Σ p^α log p, whose exp form is of α·H)."""
    v = len(p)
    if a == 1:
        h = -(p * np.log(p)).sum()
        return {f: (h, math.log(v)) for f in ("gibbs", "tsallis", "renyi")}
    return {
        "gibbs": (-a * (p**a * np.log(p)).sum(), a * v ** (1 - a) * math.log(v)),
        "tsallis": ((1 - (p**a).sum()) / (a - 1), (1 - v ** (1 - a)) / (a - 1)),
        "renyi": (math.log((p**a).sum()) / (1 - a), math.log(v)),
    }


@pytest.mark.parametrize("alpha", [0.25, 0.33, 0.5, 1.0, 2.0])
def test_entropy_measures_match_their_definitions(alpha: float):
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.full(50, 0.3))
    lp = np.log(p)[None, :]
    for family, (h, h_max) in _entropies(p, alpha).items():
        lin = frame_confidence(lp, ConfidenceMethod(f"entropy_{family}_lin", alpha))[0]
        exp = frame_confidence(lp, ConfidenceMethod(f"entropy_{family}_exp", alpha))[0]
        # clipped to [0, 1]: Gibbs above α = 1 rates this peaked p below the uniform (0 both)
        assert lin == pytest.approx(max(1 - h / h_max, 0.0), rel=1e-6), family
        expected = (math.exp(-h) - math.exp(-h_max)) / (1 - math.exp(-h_max))
        assert exp == pytest.approx(max(expected, 0.0), rel=1e-6), family


@pytest.mark.parametrize("measure", sorted(CONFIDENCE_MEASURES))
def test_every_measure_is_one_for_certain_zero_for_uniform_and_ordered(measure: str):
    v = 30
    certain = np.full(v, -1e4)
    certain[3] = 0.0
    uniform = np.full(v, -math.log(v))
    p = np.full(v, 0.2 / (v - 1))
    p[3] = 0.8
    peaked, flat = np.log(p), np.log(np.roll(np.linspace(1, 3, v), 3) / np.linspace(1, 3, v).sum())
    for alpha in (0.33,) if "gibbs" not in measure else (0.5, 1.0, 2.0):
        method = ConfidenceMethod(measure, alpha)
        c = frame_confidence(np.stack([certain, uniform, peaked, flat]), method)
        assert c[0] == pytest.approx(1.0, abs=1e-6), alpha
        assert c[1] == pytest.approx(0.0, abs=1e-6), alpha
        if alpha <= 1:  # Gibbs above α = 1 is not largest at the uniform: both clip to 0
            assert 1.0 > c[2] > c[3] > 0.0, alpha


def test_confidence_falls_with_a_flatter_posterior_in_decoding():
    sure = decode(frames([BLANK, NI, BLANK], peak=0.99))[0]
    unsure = decode(frames([BLANK, NI, BLANK], peak=0.4))[0]
    assert sure.confidence > unsure.confidence


def test_aggregations_over_a_characters_frames():
    scores = np.array([0.9, 0.5, 0.2, 0.8])
    starts = np.array([0, 2])
    np.testing.assert_allclose(aggregate(scores, starts, "min"), [0.5, 0.2])
    np.testing.assert_allclose(aggregate(scores, starts, "max"), [0.9, 0.8])
    np.testing.assert_allclose(aggregate(scores, starts, "mean"), [0.7, 0.5])
    np.testing.assert_allclose(aggregate(scores, starts, "prod"), [0.45, 0.16])


def test_the_chosen_method_changes_the_confidence():
    lp = frames([NI, NI], peak=0.6)
    lp[1] = frames([NI], peak=0.95)[0]
    low = decode(lp, confidence=ConfidenceMethod("max_prob", 1.0, "min"))[0].confidence
    high = decode(lp, confidence=ConfidenceMethod("max_prob", 1.0, "max"))[0].confidence
    assert low < high
    v = len(VOCAB)
    assert low == pytest.approx((0.6 * v - 1) / (v - 1), abs=1e-4)


def test_method_names_round_trip_and_bad_names_say_what_to_do():
    m = ConfidenceMethod.parse("entropy_renyi_exp:0.5:mean")
    assert (m.measure, m.alpha, m.aggregation) == ("entropy_renyi_exp", 0.5, "mean")
    assert ConfidenceMethod.parse(m.name) == m
    assert ConfidenceMethod.parse("max_prob") == ConfidenceMethod("max_prob")
    with pytest.raises(ValueError, match="choose one of"):
        ConfidenceMethod.parse("entropy_shannon")
    with pytest.raises(ValueError, match="alpha"):
        ConfidenceMethod.parse("max_prob:x")
    with pytest.raises(ValueError, match="alpha"):
        ConfidenceMethod("max_prob", alpha=0)
    with pytest.raises(ValueError, match="aggregation"):
        ConfidenceMethod.parse("max_prob:1:median")


def test_greedy_text_collapses_repeats_and_drops_blanks_specials_and_delimiters():
    """The held-out CER a tuning job prints decodes through this, as transcription does."""
    from engine.decode import CtcVocab, greedy_text

    ctc = CtcVocab(["<pad>", "<s>", "</s>", "<unk>", "|", "天", "地"], 0, frozenset({1, 2, 3}))
    ids = [5, 5, 0, 5, 6, 6, 4, 6, 0, 3]
    log_probs = np.log(np.eye(7, dtype=np.float32)[ids] * 0.99 + 0.01 / 7)
    assert greedy_text(log_probs, ctc) == "天天地地"
    assert greedy_text(log_probs[:0], ctc) == ""
