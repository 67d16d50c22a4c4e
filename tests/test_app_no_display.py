"""`tingxie` without a display (ssh, a server, a container) says so in one line and exits 1,
instead of Qt's abort advising a reinstall; a platform given (QT_QPA_PLATFORM, -platform) or
macOS and Windows go on to Qt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.main import no_display

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = (
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "WAYLAND_SOCKET",
    "QT_QPA_PLATFORM",
    "XDG_RUNTIME_DIR",
    "XDG_SESSION_TYPE",
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland are Linux's")
def test_no_display_is_one_clear_line_and_exit_1(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in HIDDEN}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from app.main import main; sys.exit(main())"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "DISPLAY" in lines[0] and "tingxie-cli" in lines[0]


def test_a_given_platform_or_display_goes_on_to_qt(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    assert no_display(["tingxie"], {}) is not None
    assert no_display(["tingxie", "-platform", "offscreen"], {}) is None
    assert no_display(["tingxie", "--platform", "offscreen"], {}) is None
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET", "QT_QPA_PLATFORM"):
        assert no_display(["tingxie"], {name: ":0" if "DISPLAY" in name else "xcb"}) is None
    for other in ("darwin", "win32"):
        monkeypatch.setattr(sys, "platform", other)
        assert no_display(["tingxie"], {}) is None


def test_wayland_default_socket_is_a_display(tmp_path, monkeypatch):
    """A Wayland session that does not export WAYLAND_DISPLAY: Qt finds wayland-0 by itself."""
    monkeypatch.setattr(sys, "platform", "linux")
    runtime = {"XDG_RUNTIME_DIR": str(tmp_path), "XDG_SESSION_TYPE": "wayland"}
    assert no_display(["tingxie"], runtime) is not None
    (tmp_path / "wayland-0").touch()
    assert no_display(["tingxie"], runtime) is None
    # ssh into a machine whose desktop runs Wayland: Qt does not use its socket
    assert no_display(["tingxie"], runtime | {"XDG_SESSION_TYPE": "tty"}) is not None
