"""A model in another form — Hugging Face folder, LoRA adapter, ONNX (fp32 / int8) — checked
before it is called done. One implementation for `tingxie-cli export` and the app's Export
dialog: `iter_export` yields each stage as it begins and ends with an `ExportResult`.

Everything is written into a temporary folder (`engine.atomic.staged_into`: inside the output
folder when it exists, which is never replaced, else beside it) and put in place only once it is
complete and checked, so a failure or a cancel (the `cancel` event, looked at between stages)
leaves nothing half-written and the folder as it was. An ONNX export whose parity check fails is
kept apart, under a name that says so (`OUT.parity-failed`), never as OUT.

It sits in the tuning wing because it reads check manifests (`engine.tune.data`) and the
adapters tuning jobs write; the ONNX writer and the parity measure it calls are inference
(`engine.export_onnx`).
"""

from __future__ import annotations

import contextlib
import importlib.util
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
    from engine.atomic import Staging

    from .data import Example, ValidationReport

__all__ = [
    "ExportCancelled",
    "ExportOptions",
    "ExportResult",
    "ExportStage",
    "adapter_folder",
    "check_rows",
    "export_stages",
    "export_target",
    "iter_export",
    "model_folder",
    "onnx_missing",
    "read_check_manifest",
    "reference_audio",
    "source_card",
]

Format = Literal["hf", "adapter", "onnx"]
Quantize = Literal["none", "int8"]
FORMATS: tuple[Format, ...] = ("hf", "adapter", "onnx")
# The heading of the tuned model's own card inside an ONNX export's README.md (its lines are
# not the export's figures: engine.tune.hub words them from tingxie_card.json).
TUNING_HEADING = "## Tuned with Tingxie"
# The heading of the source model's own card (a Hub model's, the demo's) inside an ONNX
# export's README.md: its license, credits and warnings stay with the export.
SOURCE_HEADING = "## Source model card"
_STATED = ("license", "base_model")  # the source card's metadata an export's card keeps
# What an ONNX export needs beyond PyTorch (pyproject's `onnx` extra): the graph format, the
# exporter's graph builder, and the runtime it is quantized and checked with.
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")


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


def onnx_missing() -> list[str]:
    """The packages of an ONNX export (ONNX_PACKAGES) not installed here: told without importing
    them, so that an export is refused, and the app greys ONNX out, before a model loads."""
    return [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]


def adapter_folder(source: str | os.PathLike[str]) -> Path | None:
    """The LoRA adapter `source` stands for: a tuning job's adapter/, a folder holding
    adapter_config.json itself, or the adapter/ beside a job's model/ (the folder *Use this
    model* loads, which the Export dialog then names). None when there is none."""
    folder = Path(source).expanduser()
    candidates = [folder / "adapter", folder]
    if folder.name == "model":
        candidates.append(folder.parent / "adapter")
    return next((c for c in candidates if (c / "adapter_config.json").is_file()), None)


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
    DatasetError when the manifest cannot be read, export.check_no_rows when it holds no row,
    export.check_none_usable when none of those rows is usable (naming the first few; its
    `report` lists them all)."""
    from .data import DatasetError, ValidationOptions, from_manifest, validate

    path = Path(manifest).expanduser()
    dataset = from_manifest(path)
    dataset.examples = dataset.examples[:limit]
    # Any length will do: the check runs a clip in the chunks `transcribe` would.
    anything = ValidationOptions(min_seconds=0.0, max_seconds=math.inf, frame_seconds=None)
    try:
        return validate(dataset, None, anything)
    except DatasetError as e:  # worded for a check manifest, not for training data
        if e.code == "dataset.no_rows":
            raise DatasetError("export.check_no_rows", path=path) from e
        if e.code != "dataset.none_usable" or e.report is None:
            raise
        error = DatasetError(
            "export.check_none_usable",
            path=path,
            total=e.report.total,
            rows=_rows_line(e.report),
        )
        error.report = e.report
        raise error from e


def _rows_line(report: ValidationReport, shown: int = 3) -> str:
    """The first rows left out, each with why ("check.tsv:2: a.wav does not exist; …")."""
    skipped = [f for f in report.findings if f.skipped]
    line = "; ".join(f"{f.origin}: {f.detail}" for f in skipped[:shown])
    return line + (f"; and {len(skipped) - shown} more" if len(skipped) > shown else "")


def check_rows(manifest: Path, limit: int) -> tuple[list[np.ndarray], list[str]]:
    """The audio and reference texts (as written: `measure_parity` normalizes them as it does
    the model's) of the usable rows among a manifest's first `limit` (`read_check_manifest`)."""
    audio, references = _check_audio(read_check_manifest(manifest, limit).kept)
    return list(audio), references


def _check_audio(examples: Sequence[Example]) -> tuple[Iterator[np.ndarray], list[str]]:
    """The rows' audio, each read as the check reaches it (a long recording is not held beside
    the others), and their texts."""
    from .data import load_example_audio

    return (load_example_audio(e) for e in examples), [e.text for e in examples]


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
    empty, else a new subfolder named after the model and format inside it (a chosen folder
    holding other files is never written over). A symlink is followed: the export lands where
    it points. TingxieError export.target_exists when that subfolder exists already and holds
    files, export.target_is_file when the chosen path (or a folder above it) is a file,
    export.not_writable when nothing can be written where the export would go, and
    export.bad_path when the system refuses the path itself (a name too long): all found here,
    before a model is loaded."""
    from engine.atomic import holds_files

    # realpath: "." gets a name, and a link is not where the files go
    chosen = Path(os.path.realpath(Path(chosen).expanduser()))
    try:
        if chosen.exists() and not chosen.is_dir():
            raise TingxieError("export.target_is_file", path=chosen)
        if not chosen.is_dir() or not holds_files(chosen):
            target = chosen
        else:
            suffix = "onnx-int8" if options.quantize == "int8" else options.format
            name = Path(str(source).rstrip("/\\")).name or "model"
            target = Path(os.path.realpath(chosen / f"{name}-{suffix}"))
            if target.exists() and not target.is_dir():
                raise TingxieError("export.target_is_file", path=target)
            if target.is_dir() and holds_files(target):
                raise TingxieError("export.target_exists", path=target)
        _check_writable(target, chosen)
    except OSError as e:  # the system's reason, in its words (a name too long, no access)
        raise TingxieError("export.bad_path", path=chosen, detail=e.strerror or e) from e
    return target


