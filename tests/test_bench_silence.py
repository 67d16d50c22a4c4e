"""bench_silence's helpers and command line (the bench itself is not run here: it takes minutes)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from engine.metrics import cer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_silence as bs


def _clip(seconds: float, value: float, text: str) -> bs.Clip:
    return bs.Clip(np.full(round(seconds * bs.SAMPLE_RATE), value, np.float32), text)


def test_joined_clips_lays_silence_first_and_near_silence_after_each_clip():
    joined = bs.joined_clips([_clip(1, 0.5, "你好"), _clip(2, -0.5, "世界")], 6, 4, 0.001)
    sr = bs.SAMPLE_RATE
    assert len(joined.audio) == 17 * sr  # 6 + 1 + 4 + 2 + 4
    assert joined.text == "你好世界"
    assert not joined.audio[: 6 * sr].any()  # digital silence first
    assert (joined.audio[6 * sr : 7 * sr] == 0.5).all()
    gap = joined.audio[7 * sr : 11 * sr]
    assert 0.0008 < gap.std() < 0.0012 and np.abs(gap).max() < 0.01  # near-silence, not zeros
    assert (joined.audio[11 * sr : 13 * sr] == -0.5).all()
    assert 0.0008 < joined.audio[13 * sr :].std() < 0.0012


def test_joined_clips_is_the_same_for_the_same_seed():
    clips = [_clip(0.5, 0.1, "一")]
    same = bs.joined_clips(clips, 1, 1, 0.001, seed=3).audio
    assert np.array_equal(same, bs.joined_clips(clips, 1, 1, 0.001, seed=3).audio)
    assert not np.array_equal(same, bs.joined_clips(clips, 1, 1, 0.001, seed=4).audio)


def test_comparison_names_both_settings_errors_and_the_reference_size():
    before, after = cer(["你好世界"], ["你好世界啊"]), cer(["你好世界"], ["你好世界"])
    line = bs.comparison("pauses, greedy", before, after)
    assert line == "pauses, greedy: 25.00% (1 errors) -> 0.00% (0 errors) of 4 characters"


def test_help_and_a_folder_without_a_model_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        bs.parse_args(["--help"])
    assert stop.value.code == 0 and "usage:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        bs.parse_args(["--model", str(tmp_path)])
    assert stop.value.code == 2
    assert f"--model: {tmp_path} holds no model" in capsys.readouterr().err


def test_whisper_refuses_a_missing_manifest(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SystemExit):
        bs.parse_args(["--whisper", "--model", str(tmp_path), "--data", str(tmp_path / "no.tsv")])
    assert "--data" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [("--gap-noise", "1.5", "--gap-noise: 1.5"), ("--gap-seconds", "0", "--gap-seconds")],
)
def test_the_whisper_files_gaps_are_checked(tmp_path, capsys, option, value, said):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SystemExit) as stop:
        bs.parse_args(["--whisper", "--model", str(tmp_path), option, value])
    assert stop.value.code == 2 and said in capsys.readouterr().err


def test_the_whisper_files_gaps_are_taken_from_the_command_line(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    args = bs.parse_args(["--model", str(tmp_path), "--gap-seconds", "10", "--gap-noise", "0"])
    assert (args.gap_seconds, args.gap_noise) == (10.0, 0.0)
    assert (bs.parse_args(["--model", str(tmp_path)]).gap_seconds, bs.GAP_SECONDS) == (4.0, 4.0)


def test_an_unknown_set_is_refused_naming_the_sets(capsys):
    with pytest.raises(SystemExit) as stop:
        bs.parse_args(["--sets", "pauses,quiet"])
    assert stop.value.code == 2
    assert "--sets: quiet: give pauses, accuracy" in capsys.readouterr().err


def test_the_accuracy_set_is_voiced_as_bench_accuracy_voices_its_passages():
    """Same folder, seed and options as bench_accuracy's passages (its main), so their audio is
    one and the figures compare."""
    from bench_accuracy import options_tag

    folder, seed, voicing = bs.SETS["accuracy"]
    assert (folder, seed) == ("passages", 14)
    same = {"sentences_range": (3, 5), "silence_range": (0.5, 1.5)}
    assert options_tag(1, voicing) == options_tag(1, same)
