"""Training from cached feature-encoder outputs when the convolutional encoder is frozen.

A frozen encoder (LoRA, partial, or full with `freeze_feature_encoder`) maps an utterance to
the same features every epoch, so they are computed once and kept on disk (`engine.tune.cache`;
about 3x the decoded audio's size for a 512-channel encoder) and each step starts at the feature
projection. This
skips the convolutions over raw audio, which on small models are most of a step and on
XLSR-large about a tenth of it. Everything after (projection, SpecAugment, transformer, head,
CTC loss) is transformers' own modules, called in the order `*ForCTC.forward` calls them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from engine.registry import Family

__all__ = [
    "FromFeatures",
    "collate_features",
    "ctc_loss",
    "encode_features",
    "encoder_channels_last",
    "features_key",
]


def _ctc_model(model: torch.nn.Module) -> torch.nn.Module:
    """The *ForCTC module inside a peft wrapper (LoRA layers are injected in place)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _encoder(model: torch.nn.Module, family: Family) -> torch.nn.Module:
    return getattr(_ctc_model(model), family.base_attr).feature_extractor


@torch.no_grad()
def encode_features(
    model: torch.nn.Module, family: Family, audio: Iterable[np.ndarray], device: torch.device
) -> Iterator[np.ndarray]:
    """(frames, channels) float32 feature-encoder output per utterance, one at a time; on a CPU
    through the inference path's channels-last forward where the encoder allows it (the same
    values, without the module's transposes around every LayerNorm)."""
    from engine.model import channels_last_encoder

    encoder = _encoder(model, family)
    run = (channels_last_encoder(encoder) if device.type == "cpu" else None) or encoder
    for a in audio:
        x = torch.from_numpy(np.ascontiguousarray(a))[None].to(device)
        yield run(x)[0].transpose(0, 1).float().cpu().numpy()


def encoder_channels_last(model: torch.nn.Module, family: Family) -> bool:
    """Make the feature encoder's forward the channels-last one (engine.model's
    channels_last_encoder) for training on a CPU, where the encoder runs every step (it trains,
    or its features are not cached): the same values and gradients without the module's
    transposes around every LayerNorm, forward and backward ~1.7x faster on the full-size
    model, ~7 % more activation memory. False where the encoder's layers do not allow it."""
    from engine.model import channels_last_encoder

    encoder = _encoder(model, family)
    fast = channels_last_encoder(encoder)
    if fast is None:
        return False
    encoder.forward = fast
    return True


def features_key(model: torch.nn.Module, family: Family, inputs: str) -> str:
    """What cached features depend on: `inputs` (the audio and how it was prepared) and the
    feature encoder's weights."""
    digest = hashlib.sha256(inputs.encode())
    for name, tensor in sorted(_encoder(model, family).state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def collate_features(
    features: Sequence[np.ndarray], labels: Sequence[np.ndarray], device: torch.device
) -> dict[str, torch.Tensor]:
    """Zero-padded features, their frame counts, and labels padded with -100."""
    longest = max(f.shape[0] for f in features)
    batch = torch.zeros(len(features), longest, features[0].shape[1])
    for row, f in enumerate(features):
        batch[row, : f.shape[0]] = torch.from_numpy(f)
    width = max(len(t) for t in labels)
    padded = np.full((len(labels), width), -100, dtype=np.int64)
    for row, t in enumerate(labels):
        padded[row, : len(t)] = t
    return {
        "features": batch.to(device),
        "frames": torch.tensor([f.shape[0] for f in features], device=device),
        "labels": torch.from_numpy(padded).to(device),
    }


def ctc_loss(
    logits: torch.Tensor, frames: torch.Tensor, labels: torch.Tensor, config
) -> torch.Tensor:
    """CTC loss exactly as transformers' *ForCTC computes it (fp32 log-softmax, no cuDNN)."""
    mask = labels >= 0
    log_probs = torch.nn.functional.log_softmax(logits, dim=-1, dtype=torch.float32)
    with torch.backends.cudnn.flags(enabled=False):
        return torch.nn.functional.ctc_loss(
            log_probs.transpose(0, 1),
            labels.masked_select(mask),
            frames,
            mask.sum(-1),
            blank=config.pad_token_id,
            reduction=config.ctc_loss_reduction,
            zero_infinity=config.ctc_zero_infinity,
        )


class FromFeatures(torch.nn.Module):
    """The training forward from cached features; wraps the model so DDP can wrap this."""

    def __init__(self, model: torch.nn.Module, family: Family) -> None:
        super().__init__()
        self.model = model
        self.base_attr = family.base_attr

    def forward(
        self, features: torch.Tensor, frames: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        ctc = _ctc_model(self.model)
        base = getattr(ctc, self.base_attr)
        positions = torch.arange(features.shape[1], device=features.device)
        mask = positions[None, :] < frames[:, None]  # bool, as *ForCTC passes it
        projected = base.feature_projection(features)
        hidden = projected[0] if isinstance(projected, tuple) else projected
        hidden = base._mask_hidden_states(hidden, attention_mask=mask)
        hidden = base.encoder(hidden, attention_mask=mask)[0]
        if getattr(base, "adapter", None) is not None:
            hidden = base.adapter(hidden)
        logits = ctc.lm_head(ctc.dropout(hidden))
        return ctc_loss(logits, frames, labels, ctc.config)
