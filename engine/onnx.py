"""The ONNX Runtime backend: a model folder's `model.onnx` run behind the same `Transcriber`
(a second runtime, as faster-whisper keeps CTranslate2 behind its own API). The folder is a
model folder like any other — config, processor and vocabulary beside the weights — so
`engine.model.load_model` opens it and decodes with the same vocabulary. Exports are made by
`engine.export_onnx`.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

__all__ = ["ONNX_FILE", "OnnxCtcModel"]

ONNX_FILE = "model.onnx"


class OnnxCtcModel:
    """An ONNX Runtime session that quacks like the transformers CTC model `Transcriber` calls:
    `model(input_values).logits`, with the checkpoint's `config`."""

    def __init__(self, path: Path, config: Any, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = [p for p in ("CUDAExecutionProvider",) if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(
            str(path), options, providers=[*providers, "CPUExecutionProvider"]
        )
        self.config = config
        self.path = path

    def __call__(self, input_values: torch.Tensor) -> SimpleNamespace:
        x = input_values.detach().to("cpu", torch.float32).numpy()
        (logits,) = self.session.run(["logits"], {"input_values": x})
        return SimpleNamespace(logits=torch.from_numpy(logits))

    def to(self, *args: Any, **kwargs: Any) -> OnnxCtcModel:
        return self

    def eval(self) -> OnnxCtcModel:
        return self
