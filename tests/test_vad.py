"""Pause detection: where the boundaries fall, that they need speech before them, and that
blocks of any size give the same boundaries."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.vad import PauseDetector, PauseOptions, find_pauses

SR = 16_000
ENERGY = PauseOptions(vad="energy", pause_seconds=0.5)


def tone(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SR), np.float32)


def test_boundary_is_the_middle_of_the_first_pause_seconds_of_silence():
    """The boundary sits 0.25 s into a 0.5 s pause (the old detector reported the silence's
    start, where a late-emitted last character would have started the next segment)."""
    audio = np.concatenate([silence(1.0), tone(1.0), silence(0.3), tone(1.0), silence(2.0)])
    # leading silence and the 0.3 s gap are no pauses; the one after the second tone is
    assert find_pauses(audio, ENERGY) == [pytest.approx(3.3 + 0.25, abs=0.02)]


def test_block_sizes_do_not_change_the_boundaries_and_settled_is_kept():
    """Pushed in odd blocks, the boundaries are those of the whole recording, and at every
    step all of them before `settled` have been reported (what segmentation relies on)."""
    audio = np.concatenate([tone(0.7), silence(0.8), tone(0.4), silence(1.1), tone(0.2)])
    whole = PauseDetector(ENERGY).push(audio)
    assert len(whole) == 2
    detector = PauseDetector(ENERGY)
    found = []
    for pos in range(0, len(audio), 777):
        found += detector.push(audio[pos : pos + 777])
        assert found == [b for b in whole if b < detector.settled]
    assert found == whole


def test_onsets_are_where_speech_resumes_after_each_pause_in_any_block_size():
    """Speech after a pause is noted where its first block starts (what a file's
    transcription skips the silence up to); speech after leading silence or after a gap too
    short to be a pause is no onset, and no speech after the last pause leaves none."""
    audio = np.concatenate(
        [silence(1.0), tone(0.7), silence(0.8), tone(0.4), silence(0.3), tone(0.5), silence(2.0)]
    )
    whole = PauseDetector(ENERGY, onsets=True)
    assert len(whole.push(audio)) == 2
    onsets = whole.take_onsets()
    assert [o / SR for o in onsets] == [pytest.approx(2.5, abs=0.02)]
    assert whole.take_onsets() == []
    detector = PauseDetector(ENERGY, onsets=True)
    found = []
    for pos in range(0, len(audio), 777):
        detector.push(audio[pos : pos + 777])
        found += detector.take_onsets()
        assert found == [o for o in onsets if o < detector.settled]
    assert found == onsets
    plain = PauseDetector(ENERGY)
    plain.push(audio)
    assert plain.take_onsets() == []  # not asked for: nothing kept


def test_settled_waits_for_a_silence_that_may_become_a_pause():
    detector = PauseDetector(ENERGY)
    detector.push(np.concatenate([tone(1.0), silence(0.3)]))
    # a boundary could still come at 1.25 s if the silence lasts 0.5 s
    assert detector.settled / SR == pytest.approx(1.25, abs=0.02)
    assert detector.push(silence(0.3)) == [pytest.approx(1.25 * SR, abs=320)]
    assert detector.settled / SR == pytest.approx(1.6, abs=0.02)


def test_quiet_until_speech_and_again_once_its_pause_is_heard():
    """`quiet`: no speech since the start or the last pause; `in_pause` only after a pause."""
    detector = PauseDetector(ENERGY)
    detector.push(silence(2.0))
    assert detector.quiet and not detector.in_pause  # leading silence
    detector.push(tone(0.5))
    assert not detector.quiet
    detector.push(silence(0.3))  # too short a silence for a pause
    assert not detector.quiet
    detector.push(silence(0.3))
    assert detector.quiet and detector.in_pause
    detector.push(tone(0.1))
    assert not detector.quiet and not detector.in_pause


@pytest.mark.parametrize(
    ("field", "value"), [("vad", "webrtc"), ("vad_threshold", 1), ("pause_seconds", 0)]
)
def test_options_are_validated_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        PauseOptions(**{field: value})


def test_silero_finds_the_pause_between_two_real_utterances(shared_audio):
    from engine.audio import load_audio

    speech = load_audio(shared_audio / "aishell1_BAC009S0724W0121.wav")
    audio = np.concatenate([speech, silence(1.0), speech])
    detector = PauseDetector(PauseOptions(vad="silero", pause_seconds=0.5))
    pauses = []
    for pos in range(0, len(audio), 1000):
        pauses += detector.push(audio[pos : pos + 1000])
    seconds = np.array(pauses) / SR
    # the pause after the first utterance (its trailing silence, then the inserted second) is
    # found where the speech stops; the second utterance ends the same way
    clip = len(speech) / SR
    assert np.any((seconds > clip - 1.0) & (seconds < clip + 0.5))
    assert np.any(seconds > 2 * clip)
    assert len(seconds) <= 5


def test_silero_runs_without_torch_and_find_speech_leaves_torch_threads_alone():
    """The pause detector runs silero's ONNX model on ONNX Runtime, so a path that needs no
    torch (Whisper files) never imports it (0.27 GB). find_speech uses silero_vad's own
    stretch rules (get_speech_timestamps_from_probs), whose import sets the whole process to
    one torch thread: it puts the count back. A fresh process, since each import happens once."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from engine.vad import PauseDetector, find_speech\n"
        "PauseDetector().push(np.zeros(16000, np.float32))\n"
        "print('torch' in sys.modules)\n"
        "import torch\n"
        "torch.set_num_threads(3)\n"
        "find_speech(np.zeros(16000, np.float32))\n"
        "print(torch.get_num_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "3"]


