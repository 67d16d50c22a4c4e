"""Export a CTC model to ONNX (fp32, or int8 through ONNX Runtime's own quantizer) and check
the export against PyTorch before calling it done. The exported folder is a model folder like
any other — `model.onnx` beside the config, the processor files, and the language model or
calibration when the source has them — which `engine.model.load_model` runs on the ONNX
Runtime backend (`engine.onnx`).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from .atomic import holds_files, staged_into
from .errors import TingxieError
from .onnx import ONNX_FILE

__all__ = [
    "Parity",
    "export_onnx",
    "iter_write_onnx",
    "main",
    "measure_parity",
]

log = logging.getLogger("tingxie.onnx")

OPSET = 18  # ONNX Runtime ≥ 1.17 runs it; the torch.export-based exporter's default
Quantize = Literal["none", "int8"]
# What travels with the weights: processor, vocabulary, and the language model, calibration
# and tuning card (base model, method, data, CER) a model folder may carry. The config is the
# loaded model's (an MMS adapter loaded sets its head's size).
_COMPANIONS = (
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "calibration.json",
    "tingxie_card.json",  # engine.tune.export.CARD_FILE
    "README.md",  # the source's card: its license and warnings go into the export's
)
_COMPANION_DIRS = ("lm",)


def _export_fp32(model: torch.nn.Module, path: Path) -> None:
    """torch.export-based exporter, batch and time axes dynamic (any length, any batch)."""
    batch = torch.export.Dim("batch")
    samples = torch.export.Dim("samples", min=400, max=16_000 * 3600)
    example = torch.zeros(1, 16_000)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["input_values"],
        output_names=["logits"],
        dynamic_shapes={"input_values": {0: batch, 1: samples}},
        opset_version=OPSET,
        dynamo=True,
        external_data=False,
        verbose=False,
    )


def iter_write_onnx(
    source: str | os.PathLike[str],
    folder: Path,
    quantize: Quantize = "none",
    allow_pickle: bool = False,
) -> Iterator[str]:
    """Write the export into `folder` (empty; the caller swaps it in or removes it), naming each
    stage before it starts: "loading" the checkpoint (checked first: `check_checkpoint`),
    "writing" the fp32 graph, "quantizing" it to int8 weights (int8 only). A caller that stops
    between stages (closes the generator, or raises while it is suspended) leaves no scratch
    file behind; `folder` is the caller's.
    `allow_pickle` accepts a source with pickle weights only (they can run code when loaded)."""
    from .model import bake_weight_norm, check_checkpoint, ctc_model

    yield "loading"
    src = check_checkpoint(source, allow_pickle)
    model = ctc_model(src, dtype=torch.float32, attn_implementation="eager").eval()
    bake_weight_norm(model)  # a plain weight: an initializer the int8 quantizer can convert
    yield "writing"
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory() as scratch:
            fp32 = Path(scratch) / ONNX_FILE
            with torch.no_grad():  # (no yield inside: grad mode is the thread's)
                _export_fp32(model, fp32)
            yield "quantizing"
            # Like torch's dynamic quantization, only the Linear layers (MatMul): with the
            # convolutions quantized too, the demo model lost 0.50 CER points, this way 0.17
            # (60 held-out sentences; bench/bench_transcribe.py measures speed).
            quantize_dynamic(
                fp32,
                folder / ONNX_FILE,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul"],
            )
    else:
        with torch.no_grad():
            _export_fp32(model, folder / ONNX_FILE)
    model.config.save_pretrained(folder)
    for name in _COMPANIONS:
        if (src / name).is_file():
            shutil.copy2(src / name, folder / name)
    for name in _COMPANION_DIRS:
        if (src / name).is_dir():
            shutil.copytree(src / name, folder / name)
    log.info("exported %s to %s (%s)", src, folder, quantize)


def export_onnx(
    source: str | os.PathLike[str], out_dir: str | os.PathLike[str], quantize: Quantize = "none"
) -> Path:
    """Write `out_dir`, new or empty (its files appear once complete; a folder holding files is
    refused, never replaced: `_check_out`): `model.onnx` (fp32, or int8 weights with dynamic
    activation quantization) and the files a model folder needs besides its weights."""
    for _stage in _write(source, Path(out_dir), quantize):
        pass
    return Path(out_dir)


def _write(source: str | os.PathLike[str], out: Path, quantize: Quantize) -> Iterator[str]:
    """`iter_write_onnx` into `out` through a staging folder (`engine.atomic.staged_into`)."""
    _check_out(out)
    with staged_into(out) as staging:
        yield from iter_write_onnx(source, staging.folder, quantize)


def _check_out(out: Path) -> None:
    """Refuse an output that is a file or a folder holding files, before the model loads: the
    export is not merged into them (`tingxie-cli export` makes a subfolder there instead)."""
    if out.exists() and not out.is_dir():
        raise TingxieError("export.target_is_file", path=out)
    if out.is_dir() and holds_files(out):
        raise TingxieError("export.target_exists", path=out)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m engine.export_onnx SOURCE OUT [--int8]`: the export alone (no parity check, no
    card), each stage's name printed as it starts; OUT new or empty (status 2, with nothing
    loaded, when it holds files). `engine.model` runs it in a child process to make a CPU's
    int8 copy of a checkpoint into a new folder (the export of XLSR-53 peaks at ~5.7 GB, which
    a child gives back to the system when it ends)."""
    parser = argparse.ArgumentParser(prog="python -m engine.export_onnx")
    parser.add_argument("source", help="a model folder or Hub id")
    parser.add_argument("out", help="the folder to write: new or empty (it is never replaced)")
    parser.add_argument("--int8", action="store_true", help="int8 weights (dynamic quantization)")
    args = parser.parse_args(argv)
    try:
        for stage in _write(args.source, Path(args.out), "int8" if args.int8 else "none"):
            print(stage, flush=True)
    except (TingxieError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


# What an export must reach to pass its parity check. fp32 computes what PyTorch does and
# writes its text; int8 weights change a few close calls between characters, and may cost at
# most half a CER point where references measure it (the demo model lost 0.17).
_MIN_AGREEMENT: dict[Quantize, float] = {"none": 0.999, "int8": 0.98}
_MAX_INT8_CER_RISE = 0.005
# Confidence, calibration and the LM beam read the probabilities, not just the best output, so
# they are bounded too. fp32: the logits themselves, relative to their range (a sound export of
# the demo model differs by 4.5e-5 on a range of 47, one that scales them by 3 by 51). int8:
# the mean over frames of the largest |posterior difference| of a frame (the demo model, its 4
# reference signals, 2026-12-07: a sound int8 export 0.002, one whose logits are tripled 0.048).
_MAX_FP32_LOGIT_DIFF = 1e-3  # times the logits' range (at least 1)
_MAX_INT8_POSTERIOR_DIFF = 0.01


@dataclass(frozen=True, slots=True)
class Parity:
    """How an export compares with the PyTorch model it came from, on the same audio."""

    max_logit_diff: float  # largest |logit difference| over every frame and output
    char_agreement: float  # 1 - CER of the export's greedy text against PyTorch's
    utterances: int
    cer_torch: float | None = None  # against references, when a manifest was given
    cer_export: float | None = None
    logit_range: float = 0.0  # PyTorch's largest minus smallest logit, over every frame
    posterior_diff: float = 0.0  # mean over frames of a frame's largest |probability difference|

    @property
    def logit_bound(self) -> float:
        """The largest |logit difference| an fp32 export may show."""
        return _MAX_FP32_LOGIT_DIFF * max(1.0, self.logit_range)

    @property
    def cer_delta(self) -> float | None:
        if self.cer_torch is None or self.cer_export is None:
            return None
        return self.cer_export - self.cer_torch

    def failures(self, quantize: Quantize) -> list[str]:
        """Each bound the export misses, as the card words it; none when it passes. fp32 must
        agree with PyTorch on ≥ 99.9 % of characters, int8 on ≥ 98 % and, where references
        were given, lose ≤ 0.5 CER points against them: both, since a CER on a few rows can
        hold while the text drifts. The probabilities are bounded too (`_MAX_FP32_LOGIT_DIFF`,
        `_MAX_INT8_POSTERIOR_DIFF`): the same text with other confidences is no pass. Nothing
        checked is no pass."""
        if self.utterances == 0:
            return ["no utterance was checked (a manifest without usable rows?)"]
        bar = _MIN_AGREEMENT[quantize]
        found = []
        if self.char_agreement < bar:
            found.append(
                f"greedy text agreement {100 * self.char_agreement:.2f} % of characters, "
                f"under {100 * bar:g} %"
            )
        if quantize == "none" and self.max_logit_diff > self.logit_bound:
            found.append(
                f"max |logit difference| {self.max_logit_diff:.2e}, over {self.logit_bound:.2e}"
            )
        if quantize == "int8" and self.posterior_diff > _MAX_INT8_POSTERIOR_DIFF:
            found.append(
                f"mean per-frame posterior difference {self.posterior_diff:.4f}, "
                f"over {_MAX_INT8_POSTERIOR_DIFF:g}"
            )
        delta = self.cer_delta
        if quantize == "int8" and delta is not None and delta > _MAX_INT8_CER_RISE:
            found.append(
                f"CER {100 * delta:+.2f} points against the references, "
                f"over {100 * _MAX_INT8_CER_RISE:+.2f}"
            )
        return found

    def passed(self, quantize: Quantize) -> bool:
        """Whether the export meets every bound of `failures`."""
        return not self.failures(quantize)

    def card_lines(self, quantize: Quantize) -> list[str]:
        precision = "int8 weights (dynamic quantization)" if quantize == "int8" else "fp32"
        logit_bound = f" (bound {self.logit_bound:.2e})" if quantize == "none" else ""
        posterior_bound = f" (bound {_MAX_INT8_POSTERIOR_DIFF:g})" if quantize == "int8" else ""
        lines = [
            f"- precision: {precision}",
            f"- checked on {self.utterances} utterances against PyTorch fp32: max |logit "
            f"difference| {self.max_logit_diff:.2e}{logit_bound}, mean per-frame posterior "
            f"difference {self.posterior_diff:.4f}{posterior_bound}, greedy text agreement "
            f"{100 * self.char_agreement:.2f} % of characters",
        ]
        if self.cer_delta is not None:
            lines.append(
                f"- CER against the references: PyTorch {100 * self.cer_torch:.2f} %, this export "
                f"{100 * self.cer_export:.2f} % ({100 * self.cer_delta:+.2f} points)"
            )
        failures = self.failures(quantize)
        lines.append("- parity: " + ("FAILED: " + "; ".join(failures) if failures else "passed"))
        return lines


def measure_parity(
    torch_model: Any,
    export_model: Any,
    audio: Iterable[np.ndarray],
    references: Sequence[str] | None = None,
) -> Parity:
    """Compare two loaded models (`engine.model.LoadedModel`) utterance by utterance, each run
    in the chunks `Transcriber.transcribe` cuts a file into (a long recording costs a chunk's
    memory, not its length squared). `references` are normalized as the models' texts are
    (`engine.lm`'s rule: kept Traditional for a model that writes Traditional characters), so
    the CER is that of what the model writes, not of a script conversion."""
    from .chunking import ChunkPlan, iter_chunks, join_frames
    from .lm import _normalization
    from .metrics import cer
    from .normalize import normalize_text
    from .transcribe import TranscribeOptions, Transcriber

    reference_run, export_run = Transcriber(torch_model), Transcriber(export_model)
    o = TranscribeOptions()
    plan = ChunkPlan.from_seconds(
        o.chunk_seconds, o.stride_seconds, reference_run.geometry, torch_model.sampling_rate
    )
    worst, low, high, texts_torch, texts_export = 0.0, np.inf, -np.inf, [], []
    frame_diffs: list[np.ndarray] = []
    for clip in audio:
        paths: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
        for chunk in iter_chunks([clip], plan):
            (a,), (b,) = reference_run.logits([chunk.audio]), export_run.logits([chunk.audio])
            a, b = join_frames(chunk, a), join_frames(chunk, b)
            if len(a):
                worst = max(worst, float(np.abs(a - b).max()))
                low, high = min(low, float(a.min())), max(high, float(a.max()))
                frame_diffs.append(np.abs(_softmax(a) - _softmax(b)).max(axis=1))
            paths[0].append(a.argmax(axis=1))  # greedy decoding needs no more than these
            paths[1].append(b.argmax(axis=1))
        texts_torch.append(_greedy_text(reference_run, paths[0]))
        texts_export.append(_greedy_text(export_run, paths[1]))
    agreement = text_agreement(texts_torch, texts_export)
    cer_torch = cer_export = None
    if references is not None:
        normalize = _normalization(torch_model.vocab)
        refs = [normalize_text(t, normalize) for t in references]
        cer_torch = cer(refs, [normalize_text(t, normalize) for t in texts_torch]).cer
        cer_export = cer(refs, [normalize_text(t, normalize) for t in texts_export]).cer
    posterior = float(np.concatenate(frame_diffs).mean()) if frame_diffs else 0.0
    span = high - low if frame_diffs else 0.0
    return Parity(worst, agreement, len(texts_torch), cer_torch, cer_export, span, posterior)


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Each frame's probabilities (rows of `logits`), in float64."""
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _greedy_text(run: Any, path: Sequence[np.ndarray]) -> str:
    """The greedy text of a clip from each frame's best output (its chunks' kept frames in
    order): one character per run of an output, silent ones (blank, specials) left out, as
    `Transcriber.chars` writes them."""
    best = np.concatenate(path) if path else np.zeros(0, np.intp)
    runs = best[np.flatnonzero(np.diff(best, prepend=-1))]
    return "".join(run.model.vocab[i] for i in runs if not run.silent[i])


def text_agreement(reference: Sequence[str], other: Sequence[str]) -> float:
    """Share of `reference`'s characters `other` writes alike (1 - CER, at least 0). Where the
    reference wrote nothing, `other` agrees only by writing nothing either."""
    from .metrics import cer

    if not any(reference):
        return 0.0 if any(other) else 1.0
    return max(0.0, 1.0 - cer(list(reference), list(other)).cer)


if __name__ == "__main__":
    sys.exit(main())
