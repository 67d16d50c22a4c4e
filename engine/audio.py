"""Reading audio and video files: the only module in Tingxie that touches them.

Every file becomes float32 mono at 16 kHz through a chain of small private generator steps:
decode (soundfile for wav/flac/ogg/opus; PyAV for mp3, AAC and the audio track of video files)
→ mix to mono and resample (soxr, streaming) → regroup into fixed-length blocks. Nothing holds
more than a block or two, so memory stays bounded whatever the length of the file. Every problem
with a file is an `AudioError` whose one-line message names the file, the problem and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import math
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import soundfile as sf
import soxr

from .errors import TingxieError

if TYPE_CHECKING:
    import av  # imported where FFmpeg decodes: 16 MB resident that WAV and FLAC never need

__all__ = [
    "SAMPLE_RATE",
    "SUPPORTED_EXTENSIONS",
    "AudioError",
    "AudioInfo",
    "SampleGuard",
    "StreamResampler",
    "as_samples",
    "is_supported",
    "iter_audio",
    "joined",
    "load_audio",
    "open_source",
    "probe",
    "read_span",
    "write_wav",
]

log = logging.getLogger("tingxie.audio")

# What every model in the wav2vec2 family expects.
SAMPLE_RATE = 16_000

# Read by libsndfile (soundfile), which knows exact lengths and seeks sample-accurately.
_SOUNDFILE_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".caf", ".w64"}
)
# Read by FFmpeg (PyAV): AAC/ALAC audio and the audio track of video containers; and MP3, because
# libsndfile 1.2.2 returns wrong samples when some MP3 files are read in blocks (whole-file reads
# are right), and reading in blocks is what keeps memory bounded.
_PYAV_EXTENSIONS = frozenset(
    {
        ".mp3",
        ".m4a",
        ".m4b",
        ".aac",
        ".mp4",
        ".m4v",
        ".mkv",
        ".mka",
        ".mov",
        ".webm",
        ".avi",
        ".3gp",
    }
)
SUPPORTED_EXTENSIONS: frozenset[str] = _SOUNDFILE_EXTENSIONS | _PYAV_EXTENSIONS

Backend = Literal["soundfile", "pyav"]
WavSubtype = Literal["PCM_16", "PCM_24", "FLOAT"]

# Native frames per soundfile read: about 1.4 s at 44.1 kHz, small next to an output block.
_READ_FRAMES = 65_536
# Audio decoded before and after a span so the resampler's filter (a few ms long) and a lossy
# decoder starting cold after a seek (a frame or two, up to ~150 ms for 8 kHz MP3) have context.
_SPAN_PAD_SECONDS = 0.3
# FFmpeg formats without an index, where seek positions are estimated from the bit rate (VBR files
# land tens of ms off): spans in these seek by byte to a packet in an index of their own
# (`_packet_index`), with packets' times as decoding from the start gives them.
_ESTIMATED_SEEK_FORMATS = frozenset({"aac", "mp3"})
# Packets decoded and dropped before a span seeked to in those: an MP3 frame's data may begin
# up to 511 bytes back (4 frames at 32 kbit/s), and both codecs overlap each frame with the one
# before; after these, samples are the ones decoding from the start gives.
_PREROLL_PACKETS = 8
# FFmpeg formats whose index gives a track's exact length (MP4 edit lists): decoding stops there,
# cutting the encoder's padding of the last frame. Elsewhere a duration may be estimated from the
# bit rate (an MP3 without a Xing header, joined MP3s, raw AAC: seconds or minutes short), so
# decoding runs to the end of the stream.
_EXACT_LENGTH_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2"})
# A jump in timestamps longer than this is a gap (corrupt packets skipped), not rounding.
_GAP_SECONDS = 0.02
# Audio this much shorter than the length a header promises was cut off (a copy or download
# that stopped); less is a codec's framing (its padding counted or not in the length).
_TRUNCATED_SECONDS = 0.05
# What FFmpeg reads as text or subtitles (its tty demuxer takes any .txt), never audio.
_TEXT_FORMATS = frozenset(
    {
        "tty",
        "srt",
        "webvtt",
        "ass",
        "microdvd",
        "subviewer",
        "subviewer1",
        "sami",
        "jacosub",
        "mpl2",
        "pjs",
        "realtext",
        "stl",
        "vplayer",
        "lrc",
        "aqtitle",
        "scc",
        "mcc",
        "ffmetadata",
    }
)
# If a container seek lands after the wanted time, seek this much further back (doubling).
_SEEK_BACKOFF_SECONDS = 1.0


class AudioError(TingxieError, ValueError):
    """A file that cannot be read as audio; str(e) is "<file>: <problem>; <what to do>"."""

    @property
    def path(self) -> Path:
        return Path(self.params["path"])


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What a file holds, read from its header without decoding the audio."""

    path: Path
    # Seconds on the media's timeline, from its start to the end of the audio (a video whose
    # sound begins late counts the silence before it). For MP3 and raw AAC, FFmpeg estimates it
    # from the bit rate: a guide for progress, never where reading stops.
    duration: float
    sample_rate: int  # the file's own rate, before resampling
    channels: int
    codec: str
    backend: Backend
    # Whether `duration` is the length the file's header or index gives (or its packets' times
    # add up to), so that reading less means the file was cut short; False: an estimate.
    exact: bool = True


def is_supported(path: str | os.PathLike[str]) -> bool:
    """Whether the file's extension is one Tingxie reads (for file dialogs and folder scans)."""
    return Path(path).suffix.lower() in SUPPORTED_EXTENSIONS


# --- opening and probing -------------------------------------------------------------------------


def _one_line(error: BaseException) -> str:
    """A library's error text on one line, without the file name it repeats."""
    text = getattr(error, "error_string", None) or getattr(error, "strerror", None) or str(error)
    return " ".join(str(text).split()).rstrip(".")


def _check_file(path: str | os.PathLike[str]) -> Path:
    """Reject what is not a readable, non-empty file, before any decoding. The type is judged
    by the content (`probe`), not the name: a recording without an extension still opens."""
    p = Path(path).expanduser()
    if not p.exists():
        raise AudioError("audio.missing", path=p)
    if p.is_dir():
        raise AudioError("audio.folder", path=p)
    if not p.is_file():
        raise AudioError("audio.not_a_file", path=p)
    if not os.access(p, os.R_OK):
        raise AudioError("audio.permission", path=p)
    if p.stat().st_size == 0:
        raise AudioError("audio.empty", path=p)
    return p


def _sf_name(p: Path) -> str | bytes:
    """`p` as libsndfile opens it: the file system's bytes on POSIX, where a name that is not
    valid UTF-8 (a Latin-1 réunion.wav from an old Windows share) is text soundfile cannot
    encode; text on Windows, where soundfile opens it by its wide-character name. (PyAV
    encodes such text back to the bytes itself.)"""
    return str(p) if os.name == "nt" else os.fsencode(p)


def _probe_soundfile(p: Path) -> AudioInfo | None:
    """libsndfile's view of the file, or None where FFmpeg should decode it instead."""
    info = sf.info(_sf_name(p))
    if str(info.subtype).startswith("MPEG_LAYER"):  # MP3 inside WAV: see _PYAV_EXTENSIONS
        return None
    if info.frames == 0 or info.samplerate <= 0:
        return _probe_unfinished(p)
    declared = _declared_wav_frames(p) if info.format == "WAV" else None
    if declared is not None:
        _warn_if_truncated(p, info.frames, declared, info.samplerate)
    return AudioInfo(
        path=p,
        duration=info.frames / info.samplerate,
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        codec=str(info.subtype or info.format).lower(),
        backend="soundfile",
    )


def _probe_unfinished(p: Path) -> AudioInfo:
    """A file libsndfile finds empty. A WAV whose header was never finalised (the recorder was
    killed before it wrote the sizes) says it holds 0 frames though audio follows, and FFmpeg
    reads that audio to the end of the file; with nothing there either, there are no samples."""
    try:
        info = _probe_pyav(p)
    except AudioError:
        info = None
    if info is None or info.duration <= 0:
        raise AudioError("audio.no_samples", path=p)
    log.warning(
        "%s: its header says it holds no audio (never finalised: a recording that was not "
        "stopped properly?); transcribing the %.1f s that follow it",
        p,
        info.duration,
    )
    return info


def _declared_wav_frames(p: Path) -> int | None:
    """Frames a RIFF/WAVE header promises (its data chunk size / block align), or None (also
    where the size is 0xFFFFFFFF: a stream's "not known")."""
    with open(p, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        align = None
        while chunk := f.read(8):
            if len(chunk) < 8:
                return None
            name, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if name == b"fmt " and size >= 16:
                fmt = f.read(size + size % 2)
                align = int.from_bytes(fmt[12:14], "little")
            elif name == b"data":
                return size // align if align and size != 0xFFFFFFFF else None
            else:
                f.seek(size + size % 2, os.SEEK_CUR)
    return None


def _warn_if_truncated(p: Path, frames: int, promised: int, rate: int) -> None:
    """A file cut short (a copy or download that stopped) is read as far as it goes, with one
    line saying how much of what its header promised is missing: a WAV's when probed (its
    header and its size disagree), any other's once decoding ended early (`_checked_end`)."""
    if promised - frames > _TRUNCATED_SECONDS * rate:
        log.warning(
            "%s: truncated: %.1f s of the %.1f s its header promises are missing; "
            "transcribing the %.1f s that are there",
            p,
            (promised - frames) / rate,
            promised / rate,
            frames / rate,
        )


def _unrecognized(p: Path) -> AudioError:
    supported = " ".join(sorted(SUPPORTED_EXTENSIONS))
    return AudioError("audio.unrecognized", path=p, suffix=p.suffix or "none", supported=supported)


def _audio_stream(p: Path, container: av.container.InputContainer) -> av.audio.stream.AudioStream:
    if container.format.name in _TEXT_FORMATS:  # not "a video with no audio track"
        raise _unrecognized(p)
    if not container.streams.audio:
        code = "audio.video_without_audio" if container.streams.video else "audio.no_audio_track"
        raise AudioError(code, path=p)
    stream = container.streams.audio[0]
    ctx = stream.codec_context
    if ctx is None or not ctx.sample_rate or not ctx.layout.nb_channels:
        codec = ctx.name if ctx is not None else "unknown"
        raise AudioError("audio.codec", path=p, codec=codec)
    return stream


def _timeline(container: av.container.InputContainer, stream) -> tuple[float, float]:
    """(origin, delay) in seconds: where the media's timeline starts, the container's start
    (its earliest stream), and how long after it the audio starts. Times count from the origin,
    so that in a video whose sound begins late (a cut clip, a screen recording) they match the
    picture and subtitles line up; the audio is read after `delay` seconds of silence."""
    import av

    audio = float(stream.start_time * stream.time_base) if stream.start_time is not None else None
    media = container.start_time / av.time_base if container.start_time is not None else None
    origin = next((t for t in (media, audio) if t is not None), 0.0)
    return origin, max(0.0, (origin if audio is None else audio) - origin)


def _probe_pyav(p: Path) -> AudioInfo:
    import av

    try:
        with av.open(str(p)) as container:
            stream = _audio_stream(p, container)
            ctx = stream.codec_context
            format_ = (ctx.sample_rate, ctx.layout.nb_channels, ctx.name, "pyav")
            # MP3 and ADTS AAC lengths are FFmpeg's guess from the bit rate, unless an MP3's
            # first frame counts its frames
            exact = container.format.name not in _ESTIMATED_SEEK_FORMATS or (
                container.format.name == "mp3" and _mp3_counts_frames(p)
            )
            if stream.duration is not None and stream.time_base is not None:
                delay = _timeline(container, stream)[1]
                seconds = delay + float(stream.duration * stream.time_base)
                return AudioInfo(p, seconds, *format_, exact=exact)
            if container.duration:
                return AudioInfo(p, container.duration / av.time_base, *format_, exact=exact)
        stat = p.stat()
        duration = _packets_end(p, stat.st_size, stat.st_mtime_ns)
        return AudioInfo(p, duration, *format_, exact=duration > 0)
    except av.error.FFmpegError as e:
        raise AudioError("audio.unreadable_media", path=p, detail=_one_line(e)) from e


# Where an MP3's first frame keeps its header (Xing/Info, by LAME; VBRI, by Fraunhofer): after
# the 4-byte frame header and the side information, whose size is by MPEG version and mono or not.
_SIDE_INFO_BYTES = {(True, True): 17, (True, False): 32, (False, True): 9, (False, False): 17}
_VBRI_OFFSET = 36
# How far into a file (after its ID3v2 tag) the first MP3 frame is looked for.
_MP3_SYNC_SEARCH_BYTES = 65_536


def _mp3_counts_frames(p: Path) -> bool:
    """Whether the MP3's first frame is a Xing/Info header with a frame count, or a VBRI
    header: then FFmpeg's length is the encoder's, exact. Without one (a VBR file written
    without it) FFmpeg guesses from the first frames' bit rate, seconds or minutes off either
    way; as it does, like FFmpeg, where the file is over 1/16 larger than the bytes a Xing
    header counts (MP3s joined with `cat`)."""
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(10)
        skip = 0
        if len(head) == 10 and head[:3] == b"ID3":
            skip = 10 + sum((b & 0x7F) << (7 * (3 - k)) for k, b in enumerate(head[6:10]))
            skip += 10 if head[5] & 0x10 else 0  # a footer
        f.seek(skip)
        data = f.read(_MP3_SYNC_SEARCH_BYTES)
    for at in range(len(data) - 4):
        b1, b2 = data[at + 1], data[at + 2]
        version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
        if data[at] != 0xFF or b1 & 0xE0 != 0xE0 or version == 1 or layer != 1:
            continue  # no frame sync, or not MPEG audio layer III
        if b2 >> 4 in (0, 15) or (b2 >> 2) & 3 == 3:
            continue  # a bit rate or sample rate no frame has
        mono = data[at + 3] >> 6 == 3
        xing = at + 4 + _SIDE_INFO_BYTES[(version == 3, mono)]
        if data[xing : xing + 4] in (b"Xing", b"Info"):
            flags = int.from_bytes(data[xing + 4 : xing + 8], "big")
            counted = int.from_bytes(data[xing + 12 : xing + 16], "big") if flags & 2 else 0
            joined = counted and size - skip > counted + counted // 16
            return bool(flags & 1) and len(data) >= xing + 12 and not joined
        return data[at + _VBRI_OFFSET : at + _VBRI_OFFSET + 4] == b"VBRI"
    return False


@functools.lru_cache(maxsize=32)
def _packets_end(p: Path, size: int, mtime_ns: int) -> float:
    """Seconds from the media's start to the end of its last audio packet, or 0.0 where no
    packet has a time: the length of a file whose header does not say it (a browser's
    MediaRecorder writes WebM as it records). The packets are read, not decoded (~10 ms a
    minute), as far as they can be; kept per version of the file (`size`, `mtime_ns`), as
    spans probe it again."""
    import av

    with av.open(str(p)) as container:
        stream = container.streams.audio[0]
        origin = end = _timeline(container, stream)[0]
        try:
            for packet in container.demux(stream):
                if packet.pts is not None:
                    end = max(end, float((packet.pts + (packet.duration or 0)) * stream.time_base))
        except av.error.FFmpegError as e:  # cut off: the length is what is there
            log.debug("%s: its packets end early (%s)", p, _one_line(e))
    return end - origin


def probe(path: str | os.PathLike[str]) -> AudioInfo:
    """Duration, rate, channels and codec of a file, from its header; `AudioError` if unreadable.
    A file whose name does not say its type (no or an unknown extension) is judged by its
    content: libsndfile and FFmpeg both recognize formats from their headers."""
    p = _check_file(path)
    if p.suffix.lower() not in SUPPORTED_EXTENSIONS:
        return _probe_by_content(p)
    if p.suffix.lower() in _PYAV_EXTENSIONS:
        return _probe_pyav(p)
    try:
        info = _probe_soundfile(p)
    except sf.SoundFileError as e:
        reason = _one_line(e)
    else:
        return info or _probe_pyav(p)
    # libsndfile may lack a codec FFmpeg has (e.g. a WAV holding GSM); try that before giving up.
    try:
        info = _probe_pyav(p)
    except AudioError:
        info = None
    if info is None:
        raise AudioError("audio.bad_header", path=p, detail=reason)
    log.debug("%s: libsndfile refused it (%s); decoding with FFmpeg", p, reason)
    return info


def _probe_by_content(p: Path) -> AudioInfo:
    try:
        info = _probe_soundfile(p)
    except sf.SoundFileError:
        info = None
    if info is not None:
        return info
    try:
        return _probe_pyav(p)
    except AudioError as e:
        if e.code != "audio.unreadable_media":
            raise  # recognized as media, with a problem of its own (no audio track, codec)
        raise _unrecognized(p) from e


# --- decoding: (native frame position, frames x channels float32 block) --------------------------


def _soundfile_blocks(p: Path, start_frame: int) -> Iterator[tuple[int, np.ndarray]]:
    try:
        f = sf.SoundFile(_sf_name(p))
    except sf.SoundFileError as e:  # changed or removed since it was probed
        raise AudioError("audio.unreadable", path=p, detail=_one_line(e)) from e
    position, error = start_frame, None
    with f:
        try:
            if start_frame:
                f.seek(min(start_frame, f.frames))
        except sf.SoundFileError as e:
            error = e
        while error is None:
            try:
                block = f.read(_READ_FRAMES, dtype="float32", always_2d=True)
            except sf.SoundFileError as e:
                error = e
                break
            if not len(block):
                return
            yield position, block
            position += len(block)
    yield from _rescue_with_pyav(p, position, error)


def _rescue_with_pyav(p: Path, position: int, error: sf.SoundFileError) -> Iterator:
    """libsndfile gave up inside a damaged or truncated file; FFmpeg skips bad data and goes on,
    so the audio that survives is not lost."""
    try:
        info = _probe_pyav(p)
    except AudioError:
        info = None
    if info is None:
        detail = _one_line(error)
        raise AudioError("audio.decode_stopped", path=p, samples=position, detail=detail) from error
    log.warning("%s: libsndfile failed (%s); decoding the rest with FFmpeg", p, _one_line(error))
    for at, block in _pyav_blocks(info, position):
        if at + len(block) > position:  # FFmpeg's seek may land a little before
            yield position, block[max(0, position - at) :]
            position = at + len(block)


# Sample formats PyAV decodes but cannot turn into an array (64-bit integer PCM): read raw.
_RAW_FORMATS = {"s64": "<i8", "s64p": "<i8"}


def _frame_array(frame: av.AudioFrame, channels: int) -> np.ndarray:
    dtype = _RAW_FORMATS.get(frame.format.name)
    if dtype is None:
        return frame.to_ndarray()
    per_plane = frame.samples * (1 if frame.format.is_planar else channels)
    planes = [np.frombuffer(bytes(p), dtype)[:per_plane] for p in frame.planes]
    return np.stack(planes) if frame.format.is_planar else planes[0].reshape(1, -1)


def _frame_to_float(frame: av.AudioFrame) -> np.ndarray:
    """Any PyAV sample format (packed or planar, int or float) as frames x channels float32."""
    channels = frame.layout.nb_channels
    data = _frame_array(frame, channels)
    return _float32(data.T if frame.format.is_planar else data.reshape(-1, channels))


def _av_decode(
    p: Path, container: av.container.InputContainer, stream, packets: Iterator | None = None
) -> Iterator[av.AudioFrame]:
    """Decoded frames (of `packets`, else the stream's from where it stands); a corrupt packet
    is skipped with a warning rather than ending the file, and a container that breaks off
    mid-file ends it with a warning, keeping what came before.
    Corrupt packets at the very end are a file cut off mid-packet: not warned of here, as the
    length check (`_checked_end`) says how much is missing."""
    import av

    packets = iter(container.demux(stream) if packets is None else packets)
    decoded, error, skipped = False, None, []
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError as e:
            log.warning("%s: reading stopped early (%s)", p, _one_line(e))
            break
        try:
            frames = packet.decode()
        except (av.error.InvalidDataError, av.error.UndefinedError) as e:
            skipped.append((packet.pts, _one_line(e)))
            error = e
            continue
        if packet.size:  # audio follows (not the empty packet that flushes the decoder)
            for pts, detail in skipped:
                log.warning("%s: skipped a corrupt packet at pts %s (%s)", p, pts, detail)
            skipped.clear()
        decoded = decoded or bool(frames)
        yield from frames
    if skipped:
        log.debug("%s: its last %d packets are cut off or corrupt", p, len(skipped))
    if error is not None and not decoded:
        raise AudioError("audio.undecodable", path=p, detail=_one_line(error)) from error


def _av_frames_from(p: Path, container, stream, seconds: float) -> Iterator[av.AudioFrame]:
    """Frames from a time on: seek, and seek further back while the first frame starts too late."""
    import av

    back = 0.0
    while True:
        target = max(0.0, seconds - back)
        try:
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
        except av.error.FFmpegError as e:
            if target == 0.0:
                raise AudioError("audio.seek_failed", path=p, detail=_one_line(e)) from e
            log.debug("%s: cannot seek (%s); decoding from the start", p, _one_line(e))
            back = seconds
            continue
        frames = _av_decode(p, container, stream)
        first = next(frames, None)
        if first is None:
            return iter(())
        if target == 0.0 or (first.time is not None and first.time <= seconds):
            return _chain_one(first, frames)
        # Too late, or no timestamp to place the frame: go back further (finally to the start).
        back = seconds if first.time is None else 2 * back + _SEEK_BACKOFF_SECONDS


def _chain_one(first: av.AudioFrame, rest: Iterator[av.AudioFrame]) -> Iterator[av.AudioFrame]:
    yield first
    yield from rest


def _pyav_blocks(info: AudioInfo, start_frame: int) -> Iterator[tuple[int, np.ndarray]]:
    import av

    p, rate = info.path, info.sample_rate
    try:
        container = av.open(str(p))
    except av.error.FFmpegError as e:
        raise AudioError("audio.unreadable_media", path=p, detail=_one_line(e)) from e
    with container:
        stream = _audio_stream(p, container)
        # Encoders pad the last frame; an indexed container's duration says where the audio ends.
        exact = stream.duration is not None and container.format.name in _EXACT_LENGTH_FORMATS
        end = round(info.duration * rate) if exact else None
        # Timestamps count from the media's start (after the encoder's priming samples).
        origin = _timeline(container, stream)[0]
        seconds = origin + start_frame / rate
        if not start_frame:
            frames = _av_decode(p, container, stream)
        elif container.format.name in _ESTIMATED_SEEK_FORMATS:
            frames = _indexed_frames(info, container, stream, seconds)
        else:
            frames = _av_frames_from(p, container, stream, seconds)
        yield from _placed_blocks(info, frames, origin, end, start_frame)


@dataclass(frozen=True, slots=True)
class _PacketIndex:
    """Times (pts) and byte positions of an audio stream's packets, as demuxing from the start
    gives them, in file order (arrays: 3 MB for 3 hours of MP3)."""

    pts: np.ndarray
    pos: np.ndarray

    def usable(self) -> bool:
        """Whether both only go forward (streams joined oddly may restart their times)."""
        return bool(np.all(np.diff(self.pts) >= 0) and np.all(np.diff(self.pos) > 0))

    def pts_at(self, pos: int | None) -> int | None:
        """The pts of the packet at byte `pos`; None where no packet of the index starts."""
        i = int(np.searchsorted(self.pos, pos)) if pos is not None else len(self.pos)
        return int(self.pts[i]) if i < len(self.pos) and self.pos[i] == pos else None


@functools.lru_cache(maxsize=8)
def _packet_index(p: Path, size: int, mtime_ns: int) -> _PacketIndex:
    """The packets are read, not decoded, once per version of the file (`size`, `mtime_ns`),
    as review reads span after span."""
    import av

    pts, pos = [], []
    with av.open(str(p)) as container:
        stream = container.streams.audio[0]
        with contextlib.suppress(av.error.FFmpegError):  # cut off: what is there
            for packet in container.demux(stream):
                if packet.size and packet.pts is not None and packet.pos is not None:
                    pts.append(packet.pts)
                    pos.append(packet.pos)
    return _PacketIndex(np.array(pts, np.int64), np.array(pos, np.int64))


def _indexed_frames(info: AudioInfo, container, stream, seconds: float) -> Iterator[av.AudioFrame]:
    """Frames from about `seconds` on (`_indexed_packets`); from the start where the first is
    of a part in another rate or channel count (MP3s joined with `cat`), whose blocks carry no
    time (`_in_file_format`) to be placed by."""
    import av

    p = info.path
    frames = _av_decode(p, container, stream, _indexed_packets(p, container, stream, seconds))
    first = next(frames, None)
    if first is None:
        return
    if (first.sample_rate, first.layout.nb_channels) == (info.sample_rate, info.channels):
        yield first
        yield from frames
        return
    with av.open(str(p)) as again:
        yield from _av_decode(p, again, _audio_stream(p, again))


def _indexed_packets(p: Path, container, stream, seconds: float) -> Iterator[av.Packet]:
    """Packets from `_PREROLL_PACKETS` before the one holding `seconds` on, by a byte seek,
    timed as from the start (`_packet_index`): a span near the end of a 3-hour MP3 decodes a
    few frames, not the file. The preroll is decoded here and dropped, its errors too (a frame
    whose data began before the seek), so only the span's packets reach `_av_decode`. Where
    times go back (streams joined oddly), everything is demuxed from the start."""
    import av

    stat = p.stat()
    index = _packet_index(p, stat.st_size, stat.st_mtime_ns)
    k = int(np.searchsorted(index.pts, seconds / stream.time_base, side="right")) - 1
    if k - _PREROLL_PACKETS <= 0 or not index.usable():
        yield from container.demux(stream)
        return
    container.seek(int(index.pos[k - _PREROLL_PACKETS]), unsupported_byte_offset=True)
    reached = False
    for packet in container.demux(stream):
        packet.pts = packet.dts = index.pts_at(packet.pos)
        reached = reached or (packet.pts is not None and packet.pts >= index.pts[k])
        if reached or not packet.size:  # (an empty packet flushes the decoder at the end)
            yield packet
        else:
            with contextlib.suppress(av.error.FFmpegError):
                packet.decode()


def _in_file_format(
    info: AudioInfo, frames: Iterable[av.AudioFrame]
) -> Iterator[tuple[float | None, np.ndarray]]:
    """(time, frames x channels block) at the file's own rate and channel count (`info`'s).
    Parts joined end to end (`cat a.mp3 b.mp3`) may change either mid-stream: such a part is
    mixed and resampled to the file's format, a resampler for each part, its tail flushed
    where the part ends. Its blocks carry no time: they follow each other (a resampler holds
    back a varying few ms, which would read as gaps)."""
    own = (info.sample_rate, info.channels)
    part, resampler = own, None
    for frame in frames:
        format_ = (frame.sample_rate, frame.layout.nb_channels)
        if format_ != part:
            if resampler is not None:
                yield None, _flushed(resampler, info.channels)
            log.debug("%s: %d Hz, %d channels from %.2f s on", info.path, *format_, frame.time or 0)
            part = format_
            resampler = (
                None if part == own else StreamResampler(*part, info.sample_rate, source=info.path)
            )
        block = _frame_to_float(frame)
        if resampler is None:
            yield frame.time, block
        else:
            yield None, _spread(resampler.process(block), info.channels)
    if resampler is not None:
        yield None, _flushed(resampler, info.channels)


def _flushed(resampler: StreamResampler, channels: int) -> np.ndarray:
    empty = np.zeros((0, resampler.channels), np.float32)
    return _spread(resampler.process(empty, last=True), channels)


def _spread(mono: np.ndarray, channels: int) -> np.ndarray:
    """Mono samples as frames x `channels` (the same in each: their mix is the mono)."""
    return np.repeat(mono[:, None], channels, axis=1)


def _placed_blocks(
    info: AudioInfo, frames: Iterable[av.AudioFrame], origin: float, end, start_frame: int
):
    """(position, block) for decoded frames, counting samples from `origin` by the frames'
    timestamps. Audio that starts after `start_frame` (a video's late sound) is preceded by
    silence, and a jump in timestamps (packets skipped as corrupt) is filled with silence, so
    the times of everything after stay right."""
    rate, channels = info.sample_rate, info.channels
    position = None
    for time, block in _in_file_format(info, frames):
        stamp = None if time is None else round((time - origin) * rate)
        if position is None:
            if stamp is not None and stamp > start_frame:
                log.debug("%s: the audio starts %.2f s into the media", info.path, stamp / rate)
                yield from _silence(start_frame, stamp, channels)
            position = stamp or 0
        elif stamp is not None and stamp - position > _GAP_SECONDS * rate:
            log.warning(
                "%s: %.2f s of damaged audio at %.1f s replaced by silence",
                info.path,
                (stamp - position) / rate,
                position / rate,
            )
            yield from _silence(position, stamp, channels)
            position = stamp
        length = len(block)
        if end is not None:
            block = block[: max(0, end - position)]
        if len(block):
            yield position, block
        position += length


def _silence(start: int, stop: int, channels: int) -> Iterator[tuple[int, np.ndarray]]:
    """(position, zeros) covering native frames [start, stop), a read's worth at a time."""
    for at in range(start, stop, _READ_FRAMES):
        yield at, np.zeros((min(_READ_FRAMES, stop - at), channels), np.float32)


def _native_blocks(info: AudioInfo, start_frame: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """(position, block) pairs at the file's own rate and channels, from `start_frame` on
    (PyAV may start earlier: seeking lands on packet boundaries, or not at all)."""
    if info.backend == "soundfile":
        blocks = _soundfile_blocks(info.path, start_frame)
    else:
        blocks = _pyav_blocks(info, start_frame)
    return _checked_end(info, blocks) if info.exact and not start_frame else blocks


def _checked_end(
    info: AudioInfo, blocks: Iterable[tuple[int, np.ndarray]]
) -> Iterator[tuple[int, np.ndarray]]:
    """`blocks`, with a warning once they run out if they end before the file's length."""
    reached = 0
    for position, block in blocks:
        reached = position + len(block)
        yield position, block
    rate = info.sample_rate
    _warn_if_truncated(info.path, reached, round(info.duration * rate), rate)


# --- mixing, resampling and regrouping -----------------------------------------------------------


def _to_mono(block: np.ndarray, channels: int) -> np.ndarray:
    """frames x channels (or 1-D mono) of any float or int dtype → contiguous float32 mono."""
    data = np.asarray(block)
    if data.size == 0 and data.ndim in (1, 2):  # an empty block (e.g. to flush) of any width
        return np.zeros(0, np.float32)
    if data.ndim == 1 and channels == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[1] != channels:
        raise ValueError(f"block has shape {data.shape}; expected (frames, {channels})")
    data = _float32(data)
    mono = data[:, 0] if channels == 1 else data.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32)


def _float32(samples: np.ndarray) -> np.ndarray:
    """Samples of any float or integer dtype as float32 on the [-1, 1) scale soundfile and
    librosa read files to: an integer divided by 2**(bits - 1), an unsigned one centred first
    (int16 -32768 → -1.0, 16384 → 0.5; uint8 128 → 0.0). Floats are kept as they are."""
    data = np.asarray(samples)
    if np.issubdtype(data.dtype, np.floating):
        return data.astype(np.float32, copy=False)
    if not np.issubdtype(data.dtype, np.integer):
        raise ValueError(f"samples have dtype {data.dtype}; pass float or integer samples")
    info = np.iinfo(data.dtype)
    half = float(info.max // 2 + 1) if info.min == 0 else float(info.max) + 1.0
    centre = half if info.min == 0 else 0.0
    return ((data.astype(np.float64) - centre) / half).astype(np.float32)


def _all_finite(x: np.ndarray) -> bool:
    """Whether no sample is NaN or infinite, in one pass without an array (a sum of huge
    finite samples may overflow too: a false alarm the caller's own look settles)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(x.sum()))


def as_samples(samples: np.ndarray) -> np.ndarray:
    """`samples` as Tingxie reads audio: float32, integers scaled to [-1, 1) (`_float32`), and
    NaN or infinite samples as silence. Where a stream of audio enters, `SampleGuard` does the
    same and says so."""
    x = _float32(samples)
    return x if _all_finite(x) else np.where(np.isfinite(x), x, np.float32(0.0))


class SampleGuard:
    """Where audio enters Tingxie (a file's decoded blocks, an array to transcribe, a live
    stream's pushes): each block as `as_samples` gives it, counting the samples so that the
    first one that is not a number (NaN or infinite: a glitch from an editor's plug-in or a
    driver) is logged once, as a warning naming `source` and its time. Such a sample would
    otherwise spread through a resampler's filter and the model's normalisation and erase
    the speech around it, with no error. `source` None logs at debug level only (a step
    inside a reader whose caller watches its own input)."""

    def __init__(self, source: str | os.PathLike[str] | None, sampling_rate: int) -> None:
        self.source, self.sampling_rate = source, sampling_rate
        self.reset()

    def reset(self) -> None:
        """Start a new stream: times count from 0 and the next bad sample is logged again."""
        self._frames = 0
        self._warned = False

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        x = _float32(samples)
        if not _all_finite(x):
            bad = ~np.isfinite(x)
            if bad.any():
                self._warn((self._frames + int(np.argmax(bad))) / self.sampling_rate)
                x = np.where(bad, np.float32(0.0), x)
        self._frames += len(x)
        return x

    def _warn(self, seconds: float) -> None:
        if self._warned:
            return
        self._warned = True
        log.log(
            logging.WARNING if self.source is not None else logging.DEBUG,
            "%s: a sample at %.2f s is not a number (NaN or infinite); such samples are "
            "read as silence (a file: re-export it from its editor to mend it)",
            self.source if self.source is not None else "audio input",
            seconds,
        )


class StreamResampler:
    """Mixes blocks of any channel count to mono and resamples them with soxr's streaming
    resampler, so the output of many small blocks equals resampling the whole signal at once
    (no clicks at block boundaries). Used for files and for the microphone alike.
    Integer samples are scaled to [-1, 1) and samples that are not numbers become silence
    (`SampleGuard`, which logs the first naming `source`)."""

    def __init__(
        self,
        in_rate: int,
        channels: int,
        out_rate: int = SAMPLE_RATE,
        *,
        source: str | os.PathLike[str] | None = None,
    ) -> None:
        for name, value in (("in_rate", in_rate), ("channels", channels), ("out_rate", out_rate)):
            if int(value) != value or value <= 0:
                raise ValueError(f"StreamResampler: {name}={value!r} must be a positive integer")
        self.in_rate, self.channels, self.out_rate = int(in_rate), int(channels), int(out_rate)
        self._soxr = (
            None
            if self.in_rate == self.out_rate
            else soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality="HQ")
        )
        self.source = source
        self._guard = SampleGuard(source, self.in_rate)

    def process(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample one block (frames x channels); `last=True` flushes the filter's tail and
        leaves the resampler ready for a new signal."""
        mono = self._guard(_to_mono(block, self.channels))
        if self._soxr is None:
            return mono
        out = self._soxr.resample_chunk(mono, last=last)
        if last:
            self._soxr.clear()
        return out

    def reset(self) -> None:
        """Drop buffered input (e.g. when a recording restarts)."""
        if self._soxr is not None:
            self._soxr.clear()


def _resample(blocks: Iterable[np.ndarray], resampler: StreamResampler) -> Iterator[np.ndarray]:
    for block in blocks:
        out = resampler.process(block)
        if len(out):
            yield out
    tail = resampler.process(np.zeros((0, resampler.channels), np.float32), last=True)
    if len(tail):
        yield tail


def _regroup(blocks: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Blocks of exactly `size` samples (the last one shorter) from blocks of any length."""
    pending: list[np.ndarray] = []
    count = 0
    for block in blocks:
        pending.append(block)
        count += len(block)
        if count < size:
            continue
        joined = np.concatenate(pending)
        full = len(joined) // size * size
        for i in range(0, full, size):
            yield joined[i : i + size]
        pending = [joined[full:].copy()] if full < len(joined) else []
        count = len(joined) - full
    if count:
        yield np.concatenate(pending)


def _require_samples(p: Path, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    empty = True
    for block in blocks:
        empty = False
        yield block
    if empty:
        raise AudioError("audio.no_samples", path=p)


def _check_rate(sampling_rate: int) -> None:
    if int(sampling_rate) != sampling_rate or sampling_rate <= 0:
        raise ValueError(f"sampling_rate={sampling_rate!r} must be a positive integer (Hz)")


def _block_size(block_seconds: float, sampling_rate: int) -> int:
    """Samples in a block of `block_seconds`, checked before any arithmetic on it."""
    _check_rate(sampling_rate)
    if not (math.isfinite(block_seconds) and round(block_seconds * sampling_rate) >= 1):
        raise ValueError(f"block_seconds={block_seconds!r} must be a positive number of seconds")
    return round(block_seconds * sampling_rate)


# --- public readers ------------------------------------------------------------------------------


def iter_audio(
    path: str | os.PathLike[str],
    *,
    block_seconds: float = 30.0,
    sampling_rate: int = SAMPLE_RATE,
) -> Iterator[np.ndarray]:
    """float32 mono blocks of `block_seconds` (the last shorter) at `sampling_rate`.

    The file is probed now (so a bad file raises `AudioError` at the call); the audio is decoded
    as the caller iterates, holding only a block or two, so a 3-hour file costs no more memory
    than a 3-minute one."""
    return _opened(path, block_seconds, sampling_rate)[1]


def _opened(
    path: str | os.PathLike[str], block_seconds: float, sampling_rate: int
) -> tuple[AudioInfo, Iterator[np.ndarray]]:
    """The file's probe and its blocks (`iter_audio`), probing it once."""
    size = _block_size(block_seconds, sampling_rate)
    info = probe(path)
    log.debug("%s: %s", info.path, info)
    native = (block for _, block in _native_blocks(info))
    resampler = StreamResampler(info.sample_rate, info.channels, sampling_rate, source=info.path)
    resampled = _resample(native, resampler)
    return info, _require_samples(info.path, _regroup(resampled, size))


def open_source(
    source: str | os.PathLike[str] | np.ndarray,
    *,
    block_seconds: float = 30.0,
    sampling_rate: int = SAMPLE_RATE,
) -> tuple[str, float, Iterator[np.ndarray]]:
    """What a transcriber reads, a file or a mono array at `sampling_rate`, as its name, its
    duration in seconds and its float32 blocks of `block_seconds` (`iter_audio`). An array may
    hold floats or integers: integers (`sf.read(dtype="int16")`, a microphone's int16) are
    scaled to [-1, 1) as soundfile and librosa scale them; NaN or infinite samples are read as
    silence, with a warning (`SampleGuard`). A bad file raises `AudioError` here, a 2-D array
    ValueError."""
    size = _block_size(block_seconds, sampling_rate)
    if not isinstance(source, np.ndarray):
        info, blocks = _opened(source, block_seconds, sampling_rate)
        return str(source), info.duration, blocks
    if source.ndim != 1:
        raise ValueError(f"audio array has shape {source.shape}; pass mono 1-D samples")
    _float32(source[:0])  # a dtype that holds no samples (text, objects) fails here
    guard = SampleGuard("samples", sampling_rate)
    blocks = (guard(source[i : i + size]) for i in range(0, len(source), size))
    return "<array>", len(source) / sampling_rate, blocks


def joined(blocks: list[np.ndarray]) -> np.ndarray:
    """`blocks` of samples as one array, left as the list's only element: a holder that
    appends a block per push joins them once, when it reads them."""
    if len(blocks) != 1:
        blocks[:] = [np.concatenate(blocks) if blocks else np.zeros(0, np.float32)]
    return blocks[0]


def load_audio(path: str | os.PathLike[str], *, sampling_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The whole file as one float32 mono array at `sampling_rate`."""
    return np.concatenate(list(iter_audio(path, sampling_rate=sampling_rate)))


def _span_native(info: AudioInfo, first: int, stop: int, step: int) -> tuple[int, np.ndarray]:
    """Native frames [origin, stop) where origin is the first multiple of `step` ≥ `first` that
    decoding reached; seeking means only the span (plus padding) is decoded."""
    origin = None
    pieces: list[np.ndarray] = []
    for position, block in _native_blocks(info, first):
        if origin is None:
            origin = max(first, -(-position // step) * step)
        lo, hi = max(0, origin - position), min(len(block), stop - position)
        if hi > lo:
            pieces.append(block[lo:hi])
        if position + len(block) >= stop:
            break
    if not pieces or origin is None:
        return first, np.zeros((0, info.channels), np.float32)
    return origin, np.concatenate(pieces)


def read_span(
    path: str | os.PathLike[str],
    start: float,
    end: float,
    *,
    sampling_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """float32 mono samples of [start, end) seconds, matching `load_audio(path)[start:end]`.

    Seeks instead of decoding the whole file: exactly in what libsndfile reads, to the sample in
    MP4/M4A/MOV, to ±0.5 ms in Matroska/WebM (millisecond timestamps). MP3 and raw .aac streams
    have no index (FFmpeg would seek by the bit rate, libsndfile's mpg123 lands off in VBR files
    and reads no further than the length it estimated): their packets are indexed once
    (`_packet_index`) and a span seeks by byte to a packet a few before it: its samples are
    those decoding from the start gives (MP3), or differ by float rounding (AAC, about 2e-7;
    noise that AAC's PNS draws at random differs more). A span
    running past the end of the file is cut short; one that starts there raises
    `audio.span_after_end` (a recording replaced by a shorter one), never an empty array."""
    _check_rate(sampling_rate)
    if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
        raise ValueError(f"read_span: start={start!r}, end={end!r} must satisfy 0 <= start < end")
    info = probe(path)
    rate = info.sample_rate
    # Starting on a multiple of `step` native frames puts output samples on the file's own grid.
    step = rate // math.gcd(rate, sampling_rate)
    first = int(max(0.0, start - _SPAN_PAD_SECONDS) * rate) // step * step
    stop = math.ceil((end + _SPAN_PAD_SECONDS) * rate)
    origin, native = _span_native(info, first, stop, step)
    out = np.zeros(0, np.float32)
    if len(native):
        resampler = StreamResampler(rate, info.channels, sampling_rate, source=info.path)
        out = resampler.process(native, last=True)
    offset = max(0, round(start * sampling_rate) - origin * sampling_rate // rate)
    if offset >= len(out):  # nothing read, or only the padding before `start`
        raise AudioError(
            "audio.span_after_end", path=info.path, start=start, end=end, duration=info.duration
        )
    count = round(end * sampling_rate) - round(start * sampling_rate)
    return out[offset : offset + count]


# --- writing -------------------------------------------------------------------------------------


def write_wav(
    path: str | os.PathLike[str],
    audio: np.ndarray,
    sampling_rate: int = SAMPLE_RATE,
    *,
    subtype: WavSubtype = "PCM_16",
) -> None:
    """Write a WAV atomically: to a temporary file beside it, synced, then renamed over `path`,
    so a crash or a full disk leaves either the old file or the complete new one.

    `audio` is 1-D mono or frames x channels (at most `_MAX_WAV_CHANNELS`), float in [-1, 1]
    or integer samples; NaN and infinite float samples are written as silence."""
    _check_rate(sampling_rate)
    if subtype not in WavSubtype.__args__:
        raise ValueError(f"subtype={subtype!r}: choose one of {', '.join(WavSubtype.__args__)}")
    p = Path(path)
    if p.name in ("", ".", "..") or p.is_dir():
        raise IsADirectoryError(f"{p}: is a folder; give a file name such as {p / 'audio.wav'}")
    data = _wav_samples(p, audio)
    if np.issubdtype(data.dtype, np.floating) and subtype != "FLOAT":
        data = np.clip(data, -1.0, 1.0)  # libsndfile would wrap around, not clip
    if not p.parent.is_dir():
        raise FileNotFoundError(f"{p.parent}: folder does not exist; create it or choose another")
    _write_atomically(p, data, sampling_rate, subtype)


# Channels a WAV written here may have: more is an array passed channels x frames.
_MAX_WAV_CHANNELS = 8


def _wav_samples(p: Path, audio: np.ndarray) -> np.ndarray:
    """`audio` checked for `write_wav`: samples, as frames x channels, not empty; floats with
    NaN and infinities as 0 (libsndfile writes NaN as full scale negative, -32768)."""
    data = np.asarray(audio)
    if data.ndim not in (1, 2) or not (
        np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.integer)
    ):
        raise ValueError(f"audio for {p}: expected a 1-D or frames x channels array of samples")
    if data.ndim == 2 and (data.shape[1] > data.shape[0] or data.shape[1] > _MAX_WAV_CHANNELS):
        raise ValueError(
            f"audio for {p} has shape {data.shape}: {data.shape[1]} channels of "
            f"{data.shape[0]} frames; pass frames x channels (audio.T)"
        )
    if data.size == 0:
        raise ValueError(f"audio for {p} holds no samples; a WAV needs at least one")
    return as_samples(data) if np.issubdtype(data.dtype, np.floating) else data


def _write_atomically(p: Path, data: np.ndarray, sampling_rate: int, subtype: str) -> None:
    tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with open(tmp, "xb") as fh:
            sf.write(fh, data, sampling_rate, subtype=subtype, format="WAV")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            raise OSError(e.errno, "the disk is full; free disk space and try again", str(p)) from e
        if isinstance(e, sf.SoundFileError):
            raise OSError(f"{p}: could not write audio ({_one_line(e)})") from e
        raise
