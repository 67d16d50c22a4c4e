"""`tingxie-cli export`: a model in another form — Hugging Face folder, LoRA adapter or ONNX
(fp32 / int8) — checked against the PyTorch model before it is called done."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

from . import ALLOW_PICKLE_HELP

__all__ = ["add_parser", "reference_audio", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a model as a Hugging Face folder, a LoRA adapter or ONNX (checked)",
        description="Write MODEL (a model folder, a Hub id, or a tuning job's output folder) to "
        "OUT. hf: merged weights as safetensors with processor and card; adapter: the LoRA "
        "adapter of a tuning output; onnx: model.onnx with a dynamic batch and time axis "
        "(--quantize int8: int8 weights through ONNX Runtime's quantizer), checked against "
        "PyTorch: maximum logit difference and greedy-text agreement on reference audio, and "
        "CER on --check MANIFEST. The figures go into OUT/README.md; a failed check exits 1.",
    )
    p.add_argument("model", help="model folder, Hub id, or a tuning job's output folder")
    p.add_argument("out", type=Path, help="output folder (replaced atomically)")
    p.add_argument("--format", choices=("hf", "adapter", "onnx"), default="hf")
    p.add_argument("--quantize", choices=("none", "int8"), default="none", help="onnx only")
    p.add_argument(
        "--check", type=Path, metavar="MANIFEST", help="also compare CER on these utterances"
    )
    p.add_argument("--check-limit", type=int, default=100, help="rows of MANIFEST used")
    p.add_argument("--allow-pickle", action="store_true", help=ALLOW_PICKLE_HELP)
    p.set_defaults(run=run)


def _model_folder(source: str) -> str:
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


def _check_rows(manifest: Path, limit: int) -> tuple[list[np.ndarray], list[str]]:
    from engine.normalize import NormalizeOptions, normalize_text
    from engine.tune.data import from_manifest, load_example_audio

    dataset = from_manifest(manifest)
    examples = dataset.examples[:limit]
    options = NormalizeOptions()
    return [load_example_audio(e) for e in examples], [
        normalize_text(e.text, options) for e in examples
    ]


def _export_onnx(args) -> int:
    from engine.export_onnx import export_onnx, measure_parity
    from engine.model import LoadOptions, load_model

    export_onnx(args.model, args.out, args.quantize)
    torch_model = load_model(args.model, LoadOptions(device="cpu", precision="fp32"))
    exported = load_model(args.out, LoadOptions(backend="onnx"))
    if args.check:
        audio, references = _check_rows(args.check, args.check_limit)
    else:
        audio, references = reference_audio(), None
    parity = measure_parity(torch_model, exported, audio, references)
    lines = parity.card_lines(args.quantize)
    card = [
        "---",
        "library_name: onnx",
        "pipeline_tag: automatic-speech-recognition",
        "language: zh",
        "tags: [tingxie, ctc, onnx]",
        "---",
        "# ONNX export made with Tingxie (听写)",
        "",
        f"- source: `{args.model}`",
        "- input `input_values` (batch, samples) at 16 kHz, normalized per utterance as the "
        "processor does; output `logits` (batch, frames, vocabulary)",
        *lines,
    ]
    (args.out / "README.md").write_text("\n".join(card) + "\n", encoding="utf-8")
    for line in lines:
        print(line.removeprefix("- "))
    if not parity.passed(args.quantize):
        print(f"error: {args.out}: the export does not match PyTorch (see above)", file=sys.stderr)
        return 1
    return 0


def _export_hf(args) -> int:
    from transformers import AutoModelForCTC, AutoProcessor

    from engine.atomic import atomic_folder
    from engine.model import resolve_model

    src = resolve_model(args.model, allow_pickle=args.allow_pickle)
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

    atomic_folder(args.out, write)
    print(f"wrote {args.out} (Hugging Face layout, safetensors)")
    return 0


def _export_adapter(args) -> int:
    from engine.atomic import atomic_folder

    adapter = Path(args.model) / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        print(
            f"error: {args.model}: no LoRA adapter here (adapter/adapter_config.json); only the "
            "output folder of a LoRA tuning job has one — export it with --format hf instead",
            file=sys.stderr,
        )
        return 2
    atomic_folder(args.out, lambda tmp: shutil.copytree(adapter, tmp, dirs_exist_ok=True))
    print(f"wrote {args.out} (LoRA adapter for {args.model})")
    return 0


def run(args: argparse.Namespace) -> int:
    from engine.model import ModelLoadError

    if args.quantize != "none" and args.format != "onnx":
        print("error: --quantize applies to --format onnx only", file=sys.stderr)
        return 2
    if args.format == "adapter":
        return _export_adapter(args)
    args.model = _model_folder(args.model)
    try:
        return _export_onnx(args) if args.format == "onnx" else _export_hf(args)
    except (ModelLoadError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
