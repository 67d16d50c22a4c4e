"""Share a model on the Hugging Face Hub: the model or LoRA adapter folder with a generated model
card, through `huggingface_hub`.

What would be uploaded is decided first (`plan_upload`: the exact files and the card), so it can
be shown, tested and checked offline. The token comes from `HF_TOKEN` or the OS keyring (the
`keyring` library, where the app's sign-in stores it); Tingxie never writes it to a file, a log
or the card.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import TingxieError
from engine.onnx import export_card_lines, parity_failure

from .export import CARD_FILE, adapter_head_size, adapter_usage, read_card
from .formats import adapter_folder

__all__ = ["KEYRING_SERVICE", "HubError", "UploadPlan", "plan_upload", "push", "resolve_token"]

KEYRING_SERVICE = "tingxie"
KEYRING_USER = "huggingface"
# What a model folder shares: weights (never pickles), configs, vocabulary, card, LM files.
# model.bin is CTranslate2's own format (a tuned Whisper model), not a pickle; any other .bin is.
# Only the folder's own files and its language model (lm/) are the model: any other subfolder
# is something else kept there (an export made into it, a second model) and is left out.
_SHARED = ("*.safetensors", "*.json", "*.onnx", "*.txt", "*.md", "lm/*", "model.bin")
_SUBFOLDERS = ("lm",)
_NEVER = ("checkpoints/*", ".*", "*/.*", "*.pt", "*.pkl")
_WEIGHTS = ("*.safetensors", "*.onnx", "model.bin")
# The JSON files that name local paths, uploaded as copies naming them as the card does: each
# field is a base model ("base": a Hub id kept, a folder by its name) or the training data
# ("data": by its file name; it is never on the Hub).
_LOCAL_PATHS = {
    CARD_FILE: {"base_model": "base", "data": "data"},
    "adapter_config.json": {"base_model_name_or_path": "base"},
}
# The HTTP libraries a Hub client may speak, whose connection errors are no OSError.
_HTTP_CLIENTS = ("httpx2", "httpx")


class HubError(TingxieError, RuntimeError):
    """The Hub could not be reached or refused the upload; the message says what to do."""


@dataclass(frozen=True, slots=True)
class UploadPlan:
    folder: Path  # the folder whose files are uploaded
    repo_id: str
    private: bool
    files: tuple[str, ...]  # paths relative to `folder`, README.md excluded
    card: str  # the README.md that is uploaded
    # subfolders of `folder` that are not uploaded ("name/"): exports or models kept inside it
    left_out: tuple[str, ...] = ()
    # (path, text) of the files of `files` uploaded as rewritten copies: local paths reduced
    # to names, as the card names them
    rewritten: tuple[tuple[str, str], ...] = ()


def _pick_folder(model_dir: Path, adapter: bool) -> Path:
    """A tuning job's output folder stands for its merged model (or, with `adapter`, its LoRA
    adapter, wherever `formats.adapter_folder` finds it: the job's model/ folder, which "Use
    this model" loads and the app offers, stands for it too); any other folder is shared as it
    is."""
    if adapter:
        found = adapter_folder(model_dir)
        if found is None:
            raise HubError("hub.no_adapter", path=model_dir)
        return found
    job = model_dir / "model"
    return job if job.is_dir() else model_dir


def _hub_id(name: str) -> bool:
    """Whether a card's base model is a Hub repository (owner/name) rather than a local folder."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if name.count("/") != 1 or Path(name).expanduser().exists():
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _public_name(name: str) -> str:
    """A Hub id as it is, a local path by its last part: its path on this machine means
    nothing on the Hub, and says who made it where (a patient's folder in a data path)."""
    return name if _hub_id(name) else Path(name).name


