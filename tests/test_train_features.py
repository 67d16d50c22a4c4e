"""Training from cached feature-encoder outputs equals transformers' own forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCTC

from engine.registry import family_for
from engine.testmodels import build_model
from engine.tune.features import FromFeatures, collate_features, encode_features


@pytest.mark.parametrize("model_type", ["wav2vec2", "hubert", "wavlm", "data2vec-audio"])
def test_loss_from_cached_features_matches_the_full_forward(tmp_path, model_type):
    folder = build_model(tmp_path / "m", "tiny", chars="天地人和", model_type=model_type)
    model = AutoModelForCTC.from_pretrained(folder, attn_implementation="eager").eval()
    family = family_for(model_type)
    rng = np.random.default_rng(0)
    audio = [rng.standard_normal(n).astype(np.float32) for n in (8000, 5000)]
    labels = [np.array([5, 6, 7]), np.array([8, 5])]
    features = list(encode_features(model, family, audio, torch.device("cpu")))
    assert [f.shape[0] for f in features] == [24, 15]
    got = FromFeatures(model, family)(**collate_features(features, labels, torch.device("cpu")))
    # the same batch through transformers' forward: zero-padded audio with an attention mask
    values = torch.zeros(2, 8000)
    mask = torch.zeros(2, 8000, dtype=torch.long)
    for row, a in enumerate(audio):
        values[row, : len(a)] = torch.from_numpy(a)
        mask[row, : len(a)] = 1
    padded = torch.tensor([[5, 6, 7], [8, 5, -100]])
    with torch.no_grad():
        want = model(input_values=values, attention_mask=mask, labels=padded).loss
    assert got.item() == pytest.approx(want.item(), rel=1e-4)