def _check_writable(target: Path, chosen: Path) -> None:
    """The export is staged inside `target` when it exists (`engine.atomic.staged_into`), else
    beside it: that folder (or the nearest one above that exists, where the missing ones will
    be made) must take a file. A scratch file is written and removed to find out (permissions
    alone do not say: a read-only mount, an immutable folder, root)."""
    import tempfile

    folder = target if target.is_dir() else target.parent
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
    """What cannot be exported, found before anything is loaded: no model named (an empty
    field), ONNX without the packages it needs, an ONNX export as the source (no PyTorch
    weights to read), or a family the format does not apply to (Whisper)."""
    from engine.registry import WHISPER, family_of, features_of, is_onnx_export

    if not source.strip():
        raise TingxieError("export.no_model")
    if options.format == "onnx" and (missing := onnx_missing()):
        raise TingxieError("export.onnx_missing", packages=", ".join(missing))
    source = model_folder(source)
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
    """Write `source` (a folder, a Hub id, or a tuning job's output folder) to `out` (new or
    empty: `export_target`; its files appear once complete, and none already there is written
    over) in `options.format`; the last item is the `ExportResult` (its `out` is where a failed
    ONNX export was kept instead). Setting `cancel` (from any thread) stops the export at the
    next stage boundary with `ExportCancelled`."""
    out = Path(out)

    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise ExportCancelled("export.cancelled", path=out)

    _check_source(str(source), options)
    # What the export is checked on, read before anything loads: a manifest without a usable
    # row is refused in a second, not after the model was written.
    checked = read_check_manifest(options.check, options.check_limit) if options.check else None
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
    from engine.atomic import staged_into
    from engine.export_onnx import iter_write_onnx, measure_parity
    from engine.model import LoadOptions, load_model
    from engine.onnx import EXPORT_CARD

    # Written, checked and given its card in the staging folder: only an export that passed
    # is moved into place, one that failed is kept apart (`_failed_place`).
    with staged_into(out) as staging:
        tmp = staging.folder
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
        # The source's card, copied with the export (a tuned model's is its tuning lines).
        metadata, own = source_card(tmp / "README.md")
        if (tmp / "tingxie_card.json").is_file():
            metadata, own = {}, ""
        stated = {k: v for k, v in metadata.items() if k in _STATED and isinstance(v, str)}
        card = [
            "---",
            *(f"{key}: {value}" for key, value in stated.items()),
            "library_name: onnx",
            "pipeline_tag: automatic-speech-recognition",
            "language: zh",
            "tags: [tingxie, ctc, onnx]",
            "---",
            f"{EXPORT_CARD} (听写)",
            "",
            f"- source: `{source}`",
            "- input `input_values` (batch, samples) at 16 kHz, normalized per utterance as the "
            "processor does; output `logits` (batch, frames, vocabulary)",
            *lines,
            *_tuning_lines(tmp),
            *(["", SOURCE_HEADING, "", own] if own else []),
        ]
        (tmp / "README.md").write_text("\n".join(card) + "\n", encoding="utf-8")
        del exported  # its session may hold model.onnx open (Windows refuses such a move)
        check()
        passed = parity.passed(options.quantize)
        if not passed:
            staging.target = _failed_place(staging)
    yield ExportResult(
        staging.target,
        "onnx",
        options.quantize,
        tuple(line.removeprefix("- ") for line in lines),
        passed,
    )


