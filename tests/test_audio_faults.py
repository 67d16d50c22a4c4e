"""Faults found in reading files and naming transcripts, each with the behaviour now expected:
transcripts never replace a file that was there before (or another of the same run), a cut-off
file says how much is missing, a browser recording knows its length, a text file is called one,
a folder's subfolders are pointed out, and MP3s joined end to end are read whole."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
from audio_fixtures import (
    chirp,
    dominant_frequency,
    mp3_longer_by_its_header,
    tone,
    write_pyav,
    write_soundfile,
)

from engine import audio
from engine.audio import SAMPLE_RATE, AudioError, load_audio, probe, read_span
from engine.cli import main
from engine.results import Progress


def cli(*argv: str) -> int:
    return main(["transcribe", *argv])


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# --- 2. one output name, typed two ways -----------------------------------------------------------


def test_one_folder_typed_relatively_and_absolutely_gives_two_transcripts(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    """rec/talk.wav and /abs/rec/talk.mp3: both transcripts were written to talk.json, the
    second replacing the first (the names were compared as typed)."""
    rec = tmp_path / "rec"
    rec.mkdir()
    write_soundfile(rec / "talk.wav", chirp(1.0, 16_000), 16_000)
    write_soundfile(rec / "talk.mp3", tone(440.0, 1.0, 16_000), 16_000)
    monkeypatch.chdir(tmp_path)
    rc = cli("rec/talk.wav", str(rec / "talk.mp3"), "--model", str(tiny_model_dir),
             "--no-punctuation", "--format", "json")  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    sources = {
        json.loads((rec / name).read_text(encoding="utf-8"))["info"]["source"]
        for name in ("talk.json", "talk-2.json")
    }
    assert sources == {"rec/talk.wav", str(rec / "talk.mp3")}
    assert "wrote rec/talk.json" in err  # the names are shown as typed


# --- 3. files already there -----------------------------------------------------------------------


def test_a_file_already_named_like_the_transcript_is_kept_unless_overwrite(
    tiny_model_dir, tmp_path, capsys
):
    """meeting.txt held the user's own notes; `transcribe meeting.wav` replaced it silently."""
    write_soundfile(tmp_path / "meeting.wav", chirp(1.0, 16_000), 16_000)
    notes = tmp_path / "meeting.txt"
    notes.write_text("my own notes: call Li\n", encoding="utf-8")
    model = ("--model", str(tiny_model_dir), "--no-punctuation")
    rc = cli(str(tmp_path / "meeting.wav"), *model)
    err = capsys.readouterr().err
    assert rc == 1 and notes.read_text(encoding="utf-8") == "my own notes: call Li\n"
    (error,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert str(notes) in error and "already exists" in error and "--overwrite" in error
    assert "0 of 1 files transcribed" in err
    rc = cli(str(tmp_path / "meeting.wav"), *model, "--overwrite")
    assert rc == 0, capsys.readouterr().err
    assert notes.read_text(encoding="utf-8") != "my own notes: call Li\n"


def test_a_second_run_keeps_the_first_runs_transcripts(tiny_model_dir, tmp_path, capsys):
    write_soundfile(tmp_path / "talk.wav", chirp(1.0, 16_000), 16_000)
    args = (str(tmp_path / "talk.wav"), "--model", str(tiny_model_dir), "--no-punctuation",
            "--format", "txt,json")  # fmt: skip
    assert cli(*args) == 0, capsys.readouterr().err
    first = (tmp_path / "talk.json").read_bytes()
    assert cli(*args) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "talk.json").read_bytes() == first


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_folder_named_like_the_transcript_is_said_before_the_model_loads(
    tmp_path, monkeypatch, capsys, overwrite
):
    """talk.txt a folder: without --overwrite, "already exists; add --overwrite"; with it, the
    model loaded and ran, then "could not be written (Is a directory); free some space"."""
    from engine.cli import transcribe as cmd

    def no_model(*_args, **_kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(cmd, "load_model", no_model)
    write_soundfile(tmp_path / "talk.wav", chirp(1.0, 16_000), 16_000)
    folder = tmp_path / "talk.txt"
    folder.mkdir()
    rc = cli(str(tmp_path / "talk.wav"), "--model", "never-loaded", *overwrite)
    err = capsys.readouterr().err
    assert rc == 1 and folder.is_dir() and not any(folder.iterdir())
    (error,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert f"{folder}: that is a folder" in error and "--out DIR" in error
    assert "already exist" not in error and "add --overwrite" not in error
    assert "Is a directory" not in err and "free some space" not in err
    assert "0 of 1 files transcribed" in err


def test_a_folder_named_like_one_transcript_fails_that_file_before_any_is_written(
    tiny_model_dir, tmp_path, capsys
):
    """talk.srt a folder, with --overwrite: talk.txt was written, then talk.srt failed; the
    other recordings are transcribed as before."""
    for name in ("talk.wav", "memo.wav"):
        write_soundfile(tmp_path / name, chirp(1.0, 16_000), 16_000)
    (tmp_path / "talk.srt").mkdir()
    rc = cli(str(tmp_path / "talk.wav"), str(tmp_path / "memo.wav"), "--model", str(tiny_model_dir),
             "--no-punctuation", "--format", "txt,srt", "--overwrite")  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and "1 of 2 files transcribed" in err
    (error,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert f"{tmp_path / 'talk.srt'}: that is a folder" in error
    assert not (tmp_path / "talk.txt").exists()
    assert (tmp_path / "memo.txt").is_file() and (tmp_path / "memo.srt").is_file()


def test_overwrite_is_in_the_help(capsys):
    with pytest.raises(SystemExit):
        cli("--help")
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--overwrite" in help_text and "already exist" in help_text


# --- 4. files cut short ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def whole_files(tmp_path_factory):
    """The same 8 s sweep as MP3 (with its length in a Xing header), M4A (index first) and FLAC."""
    folder = tmp_path_factory.mktemp("whole")
    x = chirp(8.0, 44_100)
    return {
        "mp3": write_soundfile(folder / "a.mp3", x, 44_100),
        "m4a": write_pyav(folder / "a.m4a", x, 44_100, options={"movflags": "faststart"}),
        "flac": write_soundfile(folder / "a.flac", x, 44_100),
    }


@pytest.mark.parametrize("kind", ["mp3", "m4a", "flac"])
def test_a_file_cut_in_half_says_how_much_is_missing(whole_files, kind, tmp_path, caplog):
    """Before: the MP3 gave half a transcript without a word; the M4A and FLAC spoke of a
    corrupt packet at some pts."""
    data = whole_files[kind].read_bytes()
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level("WARNING", logger="tingxie.audio"):
        x = load_audio(cut)
    read = len(x) / SAMPLE_RATE
    assert 3.0 < read < 5.0
    lines = [m for m in _warnings(caplog) if "truncated" in m]
    assert len(lines) == 1, _warnings(caplog)
    assert str(cut) in lines[0] and "of the 8.0 s its header promises are missing" in lines[0]
    assert f"{8.0 - read:.1f} s of the 8.0 s" in lines[0]
    assert not [m for m in _warnings(caplog) if "pts" in m]


@pytest.mark.parametrize("kind", ["mp3", "m4a", "flac"])
def test_a_whole_file_gives_no_truncation_warning(whole_files, kind, caplog):
    with caplog.at_level("WARNING", logger="tingxie.audio"):
        load_audio(whole_files[kind])
    assert not _warnings(caplog)


def test_an_mp3_whose_length_is_guessed_is_not_called_truncated(tmp_path, caplog):
    """A whole MP3 without a Xing header, quiet (32 kbit/s) then loud (160 kbit/s): FFmpeg
    guesses 13 s from the first frames' bit rate, and that guess was taken as exact, so the
    5 s read were "truncated: 8.0 s ... missing". With a Xing header the length is exact."""
    path = mp3_longer_by_its_header(tmp_path)
    info = probe(path)
    assert info.duration > 10 and not info.exact
    with caplog.at_level("WARNING", logger="tingxie.audio"):
        x = load_audio(path)
    assert len(x) / SAMPLE_RATE == pytest.approx(5.0, abs=0.2)
    assert not [m for m in _warnings(caplog) if "truncated" in m]  # (the join itself is warned of)
    assert probe(write_soundfile(tmp_path / "xing.mp3", chirp(2.0, 16_000), 16_000)).exact


def test_an_mp3_length_is_exact_only_where_its_xing_header_counts_the_whole_file(tmp_path):
    """Two MP3s with Xing headers joined with `cat` (the header counts only the first), or a
    Xing header that holds no frame count: FFmpeg's length is a guess there, not exact."""
    one = write_pyav(tmp_path / "a.mp3", chirp(2.0, 16_000), 16_000, "libmp3lame")
    two = write_pyav(tmp_path / "b.mp3", tone(440.0, 3.0, 16_000), 16_000, "libmp3lame")
    assert probe(one).exact and probe(two).exact
    joined = tmp_path / "joined.mp3"
    joined.write_bytes(one.read_bytes() + two.read_bytes())
    assert not probe(joined).exact
    data = bytearray(one.read_bytes())
    at = max(data.find(b"Xing"), data.find(b"Info"))
    data[at + 4 : at + 8] = bytes(4)  # no flags: no frame count
    uncounted = tmp_path / "uncounted.mp3"
    uncounted.write_bytes(bytes(data))
    assert not probe(uncounted).exact


# --- 5. a browser recording: no length in its header ----------------------------------------------


@pytest.fixture(scope="module")
def browser_webm(tmp_path_factory):
    """WebM/Opus as MediaRecorder writes it: live, so no duration in the header."""
    path = tmp_path_factory.mktemp("webm") / "browser.webm"
    return write_pyav(path, chirp(6.0, 48_000), 48_000, "libopus", container_format="webm",
                      options={"live": "1"})  # fmt: skip


# Chunks of 2 s, so that a 6 s file gives several progress records.
_SMALL = {"batch_size": 1, "chunk_seconds": 2.0, "stride_seconds": 0.5, "cut_at_pauses": False}


def test_a_browser_webm_knows_its_length(browser_webm, tiny_model_dir):
    """Before: duration 0.0 in the probe, TranscriptionInfo, JSON and library, and a progress
    bar at 100 % throughout."""
    from engine.model import LoadOptions, load_model
    from engine.transcribe import TranscribeOptions, Transcriber

    assert probe(browser_webm).duration == pytest.approx(6.0, abs=0.05)
    t = Transcriber(load_model(tiny_model_dir, LoadOptions(precision="fp32")))
    items, info = t.transcribe(browser_webm, TranscribeOptions(**_SMALL))
    assert info.duration == pytest.approx(6.0, abs=0.05)
    fractions = [i.fraction for i in items if isinstance(i, Progress)]
    assert fractions[-1] == 1.0 and min(fractions) < 0.9


def test_an_unknown_total_is_not_reported_as_done(tiny_model_dir, monkeypatch):
    """Where no length is known (0), progress says so (total 0) instead of claiming each block
    is the last; the last record gives the length decoded."""
    from engine.model import LoadOptions, load_model
    from engine.transcribe import TranscribeOptions, Transcriber

    opened = audio.open_source

    def unknown_length(*args, **kwargs):
        name, _, blocks = opened(*args, **kwargs)
        return name, 0.0, blocks

    monkeypatch.setattr(audio, "open_source", unknown_length)
    t = Transcriber(load_model(tiny_model_dir, LoadOptions(precision="fp32")))
    x = chirp(6.0, SAMPLE_RATE)
    items, _ = t.transcribe(x, TranscribeOptions(**_SMALL))
    progress = [i for i in items if isinstance(i, Progress)]
    assert len(progress) > 2
    assert all(p.total == 0.0 for p in progress[:-1])
    assert progress[-1].done == progress[-1].total == pytest.approx(6.0, abs=0.01)


def test_the_queue_row_shows_an_unknown_fraction_as_busy(qtbot):
    from app.filequeue import FileQueue

    queue = FileQueue()
    qtbot.addWidget(queue)
    queue.add(1, "/tmp/browser.webm")
    queue.set_progress(1, math.nan)
    assert math.isnan(queue.progress(1))  # drawn as Qt's busy indicator
    queue.set_progress(1, 0.25)
    assert queue.progress(1) == 0.25
    queue.set_progress(1, math.nan)
    queue.set_state(1, "done")
    assert queue.progress(1) == 1.0
    queue.add(2, "/tmp/other.webm")
    queue.set_progress(2, math.nan)
    queue.set_state(2, "failed", "no audio")
    assert queue.progress(2) == 0.0  # the busy indicator does not run on


# --- 6. text files and transcripts among the inputs -----------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "notes.txt",
            "".join(f"{i}. Meeting notes: call Li, send the slides.\n" for i in range(12)),
        ),
        ("talk.srt", "1\n00:00:00,000 --> 00:00:01,000\nhello\n"),
        ("talk.vtt", "WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n"),
        ("talk.ass", "[Script Info]\nScriptType: v4.00+\n\n[Events]\n"),
    ],
)
def test_a_text_or_subtitle_file_is_not_called_a_video(tmp_path, name, text):
    """Before: FFmpeg's tty and subtitle demuxers made notes.txt 'a video with no audio track'
    and talk.srt one that 'has no audio track'."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AudioError) as e:
        probe(path)
    assert e.value.code == "audio.unrecognized"
    assert "not audio or video" in str(e.value)


def test_a_rerun_over_a_folder_skips_the_transcripts(tiny_model_dir, tmp_path, capsys):
    """`transcribe dir/*` after a first run: the transcripts were taken as inputs (errors, and
    the recording's new transcripts went to talk-4.*)."""
    wav = write_soundfile(tmp_path / "talk.wav", chirp(1.0, 16_000), 16_000)
    args = ("--model", str(tiny_model_dir), "--no-punctuation", "--format", "txt,srt,json")
    assert cli(str(wav), *args) == 0, capsys.readouterr().err
    everything = sorted(str(p) for p in tmp_path.iterdir())
    rc = cli(*everything, *args, "--overwrite")
    err = capsys.readouterr().err
    assert rc == 0, err
    for suffix in ("txt", "srt", "json"):
        assert f"{tmp_path / ('talk.' + suffix)}: skipped, a transcript" in err
    assert "1 of 1 files transcribed" in err and "error" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "talk.json", "talk.srt", "talk.txt", "talk.wav"
    ]  # fmt: skip


