"""Saving tuned models: the merged checkpoint (Hugging Face layout, safetensors, processor, a
short model card) and the LoRA adapter, each written to a temporary folder and moved into place
so a crash never leaves a half-written model where a good one was."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import reprlib
import shutil
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from engine.atomic import atomic_folder, atomic_write_text
from engine.decode import CtcVocab
from engine.lm import LM_FOLDER, add_domain_lm, decoder_chars
from engine.model import ModelLoadError, resolve_model

__all__ = [
    "ADAPTER_NOTE",
    "CARD_FILE",
    "ModelCard",
    "adapter_head_size",
    "adapter_usage",
    "base_folder",
    "describe_adapter",
    "read_card",
    "record_problem",
    "save_adapter",
    "save_merged",
]

log = logging.getLogger("tingxie.export")

# The card's values as JSON beside README.md, for programs (the app's list of tuned models).
CARD_FILE = "tingxie_card.json"
# Beside a CTC adapter: the size of the CTC head it saves whole, one output per token of the
# vocab.json beside it. A job that grew the vocabulary grew the head, and peft puts the adapter
# on a base model only once that base has a head of this size (peft resizes nothing).
ADAPTER_NOTE = "tingxie_adapter.json"
ADAPTER_HEADING = "## Loading this adapter"


@dataclass(frozen=True, slots=True)
class ModelCard:
    """What the README.md of a tuned model says about it."""

    base_model: str
    method: str
    steps: int
    train_examples: int
    train_seconds: float
    heldout_examples: int
    cer_before: float | None
    cer_after: float | None
    data: str
    added_chars: str = ""
    normalization: tuple[str, ...] = ()
    family: str = "ctc"  # "whisper": a CTranslate2 folder (engine.tune.whisper_job)
    # What became of the confidence calibration (engine.tune.evaluate.calibration_outcome);
    # empty where no calibration was attempted (an adapter, a card written before the fit).
    calibration: str = ""
    # The held-out rows that measured cer_before and cer_after (engine.tune.data.heldout_shares),
    # and the others, that chose the saved step: 0 when none did (too few held out to split, or
    # a Whisper job, measured once on its last step: the last step is saved). cer_rows is None
    # in cards of versions before the split, whose figures were measured on the rows that
    # chose the step.
    cer_rows: int | None = None
    selection_rows: int = 0

    def cer_line(self) -> str:
        """The card's line on the held-out CER, saying which rows measured it (`cer_rows`)."""

        def pct(v: float | None) -> str:
            return "not measured" if v is None else f"{100 * v:.2f} %"

        line = f"- held-out CER before: {pct(self.cer_before)}, after: {pct(self.cer_after)}"
        if self.cer_rows is None or self.cer_after is None:
            return line
        chosen = (
            f"{self.selection_rows} other held-out rows chose it"
            if self.selection_rows
            else "none chose it: the last step's model is saved"
        )
        return f"{line}, on {self.cer_rows} rows not used to choose the checkpoint ({chosen})"

    def render(self) -> str:
        lines = [
            "---",
            "library_name: " + ("ctranslate2" if self.family == "whisper" else "transformers"),
            "pipeline_tag: automatic-speech-recognition",
            "language: zh",
            f"tags: [tingxie, {self.family}]",
            "---",
            "# Tuned with Tingxie (听写)",
            "",
            f"- base model: `{self.base_model}`",
            f"- method: {self.method}, {self.steps} steps",
            f"- data: `{self.data}` — {self.train_examples} training utterances "
            f"({self.train_seconds / 60:.1f} min), {self.heldout_examples} held out",
            self.cer_line(),
        ]
        if self.added_chars:
            lines.append(f"- characters added to the vocabulary: {self.added_chars}")
        if self.normalization:
            lines.append("- transcript normalization: " + "; ".join(self.normalization))
        if self.calibration:
            lines.append(f"- confidence calibration: {self.calibration}")
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> None:
        """README.md for people and CARD_FILE for programs (each replaced whole: a card is
        written again into a saved model once its calibration is fitted)."""
        atomic_write_text(folder / "README.md", self.render())
        record = dataclasses.asdict(self)
        atomic_write_text(folder / CARD_FILE, json.dumps(record, ensure_ascii=False))


# The Python types of a JSON value each declared type of a saved record accepts. bool is left
# out of the numbers (Python counts True an int; the card never writes one for a figure).
_JSON_TYPES: dict[Any, tuple[type, ...]] = {
    str: (str,),
    int: (int,),
    float: (int, float),
    type(None): (type(None),),
}


def _fits(value: Any, hint: Any) -> bool:
    """Whether a value read from JSON is of the declared type `hint`: str, int, float (finite),
    None, a union of them, or tuple[X, ...] (a JSON list)."""
    if get_origin(hint) is tuple:
        return isinstance(value, list) and all(_fits(v, get_args(hint)[0]) for v in value)
    if get_origin(hint) in (Union, types.UnionType):
        return any(_fits(value, h) for h in get_args(hint))
    if isinstance(value, bool) or not isinstance(value, _JSON_TYPES[hint]):
        return False
    return not isinstance(value, float) or math.isfinite(value)


def record_problem(record: Mapping[str, Any], cls: type) -> str | None:
    """What keeps `record`, read from a JSON file, from being a `cls` (a dataclass): a field
    it lacks (one without a default), or the first value not of its field's declared type
    (`_fits`); None when it can be one. A dataclass checks nothing itself: a card's
    "cer_before": "0.25" failed only where it was formatted, which kept the app's window
    from opening."""
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.name not in record:
            if required:
                return f"{f.name} is missing"
        elif not _fits(record[f.name], hints[f.name]):
            return f"{f.name} is {reprlib.repr(record[f.name])}, where {f.type} belongs"
    return None


