"""constraints.txt pins every distribution installed in the venv at the version installed (the
README's "the versions the tests ran with"): one left out (cryptography, lazy-importer) was
whatever was newest on a fresh machine. `make lock` writes the pins again. And pyproject.toml
declares every package the code imports."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from itertools import chain
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
# typing, the backport Resemblyzer requires, which make uninstalls (Makefile); the installers,
# which `pip freeze` (make lock) leaves out (torch requires setuptools)
NOT_PINNED = {"typing", "pip", "setuptools", "wheel"}
# The CUDA build's runtime (torch from a CUDA index, TORCH_INDEX=...): what the tests ran with is
# the CPU build, which has none of them.
CUDA_RUNTIME = re.compile(r"nvidia-.*|triton")


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _required(name: str, extras: set[str]) -> set[str]:
    """`name` with `extras` and everything it requires, installed, as `_key`s (what a tool a
    machine adds, pytest-cov say, is not)."""
    seen: set[str] = set()
    todo = [(name, frozenset(extras))]
    while todo:
        name, extras = todo.pop()
        key = _key(name)
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional one this platform skips (its marker) or not installed
        seen.add(key)
        for line in dist.requires or []:
            req = Requirement(line)
            wanted = req.marker is None or any(
                req.marker.evaluate({"extra": extra}) for extra in extras | {""}
            )
            if wanted:
                todo.append((req.name, frozenset(req.extras)))
    return seen


def test_every_installed_distribution_is_pinned_at_its_version():
    """What tingxie (with the extras make installs) requires, installed, is pinned at the
    version installed; tingxie itself is the checkout."""
    lines = (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    pins = {_key(name): version for name, version in pins.items()}
    needed = _required("tingxie", {"dev", "onnx"}) - {"tingxie"}
    assert {"torch", "peft", "pytest-qt", "onnxruntime"} <= needed  # the walk reached them
    installed = {_key(d.metadata["Name"]): d.version for d in metadata.distributions()}
    wrong = {
        name: (installed[name], pins.get(name))
        for name in needed
        if name not in NOT_PINNED
        and not CUDA_RUNTIME.fullmatch(name)
        and pins.get(name) != installed[name].split("+")[0]
    }
    assert wrong == {}, f"run make lock: installed vs pinned {wrong}"


# Imported only where present (engine.model looks for it on CUDA), never required.
OPTIONAL_IMPORTS = {"flash_attn"}


def test_every_package_the_code_imports_is_declared():
    """A package imported only because another one requires it (rapidfuzz, through jiwer)
    vanishes from an install the day that one stops requiring it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [*project["dependencies"], *chain(*project["optional-dependencies"].values())]
    declared = {_key(re.match(r"[A-Za-z0-9_.\-]+", r).group(0)) for r in requirements}
    owners = metadata.packages_distributions()
    undeclared = set()
    for path in [*(ROOT / "engine").rglob("*.py"), *(ROOT / "app").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in {name.split(".")[0] for name in names}:
                if top in sys.stdlib_module_names or top in {"engine", "app", *OPTIONAL_IMPORTS}:
                    continue
                if not {_key(d) for d in owners.get(top, [])} & declared:
                    undeclared.add(f"{top} ({path.relative_to(ROOT)})")
    assert sorted(undeclared) == [], "declare them in pyproject.toml"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lock_keeps_the_header_and_the_typing_pin(tmp_path):
    """`make lock` pins what pip freeze lists, without local labels, plus `typing`, which the
    venv step uninstalls after Resemblyzer installed it at its pin."""
    shutil.copy(ROOT / "Makefile", tmp_path)
    (tmp_path / "constraints.txt").write_text("# header\nold==1\ntyping==3.7.4.3\n")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / ".installed").touch()
    python = venv / "bin" / "python"
    python.write_text("#!/bin/sh\nprintf 'zlib-ng==1\\nTorch==2.13.0+cpu\\nnumpy==2.0\\n'\n")
    python.chmod(0o755)
    done = subprocess.run(["make", "-s", "lock", f"VENV={venv}", "-o", f"{venv}/.installed"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "constraints.txt").read_text().splitlines() == [
        "# header", "numpy==2.0", "Torch==2.13.0", "typing==3.7.4.3", "zlib-ng==1",
    ]  # fmt: skip
