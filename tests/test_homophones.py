"""Homophone search's math: which outputs share a toneless syllable, and what each frame then
offers the beam search (engine.homophones)."""

from __future__ import annotations

import numpy as np

from engine.homophones import HomophoneGroups

VOCAB = ["<pad>", "|", "医", "一", "衣", "生", "声", "好", "a"]


def test_outputs_group_by_their_toneless_syllable_and_others_join_none():
    groups = HomophoneGroups.from_vocab(VOCAB, len(VOCAB))
    members = [
        sorted(VOCAB[i] for i in groups.order[groups.group == g]) for g in range(len(groups.starts))
    ]
    assert sorted(members) == [["一", "医", "衣"], ["声", "生"]]  # yī yī yī, shēng shēng
    assert len(HomophoneGroups.from_vocab(VOCAB, 3).order) == 0  # 医 alone: 一 is beyond n_out
    assert sorted(HomophoneGroups.from_vocab(VOCAB, 4).order) == [2, 3]


def test_each_homophone_is_offered_at_the_penalty_below_the_best_heard():
    groups = HomophoneGroups.from_vocab(VOCAB, len(VOCAB))
    lp = np.full((2, len(VOCAB)), -20.0, np.float32)
    lp[0, VOCAB.index("一")] = -0.1  # frame 0 heard 一
    lp[0, VOCAB.index("衣")] = -0.3  # (a homophone already above the floor keeps its own)
    lp[1, VOCAB.index("好")] = -0.1  # frame 1 heard 好, which has no homophone here
    out = groups.expand(lp, 0.5)
    assert out[0, VOCAB.index("医")] == np.float32(-0.6)
    assert out[0, VOCAB.index("一")] == np.float32(-0.1)
    assert out[0, VOCAB.index("衣")] == np.float32(-0.3)
    assert out[0, VOCAB.index("生")] == -20.0  # another syllable: untouched
    assert (out[1] == lp[1]).all()
    assert lp[0, VOCAB.index("医")] == -20.0  # the input is left as it was
    assert (groups.expand(lp, 30.0) == lp).all()  # a penalty beyond the floor offers nothing
