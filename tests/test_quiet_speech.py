"""A quieter voice is speech: the silence a file's transcription skips (skip_silence) and the
pauses the live stream ends segments at are found by silero-vad, which judged each block
against the level of what came before it, so a second speaker 30 dB below the first (a
speaker far from the microphone) read as silence and was never decoded, though the model
transcribes it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from engine.chunking import ChunkPlan, FrameGeometry, iter_chunks
from engine.transcribe import SILENCE_MARGIN_SECONDS, _Listener
from engine.vad import PauseDetector, PauseOptions

SR = 16_000
GEOMETRY = FrameGeometry(hop=320, receptive_field=400)
PLAN = ChunkPlan.from_seconds(10.0, 1.0, GEOMETRY, SR)
LOUD = 0.3  # the near speaker's sentence peaks (-10 dBFS)

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


def sentence(text: str, peak: float, variant: str) -> np.ndarray:
    from engine.tune.synth import render_pinyin, to_pinyin

    audio = render_pinyin(to_pinyin(text), variant=variant)
    return (audio * (peak / np.abs(audio).max())).astype(np.float32)


def gap(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SR), np.float32)


def spoken(audio: np.ndarray, start: int) -> tuple[int, int]:
    """The samples from a sentence's first to its last sound, placed at `start`."""
    loud = np.flatnonzero(np.abs(audio) > 0.05 * np.abs(audio).max())
    return start + int(loud[0]), start + int(loud[-1]) + 1


# the far speaker's sentence peaks: -41 dBFS lost one of its two sentences, -50 dBFS both
@pytest.fixture(scope="module", params=[0.009, 0.003], ids=["-41dBFS", "-50dBFS"])
def conversation(request) -> tuple[np.ndarray, list[tuple[int, int]], tuple[int, int]]:
    """A near speaker's two sentences with 3 s of silence between them, then, after 1 s, a
    far speaker's two, quieter, all over faint room noise (-75 dBFS). Returns the audio, the
    far speaker's sentences and the long silence (sample ranges)."""
    parts = [
        gap(1.0),
        sentence("现在老师可以去商店喝咖啡", LOUD, "m3"),
        gap(3.0),
        sentence("弟弟觉得风景特别脏", LOUD, "m3"),
        gap(1.0),
        sentence("他跟弟弟一起打扫房间", request.param, "f4"),
        gap(0.8),
        sentence("儿子把床放在菜市场了", request.param, "f4"),
        gap(1.5),
    ]
    starts = np.cumsum([0] + [len(p) for p in parts])
    audio = np.concatenate(parts)
    audio += np.random.default_rng(0).normal(0, 10 ** (-75 / 20), len(audio)).astype(np.float32)
    far = [spoken(parts[i], int(starts[i])) for i in (5, 7)]
    return audio, far, (int(starts[2]), int(starts[3]))


def decoded_spans(audio: np.ndarray, block: int = 4000) -> list[tuple[int, int]]:
    """The sample ranges the file path decodes (engine.transcribe's chunker with its pause
    detector and the default skip_silence)."""
    listener = _Listener(PauseOptions())
    blocks = (audio[i : i + block] for i in range(0, len(audio), block))
    margin = round(SILENCE_MARGIN_SECONDS * SR)
    chunks = iter_chunks(listener.tap(blocks), PLAN, listener, gap_margin=margin)
    return [(c.start, c.start + len(c.audio)) for c in chunks]


def covered(spans: list[tuple[int, int]], lo: int, hi: int) -> float:
    """The fraction of [lo, hi) inside the union of `spans`."""
    inside = np.zeros(hi - lo, bool)
    for a, b in spans:
        inside[max(a, lo) - lo : max(min(b, hi) - lo, 0)] = True
    return float(inside.mean())


def test_a_quiet_second_speaker_is_decoded_and_the_silence_still_skipped(conversation):
    audio, far, silence = conversation
    spans = decoded_spans(audio)
    for lo, hi in far:
        assert covered(spans, lo, hi) == 1.0, f"far speaker at {lo / SR:.2f}-{hi / SR:.2f} s"
    # the 3 s silence in faint noise is still a pause, and all but its margins is skipped
    assert covered(spans, *silence) < 0.35


def test_the_live_detector_hears_the_quiet_speaker_between_its_pauses(conversation):
    """The stream's segments end at the same detector's pauses (engine.stream): none falls
    inside the far speaker's sentences, and one falls in the gap between them."""
    audio, far, _ = conversation
    detector = PauseDetector(PauseOptions(), onsets=True)
    pauses = []
    for i in range(0, len(audio), 800):  # 50 ms blocks, as a microphone delivers them
        pauses += detector.push(audio[i : i + 800])
    onsets = detector.take_onsets()
    detector.reset()  # the level runs on from block to block: the whole recording's pauses
    assert detector.push(audio) == pauses and detector.take_onsets() == onsets
    for lo, hi in far:
        assert not any(lo < p < hi for p in pauses)
    (_, first_end), (second_start, _) = far
    assert any(first_end <= p < second_start for p in pauses)
    assert any(second_start - 0.2 * SR <= o <= second_start + 0.2 * SR for o in onsets)
