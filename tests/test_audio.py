"""engine.audio: every listed format decodes to the right 16 kHz mono signal, in bounded blocks;
spans seek; bad files give one-line `AudioError`s; resampling streams; WAVs are written atomically.
"""

from __future__ import annotations

import csv
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from audio_fixtures import (
    aac_with_a_quiet_end,
    best_lag,
    chirp,
    dominant_frequency,
    joined_mp3,
    stereo,
    tone,
    write_pyav,
    write_soundfile,
    write_video_only,
)

from engine import audio
from engine.audio import (
    SAMPLE_RATE,
    SUPPORTED_EXTENSIONS,
    AudioError,
    StreamResampler,
    iter_audio,
    load_audio,
    probe,
    read_span,
    write_wav,
)

SECONDS = 3.0
# Lossy codecs smear a sweep a little; lossless ones keep it exactly.
LOSSLESS, LOSSY = 0.9999, 0.99

# name, rate, channels, writer ("sf": subtype; "av": codec, video, container format),
# expected lag in 16 kHz samples, least correlation with the expected signal.
FORMATS = [
    ("pcm.wav", 44_100, 2, ("sf", "PCM_16", None), 0, LOSSLESS),
    ("float.wav", 8_000, 1, ("sf", "FLOAT", None), 0, LOSSLESS),
    ("lossless.flac", 48_000, 2, ("sf", "PCM_24", None), 0, LOSSLESS),
    ("vorbis.ogg", 44_100, 2, ("sf", "VORBIS", None), 0, LOSSY),
    ("speech.opus", 48_000, 2, ("sf", "OPUS", "OGG"), 0, LOSSY),
    ("lame.mp3", 44_100, 2, ("sf", "MPEG_LAYER_III", "MP3"), 0, LOSSY),  # VBR, no seek index
    ("cbr.mp3", 16_000, 1, ("av", "libmp3lame", False, None), 0, LOSSY),
    ("itunes.m4a", 44_100, 2, ("av", "aac", False, None), 0, LOSSY),
    # A raw ADTS stream has no edit list: the encoder's 1024 priming samples stay (21 ms late).
    ("raw.aac", 48_000, 2, ("av", "aac", False, "adts"), 341, 0.95),
    ("clip.mp4", 48_000, 2, ("av", "aac", True, None), 0, LOSSY),
    ("clip.mkv", 44_100, 2, ("av", "aac", True, None), 0, LOSSY),
    ("clip.mov", 22_050, 1, ("av", "aac", False, None), 0, LOSSY),
    ("clip.webm", 48_000, 2, ("av", "libopus", False, None), 0, LOSSY),
    ("pcm.mka", 32_000, 2, ("av", "pcm_s16le", False, None), 0, LOSSLESS),
]


def make_file(folder: Path, name: str, rate: int, channels: int, writer: tuple) -> Path:
    signal = chirp(SECONDS, rate)
    data = stereo(signal) if channels == 2 else signal
    path = folder / name
    if writer[0] == "sf":
        sf.write(str(path), data, rate, subtype=writer[1], format=writer[2])
        return path
    return write_pyav(path, data, rate, writer[1], video=writer[2], container_format=writer[3])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("formats")
    return {name: make_file(folder, name, rate, ch, w) for name, rate, ch, w, *_ in FORMATS}


