"""Loading wav2vec2-family CTC checkpoints from a Hub id or a local folder.

Device, precision and attention are picked from the hardware unless forced, and reported in the
returned `LoadedModel`. Every failure is a `ModelLoadError` whose message names the id or folder
and says what to do; no traceback reaches the user.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import re
import reprlib
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .decode import CtcVocab
from .errors import TingxieError
from .registry import (
    WHISPER,
    Family,
    UnsupportedModelError,
    family_for,
    family_of,
    kind_on_disk,
    local_path,
    model_path,
    model_source,
)
from .shipped import resource
from .user_cache import user_cache_dir

if TYPE_CHECKING:  # torch is imported when a model is loaded: Whisper's path never needs it
    import torch

__all__ = [
    "BLOCKED_ATTENTION",
    "DEFAULT_MODEL",
    "DEMO_MODEL_DIR",
    "LoadOptions",
    "LoadedModel",
    "ModelLoadError",
    "adapter_language",
    "bake_weight_norm",
    "blocked_attention",
    "channels_last_encoder",
    "check_checkpoint",
    "check_json",
    "cpu_has_amx",
    "cpu_has_fast_bf16",
    "ctc_model",
    "hub_failure",
    "hub_offline",
    "import_runtime",
    "load_model",
    "looks_like_path",
    "model_file",
    "model_folder_of",
    "model_vocab",
    "parity_warning",
    "pick_attention",
    "pick_device",
    "pick_dtype",
    "resolve_model",
    "slice_feature_encoder",
    "weights_cache_dir",
]

log = logging.getLogger("tingxie.model")

DEFAULT_MODEL = "jonatasgrosman/wav2vec2-large-xlsr-53-chinese-zh-cn"
# A small model trained by the project on synthetic speech (a demo, not for real voices).
DEMO_MODEL_DIR = resource("demo-model")

Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Attention = Literal["auto", "sdpa", "flash_attention_2", "eager", "blocked"]
Backend = Literal["auto", "torch", "onnx"]

BLOCKED_ATTENTION = "blocked"  # engine.model.blocked_attention, as transformers knows it
# blocked_attention's blocks: 4 heads x 512 queries (x 1000 keys for 20 s: 4 MB of bf16 scores;
# 256 or 1024 queries, or 1-2 or 8-16 heads, were up to 1.5x slower in a batch of four)
_HEAD_GROUP = 4
_QUERY_BLOCK = 512
_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # torch dtype names
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",  # sharded pickle weights (older transformers' large models)
    "model.onnx",  # an export (engine.onnx): runs on the ONNX Runtime backend
)
_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
# The JSON files beside config.json that transformers reads; each holds an object.
_JSON_FILES = (
    "vocab.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    *_PROCESSOR_FILES,
)
# The sampling rates (Hz) a model's feature extractor may name: telephone speech to studio
# audio. Outside them, a rate of 0 divided by zero (LoadedModel.frame_seconds), a negative one
# failed as the audio file's fault and 1e12 asked the resampler for terabytes (bad_alloc).
_SAMPLING_RATES = (8_000, 48_000)
# A JSON value other than an object as messages show it (the same in every language).
_JSON_KINDS = {
    list: "[…]",
    str: '"…"',
    int: "123",
    float: "1.5",
    bool: "true/false",
    type(None): "null",
}
# A large checkpoint stored in fp32 and run in bf16/fp16 on a CPU is converted once into the
# weights cache (weights_cache_dir): later loads map half the bytes and never hold an fp32 copy
# beside the half-precision one (the full-size XLSR-53: load peak 2.3 -> 0.5 GB). Small models
# load in well under a second either way and are not copied.
CONVERT_MIN_BYTES = 100_000_000
_CACHED_CONVERSIONS = 3  # the most recently used conversions kept; older ones are removed
# On a CPU without native bf16, "auto" runs such a checkpoint on an int8 copy instead (ONNX
# Runtime, dynamic quantization of the Linear layers; engine.export_onnx), made once into the
# same cache by a child process. The full-size XLSR-53 on a 2-core AMD EPYC with AVX2 only: 2.42x
# the HF pipeline at 1.10 GB peak against fp32's 1.55x at 1.99 GB (bench_transcribe,
# 2026-12-03); the demo model loses 0.17 CER points int8 (tests/test_onnx.py keeps it <= 0.5).
_INT8_STAGES = ("loading", "writing", "quantizing")  # what engine.export_onnx prints
# What a snapshot download fetches: config, weights (safetensors first), processor files.
# A model's own files, its language model (lm/, engine.lm) included; never pickles, and never a
# pyctcdecode `language_model/` (a KenLM binary of up to gigabytes that Tingxie does not read).
# Nor MMS adapters (adapter.<language>.safetensors: MMS-1b-all has 1,162 of ~9 MB each): the
# one of the language read is fetched on its own (_fetch_adapter).
_ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.md", "lm/*"]
_IGNORE_PATTERNS = ["language_model/*", "adapter.*.safetensors"]
# MMS (wav2vec2 with per-language adapters): vocab.json holds one vocabulary per language
# ({"cmn-script_simplified": {token: id}, ...}) and adapter.<language>.safetensors (transformers'
# WAV2VEC2_ADAPTER_SAFE_FILE) that language's adapter layers and CTC head. Read where
# tokenizer_config.json names no target_lang: Mandarin, in Simplified characters first.
_MANDARIN = "cmn-script_simplified"
_ADAPTER_FILE = "adapter.{}.safetensors"
# config.json's vocab_size where it gives none: transformers' default for every CTC family.
_DEFAULT_VOCAB_SIZE = 32
# The most ids (or runs of ids, or languages) an error lists.
_IDS_SHOWN = 8
# How a value out of a model's JSON files is quoted in a message: its first few items, or the
# ends of a long string (a per-language vocab.json's value is a whole vocabulary).
_BRIEF = reprlib.Repr()
_BRIEF.maxlevel, _BRIEF.maxdict, _BRIEF.maxlist, _BRIEF.maxstring = 1, 4, 4, 40


class ModelLoadError(TingxieError, RuntimeError):
    """A model could not be loaded; the message says which and what to do."""


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """How to place a model. "auto" picks from the hardware; see `pick_*` for the rules."""

    device: Device = "auto"
    precision: Precision = "auto"
    attention: Attention = "auto"
    # Never download: use only a local folder or the Hugging Face cache.
    local_files_only: bool = False
    # Load a folder whose only weights are pytorch_model.bin (a pickle, which can run code when
    # read): only for checkpoints from a source the user trusts.
    allow_pickle: bool = False
    # torch, or ONNX Runtime on a folder's model.onnx; auto: onnx when the folder has only that,
    # and an int8 copy of a large fp32 checkpoint on a CPU without native bf16 when precision is
    # auto too (CONVERT_MIN_BYTES)
    backend: Backend = "auto"

    def __post_init__(self) -> None:
        for name, allowed in (
            ("device", Device),
            ("precision", Precision),
            ("attention", Attention),
            ("backend", Backend),
        ):
            value = getattr(self, name)
            if value not in allowed.__args__:
                raise ValueError(f"{name}={value!r}: choose one of {', '.join(allowed.__args__)}")


@dataclass(slots=True)
class LoadedModel:
    """A CTC model ready for inference, with what decoding needs to know about its vocabulary."""

    model: Any  # transformers *ForCTC, in eval mode on `device`
    feature_extractor: Any  # transformers Wav2Vec2FeatureExtractor (or the family's own)
    family: Family
    source: str  # the id or folder as given
    path: Path  # the local folder actually loaded
    device: torch.device
    dtype: torch.dtype
    attention: str
    vocab: list[str] = field(default_factory=list)  # id -> token
    # "torch"; "onnx": the folder's model.onnx; "onnx-int8": this CPU's int8 copy of the weights
    runtime: str = "torch"
    blank_id: int = 0
    word_delimiter: str = "|"
    special_ids: frozenset[int] = frozenset()
    sampling_rate: int = 16_000
    do_normalize: bool = True
    # What a front end should tell whoever uses the model, though it loaded (logged too): an
    # ONNX export whose own parity check failed (`parity_warning`)
    warnings: tuple[TingxieError, ...] = ()

    @property
    def precision(self) -> str:
        """What the weights run in: "int8" for this CPU's int8 copy, else "fp32", "bf16", "fp16"."""
        if self.runtime == "onnx-int8":
            return "int8"
        return next(k for k, v in _DTYPES.items() if str(self.dtype) == f"torch.{v}")

    @property
    def frame_seconds(self) -> float:
        """Seconds of audio per output frame (product of the conv strides / sampling rate)."""
        stride = 1
        for s in self.model.config.conv_stride:
            stride *= s
        return stride / self.sampling_rate


