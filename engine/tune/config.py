"""What a tuning job is: `TuneConfig` (saved as YAML or JSON, read by the CLI and the app) and
its presets. Imports no torch, so the app and `tune --help` can read and write jobs cheaply; the
loop that runs one is `engine.tune.loop.run_job`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

from engine.errors import TingxieError
from engine.normalize import NormalizeOptions

__all__ = [
    "PRESETS",
    "SettingError",
    "TuneConfig",
    "settings_help",
]

log = logging.getLogger("tingxie.train")

Method = Literal["lora", "partial", "full"]
Preset = Literal["quick", "balanced", "thorough"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Device = Literal["auto", "cpu", "cuda"]

# What each preset sets when the config leaves the value empty (None). Learning rates are per
# method: adapters tolerate (and need) larger steps than updating the pretrained weights.
PRESETS: dict[str, dict[str, Any]] = {
    "quick": dict(
        steps=200, lora_rank=8, mask_time_prob=0.05,
        learning_rate={"lora": 1e-3, "partial": 1e-4, "full": 5e-5},
    ),
    "balanced": dict(
        steps=600, lora_rank=16, mask_time_prob=0.05,
        learning_rate={"lora": 5e-4, "partial": 5e-5, "full": 3e-5},
    ),
    "thorough": dict(
        steps=2000, lora_rank=32, mask_time_prob=0.075,
        learning_rate={"lora": 3e-4, "partial": 3e-5, "full": 2e-5},
    ),
}  # fmt: skip


_MISSING: Any = dataclasses.MISSING


class SettingError(TingxieError, ValueError):
    """A setting given a value it cannot take, coded (engine.errors `tune.setting_*`, with the
    setting's `name` and `value`): the CLI prints the English, the app words the code in its
    own language."""


def setting(default: Any = _MISSING, help: str = "", *, factory: Any = _MISSING) -> Any:
    """A config field with its one-line meaning (read by `settings_help`, so `tune --help` and
    the app describe each setting from here, also when only bytecode is installed)."""
    return field(default=default, default_factory=factory, metadata={"help": help})


@dataclass(slots=True)
class TuneConfig:
    """A tuning job. Paths may be relative to the config file. Values left None come from the
    preset (see `resolved`); every one can be set explicitly."""

    # what to tune, on what, and where the results go
    model: str = setting(help="base checkpoint: a folder in Hugging Face layout or a Hub id")
    data: str = setting(
        help="manifest (.tsv/.csv: path,text[,start,end]; or JSON lines: an object per line with"
        " audio and text), audio+.txt folder or Common Voice"
    )
    output_dir: str = setting(
        help="a new or empty folder (a job's own, to resume it): receives checkpoints/, model/"
        " (merged) and adapter/ (LoRA)"
    )
    method: Method = setting("lora", "lora (adapters, small and safe), partial or full fine-tuning")
    preset: Preset = setting("balanced", "quick / balanced / thorough: fills the values left empty")
    # preset-controlled (None = from the preset)
    steps: int | None = setting(None, "optimizer steps")
    max_minutes: float | None = setting(
        None,
        "time limit: the job's wall time in minutes (set-up and finish included; a resumed job"
        " counts on from where it stopped): its steps stop early enough for the last evaluation"
        " and checkpoint, the tuned model's write and the calibration refit, as timed so far, to"
        " end by then, the learning rate reaching 0 at the last step. Empty = no limit",
    )
    learning_rate: float | None = setting(
        None, "peak, reached after warmup, then linear decay to 0"
    )
    lora_rank: int | None = setting(None, "LoRA adapter rank (capacity)")
    mask_time_prob: float | None = setting(None, "SpecAugment: share of frames masked in time")
    # method details
    lora_alpha: float | None = setting(None, "None = 2 × rank")
    lora_dropout: float = setting(0.05, "dropout on the LoRA path")
    freeze_layers: int | None = setting(
        None, "partial: lower N transformer layers frozen (None = half)"
    )
    freeze_feature_encoder: bool | None = setting(
        None, "None = frozen for lora/partial, trained for full"
    )
    allow_pickle: bool = setting(
        False,
        "load a base model whose only weights are pytorch_model.bin (a pickle, which can run"
        " code): only for a source you trust",
    )
    extend_vocab: bool = setting(
        False, "add characters the vocabulary lacks (else such rows are skipped)"
    )
    domain_text: str | None = setting(
        None,
        "text file (one sentence a line) for the tuned model's domain n-gram, when its base has"
        " an LM; empty = the training transcripts. Give the domain's own text when general"
        " speech is mixed in against forgetting, so that its sentences do not dilute it",
    )
    # optimisation
    warmup_steps: int | None = setting(None, "None = 10 % of steps")
    weight_decay: float = setting(0.0, "AdamW decoupled weight decay")
    max_grad_norm: float = setting(1.0, "gradient clipping (0 = off)")
    batch_seconds: float = setting(
        60.0, "audio per optimizer step (gradient accumulation reaches it)"
    )
    micro_batch_seconds: float = setting(20.0, "padded audio per forward pass (bounds memory)")
    mask_time_length: int = setting(10, "frames per time mask (10 × 20 ms)")
    mask_feature_prob: float = setting(0.0, "SpecAugment over hidden channels")
    layerdrop: float = setting(0.0, "skip whole transformer layers at random while training")
    seed: int = setting(0, "fixes initialisation, data order and masking")
    # hardware
    device: Device = setting("auto", "auto: a CUDA GPU when present")
    precision: Precision = setting("auto", "auto: bf16 (fp16 on older GPUs) on CUDA, fp32 on CPU")
    gradient_checkpointing: bool = setting(
        False, "recompute activations: less memory, ~30 % slower"
    )
    cache_features: bool = setting(
        True,
        "frozen feature encoder: compute its output once per utterance and keep it on disk"
        " in output_dir/cache (~3x the decoded audio) instead of running the convolutions"
        " every step",
    )
    # evaluation, checkpoints
    heldout_fraction: float = setting(
        0.1, "share of utterances held out (by hash of the utterance id)"
    )
    eval_every: int = setting(
        100, "steps between held-out CER evaluations (0 = before and after only)"
    )
    save_every: int = setting(100, "steps between checkpoints (a cancel always saves one)")
    keep_checkpoints: int = setting(2, "most recent checkpoints kept (the best is kept as well)")
    # data checks
    min_seconds: float = setting(0.3, "shorter utterances are skipped")
    max_seconds: float = setting(30.0, "longer utterances are skipped")
    normalize: NormalizeOptions = setting(
        factory=NormalizeOptions,
        help="transcript rewrites (engine.normalize): half_width, remove_punctuation,"
        " remove_spaces, lowercase, to_simplified — all true by default",
    )

    def __post_init__(self) -> None:
        self.normalize = _normalize_options(self.normalize)
        for name, annotation in _annotations(TuneConfig).items():
            if name != "normalize":
                setattr(self, name, _setting(name, getattr(self, name), annotation))
        _check_choice("method", self.method, Method.__args__)
        _check_choice("preset", self.preset, Preset.__args__)
        _check_choice("precision", self.precision, Precision.__args__)
        _check_choice("device", self.device, Device.__args__)
        for rule in _RANGES:
            for name in rule.names:
                value = getattr(self, name)
                if value is not None and not rule.allowed(value):
                    raise SettingError(rule.code, name=name, value=value)
        if self.min_seconds > self.max_seconds:
            raise SettingError(
                "tune.setting_min_above_max",
                min_seconds=self.min_seconds,
                max_seconds=self.max_seconds,
            )
        if self.micro_batch_seconds < self.max_seconds and self.micro_batch_seconds < 1:
            raise SettingError("tune.setting_micro_batch", name="micro_batch_seconds")

    def resolved(self) -> TuneConfig:
        """A copy with every preset-controlled and derived value filled in (what runs)."""
        preset = PRESETS[self.preset]
        steps = self.steps or preset["steps"]
        rank = self.lora_rank or preset["lora_rank"]
        return dataclasses.replace(
            self,
            steps=steps,
            learning_rate=self.learning_rate or preset["learning_rate"][self.method],
            lora_rank=rank,
            mask_time_prob=(
                preset["mask_time_prob"] if self.mask_time_prob is None else self.mask_time_prob
            ),
            lora_alpha=self.lora_alpha or 2.0 * rank,
            warmup_steps=(max(1, steps // 10) if self.warmup_steps is None else self.warmup_steps),
            freeze_feature_encoder=(
                self.method != "full"
                if self.freeze_feature_encoder is None
                else self.freeze_feature_encoder
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["normalize"] = dataclasses.asdict(self.normalize)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Path | None = None) -> TuneConfig:
        """Build from a mapping; `~` in the model/data/output_dir/domain_text paths is the home
        folder, and relative ones resolve against `base` (see `_path_setting`)."""
        unknown = set(data) - set(_field_names(cls))
        if unknown:
            raise ValueError(
                f"unknown setting(s) {', '.join(sorted(unknown))}; "
                f"allowed: {', '.join(_field_names(cls))}"
            )
        missing = {"model", "data", "output_dir"} - set(data)
        if missing:
            raise ValueError(f"missing setting(s) {', '.join(sorted(missing))}")
        data = dict(data)
        for key in PATH_SETTINGS:
            if data.get(key) is not None:  # domain_text: optional
                data[key] = _path_setting(key, data[key], base)
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> TuneConfig:
        """Read a YAML (.yaml/.yml) or JSON config file."""
        path = Path(path)
        try:
            # utf-8-sig: Windows Notepad (before 2019) began a UTF-8 file with a byte-order mark
            text = path.read_text(encoding="utf-8-sig")
            data = _parse(text, path.suffix.lower())
        except OSError as e:
            raise ValueError(f"{path}: cannot read the config ({e.strerror})") from e
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from e
        except ValueError as e:  # not YAML / JSON: _parse says where
            raise ValueError(f"{path}: {e}") from e
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of setting: value")
        try:
            return cls.from_dict(data, base=path.resolve().parent)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from e

    def save(self, path: str | Path) -> Path:
        """Write the config (YAML or JSON by suffix) atomically."""
        from engine.atomic import atomic_write_text

        path = Path(path)
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            text = yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False)
        else:
            text = json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
        return path


def settings_help() -> list[tuple[str, str, str]]:
    """(name, default, meaning) for every TuneConfig setting, from each field's metadata, so each
    option is documented once (on the field) and shown by `tune --help` and the app."""
    rows = []
    for f in dataclasses.fields(TuneConfig):
        if f.default is not dataclasses.MISSING:
            default = repr(f.default) if isinstance(f.default, str) else str(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = "see below"
        else:
            default = "required"
        rows.append((f.name, default, f.metadata.get("help", "")))
    return rows


# The settings that name a file or folder (`model` may be a Hub id instead).
PATH_SETTINGS = ("model", "data", "output_dir", "domain_text")
_ONE_SOURCE = (
    "data: one source per job (a manifest, a folder of audio + .txt, or a Common Voice folder),"
    " not a list; to train on several, combine them into one manifest (path<TAB>text rows with"
    " absolute paths) and give that, as the app's Tune page does with the sources checked on it"
    " (it writes them into data.tsv in the job folder)"
)


def _path_setting(name: str, value: Any, base: Path | None) -> str:
    """A path setting as the job opens it: `~` expanded, and a relative path taken from `base`
    (the config file's folder) when there is one — a relative `model` only where that folder
    holds it, else it is a Hub id. Typed first: str() of a YAML list or number would be a
    path that exists nowhere."""
    if name == "data" and isinstance(value, list | tuple):
        raise ValueError(_ONE_SOURCE)
    path = Path(_typed(name, value, str)).expanduser()
    if path.is_absolute():
        return str(path)
    if base is None or (name == "model" and not (base / path).exists()):
        return value
    return os.path.normpath(base / path)  # ".../jobs/../data" as ".../data"


def _field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


class _Range(NamedTuple):
    """Numeric settings whose values must pass `allowed`; one that does not is SettingError
    `code`."""

    code: str
    names: tuple[str, ...]
    allowed: Callable[[Any], bool]


# The numeric settings' ranges, checked once their types are (an empty one is left out: the
# preset fills it, or it means "off").
_RANGES = (
    _Range("tune.setting_at_least_one",
           ("steps", "lora_rank", "keep_checkpoints", "mask_time_length"), lambda v: v >= 1),
    _Range("tune.setting_not_negative",
           ("seed", "warmup_steps", "freeze_layers", "eval_every", "save_every", "weight_decay",
            "max_grad_norm", "min_seconds"), lambda v: v >= 0),
    _Range("tune.setting_positive",
           ("learning_rate", "lora_alpha", "max_minutes", "batch_seconds", "micro_batch_seconds",
            "max_seconds"), lambda v: v > 0),
    _Range("tune.setting_fraction",
           ("mask_time_prob", "mask_feature_prob", "layerdrop", "lora_dropout",
            "heldout_fraction"), lambda v: 0 <= v < 1),
)  # fmt: skip


@cache
def _annotations(cls: type) -> dict[str, Any]:
    """A dataclass's field types, resolved (this module's annotations are strings)."""
    return typing.get_type_hints(cls)


def _setting(name: str, value: Any, annotation: Any) -> Any:
    """`value` as the type a setting is annotated with (see `_typed`); empty (None, as YAML
    reads `key:` with nothing after it) only where the type allows it."""
    kinds = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
    if value is None:
        if type(None) in kinds:
            return None
        raise ValueError(
            f"{name} is empty; give {_expected(annotation)}, or leave the setting out for its "
            "default"
        )
    return _typed(name, value, kinds[0] if kinds else annotation)


def _expected(kind: Any) -> str:
    if typing.get_origin(kind) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(kind)))
    names = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}
    return names.get(kind, "a value")


def _typed(name: str, value: Any, kind: Any) -> Any:
    """`value` as `kind`: a number may be written as text ("1e-4", which YAML 1.1 reads as a
    string), a whole number as 500.0; SettingError names the setting and what it takes. A
    `Literal` is left to `_check_choice`."""
    if kind is bool or kind is str:
        if isinstance(value, kind):
            return value
        code = "tune.setting_true_or_false" if kind is bool else "tune.setting_text"
    elif kind is int or kind is float:
        number = _number(value)
        if isinstance(number, int) and kind is int:
            return number
        if number is not None:
            try:
                number = float(number)
            except OverflowError:  # a whole number past float's range
                number = math.inf
            if not math.isfinite(number):
                raise SettingError("tune.setting_finite", name=name, value=value)
            if kind is float:
                return number
            if number.is_integer():
                return int(number)
        code = "tune.setting_whole_number" if kind is int else "tune.setting_number"
    else:
        return value
    raise SettingError(code, name=name, value=value)


def _number(value: Any) -> int | float | None:
    """A number, or text that reads as one; None for anything else (true and false too)."""
    if isinstance(value, str):
        for parse in (int, float):
            with contextlib.suppress(ValueError):
                return parse(value)
        return None
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _normalize_options(value: Any) -> NormalizeOptions:
    """The normalize setting as options, from a mapping of some of them; empty (YAML's reading
    of a `normalize:` block whose lines are all commented out) is every default."""
    if isinstance(value, NormalizeOptions):
        return value
    allowed = _field_names(NormalizeOptions)
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValueError(
            f"normalize={value!r}: expected a mapping of {', '.join(allowed)} to true or false"
        )
    unknown = sorted(map(str, set(value) - set(allowed)))
    if unknown:
        raise ValueError(
            f"normalize: unknown key(s) {', '.join(unknown)}; allowed keys are {allowed}"
        )
    kinds = _annotations(NormalizeOptions)
    return NormalizeOptions(
        **{key: _setting(f"normalize.{key}", v, kinds[key]) for key, v in value.items()}
    )


def _check_choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        choices = ", ".join(map(str, allowed))
        raise SettingError("tune.setting_choice", name=name, value=value, choices=choices)


def _parse(text: str, suffix: str) -> Any:
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"not valid YAML: {str(e).splitlines()[0]}") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON: {e}") from e
