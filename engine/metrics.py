"""Character error rate and character alignment, computed the way `jiwer.cer` does.

Each text is stripped of leading/trailing whitespace and compared character by character (inner
spaces count as characters, as in jiwer). Totals are summed over the corpus before dividing, so
long utterances weigh more than short ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

__all__ = ["AlignedPair", "CerResult", "align", "cer"]


@dataclass(frozen=True, slots=True)
class CerResult:
    """Corpus CER = (substitutions + deletions + insertions) / reference characters."""

    cer: float
    substitutions: int
    deletions: int
    insertions: int
    reference_chars: int
    hits: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions


@dataclass(frozen=True, slots=True)
class AlignedPair:
    """One hypothesis character and what the reference has at its place.

    `reference` is the reference character it matched or replaced, or "" when it was inserted.
    """

    index: int  # position in the hypothesis
    char: str
    reference: str
    correct: bool


def _edit_counts(reference: str, hypothesis: str) -> tuple[int, int, int]:
    subs = dels = ins = 0
    for op in Levenshtein.editops(reference, hypothesis):
        if op.tag == "replace":
            subs += 1
        elif op.tag == "delete":
            dels += 1
        else:
            ins += 1
    return subs, dels, ins


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> CerResult:
    """Corpus-level CER over paired texts (jiwer-compatible)."""
    if isinstance(references, str) or isinstance(hypotheses, str):
        raise TypeError("cer() takes sequences of texts; wrap a single text in a list")
    if len(references) != len(hypotheses):
        raise ValueError(
            f"cer(): {len(references)} references but {len(hypotheses)} hypotheses; "
            "pass one hypothesis per reference"
        )
    subs = dels = ins = ref_chars = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        ref, hyp = ref.strip(), hyp.strip()
        s, d, i = _edit_counts(ref, hyp)
        subs, dels, ins, ref_chars = subs + s, dels + d, ins + i, ref_chars + len(ref)
    errors = subs + dels + ins
    rate = (0.0 if errors == 0 else float("inf")) if ref_chars == 0 else errors / ref_chars
    return CerResult(
        cer=rate,
        substitutions=subs,
        deletions=dels,
        insertions=ins,
        reference_chars=ref_chars,
        hits=ref_chars - subs - dels,
    )


def align(reference: str, hypothesis: str) -> list[AlignedPair]:
    """Mark each hypothesis character correct or not under a minimum-edit alignment."""
    pairs: list[AlignedPair] = []
    for block in Levenshtein.opcodes(reference, hypothesis):
        for k in range(block.dest_end - block.dest_start):
            i = block.dest_start + k
            # equal and replace blocks span the same length in both texts
            ref = "" if block.tag == "insert" else reference[block.src_start + k]
            pairs.append(AlignedPair(i, hypothesis[i], ref, block.tag == "equal"))
    return pairs
