"""A model in another form — Hugging Face folder, LoRA adapter, ONNX (fp32 / int8) — checked
before it is called done. One implementation for `tingxie-cli export` and the app's Export
dialog: `iter_export` yields each stage as it begins and ends with an `ExportResult`.

Everything is written into a temporary sibling of the output folder (`engine.atomic`) and
swapped in only once it is complete and checked, so a failure or a cancel (the `cancel` event,
looked at between stages) leaves nothing half-written and an earlier export there as it was.

It sits in the tuning wing because it reads check manifests (`engine.tune.data`) and the
adapters tuning jobs write; the ONNX writer and the parity measure it calls are inference
(`engine.export_onnx`).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from engine.errors import TingxieError

if TYPE_CHECKING:
    from .data import Example, ValidationReport

__all__ = [
    "ExportCancelled",
    "ExportOptions",
    "ExportResult",
    "ExportStage",
    "check_rows",
    "export_stages",
    "export_target",
    "iter_export",
    "model_folder",
    "read_check_manifest",
    "reference_audio",
]

Format = Literal["hf", "adapter", "onnx"]
Quantize = Literal["none", "int8"]
FORMATS: tuple[Format, ...] = ("hf", "adapter", "onnx")
# The heading of the tuned model's own card inside an ONNX export's README.md (its lines are
# not the export's figures: engine.tune.hub words them from tingxie_card.json).
TUNING_HEADING = "## Tuned with Tingxie"


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
        if self.check_limit < 1:
            raise ValueError(f"check_limit={self.check_limit}: must be at least 1")
        if self.check is not None and self.format != "onnx":
            # hf and adapter copy the weights unchanged: there is nothing to compare, and a
            # check that silently did nothing would read as one that passed.
            raise ValueError(
                f"check {self.check} applies to format onnx only (an {self.format} export "
                "copies the weights unchanged); leave it out or choose onnx"
            )


Stage = Literal["loading", "writing", "quantizing", "checking"]


class ExportCancelled(TingxieError):
    """The export was cancelled between two stages; nothing of it was left in place."""


@dataclass(frozen=True, slots=True)
class ExportStage:
    """What the export begins now (a front end words it): stage `index` of `count`."""

    stage: Stage
    index: int = 1
    count: int = 1


@dataclass(frozen=True, slots=True)
class ExportResult:
    out: Path
    format: Format
    quantize: Quantize
    # ONNX only: the parity figures as the card states them, and whether they pass.
    lines: tuple[str, ...] = ()
    passed: bool = True


def model_folder(source: str) -> str:
    """A tuning job's folder stands for the model it produced (`engine.registry.model_path`);
    a Hub id or any other folder for itself."""
    from engine.registry import model_path

    folder = model_path(source)
    return str(folder) if folder != Path(source).expanduser() else source


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


def read_check_manifest(manifest: str | os.PathLike[str], limit: int) -> ValidationReport:
    """An export's check manifest, read and validated before any model is loaded: of its first
    `limit` rows, one whose audio is missing or unreadable, or whose transcript is empty, is
    skipped and listed by file:row (`ValidationReport.skipped`), as a tuning job skips it.
    DatasetError when the manifest cannot be read or none of those rows is usable (its `report`
    then lists why)."""
    from .data import ValidationOptions, from_manifest, validate

    dataset = from_manifest(Path(manifest).expanduser())
    dataset.examples = dataset.examples[:limit]
    # Any length will do: the check transcribes a clip whole, as `transcribe` would.
    anything = ValidationOptions(min_seconds=0.0, max_seconds=math.inf, frame_seconds=None)
    return validate(dataset, None, anything)


def check_rows(manifest: Path, limit: int) -> tuple[list[np.ndarray], list[str]]:
    """The audio and normalized reference texts of the usable rows among a manifest's first
    `limit` (`read_check_manifest`)."""
    return _check_audio(read_check_manifest(manifest, limit).kept)


def _check_audio(examples: Sequence[Example]) -> tuple[list[np.ndarray], list[str]]:
    from engine.normalize import NormalizeOptions, normalize_text

    from .data import load_example_audio

    options = NormalizeOptions()
    return [load_example_audio(e) for e in examples], [
        normalize_text(e.text, options) for e in examples
    ]


def _skipped_line(report: ValidationReport) -> list[str]:
    """The card's line on check rows left out (none when every row was used)."""
    skipped = list(dict.fromkeys(f.origin for f in report.skipped))
    if not skipped:
        return []
    shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
    return [f"- check rows: {len(report.kept)} used, {len(skipped)} left out ({shown})"]


