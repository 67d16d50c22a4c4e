"""Install hints for the optional extras: the name tingxie on PyPI is an unrelated project's, so
`pip install 'tingxie[speakers]'` installed that project; every hint installs the source folder
with the extra instead, and names an extra pyproject.toml declares."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from engine.extras import install_hint

ROOT = Path(__file__).resolve().parents[1]
# What a person reads: messages and help (engine, app), the bundle's spec, the README.
_SOURCES = ["engine", "app", "packaging", "bench", "README.md"]
_EDITABLE = re.compile(r"pip install -e '\.\[([a-z,]+)\]'")


def _texts() -> dict[Path, str]:
    files = []
    for name in _SOURCES:
        path = ROOT / name
        files += [path] if path.is_file() else path.rglob("*")
    return {
        f: f.read_text(encoding="utf-8")
        for f in files
        if f.suffix in (".py", ".md", ".spec", ".sh", ".toml") and "__pycache__" not in f.parts
    }


def _extras() -> set[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return set(tomllib.load(f)["project"]["optional-dependencies"])


def test_no_message_help_or_document_names_the_pypi_project():
    found = [
        f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}"
        for path, text in _texts().items()
        for m in re.finditer(r"tingxie\[", text, re.IGNORECASE)
    ]
    assert found == []


def test_every_install_hint_names_an_extra_that_pyproject_declares():
    """The hints written out in full (the message tables, README, the spec); the others are
    built by install_hint."""
    named = {
        (path.relative_to(ROOT).as_posix(), extra)
        for path, text in _texts().items()
        for m in _EDITABLE.finditer(text)
        for extra in m.group(1).split(",")
    }
    assert named and {extra for _, extra in named} <= _extras(), named


@pytest.mark.parametrize("extra", ["speakers", "onnx", "plot", "parquet"])
def test_the_hint_is_an_editable_install_of_the_source_folder(extra):
    assert _EDITABLE.fullmatch(install_hint(extra)).group(1) == extra
    assert extra in _extras()
