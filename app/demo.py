"""Where the shipped demo model is, whether a model source is it, what an offline first start
opens, what can be used instead of a model that failed, and how the app names a model."""

from __future__ import annotations

from pathlib import Path

from engine.registry import kind_on_disk, local_path

__all__ = [
    "demo_model_dir",
    "first_start_model",
    "is_demo_model",
    "model_display_name",
    "ways_out",
    "whisper_model_dir",
]


def demo_model_dir() -> str | None:
    """The demo model's folder, or None while the project has not built it."""
    from engine.model import DEMO_MODEL_DIR

    return str(DEMO_MODEL_DIR) if (DEMO_MODEL_DIR / "config.json").is_file() else None


def is_demo_model(source: str) -> bool:
    return _same_folder(source, demo_model_dir())


def _same_folder(source: str, folder: str | None) -> bool:
    """Whether `source` names `folder` (however written: ~, .., a link)."""
    if folder is None or not source:
        return False
    try:
        return local_path(source).resolve() == Path(folder).resolve()
    except OSError:  # a name too long for a path, a loop of links
        return False


def whisper_model_dir() -> str | None:
    """Whisper-base in the model cache (packaging/fetch-whisper-base.py), or None."""
    from engine.whisper import WHISPER_BASE_DIR

    return str(WHISPER_BASE_DIR) if (WHISPER_BASE_DIR / "model.bin").is_file() else None


def ways_out(failed: str, backend: str) -> tuple[str | None, str | None]:
    """Whisper-base and the demo where each can be used instead of `failed`, the model that
    did not load, on `backend` (Model → Runtime), else None: never what just failed, and the
    demo on ONNX Runtime only with a model.onnx (engine.model refuses it otherwise)."""
    whisper, demo = whisper_model_dir(), demo_model_dir()
    if _same_folder(failed, whisper):
        whisper = None  # it runs on CTranslate2 whatever the runtime
    if _same_folder(failed, demo) or (
        demo is not None and backend == "onnx" and not (Path(demo) / "model.onnx").is_file()
    ):
        demo = None
    return whisper, demo


def first_start_model() -> str | None:
    """What to open when the default model cannot be had on a first start: Whisper-base when
    the cache has it (it understands real voices), else the demo (synthetic speech only)."""
    return whisper_model_dir() or demo_model_dir()


def model_display_name(source: str) -> str:
    """How the app names a model (status bar, My models): a local folder by its last two parts
    (a tuned model is `<job>/model` at the end of a long path), a Hub id as it is."""
    if not source or kind_on_disk(source) != "folder":
        return source
    return "/".join(local_path(source).resolve().parts[-2:]).lstrip("/")
