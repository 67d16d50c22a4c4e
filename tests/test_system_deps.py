"""packaging/system-deps.sh installs only what is missing: a package held at its version
(`apt-mark hold`) is installed, and apt-get is not run for it. It installs what builds the
source-only webrtcvad (a compiler, $PYTHON's headers), and where there is no apt it says what to
install and how to leave the step out."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)


def _run(tmp_path: Path, status: str, python: str = "3.11", distro: bool = True) -> tuple[int, str]:
    """system-deps.sh with every package in dpkg's `status` (e.g. "hold ok installed") and
    PYTHON a Python `python` (X.Y), the distribution's (dpkg owns it) or not (pyenv's);
    apt-get and sudo only record that they were called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake(bin_dir, "fake-python", f"echo {python} /opt/python/bin/python{python}\n")
    _fake(bin_dir, "dpkg", f'[ "$1" = -S ] && exit {0 if distro else 1}\nexit 2\n')
    want, flag = status.split()[0], status.split()[-1]
    # dpkg-query -W -f=FORMAT PKG: ${Status} is "WANT ok FLAG", ${db:Status-Status} is FLAG.
    _fake(
        bin_dir,
        "dpkg-query",
        f"""case "$2" in
  *db:Status-Status*) printf '%s' '{flag}' ;;
  *) printf '%s' '{want} ok {flag}' ;;
esac
""",
    )
    calls = tmp_path / "calls"
    for tool in ("apt-get", "sudo"):
        _fake(bin_dir, tool, f'echo "{tool} $*" >> "{calls}"\n')
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHON": "fake-python"}
    done = subprocess.run(["bash", str(ROOT / "packaging" / "system-deps.sh")], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    return done.returncode, calls.read_text() if calls.exists() else ""


def test_installed_and_held_packages_are_not_installed_again(tmp_path):
    for i, status in enumerate(["install ok installed", "hold ok installed"]):
        folder = tmp_path / str(i)
        folder.mkdir()
        assert _run(folder, status) == (0, ""), status


def test_a_missing_package_is_installed(tmp_path):
    code, calls = _run(tmp_path, "unknown ok not-installed")
    assert code == 0 and "install" in calls and "libportaudio2" in calls


def test_a_compiler_and_the_headers_of_pythons_version_are_installed(tmp_path):
    """webrtcvad==2.0.10 (constraints.txt) has no wheel on PyPI: pip compiles it."""
    listed = (ROOT / "packaging" / "debian-packages.txt").read_text(encoding="utf-8").split()
    assert "build-essential" in listed and "python3-dev" in listed
    code, calls = _run(tmp_path, "unknown ok not-installed", python="3.12")
    installed = calls.split()
    assert code == 0 and "build-essential" in installed
    assert "python3.12-dev" in installed and "python3.12-venv" in installed


def test_a_python_not_of_the_distribution_asks_for_no_package_of_its_version(tmp_path):
    """pyenv's or uv's Python 3.12 on Debian 12: there is no python3.12-dev to install (apt
    stopped at "Unable to locate package"), and that Python has its headers and venv."""
    code, calls = _run(tmp_path, "unknown ok not-installed", python="3.12", distro=False)
    installed = calls.split()
    assert code == 0 and "python3-dev" in installed
    assert not any(name.startswith("python3.12") for name in installed)


def test_without_apt_it_says_what_to_install_and_how_to_skip(tmp_path):
    """macOS, Fedora: no dpkg-query and no apt-get on PATH (only what the script needs)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "grep", "sed", "awk", "dirname", "id"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    done = subprocess.run(["bash", str(ROOT / "packaging" / "system-deps.sh")],
                          env={**os.environ, "PATH": str(bin_dir)},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert "not a Debian/Ubuntu system" in done.stderr
    assert "make run SYSTEM_DEPS=" in done.stderr
    assert "libportaudio2" in done.stderr and "espeak-ng" in done.stderr
    assert "command not found" not in done.stderr