def read_card(folder: Path) -> ModelCard | None:
    """The card a tuned model was saved with; None for other checkpoints or an unreadable one
    (not JSON, or a field of the wrong type: `record_problem`, logged with the file). A card
    from a newer Tingxie is read for the fields this one knows (the others are left out), and
    one saved without the CER figures (not measured) reads them as None."""
    path = Path(folder) / CARD_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in dataclasses.fields(ModelCard)}
        record = {"cer_before": None, "cer_after": None} | {
            k: v for k, v in record.items() if k in known
        }
    except (OSError, ValueError, AttributeError):  # AttributeError: JSON but no object
        return None
    problem = record_problem(record, ModelCard)
    if problem is not None:
        log.warning("%s: %s; the card is not used until that field is corrected", path, problem)
        return None
    return ModelCard(**record | {"normalization": tuple(record.get("normalization", ()))})


def base_folder(base_model: str) -> Path | None:
    """The base model's folder on this machine: the card names it as the job did, a folder or
    a Hub id (found in the Hugging Face cache, where tuning loaded it from); None when neither
    is here."""
    folder = Path(base_model).expanduser()
    if folder.is_dir():  # as it is: its lm/ is wanted, not a check that it loads
        return folder
    try:
        return resolve_model(base_model, local_files_only=True)
    except ModelLoadError:
        return None


def save_merged(
    model, processor, target: Path, card: ModelCard, lm_text: Sequence[str] = ()
) -> Path:
    """The plain checkpoint `engine.model.load_model` loads: weights, config, processor, card,
    and the base model's language model (lm/, engine.lm) when it has one, given a domain
    n-gram of `lm_text` (the training transcripts; engine.lm.add_domain_lm). A peft model is
    merged first (its adapters folded into the base weights)."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    base = base_folder(card.base_model)

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
        processor.feature_extractor.save_pretrained(tmp)  # preprocessor_config.json
        card.write(tmp)
        if base is not None and (base / LM_FOLDER).is_dir():
            shutil.copytree(base / LM_FOLDER, tmp / LM_FOLDER)
            if lm_text:
                v = CtcVocab.from_tokenizer(processor.tokenizer)
                chars = decoder_chars(v.tokens, v.blank_id, v.special_ids, v.word_delimiter)
                add_domain_lm(tmp / LM_FOLDER, lm_text, chars)

    log.info("saving merged model to %s", target)
    return atomic_folder(target, write)


def save_adapter(peft_model, processor, target: Path, card: ModelCard) -> Path:
    """The LoRA adapter (with the trained CTC head) and the processor it decodes with."""

    def write(tmp: Path) -> None:
        # The CTC head, which holds the vocabulary, is saved whole (modules_to_save). Left to
        # "auto", peft sees a grown vocabulary and asks the model for its input embeddings,
        # which a wav2vec2-family model does not have (NotImplementedError after the whole job).
        peft_model.save_pretrained(tmp, safe_serialization=True, save_embedding_layers=False)
        processor.save_pretrained(tmp)
        card.write(tmp)
        describe_adapter(tmp)

    log.info("saving adapter to %s", target)
    return atomic_folder(target, write)


def adapter_head_size(folder: Path) -> int | None:
    """The outputs of the CTC head an adapter saves whole (peft's modules_to_save); None where
    it holds none (a Whisper adapter keeps its base's head) or its weights cannot be read."""
    from engine.model import _tensor_header
    from engine.registry import FAMILIES

    try:
        header = _tensor_header(folder / "adapter_model.safetensors") or {}
    except ModelLoadError:
        return None
    heads = {f"base_model.model.{f.head}.weight" for f in FAMILIES.values()}
    shapes = [header[name].get("shape") or [None] for name in heads & header.keys()]
    return next((s[0] for s in shapes if isinstance(s[0], int)), None)


def adapter_usage(base: str, size: int) -> str:
    """The model card's section on putting an adapter whose CTC head has `size` outputs on
    `base` (named as the card names it): the base is loaded with that head size first, which a
    grown vocabulary needs (peft refuses a head of another size) and any other leaves as it
    was."""
    return f"""{ADAPTER_HEADING}

Its CTC head has {size} outputs, one for each token of vocab.json ({ADAPTER_NOTE} says so
for programs). Where tuning added characters, the base model's head is smaller: load the
base with this size, then the adapter, and decode with this folder's processor.

```python
from peft import PeftModel
from transformers import AutoModelForCTC, AutoProcessor

base = AutoModelForCTC.from_pretrained(
    "{base}", vocab_size={size}, ignore_mismatched_sizes=True
)
model = PeftModel.from_pretrained(base, "path/to/this/adapter").eval()
processor = AutoProcessor.from_pretrained("path/to/this/adapter")
```
"""


def describe_adapter(folder: Path) -> None:
    """Write ADAPTER_NOTE and the README's loading section (`adapter_usage`, under the card)
    into an adapter folder that carries a CTC head (none where it carries none); a README that
    has the section already keeps it as it is. The base is named as adapter_config.json names
    it."""
    size = adapter_head_size(folder)
    if size is None:
        return
    try:
        config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
        base = str(config.get("base_model_name_or_path") or "the/base-model")
    except (OSError, ValueError, AttributeError):  # AttributeError: JSON but no object
        base = "the/base-model"
    load_with = {"vocab_size": size, "ignore_mismatched_sizes": True}
    note = {"vocab_size": size, "vocabulary": "vocab.json", "load_base_with": load_with}
    atomic_write_text(folder / ADAPTER_NOTE, json.dumps(note, indent=2) + "\n")
    readme = folder / "README.md"
    card = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    if ADAPTER_HEADING not in card:
        atomic_write_text(readme, card + ("\n" if card else "") + adapter_usage(base, size))
