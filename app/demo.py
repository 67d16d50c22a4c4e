"""Where the shipped demo model is, whether a model source is it, what an offline first start
opens, and how the app names a model."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "demo_model_dir",
    "first_start_model",
    "is_demo_model",
    "model_display_name",
    "whisper_model_dir",
]


def demo_model_dir() -> str | None:
    """The demo model's folder, or None while the project has not built it."""
    from engine.model import DEMO_MODEL_DIR

    return str(DEMO_MODEL_DIR) if (DEMO_MODEL_DIR / "config.json").is_file() else None


def is_demo_model(source: str) -> bool:
    demo = demo_model_dir()
    if demo is None or not source:
        return False
    try:
        return Path(source).expanduser().resolve() == Path(demo).resolve()
    except OSError:
        return False


def whisper_model_dir() -> str | None:
    """Whisper-base in the model cache (packaging/fetch-whisper-base.py), or None."""
    from engine.whisper import WHISPER_BASE_DIR

    return str(WHISPER_BASE_DIR) if (WHISPER_BASE_DIR / "model.bin").is_file() else None


def first_start_model() -> str | None:
    """What to open when the default model cannot be had on a first start: Whisper-base when
    the cache has it (it understands real voices), else the demo (synthetic speech only)."""
    return whisper_model_dir() or demo_model_dir()


def model_display_name(source: str) -> str:
    """How the app names a model (status bar, My models): a local folder by its last two parts
    (a tuned model is `<job>/model` at the end of a long path), a Hub id as it is."""
    path = Path(source).expanduser()
    if not source or not path.is_dir():
        return source
    return "/".join(path.resolve().parts[-2:]).lstrip("/")
