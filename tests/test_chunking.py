"""Chunk joining is exact: with a fake model whose output depends only on the absolute frame
index, chunked-and-joined output equals one pass over the whole audio, for many lengths."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.chunking import ChunkPlan, FrameGeometry, frame_slices, iter_chunks, join_frames

WAV2VEC2 = FrameGeometry.from_convs((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2))


def conv_frames(n: int, kernels=(10, 3, 3, 3, 3, 2, 2), strides=(5, 2, 2, 2, 2, 2, 2)) -> int:
    """Output length the way transformers computes it: one conv layer at a time."""
    for k, s in zip(kernels, strides, strict=True):
        if n < k:
            return 0
        n = (n - k) // s + 1
    return n


def fake_model(audio: np.ndarray, geometry: FrameGeometry) -> np.ndarray:
    """Frames computed from each frame's receptive field: the audio is a ramp of absolute
    sample indices, so frame j reads its absolute position from its first sample."""
    n = geometry.frames(len(audio))
    first = audio[np.arange(n) * geometry.hop]
    idx = first / geometry.hop
    return np.stack([idx, np.sin(idx), first + audio[np.arange(n) * geometry.hop + 399]], axis=1)


def blocks(audio: np.ndarray, size: int):
    for i in range(0, len(audio), size):
        yield audio[i : i + size]


def test_geometry_matches_layer_by_layer_conv_lengths():
    assert (WAV2VEC2.hop, WAV2VEC2.receptive_field) == (320, 400)
    for n in [0, 1, 399, 400, 401, 719, 720, 16_000, 16_001, 123_457, 480_000]:
        assert WAV2VEC2.frames(n) == conv_frames(n), n


def test_worked_example_from_docstring():
    plan = ChunkPlan.from_seconds(10, 1, WAV2VEC2, 16_000)
    chunks = list(iter_chunks(blocks(np.zeros(400_000, np.float32), 30_000), plan))
    got = []
    for c in chunks:
        n = WAV2VEC2.frames(len(c.audio))
        kept = len(join_frames(c, np.zeros((n, 1))))
        got.append((c.start, c.is_last, n, c.kept_start, c.kept_start + kept))
    assert got == [
        (0, False, 499, 0, 450),
        (128_000, False, 499, 450, 850),
        (256_000, True, 449, 850, 1249),
    ]


PLANS = [
    ChunkPlan(chunk_samples=320 * 50, stride_samples=320 * 5, geometry=WAV2VEC2),
    ChunkPlan(chunk_samples=320 * 10, stride_samples=320, geometry=WAV2VEC2),
    ChunkPlan(chunk_samples=320 * 7, stride_samples=320 * 3, geometry=WAV2VEC2),
]


def _lengths(plan: ChunkPlan) -> list[int]:
    c, s = plan.chunk_samples, plan.step
    special = [0, 1, 399, 400, 401, 640, c - 1, c, c + 1, c + s - 1, c + s, c + s + 1]
    special += [c + 3 * s + d for d in (-321, -320, -1, 0, 1, 319, 320)]
    rng = np.random.default_rng(0)
    return special + [int(n) for n in rng.integers(1, 6 * c, 25)]


@pytest.mark.parametrize("plan", PLANS, ids=["50-5", "10-1", "7-3"])
@pytest.mark.parametrize("block", [333, 4096, 10**7])
def test_joined_frames_equal_single_pass_for_many_lengths(plan: ChunkPlan, block: int):
    for n in _lengths(plan):
        audio = np.arange(n, dtype=np.float64)
        single = fake_model(audio, WAV2VEC2)
        chunks = list(iter_chunks(blocks(audio, block), plan))
        assert len(chunks) == plan.count(n), n
        pieces, expected_start = [], 0
        for c in chunks:
            assert c.kept_start == expected_start, (n, c.index)  # no gap, no overlap
            kept = join_frames(c, fake_model(c.audio.astype(np.float64), WAV2VEC2))
            pieces.append(kept)
            expected_start += len(kept)
            assert c.is_last == (c is chunks[-1])
            if not c.is_last:
                assert len(c.audio) == plan.chunk_samples
        joined = np.concatenate(pieces) if pieces else np.zeros((0, 3))
        np.testing.assert_array_equal(joined, single, err_msg=f"n={n}")


def test_chunks_only_hold_what_they_need():
    plan = PLANS[0]
    read = []

    def counted(stream):  # the blocks taken from the source so far
        for block in stream:
            read.append(len(block))
            yield block

    audio = np.ones(10 * plan.chunk_samples, np.float32)
    first = next(iter_chunks(counted(blocks(audio, 1000)), plan))
    # the first chunk is released as soon as audio beyond it has arrived: one block beyond
    assert plan.chunk_samples < sum(read) <= plan.chunk_samples + 1000
    assert first.start == 0 and not first.is_last
    assert len(first.audio) == plan.chunk_samples


class LateEnds:
    """Span ends reported the way a pause detector reports them: `delay` samples after they
    lie, with `settled` that far behind the audio received (tap the blocks to count it)."""

    def __init__(self, ends: list[int], delay: int) -> None:
        self.todo, self.delay, self.received = list(ends), delay, 0

    def tap(self, stream):
        for block in stream:
            self.received += len(block)
            yield block

    @property
    def settled(self) -> int:
        return self.received - self.delay

    def due(self, todo: list[int]) -> list[int]:
        """Take from `todo` the positions reported by now."""
        due = [e for e in todo if e + self.delay <= self.received]
        del todo[: len(due)]
        return due

    def take_ends(self) -> list[int]:
        return self.due(self.todo)


def assert_spans(chunks: list, audio: np.ndarray, spans: list[tuple[int, int]]) -> None:
    """The chunks fall into `spans` (start, end), in order, each indexed from 0, and each
    span's joined frames are the model's frames of that span alone."""
    by_span: list[list] = [[]]
    for c in chunks:
        by_span[-1].append(c)
        if c.is_last:
            by_span.append([])
    assert by_span.pop() == []
    assert [(s[0].start, s[-1].start + len(s[-1].audio)) for s in by_span] == spans
    for (lo, hi), span in zip(spans, by_span, strict=True):
        assert [c.index for c in span] == list(range(len(span)))
        own = fake_model(audio[lo:hi] - lo, WAV2VEC2)
        joined = np.concatenate(
            [join_frames(c, fake_model(c.audio.astype(np.float64) - lo, WAV2VEC2)) for c in span]
        )
        np.testing.assert_array_equal(joined, own, err_msg=f"span [{lo}, {hi})")
        assert span[0].kept_start == lo // WAV2VEC2.hop


@pytest.mark.parametrize("plan", PLANS[1:], ids=["10-1", "7-3"])
@pytest.mark.parametrize("block", [333, 4096, 10**7])
def test_spans_are_chunked_each_on_its_own(plan: ChunkPlan, block: int):
    """Cut at the reported ends (floored to hops), each span's joined frames equal the model's
    frames of that span alone; no chunk crosses an end; block size changes nothing."""
    n = 12 * plan.chunk_samples
    raw_ends = [5_000, 5_100, 5_000 + 3 * plan.chunk_samples + 77, 8 * plan.chunk_samples + 1]
    audio = np.arange(n, dtype=np.float64)
    ends = LateEnds(raw_ends, delay=2_400)
    chunks = list(iter_chunks(ends.tap(blocks(audio, block)), plan, ends))
    cuts = [0, *sorted({e // 320 * 320 for e in raw_ends}), n]
    assert_spans(chunks, audio, list(itertools.pairwise(cuts)))


class LateGaps(LateEnds):
    """LateEnds with where the audio resumes after each end, reported as late."""

    def __init__(self, ends: list[int], resumes: list[int], delay: int) -> None:
        super().__init__(ends, delay)
        self.todo_resumes = list(resumes)

    def take_resumes(self) -> list[int]:
        return self.due(self.todo_resumes)


@pytest.mark.parametrize("plan", PLANS[1:], ids=["10-1", "7-3"])
@pytest.mark.parametrize("block", [333, 4096, 10**7])
def test_gaps_after_span_ends_are_skipped(plan: ChunkPlan, block: int):
    """With a margin, each span after an end starts that margin before the audio resumes
    (floored to a hop; at the end itself when the resume is closer), its frames are the
    model's frames of that span alone, nothing in a gap is chunked, the audio after the last
    end is dropped when it never resumes."""
    margin, n, hop = 4_800, 130_000, WAV2VEC2.hop
    ends = [9_000, 30_000, 70_000, 100_000]
    resumes = [11_000, 50_000, 95_000]  # none after the last end
    starts = [0, 9_000 // hop * hop, *((r - margin) // hop * hop for r in resumes[1:])]
    expected = list(zip(starts, [e // hop * hop for e in ends], strict=True))
    audio = np.arange(n, dtype=np.float64)
    spans = LateGaps(ends, resumes, delay=2_400)
    chunks = list(iter_chunks(spans.tap(blocks(audio, block)), plan, spans, gap_margin=margin))
    assert_spans(chunks, audio, expected)


@pytest.mark.parametrize("margin", [4_800, None])
def test_a_long_gap_is_not_held(margin: int | None):
    """While the audio has not resumed after an end, only the margin's worth is kept: an
    hour of silence after the last pause costs no memory (without a margin, a span is
    chunked there, a chunk at a time)."""
    import tracemalloc

    plan = PLANS[1]
    audio = np.ones(100 * plan.chunk_samples, np.float32)  # 1.28 MB
    spans = LateGaps([16_000], [], delay=0)
    tracemalloc.start()
    try:
        chunks = list(iter_chunks(spans.tap(blocks(audio, 1000)), plan, spans, margin))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if margin is None:
        assert len(chunks) > 10 and peak > audio.nbytes
    else:
        last = chunks[-1]
        assert last.is_last and last.start + len(last.audio) == 16_000
        assert sum(c.is_last for c in chunks) == 1
        assert peak < audio.nbytes / 5  # the first span's chunks, a block, the margin


def test_a_chunk_waits_until_the_ends_inside_it_are_known():
    plan = PLANS[1]
    ends = LateEnds([plan.chunk_samples - 320], delay=plan.chunk_samples)
    stream = iter_chunks(ends.tap(blocks(np.ones(4 * plan.chunk_samples), 1000)), plan, ends)
    first = next(stream)
    assert first.is_last and len(first.audio) == plan.chunk_samples - 320


@pytest.mark.parametrize(
    ("chunk", "stride", "field"),
    [(3200, 100, "stride_samples"), (3200, 0, "stride_samples"), (640, 320, "chunk_samples")],
)
def test_bad_plans_name_the_setting(chunk: int, stride: int, field: str):
    with pytest.raises(ValueError, match=field):
        ChunkPlan(chunk_samples=chunk, stride_samples=stride, geometry=WAV2VEC2)


def test_from_seconds_rounds_to_whole_frames():
    plan = ChunkPlan.from_seconds(20.001, 0.001, WAV2VEC2, 16_000)
    assert plan.chunk_samples == 320_000 and plan.stride_samples == 320


def test_wav2vec2_frames_match_the_conv_stack_step_by_step():
    """The frame count tuning and transcription share equals applying each convolution."""
    kernels, strides = (10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)
    geometry = FrameGeometry.from_convs(kernels, strides)
    for samples in (0, 300, 400, 401, 16000, 16079, 16080, 123457):
        n = samples
        for k, s in zip(kernels, strides, strict=True):
            n = max(0, (n - k) // s + 1)
        assert geometry.frames(samples) == n, samples
    assert geometry.frames(16000) == 49


@pytest.mark.parametrize("n", [400, 401, 719, 720, 16_000, 16_399])
@pytest.mark.parametrize("frames", [1, 7, 50])
def test_frame_slices_cover_every_frame_once_from_its_own_samples(n, frames):
    """Each slice's frames are whole frames of the full input (their samples lie inside it),
    in order, none twice, none missed; the last slice ends at the last frame's last sample."""
    g = FrameGeometry(hop=320, receptive_field=400)
    slices = frame_slices(n, g, frames)
    seen = []
    for a, b in slices:
        assert a % g.hop == 0 and 0 < g.frames(b - a) <= frames and b <= n
        seen += range(a // g.hop, a // g.hop + g.frames(b - a))
        assert (b - a - g.receptive_field) % g.hop == 0  # no sample past its last frame
    assert seen == list(range(g.frames(n)))
