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
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import TingxieError
from engine.lm import LM_CONFIG, LM_FOLDER
from engine.onnx import EXPORT_CARD, export_card_lines, parity_failure

from .export import CARD_FILE, adapter_head_size, adapter_usage, base_folder, read_card
from .formats import SOURCE_HEADING, adapter_folder, source_card

__all__ = [
    "KEYRING_SERVICE",
    "HubError",
    "ShareDefaults",
    "UploadPlan",
    "plan_upload",
    "push",
    "resolve_token",
    "share_defaults",
]

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
    # to names, as the card names them (and lm.json without the domain n-gram left out)
    rewritten: tuple[tuple[str, str], ...] = ()
    adapter: bool = False  # the LoRA adapter of `source` is shared (a peft card)
    source: Path | None = None  # the folder as chosen (a job's folder for its adapter)
    license: str | None = None  # as given, or None: the card's license is the source's
    domain_lm: bool = False  # the domain n-gram of the training text is shared (opt-in)
    # what the plan shows besides the files: the domain n-gram left out or included, an
    # unknown license
    notes: tuple[str, ...] = ()

    def command(self) -> str:
        """The `tingxie-cli push` that uploads this plan again, with every option that changes
        what is uploaded or who may see it (the offline error suggests it for later)."""
        words = ["tingxie-cli", "push", str(self.source or self.folder), self.repo_id]
        words += ["--private"] * self.private + ["--adapter"] * self.adapter
        words += ["--license", self.license] if self.license else []
        words += ["--with-domain-lm"] * self.domain_lm
        return shlex.join(words)


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


def _stated_license(folder: Path, base_model: str | None) -> str | None:
    """The license the folder's own card states, else its base model's card (found on this
    machine); None when neither states one."""
    readmes = [folder / "README.md"]
    base = base_folder(base_model) if base_model else None
    if base is not None:
        readmes.append(base / "README.md")
    for readme in readmes:
        found = source_card(readme)[0].get("license")
        if isinstance(found, str) and found.strip():
            return found.strip()
    return None


def _card(
    folder: Path, repo_id: str, adapter: bool, license: str | None, domain_lm: bool | None
) -> str:
    """The README.md uploaded: Tingxie's figures, the license given or stated (none claimed
    when unknown), whether the domain n-gram (`domain_lm`; None: the model has none) is shared
    and, under its own heading, the folder's own card when Tingxie did not write it (its
    warnings and credits stay with the model)."""
    card = read_card(folder)
    metadata, own_text = source_card(folder / "README.md")
    if EXPORT_CARD in own_text:  # its figures are the lines below; its source's card is kept
        own_text = own_text.partition(SOURCE_HEADING)[2].strip()
    elif (folder / CARD_FILE).exists():
        own_text = ""  # Tingxie's own card: its figures are the lines below (when readable)
    # The metadata names a Hub repository only; a local base by its folder's name.
    hub_base = card is not None and _hub_id(card.base_model)
    base = _public_name(card.base_model) if card else ""
    stated_base = metadata.get("base_model") if card is None else None
    kind = "adapter" if adapter else "model"
    whisper = (card is not None and card.family == "whisper") or (folder / "model.bin").is_file()
    onnx = (folder / "model.onnx").is_file()
    library = (
        "peft" if adapter else "ctranslate2" if whisper else "onnx" if onnx else "transformers"
    )
    family = "whisper" if whisper else "ctc, onnx" if onnx else "ctc"
    lines = [
        "---",
        *([f"license: {license}"] if license else []),
        "language: zh",
        "pipeline_tag: automatic-speech-recognition",
        f"library_name: {library}",
        *([f"base_model: {base}"] if hub_base else []),
        *([f"base_model: {stated_base}"] if isinstance(stated_base, str) else []),
        f"tags: [tingxie, {family}, mandarin]",
        "---",
        f"# {repo_id.split('/')[-1]}",
        "",
        f"Mandarin speech recognition {kind} shared from Tingxie (听写).",
        "",
    ]
    exported = export_card_lines(folder)
    if card is not None:
        # An export's own figures follow: the CER is the PyTorch model's, not the export's.
        measured = " (measured on the fp32 PyTorch model, before export)" if exported else ""
        lines += [
            f"- base model: `{base}`" + ("" if hub_base else " (a local model)"),
            f"- method: {card.method}, {card.steps} steps",
            f"- data: {card.train_examples} training utterances "
            f"({card.train_seconds / 60:.1f} min), {card.heldout_examples} held out",
            card.cer_line() + measured,
        ]
        if card.added_chars:
            lines.append(f"- characters added to the vocabulary: {card.added_chars}")
    lines += exported
    calibration = folder / "calibration.json"
    lines.append(
        "- confidence calibration: "
        + ("included (calibration.json)" if calibration.is_file() else "none")
    )
    if domain_lm is not None:
        lines.append(
            "- domain language model: "
            + ("included: it holds the training transcripts" if domain_lm else "not included")
        )
    lines.append(f"- license: {license}" if license else f"- license: {_UNKNOWN_LICENSE}")
    size = adapter_head_size(folder) if adapter else None
    if size is not None:  # a grown head needs its base loaded at its size first
        lines += ["", adapter_usage(base or "the/base-model", size).rstrip("\n")]
    if own_text:
        lines += ["", "## Original model card", "", own_text]
    return "\n".join(lines) + "\n"


