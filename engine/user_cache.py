"""Where Tingxie keeps what it can rebuild: a folder of the user's cache for each kind (the
converted weights of `engine.model`, the domain language models of `engine.lm`), which an
environment variable moves elsewhere (tests, benches, a shared or larger disk)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["user_cache_dir"]


def user_cache_dir(sub: str, env: str) -> Path:
    """The folder `env` names when it is set and not empty, else `sub` in the user's cache
    folder (~/.cache/tingxie/`sub` on Linux). Nothing is created here: the writer makes it."""
    override = os.environ.get(env)
    if override:
        return Path(override)
    import platformdirs  # only when a cache is used: the app's start does not pay for it

    return Path(platformdirs.user_cache_dir("tingxie", appauthor=False)) / sub