def _public_copy(path: Path, fields: dict[str, str]) -> str | None:
    """The JSON file at `path` with the local paths of `fields` (see `_LOCAL_PATHS`) reduced
    to names; None when it cannot be read (what it names is unknown)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    for name, kind in fields.items():
        value = record.get(name)
        if isinstance(value, str) and value:
            record[name] = _public_name(value) if kind == "base" else Path(value).name
    return json.dumps(record, ensure_ascii=False, indent=2) + "\n"


def _card(folder: Path, repo_id: str, adapter: bool) -> str:
    card = read_card(folder)
    # The metadata names a Hub repository only; a local base by its folder's name.
    hub_base = card is not None and _hub_id(card.base_model)
    base = _public_name(card.base_model) if card else ""
    kind = "adapter" if adapter else "model"
    whisper = (card is not None and card.family == "whisper") or (folder / "model.bin").is_file()
    onnx = (folder / "model.onnx").is_file()
    library = (
        "peft" if adapter else "ctranslate2" if whisper else "onnx" if onnx else "transformers"
    )
    family = "whisper" if whisper else "ctc, onnx" if onnx else "ctc"
    lines = [
        "---",
        "license: apache-2.0",
        "language: zh",
        "pipeline_tag: automatic-speech-recognition",
        f"library_name: {library}",
        *([f"base_model: {base}"] if hub_base else []),
        f"tags: [tingxie, {family}, mandarin]",
        "---",
        f"# {repo_id.split('/')[-1]}",
        "",
        f"Mandarin speech recognition {kind} shared from Tingxie (听写).",
        "",
    ]
    if card is not None:
        lines += [
            f"- base model: `{base}`" + ("" if hub_base else " (a local model)"),
            f"- method: {card.method}, {card.steps} steps",
            f"- data: {card.train_examples} training utterances "
            f"({card.train_seconds / 60:.1f} min), {card.heldout_examples} held out",
            card.cer_line(),
        ]
        if card.added_chars:
            lines.append(f"- characters added to the vocabulary: {card.added_chars}")
    lines += export_card_lines(folder)
    calibration = folder / "calibration.json"
    lines.append(
        "- confidence calibration: "
        + ("included (calibration.json)" if calibration.is_file() else "none")
    )
    lines.append("- license: Apache-2.0 (check the base model's license before publishing)")
    size = adapter_head_size(folder) if adapter else None
    if size is not None:  # a grown head needs its base loaded at its size first
        lines += ["", adapter_usage(base or "the/base-model", size).rstrip("\n")]
    return "\n".join(lines) + "\n"


def plan_upload(
    model_dir: str | os.PathLike[str], repo_id: str, *, private: bool = False, adapter: bool = False
) -> UploadPlan:
    """The exact files and card that `push` would upload: the folder's own files and its lm/,
    never another subfolder (listed in `left_out`)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise HubError("hub.bad_repo", repo_id=repo_id)
    try:  # the Hub client's own rule (no spaces, no "--"...), checked before any upload
        validate_repo_id(repo_id)
    except HFValidationError:
        raise HubError("hub.bad_repo", repo_id=repo_id) from None
    folder = _pick_folder(Path(model_dir), adapter)
    if not folder.is_dir():
        raise HubError("hub.no_folder", path=folder)
    files, left_out = [], []
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            if path.name in _SUBFOLDERS:
                candidates = sorted(p for p in path.rglob("*") if p.is_file())
            else:
                if not path.name.startswith("."):
                    left_out.append(f"{path.name}/")
                continue
        elif path.is_file():
            candidates = [path]
        else:
            continue
        for file in candidates:
            rel = file.relative_to(folder).as_posix()
            if rel == "README.md" or any(fnmatch.fnmatch(rel, n) for n in _NEVER):
                continue
            if any(fnmatch.fnmatch(rel, s) for s in _SHARED):
                files.append(rel)
    if not any(fnmatch.fnmatch(f, w) for f in files for w in _WEIGHTS):
        raise HubError("hub.no_weights", path=folder)
    rewritten = []
    for rel in [f for f in files if f in _LOCAL_PATHS]:
        text = _public_copy(folder / rel, _LOCAL_PATHS[rel])
        if text is None:  # unreadable: what it names is unknown, so it is not uploaded
            files.remove(rel)
        else:
            rewritten.append((rel, text))
    # An ONNX export whose own check failed transcribes unlike its source: not for others.
    if parity_failure(folder) is not None:
        raise HubError("hub.parity_failed", path=folder)
    card = _card(folder, repo_id, adapter)
    return UploadPlan(
        folder, repo_id, private, tuple(files), card, tuple(left_out), tuple(rewritten)
    )


def resolve_token() -> str | None:
    """HF_TOKEN, else the OS keyring; None when neither has one (or no keyring runs here)."""
    token = os.environ.get("HF_TOKEN")
    if token:
        return token
    try:
        import keyring
        from keyring.errors import KeyringError

        return keyring.get_password(KEYRING_SERVICE, KEYRING_USER)
    except (ImportError, KeyringError, RuntimeError):
        return None


def _transport_errors() -> tuple[type[Exception], ...]:
    """The errors of a connection that failed: OSError (what a requests-based Hub client
    raises), and the TransportError of httpx or httpx2, whichever is installed: the client
    speaks it since 1.0, and it is no OSError."""
    errors: list[type[Exception]] = [OSError]
    for name in _HTTP_CLIENTS:
        if importlib.util.find_spec(name) is not None:
            errors.append(importlib.import_module(name).TransportError)
    return tuple(errors)


def push(plan: UploadPlan, token: str | None, progress: Callable[[str], None] | None = None) -> str:
    """Create the repository if needed and upload the plan in one commit; returns its URL."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled

    if token is None:
        raise HubError("hub.no_token", folder=plan.folder)
    api = HfApi(token=token)
    operations = []
    rewritten = dict(plan.rewritten)
    for rel in plan.files:
        content = rewritten[rel].encode("utf-8") if rel in rewritten else str(plan.folder / rel)
        try:  # a file of the plan removed since (the folder exported again meanwhile)
            operations.append(CommitOperationAdd(path_in_repo=rel, path_or_fileobj=content))
        except ValueError as e:
            raise HubError("hub.files_changed", path=plan.folder, missing=rel) from e
    operations.append(CommitOperationAdd("README.md", plan.card.encode("utf-8")))
    try:
        url = api.create_repo(plan.repo_id, private=plan.private, exist_ok=True)
        if progress:
            progress(f"uploading {len(operations)} files to {url}")
        api.create_commit(plan.repo_id, operations, commit_message="Upload from Tingxie")
    except OfflineModeIsEnabled as e:
        raise HubError("hub.offline", folder=plan.folder, repo_id=plan.repo_id) from e
    except HfHubHTTPError as e:
        raise HubError("hub.refused", repo_id=plan.repo_id, detail=str(e).splitlines()[0]) from e
    except _transport_errors() as e:  # connection refused, DNS, timeouts
        raise HubError("hub.offline", folder=plan.folder, repo_id=plan.repo_id) from e
    except HFValidationError as e:  # a plan made without plan_upload
        raise HubError("hub.bad_repo", repo_id=plan.repo_id) from e
    except ValueError as e:  # a file changed while it was read for the upload
        raise HubError("hub.failed", repo_id=plan.repo_id, detail=e) from e
    return str(url)
