"""The README's set-up section is what a fresh machine needs: `make` first (a minimal Debian
lacks it), then two commands; the way to leave out the apt step exists in the Makefile; and
the installed resources are where pyproject.toml puts them (engine/resources/)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def test_the_set_up_names_make_first_and_keeps_two_commands():
    setup = _section("Set up on a fresh machine")
    (block,) = re.findall(r"```sh\n(.*?)```", setup, re.S)
    assert [line.split("#")[0].strip() for line in block.splitlines()] == ["make run", "make test"]
    assert "apt-get\ninstall make" in setup or "apt-get install make" in setup
    assert "make run SYSTEM_DEPS=" in setup
    assert "SYSTEM_DEPS ?=" in (ROOT / "Makefile").read_text(encoding="utf-8")


def test_the_resources_install_where_pyproject_maps_them():
    setup = " ".join(_section("Set up on a fresh machine").split())
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["package-dir"]
    assert package_dir == {"engine.resources": "resources"}
    assert "as `engine/resources/`" in setup
    assert "beside the `engine` and `app` packages" not in setup
