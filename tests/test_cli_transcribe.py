"""`tingxie-cli transcribe` run in-process on the tiny model and real files."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from engine.cli import main

FILES = ["aishell1_BAC009S0764W0121.wav", "funasr_asr_example_zh.mp3", "fireredtts2_zh_S2.flac"]


def cli(*argv: str) -> int:
    return main(["transcribe", *argv])


def test_transcribes_real_files_in_every_format(shared_audio, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    inputs = [str(shared_audio / f) for f in FILES]
    rc = cli(
        *inputs, "--model", str(tiny_model_dir), "--format", "txt,srt,vtt,json", "--out", str(out)
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "3 of 3 files transcribed" in err
    for f in FILES:
        stem = out / f.rsplit(".", 1)[0]
        doc = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        assert doc["info"]["source"].endswith(f)
        chars = [c for s in doc["segments"] for c in s["chars"]]
        assert chars and all(0 <= c["confidence"] <= 1 and c["alternatives"] for c in chars)
        txt = stem.with_suffix(".txt").read_text(encoding="utf-8")
        assert txt.splitlines() == [s["punctuated"] for s in doc["segments"]]
        assert " --> " in stem.with_suffix(".srt").read_text(encoding="utf-8")
        assert stem.with_suffix(".vtt").read_text(encoding="utf-8").startswith("WEBVTT")


def test_pyav_formats(tiny_model_dir, tmp_path, capsys):
    """An m4a (AAC through PyAV) and an ogg written here."""
    import av
    import soundfile as sf

    rng = np.random.default_rng(0)
    x = (rng.normal(size=32_000) * 0.1).astype(np.float32)
    sf.write(tmp_path / "a.ogg", x, 16_000)
    with av.open(str(tmp_path / "b.m4a"), "w") as box:
        stream = box.add_stream("aac", rate=16_000, layout="mono")
        frame = av.AudioFrame.from_ndarray(x[None, :], format="flt", layout="mono")
        frame.sample_rate = 16_000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            box.mux(packet)
    rc = cli(str(tmp_path / "a.ogg"), str(tmp_path / "b.m4a"), "--model", str(tiny_model_dir))
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "a.txt").is_file() and (tmp_path / "b.txt").is_file()


def test_the_json_and_srt_end_where_the_audio_read_ends(tiny_model_dir, tmp_path, capsys):
    """An MP3 FFmpeg guesses at 13.5 s holds 5.2 s: the JSON's duration is the length read
    and the last cue ends by it (before: 13.5 s, and the last cue held to 7.6 s)."""
    from audio_fixtures import mp3_longer_by_its_header

    from engine.audio import load_audio

    path = mp3_longer_by_its_header(tmp_path)
    read = len(load_audio(path)) / 16_000
    rc = cli(str(path), "--model", str(tiny_model_dir), "--format", "json,srt")
    assert rc == 0, capsys.readouterr().err
    doc = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    assert doc["info"]["duration"] == read
    srt = path.with_suffix(".srt").read_text(encoding="utf-8")
    h, m, s = srt.split(" --> ")[-1].split("\n")[0].replace(",", ".").split(":")
    assert int(h) * 3600 + int(m) * 60 + float(s) <= read


def test_bad_files_are_reported_and_the_others_complete(
    shared_audio, tiny_model_dir, tmp_path, capsys
):
    fake = tmp_path / "notes.wav"
    fake.write_text("this is text, not audio\n")
    good = shared_audio / FILES[0]
    missing = tmp_path / "missing.flac"
    rc = cli(
        str(fake), str(good), str(missing), "--model", str(tiny_model_dir), "--out", str(tmp_path)
    )
    err = capsys.readouterr().err
    assert rc == 1
    assert (tmp_path / "aishell1_BAC009S0764W0121.txt").is_file()
    assert not (tmp_path / "notes.txt").exists()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert "missing.flac" in errors[0] and "notes.wav" in errors[1]  # missing: before loading
    assert "Traceback" not in err
    # The summary names each failed file on one line; the message is printed once, inline
    # (the old summary repeated every message: each error then appeared twice).
    assert err.splitlines()[-4:] == [
        "1 of 3 files transcribed",
        "failed:",
        f"  {missing}",
        f"  {fake}",
    ]
    for line in errors:
        assert err.count(line.removeprefix("error: ")) == 1


def test_same_names_from_different_folders_do_not_overwrite(
    shared_audio, tiny_model_dir, tmp_path, capsys
):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        shutil.copy(shared_audio / FILES[0], tmp_path / folder)
    inputs = [str(tmp_path / folder / FILES[0]) for folder in ("x", "y")]
    rc = cli(*inputs, "--model", str(tiny_model_dir), "--out", str(tmp_path))
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "aishell1_BAC009S0764W0121.txt").is_file()
    assert (tmp_path / "aishell1_BAC009S0764W0121-2.txt").is_file()


def test_bad_model_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "x.wav").touch()  # a missing input is told without loading a model
    rc = cli(str(tmp_path / "x.wav"), "--model", str(tmp_path / "no-such-model"))
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "no-such-model" in err and "Traceback" not in err


def _default_model_offline(tmp_path, monkeypatch, capsys, whisper_base: bool) -> str:
    """The error of a run on the default model, offline, with the demo in this test's folder
    and Whisper-base there too (its model.bin) or not."""
    import engine.cli.transcribe as cmd

    demo = tmp_path / "resources" / "demo-model"
    demo.mkdir(parents=True)
    whisper = tmp_path / ".cache" / "models" / "whisper-base"
    whisper.mkdir(parents=True)
    if whisper_base:
        (whisper / "model.bin").write_bytes(b"ct2")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cmd, "DEMO_MODEL_DIR", demo)
    monkeypatch.setattr(cmd, "WHISPER_BASE_DIR", whisper)
    monkeypatch.setattr(cmd, "DEFAULT_MODEL", "tingxie-tests/not-in-any-cache")
    (tmp_path / "x.wav").touch()  # a missing input is told without loading a model
    rc = cli("x.wav", "--model", "tingxie-tests/not-in-any-cache")
    err = capsys.readouterr().err
    assert rc == 2 and "not-in-any-cache" in err
    return err


def test_default_model_offline_points_at_the_demo_model(tmp_path, monkeypatch, capsys):
    err = _default_model_offline(tmp_path, monkeypatch, capsys, whisper_base=False)
    assert "try --model resources/demo-model (the bundled demo model" in err
    assert "for real voices" not in err


def test_default_model_offline_points_at_whisper_base_first(tmp_path, monkeypatch, capsys):
    """Whisper-base fetched (packaging/fetch-whisper-base.py): old, only the demo was named,
    which gives junk on real voices; now Whisper-base first, the demo as synthetic speech."""
    err = _default_model_offline(tmp_path, monkeypatch, capsys, whisper_base=True)
    whisper = os.path.join(".cache", "models", "whisper-base")
    assert f"try --model {whisper} (Whisper-base, for real voices)" in err
    assert "or --model resources/demo-model (the bundled demo model, trained on synthetic" in err
    assert err.index("whisper-base") < err.index("demo-model")


def test_help_explains_with_examples(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli("--help")
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "examples:" in out and "--format" in out and "tingxie-cli transcribe" in out


def test_the_hotword_weights_default_in_the_help_is_the_decoders(capsys):
    from engine.lm import BeamOptions

    with pytest.raises(SystemExit):
        cli("--help")
    help_text = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert f"nats per character, default {BeamOptions().hotword_weight:g})" in help_text


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--format", "txt,docx"], "docx"), (["--batch-size", "0"], "batch-size")],
)
def test_bad_options_exit_2(args, needle, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli("x.wav", *args)
    assert exit_.value.code == 2
    assert needle in capsys.readouterr().err


def test_bad_confidence_measure_exit_2(tiny_model_dir, capsys):
    assert cli("x.wav", "--model", str(tiny_model_dir), "--confidence", "vibes") == 2
    assert "vibes" in capsys.readouterr().err


def test_a_recording_named_like_a_transcript_is_never_written_over(
    shared_audio, tiny_model_dir, tmp_path, capsys
):
    """Files are recognized by their content, so a WAV named memo.txt is transcribed; its
    transcript memo.txt would have replaced it (before: the recording was lost)."""
    recording = (shared_audio / FILES[0]).read_bytes()
    memo = tmp_path / "memo.txt"
    memo.write_bytes(recording)
    rc = cli(str(memo), "--model", str(tiny_model_dir), "--no-punctuation")
    err = capsys.readouterr().err
    assert rc == 1 and memo.read_bytes() == recording
    (error,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert error.count(str(memo)) == 2 and "--out" in error and "memo.wav" in error
    rc = cli(
        str(memo), "--model", str(tiny_model_dir), "--no-punctuation", "--out", str(tmp_path / "t")
    )
    assert rc == 0, capsys.readouterr().err
    assert memo.read_bytes() == recording and (tmp_path / "t" / "memo.txt").is_file()


def test_an_output_folder_that_cannot_be_written_is_found_before_transcribing(
    shared_audio, tiny_model_dir, tmp_path, lock_folder, capsys
):
    """Before: each file was transcribed, then failed naming a temporary file
    (".ok.txt.v0wgr333.tmp"), with no advice."""
    read_only_folder = lock_folder(tmp_path / "read-only")
    rc = cli(str(shared_audio / FILES[0]), "--model", str(tiny_model_dir), "--out",
             str(read_only_folder))  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert f"--out {read_only_folder}:" in err and "choose another" in err
    assert "Read-only" in err or "Permission denied" in err  # the system's reason: root or not


def test_a_transcript_that_cannot_be_written_names_its_file(
    shared_audio, tiny_model_dir, tmp_path, small_disk, capsys
):
    """A full disk: the error names the transcript being written (not the temporary file it
    goes through) and what to do."""
    full = small_disk(4096)
    rc = cli(str(shared_audio / FILES[0]), "--model", str(tiny_model_dir), "--format", "json",
             "--no-punctuation", "--out", str(full))  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1
    (error,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert str(full / "aishell1_BAC009S0764W0121.json") in error and ".tmp" not in error
    assert "No space left" in error and "free some space" in error


def test_a_file_in_the_way_of_an_output_subfolder_fails_that_file_only(
    shared_audio, tiny_model_dir, tmp_path, capsys
):
    """--recursive keeps the folder layout under --out; a file there named like a subfolder
    was a FileExistsError traceback that abandoned the remaining files."""
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    for place in ("a.wav", "sub/b.wav", "z.wav"):
        (source / place).write_bytes((shared_audio / FILES[0]).read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_text("in the way\n")
    rc = cli(str(source), "--recursive", "--model", str(tiny_model_dir), "--no-punctuation",
             "--out", str(out))  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    (error,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert str(source / "sub" / "b.wav") in error and f"{out / 'sub'}: " in error
    assert (out / "a.txt").is_file() and (out / "z.txt").is_file()
    assert "2 of 3 files transcribed" in err


def test_an_input_given_twice_is_transcribed_once(tiny_model_dir, tmp_path, monkeypatch, capsys):
    """`transcribe a.wav a.wav` (a folder and a file in it, ./a.wav) wrote a.txt and a-2.txt."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    sf.write(tmp_path / "a.wav", (rng.normal(size=16_000) * 0.1).astype(np.float32), 16_000)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    rc = cli(
        "a.wav", str(tmp_path / "a.wav"), ".", "--model", str(tiny_model_dir), "--out", str(out)
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    assert "1 of 1 files transcribed" in err and "2 inputs given more than once" in err


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_a_half_precision_on_an_onnx_export_is_warned_of(
    tiny_model_dir, tmp_path, monkeypatch, capsys, precision
):
    """ONNX Runtime runs an export in fp32 whatever --precision says: it was ignored silently."""
    import dataclasses

    import soundfile as sf

    import engine.cli.transcribe as transcribe
    from engine.model import LoadOptions, load_model

    model = load_model(tiny_model_dir, LoadOptions(device="cpu", precision="fp32"))
    as_onnx = dataclasses.replace(model, runtime="onnx")  # as engine.model loads a model.onnx
    monkeypatch.setattr(transcribe, "load_model", lambda *a, **k: as_onnx)
    sf.write(tmp_path / "a.wav", np.zeros(16_000, np.float32), 16_000)
    rc = cli(str(tmp_path / "a.wav"), "--model", str(tiny_model_dir), "--precision", precision)
    err = capsys.readouterr().err
    assert rc == 0, err
    (line,) = [x for x in err.splitlines() if x.startswith("warning:")]
    assert f"--precision {precision}" in line and str(tiny_model_dir) in line
    monkeypatch.setattr(transcribe, "load_model", lambda *a, **k: model)  # torch: no warning
    assert cli(str(tmp_path / "a.wav"), "--model", str(tiny_model_dir), "--precision", precision,
               "--overwrite") == 0  # fmt: skip
    assert "warning:" not in capsys.readouterr().err
