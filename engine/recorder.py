"""Microphone capture (sounddevice / PortAudio), written to disk as it is captured.

The PortAudio callback only copies each block into a queue. A writer thread resamples it to
16 kHz mono, appends it to a 16-bit WAV, hands `on_audio` the samples as written, and every
`SYNC_SECONDS` rewrites the WAV header and fsyncs, so the file on disk is always a valid WAV
that is at most that much behind the microphone (a recording stops at the ~37.3 h a WAV can
hold). A sidecar marker (`<name>.wav.recording`) exists while the recording runs and is removed
by a clean `stop()`; `find_unfinished` lists the recordings whose marker was left behind by a
crash or kill (or put back by `mark_unfinished`: the app closed before it kept the
transcript), and `recover` repairs them.

sounddevice is imported on first use (`_portaudio`), not with this module: importing it loads
the PortAudio system library, and where that is missing (libportaudio2 not installed) only
capture fails, with a message saying so; the crash-recovery scan, which only reads files, works.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from .audio import SAMPLE_RATE, StreamResampler
from .errors import TingxieError

__all__ = [
    "InputDevice",
    "MicrophoneError",
    "Recorder",
    "default_input_device",
    "find_device_name",
    "find_unfinished",
    "list_input_devices",
    "mark_unfinished",
    "recover",
]

log = logging.getLogger("tingxie.recorder")

SYNC_SECONDS = 0.5  # header rewrite + fsync period: what a kill can lose at most (plus a block)
LOST_AFTER_SECONDS = 3.0  # no audio for this long while recording means the device is gone
FIRST_BLOCK_SECONDS = 10.0  # ... except before the first block (audio servers start slowly)
MARKER_SUFFIX = ".recording"
_HEADER_BYTES = 44  # canonical PCM WAV header
_SAMPLE_BYTES = 2  # 16-bit PCM
# The header counts bytes in unsigned 32 bits, the RIFF size being the data's plus 36: at most
# 4 GiB less 38 bytes of samples, ~37.3 h at 16 kHz. A recording stops there.
_MAX_DATA_BYTES = (2**32 - 1 - 36) // _SAMPLE_BYTES * _SAMPLE_BYTES
_MAX_FRAMES = _MAX_DATA_BYTES // _SAMPLE_BYTES
_STOP = object()  # queue sentinel
_ACTIVE: set[Path] = set()  # recordings this process is writing now (not "unfinished")

sd: Any = None  # the sounddevice module once `_portaudio` imported it (tests put a fake here)


class MicrophoneError(TingxieError, RuntimeError):
    """Capture failed; the message is one line saying what happened and what to do."""


def _portaudio() -> Any:
    """sounddevice, imported on first use. Its import loads the PortAudio library and raises
    OSError ("PortAudio library not found") where libportaudio2 is not installed: that becomes
    a `MicrophoneError` saying what to install. Tried again on each call, so installing the
    library while the app runs is enough."""
    global sd
    if sd is None:
        try:
            import sounddevice
        except OSError as e:
            raise MicrophoneError("microphone.no_portaudio") from e
        sd = sounddevice
    return sd


@dataclass(frozen=True, slots=True)
class InputDevice:
    """A capture device as PortAudio lists it."""

    index: int
    name: str
    channels: int  # maximum input channels
    default_samplerate: float
    is_default: bool = False
    # System audio: the PulseAudio/PipeWire source (the monitor of an output) recorded through
    # PortAudio's "pulse" device; None for a plain capture device.
    source: str | None = None

    @property
    def is_system_audio(self) -> bool:
        return self.source is not None


SYSTEM_AUDIO = "System audio: "  # the label's prefix of a monitor (the app words it)


def _monitor_sources() -> list[tuple[str, str]]:
    """(name, description) of the sound server's monitor sources: what each output plays.
    Empty where there is no PulseAudio-compatible server (or no pactl)."""
    import shutil
    import subprocess

    if shutil.which("pactl") is None:
        return []
    try:
        done = subprocess.run(["pactl", "--format=json", "list", "sources"], capture_output=True,
                              text=True, timeout=3, check=True)  # fmt: skip
        sources = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    return [
        (str(s["name"]), str(s.get("description") or s["name"]))
        for s in sources
        if isinstance(s, dict) and "name" in s and _is_monitor(s)
    ]


def _is_monitor(source: dict) -> bool:
    properties = source.get("properties")
    kind = properties.get("device.class") if isinstance(properties, dict) else None
    return kind == "monitor" or str(source["name"]).endswith(".monitor")


def _system_audio(devices: list[InputDevice]) -> list[InputDevice]:
    pulse = next((d for d in devices if d.name == "pulse"), None)
    if pulse is None:
        return []
    return [
        InputDevice(
            pulse.index,
            SYSTEM_AUDIO + description,
            pulse.channels,
            pulse.default_samplerate,
            source=name,
        )
        for name, description in _monitor_sources()
    ]


@contextlib.contextmanager
def _opened_on(device: InputDevice):
    """While PortAudio opens `device`: a system-audio device points the sound server's client
    library at its monitor (PULSE_SOURCE, read when the "pulse" device opens)."""
    if device.source is None:
        yield
        return
    before = os.environ.get("PULSE_SOURCE")
    os.environ["PULSE_SOURCE"] = device.source
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PULSE_SOURCE", None)
        else:
            os.environ["PULSE_SOURCE"] = before


def list_input_devices(*, refresh: bool = False) -> list[InputDevice]:
    """Every device with at least one input channel (the system default flagged).

    PortAudio lists devices once, when it starts; `refresh=True` restarts it to see devices
    plugged in (or audio servers started) since. Ignored while this process records.
    """
    sd = _portaudio()
    if refresh and not _ACTIVE:
        _restart_portaudio()
    try:
        devices = sd.query_devices()
        default = sd.default.device[0]
    except sd.PortAudioError as e:
        raise MicrophoneError("microphone.query_failed", detail=e) from e
    inputs = [
        InputDevice(
            index=i,
            name=str(d["name"]),
            channels=int(d["max_input_channels"]),
            default_samplerate=float(d["default_samplerate"]),
            is_default=i == default,
        )
        for i, d in enumerate(devices)
        if d["max_input_channels"] > 0
    ]
    return inputs + _system_audio(inputs)


def _restart_portaudio() -> None:
    # sounddevice has no public call for this; these two are what its own docs suggest.
    sd = _portaudio()
    try:
        sd._terminate()
        sd._initialize()
    except (AttributeError, sd.PortAudioError) as e:
        log.warning("could not refresh the device list (%s); restart the app to see new ones", e)


def default_input_device() -> InputDevice | None:
    """The system's default input, else the first input; None when there is none."""
    devices = list_input_devices()
    return next((d for d in devices if d.is_default), devices[0] if devices else None)