def test_a_recording_named_txt_among_others_is_still_transcribed(tiny_model_dir, tmp_path, capsys):
    """Files are judged by their content: a WAV named memo.txt is no transcript."""
    wav = write_soundfile(tmp_path / "talk.wav", chirp(1.0, 16_000), 16_000)
    (tmp_path / "memo.txt").write_bytes(wav.read_bytes())
    rc = cli(str(tmp_path / "memo.txt"), str(tmp_path / "talk.wav"), "--model",
             str(tiny_model_dir), "--no-punctuation", "--out", str(tmp_path / "out"))  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "memo.txt").is_file()


# --- 7. recordings only in subfolders -------------------------------------------------------------


def test_a_folder_with_recordings_only_in_subfolders_names_recursive(tmp_path, capsys):
    for place in ("2024-05-01/a.wav", "2024-05-02/b.wav"):
        (tmp_path / place).parent.mkdir()
        write_soundfile(tmp_path / place, chirp(0.5, 16_000), 16_000)
    assert cli(str(tmp_path), "--model", str(tmp_path / "never-loaded")) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path}: 0 audio and video files (2 in its subfolders:" in err
    assert "--recursive" in err


# --- 8. MP3s joined end to end ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("second", "rate"),
    [("rate", 48_000), ("channels", 44_100)],
)
def test_mp3s_joined_with_another_format_are_read_whole(tmp_path, second, rate):
    """`cat a.mp3 b.mp3` where b has another sample rate or channel count: refused whole."""
    a = write_soundfile(tmp_path / "a.mp3", tone(440.0, 3.0, 44_100), 44_100)
    b_signal = tone(1000.0, 3.0, rate)
    if second == "channels":
        b_signal = np.stack([b_signal, b_signal], axis=1)
    b = write_soundfile(tmp_path / "b.mp3", b_signal, rate)
    joined = tmp_path / "joined.mp3"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    x = load_audio(joined)
    assert len(x) / SAMPLE_RATE == pytest.approx(6.0, abs=0.15)
    assert dominant_frequency(x[SAMPLE_RATE : 2 * SAMPLE_RATE], SAMPLE_RATE) == pytest.approx(
        440.0, abs=5
    )
    late = x[4 * SAMPLE_RATE : 5 * SAMPLE_RATE]
    assert dominant_frequency(late, SAMPLE_RATE) == pytest.approx(1000.0, abs=5)
    assert np.sqrt(np.mean(late**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)
    np.testing.assert_allclose(read_span(joined, 4.0, 5.0), late, atol=1e-4)