def export_stages(options: ExportOptions) -> tuple[Stage, ...]:
    """The stages an export with `options` goes through, in order."""
    if options.format == "adapter":
        return ("writing",)
    if options.format == "hf":
        return ("loading", "writing")
    quantizing: tuple[Stage, ...] = ("quantizing",) if options.quantize == "int8" else ()
    return ("loading", "writing", *quantizing, "checking")


def export_target(chosen: str | os.PathLike[str], source: str, options: ExportOptions) -> Path:
    """Where an export into the folder a person chose goes: that folder when it is new or
    empty, else a new subfolder named after the model and format inside it (an export replaces
    its output folder, and a chosen folder holding other files must never be replaced).
    TingxieError export.target_exists when that subfolder exists already and holds files,
    export.target_is_file when the chosen path (or a folder above it) is a file, and
    export.not_writable when nothing can be written where the export would go: all found here,
    before a model is loaded."""
    chosen = Path(os.path.abspath(Path(chosen).expanduser()))  # ".": a folder with a name
    if chosen.exists() and not chosen.is_dir():
        raise TingxieError("export.target_is_file", path=chosen)
    if not chosen.is_dir() or not any(chosen.iterdir()):
        target = chosen
    else:
        suffix = "onnx-int8" if options.quantize == "int8" else options.format
        name = Path(str(source).rstrip("/\\")).name or "model"
        target = chosen / f"{name}-{suffix}"
        if target.exists() and not target.is_dir():
            raise TingxieError("export.target_is_file", path=target)
        if target.is_dir() and any(target.iterdir()):
            raise TingxieError("export.target_exists", path=target)
    _check_writable(target, chosen)
    return target


def _check_writable(target: Path, chosen: Path) -> None:
    """The export is staged beside `target` and moved into place there: its parent (or the
    nearest folder above it that exists, where the missing ones will be made) must take a
    file. A scratch file is written and removed to find out (permissions alone do not say:
    a read-only mount, an immutable folder, root)."""
    import tempfile

    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():  # a file where a folder above the output should be
        raise TingxieError("export.target_is_file", path=folder)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:  # (the reason, in the system's words, stays in the traceback)
        raise TingxieError("export.not_writable", path=chosen, folder=folder) from e


def _check_source(source: str, options: ExportOptions) -> None:
    """What the source cannot be exported as, found before anything is loaded: an ONNX export
    (no PyTorch weights to read), or a family the format does not apply to (Whisper)."""
    from engine.registry import WHISPER, family_of, features_of, is_onnx_export

    if is_onnx_export(source):
        raise TingxieError("export.onnx_source", path=source)
    needs = {"hf": "hf_export", "onnx": "onnx_export"}.get(options.format)
    if needs and needs not in features_of(source) and family_of(source) is WHISPER:
        raise TingxieError("export.whisper", path=source)


def iter_export(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: ExportOptions,
    cancel: threading.Event | None = None,
) -> Iterator[ExportStage | ExportResult]:
    """Write `source` (a folder, a Hub id, or a tuning job's output folder) to `out` (replaced
    atomically) in `options.format`; the last item is the `ExportResult`. Setting `cancel` (from
    any thread) stops the export at the next stage boundary with `ExportCancelled`."""
    out = Path(out)

    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise ExportCancelled("export.cancelled", path=out)

    # What the export is checked on, read before anything loads: a manifest without a usable
    # row is refused in a second, not after the model was written.
    checked = read_check_manifest(options.check, options.check_limit) if options.check else None
    _check_source(model_folder(str(source)), options)
    if options.format == "adapter":
        work = _export_adapter(Path(source), out, check)
    elif options.format == "hf":
        work = _export_hf(model_folder(str(source)), out, options.allow_pickle, check)
    else:
        work = _export_onnx(model_folder(str(source)), out, options, checked, check)
    stages = export_stages(options)
    # Closing `work` on the way out (a cancel raised here, a consumer that stops early) ends
    # it where it stands: its staged folder is removed.
    with contextlib.closing(work):
        while True:
            check()
            item = next(work, None)
            if item is None:
                return
            if isinstance(item, ExportResult):
                yield item  # done and in place: a cancel from now on comes too late
                return
            yield ExportStage(item, stages.index(item) + 1, len(stages))


