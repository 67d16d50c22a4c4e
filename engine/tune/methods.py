"""The three tuning methods, set up on a loaded *ForCTC model through the architecture registry.

- full: every weight trains (the feature encoder too unless frozen explicitly);
- partial: feature encoder and the lower N transformer layers frozen;
- lora: peft adapters on the registry's attention and feed-forward projections, with the CTC head
  trained in full (modules_to_save) so new or shifted characters can be learnt, and the feature
  encoder too where it is not frozen (freeze_feature_encoder: false).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from engine.registry import Family

from .config import Method

__all__ = ["MethodOptions", "count_parameters", "setup_method", "trainable_state"]

log = logging.getLogger("tingxie.methods")

# The convolutional feature encoder's attribute on every family's base model.
_ENCODER = "feature_extractor"


@dataclass(frozen=True, slots=True)
class MethodOptions:
    """What `setup_method` needs; filled from the resolved TuneConfig."""

    method: Method
    freeze_feature_encoder: bool
    freeze_layers: int = 0  # partial only: lower N transformer layers frozen
    lora_rank: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.05


def _freeze_feature_encoder(model: torch.nn.Module, family: Family) -> None:
    """Freeze the convolutional feature encoder. transformers' own switch also stops it from
    asking for input gradients; without it the backward pass still runs through every
    convolution over the raw audio (a 4-5x slower step on CPU)."""
    encoder = getattr(getattr(model, family.base_attr), _ENCODER)
    if hasattr(encoder, "_freeze_parameters"):
        encoder._freeze_parameters()
    for p in encoder.parameters():
        p.requires_grad = False


def setup_method(model: torch.nn.Module, family: Family, options: MethodOptions) -> torch.nn.Module:
    """Freeze / wrap the model for the method; returns the module to train (a PeftModel for
    LoRA, the model itself otherwise)."""
    if options.method == "lora":
        from peft import LoraConfig, get_peft_model

        for p in model.parameters():
            p.requires_grad = False
        # an unfrozen encoder trains whole beside the adapters and is saved with them, as the
        # head is, so that the adapter folder holds all the job changed
        encoder = [] if options.freeze_feature_encoder else [_ENCODER]
        lora = LoraConfig(
            r=options.lora_rank,
            lora_alpha=options.lora_alpha,
            lora_dropout=options.lora_dropout,
            target_modules=list(family.lora_targets),
            modules_to_save=[family.head, *encoder],
        )
        model = get_peft_model(model, lora)
    else:
        for p in model.parameters():
            p.requires_grad = True
        if options.method == "partial":
            layers = family.encoder_layers(model)
            if not 0 <= options.freeze_layers <= len(layers):
                raise ValueError(
                    f"freeze_layers={options.freeze_layers}: the model has {len(layers)} "
                    "layers; choose 0 to that"
                )
            for layer in list(layers)[: options.freeze_layers]:
                for p in layer.parameters():
                    p.requires_grad = False
    if options.freeze_feature_encoder:
        _freeze_feature_encoder(
            model.get_base_model() if options.method == "lora" else model, family
        )
    trainable, total = count_parameters(model)
    log.info("%s: %d of %d parameters train", options.method, trainable, total)
    return model


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The trained weights by name (what a checkpoint must hold to resume), detached on CPU."""
    return {
        name: p.detach().to("cpu", copy=True).contiguous()
        for name, p in model.named_parameters()
        if p.requires_grad
    }
