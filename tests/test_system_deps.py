"""packaging/system-deps.sh installs only what is missing: a package held at its version
(`apt-mark hold`) is installed, and apt-get is not run for it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)


def _run(tmp_path: Path, status: str) -> tuple[int, str]:
    """system-deps.sh with every package in dpkg's `status` (e.g. "hold ok installed"); apt-get
    and sudo only record that they were called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
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
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
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
