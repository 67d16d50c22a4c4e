"""The `tingxie` entry point starts the real app (worker, review, store) and stays up, on a
machine without the default checkpoint and without a microphone."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def test_tingxie_starts_and_keeps_running(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k != "TINGXIE_DATA_DIR"},
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "QT_QPA_PLATFORM": "offscreen",
        "HF_HUB_OFFLINE": "1",
    }
    app = subprocess.Popen(
        [sys.executable, "-c", "import sys; from app.main import main; sys.exit(main())"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(8)
        assert app.poll() is None, app.stdout.read()
    finally:
        app.kill()
        output = app.communicate(timeout=10)[0]
    assert "Traceback" not in output, output
    # The store and the recordings folder live in the user's data folder.
    assert (tmp_path / "data" / "tingxie" / "tingxie.db").is_file()
