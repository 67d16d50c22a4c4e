"""The `tingxie` entry point starts the real app (worker, review, store) and stays up, on a
machine without the default checkpoint and without a microphone."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.slow
START = [sys.executable, "-c", "import sys; from app.main import main; sys.exit(main())"]


def _user_env(home) -> dict[str, str]:
    """A fresh user: settings and the library in `home`, no display, no network."""
    return {
        **{k: v for k, v in os.environ.items() if k != "TINGXIE_DATA_DIR"},
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "QT_QPA_PLATFORM": "offscreen",
        "HF_HUB_OFFLINE": "1",
    }


def test_tingxie_starts_and_keeps_running(tmp_path):
    env = _user_env(tmp_path)
    app = subprocess.Popen(
        START,
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


def test_a_second_start_hands_its_files_to_the_first(tmp_path, shared_audio):
    """One app per library: a second `tingxie FILE` exits at once and the running window
    queues FILE (two windows would overwrite each other's unsaved edits). Without the
    single-instance lock the second start opens a second window and keeps running.

    The first window's library receiving a transcript of FILE is the proof, not its log line
    "handed over": sounddevice points the process's stderr at /dev/null while PortAudio starts
    on the worker thread, and a line the UI thread logs meanwhile is lost (seen when the app
    started faster, once Whisper's path stopped importing torch)."""
    import sqlite3

    env = _user_env(tmp_path)
    db = tmp_path / "data" / "tingxie" / "tingxie.db"

    def transcribed() -> list[str]:
        if not db.is_file():
            return []
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
            try:
                return [row[0] for row in conn.execute("SELECT info FROM transcripts")]
            except sqlite3.OperationalError:  # the schema is still being written
                return []

    first = subprocess.Popen(START, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)  # fmt: skip
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(first.stdout), daemon=True).start()
    clip = sorted(shared_audio.glob("*.wav"))[0].resolve()  # as the hand-over sends it
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "data" / "tingxie" / "app.lock").is_file():
            assert first.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        second = subprocess.run([*START, str(clip)], env=env, capture_output=True, text=True,
                                timeout=60)  # fmt: skip
        assert second.returncode == 0, second.stdout + second.stderr
        while not any(str(clip) in meta for meta in transcribed()):
            assert first.poll() is None and time.monotonic() < deadline + 120, "".join(lines)
            time.sleep(0.5)
    finally:
        first.kill()
        first.wait(timeout=10)
    assert "Traceback" not in "".join(lines), "".join(lines)


@pytest.mark.parametrize("option", ["--version", "--help"])
def test_help_and_version_print_without_starting_the_window(tmp_path, option):
    """Both started the whole app (and, with no display, aborted in Qt)."""
    env = {k: v for k, v in _user_env(tmp_path).items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    done = subprocess.run([*START, option], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    expected = "tingxie " if option == "--version" else "tingxie-cli"
    assert expected in done.stdout and "Traceback" not in done.stderr
    assert not (tmp_path / "data" / "tingxie").exists()  # nothing started
