"""The ONNX Runtime backend: a model folder's `model.onnx` run behind the same `Transcriber`
(a second runtime, as faster-whisper keeps CTranslate2 behind its own API). The folder is a
model folder like any other — config, processor and vocabulary beside the weights — so
`engine.model.load_model` opens it and decodes with the same vocabulary. Exports are made by
`engine.export_onnx`, with a card (README.md) whose figures say whether the export passed its
parity check against PyTorch: `parity_failure` reads it, for loading and for sharing alike.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "EXPORT_CARD",
    "ONNX_FILE",
    "OnnxCtcModel",
    "UnreadableOnnx",
    "export_card_lines",
    "open_session",
    "parity_failure",
    "session_options",
]

ONNX_FILE = "model.onnx"
# The first line of the card `tingxie-cli export --format onnx` writes into the export's
# README.md (engine.tune.formats), above its figures: precision, parity check.
EXPORT_CARD = "# ONNX export made with Tingxie"
# How the card's parity line begins when the check failed (engine.export_onnx.Parity.card_lines)
_PARITY_FAILED = "- parity: FAILED"


def export_card_lines(folder: Path) -> list[str]:
    """The figures of an ONNX export's own card (precision, parity check), or none (no card,
    or not an export's); the tuned model's card it carries under a heading of its own is
    left out. Light: reading it imports neither torch nor ONNX Runtime."""
    try:
        text = (Path(folder) / "README.md").read_text(encoding="utf-8")
    except (OSError, ValueError):
        return []
    if EXPORT_CARD not in text:
        return []
    lines = []
    for line in text.split(EXPORT_CARD, 1)[1].splitlines():
        if line.startswith("## "):
            break
        if line.startswith("- ") and "source:" not in line:
            lines.append(line)
    return lines


def parity_failure(folder: Path) -> str | None:
    """What the parity check of the ONNX export in `folder` found (its card's words), when it
    failed: such an export transcribes unlike the model it came from (`tingxie-cli export`
    keeps it as OUT.parity-failed), so it is not shared and loads with a warning. None when it
    passed or the folder has no export card."""
    for line in export_card_lines(folder):
        if line.startswith(_PARITY_FAILED):
            return line.removeprefix(_PARITY_FAILED).lstrip(": ") or "no reason given"
    return None


def session_options(threads: int | None = None) -> Any:
    """The runtime's options for a CTC model (bench/profiling.py adds its profiler to them)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    # On a CPU, memory over speed where speed does not suffer (full-size XLSR-53 int8, one
    # 20 s chunk at a time, 2-core Xeon, 2026-12-02: peak 1453 -> 886 MB, no slower; AVX2-only
    # EPYC, 2026-12-04: 900 against 1150 MB, 4.1 s either way): no arena (it keeps the largest
    # activations ever seen) and no prepacked copy of the weights beside the file's.
    options.enable_cpu_mem_arena = False
    options.add_session_config_entry("session.disable_prepacking", "1")
    return options


class UnreadableOnnx(ValueError):
    """A file ONNX Runtime cannot read as a model; the message is its one-line reason
    (engine.model words it for the user, naming the file)."""


def open_session(path: Path, options: Any) -> Any:
    """An inference session on the GPU when ONNX Runtime has CUDA, else on the CPU. A file ONNX
    Runtime cannot read as a model (cut short, damaged, not ONNX, an operator it lacks) raises
    `UnreadableOnnx`."""
    import onnxruntime as ort
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    providers = [p for p in ("CUDAExecutionProvider",) if p in ort.get_available_providers()]
    unreadable = (
        state.Fail,
        state.InvalidArgument,  # an empty file: "No graph was found in the protobuf"
        state.InvalidGraph,
        state.InvalidProtobuf,
        state.NoSuchFile,
        state.NotImplemented,
    )  # ONNX Runtime's own types, which derive from Exception alone
    try:
        return ort.InferenceSession(
            str(path), options, providers=[*providers, "CPUExecutionProvider"]
        )
    except unreadable as e:
        # "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from … failed:<reason>"
        reason = str(e).splitlines()[0].rpartition("failed:")[2].strip().rstrip(".")
        raise UnreadableOnnx(reason or type(e).__name__) from e


class OnnxCtcModel:
    """An ONNX Runtime session that quacks like the transformers CTC model `Transcriber` calls:
    `model(input_values).logits`, with the checkpoint's `config`."""

    def __init__(self, path: Path, config: Any, threads: int | None = None) -> None:
        self.session = open_session(path, session_options(threads))
        # A CPU session runs a batch one row at a time: its fp32 activations grow with the batch
        # (4 x 20 s: 2.0 GB peak against 0.9 GB) and the rows were no slower apart.
        self.rows_apart = self.session.get_providers()[0] == "CPUExecutionProvider"
        self.config = config
        self.path, self.threads = path, threads

    def __call__(self, input_values: torch.Tensor) -> SimpleNamespace:
        import torch

        x = input_values.detach().to("cpu", torch.float32).numpy()
        rows = [x[i : i + 1] for i in range(len(x))] if self.rows_apart else [x]
        logits = [self.session.run(["logits"], {"input_values": r})[0] for r in rows]
        return SimpleNamespace(logits=torch.from_numpy(np.concatenate(logits)))

    def to(self, *args: Any, **kwargs: Any) -> OnnxCtcModel:
        return self

    def eval(self) -> OnnxCtcModel:
        return self
