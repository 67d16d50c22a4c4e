"""Test signals and the files that carry them, generated in a temporary folder.

soundfile writes wav/flac/ogg/opus/mp3; PyAV (FFmpeg) writes AAC and video containers. Signals
are known functions of time, so the expected 16 kHz signal can be computed exactly.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile as sf

# A linear sweep: unlike a pure tone it lines up with itself at one lag only.
CHIRP_F0, CHIRP_F1 = 200.0, 3_000.0


def chirp(seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    """A linear 200 → 3000 Hz sweep of `seconds`, sampled at `rate`, float32 mono."""
    t = np.arange(round(seconds * rate)) / rate
    sweep = (CHIRP_F1 - CHIRP_F0) / (2 * seconds)
    return (amplitude * np.sin(2 * np.pi * (CHIRP_F0 * t + sweep * t * t))).astype(np.float32)


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def stereo(mono: np.ndarray, right_gain: float = 0.5) -> np.ndarray:
    """frames x 2: the signal left, a scaled copy right (the mix is (1 + gain) / 2 of it)."""
    return np.stack([mono, right_gain * mono], axis=1)


def write_soundfile(path: Path, data: np.ndarray, rate: int, subtype: str | None = None) -> Path:
    sf.write(str(path), data, rate, subtype=subtype)
    return path


def write_pyav(
    path: Path,
    data: np.ndarray,
    rate: int,
    codec: str = "aac",
    *,
    video: bool = False,
    container_format: str | None = None,
    options: dict[str, str] | None = None,
    bit_rate: int | None = None,
    delay: float = 0.0,
) -> Path:
    """Encode frames x channels float audio with FFmpeg, with a tiny black video track if asked
    (`options`: the muxer's; `delay`: seconds of the video before the audio track starts)."""
    data = data[:, None] if data.ndim == 1 else data
    layout = "mono" if data.shape[1] == 1 else "stereo"
    with av.open(str(path), "w", format=container_format, options=options or {}) as out:
        vstream = out.add_stream("mpeg4", rate=10) if video else None
        if vstream is not None:
            vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        astream = out.add_stream(codec, rate=rate)
        astream.layout = layout
        if bit_rate is not None:
            astream.bit_rate = bit_rate
        for frame in _audio_frames(data, rate, layout, astream.codec_context.codec):
            frame.pts += round(delay * rate)
            out.mux(astream.encode(frame))
        out.mux(astream.encode(None))
        if vstream is not None:
            for i in range(int((len(data) / rate + delay) * 10)):
                image = np.zeros((48, 64, 3), np.uint8)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
                frame.pts = i
                out.mux(vstream.encode(frame))
            out.mux(vstream.encode(None))
    return path


def _audio_frames(data: np.ndarray, rate: int, layout: str, codec) -> list[av.AudioFrame]:
    """1024-sample frames in a sample format the encoder takes (float if it can, else int)."""
    formats = [f.name for f in codec.audio_formats or ()] or ["fltp"]
    fmt = next((f for f in ("fltp", "flt") if f in formats), formats[0])
    frames = []
    for i in range(0, len(data), 1024):
        block = data[i : i + 1024]
        if fmt.startswith(("s16", "s32")):
            dtype = np.int16 if fmt.startswith("s16") else np.int32
            block = np.round(np.clip(block, -1, 1) * np.iinfo(dtype).max).astype(dtype)
        array = block.T.copy() if fmt.endswith("p") else block.reshape(1, -1).copy()
        frame = av.AudioFrame.from_ndarray(array, format=fmt, layout=layout)
        frame.sample_rate, frame.pts = rate, i
        frames.append(frame)
    return frames


def joined_mp3(folder: Path) -> Path:
    """Two MP3s without a Xing header, 160 then 32 kbit/s, joined end to end (as `cat` joins
    recordings): FFmpeg and libsndfile estimate the length from the first frames' bit rate,
    2.7 s of the 5.2 s there."""
    loud = write_pyav(folder / "a.mp3", chirp(2.0, 16_000), 16_000, "libmp3lame",
                      options={"write_xing": "0"}, bit_rate=160_000)  # fmt: skip
    quiet = write_pyav(folder / "b.mp3", tone(440.0, 3.0, 16_000), 16_000, "libmp3lame",
                       options={"write_xing": "0"}, bit_rate=32_000)  # fmt: skip
    path = folder / "joined.mp3"
    path.write_bytes(loud.read_bytes() + quiet.read_bytes())
    return path


def mp3_longer_by_its_header(folder: Path) -> Path:
    """As `joined_mp3` the other way round, 3 s at 32 kbit/s then 2 s at 160: FFmpeg guesses
    13.5 s from the first frames' bit rate for the 5.2 s there."""
    quiet = write_pyav(folder / "q.mp3", tone(440.0, 3.0, 16_000), 16_000, "libmp3lame",
                       options={"write_xing": "0"}, bit_rate=32_000)  # fmt: skip
    loud = write_pyav(folder / "l.mp3", chirp(2.0, 16_000), 16_000, "libmp3lame",
                      options={"write_xing": "0"}, bit_rate=160_000)  # fmt: skip
    path = folder / "guessed-long.mp3"
    path.write_bytes(quiet.read_bytes() + loud.read_bytes())
    return path


def aac_with_a_quiet_end(folder: Path) -> Path:
    """Raw ADTS AAC: 2 s of a loud sweep (a high bit rate), 12 s of silence, 1 s of tone.
    FFmpeg estimates its length from the first frames' bit rate: seconds short."""
    signal = np.concatenate(
        [chirp(2.0, 16_000), np.zeros(12 * 16_000, np.float32), tone(440.0, 1.0, 16_000)]
    )
    return write_pyav(folder / "quiet-end.aac", signal, 16_000, "aac", container_format="adts")


def write_video_only(path: Path, seconds: float = 1.0) -> Path:
    """An MP4 with a video track and no audio."""
    with av.open(str(path), "w") as out:
        vstream = out.add_stream("mpeg4", rate=10)
        vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        for i in range(int(seconds * 10)):
            image = np.full((48, 64, 3), 128, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            out.mux(vstream.encode(frame))
        out.mux(vstream.encode(None))
    return path


def best_lag(signal: np.ndarray, expected: np.ndarray, max_lag: int) -> tuple[int, float]:
    """(lag, correlation): the shift of `signal` against `expected` (in samples, positive when
    the signal comes late) that correlates best, and the normalised correlation there."""
    n = min(len(signal), len(expected)) - 2 * max_lag
    ref = expected[max_lag : max_lag + n]
    best = (0, -1.0)
    for lag in range(-max_lag, max_lag + 1):
        seg = signal[max_lag + lag : max_lag + lag + n]
        corr = float(np.dot(seg, ref) / (np.linalg.norm(seg) * np.linalg.norm(ref) + 1e-12))
        if corr > best[1]:
            best = (lag, corr)
    return best


def dominant_frequency(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / rate)[int(np.argmax(spectrum))])
