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


@pytest.mark.parametrize("frozen", [False, True])
def test_the_encoder_trains_channels_last_with_the_modules_loss_and_gradients(tmp_path, frozen):
    """The training forward through encoder_channels_last gives the loss and every gradient
    the module's own forward gives, whether the encoder trains or is frozen."""
    from engine.tune.features import encoder_channels_last
    from engine.tune.methods import _freeze_feature_encoder

    folder = build_model(tmp_path / "m", "tiny", chars="天地人和")
    family = family_for("wav2vec2")
    values = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([[5, 6, 7], [8, 5, -100]])

    def step(fast: bool):
        model = AutoModelForCTC.from_pretrained(folder, attn_implementation="eager")
        model.eval()  # no dropout or masking: both runs draw nothing at random
        if frozen:
            _freeze_feature_encoder(model, family)
        if fast:
            assert encoder_channels_last(model, family)
        loss = model(input_values=values, labels=labels).loss
        loss.backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        return loss.item(), grads

    (want, want_grads), (got, got_grads) = step(False), step(True)
    assert got == pytest.approx(want, rel=1e-5)
    assert got_grads.keys() == want_grads.keys()
    encoder_grads = [n for n in got_grads if ".feature_extractor." in n]
    assert (encoder_grads == []) == frozen
    for name, grad in want_grads.items():
        # AVX-512 convolutions sum in another order channels-last: ~4e-6 apart on a Xeon
        torch.testing.assert_close(got_grads[name], grad, rtol=1e-4, atol=1e-5)
