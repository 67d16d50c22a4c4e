"""Models the project builds itself (no download): random checkpoints in Hugging Face layout.

`tiny` is small enough for unit tests (well under a second per call); `full` has the exact
architecture of the default checkpoint (XLSR-53 large: 24 layers, hidden 1024, stable layer
norm, ~3.5 k character vocabulary) for benchmarks. Random weights sit near ties, so their text
is meaningless: use them for plumbing and speed, never for accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch

__all__ = ["COMMON_CHARS", "SPECIAL_TOKENS", "build_model", "write_processor"]

# Tokens every Tingxie character vocabulary starts with; <pad> doubles as the CTC blank.
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", "|")

# Frequent Simplified characters (the head of common frequency lists), for test vocabularies.
COMMON_CHARS = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学"
    "对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面"
    "公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部"
    "正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关"
    "并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安"
    "表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共"
    "风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管"
    "夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品"
)

_ARCHS: dict[str, dict] = {
    # 2 layers, hidden 32; keeps the real 320-sample (20 ms) frame so timing code is exercised.
    "tiny": dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    ),
    # Mid-size (bench/bench_train.py): big enough that compute, not Python, dominates a training
    # step, small enough for a CPU run of a few minutes.
    "small": dict(
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        conv_dim=(256,) * 7,
        num_conv_pos_embeddings=64,
        num_conv_pos_embedding_groups=16,
    ),
    # jonatasgrosman/wav2vec2-large-xlsr-53-chinese-zh-cn
    "full": dict(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        conv_dim=(512,) * 7,
        num_conv_pos_embeddings=128,
        num_conv_pos_embedding_groups=16,
    ),
}
_FULL_VOCAB_CHARS = 3498  # + 5 specials = 3503 outputs, as in the default checkpoint


def write_processor(out_dir: Path, chars: list[str] | tuple[str, ...] | str) -> None:
    """Write vocab.json, tokenizer and feature-extractor configs for a character vocabulary."""
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokens = list(SPECIAL_TOKENS) + [c for c in dict.fromkeys(chars) if c not in SPECIAL_TOKENS]
    vocab_file = out_dir / "vocab.json"
    vocab_file.write_text(
        json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False), encoding="utf-8"
    )
    tokenizer = Wav2Vec2CTCTokenizer(
        str(vocab_file), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|"
    )
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16_000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    )
    processor = Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer)
    processor.save_pretrained(out_dir)
    extractor.save_pretrained(out_dir)  # preprocessor_config.json, as published checkpoints have


def _full_chars() -> list[str]:
    chars = list(dict.fromkeys(COMMON_CHARS))
    code = 0x4E00
    while len(chars) < _FULL_VOCAB_CHARS:
        c = chr(code)
        if c not in chars:
            chars.append(c)
        code += 1
    return chars


def build_model(
    out_dir: str | Path,
    size: Literal["tiny", "small", "full"] = "tiny",
    *,
    chars: str | list[str] | None = None,
    model_type: Literal["wav2vec2", "hubert", "wavlm", "data2vec-audio"] = "wav2vec2",
    seed: int = 0,
) -> Path:
    """Build a randomly initialised CTC checkpoint with processor in `out_dir` and return it."""
    from transformers import AutoConfig, AutoModelForCTC

    out_dir = Path(out_dir)
    chars = (
        list(chars)
        if chars is not None
        else (_full_chars() if size == "full" else list(dict.fromkeys(COMMON_CHARS)))
    )
    write_processor(out_dir, chars)
    vocab_size = len(json.loads((out_dir / "vocab.json").read_text(encoding="utf-8")))
    common = dict(
        vocab_size=vocab_size,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_bias=True,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
        do_stable_layer_norm=True,  # XLSR's pre-norm layout, for every family
        feat_extract_norm="layer",
    )
    config = AutoConfig.for_model(model_type, **_ARCHS[size], **common)
    torch.manual_seed(seed)
    model = AutoModelForCTC.from_config(config)
    model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir
