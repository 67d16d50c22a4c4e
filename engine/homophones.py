"""Homophone search: each frame offers the beam search the characters that sound like the ones
the acoustics heard, so that a language model which knows a domain's words can write them.

A CTC model trained on everyday speech gives a domain's rarer characters little probability even
where they were said (结痂 jié jiā comes out as 解家 jiě jiā), and a beam search can only choose
among the characters the frames offer. Here each character's toneless homophones (its main
reading, as pypinyin gives it) are offered at every frame at `penalty` nats below the best of
them: the language model decides whether one of those is the word. The decoder turns this on
with domain text (engine.lm.BeamDecoder.for_model), where the user has said the vocabulary
differs from the model's. The characters' evidence still comes from the frames' own
posteriors, so the calibration's beam map (engine.calibration), which reads each character's
own posterior, sees one written this way as not heard. Pure numpy once the groups are built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .normalize import is_han_char

__all__ = ["HomophoneGroups"]


@dataclass(frozen=True, slots=True)
class HomophoneGroups:
    """The model outputs that share a toneless syllable, two or more to a group."""

    order: np.ndarray  # output ids, group after group
    starts: np.ndarray  # where each group begins in `order`
    group: np.ndarray  # the group of each entry of `order`

    @classmethod
    def from_vocab(cls, vocab: Sequence[str], n_out: int) -> HomophoneGroups:
        """Groups over the first `n_out` tokens of `vocab` (the model's outputs); tokens that
        are not one Han character (blank, specials, letters) join none."""
        from pypinyin import Style, lazy_pinyin

        by_syllable: dict[str, list[int]] = {}
        for i, token in enumerate(vocab[:n_out]):
            if is_han_char(token):
                by_syllable.setdefault(lazy_pinyin(token, style=Style.NORMAL)[0], []).append(i)
        groups = [ids for ids in by_syllable.values() if len(ids) > 1]
        sizes = [len(ids) for ids in groups]
        return cls(
            order=np.array([i for ids in groups for i in ids], dtype=np.int64),
            starts=np.cumsum([0, *sizes[:-1]]).astype(np.int64),
            group=np.repeat(np.arange(len(groups)), sizes),
        )

    def expand(self, log_probs: np.ndarray, penalty: float) -> np.ndarray:
        """(frames, outputs) scores where each grouped output has at least its group's best
        log-probability minus `penalty`; the input is left as it was."""
        if len(self.order) == 0 or len(log_probs) == 0:
            return log_probs
        grouped = log_probs[:, self.order]
        best = np.maximum.reduceat(grouped, self.starts, axis=1)
        out = log_probs.copy()
        out[:, self.order] = np.maximum(grouped, best[:, self.group] - penalty)
        return out