@cache
def _cpu_flags() -> frozenset[str]:
    try:
        return frozenset(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return frozenset()


def _isa_allows(feature: str) -> bool:
    """False when ONEDNN_MAX_CPU_ISA, oneDNN's own cap, which torch's CPU matrix products obey,
    keeps `feature` ("BF16" or "AMX") out of use (e.g. ONEDNN_MAX_CPU_ISA=AVX2 runs a bf16 CPU
    as an AVX2-only one)."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if cap in ("", "ALL", "DEFAULT"):
        return True
    if feature == "BF16":  # every ISA from AVX512_CORE_BF16 up (AVX10 included) has bf16
        return any(x in cap for x in ("BF16", "FP16", "AMX")) or cap.startswith("AVX10")
    return "AMX" in cap


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with native bf16 matrix instructions (AVX512-BF16 or AMX) in use."""
    return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags()) and _isa_allows("BF16")


def cpu_has_amx() -> bool:
    """True on CPUs with AMX tiles (Intel Sapphire Rapids and later) in use."""
    return "amx_bf16" in _cpu_flags() and _isa_allows("AMX")


def pick_device(requested: Device) -> torch.device:
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("model.no_cuda")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def pick_dtype(requested: Precision, device: torch.device) -> torch.dtype:
    """bf16 where the hardware runs it natively (recent GPUs, AVX512-BF16/AMX CPUs), else fp16 on
    older GPUs and fp32 on other CPUs."""
    import torch

    if requested != "auto":
        return getattr(torch, _DTYPES[requested])
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


def pick_attention(
    requested: Attention, family: Family, device: torch.device, dtype: torch.dtype
) -> str:
    """flash_attention_2 on CUDA in half precision when the package is installed and the family
    has it (`Family.supports_flash_attention`); blocked attention (`blocked_attention`) in bf16
    on a CPU without AMX; SDPA where the family supports it, eager otherwise. A choice forced
    on a family without it is refused with the one to use."""
    import torch

    if requested != "auto":
        if requested in ("sdpa", BLOCKED_ATTENTION) and not family.supports_sdpa:
            raise ModelLoadError("model.sdpa_unsupported", model_type=family.model_type)
        if requested == "flash_attention_2" and not family.supports_flash_attention():
            instead = "sdpa" if family.supports_sdpa else "eager"
            raise ModelLoadError(
                "model.flash_unsupported", model_type=family.model_type, instead=instead
            )
        return requested
    half = dtype.is_floating_point and dtype.itemsize == 2
    flash = device.type == "cuda" and half and _flash_attn_installed()
    if flash and family.supports_flash_attention():
        return "flash_attention_2"
    if not family.supports_sdpa:
        return "eager"
    if device.type == "cpu" and dtype == torch.bfloat16 and not cpu_has_amx():
        return BLOCKED_ATTENTION
    return "sdpa"


def blocked_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """softmax(QKᵀ)V for `_HEAD_GROUP` heads and `_QUERY_BLOCK` queries at a time, each block
    two large batched matrix products, for inference in bf16 on a CPU without AMX
    (transformers' attention interface: (batch, heads, time, head dim) in, (batch, time,
    heads, head dim) out). The inputs are made contiguous per head once, so that no block
    copies them again.

    Why: there PyTorch's CPU flash kernel runs its small tiles no faster in bf16 than in fp32;
    on a 2-core AMD EPYC with AVX512-BF16 (2026-12-02) this took about half its time (one layer
    of the full-size model, 20 s: 11 against 27 ms; a batch of four: 44 against 107 ms; 40 s:
    40 against 110 ms). With AMX (Intel) the flash kernel is the faster one, and in fp32 it is
    here too. Training, dropout and padding masks go to SDPA."""
    import torch

    if module.training or dropout or attention_mask is not None or torch.is_grad_enabled():
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    batch, heads, frames, width = query.shape
    q = torch.empty(query.shape, dtype=query.dtype, device=query.device)
    torch.mul(query, width**-0.5 if scaling is None else scaling, out=q)
    q = q.view(batch * heads, frames, width)
    key_t = key.contiguous().view(batch * heads, frames, width).transpose(1, 2)
    value = value.contiguous().view(batch * heads, frames, width)
    out = torch.empty_like(q)
    for g in range(0, batch * heads, _HEAD_GROUP):
        heads_g = slice(g, g + _HEAD_GROUP)
        for i in range(0, frames, _QUERY_BLOCK):
            rows = slice(i, i + _QUERY_BLOCK)
            scores = torch.bmm(q[heads_g, rows], key_t[heads_g])
            torch.bmm(scores.softmax(-1), value[heads_g], out=out[heads_g, rows])
    return out.view(batch, heads, frames, width).transpose(1, 2).contiguous(), None


def _flash_attn_installed() -> bool:
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return False
    return True


_WEB_ADDRESS = re.compile(r"^https?://", re.IGNORECASE)
_DRIVE = re.compile(r"^[A-Za-z]:")  # C:\models, C:/models


def looks_like_path(source: str) -> bool:
    """Whether `source` (`model_source`) is a path on this machine, not a Hub id: anything that
    exists here (`models/mine` is the folder when there is one, as transformers' from_pretrained
    reads it), or text no Hub id can be (Hub ids are `name` or `owner/name`: anything starting
    as a path does, ./ ../ ~ / or a drive, or with more than one separator)."""
    text = model_source(source)
    starts = text.startswith((".", "/", "~", "\\")) or bool(_DRIVE.match(text))
    shaped = starts or text.count("/") > 1 or "\\" in text
    return shaped or kind_on_disk(text) is not None


# Files that make the folder holding them a model folder: a CTC or Whisper config (a tuning
# job's settings too: the job stands for its model/), CTranslate2's weights, an adapter.
_MODEL_MARKERS = ("config.json", "model.bin", "adapter_config.json")


def model_folder_of(path: str | os.PathLike) -> Path | None:
    """The model folder a file inside it stands for: config.json or the weights are what a
    file manager shows, and people pick them for the folder. None where `path` is no file or
    its folder holds no model."""
    file = local_path(path)
    folder = file.parent
    is_file = kind_on_disk(file) == "file"
    found = is_file and any((folder / name).is_file() for name in _MODEL_MARKERS)
    return folder if found else None


def _not_a_folder(source: str, path: Path) -> ModelLoadError:
    """The error for a model source that is a file (`path`, as `source` names it): the folder
    to choose where the file is inside a model's folder."""
    folder = model_folder_of(path)
    if folder is None:
        return ModelLoadError("model.is_file", source=source)
    return ModelLoadError("model.file_in_folder", source=source, folder=folder)


def _check_folder(path: Path, allow_pickle: bool = False) -> None:
    if kind_on_disk(path) != "folder":
        raise ModelLoadError("model.folder_missing", path=path)
    config = path / "config.json"
    if not config.is_file() and (path / "adapter_config.json").is_file():
        raise ModelLoadError("model.adapter_only", path=path)
    # another kind of model is said as such, not as the files it lacks
    family = _family(path, _read_json(config)) if config.is_file() else None
    missing = _missing_files(path)
    if missing == ["vocab.json"] and family and _lacks_head(_weight_files(path), family):
        raise ModelLoadError("model.pretrained_encoder", path=path, head=family.head)
    if missing:
        raise ModelLoadError("model.folder_incomplete", path=path, missing=", ".join(missing))
    safe = any(path.glob("*.safetensors")) or (path / "model.onnx").is_file()
    if not allow_pickle and not safe:
        raise ModelLoadError("model.pickle_only", path=path)


