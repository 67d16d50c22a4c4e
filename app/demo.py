"""Where the shipped demo model is, and whether a model source is it."""

from __future__ import annotations

from pathlib import Path

__all__ = ["demo_model_dir", "is_demo_model"]


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
