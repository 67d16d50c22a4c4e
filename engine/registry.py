"""Architecture registry: one place that knows each supported model family.

Every CTC family differs only in where its modules live and which defaults suit it; loading,
freezing and LoRA targeting all read this table. Adding a family means adding one entry.
Whisper (sequence-to-sequence, run by CTranslate2 through faster-whisper: engine.whisper) is a
family too, outside the CTC table; `Family.features` says what each one can do in Tingxie, so
the app can grey out what does not apply to the loaded model.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import TingxieError

__all__ = [
    "CTC_FEATURES",
    "FAMILIES",
    "FEATURES",
    "WHISPER",
    "Family",
    "UnsupportedModelError",
    "family_for",
]

# What a family can do in Tingxie (the app greys out what the loaded model lacks):
#   bounded_streaming    live text from re-decoding a bounded window (engine.stream)
#   agreement_streaming  live text committed where consecutive decodes agree (engine.whisper_stream)
#   ctc_tuning           LoRA / partial / full tuning through the CTC loop (engine.tune)
#   alternatives         the model's runner-up characters for each character
#   confidence_measures  the CTC frame measures of engine.decode (`--confidence`)
FEATURES = (
    "bounded_streaming",
    "agreement_streaming",
    "ctc_tuning",
    "alternatives",
    "confidence_measures",
)
CTC_FEATURES = frozenset({"bounded_streaming", "ctc_tuning", "alternatives", "confidence_measures"})


class UnsupportedModelError(TingxieError, ValueError):
    """The checkpoint is not a wav2vec2-family CTC model Tingxie can run or tune."""


@dataclass(frozen=True, slots=True)
class Family:
    """What Tingxie needs to know about one model family."""

    # config.model_type as written in config.json
    model_type: str
    # attribute of the *ForCTC model holding the encoder (model.<base>.encoder.layers)
    base_attr: str
    # projections LoRA adapts by default: attention then feed-forward
    lora_targets: tuple[str, ...] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "out_proj",
        "intermediate_dense",
        "output_dense",
    )
    # the CTC output layer, always trained (and saved with an adapter)
    head: str = "lm_head"
    # whether transformers implements SDPA attention for this family
    supports_sdpa: bool = True
    # a learning rate that suits LoRA on this family
    default_lora_lr: float = 1e-3
    # what Tingxie can do with it (names from FEATURES)
    features: frozenset[str] = CTC_FEATURES

    def encoder_layers(self, model):  # -> torch.nn.ModuleList
        """The transformer layers, bottom first (for freezing the lower N)."""
        return getattr(model, self.base_attr).encoder.layers


FAMILIES: dict[str, Family] = {
    f.model_type: f
    for f in (
        Family("wav2vec2", "wav2vec2"),  # also MMS and XLS-R checkpoints
        Family("hubert", "hubert"),
        Family("wavlm", "wavlm", supports_sdpa=False),  # relative position bias: eager only
        Family("data2vec-audio", "data2vec_audio"),
    )
}


# Whisper through faster-whisper: no frame posteriors (so no bounded-context streaming, CTC
# confidence measures or alternatives) and no CTC tuning loop. The module names are those of
# transformers' WhisperForConditionalGeneration, which LoRA would adapt before conversion.
WHISPER = Family(
    "whisper",
    "model",
    lora_targets=("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"),
    head="proj_out",
    features=frozenset({"agreement_streaming"}),
)


def family_for(model_type: str) -> Family:
    """The registry entry for a config's model_type, or a clear error naming the supported ones."""
    try:
        return FAMILIES[model_type]
    except KeyError:
        supported = ", ".join(sorted(FAMILIES))
        raise UnsupportedModelError(
            "model.unsupported_type", model_type=model_type, supported=supported
        ) from None
