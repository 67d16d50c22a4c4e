"""Faults found in telling speakers apart: the bench's command line and figures, short
fragments taking a speaker of their own, and the cap on windows for long recordings."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.speakers import SpeakerOptions, Turn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))


@pytest.fixture(scope="module")
def bench():
    return importlib.import_module("bench_speakers")


# ---- bench/bench_speakers.py --------------------------------------------------------------


def test_the_bench_has_no_method_option_that_crashes(bench, capsys):
    """--method reached SpeakerOptions(method=…), a TypeError: it is gone, refused by argparse."""
    with pytest.raises(SystemExit) as stop:
        bench.parse_args(["--method", "spectral"])
    assert stop.value.code == 2
    assert "unrecognized arguments: --method" in capsys.readouterr().err
    assert "--method" not in bench.__doc__


def test_the_bench_docstring_states_its_own_figures(bench):
    voices = {v for v in bench.VOICES.values() if v is not None}
    assert f"{len(voices)} voices" in bench.__doc__
    assert f"within {bench.REFERENCE_RANGE_DB:g} dB" in bench.__doc__


def test_the_bench_scores_how_often_the_speaker_count_is_wrong(bench, monkeypatch):
    """DER hides a voice split in two; the count line shows it: one conversation right, one
    with a third speaker found (too many), one with a single speaker (too few)."""
    reference = (Turn(0.0, 2.0, 0), Turn(2.5, 4.5, 1))
    audio = np.zeros(5 * 16_000, np.float32)
    convs = [bench.Conversation(f"c{i}", audio, reference, ("a", "b")) for i in range(3)]
    found = {
        "c0": [Turn(0.0, 2.0, 0), Turn(2.5, 4.5, 1)],
        "c1": [Turn(0.0, 2.0, 0), Turn(2.5, 4.0, 1), Turn(4.0, 4.5, 2)],
        "c2": [Turn(0.0, 4.5, 0)],
    }
    calls = iter(c.name for c in convs)
    monkeypatch.setattr(
        bench,
        "diarize",
        lambda audio, options: found[next(calls)] if options.speakers is None else reference,
    )
    scores = bench.score(convs, SpeakerOptions(), verbose=False)
    assert (scores.wrong_count, scores.too_many, scores.conversations) == (2, 1, 3)
    assert scores.given == 0
    assert bench.count_line(scores) == "speaker count wrong: 2 of 3 conversations (1 too many)"
    assert re.search(r"speaker count wrong: W of N conversations \(M too many\)", bench.__doc__)


# ---- a fragment of speech must not take a speaker of its own ------------------------------

# Voice A 4.4 s, voice B 2.5 s, a 0.35 s fragment (a cough, a word cut by the VAD), A again.
ABA = [(0.9, 5.3), (6.1, 8.6), (9.2, 9.55), (10.2, 14.5)]


class TimeEmbedder:
    """Reads a window's start time from the audio (a ramp: sample k holds k / 16000 s) and gives
    the voice speaking at its centre: A and B apart (cosine distance 0.5), the fragment's
    window, mostly the silence around it, far from both."""

    name = "time"

    def __init__(self, window: float) -> None:
        self.window = window
        self.batches: list[int] = []

    def embed(self, windows: np.ndarray) -> np.ndarray:
        self.batches.append(len(windows))
        a, b, other = np.eye(3)[0], np.array([0.5, 0.75**0.5, 0.0]), np.eye(3)[2]
        rows = []
        for w in windows:
            centre = float(w[0]) + self.window / 2
            rows.append(b if 6.0 < centre < 8.7 else other if 9.0 < centre < 9.8 else a)
        return np.array(rows, np.float32)


def _ramp(seconds: float) -> np.ndarray:
    return (np.arange(round(seconds * 16_000)) / 16_000).astype(np.float32)


def test_a_fragment_does_not_take_one_of_the_speakers_given(monkeypatch):
    from engine.speakers import diarize

    monkeypatch.setattr("engine.vad.find_speech", lambda audio, threshold=0.5: ABA)
    options = SpeakerOptions(speakers=2)
    turns = diarize(_ramp(15.0), options, TimeEmbedder(options.window_seconds))
    assert [t.speaker for t in turns] == [0, 1, 0, 0]
    turns = diarize(_ramp(15.0), SpeakerOptions(), TimeEmbedder(options.window_seconds))
    assert [t.speaker for t in turns] == [0, 1, 0, 0]  # found: two, not three


def test_stretch_speech_and_cluster_windows():
    from engine.speakers import cluster_windows, speech_windows, stretch_speech

    windows = speech_windows(ABA, 15.0, 2.4, 0.4)
    speech = stretch_speech(ABA, windows)
    assert speech.round(2).tolist() == [4.4] * 6 + [2.5] * 2 + [0.35] + [4.3] * 6
    short = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.6, 0.8]])
    labels = cluster_windows(short, np.array([2.0, 2.0, 0.3, 2.0, 2.0]), SpeakerOptions(2))
    assert labels.tolist() == [0, 0, 1, 1, 1]  # the short window joins the nearest speaker
    # fewer than two windows long enough: all are clustered
    assert cluster_windows(short[:2], np.array([0.3, 2.0]), SpeakerOptions(2)).tolist() == [0, 1]


# ---- the cap on windows -------------------------------------------------------------------


def test_many_short_stretches_keep_to_the_window_cap():
    """3 h of 2 s stretches: one window each, whatever the step, gave 4320 windows past the
    2000 the distance matrix is sized for; evenly spread windows are kept, first to last."""
    from engine.speakers import MAX_WINDOWS, plan_windows

    regions = [(k * 2.5, k * 2.5 + 2.0) for k in range(4320)]
    windows = plan_windows(regions, 4320 * 2.5, SpeakerOptions())
    assert len(windows) == MAX_WINDOWS
    assert windows == sorted(windows) and len(set(windows)) == len(windows)
    assert windows[0][0] < 2.0 and windows[-1][1] > regions[-1][0]
    few = regions[:100]
    assert len(plan_windows(few, 250.0, SpeakerOptions())) == 100  # under the cap: all


def test_diarize_cuts_the_windows_a_batch_at_a_time_and_keeps_the_cap(monkeypatch):
    from engine import speakers

    regions = [(k * 0.6, k * 0.6 + 0.5) for k in range(100)]  # 100 stretches, a window each
    monkeypatch.setattr("engine.vad.find_speech", lambda audio, threshold=0.5: regions)
    monkeypatch.setattr(speakers, "MAX_WINDOWS", 90)
    embedder = TimeEmbedder(2.4)
    cut = []
    real_cut = speakers._cut_windows
    monkeypatch.setattr(speakers, "_cut_windows", lambda *a: cut.append(len(a[1])) or real_cut(*a))
    speakers.diarize(_ramp(61.0), SpeakerOptions(), embedder)
    assert sum(embedder.batches) == 90 and max(embedder.batches) <= 64
    assert max(cut) <= 64