_WEIGHTS_NAMED = "model.safetensors (or pytorch_model.bin)"


def _missing_files(path: Path) -> list[str]:
    """The files model folder `path` lacks, as messages name them."""
    wanted = {
        "config.json": ("config.json",),
        _WEIGHTS_NAMED: _WEIGHT_FILES,
        "vocab.json": ("vocab.json",),
        "preprocessor_config.json": _PROCESSOR_FILES,
    }
    return [name for name, files in wanted.items() if not any((path / f).is_file() for f in files)]


def resolve_model(
    source: str | os.PathLike,
    *,
    local_files_only: bool = False,
    tqdm_class: Any = None,
    allow_pickle: bool = False,
) -> Path:
    """The local folder for a Hub id (downloading into the Hugging Face cache if allowed) or a
    folder path (a tuning job's folder stands for the model it produced, as in
    `engine.registry.model_path`), read by `model_source`; another web address is refused.
    Downloads resume where they stopped. Pickle-only weights are refused unless `allow_pickle`
    (downloads never fetch them)."""
    text = model_source(source)
    if _WEB_ADDRESS.match(text):
        raise ModelLoadError("model.web_address", source=text)
    path = local_path(text)
    if kind_on_disk(path) == "file":
        raise _not_a_folder(text, path)
    if looks_like_path(text):
        path = model_path(path)
        _check_folder(path, allow_pickle)
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    offline = local_files_only or hub_offline()
    try:
        folder = Path(
            snapshot_download(
                text,
                allow_patterns=_ALLOW_PATTERNS,
                ignore_patterns=_IGNORE_PATTERNS,
                local_files_only=offline,
                tqdm_class=tqdm_class,
            )
        )
    except HFValidationError as e:
        raise ModelLoadError("model.invalid_id", source=text) from e
    except Exception as e:  # network, cache and auth failures all mean the same here
        code = "model.not_cached" if offline else "model.download_failed"
        raise hub_failure(code, text, e) from e
    if not offline:  # the Hub unreachable: the snapshot came from the cache, as do the rest
        offline = not _fetch_pickles(text, folder, allow_pickle)
    with _download_finished(text, offline, "model.folder_incomplete", "model.adapter_missing"):
        try:
            _check_folder(folder, allow_pickle)
        except ModelLoadError as e:  # the cache's snapshot folder is no one's to convert
            if e.code != "model.pickle_only":
                raise
            raise ModelLoadError("model.hub_pickle_only", source=text) from e
        if offline:  # online, the adapter is fetched next
            _check_adapter(folder, _vocab_size(_read_json(folder / "config.json")))
    if not offline:
        _fetch_adapter(text, folder)
    return folder


def _offline_setting() -> tuple[str, str] | None:
    """The variable huggingface_hub reads for offline mode and its value: HF_HUB_OFFLINE, else
    TRANSFORMERS_OFFLINE (the first one set to anything), None where neither is set."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name):
            return name, os.environ[name]
    return None


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE keeps this process from downloading,
    read as huggingface_hub reads them (1, ON, YES or TRUE in any case; HF_HUB_OFFLINE first):
    "0", "no" or "off" do not. Read live, where huggingface_hub reads them once at import."""
    from huggingface_hub import constants

    setting = _offline_setting()
    return setting is not None and setting[1].upper() in constants.ENV_VARS_TRUE_VALUES


def _fetch_pickles(source: str, folder: Path, allow_pickle: bool) -> bool:
    """Download into the snapshot `folder` of Hub id `source` its pickle weights where they are
    all it has (pytorch_model.bin, or the shards pytorch_model.bin.index.json lists), which the
    snapshot leaves out: only with `allow_pickle`; without it, the error saying so (not a folder
    to copy again or a download to finish: either would fail the same way). Nothing is asked
    of the Hub where the weights are cached, or where other files are missing (a repository
    that is no CTC model: _check_folder names them before 1 GB is fetched). False where the
    Hub cannot be reached: as the snapshot download does, the cache is then all there is."""
    safe = ("model.safetensors", "model.safetensors.index.json", "model.onnx")
    others = set(_missing_files(folder)) - {_WEIGHTS_NAMED}
    if others or any((folder / f).is_file() for f in safe):
        return True
    import httpx2
    from huggingface_hub import file_exists, hf_hub_download
    from huggingface_hub.errors import OfflineModeIsEnabled

    index = folder / "pytorch_model.bin.index.json"
    try:
        if index.is_file():
            names = sorted({str(s) for s in (_read_json(index).get("weight_map") or {}).values()})
        elif (folder / "pytorch_model.bin").is_file() or file_exists(
            source, "pytorch_model.bin", revision=folder.name
        ):
            names = ["pytorch_model.bin"]
        else:
            return True  # no weights at all: _check_folder names what is missing
        missing = [name for name in names if not (folder / name).is_file()]
        if missing and not allow_pickle:
            raise ModelLoadError("model.hub_pickle_only", source=source)
        for name in missing:  # the snapshot's own commit, as for the adapter
            hf_hub_download(source, name, revision=folder.name)
    except ModelLoadError:
        raise
    except (httpx2.ConnectError, httpx2.TimeoutException, OfflineModeIsEnabled):
        return False
    except Exception as e:  # cache and auth failures, as for the snapshot
        raise hub_failure("model.download_failed", source, e) from e
    return True


def _fetch_adapter(source: str, folder: Path) -> None:
    """Download into the snapshot `folder` of Hub id `source` the MMS adapter of the language
    its per-language vocabulary is read in (`check_json`), which the snapshot leaves out
    with every other language's. A repository without one needs none (a tuned MMS model holds
    its language in its weights); offline, the cache has it or the head loaded is the weights'."""
    language = check_json(folder)
    if language is None:
        return
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:  # the snapshot's own commit (its folder's name), not whatever main is now
        hf_hub_download(source, _ADAPTER_FILE.format(language), revision=folder.name)
    except EntryNotFoundError:
        return
    except Exception as e:  # network, cache and auth failures, as for the snapshot
        raise hub_failure("model.download_failed", source, e) from e


def hub_failure(code: str, source: str, error: Exception) -> ModelLoadError:
    """The error `code` for Hub id `source` that could not be had (`error`), naming the cache
    this process reads (huggingface_hub's HF_HUB_CACHE, from HF_HUB_CACHE, HF_HOME or
    XDG_CACHE_HOME): the folder a cache copied from a connected machine goes into."""
    from huggingface_hub import constants

    cache = constants.HF_HUB_CACHE
    detail = type(error).__name__
    setting = _offline_setting()
    if code.endswith("not_cached") and hub_offline() and setting:  # what made it offline
        detail = "{}={}".format(*setting)
    return ModelLoadError(code, source=source, detail=detail, cache=cache)


@contextlib.contextmanager
def _download_finished(source: str, offline: bool, *incomplete: str) -> Iterator[None]:
    """Checks of a Hub id's folder in the cache, run inside: offline, a folder missing files
    (an error of a code in `incomplete`, its `missing` the files) is a download that stopped
    before it was complete, which is said with the way to finish it, not as a folder to copy
    again (the cache's snapshot folder is no one's to copy)."""
    try:
        yield
    except ModelLoadError as e:
        if not offline or e.code not in incomplete:
            raise
        missing = e.params["missing"]
        raise ModelLoadError("model.download_incomplete", source=source, missing=missing) from e


