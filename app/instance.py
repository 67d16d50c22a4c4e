"""One running app per library: a second start hands its files to the first window and exits.

Why one: the open transcript's edit chain lives in its window until saved, so two windows on
one library would overwrite each other's edits. The first start holds a lock file in the data
folder (stale locks of a crashed app are taken over) and listens on a local socket; a later
start finds the lock taken, sends its file arguments over the socket, and the first window
queues them and comes to the front.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

__all__ = ["SingleInstance"]

log = logging.getLogger("tingxie.app")

_WAIT_MS = 2000  # for the first instance's server while it is still starting


class SingleInstance(QObject):
    """`claim(files)` is True in the first instance (which then emits `files_received` for
    every later start), False in a later one (its files were handed over)."""

    files_received = Signal(list)

    def __init__(self, data_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = QLockFile(str(data_dir / "app.lock"))
        self._lock.setStaleLockTime(0)  # stale only when its process is gone
        digest = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:12]
        self.name = f"tingxie-{digest}"
        self._server: QLocalServer | None = None

    def claim(self, files: list[str]) -> bool:
        if self._lock.tryLock(100):
            QLocalServer.removeServer(self.name)  # a socket left by a crashed instance
            self._server = QLocalServer(self)
            self._server.newConnection.connect(self._accept)
            if not self._server.listen(self.name):
                log.warning("no single-instance socket (%s)", self._server.errorString())
            return True
        deadline = time.monotonic() + _WAIT_MS / 1000
        while time.monotonic() < deadline:
            if self._send(files):
                return False
            time.sleep(0.1)
        log.warning("another Tingxie holds the library but does not answer; starting anyway")
        return True

    def _send(self, files: list[str]) -> bool:
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(200):
            return False
        paths = [str(Path(f).resolve()) for f in files]
        socket.write(json.dumps(paths).encode() + b"\n")
        sent = socket.waitForBytesWritten(1000)
        socket.disconnectFromServer()
        return sent

    def _accept(self) -> None:
        while self._server is not None and self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            socket.readyRead.connect(lambda s=socket: self._read(s))
            socket.disconnected.connect(socket.deleteLater)
            self._read(socket)  # the message may have arrived with the connection

    def _read(self, socket: QLocalSocket) -> None:
        if not socket.canReadLine() and not socket.waitForReadyRead(500):
            return  # the rest comes with readyRead
        try:
            paths = json.loads(bytes(socket.readLine()).decode())
        except ValueError:
            log.warning("ignored a malformed message from a second start")
            return
        log.info("a second start handed over %d file(s)", len(paths))
        self.files_received.emit([p for p in paths if isinstance(p, str)])