def one_line_error(excinfo: pytest.ExceptionInfo[AudioError], path: Path, problem: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert "; " in message  # and says what to do
    assert excinfo.value.path == path


# --- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "rate", "channels", "writer", "lag", "least"), FORMATS)
def test_every_format_decodes_to_the_expected_16k_signal(
    files, name, rate, channels, writer, lag, least
):
    path = files[name]
    assert path.suffix in SUPPORTED_EXTENSIONS
    info = probe(path)
    assert (info.sample_rate, info.channels) == (rate, channels)
    assert info.backend == ("pyav" if writer[0] == "av" or path.suffix == ".mp3" else "soundfile")
    assert info.duration == pytest.approx(SECONDS, abs=0.12)

    x = load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1
    assert len(x) / SAMPLE_RATE == pytest.approx(SECONDS, abs=0.035)
    found_lag, corr = best_lag(x, chirp(SECONDS, SAMPLE_RATE), max_lag=400)
    assert abs(found_lag - lag) <= 2
    assert corr >= least


@pytest.mark.parametrize("rate", [8_000, 44_100, 48_000])
def test_tone_keeps_its_frequency_and_level_through_resampling(tmp_path, rate):
    path = write_soundfile(tmp_path / "tone.flac", stereo(tone(1_000.0, 2.0, rate)), rate)
    x = load_audio(path)
    assert len(x) == 2 * SAMPLE_RATE
    assert dominant_frequency(x, SAMPLE_RATE) == pytest.approx(1_000.0, abs=1.0)
    # left 0.5, right 0.25 → the mean is a 0.375 sine, RMS 0.375 / √2
    assert np.sqrt(np.mean(x[1000:-1000] ** 2)) == pytest.approx(0.375 / np.sqrt(2), rel=0.01)


def test_channels_are_averaged_not_picked(tmp_path):
    signal = tone(440.0, 1.0, 48_000)
    opposite = write_soundfile(tmp_path / "opposite.wav", np.stack([signal, -signal], 1), 48_000)
    assert np.abs(load_audio(opposite)).max() < 1e-3
    six = write_soundfile(tmp_path / "six.wav", np.tile(signal[:, None], (1, 6)), 48_000, "FLOAT")
    assert probe(six).channels == 6
    assert np.abs(load_audio(six)).max() == pytest.approx(0.5, abs=0.01)


def test_other_output_rates(files):
    x8 = load_audio(files["pcm.wav"], sampling_rate=8_000)
    assert len(x8) == round(SECONDS * 8_000)
    assert best_lag(x8, chirp(SECONDS, 8_000), 20)[1] > 0.999  # sweep stays below 4 kHz
    with pytest.raises(ValueError, match="sampling_rate"):
        load_audio(files["pcm.wav"], sampling_rate=0)


# --- blocks and memory ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pcm.wav", "lame.mp3", "clip.mkv", "pcm.mka"])
def test_blocks_have_the_asked_length_and_join_to_load_audio(files, name):
    blocks = list(iter_audio(files[name], block_seconds=0.7))
    size = round(0.7 * SAMPLE_RATE)
    assert all(len(b) == size for b in blocks[:-1])
    assert 0 < len(blocks[-1]) <= size
    whole = load_audio(files[name])
    np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-6)


def test_open_source_reads_a_file_and_an_array_alike(files):
    """What both transcribers read: name, duration and the same blocks from a file or from
    the array it decodes to; a 2-D array is refused with what to pass instead."""
    name, duration, blocks = audio.open_source(files["pcm.wav"], block_seconds=0.7)
    from_file = list(blocks)
    whole = load_audio(files["pcm.wav"])
    assert name == str(files["pcm.wav"]) and duration == pytest.approx(len(whole) / SAMPLE_RATE)
    name, duration, blocks = audio.open_source(whole.astype(np.float64), block_seconds=0.7)
    from_array = list(blocks)
    assert name == "<array>" and duration == len(whole) / SAMPLE_RATE
    assert [len(b) for b in from_array] == [len(b) for b in from_file]
    assert all(b.dtype == np.float32 for b in from_array)
    np.testing.assert_allclose(np.concatenate(from_array), np.concatenate(from_file), atol=1e-6)
    with pytest.raises(ValueError, match="mono 1-D"):
        audio.open_source(np.zeros((2, 100), np.float32))


@pytest.mark.parametrize(
    "name", ["pcm.wav", "lossless.flac", "vorbis.ogg", "speech.opus", "lame.mp3", "cbr.mp3"]
)
def test_blocks_match_an_independent_whole_file_decode(files, name):
    """libsndfile reading the whole file at once, resampled in one go, is the reference: block
    reads must not differ (libsndfile 1.2.2 gets MP3 block reads wrong, hence MP3 via FFmpeg)."""
    whole, rate = sf.read(str(files[name]), dtype="float32", always_2d=True)
    reference = soxr.resample(whole.mean(axis=1), rate, SAMPLE_RATE, quality="HQ")
    blocks = np.concatenate(list(iter_audio(files[name], block_seconds=0.7)))
    assert len(blocks) == len(reference)
    np.testing.assert_allclose(blocks, reference, atol=1e-4)