def _read_json(path: Path) -> dict:
    """One of a model's JSON files, which holds an object ({...})."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # ValueError: not JSON, or not UTF-8
        raise ModelLoadError("model.bad_json", path=path, detail=e) from e
    if not isinstance(data, dict):
        raise ModelLoadError("model.json_not_object", path=path, found=_JSON_KINDS[type(data)])
    return data


def _family(path: Path, config: dict) -> Family:
    """The family config.json names, or the error that says the folder holds another kind of
    model."""
    try:
        return family_for(config.get("model_type", "?"))
    except UnsupportedModelError as e:
        raise ModelLoadError("model.unsupported_in_folder", path=path, error=e) from e


def check_json(path: str | os.PathLike) -> str | None:
    """Read the JSON files of a model folder transformers will (each an object), so that a
    damaged one is named with what to do, not met as a traceback deep inside transformers.
    Returns the language a per-language vocab.json (MMS) is read in, the target_lang its
    tokenizer needs (`_pick_language`: only that vocabulary is checked); None where vocab.json
    is one vocabulary."""
    path = Path(path)
    for name in _JSON_FILES:
        if name != "vocab.json" and (path / name).is_file():
            record = _read_json(path / name)
            if name in _PROCESSOR_FILES:
                _check_sampling_rate(path / name, record)
    if not (path / "vocab.json").is_file():
        return None
    vocab, language = _vocab_file(path)
    for token, i in vocab.items():
        if not isinstance(i, int) or isinstance(i, bool):
            raise ModelLoadError(
                "model.bad_vocab", path=path / "vocab.json", token=_brief(token), found=_brief(i)
            )
    return language


def _check_sampling_rate(path: Path, record: dict) -> None:
    """Refuse a feature extractor's sampling_rate outside `_SAMPLING_RATES` or not a whole
    number of Hz. transformers reads it from preprocessor_config.json, or from the
    feature_extractor of processor_config.json, which wins where both are there."""
    fe = record.get("feature_extractor") if path.name == "processor_config.json" else record
    if not isinstance(fe, dict) or "sampling_rate" not in fe:
        return  # transformers' default, 16 kHz
    rate = fe["sampling_rate"]
    low, high = _SAMPLING_RATES
    number = isinstance(rate, int | float) and not isinstance(rate, bool)
    if not (number and low <= rate <= high and float(rate).is_integer()):
        raise ModelLoadError(
            "model.bad_sampling_rate", path=path, value=_brief(rate), low=low, high=high
        )


class _Quoted(str):
    """Text a message quotes as it stands (its repr is itself): a value `_brief` shows."""

    def __repr__(self) -> str:
        return str(self)


def _brief(value: Any) -> str:
    """`value` as a message quotes it, cut short (`_BRIEF`)."""
    return _Quoted(_BRIEF.repr(value))


def _few(items: list[str]) -> str:
    """The first few of `items` as a message lists them ("a, b, …")."""
    return ", ".join(items[:_IDS_SHOWN] + ["…"] * (len(items) > _IDS_SHOWN))


def _vocab_file(path: Path) -> tuple[dict[str, Any], str | None]:
    """vocab.json's vocabulary (token -> id) and the language it is: None where the file is one
    vocabulary; of a per-language file (MMS), the one `_pick_language` chooses."""
    vocab = _read_json(path / "vocab.json")
    if not vocab or not all(isinstance(v, dict) for v in vocab.values()):
        return vocab, None
    language = _pick_language(path, sorted(vocab))
    return vocab[language], language


def _pick_language(path: Path, languages: list[str]) -> str:
    """The language of a per-language vocab.json to read: Mandarin where it has it
    (`_MANDARIN`, then another cmn one), whatever tokenizer_config.json's target_lang says
    (MMS-1b-all's says "eng", its default, not a user's choice); else that target_lang
    (refused where vocab.json has none such); refused, with a few of the languages there are,
    where neither is found."""
    mandarin = [_MANDARIN] if _MANDARIN in languages else [x for x in languages if x[:3] == "cmn"]
    if mandarin:
        return mandarin[0]
    tokenizer = path / "tokenizer_config.json"
    wanted = _read_json(tokenizer).get("target_lang") if tokenizer.is_file() else None
    shown = {"count": len(languages), "languages": _few(languages)}
    if wanted is None:
        raise ModelLoadError("model.vocab_no_mandarin", path=path / "vocab.json", **shown)
    if wanted not in languages:
        raise ModelLoadError(
            "model.vocab_language_missing", path=tokenizer, language=_brief(wanted), **shown
        )
    return wanted


def adapter_language(path: str | os.PathLike) -> str | None:
    """`check_json`'s language where the folder holds its adapter (its adapter layers and
    CTC head, adapter.<language>.safetensors): the target_lang from_pretrained needs for the
    model to write that vocabulary (MMS-1b-all's own weights hold English's). None otherwise:
    a tuned MMS model holds its language in its weights."""
    language = _vocab_file(Path(path))[1]
    found = language is not None and (Path(path) / _ADAPTER_FILE.format(language)).is_file()
    return language if found else None


def _weight_files(path: Path) -> dict[str, Path] | None:
    """Where each tensor of a folder's safetensors weights is (one file, or the shards its
    index lists), by name; None where there are none to read (pickle or ONNX only)."""
    index = path / "model.safetensors.index.json"
    if index.is_file():
        shards = _read_json(index).get("weight_map") or {}
        return {name: path / str(shard) for name, shard in shards.items()}
    header = _tensor_header(path / "model.safetensors")
    return None if header is None else dict.fromkeys(header, path / "model.safetensors")


def _vocab_size(config: dict) -> int | None:
    """The outputs of the CTC head config.json asks for; None where the value is no whole
    number (transformers' config class then names it: model.bad_config)."""
    size = config.get("vocab_size", _DEFAULT_VOCAB_SIZE)
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def _lacks_head(files: dict[str, Path] | None, family: Family) -> bool:
    """Whether weights (`_weight_files`) hold no CTC head: a pretrained base checkpoint."""
    return files is not None and not any(n.startswith(f"{family.head}.") for n in files)


def _head_outputs(path: Path, family: Family, config: dict) -> int | None:
    """The outputs of the CTC head the model is loaded with: its MMS adapter's for the language
    read (`adapter_language`), else config.json's vocab_size (`_vocab_size`)."""
    language = adapter_language(path)
    if language is None:
        outputs = _vocab_size(config)
        _check_adapter(path, outputs)
        return outputs
    header = _tensor_header(path / _ADAPTER_FILE.format(language)) or {}
    rows = (header.get(f"{family.head}.weight", {}).get("shape") or [None])[0]
    return rows if isinstance(rows, int) else None


def _check_adapter(path: Path, outputs: int | None) -> None:
    """Refuse a per-language vocabulary (MMS) read in a language whose adapter is not in the
    folder while the weights' own head (`outputs`) is too small for it (an id at or past its
    last row: MMS-1b-all's English head): the adapter was left out (a download cut short, a
    copy without the adapter files), not vocab.json (a tuned MMS model's head fits its
    vocabulary, and the tokens the tokenizer adds, without one)."""
    language = check_json(path)
    if language is None or outputs is None:
        return
    adapter = _ADAPTER_FILE.format(language)
    ids = [i for i in _vocab_file(path)[0].values() if isinstance(i, int)]
    if (path / adapter).is_file() or max(ids, default=-1) < outputs:
        return  # a vocabulary inside the head: _check_vocab judges the rest (added tokens)
    raise ModelLoadError("model.adapter_missing", path=path, language=language, missing=adapter)


def _check_ctc_head(path: Path, family: Family, outputs: int | None) -> None:
    """Refuse weights without a CTC head (a pretrained base checkpoint, not yet fine-tuned for
    recognition): transformers would make one up at random and transcribe gibberish. Tuning
    loads its base on its own (engine.tune.loop), where a new head is what it trains. A head
    of another size than config.json's vocab_size (the two files from different checkpoints)
    is named with both files: transformers only points to a report no one sees."""
    files = _weight_files(path)
    if files is None:
        return
    if _lacks_head(files, family):
        raise ModelLoadError("model.no_ctc_head", path=path, head=family.head)
    name = f"{family.head}.weight"
    header = _tensor_header(files[name]) if name in files else None
    shape = (header or {}).get(name, {}).get("shape") or [None]
    if outputs is not None and isinstance(shape[0], int) and shape[0] != outputs:
        raise ModelLoadError(
            "model.head_mismatch",
            config=path / "config.json",
            vocab_size=outputs,
            head=name,
            weights=files[name],
            rows=shape[0],
        )


def _bad_ids(ids: list[int], outputs: int) -> list[tuple[int, int]]:
    """Runs (first, last) of the ids not used exactly once from 0 to outputs - 1: those used
    twice or more or lying outside, one by one, and the unused ones."""
    uses = Counter(ids)
    used = sorted(i for i in uses if 0 <= i < outputs)
    bounds = zip([-1, *used], [*used, outputs], strict=True)
    unused = [(a + 1, b - 1) for a, b in bounds if b - a > 1]
    return sorted(unused + [(i, i) for i, n in uses.items() if n > 1 or not 0 <= i < outputs])


def _runs_text(runs: list[tuple[int, int]]) -> str:
    """The first few runs of ids as a message shows them ("0–2, 5, …")."""
    return _few([f"{a}–{b}" if b > a else str(a) for a, b in runs])


def _check_vocab(
    path: Path, vocab: dict[str, int], outputs: int | None, tokenizer: str | None = None
) -> None:
    """Refuse a vocabulary that does not give each output of the CTC head one token: decoding
    would write outputs as other characters, or as none, without a word of warning. `vocab` is
    the one decoding uses: the `tokenizer` class's (vocab.json and the tokens it adds beside
    it), or vocab.json itself (None). An added token past the head (<s> where vocab.json has
    none) is never written and does not count. A tokenizer that does not read vocab.json as it
    is (tokenizer_config.json naming another class) is named first."""
    own = _vocab_file(path)[0] if tokenizer else vocab
    differ = sum(vocab.get(token) != i for token, i in own.items())
    if differ:
        raise ModelLoadError(
            "model.tokenizer_mismatch",
            path=path / "tokenizer_config.json",
            name=tokenizer,
            count=differ,
            tokens=len(own),
        )
    if outputs is None:
        return
    counted = [i for token, i in vocab.items() if token in own or 0 <= i < outputs]
    bad = _bad_ids(counted, outputs)
    if bad:
        raise ModelLoadError(
            "model.vocab_mismatch",
            path=path / "vocab.json",
            outputs=outputs,
            tokens=len(counted),
            ids=_runs_text(bad),
            last=outputs - 1,
        )


def model_file(source: str | os.PathLike, name: str) -> Path | None:
    """One file of a model (config.json, vocab.json…) from its folder or the Hub cache, without
    downloading or loading anything; None when not at hand."""
    path = model_path(source) / name  # a tuning job's folder stands for its model/
    if path.is_file():
        return path
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(str(source), name)
    except (ImportError, ValueError):
        return None
    return Path(cached) if isinstance(cached, str) else None


def model_vocab(source: str | os.PathLike) -> list[str] | None:
    """The tokens of a model's vocabulary, read from its folder or the Hub cache without
    loading it (to tell which characters of a dataset are new); None when not at hand."""
    path = model_file(source, "vocab.json")
    if path is None:
        return None
    try:  # a per-language vocab.json (MMS): the language's (`_vocab_file`)
        return list(_vocab_file(path.parent)[0])
    except ModelLoadError:
        return None


# Frames the convolutional feature encoder computes at once at inference (4 s of audio). Its
# first layer's output is 512 channels at 3200 frames/s: a 20 s chunk made ~0.28 GB of
# short-lived activations per chunk of a batch (full-size XLSR-53, bf16); slices bound that.
ENCODER_SLICE_FRAMES = 200


def slice_feature_encoder(model: Any, frames: int = ENCODER_SLICE_FRAMES) -> bool:
    """Make the model's convolutional feature encoder run over long input in slices of
    `frames` output frames (engine.chunking.frame_slices), joined: the same output at a
    fraction of the peak memory. Only where every layer sees each frame's own samples alone
    (feat_extract_norm "layer"; the "group" variant normalizes its first layer over time).
    On a CPU each slice runs channels-last (`channels_last_encoder`). Returns whether it did."""
    import torch

    from .chunking import FrameGeometry, frame_slices

    config = model.config
    encoder = getattr(model.base_model, "feature_extractor", None)
    if getattr(config, "feat_extract_norm", None) != "layer" or encoder is None:
        return False
    geometry = FrameGeometry.from_convs(config.conv_kernel, config.conv_stride)
    whole = encoder.forward
    fast = channels_last_encoder(encoder)

    def forward(input_values):
        if torch.is_grad_enabled():
            return whole(input_values)
        run = fast if fast is not None and input_values.device.type == "cpu" else whole
        n = input_values.shape[-1]
        if geometry.frames(n) <= frames:
            return run(input_values)
        parts = [run(input_values[..., a:b]) for a, b in frame_slices(n, geometry, frames)]
        return torch.cat(parts, dim=-1)

    encoder.forward = forward
    return True


def channels_last_encoder(encoder: Any) -> Any | None:
    """The feature encoder's inference forward, (batch, samples) -> (batch, channels, frames),
    computed in (batch, frames, channels) layout: each convolution one matrix product over its
    overlapping windows (a strided view: in this layout a window's samples are contiguous), its
    LayerNorm over the last axis. The module's own forward transposes around every LayerNorm;
    those copies took as long as the convolutions (PyTorch's profiler, a 20 s chunk of the
    full-size model in bf16 on a CPU), and this runs it 2.4x faster there. None when a layer is
    not a plain convolution, a LayerNorm over its channels and an activation (all it knows)."""
    import torch
    from torch.nn import functional

    layers = list(getattr(encoder, "conv_layers", ()))
    for layer in layers:
        conv, norm = getattr(layer, "conv", None), getattr(layer, "layer_norm", None)
        if not (
            isinstance(conv, torch.nn.Conv1d)
            and isinstance(norm, torch.nn.LayerNorm)
            and norm.normalized_shape == (conv.out_channels,)
            and conv.groups == 1
            and conv.padding == (0,)
            and conv.dilation == (1,)
            and callable(getattr(layer, "activation", None))
        ):
            return None
    if not layers:
        return None
    own = encoder.forward

    def forward(input_values):
        h = input_values.contiguous()[:, :, None]
        for layer in layers:
            conv = layer.conv
            (k,), (s,) = conv.kernel_size, conv.stride
            batch, length, channels = h.shape
            if length < k:  # too short for one frame: the module's own error
                return own(input_values)
            n = (length - k) // s + 1
            windows = h.as_strided((batch, n, k * channels), (length * channels, s * channels, 1))
            weight = conv.weight.permute(0, 2, 1).reshape(conv.out_channels, k * channels)
            h = layer.activation(layer.layer_norm(functional.linear(windows, weight, conv.bias)))
        return h.transpose(1, 2)

    return forward


def bake_weight_norm(model: Any) -> None:
    """Replace weight-norm parametrizations (wav2vec2's positional convolution) by their current
    value: an inference model never trains, and each forward then skips recomputing the weight
    (~30 ms per call for XLSR-53, paid on every streaming window)."""
    from torch.nn.utils import parametrize

    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)


