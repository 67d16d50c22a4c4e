"""One running app per library: a second start hands its files to the first window and exits.

Why one: the open transcript's edit chain lives in its window until saved, so two windows on
one library would overwrite each other's edits. The first start holds a lock file in the data
folder (stale locks of a crashed app are taken over) and listens on a local socket; a later
start finds the lock taken, sends its file arguments over the socket, and the first window
queues them and comes to the front.

The message is a JSON object and a newline: the paths ("files") and the wall-clock time until
which the sender waits for an answer ("until", seconds since the epoch). The first instance
takes the files only before that time, and then answers "ok" and a newline at once, before its
window queues them; after it, the sender has given up and opens its own window with the files,
so the first drops the message (its UI thread was busy past the sender's wait: without the
stamp both queued the files, and both transcribed them). The sender reads answers for a grace
time past its deadline (_GRACE_MS), so that an answer written just before it is not missed; an
answer is only ever written before the deadline, so the two never both take the files. (Both
read the same system clock; a step back of more than the grace time during a hand-over is the
one case left.) A large selection ("Open with" on thousands of files) is more than a socket
carries at once: the sender waits until all of it is written, and the receiver collects each
connection's bytes until the newline.

Only the answer counts as handed over. A first instance that is quitting stops listening as
its window starts to close (before its UI thread waits for the engine, up to 15 s): a later
start then finds the lock held and no one listening, and waits for the lock (_QUIT_MS), so that
it opens its window on the library once the first has quit. One that connects and gets no
answer (a first instance that hangs) opens its own window with its files rather than exit with
them lost.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import time
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

__all__ = ["SingleInstance"]

log = logging.getLogger("tingxie.app")

_CONNECTED = QLocalSocket.LocalSocketState.ConnectedState
_LOCK = "app.lock"

# for the lock while its holder has no server: it is starting (and listens within moments) or
# quitting (its window waits up to 15 s for the engine, then the library closes)
_QUIT_MS = 20_000
_SEND_MS = 5000  # for the first instance to take the whole message and answer (its UI thread)
# past _SEND_MS, for an answer written before it to be read: the first instance writes it at once
# after its check of the deadline, so this covers only the two processes' scheduling
_GRACE_MS = 1000
_ACK = b"ok\n"


class SingleInstance(QObject):
    """`claim(files)` is True in the first instance (which then emits `files_received` for
    every later start until `stop_listening`), False in a later one (its files were handed
    over)."""

    files_received = Signal(list)

    def __init__(self, data_dir: Path, parent: QObject | None = None) -> None:
        """Raises OSError when `data_dir` cannot be made or its lock file cannot be written
        (a read-only folder): nothing could be kept there."""
        super().__init__(parent)
        data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = QLockFile(str(data_dir / _LOCK))
        self._lock.setStaleLockTime(0)  # stale only when its process is gone
        digest = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:12]
        self.name = f"tingxie-{digest}"
        self._server: QLocalServer | None = None
        self._held = self._take_lock(data_dir)

    def _take_lock(self, data_dir: Path) -> bool:
        """True when this start holds the lock now, False when another running app does."""
        if self._lock.tryLock(100):
            return True
        error = self._lock.error()
        if error == QLockFile.LockError.LockFailedError:
            return False  # held by a live process
        # PermissionError (a read-only folder or mount) or UnknownError: no lock file can be
        # made, and neither can anything else there; not another app that does not answer.
        if error == QLockFile.LockError.PermissionError:
            raise OSError(errno.EACCES, f"not writable: cannot create {_LOCK} in it", str(data_dir))
        raise OSError(errno.EIO, f"cannot create {_LOCK} in it", str(data_dir))

    def claim(self, files: list[str]) -> bool:
        if self._held or self._lock.tryLock(100):
            self._listen()
            return True
        deadline = time.monotonic() + _QUIT_MS / 1000
        while True:
            sent = self._send(files)
            if sent:
                return False
            if self._lock.tryLock(100):  # the running app has quit meanwhile
                self._listen()
                return True
            if sent is False or time.monotonic() >= deadline:  # False: heard, did not answer
                break
            time.sleep(0.1)
        log.warning("another Tingxie holds the library but did not take the files (it does not "
                    "answer, or it is quitting); starting anyway")  # fmt: skip
        return True

    def stop_listening(self) -> None:
        """Take no more files from later starts: the window that would queue them is closing.
        Those that connected meanwhile get no answer, and open their own window."""
        if self._server is None:
            return
        self._server.close()  # also drops the connections it had not handed out
        for socket in self._server.findChildren(QLocalSocket):  # those it had: their senders
            socket.abort()  # see the connection end without an answer at once
        self._server = None

    def _listen(self) -> None:
        QLocalServer.removeServer(self.name)  # a socket left by a crashed instance
        self._server = QLocalServer(self)
        self._server.newConnection.connect(self._accept)
        if not self._server.listen(self.name):
            log.warning("no single-instance socket (%s)", self._server.errorString())

    def _send(self, files: list[str]) -> bool | None:
        """Whether the first instance took the files: the whole message written, and its
        answer read, within _SEND_MS (and the grace time). None when no one listens or the
        connection was closed unanswered (the first instance starts, or quits); False when it
        hears and does not answer (it hangs, or is busy past the deadline: it then drops them)."""
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(200):
            return None
        paths = [str(Path(f).resolve()) for f in files]
        deadline = time.monotonic() + _SEND_MS / 1000
        until = time.time() + _SEND_MS / 1000
        message = json.dumps({"files": paths, "until": until}).encode() + b"\n"
        socket.write(message)
        # One wait writes what the socket takes at once (some 200 KB): wait until all is out.
        while socket.bytesToWrite() > 0 and _wait(socket, deadline, socket.waitForBytesWritten):
            pass
        deadline += _GRACE_MS / 1000  # an answer written before `until` arrives within it
        while socket.bytesToWrite() == 0 and not socket.canReadLine():
            if not _wait(socket, deadline, socket.waitForReadyRead):
                break
        if socket.canReadLine() and bytes(socket.readLine()) == _ACK:
            socket.disconnectFromServer()
            return True
        unsent = socket.bytesToWrite()
        heard = socket.state() == _CONNECTED  # else it stopped listening: it quits
        why = "no answer" if heard else socket.errorString()
        log.warning("could not hand %d file(s) over to the running Tingxie (%d of %d bytes "
                    "unsent; %s)", len(paths), unsent, len(message), why)  # fmt: skip
        socket.abort()  # the first instance drops a message without its newline
        return False if heard else None

    def _accept(self) -> None:
        while self._server is not None and self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            received = bytearray()  # this connection's bytes until the newline
            socket.readyRead.connect(lambda s=socket, b=received: self._read(s, b))
            socket.disconnected.connect(lambda s=socket, b=received: self._closed(s, b))
            self._read(socket, received)  # the message may have arrived with the connection

    def _read(self, socket: QLocalSocket, received: bytearray) -> None:
        received += bytes(socket.readAll())  # an empty read (readyRead after all) adds nothing
        while (end := received.find(b"\n")) >= 0:  # the rest of a message comes with readyRead
            line = bytes(received[:end])
            del received[: end + 1]
            self._message(socket, line)

    def _message(self, socket: QLocalSocket, line: bytes) -> None:
        message = _parse(line)
        if message is None:
            log.warning("ignored a malformed message from a second start")
            return
        paths, until = message
        if time.time() >= until:  # checked right before the answer: see the module docstring
            log.info("dropped %d file(s) from a second start that stopped waiting for an answer "
                     "(it opens them itself)", len(paths))  # fmt: skip
            return
        socket.write(_ACK)  # before the window queues them, which may take longer than the wait
        socket.flush()
        log.info("a second start handed over %d file(s)", len(paths))
        self.files_received.emit(paths)

    def _closed(self, socket: QLocalSocket, received: bytearray) -> None:
        if socket.bytesAvailable():
            self._read(socket, received)
        if received:  # the sender gave up mid-message (and tries again, or starts a window)
            log.info("dropped an incomplete message (%d bytes) from a second start", len(received))
            received.clear()
        socket.deleteLater()


def _parse(line: bytes) -> tuple[list[str], float] | None:
    """The paths of a message and the time (time.time()) until which its sender waits; None
    for a line that is not such a message."""
    try:
        message = json.loads(line.decode())
    except ValueError:  # UnicodeDecodeError too
        return None
    if not isinstance(message, dict):
        return None
    files, until = message.get("files"), message.get("until")
    if not isinstance(files, list) or not isinstance(until, (int, float)):
        return None
    return [p for p in files if isinstance(p, str)], float(until)


def _wait(socket: QLocalSocket, deadline: float, wait) -> bool:
    """One `wait` (waitForBytesWritten or waitForReadyRead) of at most 500 ms before
    `deadline`; False once the deadline has passed or the connection is gone."""
    left_ms = int((deadline - time.monotonic()) * 1000)
    if left_ms <= 0 or socket.state() != _CONNECTED:
        return False
    wait(min(left_ms, 500))
    return True
