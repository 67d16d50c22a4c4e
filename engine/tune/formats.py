"""A model in another form — Hugging Face folder, LoRA adapter, ONNX (fp32 / int8) — checked
before it is called done. One implementation for `tingxie-cli export` and the app's Export
dialog: `iter_export` yields what it is doing and ends with an `ExportResult`.

It sits in the tuning wing because it reads check manifests (`engine.tune.data`) and the
adapters tuning jobs write; the ONNX writer and the parity measure it calls are inference
(`engine.export_onnx`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from engine.errors import TingxieError

__all__ = [
    "ExportOptions",
    "ExportResult",
    "ExportStage",
    "check_rows",
    "iter_export",
    "model_folder",
    "reference_audio",
]

Format = Literal["hf", "adapter", "onnx"]
Quantize = Literal["none", "int8"]
FORMATS: tuple[Format, ...] = ("hf", "adapter", "onnx")


@dataclass(frozen=True, slots=True)
class ExportOptions:
    format: Format = "hf"
    quantize: Quantize = "none"  # int8: ONNX only, int8 weights through ONNX Runtime
    check: Path | None = None  # a manifest: also compare CER on its first `check_limit` rows
    check_limit: int = 100
    allow_pickle: bool = False  # hf: accept a pickle-only source (it can run code)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format={self.format!r}: choose one of {', '.join(FORMATS)}")
        if self.quantize not in ("none", "int8"):
            raise ValueError(f"quantize={self.quantize!r}: choose none or int8")
        if self.quantize != "none" and self.format != "onnx":
            raise ValueError("quantize applies to format onnx only")


@dataclass(frozen=True, slots=True)
class ExportStage:
    """What the export is doing now (a front end words it)."""

    stage: Literal["writing", "checking"]


@dataclass(frozen=True, slots=True)
class ExportResult:
    out: Path
    format: Format
    quantize: Quantize
    # ONNX only: the parity figures as the card states them, and whether they pass.
    lines: tuple[str, ...] = ()
    passed: bool = True


def model_folder(source: str) -> str:
    """A tuning job's output folder stands for the model it produced."""
    job = Path(source)
    if (job / "model" / "config.json").is_file() and not (job / "config.json").is_file():
        return str(job / "model")
    return source


def reference_audio(n: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Speech-like test signals (a voiced pitch contour with harmonics, syllable envelopes and
    noise), 2-5 s each: enough to compare two backends' outputs frame by frame when no
    recordings are given."""
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(n):
        t = np.arange(int(rng.uniform(2, 5) * 16_000)) / 16_000
        f0 = 120 + 40 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t) + rng.uniform(-20, 60)
        phase = 2 * np.pi * np.cumsum(f0) / 16_000
        voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
        envelope = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t), 0, None)
        noise = rng.normal(0, 0.05, len(t))
        clips.append((0.3 * voiced * envelope + noise).astype(np.float32))
    return clips


def check_rows(manifest: Path, limit: int) -> tuple[list[np.ndarray], list[str]]:
    """The audio and normalized reference texts of a manifest's first `limit` rows."""
    from engine.normalize import NormalizeOptions, normalize_text

    from .data import from_manifest, load_example_audio

    examples = from_manifest(manifest).examples[:limit]
    options = NormalizeOptions()
    return [load_example_audio(e) for e in examples], [
        normalize_text(e.text, options) for e in examples
    ]


def iter_export(
    source: str | os.PathLike[str], out: str | os.PathLike[str], options: ExportOptions
) -> Iterator[ExportStage | ExportResult]:
    """Write `source` (a folder, a Hub id, or a tuning job's output folder) to `out` (replaced
    atomically) in `options.format`; the last item is the `ExportResult`."""
    out = Path(out)
    if options.format == "adapter":
        yield ExportStage("writing")
        yield _export_adapter(Path(source), out)
        return
    source = model_folder(str(source))
    if options.format == "hf":
        yield ExportStage("writing")
        yield _export_hf(source, out, options.allow_pickle)
        return
    yield from _export_onnx(source, out, options)


def _export_onnx(
    source: str, out: Path, options: ExportOptions
) -> Iterator[ExportStage | ExportResult]:
    from engine.export_onnx import export_onnx, measure_parity
    from engine.model import LoadOptions, load_model

    yield ExportStage("writing")
    export_onnx(source, out, options.quantize)
    yield ExportStage("checking")
    torch_model = load_model(source, LoadOptions(device="cpu", precision="fp32"))
    exported = load_model(out, LoadOptions(backend="onnx"))
    if options.check:
        audio, references = check_rows(options.check, options.check_limit)
    else:
        audio, references = reference_audio(), None
    parity = measure_parity(torch_model, exported, audio, references)
    lines = parity.card_lines(options.quantize)
    card = [
        "---",
        "library_name: onnx",
        "pipeline_tag: automatic-speech-recognition",
        "language: zh",
        "tags: [tingxie, ctc, onnx]",
        "---",
        "# ONNX export made with Tingxie (听写)",
        "",
        f"- source: `{source}`",
        "- input `input_values` (batch, samples) at 16 kHz, normalized per utterance as the "
        "processor does; output `logits` (batch, frames, vocabulary)",
        *lines,
    ]
    (out / "README.md").write_text("\n".join(card) + "\n", encoding="utf-8")
    yield ExportResult(
        out,
        "onnx",
        options.quantize,
        tuple(line.removeprefix("- ") for line in lines),
        parity.passed(options.quantize),
    )


def _export_hf(source: str, out: Path, allow_pickle: bool) -> ExportResult:
    from transformers import AutoModelForCTC, AutoProcessor

    from engine.atomic import atomic_folder
    from engine.model import resolve_model

    src = resolve_model(source, allow_pickle=allow_pickle)
    model = AutoModelForCTC.from_pretrained(
        src, use_safetensors=any(src.glob("*.safetensors")) or None, trust_remote_code=False
    )
    processor = AutoProcessor.from_pretrained(src, trust_remote_code=False)

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
        for name in ("README.md", "tingxie_card.json", "calibration.json"):
            if (src / name).is_file():
                shutil.copy2(src / name, tmp / name)
        if (src / "lm").is_dir():
            shutil.copytree(src / "lm", tmp / "lm")

    atomic_folder(out, write)
    return ExportResult(out, "hf", "none")


def _export_adapter(job: Path, out: Path) -> ExportResult:
    from engine.atomic import atomic_folder

    adapter = job / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise TingxieError("export.no_adapter", path=job)
    atomic_folder(out, lambda tmp: shutil.copytree(adapter, tmp, dirs_exist_ok=True))
    return ExportResult(out, "adapter", "none")