def _use_onnx(path: Path, backend: Backend) -> bool:
    onnx = (path / "model.onnx").is_file()
    if backend == "onnx" and not onnx:
        raise ModelLoadError("model.no_onnx", path=path)
    others = any((path / f).is_file() for f in _WEIGHT_FILES if f != "model.onnx")
    if backend == "torch" and onnx and not others:  # transformers would say "no file named…"
        raise ModelLoadError("model.onnx_only", path=path)
    return backend == "onnx" or (backend == "auto" and onnx and not others)


# What the transcriber reads of an ONNX model's config (engine.transcribe).
_ONNX_CONFIG_KEYS = ("conv_kernel", "conv_stride", "vocab_size", "hidden_size")
# Wav2Vec2CTCTokenizer's special tokens and their defaults, where tokenizer_config.json is silent.
_CTC_SPECIALS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
}


def _token(value: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or {"content": ...}."""
    return value.get("content") if isinstance(value, dict) else value


def _processor_from_files(path: Path) -> tuple[CtcVocab, Any, Any] | None:
    """The vocabulary, feature-extractor settings and config of an ONNX model folder, read from
    its JSON files as transformers' Wav2Vec2 classes read them, without importing transformers:
    its import is 1.2 s of a cold start, a quarter of the app's launch with this runtime. None
    where the files hold more than this reads (one vocabulary per language, added tokens outside
    vocab.json, a config that leaves the encoder's shape to its class's defaults); transformers
    then reads them."""
    from types import SimpleNamespace

    names = ("vocab.json", "tokenizer_config.json", "preprocessor_config.json", "config.json")
    if not all((path / n).is_file() for n in names):
        return None
    vocab, tok, fe, config = (_read_json(path / n) for n in names)
    if not all(isinstance(i, int) for i in vocab.values()):
        return None
    added = tok.get("added_tokens_decoder", {})
    if any(str(vocab.get(_token(t))) != str(i) for i, t in added.items()):
        return None
    if not all(k in config for k in _ONNX_CONFIG_KEYS) or "sampling_rate" not in fe:
        return None
    _check_vocab(path, vocab, _vocab_size(config))
    tokens = [""] * (max(vocab.values()) + 1)
    for t, i in vocab.items():
        tokens[i] = t
    delimiter = tok.get("word_delimiter_token", "|") or "|"
    named = [_token(tok.get(k, default)) for k, default in _CTC_SPECIALS.items()]
    extra = tok.get("extra_special_tokens") or tok.get("additional_special_tokens") or []
    unk = vocab.get(named[2])
    specials = {vocab.get(t, unk) for t in [*named, *map(_token, extra), delimiter] if t}
    pad = config.get("pad_token_id")
    blank = vocab.get(named[3]) if pad is None else pad
    if blank is None or None in specials:
        return None
    _check_blank(path, blank, _vocab_size(config), named[3], pad)
    ctc = CtcVocab(tokens, int(blank), frozenset(specials), delimiter)
    return ctc, SimpleNamespace(**fe), SimpleNamespace(**config)


def _processor(
    path: Path, pad_token_id: int | None, outputs: int | None = None
) -> tuple[CtcVocab, Any]:
    """The vocabulary (checked against a CTC head of `outputs`: `_check_vocab`) and feature
    extractor as transformers reads them. The two are loaded on their own, not as an
    AutoProcessor: that import pulls in transformers' image and video processing, 2-3 s of a
    cold start spent on nothing."""
    from transformers import AutoFeatureExtractor, AutoTokenizer

    language = _vocab_file(path)[1]  # a per-language vocab.json's (MMS)
    options = {"target_lang": language} if language else {}
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False, **options)
    _check_vocab(path, tokenizer.get_vocab(), outputs, type(tokenizer).__name__)
    blank = tokenizer.pad_token_id if pad_token_id is None else pad_token_id
    _check_blank(path, blank, outputs, tokenizer.pad_token, pad_token_id)
    fe = AutoFeatureExtractor.from_pretrained(path, trust_remote_code=False)
    return CtcVocab.from_tokenizer(tokenizer, blank), fe


def _check_blank(
    path: Path, blank: Any, outputs: int | None, token: str | None, pad_token_id: Any
) -> None:
    """Refuse a CTC blank (config.json's pad_token_id, else the tokenizer's pad token) that
    is none of the head's `outputs`: no frame would ever be blank, so silence would be written
    as characters and a doubled character (谢谢) never, without a word of warning."""
    number = isinstance(blank, int) and not isinstance(blank, bool)
    if number and (outputs is None or 0 <= blank < outputs):
        return
    raise ModelLoadError(
        "model.no_blank",
        path=path / "vocab.json",
        token=_brief(token),
        blank=_brief(blank),
        pad_token_id=_Quoted(json.dumps(pad_token_id)),  # as config.json writes it: null
        outputs=_brief(outputs),
    )


def _torch_model(path: Path, device: torch.device, dtype: torch.dtype, attention: str) -> Any:
    """The checkpoint as a transformers model: from its converted copy in the weights cache
    where there is one (made now where that pays: `_from_cache`), as the file holds it where it
    can (`_load_exact`), else through `ctc_model`, which loads an MMS adapter (a converted copy
    holds it already). Damaged safetensors weights (a copy or download cut short) are a
    `ModelLoadError` naming them."""
    from safetensors import SafetensorError
    from transformers import AttentionInterface

    AttentionInterface.register(BLOCKED_ATTENTION, blocked_attention)
    language = adapter_language(path)
    converted = _converted_weights(path, dtype, language) if device.type == "cpu" else None
    keep = False
    if converted is not None:
        model, keep = _from_cache(path, converted, dtype, attention)
        if model is not None:
            return model
    try:
        exact = None if language else _load_exact(path, dtype, attention)
        model = exact or ctc_model(path, dtype=dtype, attn_implementation=attention)
    except SafetensorError as e:
        weights = path / "model.safetensors"
        damaged = weights if weights.is_file() else path
        raise ModelLoadError("model.bad_weights", path=damaged, detail=e) from e
    if keep:
        keep_converted(model, converted)
    return model


def _from_cache(path: Path, converted: Path, dtype: Any, attention: str) -> tuple[Any, bool]:
    """(the model loaded from its converted copy, made now in a child where it is missing, or
    None; whether the caller, loading `path` itself, should keep the copy it converts). A copy
    that does not load (cut short by a crash, a power cut or a full disk; from another
    transformers) is removed and made again, once: it never blocks the checkpoint. A folder
    another process is swapping in meanwhile is read again, not removed."""
    from safetensors import SafetensorError

    weights = converted / "model.safetensors"
    for _ in range(3):
        if not _touch(weights):
            with _converting(converted):
                made = "made" if _touch(weights) else _convert_in_child(path, converted, dtype)
            if made != "made":
                return None, made == "failed"  # "unwritable": no copy can be kept
        try:
            model = _load_exact(converted, dtype, attention)
        except FileNotFoundError:
            continue  # swapped by another process's conversion: read the new one
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            model, why = None, e
        else:
            why = "not these weights"
        if model is not None:
            return model, False
        log.warning("%s: the converted copy does not load (%s); making it again", converted, why)
        shutil.rmtree(converted, ignore_errors=True)
    return None, False


def ctc_model(path: Path, **options: Any) -> Any:
    """A local CTC checkpoint folder through transformers' from_pretrained (`options` are its
    own), with the MMS adapter of the language its vocabulary is read in where the folder has
    one (`adapter_language`): the head `load_model` runs, not config.json's. Safetensors
    weights where there are any (pickles only where `resolve_model` allowed them)."""
    from transformers import AutoModelForCTC

    language = adapter_language(path)
    return AutoModelForCTC.from_pretrained(
        path,
        use_safetensors=any(path.glob("*.safetensors")) or None,  # None: the pickle allowed
        trust_remote_code=False,
        **({"target_lang": language} if language else {}),
        **options,
    )


def _onnx_model(path: Path, config: Any) -> Any:
    from .onnx import ONNX_FILE, OnnxCtcModel, UnreadableOnnx

    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    try:
        return OnnxCtcModel(path / ONNX_FILE, config, threads)
    except UnreadableOnnx as e:
        raise ModelLoadError("model.bad_onnx", path=path / ONNX_FILE, detail=e) from e


def weights_cache_dir() -> Path:
    """Where checkpoints converted to their compute precision are kept (the user's cache, or
    TINGXIE_WEIGHTS_CACHE)."""
    return user_cache_dir("weights", "TINGXIE_WEIGHTS_CACHE")


def _tensor_header(weights: Path) -> dict[str, dict] | None:
    """A safetensors file's header, tensor name -> {"dtype": "F32", "shape": [...], ...}; None
    where there is none to read. A header that is JSON but not that table is damage."""
    try:
        with open(weights, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(min(size, 100_000_000)))
    except (OSError, ValueError):
        return None
    if not isinstance(header, dict):
        raise ModelLoadError("model.bad_weights", path=weights, detail="no table of tensors")
    header.pop("__metadata__", None)
    if not all(isinstance(v, dict) and "dtype" in v for v in header.values()):
        raise ModelLoadError("model.bad_weights", path=weights, detail="no table of tensors")
    return header


def _stored_dtype(weights: Path) -> str | None:
    """The dtype of the first tensor in a safetensors file's header ("F32", "BF16", ...)."""
    header = _tensor_header(weights)
    return next((v["dtype"] for v in header.values()), None) if header else None


_SAFETENSORS_DTYPES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}


def _load_exact(folder: Path, dtype: Any, attention: str) -> Any | None:
    """The model built on the meta device and handed the tensors of `folder/model.safetensors`
    as they are (memory-mapped, as from_pretrained maps them), when the file holds exactly the
    model's weights in `dtype`: our converted copies, and checkpoints this transformers saved.
    from_pretrained's renaming, conversion and thread pool cost ~0.6 s on the full-size model
    (2-core CPU); None when the file is anything else, and from_pretrained loads it."""
    import itertools

    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCTC

    header = _tensor_header(folder / "model.safetensors")
    if not header:
        return None
    from huggingface_hub.errors import StrictDataclassError

    try:  # whatever fails here, from_pretrained meets too, and words the error
        config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
        with torch.device("meta"):
            model = AutoModelForCTC.from_config(config, dtype=dtype, attn_implementation=attention)
    except (OSError, ValueError, RuntimeError, ImportError, TypeError, StrictDataclassError):
        return None
    expected = model.state_dict()
    if set(header) != set(expected) or any(
        _SAFETENSORS_DTYPES.get(header[k]["dtype"]) != str(t.dtype).removeprefix("torch.")
        or list(header[k]["shape"]) != list(t.shape)
        for k, t in expected.items()
    ):
        return None
    model.load_state_dict(load_file(folder / "model.safetensors"), assign=True, strict=True)
    if any(t.is_meta for t in itertools.chain(model.parameters(), model.buffers())):
        return None  # a buffer the file does not hold
    model.name_or_path = config.name_or_path = str(folder)
    return model