@pytest.mark.parametrize(
    ("sizes", "size"), [([5, 5, 5], 4), ([1] * 9, 4), ([20], 4), ([3, 1], 4), ([4, 4], 4)]
)
def test_regroup_cuts_exact_blocks_and_loses_nothing(sizes, size):
    parts = [np.arange(n, dtype=np.float32) + 100 * i for i, n in enumerate(sizes)]
    out = list(audio._regroup(iter(parts), size))
    assert [len(b) for b in out[:-1]] == [size] * (len(out) - 1)
    np.testing.assert_array_equal(np.concatenate(out), np.concatenate(parts))


def peak_allocation(path: Path) -> tuple[float, int]:
    """(peak bytes allocated by Python and NumPy while iterating, samples seen)."""
    tracemalloc.start()
    try:
        total = sum(len(block) for block in iter_audio(path, block_seconds=5.0))
        return tracemalloc.get_traced_memory()[1], total
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("suffix", "seconds"), [(".wav", 60.0), (".mka", 30.0)])
def test_memory_stays_bounded_as_files_grow(tmp_path, suffix, seconds):
    """A 4× longer file (48 kHz stereo) must not need more memory: blocks, not whole files."""
    peaks = []
    for factor in (1, 4):
        path = tmp_path / f"long{factor}{suffix}"
        signal = stereo(tone(300.0, seconds * factor, 48_000, amplitude=0.3))
        if suffix == ".wav":
            write_soundfile(path, signal, 48_000, "PCM_16")
        else:
            write_pyav(path, signal, 48_000, "pcm_s16le")
        del signal
        peak, total = peak_allocation(path)
        assert total == round(seconds * factor * SAMPLE_RATE)
        peaks.append(peak)
    whole_long_file = 4 * seconds * SAMPLE_RATE * 4  # bytes of the 16 kHz float32 result
    assert peaks[1] < 1.25 * peaks[0] + 256_000, peaks
    assert peaks[1] < whole_long_file / 2, peaks


# --- spans ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        *("pcm.wav", "float.wav", "lossless.flac", "speech.opus"),
        *("lame.mp3", "cbr.mp3", "itunes.m4a", "raw.aac", "clip.mp4"),
    ],
)
@pytest.mark.parametrize(("start", "end"), [(0.0, 0.4), (1.23, 2.0), (2.5, 2.95)])
def test_read_span_matches_the_whole_file_slice(files, name, start, end):
    whole = load_audio(files[name])
    span = read_span(files[name], start, end)
    expected = whole[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)]
    assert len(span) == len(expected)
    np.testing.assert_allclose(span, expected, atol=1e-4)


@pytest.mark.parametrize(
    ("name", "rate", "codec"), [("a.mkv", 44_100, "aac"), ("a.webm", 48_000, "libopus")]
)
def test_read_span_in_millisecond_containers_is_within_half_a_millisecond(
    tmp_path, name, rate, codec
):
    """Matroska stores times in ms, so a seek places the span to ±0.5 ms (8 samples at 16 kHz).
    A 300 Hz tone: its period (53 samples) leaves no doubt about shifts of up to 16 samples."""
    path = write_pyav(tmp_path / name, stereo(tone(300.0, SECONDS, rate)), rate, codec)
    whole = load_audio(path)
    for start in (1.2, 1.7, 2.2):
        span = read_span(path, start, start + 0.6)
        assert len(span) == round(0.6 * SAMPLE_RATE)
        at = round(start * SAMPLE_RATE)
        errors = {
            shift: np.abs(span[20:-20] - whole[at + shift + 20 : at + shift + len(span) - 20]).max()
            for shift in range(-16, 17)
        }
        shift = min(errors, key=errors.get)
        # half a sample off at 300 Hz is 0.5 * 2π * 300 / 32000 ≈ 0.03 of error
        assert errors[shift] < 0.04, (start, shift, errors[shift])
        assert abs(shift) <= 9, (start, shift)  # 0.5 ms of rounding, plus a sample


def test_read_span_seeks_instead_of_decoding_everything(tmp_path, monkeypatch):
    path = write_soundfile(tmp_path / "minute.flac", tone(200.0, 60.0, 44_100), 44_100)
    read = []
    original = sf.SoundFile.read

    def counting_read(self, frames=-1, *args, **kwargs):
        data = original(self, frames, *args, **kwargs)
        read.append(len(data))
        return data

    monkeypatch.setattr(sf.SoundFile, "read", counting_read)
    span = read_span(path, 50.0, 51.0)
    assert len(span) == SAMPLE_RATE
    assert sum(read) < 3 * 44_100  # about 1.2 s (span and padding), not 50 s


