"""Architecture registry: one place that knows each supported model family.

Every CTC family differs only in where its modules live and which defaults suit it; loading,
freezing and LoRA targeting all read this table. Adding a family means adding one entry.
Whisper (sequence-to-sequence, run by CTranslate2 through faster-whisper: engine.whisper) is a
family too, outside the CTC table; `Family.features` says what each one can do in Tingxie, so
the app can grey out what does not apply to the loaded model.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import TingxieError

__all__ = [
    "CTC_FEATURES",
    "FAMILIES",
    "FEATURES",
    "WHISPER",
    "Family",
    "UnsupportedModelError",
    "family_for",
    "family_of",
    "features_of",
    "is_onnx_export",
    "kind_on_disk",
    "local_path",
    "model_path",
    "model_source",
]

# What a family can do in Tingxie (the app greys out what the loaded model lacks):
#   bounded_streaming    live text from re-decoding a bounded window (engine.stream)
#   agreement_streaming  live text committed where consecutive decodes agree (engine.whisper_stream)
#   ctc_tuning           LoRA / partial / full tuning through the CTC loop (engine.tune.loop);
#                        Whisper tunes with LoRA only (engine.tune.whisper_job)
#   alternatives         the model's runner-up characters for each character
#   confidence_measures  the CTC frame measures of engine.decode (`--confidence`)
#   hf_export            re-written as a Hugging Face folder (engine.tune.formats, format hf)
#   onnx_export          exported to ONNX fp32 / int8 (engine.export_onnx)
#   embeddings           per-frame vectors from any transformer layer (engine.embed)
#   language_model       CTC beam search with an n-gram, domain text and hotwords (engine.lm)
#   runtime              runs on the runtime chosen (PyTorch / ONNX Runtime, LoadOptions.backend);
#                        Whisper runs on CTranslate2 whatever is chosen
#   punctuation          punctuated by the punctuation model (engine.punctuation); Whisper writes
#                        its own marks
FEATURES = (
    "bounded_streaming",
    "agreement_streaming",
    "ctc_tuning",
    "alternatives",
    "confidence_measures",
    "hf_export",
    "onnx_export",
    "embeddings",
    "language_model",
    "runtime",
    "punctuation",
)
CTC_FEATURES = frozenset(FEATURES) - {"agreement_streaming"}  # every one but Whisper's stream


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
    # what Tingxie can do with it (names from FEATURES)
    features: frozenset[str] = CTC_FEATURES
    # the longest audio it hears at once (None: any length); longer training audio is skipped
    window_seconds: float | None = None
    # whether a batch padded under an attention mask gives each input its own output (with a
    # layer-norm feature encoder): not where the positional embedding stacks convolutions,
    # whose padded frames reach the last real ones (engine.transcribe.Transcriber.pads_batches)
    pads_exactly: bool = True

    def pads_exactly_with(self, config: Any) -> bool:
        """Whether a padded batch gives each input of a model of this family with `config`
        (its transformers config) its own output: `pads_exactly`, with a layer-norm feature
        encoder (a group-norm one, as wav2vec2-base's, normalizes over the padding too)."""
        return self.pads_exactly and getattr(config, "feat_extract_norm", "layer") == "layer"

    def encoder_layers(self, model):  # -> torch.nn.ModuleList
        """The transformer layers, bottom first (for freezing the lower N)."""
        return getattr(model, self.base_attr).encoder.layers

    def supports_flash_attention(self) -> bool:
        """Whether transformers implements flash-attention-2 for this family's CTC model, as its
        class says (`_supports_flash_attn`; `_supports_flash_attn_2` in older releases): WavLM's
        relative position bias has none, and from_pretrained refuses it. Imports the model
        class (no weights): ask only where a model is being loaded."""
        import transformers
        from transformers.models.auto.modeling_auto import MODEL_FOR_CTC_MAPPING_NAMES

        model_class = getattr(
            transformers, MODEL_FOR_CTC_MAPPING_NAMES.get(self.model_type, ""), None
        )
        flags = (
            getattr(model_class, name, None)
            for name in ("_supports_flash_attn", "_supports_flash_attn_2")
        )
        return any(flag is True for flag in flags)


FAMILIES: dict[str, Family] = {
    f.model_type: f
    for f in (
        Family("wav2vec2", "wav2vec2"),  # also MMS and XLS-R checkpoints
        Family("hubert", "hubert"),
        Family("wavlm", "wavlm", supports_sdpa=False),  # relative position bias: eager only
        Family("data2vec-audio", "data2vec_audio", pads_exactly=False),  # 5 positional convs
    )
}


# Whisper through faster-whisper: no frame posteriors (so no bounded-context streaming, CTC
# confidence measures or alternatives, nor a character LM's beam search over them), no CTC
# tuning loop (LoRA through engine.tune.whisper_job instead), and none of the exports or
# embeddings, which load the checkpoint as a transformers CTC model (a CTranslate2 folder is
# already the deployable form: it is copied or shared as it is). The module names are those of
# transformers' WhisperForConditionalGeneration, which LoRA adapts before conversion.
WHISPER = Family(
    "whisper",
    "model",
    lora_targets=("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"),
    head="proj_out",
    features=frozenset({"agreement_streaming"}),
    window_seconds=30.0,
)


def family_for(model_type: str) -> Family:
    """The registry entry for a config's model_type, or a clear error naming the supported ones
    (a model_type that is no string, as a damaged config.json can hold, is an unknown one)."""
    family = FAMILIES.get(model_type) if isinstance(model_type, str) else None
    if family is None:
        supported = ", ".join(sorted(FAMILIES))
        raise UnsupportedModelError(
            "model.unsupported_type", model_type=model_type, supported=supported
        )
    return family


# owner/name as the Hub spells repositories: ASCII, 96 characters at most (huggingface_hub's
# validate_repo_id), so no name too long for a file system is taken for one
_HUB_ID = re.compile(r"^(?=.{1,96}$)[\w.-]+/[\w.-]+$", re.ASCII)


def local_path(source: str | os.PathLike) -> Path:
    """`source` as a path on this machine, a leading ~ expanded as os.path.expanduser does: an
    unknown user's ~name stays as typed (a folder that is not there), where Path.expanduser
    raises RuntimeError."""
    return Path(os.path.expanduser(source))


def kind_on_disk(source: str | os.PathLike) -> Literal["folder", "file"] | None:
    """What `source` (`local_path`) is on this machine: a folder, a file (anything else there),
    or nothing. A name no file system holds is nothing: Path.is_dir raises OSError for one over
    255 bytes (ENAMETOOLONG, a sentence pasted for a model) on Python 3.11, where os.path's
    checks answer False."""
    path = local_path(source)
    if os.path.isdir(path):
        return "folder"
    return "file" if os.path.exists(path) else None


# A model's page on the Hub or its mirror, as a browser's address bar shows it: its Hub id,
# then what the page shows (/tree/main, /blob/main/config.json, ?…, #…). Datasets and Spaces
# are no models.
_HUB_PAGE = re.compile(
    r"^(?:https?://)?(?:www\.)?(?:huggingface\.co|hf\.co|hf-mirror\.com)/"
    r"(?!(?:datasets|spaces)/)(?P<id>[\w.-]+/[\w.-]+)(?:[/?#].*)?$",
    re.ASCII | re.IGNORECASE,
)


def model_source(source: str | os.PathLike) -> str:
    """The Hub id or folder typed or pasted text stands for: a Hub model page's address
    (https://huggingface.co/owner/name/tree/main, what people copy for a model) is its Hub id,
    and owner/name/ owner/name; anything else, and what is there on this machine, as typed.
    The one reading of a model source: loading (engine.loader, engine.model.resolve_model) and
    the app's model dialog."""
    text = str(source)
    if kind_on_disk(text) is not None:
        return text
    page = _HUB_PAGE.match(text)
    if page:
        return page["id"]
    bare = text.rstrip("/")
    return bare if _HUB_ID.match(bare) else text


def _model_type(folder: Path) -> str | None:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def model_path(folder: str | os.PathLike) -> Path:
    """The model folder `folder` stands for: a tuning job's folder (the app's, whose config.json
    holds the job's settings, or the CLI's output folder) stands for the model/ it produced;
    any other folder for itself."""
    path = local_path(folder)
    job = kind_on_disk(path) == "folder" and (path / "model" / "config.json").is_file()
    if job and _model_type(path) is None:
        return path / "model"
    return path


def family_of(source: str | os.PathLike) -> Family | None:
    """The family `source` belongs to, told from its files or its Hub id without loading it
    (cheap enough for a UI thread: no torch, no network). A CTranslate2 folder (model.bin
    beside no CTC config), a config with model_type whisper or a Hub id naming Whisper is
    WHISPER; otherwise a folder's config.json names a CTC family (a tuning job's folder stands
    for its model/). None when it cannot be told: a Hub id, a missing folder, an unknown type."""
    kind = kind_on_disk(source)
    if kind != "folder":
        # a file here (whisper-base/model.bin, typed for its folder) is no Hub id: the loader
        # names the folder to choose (engine.model.model_folder_of)
        hub_id = kind is None and bool(_HUB_ID.match(str(source)))
        named = hub_id and "whisper" in str(source).lower()
        return WHISPER if named else None
    path = model_path(source)  # a tuning job stands for its model
    model_type = _model_type(path)
    if (path / "model.bin").is_file() and model_type is None:
        return WHISPER  # CTranslate2's weights (a missing config.json is then said as such)
    if model_type == WHISPER.model_type:
        return WHISPER
    return FAMILIES.get(model_type) if isinstance(model_type, str) else None


# What an ONNX export (model.onnx, no PyTorch weights) cannot do: it holds the graph from audio
# to logits only, so there is nothing to re-write as safetensors or export again, and no layers.
ONNX_ONLY_MISSING = frozenset({"hf_export", "onnx_export", "embeddings"})


def is_onnx_export(source: str | os.PathLike) -> bool:
    """Whether `source` is a folder holding an ONNX export: model.onnx beside no PyTorch
    weights (told from its files, as `family_of`; a tuning job stands for its model/)."""
    if kind_on_disk(source) != "folder":
        return False
    path = model_path(source)
    if not (path / "model.onnx").is_file():
        return False
    torch_weights = (
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
        "model.safetensors.index.json",
    )
    return not any(path.glob("*.safetensors")) and not any(
        (path / name).is_file() for name in torch_weights
    )


def features_of(source: str | os.PathLike) -> frozenset[str]:
    """What Tingxie can do with `source` (`family_of`); a source whose family cannot be told is
    taken for a CTC model, the default family, until loading it says otherwise. An ONNX export
    (`is_onnx_export`) runs as its family does, without the exports and embeddings."""
    family = family_of(source)
    features = CTC_FEATURES if family is None else family.features
    if is_onnx_export(source):
        features -= ONNX_ONLY_MISSING
    return features
