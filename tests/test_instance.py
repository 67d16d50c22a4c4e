"""One app per library (app.instance): a second start hands its files over, all of them, or
says it could not; a data folder where no lock file can be made is an error, not "another
Tingxie that does not answer".

The first instance runs in the test process (its event loop turns while the test waits), a
second start in a subprocess, as a file manager's "Open with" starts it.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QLockFile

from app import instance
from app.instance import SingleInstance

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}

# argv: data folder, number of files, send timeout (ms)
_SECOND = """
import logging, sys
from pathlib import Path
from PySide6.QtCore import QCoreApplication
import app.instance as instance
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
instance._SEND_MS = int(sys.argv[3])
qt = QCoreApplication([])
files = [f"/nowhere/a/long/folder/name/recording-{i:05d}-of-the-meeting.wav"
         for i in range(int(sys.argv[2]))]
print("claiming", flush=True)
one = instance.SingleInstance(Path(sys.argv[1]))
claimed = one.claim(files)
print("claim", claimed, "holding the lock" if one._lock.isLocked() else "", flush=True)
"""


def _second_start(folder: Path, files: int, send_ms: int = 5000) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _SECOND, str(folder), str(files), str(send_ms)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def first(qapp, tmp_path):
    """The running app's instance on `tmp_path`, and what second starts handed it."""
    one = SingleInstance(tmp_path)
    assert one.claim([])
    one.received = []
    one.files_received.connect(one.received.extend)
    yield one
    if one._server is not None:
        one._server.close()
    one._lock.unlock()


def test_a_second_start_hands_over_thousands_of_files(first, qtbot, tmp_path, caplog):
    """Old: the second start wrote what the socket takes at once (some 200 KB), waited for
    that to be written and disconnected; the first read the part that had arrived, warned
    "ignored a malformed message" and got no file, while the second exited as if it had
    handed them over (seen with 3000 files, ~250 KB). The first app's UI thread is busy for a
    moment here (as while the window starts), so the socket fills before anything reads it."""
    caplog.set_level(logging.INFO, logger="tingxie.app")
    second = _second_start(tmp_path, 20_000, send_ms=10_000)  # ~1.6 MB of paths
    try:
        assert second.stdout.readline().strip() == "claiming"
        time.sleep(1.5)  # busy: no event is handled, nothing is read
        qtbot.waitUntil(lambda: len(first.received) >= 20_000, timeout=30_000)
        assert second.wait(timeout=30) == 0
    finally:
        second.kill()
    assert "claim False" in second.stdout.read()  # handed over: the second start exits
    qtbot.wait(300)  # the connection closes: nothing more is read from it
    assert len(first.received) == 20_000
    assert first.received[-1] == "/nowhere/a/long/folder/name/recording-19999-of-the-meeting.wav"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == []  # the old code warned "malformed" on every hand-over, even of one


