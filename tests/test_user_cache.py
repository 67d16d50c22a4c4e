"""The user's cache folders: one rule (engine.user_cache) behind each kind's public name, each
moved by its own environment variable."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest

from engine.lm import lm_cache_dir
from engine.model import weights_cache_dir
from engine.user_cache import user_cache_dir


@pytest.mark.parametrize(
    ("where", "env", "sub"),
    [
        (weights_cache_dir, "TINGXIE_WEIGHTS_CACHE", "weights"),
        (lm_cache_dir, "TINGXIE_LM_CACHE", "lm"),
    ],
)
def test_each_cache_is_its_variable_else_its_folder_of_the_users_cache(
    where, env, sub, tmp_path, monkeypatch
):
    monkeypatch.setattr(
        platformdirs, "user_cache_dir", lambda app, appauthor: f"/home/u/.cache/{app}"
    )
    monkeypatch.setenv(env, str(tmp_path / "elsewhere"))
    assert where() == tmp_path / "elsewhere"
    monkeypatch.setenv(env, "")  # set but empty: as if not set
    assert where() == Path("/home/u/.cache/tingxie") / sub
    monkeypatch.delenv(env)
    assert where() == Path("/home/u/.cache/tingxie") / sub


def test_one_variable_moves_only_its_own_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda app, appauthor: f"/c/{app}")
    monkeypatch.delenv("TINGXIE_LM_CACHE", raising=False)
    monkeypatch.delenv("TINGXIE_OTHER_CACHE_UNSET", raising=False)
    monkeypatch.setenv("TINGXIE_WEIGHTS_CACHE", str(tmp_path))
    assert weights_cache_dir() == tmp_path
    assert lm_cache_dir() == Path("/c/tingxie/lm")
    assert user_cache_dir("other", "TINGXIE_OTHER_CACHE_UNSET") == Path("/c/tingxie/other")
