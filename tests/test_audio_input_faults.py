"""Audio given to the engine as a library, the hunt found read wrong with no error: integer
arrays cast to float unscaled, a NaN sample erasing the text around it, write_wav's mix-ups,
options that are not finite, and writers' messages naming the wrong thing."""

from __future__ import annotations

import errno
import math

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import tone, write_soundfile

from engine import audio
from engine.atomic import atomic_write_text
from engine.audio import SAMPLE_RATE, iter_audio, load_audio, open_source, write_wav
from engine.results import Char, Segment
from engine.stream import StreamOptions
from engine.transcribe import TranscribeOptions
from engine.vad import PauseOptions
from engine.writers import write, write_all

# --- integer samples ------------------------------------------------------------------------------


def test_an_int16_array_is_read_as_soundfile_reads_its_file(tmp_path):
    """sf.read(dtype="int16") or a microphone's int16 was cast to float unscaled (peaks of
    16 000 instead of 0.5): the model heard noise and the pause detector no pause."""
    path = write_soundfile(tmp_path / "t.wav", tone(300.0, 1.0, SAMPLE_RATE), SAMPLE_RATE, "PCM_16")
    as_float, _ = sf.read(path, dtype="float32")
    as_int16, _ = sf.read(path, dtype="int16")
    name, seconds, blocks = open_source(as_int16, block_seconds=0.25)
    got = np.concatenate(list(blocks))
    assert (name, seconds, got.dtype) == ("<array>", 1.0, np.float32)
    np.testing.assert_array_equal(got, as_float)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.array([-32768, 0, 16384], np.int16), [-1.0, 0.0, 0.5]),
        (np.array([-(2**31), 2**30], np.int32), [-1.0, 0.5]),
        (np.array([0, 128, 192], np.uint8), [-1.0, 0.0, 0.5]),  # WAV's 8-bit PCM: centred
        (np.array([0, 2**15, 3 * 2**14], np.uint16), [-1.0, 0.0, 0.5]),
    ],
)
def test_integer_samples_are_scaled_to_minus_one_to_one(values, expected):
    np.testing.assert_array_equal(audio.as_samples(values), np.array(expected, np.float32))
    np.testing.assert_array_equal(next(open_source(values)[2]), np.array(expected, np.float32))


def test_an_array_that_holds_no_samples_is_refused_naming_its_dtype():
    with pytest.raises(ValueError, match="dtype"):
        open_source(np.array(["a", "b"]))


# --- samples that are not numbers -----------------------------------------------------------------