# ALSA ends a device's name with its card and device numbers; the card number changes when a
# USB microphone is plugged into another port, or the machine restarts.
_ALSA_NUMBERS = re.compile(r"\s*\(hw:\d+,\d+\)$")


def find_device_name(saved: str, names: Sequence[str]) -> str | None:
    """Which of `names` (the devices listed now) is the device saved as `saved`: the same name;
    else the same but for ALSA's "(hw:CARD,DEVICE)" ("…Audio (hw:2,0)" saved is "…Audio (hw:3,0)"
    once the card number changed); else the one whose name holds it (saved without a suffix
    the name has now). System audio only by its own name. None when none is (or `saved` is
    empty: the system default)."""
    if saved in names:
        return saved
    if not saved or saved.startswith(SYSTEM_AUDIO):
        return None
    bare = _ALSA_NUMBERS.sub("", saved).casefold()
    same = (n for n in names if _ALSA_NUMBERS.sub("", n).casefold() == bare)
    holding = (n for n in names if saved.casefold() in n.casefold())
    return next(same, None) or next(holding, None)


def _resolve_device(device: int | str | None) -> InputDevice:
    devices = list_input_devices()
    if not devices:
        raise MicrophoneError("microphone.none")
    if device is None:
        return default_input_device()  # type: ignore[return-value]
    if isinstance(device, str):
        device = find_device_name(device, [d.name for d in devices]) or device
    for d in devices:
        if d.index == device or d.name == device:
            return d
    names = ", ".join(d.name for d in devices)
    raise MicrophoneError("microphone.not_connected", device=device, names=names)


