"""Vocabulary extension: new characters grow the tokenizer and the CTC head.

New head rows start at the mean of the existing character rows plus small noise, and their bias
at the lowest existing bias, so the grown model first behaves like the old one (the new
characters are not emitted until training teaches them). The result saves as a normal
checkpoint with a larger `vocab_size`.
"""

from __future__ import annotations

import json
import logging
import tempfile
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import torch

__all__ = ["extend_vocabulary"]

log = logging.getLogger("tingxie.vocab")


def _writable(char: str) -> bool:
    """Whether a CTC head should learn to write `char`: not whitespace (the word delimiter
    stands for it), nor an invisible control, format (BOM, zero-width space) or surrogate
    code point, which a transcript holds by accident and no one reads."""
    return not char.isspace() and unicodedata.category(char) not in ("Cc", "Cf", "Cs")


def _grown_tokenizer(tokenizer, new_chars: list[str]):
    """A Wav2Vec2CTCTokenizer like `tokenizer` whose vocabulary ends with `new_chars`."""
    from transformers import Wav2Vec2CTCTokenizer

    vocab = dict(tokenizer.get_vocab())
    for c in new_chars:
        vocab[c] = len(vocab)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.json"
        path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        return Wav2Vec2CTCTokenizer(
            str(path),
            unk_token=tokenizer.unk_token,
            pad_token=tokenizer.pad_token,
            bos_token=tokenizer.bos_token,
            eos_token=tokenizer.eos_token,
            word_delimiter_token=getattr(tokenizer, "word_delimiter_token", "|"),
        )


@torch.no_grad()
def _grow_head(
    head: torch.nn.Linear, extra: int, special_ids: set[int], seed: int
) -> torch.nn.Linear:
    old = head.weight.shape[0]
    chars = [i for i in range(old) if i not in special_ids] or list(range(old))
    grown = torch.nn.Linear(head.in_features, old + extra, bias=head.bias is not None)
    grown.to(device=head.weight.device, dtype=head.weight.dtype)
    grown.weight[:old] = head.weight
    mean = head.weight[chars].mean(dim=0)
    scale = head.weight[chars].std().item() * 0.01
    noise = torch.randn(extra, head.in_features, generator=torch.Generator().manual_seed(seed))
    grown.weight[old:] = mean + scale * noise.to(mean.dtype)
    if head.bias is not None:
        grown.bias[:old] = head.bias
        grown.bias[old:] = head.bias[chars].min()
    return grown


def extend_vocabulary(
    model: torch.nn.Module, processor, chars: Iterable[str], *, head: str = "lm_head", seed: int = 0
) -> tuple[list[str], object]:
    """Add the characters the vocabulary lacks (those a head should write: `_writable`);
    returns (added characters, new processor). The model's head and config are grown in place."""
    tokenizer = processor.tokenizer
    known = tokenizer.get_vocab()
    added = [c for c in dict.fromkeys(chars) if c not in known and _writable(c)]
    if not added:
        return [], processor
    special_ids = {tokenizer.convert_tokens_to_ids(t) for t in tokenizer.all_special_tokens}
    setattr(model, head, _grow_head(getattr(model, head), len(added), special_ids, seed))
    model.config.vocab_size = len(known) + len(added)
    processor = type(processor)(
        feature_extractor=processor.feature_extractor, tokenizer=_grown_tokenizer(tokenizer, added)
    )
    log.info("vocabulary grew by %d characters: %s", len(added), "".join(added[:50]))
    return added, processor