def _converted_weights(path: Path, dtype: Any, language: str | None = None) -> Path | None:
    """The cache folder for `path`'s weights in `dtype`, named by the file's identity (path,
    size, modification time) and the MMS adapter's `language` loaded into them, when
    converting pays: one large fp32 safetensors file run in a half precision. None otherwise."""
    import hashlib

    import torch

    weights = path / "model.safetensors"
    if dtype not in (torch.bfloat16, torch.float16) or not weights.is_file():
        return None
    stat = weights.stat()
    if stat.st_size < CONVERT_MIN_BYTES or _stored_dtype(weights) != "F32":
        return None
    identity = f"{_identity(weights, stat)}|{dtype}"
    identity += f"|{language}" if language else ""
    return weights_cache_dir() / hashlib.sha256(identity.encode()).hexdigest()[:20]


def _identity(weights: Path, stat: os.stat_result) -> str:
    """What names a checkpoint's conversions: its path, size, inode and times. The change time
    catches weights rewritten in place with their old modification time put back, the inode
    weights replaced by another file."""
    return f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}|{stat.st_ctime_ns}"


def _touch(weights: Path) -> bool:
    """True when the converted weights are there, marked as just used (see keep_converted)."""
    try:
        os.utime(weights)
    except OSError:
        return weights.is_file()
    return True


def keep_converted(model: Any, folder: Path) -> bool:
    """Save the loaded half-precision model into the cache (atomically), then drop the least
    recently used conversions beyond the few kept; True when kept. Best effort: a full or
    read-only disk only costs the next load its speed."""
    from .atomic import atomic_folder

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        atomic_folder(folder, lambda tmp: model.save_pretrained(tmp, safe_serialization=True))
        log.info("%s: weights kept in %s for the next load", model.name_or_path, folder)
        _drop_old_conversions(folder)
    except Exception as e:  # OSError, or safetensors' own error for a full disk (best effort)
        log.warning("%s: converted weights not kept (%s); the next load converts again", folder, e)
        return False
    return True


@contextlib.contextmanager
def _converting(folder: Path) -> Iterator[None]:
    """Hold the lock of the conversion into `folder` (a lock file beside it): a second process
    loading the same checkpoint for the first time (the app and the CLI) waits for the first
    one's copy instead of converting it too. Where no lock can be had (a cache that cannot be
    written, a file system without locks) or after 10 minutes, the block runs unguarded: each
    converts, and the last copy made is kept (engine.atomic)."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(folder.with_name(folder.name + ".lock")), timeout=600)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except (OSError, Timeout) as e:
        log.debug("%s: converted without a lock (%s)", folder, e)
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _convert_in_child(path: Path, folder: Path, dtype: Any) -> str:
    """Make `path`'s converted copy in `folder` in a child process (engine.convert says why):
    "made"; "unwritable" where the cache cannot hold it (full, read-only: the caller converts
    for this load only); "failed" otherwise, logged with the child's last words (the caller
    loads and converts in this process as before; a damaged checkpoint then fails there with
    its own message)."""
    from .children import module_command

    dtype_name = str(dtype).removeprefix("torch.")
    log.warning(
        "%s: converting the weights to %s once, into %s (about half a minute for XLSR-53)",
        path,
        dtype_name,
        folder,
    )
    command = module_command("engine.convert", str(path), str(folder), "--dtype", dtype_name)
    try:
        status, said = _run_child(command)
    except OSError as e:
        status, said = -1, str(e)
    if status == 0 and _touch(folder / "model.safetensors"):
        return "made"
    if status == NOT_KEPT:
        return "unwritable"  # the child said why (keep_converted's warning)
    log.warning("%s: converting in a child process failed (%s); converting here", path, said)
    return "failed"


# engine.convert's exit status when the model loaded but the cache could not keep its copy (a
# full or read-only disk): the caller then converts for its own load only, without keeping it.
NOT_KEPT = 3
# What a child says when its disk, not the checkpoint or the libraries, stopped it.
_DISK_TROUBLE = re.compile(r"No space left|Read-only file system|Errno 28|Errno 30|Disk quota")
# A line of a progress bar (tqdm) in a child's output: not worth quoting in an error.
_PROGRESS_LINE = re.compile(r"\d+%\|")


def _run_child(command: list[str], on_line: Callable[[str], None] | None = None) -> tuple[int, str]:
    """Run one of the engine's modules (engine.children) to its end, each line it prints handed
    to `on_line`: (exit status, the end of what it said, progress bars left out, or the status
    where it said nothing)."""
    import subprocess
    from collections import deque

    tail: deque[str] = deque(maxlen=20)
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as child:
        for line in child.stdout or ():
            if on_line is not None:
                on_line(line)
            if line.strip() and not _PROGRESS_LINE.search(line):
                tail.append(line.strip())
    said = " | ".join(tail)[-500:] or f"exit status {child.returncode}"
    return child.returncode, said


def _drop_old_conversions(keep: Path) -> None:
    """Remove the least recently used conversions (half-precision or int8) beyond the few kept."""
    import shutil

    def weights(p: Path) -> Path | None:
        return next((f for f in (p / "model.safetensors", p / "model.onnx") if f.is_file()), None)

    found = [(p, w) for p in keep.parent.iterdir() if (w := weights(p)) is not None]
    found.sort(key=lambda pw: pw[1].stat().st_mtime, reverse=True)
    for old, _ in found[_CACHED_CONVERSIONS:]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def _int8_copy(path: Path, options: LoadOptions, device: Any, dtype: Any) -> Path | None:
    """The cache folder of `path`'s int8 copy when "auto" should run one (the comment at
    _INT8_STAGES says why): backend and precision auto, a CPU where auto picked fp32 (no native
    bf16), one large fp32 safetensors file and no export of the folder's own nor MMS adapter to
    load (the exporter reads the weights as they are), ONNX Runtime and the exporter installed
    (the bundle leaves the exporter out). None otherwise."""
    import hashlib
    import importlib.util

    import torch

    if (options.backend, options.precision) != ("auto", "auto") or device.type != "cpu":
        return None
    weights = path / "model.safetensors"
    if dtype != torch.float32 or not weights.is_file() or (path / "model.onnx").is_file():
        return None
    if adapter_language(path):
        return None
    stat = weights.stat()
    if stat.st_size < CONVERT_MIN_BYTES or _stored_dtype(weights) != "F32":
        return None
    if not all(importlib.util.find_spec(m) for m in ("onnxruntime", "onnxscript")):
        return None
    identity = f"{_identity(weights, stat)}|onnx-int8"
    return weights_cache_dir() / hashlib.sha256(identity.encode()).hexdigest()[:20]


def _make_int8_copy(path: Path, folder: Path, tqdm_class: Any = None) -> bool:
    """Write `path`'s int8 copy into `folder` unless it is there; True when it is. The export
    runs in a child process (engine.export_onnx): it peaks at ~5.7 GB for XLSR-53, memory a
    child gives back when it ends and this process would keep, and a crash of the exporter
    cannot take the caller down. A failure is logged and noted beside the folder, so that the
    next loads of the same checkpoint run it in fp32 without trying again until the exporting
    libraries change; a full or read-only disk costs only the speed."""
    from .children import module_command

    if _touch(folder / "model.onnx"):
        return True
    failed = folder.with_name(folder.name + ".failed")
    versions = " ".join(f"{m} {_version(m)}" for m in ("torch", "onnxscript", "onnxruntime"))
    with contextlib.suppress(OSError):
        if failed.read_text(encoding="utf-8").splitlines()[0] == versions:
            return False
    log.warning(
        "%s: this CPU has no native bf16; making an int8 copy for ONNX Runtime in %s "
        "(once: about a minute for XLSR-53)",
        path,
        folder,
    )
    bar = None
    if tqdm_class is not None:
        bar = tqdm_class(total=len(_INT8_STAGES), unit="stage", desc="int8 copy")

    def stage(line: str) -> None:
        if bar is not None and line.strip() in _INT8_STAGES:
            bar.update(1)

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        command = module_command("engine.export_onnx", str(path), str(folder), "--int8")
        status, said = _run_child(command, stage)
    except OSError as e:
        status, said = -1, str(e)
    finally:
        if bar is not None:
            bar.close()
    if status != 0:
        log.warning("%s: no int8 copy (%s); running it in fp32", path, said)
        if status > 0 and not _DISK_TROUBLE.search(said):  # tried again once the disk has room
            with contextlib.suppress(OSError):
                failed.write_text(f"{versions}\n{said}\n", encoding="utf-8")
        return False
    log.info("%s: int8 copy kept in %s for the next loads", path, folder)
    with contextlib.suppress(OSError):
        _drop_old_conversions(folder)
    return (folder / "model.onnx").is_file()


def _version(distribution: str) -> str:
    """An installed distribution's version, "?" when it is not installed under that name."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"