def _open_settings(device: InputDevice) -> tuple[int, int]:
    """(sample rate, channels) the device accepts: 16 kHz mono if it can, else its own rate."""
    sd = _portaudio()
    native = round(device.default_samplerate) or SAMPLE_RATE
    # last, all its channels: some arrays (ReSpeaker) open with those only; all are mixed to mono
    tries = [
        (SAMPLE_RATE, 1),
        (native, 1),
        (native, min(device.channels, 2)),
        (native, device.channels),
    ]
    last: Exception | None = None
    for rate, channels in dict.fromkeys(tries):
        try:
            with _opened_on(device):
                sd.check_input_settings(
                    device=device.index, samplerate=rate, channels=channels, dtype="float32"
                )
            return rate, channels
        except (sd.PortAudioError, ValueError) as e:
            last = e
    raise _open_error(device, last)


def _open_error(device: InputDevice, error: BaseException | None) -> MicrophoneError:
    text = str(error)
    if any(w in text.lower() for w in ("permission", "denied", "busy", "unavailable")):
        return MicrophoneError("microphone.refused", device=device.name, detail=text)
    return MicrophoneError("microphone.open_failed", device=device.name, detail=text)


class _WavAppender:
    """A 16 kHz mono 16-bit WAV that grows block by block and is valid after every sync."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = open(path, "xb")  # noqa: SIM115 (open for the whole recording)
        self.frames = 0
        try:
            self._fh.write(_wav_header(0))
            self.sync()  # a kill before the first block still leaves a valid (empty) WAV
        except OSError:  # a full disk: no empty file left behind
            self.discard()
            raise

    @property
    def full(self) -> bool:
        """Whether the header can count no more samples (~37.3 h)."""
        return self.frames >= _MAX_FRAMES

    def append(self, samples: np.ndarray) -> np.ndarray:
        """Append float samples as 16-bit, as many as the header can still count. Returns those
        written, as the file holds them (int16)."""
        pcm = _pcm16(samples[: _MAX_FRAMES - self.frames])
        self._fh.write(pcm.tobytes())
        self.frames += len(pcm)
        return pcm

    def sync(self) -> None:
        """Write the header for what has been appended and push everything to the disk."""
        self._fh.seek(0)
        self._fh.write(_wav_header(self.frames * _SAMPLE_BYTES))
        self._fh.seek(0, os.SEEK_END)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        try:
            self.sync()
        finally:
            self._fh.close()

    def discard(self) -> None:
        """Close and remove the file: a recording that could not begin (nothing is in it)."""
        with contextlib.suppress(OSError):  # flushing to a full disk fails again; closes anyway
            self._fh.close()
        self.path.unlink(missing_ok=True)

    def salvage(self) -> float:
        """After a failed write (a full disk): cut the file to the whole samples that reached
        the disk and make the header say so, which needs no new space. Returns their seconds."""
        with contextlib.suppress(OSError):  # flushing the rest fails again; closes anyway
            self._fh.close()
        with open(self.path, "r+b") as fh:
            data = _fit_header(fh, self.path.stat().st_size)
        return data / _SAMPLE_BYTES / SAMPLE_RATE


def _pcm16(samples: np.ndarray) -> np.ndarray:
    """float samples (clipped to ±1) as 16-bit PCM, rounded."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")


def _wav_header(data_bytes: int, rate: int = SAMPLE_RATE) -> bytes:
    byte_rate = rate * _SAMPLE_BYTES
    return (
        struct.pack("<4sI4s", b"RIFF", 36 + data_bytes, b"WAVE")
        + struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, rate, byte_rate, _SAMPLE_BYTES, 16)
        + struct.pack("<4sI", b"data", data_bytes)
    )