def _failed_place(staging: Staging) -> Path:
    """Where an export whose parity check failed is kept instead of its target: beside its
    staging folder, named after the target with .parity-failed (a number added when that is
    taken), so that it is neither taken for a good export nor in the way of the next try."""
    base = staging.folder.parent / f"{staging.target.name}.parity-failed"
    place, n = base, 1
    while os.path.lexists(place):
        n += 1
        place = base.with_name(f"{base.name}-{n}")
    return place


def source_card(readme: Path) -> tuple[dict, str]:
    """A model card's metadata (its front matter) and its text below it; empty when there is
    none or it cannot be read. Front matter that is no YAML gives no metadata and the whole
    file as its text (its warnings and credits kept), not an error: the Share dialog would
    not open."""
    import yaml
    from huggingface_hub import ModelCard

    try:
        text = readme.read_text(encoding="utf-8")
        found = ModelCard(text, ignore_metadata_errors=True)
    except yaml.YAMLError:
        return {}, text.strip()
    except (OSError, ValueError):
        return {}, ""
    return found.data.to_dict(), found.text.strip()


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
    from transformers import AutoProcessor

    from engine.atomic import staged_into
    from engine.model import check_checkpoint, check_json, ctc_model

    yield "loading"
    src = check_checkpoint(source, allow_pickle)
    model = ctc_model(src)
    language = check_json(src)  # of a per-language vocab.json (MMS): the one loading reads
    processor = AutoProcessor.from_pretrained(
        src, trust_remote_code=False, **({"target_lang": language} if language else {})
    )
    yield "writing"
    with staged_into(out) as staging:
        tmp = staging.folder
        model.save_pretrained(tmp, safe_serialization=True)
        check()  # the weights are the long part
        processor.save_pretrained(tmp)
        # transformers 5 nests the feature extractor in processor_config.json; 4.x (and
        # Tingxie's light ONNX loading) read preprocessor_config.json, as save_merged writes.
        processor.feature_extractor.save_pretrained(tmp)
        for name in ("README.md", "tingxie_card.json", "calibration.json"):
            if (src / name).is_file():
                shutil.copy2(src / name, tmp / name)
        if not (tmp / "README.md").is_file():
            _write_hf_card(tmp, source)
        if (src / "lm").is_dir():
            shutil.copytree(src / "lm", tmp / "lm")
        check()
    yield ExportResult(out, "hf", "none")


def _write_hf_card(folder: Path, source: str) -> None:
    """The card of an hf export whose source has none: what it is and where it came from (a
    local folder by its name only: the card may be shared, its path here means nothing)."""
    name = Path(source).expanduser().name if Path(source).expanduser().exists() else source
    card = [
        "---",
        "library_name: transformers",
        "pipeline_tag: automatic-speech-recognition",
        "language: zh",
        "tags: [tingxie, ctc]",
        "---",
        "# Hugging Face export made with Tingxie (听写)",
        "",
        f"- source: `{name}`",
        "- safetensors weights, config and processor (AutoModelForCTC, AutoProcessor)",
    ]
    (folder / "README.md").write_text("\n".join(card) + "\n", encoding="utf-8")


def _export_adapter(
    source: Path, out: Path, check: Callable[[], None]
) -> Iterator[Stage | ExportResult]:
    from engine.atomic import staged_into
    from engine.registry import WHISPER, family_of

    from .export import describe_adapter

    adapter = adapter_folder(source)
    if adapter is None:
        # A Whisper folder has no Hugging Face export to send its owner to instead.
        code = "export.no_adapter_whisper" if family_of(source) is WHISPER else "export.no_adapter"
        raise TingxieError(code, path=source)
    yield "writing"
    with staged_into(out) as staging:
        shutil.copytree(adapter, staging.folder, dirs_exist_ok=True)
        describe_adapter(staging.folder)  # an adapter saved before the note: it gains one
        check()
    yield ExportResult(out, "adapter", "none")