def test_read_span_seeks_in_containers_too(tmp_path, monkeypatch):
    path = write_pyav(tmp_path / "minute.m4a", tone(200.0, 30.0, 16_000), 16_000)
    decoded = []
    original = audio._av_decode

    def counting_decode(*args):
        for frame in original(*args):
            decoded.append(frame.samples)
            yield frame

    monkeypatch.setattr(audio, "_av_decode", counting_decode)
    span = read_span(path, 25.0, 26.0)
    assert len(span) == SAMPLE_RATE
    assert dominant_frequency(span, SAMPLE_RATE) == pytest.approx(200.0, abs=2.0)
    assert sum(decoded) < 3 * 16_000


def test_read_span_at_and_past_the_end(files):
    path = files["pcm.wav"]
    assert len(read_span(path, 2.5, 10.0)) == round(0.5 * SAMPLE_RATE)
    with pytest.raises(AudioError, match="after the end") as excinfo:
        read_span(path, 5.0, 6.0)
    one_line_error(excinfo, path, "after the end")
    for start, end in [(-1.0, 1.0), (2.0, 1.0), (1.0, 1.0), (float("nan"), 1.0)]:
        with pytest.raises(ValueError, match="start"):
            read_span(path, start, end)


# --- bad input ------------------------------------------------------------------------------------


def corrupt_header(folder: Path) -> Path:
    """A WAV whose fmt chunk is garbage after a valid RIFF/WAVE start."""
    data = bytearray(
        (write_soundfile(folder / "ok.wav", tone(440, 0.5, 16_000), 16_000)).read_bytes()
    )
    data[12:36] = b"\xff" * 24
    (folder / "corrupt.wav").write_bytes(bytes(data))
    return folder / "corrupt.wav"


def unknown_codec(folder: Path) -> Path:
    """A WAV declaring codec 0x7777, which neither libsndfile nor FFmpeg knows."""
    data = bytearray(
        (write_soundfile(folder / "ok2.wav", tone(440, 0.5, 16_000), 16_000)).read_bytes()
    )
    data[20:22] = (0x7777).to_bytes(2, "little")
    (folder / "codec.wav").write_bytes(bytes(data))
    return folder / "codec.wav"


def truncated_m4a(folder: Path) -> Path:
    whole = write_pyav(folder / "whole.m4a", tone(440, 1.0, 16_000), 16_000).read_bytes()
    (folder / "truncated.m4a").write_bytes(whole[:200])
    return folder / "truncated.m4a"