def _fit_header(fh, size: int) -> int:
    """Cut an open WAV of `size` bytes to the whole samples it holds, at most those a header can
    count (an older version wrote past them, by up to a sync), and write the header for them
    (shrinking and rewriting 44 bytes need no new disk space). Returns the data bytes."""
    data = min(max(0, size - _HEADER_BYTES) // _SAMPLE_BYTES * _SAMPLE_BYTES, _MAX_DATA_BYTES)
    fh.truncate(_HEADER_BYTES + data)
    fh.seek(0)
    fh.write(_wav_header(data))
    fh.flush()
    os.fsync(fh.fileno())
    return data


def _marker(path: Path) -> Path:
    return path.with_name(path.name + MARKER_SUFFIX)


def _write_marker(path: Path, device: str = "") -> None:
    record = {
        "pid": os.getpid(),
        "started": _process_started(os.getpid()),
        "sample_rate": SAMPLE_RATE,
        "device": device,
    }
    _marker(path).write_text(json.dumps(record), encoding="utf-8")


def mark_unfinished(path: str | os.PathLike[str]) -> None:
    """Have the next start offer the recording at `path` back, as after a crash
    (`find_unfinished`): for one the app closed before it could keep its transcript. Raises
    OSError when the marker cannot be written."""
    _write_marker(Path(path))


def _folder_error(path: Path, error: OSError) -> MicrophoneError:
    """The recordings folder cannot take `path` (read-only, full): its error, naming it."""
    return MicrophoneError(
        "recording.folder", path=path.parent, detail=error.strerror or str(error)
    )


class Recorder:
    """Records one microphone to `path` (a new 16 kHz mono WAV) until `stop()`.

    `on_audio` receives each block as 16 kHz mono float32, exactly the samples `load_audio`
    reads back from the file (16-bit / 32768: live text and the file's text come from the same
    audio), from the recorder's writer thread (never the UI thread; keep it cheap). `on_error`
    receives a `MicrophoneError` if the recording ends by itself (the device lost, the disk
    full, the WAV's ~37.3 h reached); the audio captured so far stays in `path`, and `stop()`
    raises it too. To change device, stop this recorder and start a new one.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        device: int | str | None = None,
        on_audio: Callable[[np.ndarray], None] | None = None,
        *,
        on_error: Callable[[MicrophoneError], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.device_request = device
        self.on_audio = on_audio
        self.on_error = on_error
        self.device: InputDevice | None = None
        self.sample_rate = 0  # the rate the device was opened at
        self.error: MicrophoneError | None = None
        self._queue: queue.Queue = queue.Queue()
        self._paused = threading.Event()
        self._stream: Any = None  # the sounddevice.InputStream while recording
        self._writer: threading.Thread | None = None
        self._stopping = False
        self._ended = False  # the writer is done: the device's audio is dropped until stop()
        self._disk_error: OSError | None = None

    @property
    def seconds(self) -> float:
        """Audio written so far (pauses excluded)."""
        return self._wav.frames / SAMPLE_RATE if self._writer else 0.0

    def start(self) -> None:
        """Open the device and start writing; raises `MicrophoneError` if it cannot."""
        if self._writer is not None:
            raise RuntimeError(f"recorder for {self.path} was already started")
        sd = _portaudio()  # first: without PortAudio there is no device list to look in
        self.device = _resolve_device(self.device_request)
        rate, channels = _open_settings(self.device)
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"{self.path.parent}: folder does not exist; create it first")
        try:
            with _opened_on(self.device):
                stream = sd.InputStream(
                    samplerate=rate,
                    device=self.device.index,
                    channels=channels,
                    dtype="float32",
                    callback=self._callback,
                    finished_callback=self._finished,
                )
        except (sd.PortAudioError, ValueError) as e:
            raise _open_error(self.device, e) from e
        self._resampler = StreamResampler(rate, channels)
        try:
            self._wav = self._create_files(self.device.name)
        except Exception:
            stream.close()
            raise
        _ACTIVE.add(self.path)
        self.sample_rate, self._stream = rate, stream
        self._writer = threading.Thread(target=self._write_loop, name="recorder-writer")
        self._writer.start()
        try:
            stream.start()
        except sd.PortAudioError as e:
            self._stopping = True
            self._queue.put(_STOP)
            self._writer.join()
            with contextlib.suppress(sd.PortAudioError):
                stream.close()
            self.path.unlink(missing_ok=True)  # nothing was captured
            raise _open_error(self.device, e) from e
        log.info("recording %s from %s at %d Hz", self.path, self.device.name, rate)

    def _create_files(self, device: str) -> _WavAppender:
        """The WAV and its marker, or neither. A folder that cannot take them (read-only, full)
        is the recordings folder's error, naming it; a file of that name already there is left
        as it is (FileExistsError)."""
        try:
            wav = _WavAppender(self.path)
        except FileExistsError:
            raise
        except OSError as e:
            raise _folder_error(self.path, e) from e
        try:
            _write_marker(self.path, device)
        except OSError as e:
            wav.discard()
            _marker(self.path).unlink(missing_ok=True)
            raise _folder_error(self.path, e) from e
        return wav

    def pause(self) -> None:
        """Drop audio until `resume()` (the device stays open, so resuming is instant)."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def stop(self) -> Path:
        """Stop capture, complete the WAV and return its path. Raises the `MicrophoneError` of
        a device lost mid-recording, after saving everything captured before."""
        if self._writer is None:
            raise RuntimeError(f"recorder for {self.path} was not started")
        sd = _portaudio()  # imported already: start() opened a stream with it
        self._stopping = True
        if self._stream is not None:
            with contextlib.suppress(sd.PortAudioError):
                self._stream.stop()
            with contextlib.suppress(sd.PortAudioError):
                self._stream.close()
            self._stream = None
        self._queue.put(_STOP)
        self._writer.join()
        if self.error is not None:
            raise self.error
        return self.path

    # PortAudio's thread: copy and queue, nothing else.
    def _callback(self, indata: np.ndarray, frames: int, time, status) -> None:
        if not self._paused.is_set() and not self._ended:
            self._queue.put(indata.copy())

    def _finished(self) -> None:
        if not self._stopping:
            self._queue.put(_STOP)

    def _write_loop(self) -> None:
        """Writer thread: write until the recording ends; every way it ends reaches `_close`,
        and every failure `on_error`."""
        try:
            self._write_blocks()
        except OSError as e:  # disk full, folder removed: keep what reached the disk
            # (the resampler's last samples are not flushed: this file takes no more writes)
            self._disk_error = e
        except Exception as e:  # a bug: never a thread that dies unheard
            log.exception("writing %s failed", self.path)
            detail = f"{type(e).__name__}: {e}"
            self._fail(MicrophoneError("recording.failed", path=self.path, detail=detail))
        finally:
            self._close()

    def _write_blocks(self) -> None:
        """Resample, append, sync every SYNC_SECONDS, until stopped, the device is lost, or the
        WAV is full; then the resampler's last samples, unless full."""
        since_sync = 0
        sync_every = round(SYNC_SECONDS * SAMPLE_RATE)
        timeout = max(FIRST_BLOCK_SECONDS, LOST_AFTER_SECONDS)
        while (block := self._next_block(timeout)) is not _STOP:
            timeout = LOST_AFTER_SECONDS
            audio = self._resampler.process(block)
            self._emit(audio)
            if self._wav.full:
                hours = _MAX_FRAMES / SAMPLE_RATE / 3600
                self._fail(MicrophoneError("recording.too_long", path=self.path, hours=hours))
                return
            since_sync += len(audio)
            if since_sync >= sync_every:
                self._wav.sync()
                since_sync = 0
        self._flush_resampler()

    def _next_block(self, timeout: float) -> Any:
        """The device's next block, or _STOP when the recording ends: stopped, or the device
        lost (gone, or silent for `timeout` seconds unpaused), which is reported."""
        while True:
            try:
                block = self._queue.get(timeout=timeout)
            except queue.Empty:
                if self._paused.is_set():
                    continue
                self._fail(self._lost("microphone.stalled"))
                return _STOP
            if block is _STOP and not self._stopping:
                self._fail(self._lost("microphone.disappeared"))
            return block

    def _emit(self, audio: np.ndarray) -> None:
        """Append `audio` and hand `on_audio` what the file holds of it (as it reads back)."""
        if len(audio) == 0:
            return
        written = self._wav.append(audio)
        if self.on_audio is not None and len(written):
            try:
                self.on_audio(written * np.float32(1 / 32768))
            except Exception:  # a listener's bug must not stop the recording
                log.exception("on_audio failed; recording continues")

    def _flush_resampler(self) -> None:
        if self._resampler.in_rate != SAMPLE_RATE:
            self._emit(self._resampler.process(np.zeros((0, 1), np.float32), last=True))

    def _close(self) -> None:
        self._ended = True
        _ACTIVE.discard(self.path)
        if self._disk_error is None:
            try:
                self._wav.close()
            except OSError as e:
                self._disk_error = e
        if self._disk_error is not None:
            reason = self._disk_error.strerror or str(self._disk_error)
            try:
                seconds = self._wav.salvage()
            except OSError:
                self._fail(MicrophoneError("recording.write_failed", path=self.path, detail=reason))
                return  # the marker stays: the next start offers to repair the file
            self._fail(
                MicrophoneError(
                    "recording.write_failed_kept", path=self.path, detail=reason, seconds=seconds
                )
            )
        # A valid WAV now, however the recording ended (a lost device included): the app has
        # it already, so the next start must not offer it back.
        _marker(self.path).unlink(missing_ok=True)

    def _lost(self, code: str) -> MicrophoneError:
        name = self.device.name if self.device else "?"
        return MicrophoneError(code, device=name, path=self.path)

    def _fail(self, error: MicrophoneError) -> None:
        log.warning("%s", error)
        self.error = self.error or error
        if self.on_error is not None:
            self.on_error(self.error)


def _process_started(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch); None when there is no such
    process, or it may not be asked."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _marker_pid_alive(marker: Path) -> bool:
    """Whether the process that wrote `marker` still records. Its pid alone is not enough: after
    a crash and a reboot the number may belong to another process, so the start time must match
    too (markers written before it was kept: the pid alone)."""
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
        pid, started = int(record.get("pid", 0)), record.get("started")
    except (OSError, ValueError, TypeError, AttributeError):
        return False
    if pid <= 0 or pid == os.getpid() or not psutil.pid_exists(pid):
        return False
    now = _process_started(pid)
    if started is None or now is None:
        return True  # cannot tell: a live recording must never be taken over
    return abs(now - float(started)) < 1.0


def find_unfinished(folder: str | os.PathLike[str]) -> list[Path]:
    """Recordings in `folder` that were not stopped cleanly (their process is gone)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for marker in sorted(folder.glob("*" + MARKER_SUFFIX)):
        wav = marker.with_name(marker.name[: -len(MARKER_SUFFIX)])
        alive = _marker_pid_alive(marker) or wav in _ACTIVE
        if not alive and (not wav.is_file() or wav.stat().st_size <= _HEADER_BYTES):
            wav.unlink(missing_ok=True)  # killed before its first block: nothing to offer back
            marker.unlink(missing_ok=True)
        elif not alive:
            found.append(wav)
    return found


def recover(path: str | os.PathLike[str]) -> Path:
    """Repair an unfinished recording in place: header sizes set to the audio actually on
    disk (a half-written last sample dropped). Returns the path, now a valid WAV.

    Its header is written anew from the one format the recorder writes (16 kHz mono 16-bit
    after 44 bytes), so one that a crash left unreadable (zeros) loses no audio; a file
    without a WAV header nor a marker is not a recording and is left alone. A file that
    cannot be repaired now (read-only, held open by another program, a disk error) keeps its
    audio and its marker: offered again at the next start, when the cause may have passed."""
    path = Path(path)
    marker = _marker(path)
    try:
        size = path.stat().st_size
        with open(path, "r+b") as fh:
            head = fh.read(_HEADER_BYTES)
            ours = head[:4] == b"RIFF" and head[36:40] == b"data"
            if not ours and not marker.exists():
                raise MicrophoneError("recording.not_a_recording", path=path)
            if not ours:
                log.warning("%s has no readable WAV header; writing it anew", path)
            data = _fit_header(fh, size)
    except OSError as e:
        raise MicrophoneError("recording.repair_failed", path=path, detail=e) from e
    marker.unlink(missing_ok=True)
    log.info("recovered %s (%.1f s)", path, data / _SAMPLE_BYTES / SAMPLE_RATE)
    return path
