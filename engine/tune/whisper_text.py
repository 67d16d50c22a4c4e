"""Whisper's training text: the tokenizer of a Whisper folder, the prefix every training
transcript starts with, and the decoder's limit on its length. Apart from whisper_lora (which
trains) so that the data check (engine.tune.prepare) can apply the limit without importing the
training wing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["MAX_LABEL_TOKENS", "PREFIX", "token_limit", "whisper_tokenizer"]

# What a training transcript follows (the decoder's language and task, no timestamps).
PREFIX = "<|startoftranscript|><|zh|><|transcribe|><|notimestamps|>"
# Whisper's decoder holds this many tokens (its learned positions; every size alike): a
# transcript longer than that cannot be trained on (an IndexError deep in a step).
MAX_LABEL_TOKENS = 448


def whisper_tokenizer(folder: Path) -> Any:
    """Whisper's tokenizer from a Whisper folder's tokenizer.json (CTranslate2's or
    transformers')."""
    from transformers import WhisperTokenizerFast

    end = "<|endoftext|>"  # Whisper's only text-level special token: also padding
    return WhisperTokenizerFast(
        tokenizer_file=str(folder / "tokenizer.json"),
        unk_token=end,
        bos_token=end,
        eos_token=end,
        pad_token=end,
    )


def token_limit(folder: str | Path) -> tuple[Callable[[str], int], int] | None:
    """The decoder's limit on a training transcript, for `ValidationOptions.token_limit`: how
    many tokens a transcript takes (its prefix and end included), with the tokenizer of the
    Whisper folder `folder`, and the most there may be. None for a folder not at hand."""
    if not (Path(folder) / "tokenizer.json").is_file():
        return None
    tokenizer = whisper_tokenizer(Path(folder))

    def count(text: str) -> int:
        return len(tokenizer(PREFIX + text + "<|endoftext|>", add_special_tokens=False).input_ids)

    return count, MAX_LABEL_TOKENS