def test_several_second_starts_each_hand_over_their_files(first, qtbot, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="tingxie.app")
    starts = [_second_start(tmp_path, n) for n in (1, 2, 3)]
    try:
        qtbot.waitUntil(lambda: len(first.received) >= 6, timeout=30_000)
        assert [s.wait(timeout=30) for s in starts] == [0, 0, 0]
    finally:
        for s in starts:
            s.kill()
    qtbot.wait(300)
    assert len(first.received) == 6
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_hand_over_that_cannot_be_written_is_not_taken_for_done(first, qtbot, tmp_path):
    """The first app's UI thread is busy (nothing reads the socket while the second start
    runs), and the message is far more than the socket holds: the second start must not exit
    as if it had handed the files over (old: it did, and they were lost); it says so and
    starts its own window with them."""
    done = subprocess.run(
        [sys.executable, "-c", _SECOND, str(tmp_path), "20000", "300"],  # ~1.6 MB
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert "claim True" in output, output
    assert "could not hand 20000 file(s) over" in output, output
    qtbot.wait(500)  # the first app reads the cut messages now: it drops them
    assert first.received == []


def test_files_a_second_start_gave_up_on_are_queued_by_it_alone(first, qtbot, tmp_path, caplog):
    """The first app's UI thread is busy past the second start's wait for an answer (here its
    event loop turns only once the second start has finished): the second start opens its own
    window with the file, so the first, reading the message later, must drop it. Old: the
    whole message was in its socket and it queued the file too (both transcribed it)."""
    caplog.set_level(logging.INFO, logger="tingxie.app")
    second = _second_start(tmp_path, 1, send_ms=300)
    output, _ = second.communicate(timeout=60)  # no event of the first app is handled meanwhile
    assert "claim True" in output, output  # its own window queues the file
    assert re.search(r"\(0 of \d+ bytes unsent; no answer\)", output), output  # all sent
    qtbot.waitUntil(
        lambda: bool(first.received) or "stopped waiting" in caplog.text, timeout=10_000
    )
    assert first.received == []


def test_a_hand_over_is_answered_before_the_window_queues_the_files(first, qtbot, tmp_path):
    """The window's queueing (bring_forward) may take longer than the second start waits for an
    answer: the answer goes out first. Old: it went out after, the second start gave up and
    opened its own window with the files the first had queued too."""
    second = _second_start(tmp_path, 1, send_ms=300)
    first.files_received.connect(lambda paths: second.wait(timeout=60))  # a slow window
    qtbot.waitUntil(lambda: second.poll() is not None, timeout=30_000)
    output = second.stdout.read()
    assert "claim False" in output, output  # handed over: the second start exits
    assert first.received == ["/nowhere/a/long/folder/name/recording-00000-of-the-meeting.wav"]


class _ReadOnlyLock(QLockFile):
    """The lock file of a data folder on a read-only mount: it cannot be created."""

    def tryLock(self, timeout=0):
        return False

    def error(self):
        return QLockFile.LockError.PermissionError


def test_a_read_only_data_folder_is_an_error_naming_it(qapp, tmp_path, monkeypatch):
    """Old: any failure to lock was taken for another app holding the library; after 2 s the
    start warned that it "does not answer" and went on, never showing why nothing is saved."""
    monkeypatch.setattr(instance, "QLockFile", _ReadOnlyLock)
    with pytest.raises(OSError) as excinfo:
        SingleInstance(tmp_path)
    assert excinfo.value.filename == str(tmp_path)
    assert "not writable" in excinfo.value.strerror


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_folder_where_no_file_can_be_made_is_an_error(qapp):
    """A real folder where the lock file cannot be created (even by root, which the tests run
    as and which writes in a folder without write permission)."""
    with pytest.raises(OSError) as excinfo:
        SingleInstance(Path("/proc/self"))
    assert excinfo.value.filename == "/proc/self"


_MAIN = """
import sys
from PySide6.QtCore import QLockFile
from PySide6.QtWidgets import QMessageBox
sys.path.insert(0, {tests!r})
import app.instance
from test_instance import _ReadOnlyLock
app.instance.QLockFile = _ReadOnlyLock
def critical(parent, title, text, *args, **kwargs):
    print("DIALOG", text, flush=True)
    return QMessageBox.StandardButton.Ok
QMessageBox.critical = critical
from app.main import main
print("exit", main(["tingxie"]), flush=True)
"""


def test_the_app_says_it_cannot_use_a_read_only_data_folder(tmp_path):
    """The start-up dialog for a data folder that cannot be used (app.main), shown at once."""
    data = tmp_path / "data"
    data.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", _MAIN.format(tests=str(Path(__file__).parent))],
        env={**ENV, "TINGXIE_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert f"DIALOG Tingxie cannot make its data folder {data}" in output or (
        f"DIALOG 听写无法创建数据文件夹 {data}" in output
    ), output
    assert "exit 1" in output and "does not answer" not in output, output