BAD_INPUTS = {
    "missing": (lambda d: d / "nowhere.wav", "no such file"),
    "folder": (lambda d: (d / "folder.wav").mkdir() or d / "folder.wav", "is a folder"),
    "empty": (lambda d: (d / "empty.flac").touch() or d / "empty.flac", "empty (0 bytes)"),
    "zero samples": (
        lambda d: write_soundfile(d / "zero.wav", np.zeros(0, np.float32), 16_000),
        "no audio samples",
    ),
    "corrupt header": (corrupt_header, "not a readable audio file"),
    "text named .wav": (
        lambda d: (d / "notes.wav").write_text("meeting notes\n" * 20) and d / "notes.wav",
        "not a readable audio file",
    ),
    "unsupported extension": (
        lambda d: (d / "song.xyz").write_bytes(b"\x00" * 100) and d / "song.xyz",
        "not audio or video Tingxie can read",
    ),
    "unsupported codec": (unknown_codec, "not a readable audio file"),
    "video without audio": (lambda d: write_video_only(d / "silent.mp4"), "no audio track"),
    "truncated container": (truncated_m4a, "not a readable media file"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_a_one_line_audio_error(tmp_path, case):
    make, problem = BAD_INPUTS[case]
    path = make(tmp_path)
    for call in (probe, load_audio, iter_audio, lambda p: read_span(p, 0.0, 1.0)):
        with pytest.raises(AudioError) as excinfo:
            call(path)  # iter_audio raises at the call, not at the first block
        one_line_error(excinfo, path, problem)
    assert isinstance(excinfo.value, ValueError)


def test_a_codec_ffmpeg_cannot_decode_either_is_named(tmp_path):
    """AAC inside WAV: libsndfile refuses it, FFmpeg opens it but decodes no packet."""
    path = write_pyav(tmp_path / "aac.wav", tone(440, 1.0, 16_000), 16_000, "aac")
    assert probe(path).codec == "aac"
    with pytest.raises(AudioError) as excinfo:
        load_audio(path)
    one_line_error(excinfo, path, "no audio could be decoded")


def test_mp3_inside_wav_is_decoded_by_ffmpeg(tmp_path):
    path = write_pyav(tmp_path / "mp3.wav", chirp(SECONDS, 16_000), 16_000, "libmp3lame")
    assert sf.info(str(path)).subtype == "MPEG_LAYER_III"  # libsndfile would take it
    assert probe(path).backend == "pyav"
    x = load_audio(path)
    lag, corr = best_lag(x, chirp(SECONDS, SAMPLE_RATE), max_lag=1_500)
    assert 0 <= lag < 1_500 and corr > 0.99  # no gapless info in WAV: the encoder delay stays


def damage(path: Path, at: float, length: int) -> Path:
    """Overwrite `length` bytes at a fraction `at` of the file with junk."""
    data = bytearray(path.read_bytes())
    i = int(len(data) * at)
    data[i : i + length] = (bytes(range(256)) * (length // 256 + 1))[:length]
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("name", ["damaged.flac", "damaged.m4a"])
def test_damaged_data_mid_file_becomes_silence_and_later_times_stay_right(tmp_path, name):
    """libsndfile stops at damaged FLAC data, FFmpeg skips bad packets: either way the audio
    after the damage comes through, at its own time."""
    signal = chirp(4.0, 16_000)
    path = tmp_path / name
    if name.endswith(".flac"):
        write_soundfile(path, signal, 16_000)
    else:
        write_pyav(path, signal, 16_000)
    clean = load_audio(path)
    x = load_audio(damage(path, 0.5, 2_000))
    assert len(x) == pytest.approx(len(clean), abs=16)
    np.testing.assert_allclose(x[:8_000], clean[:8_000], atol=1e-5)
    assert best_lag(x[-16_000:], clean[len(x) - 16_000 : len(x)], 40) == (
        0,
        pytest.approx(1, abs=1e-4),
    )


def test_a_truncated_file_keeps_what_survives(tmp_path):
    path = write_soundfile(tmp_path / "cut.flac", chirp(4.0, 44_100), 44_100)
    clean = load_audio(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    x = load_audio(path)
    assert 1.5 < len(x) / SAMPLE_RATE < 2.5
    np.testing.assert_allclose(x[: len(x) - 200], clean[: len(x) - 200], atol=1e-5)


# --- StreamResampler ------------------------------------------------------------------------------


@pytest.mark.parametrize(("in_rate", "channels"), [(44_100, 2), (48_000, 1), (22_050, 6)])
def test_stream_resampler_blockwise_equals_one_shot(in_rate, channels):
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((in_rate * 2, channels)).astype(np.float32) * 0.1
    one_shot = soxr.resample(signal.mean(axis=1), in_rate, SAMPLE_RATE, quality="HQ")
    resampler = StreamResampler(in_rate, channels)
    cuts = np.sort(rng.choice(len(signal), 40, replace=False))
    pieces = [resampler.process(b) for b in np.split(signal, cuts)]
    pieces.append(resampler.process(np.zeros((0, channels), np.float32), last=True))
    streamed = np.concatenate(pieces)
    assert len(streamed) == len(one_shot) == 2 * SAMPLE_RATE
    np.testing.assert_allclose(streamed, one_shot, atol=1e-5)
    # after last=True it starts afresh: the same signal gives the same output again
    again = np.concatenate(
        [resampler.process(signal[:1000]), resampler.process(signal[1000:], True)]
    )
    np.testing.assert_allclose(again, one_shot, atol=1e-5)


def test_stream_resampler_inputs():
    same = StreamResampler(SAMPLE_RATE, 1)
    x = np.linspace(-1, 1, 100, dtype=np.float64)
    out = same.process(x)
    assert out.dtype == np.float32 and np.allclose(out, x)
    ints = StreamResampler(SAMPLE_RATE, 2).process(np.array([[16384, -32768]] * 4, np.int16))
    np.testing.assert_allclose(ints, -0.25)
    flushed = StreamResampler(48_000, 2)
    assert len(flushed.process(np.ones((4_800, 2), np.float32))) < 1_600  # filter delay
    assert len(flushed.process(np.zeros((0, 1), np.float32), last=True)) > 0  # any empty block
    with pytest.raises(ValueError, match=r"expected \(frames, 2\)"):
        StreamResampler(48_000, 2).process(np.zeros(10, np.float32))
    with pytest.raises(ValueError, match="in_rate"):
        StreamResampler(0, 1)
    with pytest.raises(ValueError, match="channels"):
        StreamResampler(16_000, 1.5)


# --- write_wav ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("subtype", "tolerance"), [("PCM_16", 1 / 32_000), ("FLOAT", 0.0)])
def test_write_wav_round_trip(tmp_path, subtype, tolerance):
    signal = chirp(1.0, SAMPLE_RATE, amplitude=0.9)
    path = tmp_path / "out.wav"
    write_wav(path, signal, subtype=subtype)
    assert probe(path).sample_rate == SAMPLE_RATE
    np.testing.assert_allclose(load_audio(path), signal, atol=tolerance)
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


def test_write_wav_clips_instead_of_wrapping(tmp_path):
    path = tmp_path / "loud.wav"
    write_wav(path, np.array([1.5, -2.0, 0.5], np.float32))
    np.testing.assert_allclose(sf.read(str(path))[0], [32767 / 32768, -1.0, 0.5], atol=1e-4)


def test_write_wav_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "take.wav"
    write_wav(path, tone(440, 0.5, SAMPLE_RATE))
    before = path.read_bytes()

    def fail_midway(file, data, *args, **kwargs):
        file.write(b"RIFF partial")
        raise sf.LibsndfileError(0, prefix="Error writing: ")

    monkeypatch.setattr(sf, "write", fail_midway)
    with pytest.raises(OSError, match=r"take\.wav"):
        write_wav(path, tone(880, 0.5, SAMPLE_RATE))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["take.wav"]
    with pytest.raises(FileNotFoundError, match="folder does not exist"):
        write_wav(tmp_path / "no" / "x.wav", tone(440, 0.1, SAMPLE_RATE))
    with pytest.raises(ValueError, match="1-D"):
        write_wav(path, np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="subtype"):
        write_wav(path, np.zeros(10), subtype="MP3")


# --- real clips -----------------------------------------------------------------------------------


def test_every_shared_clip_decodes_with_its_manifest_duration(shared_audio):
    with open(shared_audio / "manifest.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert rows
    for row in rows:
        path = shared_audio / row["file"]
        info = probe(path)
        assert info.sample_rate == int(row["sample_rate"]), row["file"]
        x = load_audio(path)
        assert len(x) / SAMPLE_RATE == pytest.approx(float(row["duration_s"]), abs=0.011), row[
            "file"
        ]
        assert info.duration == pytest.approx(len(x) / SAMPLE_RATE, abs=1e-3), row["file"]
        assert 0.005 < float(np.sqrt(np.mean(x**2))) < 1.0, row["file"]  # speech, not silence


def test_64_bit_integer_pcm_is_read(tmp_path):
    """FFmpeg decodes 64-bit integer WAV to s64 frames, which PyAV cannot turn into an array
    (a ValueError, not an AudioError, until they were read raw; found by the fuzz tests)."""
    import struct

    rate, n = 16_000, 8_000
    x = (np.sin(2 * np.pi * 440 * np.arange(n) / rate) * 0.5 * 2**63).astype("<i8")
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 8, 8, 64)
    body = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", x.nbytes) + x.tobytes()
    path = tmp_path / "s64.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body) + 4) + b"WAVE" + body)
    samples = audio.load_audio(path)
    assert samples.shape == (n,)
    assert np.allclose(samples, x / 2**63, atol=1e-6)


@pytest.mark.parametrize("name", ["recording", "recording.dat", "voice.WAVX"])
def test_audio_is_recognized_by_content_whatever_its_name(tmp_path, name):
    """Before: refused for its name ("unsupported file type"), though libsndfile and FFmpeg
    recognize the format from its header."""
    signal = tone(440, 1.0, 16_000)
    wav = write_soundfile(tmp_path / "source.wav", signal, 16_000)
    (tmp_path / name).write_bytes(wav.read_bytes())
    assert probe(tmp_path / name).duration == pytest.approx(1.0)
    assert np.allclose(load_audio(tmp_path / name), load_audio(wav))


def test_compressed_audio_without_extension_is_recognized(tmp_path):
    m4a = write_pyav(tmp_path / "whole.m4a", tone(440, 1.0, 16_000), 16_000)
    (tmp_path / "voice-memo").write_bytes(m4a.read_bytes())
    assert probe(tmp_path / "voice-memo").backend == "pyav"
    assert len(load_audio(tmp_path / "voice-memo")) == pytest.approx(16_000, abs=2048)


def test_a_truncated_wav_is_read_as_far_as_it_goes_with_one_warning(tmp_path, caplog):
    """A copy cut short: the header promises 4 s, 2 s are there. The 2 s are transcribed and
    one line names the file and how much was missing (before: silently shorter)."""
    wav = write_soundfile(tmp_path / "full.wav", tone(440, 4.0, 16_000), 16_000)
    data = wav.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: 44 + 2 * 32_000])
    with caplog.at_level("WARNING", logger="tingxie.audio"):
        samples = load_audio(cut)
    assert len(samples) == 32_000
    lines = [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()]
    assert lines and str(cut) in lines[0] and "2.0 s of the 4.0 s" in lines[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="tingxie.audio"):
        load_audio(wav)
    assert not [r for r in caplog.records if "truncated" in r.getMessage()]


# --- lengths FFmpeg estimates, late audio tracks, unfinished headers, bad samples ----------------


@pytest.mark.parametrize(("make", "seconds"), [(joined_mp3, 5.2), (aac_with_a_quiet_end, 15.0)])
def test_audio_past_an_estimated_length_is_read_to_the_end(tmp_path, make, seconds):
    """Before: decoding stopped at the length FFmpeg estimated (probe: 2.7 of 5.2 s, 4.1 of
    15 s), so the end of the speech was silently lost."""
    path = make(tmp_path)
    info = probe(path)
    assert info.duration < seconds - 1 and not info.exact  # the estimate: short, only a guide
    x = load_audio(path)
    assert len(x) / SAMPLE_RATE == pytest.approx(seconds, abs=0.25)
    end = len(x) / SAMPLE_RATE
    tail = read_span(path, end - 0.6, end - 0.1)  # past where libsndfile's estimate ends, too
    np.testing.assert_allclose(tail, x[len(x) - 9_600 : len(x) - 1_600], atol=1e-4)
    assert dominant_frequency(tail, SAMPLE_RATE) == pytest.approx(440.0, abs=5.0)


def test_a_late_audio_track_keeps_the_videos_times(tmp_path):
    """An MKV whose sound starts 2 s into the video: its samples are placed 2 s in, after
    silence, so times (and subtitles) match the picture. Before: they counted from the audio
    track's start, and every time was 2 s early."""
    path = write_pyav(tmp_path / "late.mkv", chirp(SECONDS, 48_000), 48_000, "pcm_s16le",
                      video=True, delay=2.0)  # fmt: skip
    assert probe(path).duration == pytest.approx(2.0 + SECONDS, abs=0.1)
    x = load_audio(path)
    assert len(x) / SAMPLE_RATE == pytest.approx(2.0 + SECONDS, abs=0.01)
    assert np.abs(x[: 2 * SAMPLE_RATE - 160]).max() < 1e-4  # (the filter rings a little ahead)
    lag, corr = best_lag(x[2 * SAMPLE_RATE :], chirp(SECONDS, SAMPLE_RATE), max_lag=400)
    assert abs(lag) <= 2 and corr > LOSSLESS
    for start, end in [(0.5, 1.5), (1.7, 2.4)]:  # before and across its start
        span = read_span(path, start, end)
        expected = x[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)]
        np.testing.assert_allclose(span, expected, atol=1e-3)
    # After it, a seek: placed to Matroska's milliseconds (±8 samples, as in any .mkv).
    span = read_span(path, 3.0, 4.0)
    lag, corr = best_lag(span, chirp(SECONDS, SAMPLE_RATE)[SAMPLE_RATE : 2 * SAMPLE_RATE], 40)
    assert abs(lag) <= 9 and corr > 0.95  # (a fraction of a sample off: a 3 kHz sweep feels it)


def test_a_wav_whose_header_was_never_finalised_is_read_to_the_end(tmp_path, caplog):
    """A recorder killed before it wrote the sizes: the header says 0 bytes of data, 2 s
    follow. Before: refused as "contains no audio samples", though FFmpeg reads them."""
    wav = write_soundfile(tmp_path / "full.wav", tone(440, 2.0, 16_000), 16_000)
    data = bytearray(wav.read_bytes())
    at = data.find(b"data")
    data[at + 4 : at + 8] = bytes(4)
    data[4:8] = (36).to_bytes(4, "little")
    path = tmp_path / "unfinished.wav"
    path.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="tingxie.audio"):
        x = load_audio(path)
    np.testing.assert_allclose(x, load_audio(wav), atol=1e-4)
    assert [r for r in caplog.records if str(path) in r.getMessage() and "2.0 s" in r.getMessage()]


def test_samples_that_are_not_numbers_become_silence_with_one_warning(tmp_path, caplog):
    """One NaN or Inf in a float WAV (a plug-in's glitch) went through the resampler and the
    model's normalisation and erased the speech around it; now it is a silent sample, and one
    warning names the file."""
    signal = tone(300.0, 3.0, 44_100)
    signal[44_100], signal[88_200], signal[88_201] = np.nan, np.inf, -np.inf
    path = write_soundfile(tmp_path / "glitch.wav", signal, 44_100, "FLOAT")
    clean = load_audio(write_soundfile(tmp_path / "clean.wav", tone(300.0, 3.0, 44_100), 44_100,
                                       "FLOAT"))  # fmt: skip
    with caplog.at_level("WARNING", logger="tingxie.audio"):
        x = load_audio(path)
    assert np.isfinite(x).all()
    far = np.ones(len(x), bool)  # the resampler's filter spreads a changed sample a few ms
    for second in (1, 2):
        far[second * SAMPLE_RATE - 200 : second * SAMPLE_RATE + 200] = False
    np.testing.assert_allclose(x[far], clean[far], atol=1e-4)
    warnings = [r.getMessage() for r in caplog.records if "not a number" in r.getMessage()]
    assert len(warnings) == 1 and str(path) in warnings[0] and "1.00 s" in warnings[0]
    assert np.isfinite(read_span(path, 0.5, 2.5)).all()


@pytest.mark.parametrize("in_rate", [16_000, 48_000])
def test_the_microphone_path_cannot_be_poisoned_by_a_bad_sample(in_rate):
    """The live path resamples every device block through StreamResampler too."""
    resampler = StreamResampler(in_rate, 2)
    blocks = [stereo(tone(300.0, 0.02, in_rate)) for _ in range(20)]
    blocks[3][5, 0] = np.nan
    out = np.concatenate([resampler.process(b) for b in blocks])
    assert np.isfinite(out).all() and np.abs(out).max() > 0.3


@pytest.mark.parametrize(
    ("name", "codec", "options"),
    [
        ("a.mp3", "libmp3lame", {"write_xing": "0"}),
        ("x.mp3", "libmp3lame", {}),
        ("a.aac", "aac", {}),
    ],
)
def test_a_span_late_in_an_mp3_or_aac_is_read_without_decoding_from_the_start(
    tmp_path, monkeypatch, name, codec, options
):
    """Review plays span after span. Before: each one in an MP3 or .aac was decoded from the
    start (a second per 10 minutes of 44.1 kHz stereo: 17 s near the end of 3 hours). Now a
    byte seek to a packet of its index, with the samples decoding from the start gives."""
    x = stereo(chirp(40.0, 44_100))
    path = write_pyav(tmp_path / name, x, 44_100, codec, options=options)
    decoded = []

    def counting(*args, **kwargs):
        for frame in real(*args, **kwargs):
            decoded.append(frame.samples)
            yield frame

    real = audio._av_decode
    monkeypatch.setattr(audio, "_av_decode", counting)
    late = read_span(path, 36.0, 37.5)
    assert sum(decoded) < 3 * 44_100  # the span, its padding and a few frames before
    monkeypatch.setattr(audio, "_PREROLL_PACKETS", 10**9)  # too near the start: no seek
    from_start = read_span(path, 36.0, 37.5)
    if codec == "aac":  # FFmpeg's AAC decoder carries float rounding across frames
        np.testing.assert_allclose(late, from_start, rtol=0, atol=1e-6)
    else:
        np.testing.assert_array_equal(late, from_start)
    assert sum(decoded) > 36 * 44_100
    whole = load_audio(path)
    np.testing.assert_allclose(late, whole[36 * SAMPLE_RATE : 37 * SAMPLE_RATE + 8000], atol=1e-5)
