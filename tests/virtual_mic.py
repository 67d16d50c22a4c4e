"""A virtual microphone for end-to-end tests: a private PulseAudio server whose default source
is the monitor of a null sink, so whatever `paplay` plays into the sink is what a program
recording from the "pulse" (or "default") PortAudio/ALSA device hears.

Not a test module. Use the `virtual_mic` fixture (import it into a test module:
`from virtual_mic import virtual_mic  # noqa: F401`), or `start_virtual_mic(folder)` directly.
Needs the Debian packages pulseaudio, pulseaudio-utils and libasound2-plugins (listed in
packaging/debian-packages.txt); the fixture skips with the reason when they are missing.
Runs as root or not; touches no system file (everything lives under a temporary folder).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["SINK", "SOURCE", "VirtualMic", "VirtualMicUnavailable", "start_virtual_mic"]

SINK = "tingxie_sink"
SOURCE = "tingxie_mic"
RATE = 16_000

_CONFIG = """\
load-module module-native-protocol-unix auth-anonymous=1 socket={socket}
load-module module-null-sink sink_name={sink} rate={rate} channels=1
load-module module-remap-source source_name={source} master={sink}.monitor
set-default-sink {sink}
set-default-source {source}
"""


class VirtualMicUnavailable(RuntimeError):
    """PulseAudio could not be started here; the message says why."""


@dataclass
class VirtualMic:
    """A running private PulseAudio server. `env` holds the variables a client needs."""

    folder: Path
    process: subprocess.Popen
    env: dict[str, str] = field(default_factory=dict)
    keeper: subprocess.Popen | None = None

    @property
    def server(self) -> str:
        return self.env["PULSE_SERVER"]

    def play(self, path: str | os.PathLike[str]) -> subprocess.Popen:
        """Start playing an audio file into the virtual microphone (returns the paplay)."""
        return subprocess.Popen(
            ["paplay", f"--device={SINK}", str(path)],
            env={**os.environ, **self.env},
            stderr=subprocess.PIPE,
        )

    def pactl(self, *args: str) -> str:
        done = subprocess.run(
            ["pactl", *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=10,
        )
        if done.returncode != 0:
            raise VirtualMicUnavailable(f"pactl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def keep_warm(self, timeout: float = 15.0) -> None:
        """Keep a low-latency reader on the source, and wait until audio flows. Without one
        the null sink runs in ~2 s blocks while idle, so a new recording would get its first
        audio ~2 s late."""
        self.keeper = self._parec(subprocess.DEVNULL)
        probe = self._parec(subprocess.PIPE)
        timer = threading.Timer(timeout, probe.kill)
        timer.start()
        try:
            got = probe.stdout.read(3200)  # 0.1 s of 16 kHz 16-bit mono
        finally:
            timer.cancel()
            probe.kill()
            probe.wait()
            probe.stdout.close()
        if len(got) < 3200:
            raise VirtualMicUnavailable(f"no audio from {SOURCE} within {timeout:.0f} s")

    def _parec(self, stdout) -> subprocess.Popen:
        return subprocess.Popen(
            ["parec", "--latency-msec=20", f"--device={SOURCE}", "--raw", "--rate=16000"],
            env={**os.environ, **self.env},
            stdout=stdout,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.keeper is not None:
            self.keeper.kill()
            self.keeper.wait()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def missing_tools() -> list[str]:
    return [t for t in ("pulseaudio", "paplay", "pactl", "parec") if shutil.which(t) is None]


def start_virtual_mic(folder: Path, timeout: float = 15.0) -> VirtualMic:
    """Start PulseAudio with a null sink and its monitor as the default source."""
    folder.mkdir(parents=True, exist_ok=True)
    socket = folder / "native"
    config = folder / "pulse.pa"
    config.write_text(_CONFIG.format(socket=socket, sink=SINK, source=SOURCE, rate=RATE))
    env = {
        "PULSE_SERVER": f"unix:{socket}",
        "PULSE_RUNTIME_PATH": str(folder / "runtime"),
        "PULSE_STATE_PATH": str(folder / "state"),
        "PULSE_COOKIE": str(folder / "cookie"),
    }
    server_env = {**os.environ, **env, "HOME": str(folder), "XDG_RUNTIME_DIR": str(folder)}
    server_env.pop("PULSE_SERVER")
    log = folder / "pulseaudio.log"
    process = subprocess.Popen(
        [
            "pulseaudio",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--system=false",
            "--disallow-exit",
            "-n",
            "-F",
            str(config),
            f"--log-target=file:{log}",
        ],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    mic = VirtualMic(folder, process, env)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            text = log.read_text(errors="replace")[-500:] if log.exists() else ""
            raise VirtualMicUnavailable(f"pulseaudio exited ({process.returncode}): {text}")
        try:
            if SOURCE in mic.pactl("list", "short", "sources"):
                mic.keep_warm()
                return mic
        except (VirtualMicUnavailable, subprocess.TimeoutExpired):
            pass
        if time.monotonic() > deadline:
            mic.stop()
            raise VirtualMicUnavailable(f"pulseaudio did not come up within {timeout:.0f} s")
        time.sleep(0.1)


@pytest.fixture
def virtual_mic(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Iterator[VirtualMic]:
    """A virtual microphone for one test; PortAudio is restarted so it sees the "pulse"
    device, and PULSE_SERVER points this process (and its children) at the server."""
    missing = missing_tools()
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install pulseaudio-utils)")
    # A short path: unix socket names are limited to about 100 characters.
    folder = Path(tmp_path_factory.mktemp("pa", numbered=True))
    mic = start_virtual_mic(folder)
    for key, value in mic.env.items():
        monkeypatch.setenv(key, value)
    from engine.recorder import list_input_devices

    try:
        names = [d.name for d in list_input_devices(refresh=True)]
        if "pulse" not in names:
            raise VirtualMicUnavailable(
                f"PortAudio lists no 'pulse' input ({names}); install libasound2-plugins"
            )
        yield mic
    finally:
        mic.stop()
        monkeypatch.undo()
        list_input_devices(refresh=True)  # forget the server for later tests
