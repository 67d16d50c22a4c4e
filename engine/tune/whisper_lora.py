"""LoRA tuning of Whisper (transformers + peft), converted for inference by CTranslate2.

Tingxie runs Whisper through CTranslate2, which cannot train. Tuning happens on the Hugging
Face weights of the same model: LoRA on the projections the registry names
(engine.registry.WHISPER), the adapter merged into the weights, and the result converted by
CTranslate2's own converter into a folder `engine.whisper` loads. The base may be that Hugging
Face checkpoint (e.g. `openai/whisper-small`, online) or the CTranslate2 folder the app already
runs (Whisper-base offline): `hf_from_ctranslate2` undoes the converter's renaming and fusing,
which loses nothing but the precision the folder was stored in. The CTC tuning loop
(engine.tune.loop) does not apply: Whisper learns from the text as decoder targets
(cross-entropy), not from CTC alignments.

A job keeps checkpoints (`WhisperCheckpoints`) in the CTC jobs' layout, checkpoints/step-N with
state.json, so the app's Tune page offers a stopped Whisper job for resume like any other: the
LoRA weights (safetensors), the optimizer's state (read back with `weights_only`) and the data
order as JSON; nothing in them can run code. A last checkpoint that cannot be read (cut short by
a power cut) is set aside and the job resumes from the one before, as a CTC job does
(`engine.tune.checkpoints`).

`build_tiny_whisper` makes a random 1-layer Whisper the project builds itself, with the real
multilingual tokenizer taken from a CTranslate2 Whisper folder, so the whole path runs in a test
without a download.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from engine.atomic import atomic_folder, atomic_write_text
from engine.model import ModelLoadError
from engine.registry import WHISPER
from engine.whisper import checked_folder, is_ctranslate2

from .cache import checkpoint_unwritten
from .checkpoints import no_readable_checkpoint, read_checkpoint_file, restore_newest, set_aside
from .events import CheckpointSetAside
from .jobs import CHECKPOINT_STATE, checkpoint_dirs
from .whisper_text import PREFIX, whisper_tokenizer

__all__ = [
    "WhisperCheckpoints",
    "WhisperLoraOptions",
    "WhisperReady",
    "WhisperSaved",
    "WhisperStep",
    "build_tiny_whisper",
    "convert_for_ctranslate2",
    "hf_from_ctranslate2",
    "learning_rate",
    "read_ctranslate2_weights",
    "tune_whisper_lora",
]

log = logging.getLogger("tingxie.tune.whisper")

# What the converter copies beside model.bin: faster-whisper reads the tokenizer and the
# feature extractor's settings from them.
_COPIED = ("tokenizer.json", "preprocessor_config.json")
# A checkpoint's other files, named as the CTC jobs'
_WEIGHTS = "trainable.safetensors"
_OPTIMIZER = "optimizer.pt"


@dataclass(frozen=True, slots=True)
class WhisperLoraOptions:
    """A LoRA job on a Whisper checkpoint (Hugging Face layout)."""

    steps: int = 100
    learning_rate: float = 1e-3
    rank: int = 8
    alpha: int = 16
    batch_size: int = 8  # utterances per step, drawn in a shuffled order epoch after epoch
    # utterances per forward pass (gradients accumulate to the step's): each is a 30 s window
    # to Whisper, ~1 GB of activations for Whisper-base in fp32, so this bounds the memory
    micro_batch_size: int = 2
    seed: int = 0
    # where it runs, not what it learns (a checkpoint resumes on another device): the weights
    # stay fp32, and bf16 runs the forward passes under autocast (fp16 would need loss scaling)
    device: Literal["cpu", "cuda"] = "cpu"
    precision: Literal["fp32", "bf16"] = "fp32"

    def __post_init__(self) -> None:
        for name in ("steps", "rank", "alpha", "batch_size", "micro_batch_size"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"WhisperLoraOptions.{name}={getattr(self, name)!r}: must be ≥ 1")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate={self.learning_rate!r}: must be positive")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(
                f"precision={self.precision}: a Whisper job trains in fp32 or bf16 (fp16 needs"
                " loss scaling, which it has not); choose bf16, fp32 or auto"
            )


@dataclass(frozen=True, slots=True)
class WhisperCheckpoints:
    """Where a job saves what resuming needs, every how many steps (0: only when stopped and
    after the last step), how many of the latest it keeps, and the job's settings that each
    keeps (in state.json, as a CTC job's: `engine.tune.loop.check_resumable` reads them)."""

    folder: Path
    every: int = 0
    keep: int = 1
    settings: dict | None = None


@dataclass(frozen=True, slots=True)
class WhisperReady:
    """The model is loaded with its adapters, before the first step; when resumed, the step
    it continues after, the seconds its earlier runs trained for and the newer checkpoints it
    could not read, and so set aside (`engine.tune.checkpoints`)."""

    trainable_parameters: int
    total_parameters: int
    resumed_step: int = 0
    resumed_seconds: float = 0.0
    set_aside: tuple[CheckpointSetAside, ...] = ()


@dataclass(frozen=True, slots=True)
class WhisperSaved:
    """A checkpoint of step `step` is in `folder`; `stopped`: the job stops there, as asked
    (`folder` is the last earlier checkpoint, or None, when no step ran since it)."""

    step: int
    folder: Path | None
    stopped: bool = False


@dataclass(frozen=True, slots=True)
class WhisperStep:
    """One optimizer step: its number (from 1), the training loss, the learning rate the next
    step uses, the utterances this one trained on, the steps the job will run (fewer than
    asked when a time limit binds) and this step's seconds."""

    step: int
    loss: float
    learning_rate: float = 0.0
    examples: int = 0
    total_steps: int = 0
    seconds: float = 0.0


def learning_rate(peak: float, done: int, warmup: int, total: int) -> float:
    """The rate of the step after `done`: up linearly over `warmup` steps, then down linearly to
    0 after step `total` (a time limit can lower `total` while the job runs).

    >>> [round(learning_rate(1.0, d, 2, 4), 2) for d in range(5)]
    [0.5, 1.0, 0.67, 0.33, 0.0]
    """
    warmup = min(warmup, total)
    return peak * max(0.0, min((done + 1) / warmup, (total - done) / max(1, total - warmup + 1)))


def _token_ids(tokenizer) -> dict[str, int]:
    """The special ids a WhisperConfig needs, from the tokenizer."""
    end = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    start = tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    return dict(decoder_start_token_id=start, pad_token_id=end, bos_token_id=end, eos_token_id=end)


def _generation_config(ct2: dict, tokenizer, start_id: int, layers: int, heads: int):
    """Language, suppression and alignment settings of a CTranslate2 config.json, in the form
    CTranslate2's converter reads them back (so a round trip keeps them). Alignment heads
    outside a decoder of `layers` × `heads` are dropped (CTranslate2 crashes on them when it
    times words); with none left the converter picks its default."""
    from transformers import GenerationConfig

    config = GenerationConfig(
        decoder_start_token_id=start_id,
        suppress_tokens=ct2["suppress_ids"],
        begin_suppress_tokens=ct2["suppress_ids_begin"],
        lang_to_id={tokenizer.convert_ids_to_tokens(i): i for i in ct2["lang_ids"]},
        is_multilingual=True,
    )
    pairs = ct2.get("alignment_heads") or ()
    fitting = [[layer, head] for layer, head in pairs if layer < layers and head < heads]
    if fitting:
        config.alignment_heads = fitting
    return config


def build_tiny_whisper(out_dir: str | Path, tokenizer_from: str | Path, seed: int = 0) -> Path:
    """A random Whisper (1 encoder and 1 decoder layer, width 32, 80 mel bins) in Hugging Face
    layout, with the tokenizer and language / suppression settings of the CTranslate2 Whisper
    folder `tokenizer_from` (so it decodes Mandarin like the real one, meaninglessly)."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    source = Path(tokenizer_from)
    ct2 = json.loads((source / "config.json").read_text(encoding="utf-8"))
    tokenizer = whisper_tokenizer(source)
    torch.manual_seed(seed)
    ids = _token_ids(tokenizer)
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
        **ids,
    )
    model = WhisperForConditionalGeneration(config)
    model.generation_config = _generation_config(
        ct2, tokenizer, ids["decoder_start_token_id"], layers=1, heads=2
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(out)
    return out


# CTranslate2's DataType enum (include/ctranslate2/types.h), as its Python writer numbers it.
_CT2_DTYPES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}


def read_ctranslate2_weights(model_bin: str | Path) -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 model.bin by name (memory-mapped; bfloat16 as float32),
    aliases resolved; the format `ctranslate2.specs.ModelSpec._serialize` writes (version 6).
    A file cut short or damaged is a `ModelLoadError` saying so (numpy's and struct's own
    words, "buffer too small", name no file)."""
    path = Path(model_bin)
    try:
        return _read_ctranslate2(path)
    except _OtherFormat:
        raise
    except (ValueError, KeyError, IndexError, struct.error) as e:
        detail = f"its model.bin is cut short or damaged ({e}); copy the whole folder again"
        raise ModelLoadError("model.whisper_load_failed", path=path.parent, detail=detail) from e


class _OtherFormat(ValueError):
    """A model.bin in a CTranslate2 format this reader does not know (not a damaged one)."""


def _read_ctranslate2(path: Path) -> dict[str, np.ndarray]:
    data = np.memmap(path, dtype=np.uint8, mode="r")
    pos = 0

    def take(fmt: str):
        nonlocal pos
        value = struct.unpack_from(fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return value

    def text() -> str:
        nonlocal pos
        size = take("H")  # with the trailing NUL
        value = bytes(data[pos : pos + size - 1]).decode("utf-8")
        pos += size
        return value

    version = take("I")
    if version != 6:
        raise _OtherFormat(
            f"{path}: CTranslate2 model format {version}, this reader knows 6; convert the "
            "model again with the installed CTranslate2, or tune from its Hugging Face weights"
        )
    text(), take("I")  # the spec's name and revision
    weights: dict[str, np.ndarray] = {}
    for _ in range(take("I")):
        name = text()
        shape = tuple(take("I") for _ in range(take("B")))
        dtype = _CT2_DTYPES[take("B")]
        size = take("I")
        raw = data[pos : pos + size]
        pos += size
        if dtype == "bfloat16":  # numpy has none: the upper half of a float32
            value = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            value = raw.view(dtype)
        weights[name] = value.reshape(shape)
    for _ in range(take("I")):
        alias, target = text(), text()
        weights[alias] = weights[target]
    return weights


def _hf_state_dict(w: dict[str, np.ndarray], encoder_layers: int, decoder_layers: int) -> dict:
    """CTranslate2's Whisper variables renamed to transformers' parameters; the fused q/k/v
    projections split (k has no bias in Whisper: the converter wrote zeros)."""
    import torch

    out: dict[str, np.ndarray] = {}

    def linear(hf: str, ct2: str) -> None:
        out[f"{hf}.weight"] = w[f"{ct2}/weight"]
        out[f"{hf}.bias"] = w[f"{ct2}/bias"]

    def norm(hf: str, ct2: str) -> None:
        out[f"{hf}.weight"] = w[f"{ct2}/gamma"]
        out[f"{hf}.bias"] = w[f"{ct2}/beta"]

    def split(hf: str, ct2: str, names: tuple[str, ...]) -> None:
        weights = np.split(w[f"{ct2}/weight"], len(names))
        biases = np.split(w[f"{ct2}/bias"], len(names))
        for name, weight, bias in zip(names, weights, biases, strict=True):
            out[f"{hf}.{name}.weight"] = weight
            if name != "k_proj":
                out[f"{hf}.{name}.bias"] = bias

    def layer(hf: str, ct2: str, cross: bool) -> None:
        split(f"{hf}.self_attn", f"{ct2}/self_attention/linear_0", ("q_proj", "k_proj", "v_proj"))
        linear(f"{hf}.self_attn.out_proj", f"{ct2}/self_attention/linear_1")
        norm(f"{hf}.self_attn_layer_norm", f"{ct2}/self_attention/layer_norm")
        if cross:
            linear(f"{hf}.encoder_attn.q_proj", f"{ct2}/attention/linear_0")
            split(f"{hf}.encoder_attn", f"{ct2}/attention/linear_1", ("k_proj", "v_proj"))
            linear(f"{hf}.encoder_attn.out_proj", f"{ct2}/attention/linear_2")
            norm(f"{hf}.encoder_attn_layer_norm", f"{ct2}/attention/layer_norm")
        linear(f"{hf}.fc1", f"{ct2}/ffn/linear_0")
        linear(f"{hf}.fc2", f"{ct2}/ffn/linear_1")
        norm(f"{hf}.final_layer_norm", f"{ct2}/ffn/layer_norm")

    for conv in ("conv1", "conv2"):
        linear(f"model.encoder.{conv}", f"encoder/{conv}")
    out["model.encoder.embed_positions.weight"] = w["encoder/position_encodings/encodings"]
    for i in range(encoder_layers):
        layer(f"model.encoder.layers.{i}", f"encoder/layer_{i}", cross=False)
    norm("model.encoder.layer_norm", "encoder/layer_norm")
    out["model.decoder.embed_tokens.weight"] = w["decoder/embeddings/weight"]
    out["model.decoder.embed_positions.weight"] = w["decoder/position_encodings/encodings"]
    for i in range(decoder_layers):
        layer(f"model.decoder.layers.{i}", f"decoder/layer_{i}", cross=True)
    norm("model.decoder.layer_norm", "decoder/layer_norm")
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in out.items()}


def hf_from_ctranslate2(ct2_dir: str | Path, out_dir: str | Path) -> Path:
    """A CTranslate2 Whisper folder (model.bin, config.json, tokenizer.json) → the same model in
    Hugging Face layout (float32), written atomically: what LoRA tunes when the base is the
    folder the app runs. Sizes come from the weights; the language, suppression and alignment
    settings from config.json, so converting the result back gives an equivalent folder."""
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    source = checked_folder(Path(ct2_dir))  # the files loading it needs, or what is missing
    w = read_ctranslate2_weights(source / "model.bin")
    if "decoder/layer_0/attention/linear_1/weight" not in w:
        raise ValueError(f"{source}/model.bin: not a Whisper model (no cross-attention found)")
    ct2 = json.loads((source / "config.json").read_text(encoding="utf-8"))
    layers = {
        part: sum(
            1 for k in w if k.startswith(f"{part}/layer_") and k.endswith("/ffn/linear_0/weight")
        )
        for part in ("encoder", "decoder")
    }
    width, mels, _ = w["encoder/conv1/weight"].shape
    tokenizer = whisper_tokenizer(source)
    ids = _token_ids(tokenizer)
    config = WhisperConfig(
        vocab_size=w["decoder/embeddings/weight"].shape[0],
        num_mel_bins=mels,
        d_model=width,
        encoder_layers=layers["encoder"],
        decoder_layers=layers["decoder"],
        encoder_attention_heads=int(w["encoder/num_heads"]),
        decoder_attention_heads=int(w["decoder/num_heads"]),
        encoder_ffn_dim=w["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=w["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=w["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=w["decoder/position_encodings/encodings"].shape[0],
        **ids,
    )
    model = WhisperForConditionalGeneration(config)
    state = _hf_state_dict(w, layers["encoder"], layers["decoder"])
    missing_keys, unexpected = model.load_state_dict(state, strict=False)
    # proj_out is tied to the token embeddings (the alias in model.bin)
    if unexpected or set(missing_keys) - {"proj_out.weight"}:
        raise ValueError(
            f"{source}/model.bin: weights do not fit a Whisper model (missing {missing_keys[:3]},"
            f" unexpected {unexpected[:3]}); tune from its Hugging Face weights instead"
        )
    model.tie_weights()
    model.generation_config = _generation_config(
        ct2,
        tokenizer,
        ids["decoder_start_token_id"],
        layers=config.decoder_layers,
        heads=config.decoder_attention_heads,
    )

    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        WhisperFeatureExtractor(feature_size=mels).save_pretrained(folder)

    return atomic_folder(Path(out_dir), write)


def _batch(processor, tokenizer, examples: Sequence[tuple[np.ndarray, str]]):
    features = processor(
        [audio for audio, _ in examples], sampling_rate=16_000, return_tensors="pt"
    ).input_features
    texts = [PREFIX + text + "<|endoftext|>" for _, text in examples]
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
    *,
    steps_that_fit: Callable[[int, float], int] | None = None,
    checkpoints: WhisperCheckpoints | None = None,
    stop: Callable[[], bool] | None = None,
    resume: bool = False,
) -> Iterator[WhisperReady | WhisperStep | WhisperSaved]:
    """Train LoRA adapters on (16 kHz audio, text) pairs, `options.batch_size` of them per step
    in a shuffled order, the learning rate warming up over the first tenth of the steps and
    decaying linearly to 0, yielding a `WhisperReady` once the model is loaded, then each
    step's loss. With `steps_that_fit` (a time limit: the steps after step `done` that fit it
    at `step_time` seconds a step, with all that follows them), the steps are cut to those and
    the rate reaches 0 at the last of them. When the steps are done, the adapter is written to
    out_dir/adapter (peft), the merged model to out_dir/hf (Hugging Face layout) and converted
    to out_dir/model (CTranslate2, what `engine.loader` loads). `base` is a Hugging Face
    checkpoint or a CTranslate2 Whisper folder (converted first into out_dir/base-hf, removed
    once loaded). It trains on `options.device`, in bf16 autocast where `options.precision`
    says so (the LoRA weights, checkpoints and written model stay fp32).

    To stop: with `checkpoints`, `stop()` true between steps saves one (`WhisperSaved`,
    stopped) and ends the run, and `resume` continues from the latest with the same weights,
    optimizer state and data order, so the result is the one an uninterrupted run gives.
    Without, stop iterating: nothing of the training is written. A run resumed without
    `steps_that_fit` runs to `options.steps` (an earlier run's time limit may have cut them);
    with it, the steps that fit are counted again after each step."""
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
    out = Path(out_dir)
    named = str(base)  # what the adapter says it adapts (not the converted copy, removed)
    converted = is_ctranslate2(Path(base))  # checked whole by hf_from_ctranslate2
    if converted:
        base = hf_from_ctranslate2(base, out / "base-hf")
    torch.manual_seed(options.seed)
    model = WhisperForConditionalGeneration.from_pretrained(base)
    tokenizer = WhisperTokenizerFast.from_pretrained(base)
    processor = WhisperFeatureExtractor.from_pretrained(base)
    if converted:  # loaded: a cancel or crash from here on leaves no 300 MB copy behind
        shutil.rmtree(out / "base-hf", ignore_errors=True)
    lora = LoraConfig(
        r=options.rank, lora_alpha=options.alpha, target_modules=list(WHISPER.lora_targets)
    )
    model = get_peft_model(model, lora).to(options.device)
    model.peft_config["default"].base_model_name_or_path = named
    trainable, total_parameters = model.get_nb_trainable_parameters()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=options.learning_rate
    )
    warmup = max(1, options.steps // 10)
    run = _Run(total=options.steps, order=np.random.default_rng(options.seed))
    fingerprint = _fingerprint(options, examples)
    aside: tuple[CheckpointSetAside, ...] = ()
    if resume:
        if checkpoints is None:
            raise ValueError("tune_whisper_lora: resume needs the checkpoints' folder")
        run, aside = _restore(checkpoints.folder, model, optimizer, fingerprint)
        if steps_that_fit is None:  # an earlier run's time limit cut the steps: this run has none
            run.total = options.steps
    start = run.done
    yield WhisperReady(trainable, total_parameters, start, run.seconds, aside)
    micro = min(options.micro_batch_size, options.batch_size)
    autocast = torch.autocast(
        options.device, dtype=torch.bfloat16, enabled=options.precision == "bf16"
    )

    def save(stopped: bool) -> WhisperSaved:
        assert checkpoints is not None
        folder = _save(checkpoints, model, optimizer, run, fingerprint)
        return WhisperSaved(run.done, folder, stopped)

    model.train()
    while run.done < run.total:
        if stop is not None and checkpoints is not None and stop():
            if run.done > start:
                yield save(stopped=True)
            else:  # no step since the last checkpoint (if any): it stands as it is
                yield WhisperSaved(run.done, _latest(checkpoints.folder), stopped=True)
            return
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(options.learning_rate, run.done, warmup, run.total)
        started = time.monotonic()
        if len(run.queue) < options.batch_size:  # the next epoch's order after this one's rest
            run.queue += [int(i) for i in run.order.permutation(len(examples))]
        chosen, run.queue = run.queue[: options.batch_size], run.queue[options.batch_size :]
        batches = [
            _batch(processor, tokenizer, [examples[i] for i in chosen[at : at + micro]])
            for at in range(0, len(chosen), micro)
        ]
        tokens = sum(int((labels != -100).sum()) for _, labels, _ in batches)
        optimizer.zero_grad()
        loss = 0.0
        for features, labels, decoder_inputs in batches:  # gradients add up to the step's
            with autocast:
                logits = model(
                    input_features=features.to(options.device),
                    decoder_input_ids=decoder_inputs.to(options.device),
                ).logits
            part = torch.nn.functional.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]),
                labels.to(options.device).reshape(-1),
                ignore_index=-100,
                reduction="sum",
            ) / max(1, tokens)
            part.backward()
            loss += float(part.detach())
        optimizer.step()
        run.done += 1
        elapsed = time.monotonic() - started
        run.seconds += elapsed
        run.step_time = elapsed if run.step_time is None else 0.9 * run.step_time + 0.1 * elapsed
        if steps_that_fit is not None:  # the rate reaches 0 at the last that fits
            run.total = min(options.steps, run.done + steps_that_fit(run.done, run.step_time))
        rate = learning_rate(options.learning_rate, run.done, warmup, run.total)
        yield WhisperStep(run.done, loss, rate, len(chosen), run.total, elapsed)
        last = run.done >= run.total
        if checkpoints is not None and (
            last or (checkpoints.every and run.done % checkpoints.every == 0)
        ):
            yield save(stopped=False)
    _write_tuned(out, model, tokenizer, processor, checkpoints)


