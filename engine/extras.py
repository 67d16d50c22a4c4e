"""How a person installs one of Tingxie's optional extras (pyproject.toml's
[project.optional-dependencies]: speakers, onnx, plot, parquet).

Tingxie is installed from its source folder (`make run` builds .venv with an editable install of
it, every extra included) or as the bundle. The name `tingxie` on PyPI belongs to an unrelated
project, so asking pip for that name with an extra would install that project: the hint installs
the source folder with the extra instead. Messages say where to run it (the source folder), each
in its own language.
"""

from __future__ import annotations

__all__ = ["install_hint"]


def install_hint(extra: str) -> str:
    """The command that adds `extra` to the environment Tingxie runs in, when run in Tingxie's
    source folder, e.g. pip install -e '.[speakers]'."""
    return f"pip install -e '.[{extra}]'"
