"""LoRA tuning of Whisper (transformers + peft), converted for inference by CTranslate2.

Tingxie runs Whisper through CTranslate2, which cannot train. Tuning happens on the Hugging
Face weights of the same model (e.g. `openai/whisper-small`, online): LoRA on the projections
the registry names (engine.registry.WHISPER), the adapter merged into the weights, and the
result converted by CTranslate2's own converter into a folder `engine.whisper` loads. The
CTC tuning loop (engine.tune.loop) does not apply: Whisper learns from the text as decoder
targets (cross-entropy), not from CTC alignments.

`build_tiny_whisper` makes a random 1-layer Whisper the project builds itself, with the real
multilingual tokenizer taken from a CTranslate2 Whisper folder, so the whole path runs in a test
without a download.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.atomic import atomic_folder
from engine.registry import WHISPER

__all__ = [
    "WhisperLoraOptions",
    "WhisperStep",
    "build_tiny_whisper",
    "convert_for_ctranslate2",
    "tune_whisper_lora",
]

log = logging.getLogger("tingxie.tune.whisper")

# What the converter copies beside model.bin: faster-whisper reads the tokenizer and the
# feature extractor's settings from them.
_COPIED = ("tokenizer.json", "preprocessor_config.json")
_PREFIX = "<|startoftranscript|><|zh|><|transcribe|><|notimestamps|>"


@dataclass(frozen=True, slots=True)
class WhisperLoraOptions:
    """A LoRA job on a Whisper checkpoint (Hugging Face layout)."""

    steps: int = 100
    learning_rate: float = 1e-3
    rank: int = 8
    alpha: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "rank", "alpha"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"WhisperLoraOptions.{name}={getattr(self, name)!r}: must be ≥ 1")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate={self.learning_rate!r}: must be positive")


@dataclass(frozen=True, slots=True)
class WhisperStep:
    """One optimizer step: its number (from 1) and the training loss."""

    step: int
    loss: float


def build_tiny_whisper(out_dir: str | Path, tokenizer_from: str | Path, seed: int = 0) -> Path:
    """A random Whisper (1 encoder and 1 decoder layer, width 32, 80 mel bins) in Hugging Face
    layout, with the tokenizer and language / suppression settings of the CTranslate2 Whisper
    folder `tokenizer_from` (so it decodes Mandarin like the real one, meaninglessly)."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    source = Path(tokenizer_from)
    ct2 = json.loads((source / "config.json").read_text(encoding="utf-8"))
    end = "<|endoftext|>"  # Whisper's only text-level special token: also padding
    tokenizer = WhisperTokenizerFast(
        tokenizer_file=str(source / "tokenizer.json"),
        unk_token=end,
        bos_token=end,
        eos_token=end,
        pad_token=end,
    )
    torch.manual_seed(seed)
    config = WhisperConfig(
        vocab_size=51865,
        num_mel_bins=80,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        # Wider initial weights than the 0.02 of a model meant to train fully: with embeddings
        # that small, logits stay near uniform whatever LoRA does to the layers in between.
        init_std=0.3,
        decoder_start_token_id=tokenizer.convert_tokens_to_ids("<|startoftranscript|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
    )
    model = WhisperForConditionalGeneration(config)
    languages = {tokenizer.convert_ids_to_tokens(i): i for i in ct2["lang_ids"]}
    model.generation_config = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        suppress_tokens=ct2["suppress_ids"],
        begin_suppress_tokens=ct2["suppress_ids_begin"],
        lang_to_id=languages,
        is_multilingual=True,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(out)
    return out


def _batch(processor, tokenizer, examples: Sequence[tuple[np.ndarray, str]]):
    features = processor(
        [audio for audio, _ in examples], sampling_rate=16_000, return_tensors="pt"
    ).input_features
    texts = [_PREFIX + text + "<|endoftext|>" for _, text in examples]
    ids = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    labels = ids.input_ids.masked_fill(ids.attention_mask == 0, -100)
    # The decoder is fed labels shifted right by the model itself; the first target is the
    # language token (the start token is the decoder's first input, not a target).
    return features, labels[:, 1:], ids.input_ids[:, :-1]


def tune_whisper_lora(
    base: str | Path,
    examples: Sequence[tuple[np.ndarray, str]],
    out_dir: str | Path,
    options: WhisperLoraOptions | None = None,
) -> Iterator[WhisperStep]:
    """Train LoRA adapters on (16 kHz audio, text) pairs, one batch of all of them per step,
    yielding each step's loss; when the steps are done, the merged model is written to
    out_dir/hf (Hugging Face layout) and converted to out_dir/ct2 (stop iterating to cancel:
    nothing is written)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    options = options or WhisperLoraOptions()
    if not examples:
        raise ValueError("tune_whisper_lora: no examples; give (audio, text) pairs")
    torch.manual_seed(options.seed)
    model = WhisperForConditionalGeneration.from_pretrained(base)
    tokenizer = WhisperTokenizerFast.from_pretrained(base)
    processor = WhisperFeatureExtractor.from_pretrained(base)
    lora = LoraConfig(
        r=options.rank, lora_alpha=options.alpha, target_modules=list(WHISPER.lora_targets)
    )
    model = get_peft_model(model, lora)
    features, labels, decoder_inputs = _batch(processor, tokenizer, examples)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=options.learning_rate
    )
    model.train()
    for step in range(1, options.steps + 1):
        logits = model(input_features=features, decoder_input_ids=decoder_inputs).logits
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        yield WhisperStep(step, float(loss.detach()))
    merged = model.merge_and_unload().eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def write_hf(folder: Path) -> None:
        merged.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        processor.save_pretrained(folder)

    hf = atomic_folder(out / "hf", write_hf)
    convert_for_ctranslate2(hf, out / "ct2")


def convert_for_ctranslate2(hf_dir: str | Path, out_dir: str | Path) -> Path:
    """A Whisper checkpoint in Hugging Face layout → a CTranslate2 folder (float32 weights),
    with CTranslate2's own converter, written atomically."""
    from ctranslate2.converters import TransformersConverter

    converter = TransformersConverter(str(hf_dir), copy_files=list(_COPIED))

    def write(folder: Path) -> None:
        converter.convert(str(folder), force=True)

    return atomic_folder(Path(out_dir), write)
