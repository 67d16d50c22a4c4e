"""The benches' helpers and command lines: what they score, cache and refuse (no bench is run at
its real size; benches are not run by CI, so these keep them honest)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.audio import load_audio, write_wav
from engine.results import Char, Segment

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

MINE = (
    "bench_transcribe",
    "bench_app",
    "bench_store",
    "bench_review",
    "bench_review_ui",
    "bench_whisper",
    "bench_speakers",
)


def _bench(name: str):
    return importlib.import_module(name)


def _clip(reference: str, hypothesis: str):
    """A bench_review clip whose transcript is `hypothesis`, one character every 0.25 s."""
    br = _bench("bench_review")
    chars = tuple(Char(ch, 0.25 * k, 0.25 * k + 0.2, 0.5) for k, ch in enumerate(hypothesis))
    end = 0.25 * len(hypothesis)
    return br.Clip(reference, [Segment(0, 0.0, end, chars)], end + 0.5)


def _run_review(monkeypatch, clips, *argv: str) -> None:
    """bench_review's main on `clips` instead of a model's transcripts."""
    br = _bench("bench_review")
    monkeypatch.setattr(br, "transcribe_all", lambda *args: clips)
    monkeypatch.setattr(sys, "argv", ["bench_review.py", *argv])
    br.main()


# ---- fault 5: bench_review scores normalized text, as evaluate does ----------------------------


def test_review_traditional_form_and_punctuation_are_no_errors():
    br = _bench("bench_review")
    clip = _clip("一二线城市虽然也处于调整中", "一二線城市，虽然也处于调整中。")
    assert br.errors_of(0, clip) == []


def test_review_error_points_at_the_character_after_normalization():
    """A wrong character after a comma and a Traditional one is placed at its own Char."""
    br = _bench("bench_review")
    clip = _clip("一二线城市虽然", "一二線，城市虽燃")
    (error,) = br.errors_of(0, clip)
    assert (error.position, error.deletion) == (7, False)  # 燃: the 8th Char, comma counted
    assert error.time == pytest.approx(0.25 * 7)


def test_review_cer_line_is_engine_metrics_cer(monkeypatch, capsys):
    clips = [_clip("一二线城市虽然也处于调整中", "一二線城市虽然也处于调整中")] * 2
    _run_review(monkeypatch, clips, "--thresholds", "0.9", "--limit", "2")
    out = capsys.readouterr().out
    assert "0 errors in 26 reference characters (CER 0.0%" in out


# ---- fault 4: --headline is a measured threshold; 0 / 0 is no ratio ---------------------------


def test_review_refuses_a_headline_not_among_the_thresholds(monkeypatch, capsys):
    clips = [_clip("一二线城市", "一二線城巿")]
    with pytest.raises(SystemExit) as stop:
        _run_review(monkeypatch, clips, "--thresholds", "0.3", "0.95", "--headline", "0.9")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--headline 0.9 is not among --thresholds 0.3 0.95" in err


def test_review_no_errors_found_by_either_is_not_infinite(monkeypatch, capsys):
    clips = [_clip("一二线城市", "一二線城市")] * 3
    _run_review(monkeypatch, clips, "--thresholds", "0.9")
    out = capsys.readouterr().out
    assert "inf" not in out
    assert out.splitlines()[-1].startswith("guided review: n/a the errors")


def test_review_ratio_text():
    br = _bench("bench_review")
    assert [br.ratio_text(*pair) for pair in ((0, 0), (3, 0), (5, 2))] == ["n/a", "inf", "2.5x"]


# ---- fault 1: the long file's cache is per clips folder --------------------------------------


def _clips_folder(folder: Path, freq: float) -> Path:
    folder.mkdir()
    t = np.arange(16_000) / 16_000
    write_wav(folder / "tone.wav", (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32))
    (folder / "manifest.tsv").write_text("file\ttext\ntone.wav\tx\n", encoding="utf-8")
    return folder


def test_long_audio_is_built_from_the_audio_dir_given(tmp_path, monkeypatch):
    bt = _bench("bench_transcribe")
    monkeypatch.setattr(bt, "CACHE", tmp_path / "cache")
    (tmp_path / "cache").mkdir()
    low = bt.build_long_audio(0.05, clips_dir=_clips_folder(tmp_path / "low", 220.0))
    high = bt.build_long_audio(0.05, clips_dir=_clips_folder(tmp_path / "high", 880.0))
    assert low != high
    assert not np.array_equal(load_audio(low), load_audio(high))
    # the same folder again: the cached file
    assert bt.build_long_audio(0.05, clips_dir=tmp_path / "low") == low


def test_long_audio_is_rebuilt_when_the_manifest_changes(tmp_path, monkeypatch):
    bt = _bench("bench_transcribe")
    monkeypatch.setattr(bt, "CACHE", tmp_path / "cache")
    (tmp_path / "cache").mkdir()
    clips = _clips_folder(tmp_path / "clips", 220.0)
    first = bt.build_long_audio(0.05, clips_dir=clips)
    write_wav(clips / "other.wav", np.zeros(8000, np.float32))
    (clips / "manifest.tsv").write_text("file\ttext\nother.wav\tx\n", encoding="utf-8")
    assert bt.build_long_audio(0.05, clips_dir=clips) != first


# ---- fault 2: bench_store runs against the store as it indexes now ---------------------------


def test_store_bench_runs_on_a_small_transcript(monkeypatch, capsys):
    bs = _bench("bench_store")
    monkeypatch.setattr(sys, "argv", ["bench_store.py", "--chars", "400", "--edits", "3"])
    bs.main()
    out = capsys.readouterr().out
    assert "store (whole transcript re-indexed)" in out
    assert "search re-index:" in out.splitlines()[-1]


# ---- fault 3: every bench's --help prints ----------------------------------------------------


@pytest.mark.parametrize("name", MINE)
def test_bench_help(name, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--help"])
    with pytest.raises(SystemExit) as stop:
        _bench(name).parse_args()
    assert stop.value.code == 0
    assert "usage:" in capsys.readouterr().out


# ---- fault 6: bad arguments are refused naming the option -------------------------------------


@pytest.mark.parametrize(
    ("name", "argv", "option"),
    [
        ("bench_store", ["--chars", "20"], "--chars"),
        ("bench_store", ["--edits", "0"], "--edits"),
        ("bench_review", ["--limit", "0"], "--limit"),
        ("bench_review", ["--thresholds", "1.5"], "--thresholds"),
        ("bench_review_ui", ["--decisions", "0"], "--decisions"),
        ("bench_review_ui", ["--chars", "10"], "--chars"),
        ("bench_speakers", ["--sweep", "abc"], "--sweep"),
        ("bench_speakers", ["--sweep", "0.3,2.5"], "--sweep"),
        ("bench_speakers", ["--count", "0"], "--count"),
        ("bench_transcribe", ["--minutes", "0"], "--minutes"),
        ("bench_transcribe", ["--rounds", "0"], "--rounds"),
        ("bench_app", ["--minutes", "-1"], "--minutes"),
        ("bench_whisper", ["--repeat", "0"], "--repeat"),
        ("bench_whisper", ["--data", "/nonexistent/manifest.tsv"], "--data"),
    ],
)
def test_bench_refuses_bad_arguments(name, argv, option, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *argv])
    with pytest.raises(SystemExit) as stop:
        _bench(name).parse_args()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert option in err
    assert "Traceback" not in err


def test_speakers_sweep_is_parsed():
    bsp = _bench("bench_speakers")
    assert bsp.parse_args(["--sweep", "0.3, 0.5"]).sweep == [0.3, 0.5]