_DOMAIN_SHARED = "is uploaded: it holds the training transcripts, word for word"
_DOMAIN_LEFT_OUT = (
    "is left out (it holds the training transcripts; --with-domain-lm shares it), lm.json "
    "is a copy without it"
)
_UNKNOWN_LICENSE = (
    "unknown: neither this model's card nor its base model's states one; check the base "
    "model's license"
)


def _domain_lm(folder: Path) -> tuple[str, str] | None:
    """The domain n-gram a tuned model's lm/ carries (built from its training transcripts,
    which it gives back word for word) and lm.json without it: (its path in the folder, the
    copy of lm.json); None when there is none. The general LM shipped with the base stays.
    An lm.json that cannot be read is refused: the domain n-gram it names could not be told
    apart, and lm/* would upload it."""
    config_path = folder / LM_FOLDER / LM_CONFIG
    try:
        config = json.loads(config_path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise HubError("hub.lm_config_unreadable", path=config_path, detail=e) from e
    domain = config.get("domain") if isinstance(config, dict) else None
    if not isinstance(domain, dict) or not isinstance(domain.get("file"), str):
        return None
    del config["domain"]
    copy = json.dumps(config, ensure_ascii=False, indent=2) + "\n"
    return f"{LM_FOLDER}/{domain['file']}", copy


@dataclass(frozen=True, slots=True)
class ShareDefaults:
    """What `plan_upload` decides unless told, for a form to show before any plan (the app's
    Share dialog): the license the card states when none is given (None: unknown), and
    whether the folder has a domain n-gram that `domain_lm` would share."""

    license: str | None
    has_domain_lm: bool


def share_defaults(model_dir: str | os.PathLike[str], *, adapter: bool = False) -> ShareDefaults:
    """The defaults of `plan_upload` for this folder (a cheap look at its files)."""
    folder = _pick_folder(Path(model_dir).expanduser(), adapter)
    tuned = read_card(folder)
    domain = _domain_lm(folder)
    return ShareDefaults(
        _stated_license(folder, tuned.base_model if tuned else None),
        domain is not None and (folder / domain[0]).is_file(),
    )


def plan_upload(
    model_dir: str | os.PathLike[str],
    repo_id: str,
    *,
    private: bool = False,
    adapter: bool = False,
    license: str | None = None,
    domain_lm: bool = False,
) -> UploadPlan:
    """The exact files and card that `push` would upload: the folder's own files and its lm/,
    never another subfolder (listed in `left_out`), nor, unless `domain_lm`, the domain n-gram
    of the training transcripts. `license` overrides the one the source's card states."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise HubError("hub.bad_repo", repo_id=repo_id)
    try:  # the Hub client's own rule (no spaces, no "--"...), checked before any upload
        validate_repo_id(repo_id)
    except HFValidationError:
        raise HubError("hub.bad_repo", repo_id=repo_id) from None
    source = Path(model_dir).expanduser()
    folder = _pick_folder(source, adapter)
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
    notes = []
    domain = _domain_lm(folder)
    if domain is not None and domain[0] not in files:
        domain = None
    if domain is not None:
        if domain_lm:
            notes.append(f"{domain[0]} {_DOMAIN_SHARED}")
        else:
            files.remove(domain[0])
            rewritten.append((f"{LM_FOLDER}/{LM_CONFIG}", domain[1]))
            notes.append(f"{domain[0]} {_DOMAIN_LEFT_OUT}")
    # An ONNX export whose own check failed transcribes unlike its source: not for others.
    if parity_failure(folder) is not None:
        raise HubError("hub.parity_failed", path=folder)
    tuned = read_card(folder)
    stated = license or _stated_license(folder, tuned.base_model if tuned else None)
    if stated is None:
        notes.append(f"license {_UNKNOWN_LICENSE} (--license ID states one)")
    shared_lm = None if domain is None else domain_lm
    return UploadPlan(
        folder,
        repo_id,
        private,
        tuple(files),
        _card(folder, repo_id, adapter, stated, shared_lm),
        tuple(left_out),
        tuple(rewritten),
        adapter,
        source,
        license,
        domain is not None and domain_lm,
        tuple(notes),
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
        raise HubError(
            "hub.offline", folder=plan.folder, repo_id=plan.repo_id, command=plan.command()
        ) from e
    except HfHubHTTPError as e:
        raise HubError("hub.refused", repo_id=plan.repo_id, detail=str(e).splitlines()[0]) from e
    except _transport_errors() as e:  # connection refused, DNS, timeouts
        raise HubError(
            "hub.offline", folder=plan.folder, repo_id=plan.repo_id, command=plan.command()
        ) from e
    except HFValidationError as e:  # a plan made without plan_upload
        raise HubError("hub.bad_repo", repo_id=plan.repo_id) from e
    except ValueError as e:  # a file changed while it was read for the upload
        raise HubError("hub.failed", repo_id=plan.repo_id, detail=e) from e
    return str(url)