def _write_tuned(
    out: Path, model, tokenizer, processor, checkpoints: WhisperCheckpoints | None
) -> None:
    """Write the adapter to out/adapter, the merged model to out/hf and, converted, to
    out/model. A failed write (a full disk) names the last checkpoint: every step is in it, and
    a resume from it writes them again."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        # the embeddings are never resized here: peft need not look the base up to find out
        atomic_folder(
            out / "adapter",
            lambda folder: model.save_pretrained(folder, save_embedding_layers=False),
        )
        merged = model.merge_and_unload().eval()

        def write_hf(folder: Path) -> None:
            merged.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            processor.save_pretrained(folder)

        hf = atomic_folder(out / "hf", write_hf)
        convert_for_ctranslate2(hf, out / "model")
    except OSError as e:
        kept = None if checkpoints is None else _latest(checkpoints.folder)
        raise checkpoint_unwritten(out, "the tuned model", e, kept) from e


@dataclass(slots=True)
class _Run:
    """Where training stands: what a checkpoint saves beside the weights and optimizer."""

    total: int  # the steps it will run (a time limit lowers it)
    order: np.random.Generator  # draws each epoch's order
    done: int = 0
    queue: list[int] = dataclasses.field(default_factory=list)  # this epoch's rest
    step_time: float | None = None  # smoothed seconds a step (what a time limit fits)
    seconds: float = 0.0  # spent in steps, earlier runs of the job included


def _fingerprint(options: WhisperLoraOptions, examples: Sequence[tuple[np.ndarray, str]]) -> dict:
    """What a checkpoint must agree on to be resumed: the settings that shape training (not
    `steps`: a resumed job may run more or fewer, as a CTC job may) and the examples (their
    text and length, in order); not where it runs (`device`, `precision`)."""
    digest = hashlib.sha256()
    for audio, text in examples:
        digest.update(f"{len(audio)}\t{text}\n".encode())
    shaping = dataclasses.asdict(options)
    for name in ("steps", "device", "precision"):
        del shaping[name]
    return {**shaping, "examples": digest.hexdigest()}


def _latest(folder: Path) -> Path | None:
    done = checkpoint_dirs(folder)
    return done[-1] if done else None


def _save(where: WhisperCheckpoints, model, optimizer, run: _Run, fingerprint: dict) -> Path:
    """Write checkpoint step-N atomically, then drop all but the latest `where.keep`; a full
    disk keeps the last complete one and says so."""
    import torch
    from safetensors.torch import save_file

    state = {
        "step": run.done,
        "total": run.total,
        "queue": run.queue,
        "order": run.order.bit_generator.state,
        "step_time": run.step_time,
        "seconds": run.seconds,
        "fingerprint": fingerprint,
        "settings": where.settings,
    }
    weights = {
        n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad
    }

    def write(folder: Path) -> None:
        save_file(weights, folder / _WEIGHTS)
        torch.save(optimizer.state_dict(), folder / _OPTIMIZER)
        atomic_write_text(folder / CHECKPOINT_STATE, json.dumps(state, indent=1))

    target = where.folder / f"step-{run.done:07d}"
    try:
        where.folder.mkdir(parents=True, exist_ok=True)
        atomic_folder(target, write)
    except OSError as e:  # a full disk: the partial copy is gone, the last whole one kept
        what = f"the checkpoint of step {run.done}"
        raise checkpoint_unwritten(where.folder.parent, what, e, _latest(where.folder)) from e
    for old in checkpoint_dirs(where.folder)[: -max(1, where.keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _restore(
    folder: Path, model, optimizer, fingerprint: dict
) -> tuple[_Run, tuple[CheckpointSetAside, ...]]:
    """The newest checkpoint under `folder` that can be read, loaded into `model` and
    `optimizer`, and the newer ones that could not, set aside (as a CTC job does:
    `engine.tune.checkpoints`). None there: ValueError saying what to do; none readable:
    tune.checkpoints_unreadable; one of another job: ValueError naming it."""
    done = checkpoint_dirs(folder)
    if not done:
        raise ValueError(f"{folder}: no checkpoint to resume from; start the job again")
    resumed, run, unreadable = restore_newest(
        done, lambda checkpoint: _load(checkpoint, model, optimizer, fingerprint)
    )
    if resumed is None or run is None:
        raise no_readable_checkpoint(folder.parent, unreadable)
    log.info("resumed from %s (step %d)", resumed, run.done)
    return run, tuple(set_aside(unreadable, resumed, run.done))


def _load(checkpoint: Path, model, optimizer, fingerprint: dict) -> _Run:
    """Load `checkpoint` into `model` and `optimizer` once each of its files has been read
    (`UnreadableCheckpoint` when one cannot be: nothing is loaded then); one saved by a job
    with other data or settings, or LoRA weights of another shape, raise ValueError."""
    import torch
    from safetensors.torch import load_file

    again = "start the job again in a new folder"
    run, saved = read_checkpoint_file(checkpoint / CHECKPOINT_STATE, _read_state)
    if saved != fingerprint:
        raise ValueError(f"{checkpoint}: saved by a job with other data or settings; {again}")
    weights = read_checkpoint_file(checkpoint / _WEIGHTS, load_file)
    state = read_checkpoint_file(
        checkpoint / _OPTIMIZER,
        lambda path: torch.load(path, weights_only=True, map_location="cpu"),
    )
    if set(weights) != {n for n, p in model.named_parameters() if p.requires_grad}:
        raise ValueError(f"{checkpoint}: its LoRA weights do not fit this model; {again}")
    model.load_state_dict(weights, strict=False)
    try:
        optimizer.load_state_dict(state)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{checkpoint / _OPTIMIZER}: does not fit this job ({e}); {again}") from e
    return run


def _read_state(path: Path) -> tuple[_Run, dict]:
    """Where training stood, and the fingerprint of the job that saved it, from a checkpoint's
    state.json (KeyError, TypeError, ValueError: not a state Tingxie wrote)."""
    state = json.loads(path.read_text(encoding="utf-8"))
    saved = dict(state["fingerprint"])
    saved.pop("steps", None)  # kept by versions before the steps could change on resume
    order = np.random.default_rng()
    order.bit_generator.state = state["order"]
    run = _Run(
        total=int(state["total"]),
        order=order,
        done=int(state["step"]),
        queue=[int(i) for i in state["queue"]],
        step_time=state["step_time"],
        seconds=float(state["seconds"]),
    )
    return run, saved


def convert_for_ctranslate2(hf_dir: str | Path, out_dir: str | Path) -> Path:
    """A Whisper checkpoint in Hugging Face layout → a CTranslate2 folder, with CTranslate2's
    own converter, written atomically. Weights are stored in float16, as the published
    CTranslate2 Whisper folders are (half the disk; CTranslate2 computes in the precision the
    device runs best, float32 on most CPUs)."""
    from ctranslate2.converters import TransformersConverter

    converter = TransformersConverter(str(hf_dir), copy_files=list(_COPIED))

    def write(folder: Path) -> None:
        converter.convert(str(folder), quantization="float16", force=True)

    return atomic_folder(Path(out_dir), write)
