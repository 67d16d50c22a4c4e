"""The Makefile's recipes, run by make itself: the venv's install and `make lock` with a stand-in
for the venv's Python that records each call (no install, no network), `demo-model` by `make -n`,
and the demo model's calibration recipe for real on a few shared clips."""

from __future__ import annotations

import csv
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = ROOT / "Makefile"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# A venv's python that records its arguments, prints FREEZE for `pip freeze`, and fails a pip
# call that names an index where FAIL_INDEX is set (an index that cannot be reached).
FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "$CALLS"
case "$*" in *"pip freeze"*) printf '%s' "$FREEZE";; esac
case "$*" in *--index-url*) [ -z "$FAIL_INDEX" ] || { echo "$FAIL_INDEX" >&2; exit 1; };; esac
"""


def _make(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """make with the project's Makefile in `folder`; TORCH_INDEX from the Makefile alone."""
    environ = {k: v for k, v in os.environ.items() if k not in ("TORCH_INDEX", "MAKEFLAGS")}
    return subprocess.run(["make", "--no-print-directory", "-f", str(MAKEFILE), "-C",
                           str(folder), *args], env={**environ, **env}, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


@pytest.fixture
def project(tmp_path) -> Path:
    """A folder with the files the venv's recipe depends on and a stand-in python."""
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    (tmp_path / "constraints.txt").write_text("# pinned by the tests\ntorch==2.13.0\n", "utf-8")
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTHON, encoding="utf-8")
    fake.chmod(0o755)
    (tmp_path / ".venv").mkdir()
    return tmp_path


def _install(project: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    calls = project / "calls.txt"
    done = _make(project, ".venv/.installed", f"PY={project / 'fake-python'}",
                 f"PYTHON={sys.executable}", CALLS=str(calls), **env)  # fmt: skip
    return done, calls.read_text(encoding="utf-8").splitlines()


def _index_of(calls: list[str], fragment: str) -> int:
    (i,) = [i for i, call in enumerate(calls) if fragment in call]
    return i


def test_the_venv_takes_torch_from_the_cpu_index_before_the_rest(project):
    """PyPI's torch for Linux is the multi-GB CUDA build; the CPU wheel is PyTorch's."""
    done, calls = _install(project)
    assert done.returncode == 0, done.stderr
    torch = _index_of(calls, " torch ")
    assert f"--index-url {CPU_INDEX}" in calls[torch] and "-c constraints.txt" in calls[torch]
    assert torch < _index_of(calls, "-e .[dev,onnx]")
    assert (project / ".venv" / ".installed").is_file()


def test_an_unreachable_torch_index_falls_back_to_the_default_one(project):
    done, calls = _install(project, FAIL_INDEX="ERROR: No matching distribution found for torch")
    assert done.returncode == 0, done.stderr
    log = ".venv/torch-index.log"
    assert f"no torch from {CPU_INDEX} (why: {log}); it comes from the default index" in done.stderr
    assert (project / log).read_text(encoding="utf-8").startswith("ERROR: No matching")
    assert "--index-url" not in calls[_index_of(calls, "-e .[dev,onnx]")]
    assert (project / ".venv" / ".installed").is_file()


def test_lock_pins_versions_pypi_serves_and_keeps_the_header(project):
    """pip freeze says torch==2.13.0+cpu, a pin no index but the CPU one can satisfy."""
    for prerequisite in ("pyproject.toml", "constraints.txt"):
        os.utime(project / prerequisite, (0, 0))  # older than the venv: no install
    (project / ".venv" / ".installed").touch()
    freeze = "numpy==2.4.6\ntingxie==0.1.0\ntorch==2.13.0+cpu\n"
    done = _make(project, "lock", f"PY={project / 'fake-python'}",
                 CALLS=str(project / "calls.txt"), FREEZE=freeze)  # fmt: skip
    assert done.returncode == 0, done.stderr
    pins = (project / "constraints.txt").read_text(encoding="utf-8")
    assert pins == "# pinned by the tests\nnumpy==2.4.6\ntorch==2.13.0\n"


def _dry_run(*args: str) -> str:
    done = _make(ROOT, "-n", "demo-model", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_demo_model_calibrates_the_model_it_wrote(tmp_path):
    """The calibration was fitted and written into the shipped model, whatever DEMO_INTO said."""
    into = tmp_path / "new-demo"
    (calibrate,) = [line for line in _dry_run(f"DEMO_INTO={into}").splitlines()
                    if "recipe/calibrate.py" in line]  # fmt: skip
    assert f"--model {into} " in calibrate and calibrate.endswith("--write")


def test_the_documented_quick_check_voices_few_everyday_sentences():
    """The quick check the Makefile's comment gives voiced 2 x 30,000 sentences (~7.5 GB)."""
    (command,) = re.findall(r"^#\s+make (demo-model .*)$", MAKEFILE.read_text("utf-8"), re.M)
    script = _dry_run(*shlex.split(command)[1:])
    lines = [int(a or b) for a, b in re.findall(r"head -n (\d+) |sed -n '(\d+),", script)]
    assert lines and max(lines) <= 100, lines


@pytest.mark.slow
def test_calibrate_writes_into_the_model_it_is_given(shared_audio, tmp_path):
    """recipe/calibrate.py --model: the folder `make demo-model` built, not the shipped one
    (dev clips made beforehand, as the recipe reuses a manifest it finds)."""
    from engine.model import DEMO_MODEL_DIR

    model = shutil.copytree(DEMO_MODEL_DIR, tmp_path / "model")
    (model / "calibration.json").unlink()
    shipped = (DEMO_MODEL_DIR / "calibration.json").read_bytes()
    with open(shared_audio / "manifest.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))[:6]
    for name, part in (("hsk-dev", rows[:3]), ("medicine-dev", rows[3:])):
        (tmp_path / "work" / name).mkdir(parents=True)
        (tmp_path / "work" / name / "manifest.tsv").write_text(
            "".join(f"{shared_audio / r['file']}\t{r['text_for_scoring']}\n" for r in part), "utf-8"
        )
    done = subprocess.run(
        [sys.executable, str(DEMO_MODEL_DIR / "recipe" / "calibrate.py"), "--model", str(model),
         "--work", str(tmp_path / "work"), "--write"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (model / "calibration.json").is_file()
    assert (DEMO_MODEL_DIR / "calibration.json").read_bytes() == shipped
