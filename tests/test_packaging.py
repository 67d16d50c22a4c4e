"""The source release and the wheel carry what Tingxie needs: the code finds its models, icon and
notices through engine.shipped.resource(), so a wheel without them installed a `tingxie-cli` that
could not transcribe, and an sdist without the Makefile, the spec or tests/conftest.py could
neither be built into the app nor tested. The wheel installs them as engine/resources/, not as a
top-level `resources` package, which another distribution could overwrite or delete.

Both are built once, offline (no build isolation, no index), the wheel from the unpacked sdist as
pip builds a downloaded source release: a wheel built in the checkout would reuse build/lib, which
keeps files from earlier builds."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAME = "tingxie"
# The constants that name what the code loads from the shipped files (module:attribute; a path
# or a tuple of them), as engine.shipped.resource() gives them.
RUN_TIME = (
    "engine.model:DEMO_MODEL_DIR",
    "engine.punctuation:DEFAULT_DIR",
    "engine.tune.punctuation_train:TRAIN_TEXTS",
    "app.main:ICON",
    "app.about:NOTICES",
)
# Run by the installed copy: where each module and each of its paths lie, as JSON.
WHERE = """
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    module, attribute = name.split(":")
    loaded = importlib.import_module(module)
    value = getattr(loaded, attribute)
    found[name] = [loaded.__file__, *map(str, value if isinstance(value, tuple) else (value,))]
print(json.dumps(found))
"""


def _git_files(*options: str) -> list[str]:
    """Paths git lists in the checkout (`git ls-files OPTIONS`), relative to the root."""
    if not (ROOT / ".git").exists():
        pytest.skip(f"{ROOT} is not a git checkout: the sdist is compared with git's file list")
    done = subprocess.run(["git", "ls-files", "-z", *options], cwd=ROOT, capture_output=True,
                          check=True)  # fmt: skip
    return [p for p in done.stdout.decode().split("\0") if p]


def _paths(name: str) -> tuple[Path, ...]:
    """The paths the constant `name` (module:attribute) holds in the checkout."""
    module, attribute = name.split(":")
    value = getattr(importlib.import_module(module), attribute)
    return value if isinstance(value, tuple) else (value,)


def _contents(path: Path) -> list[str]:
    """A folder's files (relative, without bytecode), or [] for a file."""
    files = path.rglob("*") if path.is_dir() else ()
    return sorted(
        p.relative_to(path).as_posix() for p in files
        if p.is_file() and "__pycache__" not in p.parts
    )  # fmt: skip


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
def wheel(sdist, tmp_path_factory) -> Path:
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
    (built,) = (work / "out").glob(f"{NAME}-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed by pip, offline, into a folder of its own."""
    target = tmp_path_factory.mktemp("installed")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target",
         str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return target.resolve()  # as the code resolves its own paths


@pytest.fixture(scope="module")
def found(installed) -> dict[str, list[str]]:
    """What the installed copy (first on the path, away from the checkout) says each of
    RUN_TIME is: its module's file, then its paths."""
    environ = {**os.environ, "PYTHONPATH": str(installed)}
    done = subprocess.run([sys.executable, "-c", WHERE, *RUN_TIME], cwd=installed.parent,
                          env=environ, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_wheel_installs_no_top_level_resources_package(wheel_names):
    """Nothing but the code's packages at the top of site-packages: a generic `resources` there
    is overwritten by (or overwrites) any other distribution's, and uninstalling one deletes the
    other's files."""
    top = {n.split("/")[0] for n in wheel_names if ".dist-info/" not in n}
    assert top == {"app", "engine"}


@pytest.mark.parametrize("name", RUN_TIME)
def test_an_installed_wheel_finds_what_the_code_loads(name, installed, found):
    """The demo model, the punctuation model and its training text, the icon and the notices,
    as the installed code names them: inside the installed copy, and the same files as in the
    checkout."""
    module, *paths = map(Path, found[name])
    assert module.is_relative_to(installed)  # the installed copy ran, not the checkout
    assert [p for p in paths if not (p.is_relative_to(installed) and p.exists())] == []
    assert [_contents(p) for p in paths] == [_contents(p) for p in _paths(name)]


def test_the_wheel_holds_every_module_of_the_checkout(wheel_names):
    """pyproject.toml lists the packages (a mapped folder is invisible to packages.find): a
    package left out of that list would install without its modules."""
    code = _git_files("--cached", "--others", "--exclude-standard")
    modules = [p for p in code if p.startswith(("engine/", "app/")) and p.endswith(".py")]
    assert [p for p in modules if p not in wheel_names] == []


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