# Held by import_runtime and load_model: transformers' lazy top-level module is not safe to
# import from two threads at once (a load on one thread while the app's engine thread imported
# ahead failed with "cannot import name 'AutoFeatureExtractor'").
_IMPORTING = threading.Lock()


def import_runtime(source: str | os.PathLike, backend: Backend = "auto") -> None:
    """Import the libraries `load_model(source)` will need, loading nothing: torch, and
    transformers' model code unless the model runs on ONNX Runtime (a Whisper model needs
    neither). These imports are most of a cold load (~4 s of ~5.5 s on a 2-core CPU); the app's
    engine thread runs this while the window is being built. A load_model on another thread
    waits for it (_IMPORTING). Never raises: the load that follows reports what is wrong."""
    with _IMPORTING, contextlib.suppress(Exception):
        if family_of(source) is WHISPER:
            return
        import torch  # noqa: F401

        path = model_path(source)
        if backend == "onnx" or (path.is_dir() and _use_onnx(path, backend)):
            return
        if path.is_dir():
            device = pick_device("auto")
            dtype = pick_dtype("auto", device)
            copy = _int8_copy(path, LoadOptions(backend=backend), device, dtype)
            if copy is not None and (copy / "model.onnx").is_file():
                return
        import transformers.modeling_utils  # noqa: F401


def load_model(
    source: str | os.PathLike, options: LoadOptions | None = None, *, tqdm_class: Any = None
) -> LoadedModel:
    """Load a CTC checkpoint, its tokenizer and feature extractor for inference (eval mode, no
    gradients). `tqdm_class`, when given, reports the making of a CPU's int8 copy (its three
    stages), the one part of a load that can take a minute."""
    with _IMPORTING:  # not while another thread imports transformers (see _IMPORTING)
        return _load_model(source, options or LoadOptions(), tqdm_class)


def _checked_files(path: Path) -> tuple[dict, Family, int | None]:
    """config.json, the family and the CTC head's outputs (`_head_outputs`) of a resolved
    folder whose JSON files read and whose weights hold a CTC head of config.json's size: the
    checks every reader of a checkpoint runs before transformers sees it."""
    config = _read_json(path / "config.json")
    family = _family(path, config)
    check_json(path)
    _check_ctc_head(path, family, _vocab_size(config))
    return config, family, _head_outputs(path, family, config)


def check_checkpoint(source: str | os.PathLike, allow_pickle: bool = False) -> Path:
    """The local folder of `source` (`resolve_model`) once it passed the checks `load_model`
    runs, the vocabulary giving each output of the head one token included: an export runs
    them before it writes anything, so that it refuses in loading's words what `transcribe`
    refuses, rather than writing a model transformers gave a random head."""
    path = resolve_model(source, allow_pickle=allow_pickle)
    config, _, outputs = _checked_files(path)
    _processor(path, config.get("pad_token_id"), outputs)
    return path


def _load_model(source: str | os.PathLike, options: LoadOptions, tqdm_class: Any) -> LoadedModel:
    import torch
    from huggingface_hub.errors import StrictDataclassError

    path = resolve_model(
        source, local_files_only=options.local_files_only, allow_pickle=options.allow_pickle
    )
    config, family, outputs = _checked_files(path)
    device = pick_device(options.device)
    dtype = pick_dtype(options.precision, device)
    attention = pick_attention(options.attention, family, device, dtype)
    runtime, onnx_folder = "torch", None
    if _use_onnx(path, options.backend):
        runtime, onnx_folder = "onnx", path
    elif (copy := _int8_copy(path, options, device, dtype)) and _make_int8_copy(
        path, copy, tqdm_class
    ):
        runtime, onnx_folder = "onnx-int8", copy
    if onnx_folder is not None:
        device, dtype, attention = torch.device("cpu"), torch.float32, "onnx-runtime"
    onnx = onnx_folder is not None
    try:
        light = _processor_from_files(path) if onnx else None
        if light is not None:
            ctc, fe, model_config = light
        else:
            ctc, fe = _processor(path, config.get("pad_token_id"), outputs)
        if onnx:
            if light is None:  # the torch path's model class reads its own config
                from transformers import AutoConfig

                model_config = AutoConfig.from_pretrained(path, trust_remote_code=False)
            model = _onnx_model(onnx_folder, model_config)
        else:
            model = _torch_model(path, device, dtype, attention)
    except ModelLoadError:
        raise
    except (StrictDataclassError, TypeError) as e:  # a value of config.json, named by its field
        detail = str(e.__cause__ or e).strip().splitlines()[-1]
        raise ModelLoadError("model.bad_config", path=path / "config.json", detail=detail) from e
    except (OSError, ValueError, RuntimeError, ImportError, pickle.UnpicklingError) as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelLoadError("model.load_failed", path=path, detail=message) from e
    model.to(device).eval()
    if not onnx:
        bake_weight_norm(model)
        slice_feature_encoder(model)
    log.info("loaded %s on %s (%s, %s, attention=%s)", source, device, dtype, runtime, attention)
    warning = parity_warning(path) if runtime == "onnx" else None
    if warning is not None:
        log.warning("%s", warning)
    return LoadedModel(
        model=model,
        feature_extractor=fe,
        family=family,
        source=str(source),
        path=path,
        device=device,
        dtype=dtype,
        attention=attention,
        vocab=ctc.tokens,
        runtime=runtime,
        blank_id=ctc.blank_id,
        word_delimiter=ctc.word_delimiter,
        special_ids=ctc.special_ids,
        sampling_rate=int(fe.sampling_rate),
        do_normalize=bool(getattr(fe, "do_normalize", True)),
        warnings=() if warning is None else (warning,),
    )


def parity_warning(folder: Path) -> TingxieError | None:
    """The warning an ONNX export in `folder` loads with when its own parity check failed (its
    card says so: `engine.onnx.parity_failure`, which sharing refuses it by), or None."""
    from .onnx import parity_failure

    failure = parity_failure(folder)
    return (
        None
        if failure is None
        else TingxieError("model.parity_failed", path=folder, detail=failure)
    )