def test_silero_on_onnx_runtime_gives_the_packages_probabilities(shared_audio):
    """Many windows a call, the sequence model's speech probabilities equal silero_vad's
    TorchScript model's window by window (measured: max difference 5e-7 on this clip), and
    split over calls of any size they are the same: the recurrent state and the 64 samples of
    context go from call to call. Dropping either moves them by far more than the bound."""
    import torch
    from silero_vad import load_silero_vad

    from engine.audio import load_audio
    from engine.vad import _load_silero

    speech = load_audio(shared_audio / "aishell1_BAC009S0724W0121.wav")
    windows = speech[: len(speech) // 512 * 512]
    ours = _load_silero()
    mine = ours.probabilities(windows)
    reference = load_silero_vad(onnx=False)
    with torch.inference_mode():
        theirs = np.array(
            [float(reference(torch.from_numpy(w), SR)) for w in windows.reshape(-1, 512)]
        )
    assert np.abs(mine - theirs).max() < 1e-4
    assert (mine > 0.5).any() and (mine < 0.5).any()  # speech and silence both in the clip
    ours.reset_states()
    cuts = [0, 512, 512 * 2, 512 * 40, len(windows)]  # one window, a run, then the rest
    pieces = [ours.probabilities(windows[a:b]) for a, b in itertools.pairwise(cuts)]
    np.testing.assert_array_equal(np.concatenate(pieces), mine)
    ours.reset_states()
    ours._MAX_WINDOWS = 7  # one call split into several inside
    np.testing.assert_array_equal(ours.probabilities(windows), mine)


def test_find_speech_gives_the_packages_stretches(shared_audio):
    """find_speech computes silero's probabilities in one pass and hands them to silero_vad's
    own stretch rules: the stretches are those of the package's get_speech_timestamps, a
    clip whose length is no whole number of windows included (its last one padded)."""
    import torch
    from silero_vad import get_speech_timestamps, load_silero_vad

    from engine.audio import load_audio
    from engine.vad import find_speech

    speech = load_audio(shared_audio / "aishell1_BAC009S0724W0121.wav")
    audio = np.concatenate([speech, silence(0.7), speech[: len(speech) // 2 + 100]])
    assert len(audio) % 512
    stamps = get_speech_timestamps(torch.from_numpy(audio), load_silero_vad(onnx=False))
    theirs = [(s["start"] / SR, s["end"] / SR) for s in stamps]
    assert len(theirs) >= 2
    assert find_speech(audio, min_speech_seconds=0.25, min_silence_seconds=0.1) == theirs
