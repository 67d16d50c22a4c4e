"""Share a model on the Hugging Face Hub: the model or LoRA adapter folder with a generated model
card, through `huggingface_hub`.

What would be uploaded is decided first (`plan_upload`: the exact files and the card), so it can
be shown, tested and checked offline. The token comes from `HF_TOKEN` or the OS keyring (the
`keyring` library, where the app's sign-in stores it); Tingxie never writes it to a file, a log
or the card.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import TingxieError

from .export import read_card

__all__ = ["KEYRING_SERVICE", "HubError", "UploadPlan", "plan_upload", "push", "resolve_token"]

KEYRING_SERVICE = "tingxie"
KEYRING_USER = "huggingface"
# What a model folder shares: weights (never pickles), configs, vocabulary, card, LM files.
# model.bin is CTranslate2's own format (a tuned Whisper model), not a pickle; any other .bin is.
_SHARED = ("*.safetensors", "*.json", "*.onnx", "*.txt", "*.md", "lm/*", "model.bin")
_NEVER = ("checkpoints/*", ".*", "*/.*", "*.pt", "*.pkl")
_WEIGHTS = ("*.safetensors", "*.onnx", "model.bin")
# The first line of the card `tingxie-cli export --format onnx` writes, whose figures (precision,
# parity) the uploaded card keeps.
_ONNX_CARD = "# ONNX export made with Tingxie"


class HubError(TingxieError, RuntimeError):
    """The Hub could not be reached or refused the upload; the message says what to do."""


@dataclass(frozen=True, slots=True)
class UploadPlan:
    folder: Path  # the folder whose files are uploaded
    repo_id: str
    private: bool
    files: tuple[str, ...]  # paths relative to `folder`, README.md excluded
    card: str  # the README.md that is uploaded


def _pick_folder(model_dir: Path, adapter: bool) -> Path:
    """A tuning job's output folder stands for its merged model (or, with `adapter`, its LoRA
    adapter); any other folder is shared as it is."""
    job = model_dir / ("adapter" if adapter else "model")
    if job.is_dir():
        return job
    if adapter and not (model_dir / "adapter_config.json").is_file():
        raise HubError("hub.no_adapter", path=model_dir)
    return model_dir


def _export_lines(folder: Path) -> list[str]:
    """The figures of an ONNX export's own card (precision, parity check), or none."""
    try:
        text = (folder / "README.md").read_text(encoding="utf-8")
    except (OSError, ValueError):
        return []
    if _ONNX_CARD not in text:
        return []
    return [line for line in text.splitlines() if line.startswith("- ") and "source:" not in line]


def _card(folder: Path, repo_id: str, adapter: bool) -> str:
    card = read_card(folder)
    base = card.base_model if card else "unknown"
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
        *([f"base_model: {base}"] if card else []),
        f"tags: [tingxie, {family}, mandarin]",
        "---",
        f"# {repo_id.split('/')[-1]}",
        "",
        f"Mandarin speech recognition {kind} shared from Tingxie (听写).",
        "",
    ]
    if card is not None:

        def pct(v: float | None) -> str:
            return "not measured" if v is None else f"{100 * v:.2f} %"

        lines += [
            f"- base model: `{card.base_model}`",
            f"- method: {card.method}, {card.steps} steps",
            f"- data: {card.train_examples} training utterances "
            f"({card.train_seconds / 60:.1f} min), {card.heldout_examples} held out",
            f"- held-out CER before: {pct(card.cer_before)}, after: {pct(card.cer_after)}",
        ]
        if card.added_chars:
            lines.append(f"- characters added to the vocabulary: {card.added_chars}")
    lines += _export_lines(folder)
    calibration = folder / "calibration.json"
    lines.append(
        "- confidence calibration: "
        + ("included (calibration.json)" if calibration.is_file() else "none")
    )
    lines.append("- license: Apache-2.0 (check the base model's license before publishing)")
    return "\n".join(lines) + "\n"


def plan_upload(
    model_dir: str | os.PathLike[str], repo_id: str, *, private: bool = False, adapter: bool = False
) -> UploadPlan:
    """The exact files and card that `push` would upload."""
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise HubError("hub.bad_repo", repo_id=repo_id)
    folder = _pick_folder(Path(model_dir), adapter)
    if not folder.is_dir():
        raise HubError("hub.no_folder", path=folder)
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel == "README.md" or any(fnmatch.fnmatch(rel, n) for n in _NEVER):
            continue
        if any(fnmatch.fnmatch(rel, s) for s in _SHARED):
            files.append(rel)
    if not any(fnmatch.fnmatch(f, w) for f in files for w in _WEIGHTS):
        raise HubError("hub.no_weights", path=folder)
    # An ONNX export whose own check failed transcribes unlike its source: not for others.
    if any(line.startswith("- parity: FAILED") for line in _export_lines(folder)):
        raise HubError("hub.parity_failed", path=folder)
    return UploadPlan(folder, repo_id, private, tuple(files), _card(folder, repo_id, adapter))


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


def push(plan: UploadPlan, token: str | None, progress: Callable[[str], None] | None = None) -> str:
    """Create the repository if needed and upload the plan in one commit; returns its URL."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if token is None:
        raise HubError("hub.no_token", folder=plan.folder)
    api = HfApi(token=token)
    operations = [
        CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(plan.folder / rel))
        for rel in plan.files
    ]
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
    except OSError as e:  # connection refused, DNS, timeouts
        raise HubError("hub.offline", folder=plan.folder, repo_id=plan.repo_id) from e
    return str(url)