def _export_onnx(
    source: str,
    out: Path,
    options: ExportOptions,
    checked: ValidationReport | None,
    check: Callable[[], None],
) -> Iterator[Stage | ExportResult]:
    from engine.atomic import staged_folder
    from engine.export_onnx import iter_write_onnx, measure_parity
    from engine.model import LoadOptions, load_model

    # Written, checked and given its card in the staging folder: only a checked export is
    # moved into place.
    with staged_folder(out) as tmp:
        yield from iter_write_onnx(source, tmp, options.quantize, options.allow_pickle)
        yield "checking"
        torch_model = load_model(
            source,
            LoadOptions(device="cpu", precision="fp32", allow_pickle=options.allow_pickle),
        )
        exported = load_model(tmp, LoadOptions(backend="onnx"))
        if checked is not None:
            audio, references = _check_audio(checked.kept)
        else:
            audio, references = reference_audio(), None
        parity = measure_parity(torch_model, exported, audio, references)
        lines = parity.card_lines(options.quantize)
        if checked is not None:
            lines += _skipped_line(checked)
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
            *_tuning_lines(tmp),
        ]
        (tmp / "README.md").write_text("\n".join(card) + "\n", encoding="utf-8")
        del exported  # its session may hold model.onnx open (Windows refuses such a move)
        check()
    yield ExportResult(
        out,
        "onnx",
        options.quantize,
        tuple(line.removeprefix("- ") for line in lines),
        parity.passed(options.quantize),
    )


def _tuning_lines(folder: Path) -> list[str]:
    """A tuned model's card (base model, method, data, CER), which its ONNX export carries
    (tingxie_card.json is copied with it), as lines under their own heading; none otherwise."""
    from .export import read_card

    card = read_card(folder)
    if card is None:
        return []
    body = [line for line in card.render().splitlines() if line.startswith("- ")]
    return ["", TUNING_HEADING, "", *body]


def _export_hf(
    source: str, out: Path, allow_pickle: bool, check: Callable[[], None]
) -> Iterator[Stage | ExportResult]:
    from transformers import AutoModelForCTC, AutoProcessor

    from engine.atomic import staged_folder
    from engine.model import resolve_model

    yield "loading"
    src = resolve_model(source, allow_pickle=allow_pickle)
    model = AutoModelForCTC.from_pretrained(
        src, use_safetensors=any(src.glob("*.safetensors")) or None, trust_remote_code=False
    )
    processor = AutoProcessor.from_pretrained(src, trust_remote_code=False)
    yield "writing"
    with staged_folder(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        check()  # the weights are the long part
        processor.save_pretrained(tmp)
        for name in ("README.md", "tingxie_card.json", "calibration.json"):
            if (src / name).is_file():
                shutil.copy2(src / name, tmp / name)
        if (src / "lm").is_dir():
            shutil.copytree(src / "lm", tmp / "lm")
        check()
    yield ExportResult(out, "hf", "none")


def _export_adapter(
    job: Path, out: Path, check: Callable[[], None]
) -> Iterator[Stage | ExportResult]:
    from engine.atomic import staged_folder
    from engine.registry import WHISPER, family_of

    adapter = job / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        # A Whisper folder has no Hugging Face export to send its owner to instead.
        code = "export.no_adapter_whisper" if family_of(job) is WHISPER else "export.no_adapter"
        raise TingxieError(code, path=job)
    yield "writing"
    with staged_folder(out) as tmp:
        shutil.copytree(adapter, tmp, dirs_exist_ok=True)
        check()
    yield ExportResult(out, "adapter", "none")
