"""The source release and the wheel carry what Tingxie needs: the code finds its models, icon and
notices beside its packages (`Path(__file__).parents[1] / "resources"`), so a wheel without
resources/ installed a `tingxie-cli` that could not transcribe, and an sdist without the
Makefile, the spec or tests/conftest.py could neither be built into the app nor tested.

Both are built once, offline (no build isolation, no index), the wheel from the unpacked sdist as
pip builds a downloaded source release: a wheel built in the checkout would reuse build/lib, which
keeps files from earlier builds."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAME = "tingxie"


def _git_files(*options: str) -> list[str]:
    """Paths git lists in the checkout (`git ls-files OPTIONS`), relative to the root."""
    if not (ROOT / ".git").exists():
        pytest.skip(f"{ROOT} is not a git checkout: the sdist is compared with git's file list")
    done = subprocess.run(["git", "ls-files", "-z", *options], cwd=ROOT, capture_output=True,
                          check=True)  # fmt: skip
    return [p for p in done.stdout.decode().split("\0") if p]


def _run_time_files() -> list[str]:
    """Every file the code loads from resources/, from the constants that name them."""
    from app.about import NOTICES
    from app.main import ICON
    from engine.model import DEMO_MODEL_DIR
    from engine.punctuation import DEFAULT_DIR
    from engine.tune.punctuation_train import TRAIN_TEXTS

    folders = [
        p for folder in (DEMO_MODEL_DIR, DEFAULT_DIR) for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]  # fmt: skip
    files = [ICON, NOTICES, *TRAIN_TEXTS, *folders]
    return sorted(p.relative_to(ROOT).as_posix() for p in files)


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sdist")
    build = "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])"
    done = subprocess.run([sys.executable, "-c", build, str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (archive,) = out.glob(f"{NAME}-*.tar.gz")
    return archive


@pytest.fixture(scope="module")
def sdist_names(sdist) -> set[str]:
    """The sdist's members, without their leading `tingxie-VERSION/`."""
    with tarfile.open(sdist) as tar:
        return {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}


@pytest.fixture(scope="module")
def wheel_names(sdist, tmp_path_factory) -> set[str]:
    work = tmp_path_factory.mktemp("wheel")
    with tarfile.open(sdist) as tar:
        tar.extractall(work / "src", filter="data")
    (source,) = (work / "src").iterdir()
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(work / "out"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    (wheel,) = (work / "out").glob(f"{NAME}-*.whl")
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


def test_the_wheel_holds_every_file_the_code_loads(wheel_names):
    missing = [p for p in _run_time_files() if p not in wheel_names]
    assert missing == []


def test_the_wheel_carries_the_license(wheel_names):
    (info,) = {n.split("/")[0] for n in wheel_names if ".dist-info/" in n}
    assert f"{info}/licenses/LICENSE" in wheel_names


def test_the_wheel_holds_no_bytecode_and_no_tests(wheel_names):
    assert [n for n in wheel_names if n.endswith(".pyc") or n.startswith("tests/")] == []


def test_the_sdist_holds_every_file_of_the_checkout(sdist_names):
    assert [p for p in _git_files() if p not in sdist_names] == []


def test_the_sdist_holds_no_ignored_file(sdist_names):
    """Nothing git ignores (.cache/ with the Whisper model, .venv/, bytecode) gets in; the sdist's
    own egg-info is written by the build, not taken from the checkout."""
    ignored = _git_files("--others", "--ignored", "--exclude-standard", "--directory")
    leaked = [
        n for n in sdist_names for p in ignored
        if (n == p or n.startswith(p if p.endswith("/") else p + "/"))
        and not n.startswith(f"{NAME}.egg-info/")
    ]  # fmt: skip
    assert leaked == []
