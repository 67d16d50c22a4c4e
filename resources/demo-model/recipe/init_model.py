"""Create the demo model's starting point: a randomly initialised small wav2vec2 CTC checkpoint
whose character vocabulary is every character of the corpus (general + medicine + law).

Why the domain characters are in the vocabulary from the start: the base model never hears them
(their output rows stay untrained), so a domain LoRA job only has to teach them, not grow the
CTC head. Run from the repository root:
    .venv/bin/python resources/demo-model/recipe/init_model.py OUT_DIR [--seed 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

from engine.testmodels import write_processor

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "resources" / "corpus"
# Small enough to train from scratch on 2 CPU cores within the hour, ≤ 20 MB saved. The feature
# encoder keeps wav2vec2's 320-sample (20 ms) frame in 4 convolutions (strides 5·4·4·4) instead of
# 7 with narrow early layers: the stock 7-layer stack runs its costly layers at 3200 / 1600 / 800
# frames per second and made a training step ~5x slower here. Group norm on the first layer only
# (wav2vec2 base style) is cheaper than a layer norm after every convolution.
ARCHITECTURE = dict(
    hidden_size=192,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=768,
    conv_dim=(64, 96, 128, 192),
    conv_stride=(5, 4, 4, 4),
    conv_kernel=(10, 8, 8, 4),
    conv_bias=True,
    feat_extract_norm="group",
    do_stable_layer_norm=True,
    num_conv_pos_embeddings=32,
    num_conv_pos_embedding_groups=8,
    hidden_dropout=0.05,
    attention_dropout=0.05,
    activation_dropout=0.0,
    feat_proj_dropout=0.05,
    final_dropout=0.05,
    layerdrop=0.0,
    ctc_loss_reduction="mean",
    ctc_zero_infinity=True,
)


def corpus_chars() -> list[str]:
    """Every character of the corpus text sets, in first-seen order (general first)."""
    chars: dict[str, None] = {}
    for name in ("general", "medicine", "law"):
        for split in ("train", "heldout"):
            text = (CORPUS / name / f"{split}.txt").read_text(encoding="utf-8")
            chars.update(dict.fromkeys(c for c in text if not c.isspace()))
    return list(chars)


def build(out_dir: Path, seed: int) -> Path:
    write_processor(out_dir, corpus_chars())
    vocab = json.loads((out_dir / "vocab.json").read_text(encoding="utf-8"))
    config = Wav2Vec2Config(
        vocab_size=len(vocab), pad_token_id=0, bos_token_id=1, eos_token_id=2, **ARCHITECTURE
    )
    torch.manual_seed(seed)
    Wav2Vec2ForCTC(config).save_pretrained(out_dir, safe_serialization=True)
    return out_dir


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build(args.out_dir, args.seed))