def test_a_nan_in_an_array_is_silence_with_one_warning_naming_it(caplog):
    x = np.full(3 * SAMPLE_RATE, 0.1, np.float32)
    x[SAMPLE_RATE], x[2 * SAMPLE_RATE], x[2 * SAMPLE_RATE + 1] = np.nan, np.inf, -np.inf
    with caplog.at_level("WARNING", logger="tingxie.audio"):
        got = np.concatenate(list(open_source(x, block_seconds=0.5)[2]))
    expected = x.copy()
    expected[~np.isfinite(x)] = 0.0
    np.testing.assert_array_equal(got, expected)
    assert np.isnan(x[SAMPLE_RATE])  # the caller's array is left as it was
    warnings = [r.getMessage() for r in caplog.records if "not a number" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("samples:") and "1.00 s" in warnings[0]


def test_a_nan_in_an_array_loses_no_text(tiny_model_dir, shared_audio):
    """A NaN made its whole chunk NaN in the model's normalisation: its text was gone."""
    from engine.model import LoadOptions, load_model
    from engine.transcribe import Transcriber

    transcriber = Transcriber(load_model(tiny_model_dir, LoadOptions(precision="fp32")))
    x = load_audio(shared_audio / "aishell1_BAC009S0724W0121.wav")
    zeroed, poisoned = x.copy(), x.copy()
    zeroed[SAMPLE_RATE] = 0.0
    poisoned[SAMPLE_RATE] = np.nan

    def text(samples):
        segments, _ = transcriber.transcribe(samples)
        return "".join(c.text for s in segments if isinstance(s, Segment) for c in s.chars)

    assert text(poisoned) == text(zeroed) != ""
    assert np.isfinite(transcriber.log_probs([poisoned])[0]).all()


# --- write_wav ------------------------------------------------------------------------------------


def test_write_wav_refuses_channels_by_frames_saying_what_to_pass(tmp_path):
    """Before: "could not write audio (Format not recognised); free disk space"."""
    with pytest.raises(ValueError, match=r"\(2, 16000\).*pass frames x channels"):
        write_wav(tmp_path / "a.wav", np.zeros((2, SAMPLE_RATE), np.float32))
    with pytest.raises(ValueError, match="frames x channels"):
        write_wav(tmp_path / "a.wav", np.zeros((100, 12), np.float32))
    write_wav(tmp_path / "a.wav", np.zeros((SAMPLE_RATE, 2), np.float32))
    assert sf.info(tmp_path / "a.wav").channels == 2


def test_write_wav_refuses_empty_audio_and_a_folder(tmp_path, monkeypatch):
    """An empty array made a 0-frame WAV load_audio refuses; "." gave "PosixPath('.') has an
    empty name"."""
    with pytest.raises(ValueError, match="no samples"):
        write_wav(tmp_path / "a.wav", np.zeros(0, np.float32))
    assert not (tmp_path / "a.wav").exists()
    monkeypatch.chdir(tmp_path)
    for folder in (".", tmp_path):
        with pytest.raises(IsADirectoryError, match="is a folder; give a file name"):
            write_wav(folder, np.zeros(10, np.float32))
    assert list(tmp_path.iterdir()) == []


def test_write_wav_writes_nan_as_silence_not_full_scale(tmp_path):
    write_wav(tmp_path / "a.wav", np.array([np.nan, 0.5, np.inf, -np.inf], np.float32))
    np.testing.assert_array_equal(sf.read(tmp_path / "a.wav", dtype="int16")[0], [0, 16384, 0, 0])


def test_write_wav_blames_the_disk_only_when_it_is_full(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise sf.LibsndfileError(1, prefix="Error opening: ")

    monkeypatch.setattr(sf, "write", refuse)
    with pytest.raises(OSError, match=r"a\.wav: could not write audio") as refused:
        write_wav(tmp_path / "a.wav", np.zeros(10, np.float32))
    assert "free disk space" not in str(refused.value)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sf, "write", full)
    with pytest.raises(OSError, match="disk is full") as filled:
        write_wav(tmp_path / "a.wav", np.zeros(10, np.float32))
    assert filled.value.errno == errno.ENOSPC and filled.value.filename.endswith("a.wav")
    assert list(tmp_path.iterdir()) == []


# --- options that are not finite ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda v: TranscribeOptions(chunk_seconds=v), "chunk_seconds"),
        (lambda v: TranscribeOptions(stride_seconds=v), "stride_seconds"),
        (lambda v: TranscribeOptions(block_seconds=v), "block_seconds"),
        (lambda v: TranscribeOptions(max_segment_seconds=v), "max_segment_seconds"),
        (lambda v: PauseOptions(pause_seconds=v), "pause_seconds"),
        (lambda v: StreamOptions(hop_seconds=v), "hop_seconds"),
        (lambda v: StreamOptions(right_context_seconds=v), "right_context_seconds"),
    ],
)
@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_options_that_are_not_finite_are_refused_naming_them(make, name, value):
    """inf passed validation and crashed later with a raw OverflowError."""
    with pytest.raises(ValueError, match=f"{name}={value!r}"):
        make(value)


@pytest.mark.parametrize("value", [math.inf, math.nan, 0.0])
def test_a_block_length_that_is_not_finite_is_refused_naming_it(tmp_path, value):
    """iter_audio(block_seconds=nan) raised "cannot convert float NaN to integer"."""
    path = write_soundfile(tmp_path / "t.wav", tone(300.0, 0.5, SAMPLE_RATE), SAMPLE_RATE)
    for read in (lambda: iter_audio(path, block_seconds=value),
                 lambda: open_source(np.zeros(10, np.float32), block_seconds=value)):  # fmt: skip
        with pytest.raises(ValueError, match=f"block_seconds={value!r}"):
            read()
    assert audio.SUPPORTED_EXTENSIONS  # the module stays importable as a whole


# --- transcript writers ---------------------------------------------------------------------------


SEGMENTS = [Segment(0, 0.0, 0.5, (Char("你", 0.0, 0.2, 0.9), Char("好", 0.2, 0.5, 0.9)))]


def test_a_format_is_taken_in_any_case_and_a_bad_one_names_the_option(tmp_path):
    """fmt="TXT" said "cannot tell the format from the suffix '.txt'"."""
    write(SEGMENTS, tmp_path / "c.txt", fmt="TXT")
    assert "你好" in (tmp_path / "c.txt").read_text(encoding="utf-8")
    write(SEGMENTS, tmp_path / "c.out", fmt="Json")
    assert (tmp_path / "c.out").read_text(encoding="utf-8").lstrip().startswith("{")
    with pytest.raises(ValueError, match=r"fmt='doc'.*txt, srt, vtt, json"):
        write(SEGMENTS, tmp_path / "c.txt", fmt="doc")


def test_writing_into_a_missing_folder_names_the_folder_not_a_temporary_file(tmp_path):
    """FileNotFoundError named an internal '.tingxie-xxxx.tmp'."""
    missing = tmp_path / "nope"
    for attempt in (
        lambda: write(SEGMENTS, missing / "a.txt"),
        lambda: write_all(SEGMENTS, [missing / "a.txt", missing / "a.srt"]),
        lambda: atomic_write_text(missing / "a.txt", "x"),
    ):
        with pytest.raises(FileNotFoundError, match="folder does not exist") as caught:
            attempt()
        assert caught.value.filename == str(missing) and ".tingxie-" not in str(caught.value)
    assert not missing.exists()
