"""Streaming transcription: stability, agreement with an offline decode, bounded compute.

Most tests use a fake model whose frame labels are a known function of the audio: each 20 ms
frame's level encodes one token id, so the offline decode is known exactly and a streaming
decode must reproduce it character for character. A fake model ignores context, so it cannot
tell how much context the stream needs: one test streams the trained demo model instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.chunking import FrameGeometry
from engine.decode import ctc_greedy, silent_ids
from engine.results import Char, Segment
from engine.stream import StreamingTranscriber, StreamOptions, StreamUpdate
from engine.testmodels import COMMON_CHARS, SPECIAL_TOKENS
from engine.vad import PauseDetector, PauseOptions

SR = 16_000
HOP = 320  # samples per frame (20 ms)
VOCAB = list(SPECIAL_TOKENS) + list(dict.fromkeys(COMMON_CHARS))[:60]
LEVEL = 0.01  # audio level per token id
FAINT = 5e-4  # a level the fake may write a character for (-66 dBFS)


class FakeTranscriber:
    """Frame f's best token is round(mean(audio[f*HOP:(f+1)*HOP]) / LEVEL); counts its input.
    Frames of a faint level (FAINT, far below any pause detector's speech) get `faint_token`,
    as real models sometimes write a character into silence."""

    frame_seconds = HOP / SR
    geometry = FrameGeometry(hop=HOP, receptive_field=400)
    silent = silent_ids(VOCAB, len(VOCAB), 0, frozenset(range(4)), "|")
    faint_token = 0

    def __init__(self) -> None:
        self.samples_seen = 0
        self.calls = 0
        self.longest = 0

    def log_probs(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for audio in batch:
            self.calls += 1
            self.samples_seen += len(audio)
            self.longest = max(self.longest, len(audio))
            n = self.geometry.frames(len(audio))
            frames = audio[: n * HOP].reshape(n, HOP).mean(axis=1)
            ids = np.clip(np.round(frames / LEVEL).astype(int), 0, len(VOCAB) - 1)
            ids[np.isclose(frames, FAINT)] = self.faint_token
            logits = np.full((n, len(VOCAB)), -8.0, np.float32)
            logits[np.arange(n), ids] = 0.0
            logits[:, 5] = -4.0  # a runner-up, so alternatives are exercised
            logits -= np.log(np.exp(logits).sum(axis=1, keepdims=True))
            out.append(logits)
        return out

    def chars(self, log_probs: np.ndarray, offset_seconds: float = 0.0) -> list[Char]:
        return ctc_greedy(
            log_probs,
            vocab=VOCAB,
            blank_id=0,
            special_ids=frozenset(range(4)),
            word_delimiter="|",
            frame_seconds=self.frame_seconds,
            offset_seconds=offset_seconds,
        )


def fake_speech(seconds: float, seed: int = 0, pauses: tuple[float, ...] = ()) -> np.ndarray:
    """Frames of characters (runs of 2-9 frames, repeats included) separated by 0-4 blank
    frames, and silent stretches at the `pauses` times (each 1 s long)."""
    rng = np.random.default_rng(seed)
    n_frames = round(seconds * SR / HOP)
    ids = np.zeros(n_frames, int)
    f = 0
    while f < n_frames:
        token = int(rng.integers(5, len(VOCAB)))
        run = int(rng.integers(2, 10))
        ids[f : f + run] = token
        f += run + int(rng.integers(0, 5))
    for p in pauses:
        ids[round(p * SR / HOP) : round((p + 1.0) * SR / HOP)] = 0
    return np.repeat(ids * LEVEL, HOP).astype(np.float32)


def run_stream(
    stream: StreamingTranscriber, audio: np.ndarray, blocks: list[int]
) -> list[StreamUpdate]:
    updates, pos = [], 0
    for size in blocks:
        updates += stream.push(audio[pos : pos + size])
        pos += size
    assert pos >= len(audio)
    return updates + stream.finish()


def random_blocks(n: int, seed: int, largest: int) -> list[int]:
    rng = np.random.default_rng(seed)
    sizes = []
    while sum(sizes) < n:
        sizes.append(int(rng.integers(1, largest)))
    return sizes


def key(chars) -> list[tuple[str, float, float]]:
    return [(c.text, c.start, c.end) for c in chars]


ENERGY = StreamOptions(pauses=PauseOptions(vad="energy"))


def test_committed_stream_equals_offline_decode_whatever_the_block_sizes():
    audio = fake_speech(12.0, seed=1)
    fake = FakeTranscriber()
    offline = fake.chars(fake.log_probs([audio])[0])
    assert len(offline) > 60
    for seed, largest, catch_up in ((0, 50, True), (1, 3000, False), (2, 40_000, True)):
        options = StreamOptions(pauses=ENERGY.pauses, catch_up=catch_up)
        stream = StreamingTranscriber(FakeTranscriber(), options)
        updates = run_stream(stream, audio, random_blocks(len(audio), seed, largest))
        committed = [c for u in updates for c in u.committed]
        assert key(committed) == key(offline)
        # the confidence of every character matches too (no character was cut at a commit)
        assert [c.confidence for c in committed] == [c.confidence for c in offline]


def test_committed_text_never_changes_and_tail_follows_it():
    audio = fake_speech(8.0, seed=2)
    fake = FakeTranscriber()
    offline = key(fake.chars(fake.log_probs([audio])[0]))
    stream = StreamingTranscriber(FakeTranscriber(), ENERGY)
    committed: list[Char] = []
    for u in run_stream(stream, audio, random_blocks(len(audio), 3, 2000)):
        committed += u.committed
        # what is committed so far is a prefix of the final result: it never changes
        assert key(committed) == offline[: len(committed)]
        starts = [c.start for c in (*committed, *u.tail)]
        assert starts == sorted(starts)
        assert all(c.end <= u.audio_seconds + 1e-6 for c in u.tail)
        # right context: the tail is not empty while speech continues
    assert committed and len(committed) == len(offline)


def test_updates_come_at_least_every_300_ms_of_audio():
    audio = fake_speech(6.0, seed=4)
    stream = StreamingTranscriber(FakeTranscriber(), ENERGY)
    assert stream.push(audio[:0]) == []  # an empty block is harmless
    seconds, pos = [0.0], 0
    for size in random_blocks(len(audio), 5, 1600):  # blocks up to 100 ms, like a microphone
        seconds += [u.audio_seconds for u in stream.push(audio[pos : pos + size])]
        pos += size
    gaps = np.diff(seconds)
    assert len(seconds) >= 6.0 / 0.3
    assert gaps.max() <= 0.3 + 1e-9
    assert np.all(gaps > 0)


def test_compute_per_second_of_audio_is_constant():
    costs = {}
    for seconds in (10.0, 60.0):
        fake = FakeTranscriber()
        stream = StreamingTranscriber(fake, ENERGY)
        audio = fake_speech(seconds, seed=6)
        run_stream(stream, audio, [1600] * (len(audio) // 1600 + 1))
        costs[seconds] = (fake.samples_seen / len(audio), fake.calls / seconds, fake.longest)
        assert stream.samples_decoded == fake.samples_seen
    (samples_10, calls_10, longest_10), (samples_60, calls_60, longest_60) = costs.values()
    # the first second has less left context to re-read, hence 10 % and not exact
    assert samples_60 == pytest.approx(samples_10, rel=0.1)
    assert calls_60 == pytest.approx(calls_10, rel=0.05)
    # window <= left context + right context + hop + a held character (1 s): never the buffer
    assert max(longest_10, longest_60) <= (1.0 + 0.6 + 0.3 + 1.0) * SR


def test_catch_up_decodes_a_late_burst_in_one_step():
    audio = fake_speech(3.0, seed=7)
    fake = FakeTranscriber()
    stream = StreamingTranscriber(fake, ENERGY)
    assert len(stream.push(audio)) == 1
    strict = StreamingTranscriber(
        FakeTranscriber(), StreamOptions(pauses=ENERGY.pauses, catch_up=False)
    )
    assert len(strict.push(audio)) == 10  # 3 s / 0.3 s hops


def test_pauses_end_segments():
    audio = fake_speech(9.0, seed=8, pauses=(3.0, 6.0))
    stream = StreamingTranscriber(
        FakeTranscriber(), StreamOptions(pauses=PauseOptions("energy", 0.5))
    )
    updates = run_stream(stream, audio, [800] * (len(audio) // 800 + 1))
    segments = [u.segment for u in updates if u.segment is not None]
    assert [s.id for s in segments] == [0, 1, 2]
    assert segments[0].end <= 3.0 < segments[1].start
    assert segments[1].end <= 6.0 < segments[2].start
    committed = [c for u in updates for c in u.committed]
    assert [c for s in segments for c in s.chars] == committed
    # a segment is announced as soon as its pause is heard, not at the end of the stream
    closing = [u.audio_seconds for u in updates if u.segment is not None]
    assert closing[0] < 4.2 and closing[1] < 7.2


def test_the_silence_of_a_pause_is_not_run_through_the_model(monkeypatch):
    """Once a pause is committed and no speech has followed, hops inside the silence commit
    it empty without a model call; the speech after it streams as before, and the committed
    text is the offline decode's (the fake writes nothing in silence)."""
    quiet = np.zeros(4 * SR, np.float32)
    audio = np.concatenate([fake_speech(3.0, seed=10), quiet, fake_speech(3.0, seed=11)])
    fake = FakeTranscriber()
    offline = key(fake.chars(fake.log_probs([audio])[0]))
    fake.samples_seen = 0
    stream = StreamingTranscriber(fake, ENERGY)
    calls_in_silence = []
    updates = []
    for pos in range(0, len(audio), 800):
        before = fake.calls
        updates += stream.push(audio[pos : pos + 800])
        if 4.5 * SR <= pos <= 6.5 * SR:  # well inside the silence, after its pause is heard
            calls_in_silence.append(fake.calls - before)
    updates += stream.finish()
    assert calls_in_silence and sum(calls_in_silence) == 0
    assert key([c for u in updates for c in u.committed]) == offline
    assert stream.samples_decoded == fake.samples_seen
    # about the silence (4 s less the 0.6 s pause and the contexts) is never decoded
    every = StreamingTranscriber(FakeTranscriber(), ENERGY)
    with monkeypatch.context() as m:  # a detector that never says the pause goes on
        m.setattr(PauseDetector, "in_pause", property(lambda self: False))
        run_stream(every, audio, [800] * (len(audio) // 800 + 1))
    assert every.samples_decoded - stream.samples_decoded > 2 * SR


def test_a_character_written_into_a_pause_closes_on_its_own():
    """The model writes a character into the silence just after a pause's boundary. It is
    closed as a segment of its own while the silence lasts, so the speech after the pause
    starts a segment of its own too: not one that held the stray character 10 s earlier and
    is therefore cut, as too long, inside that speech."""
    quiet = np.zeros(10 * SR, np.float32)
    quiet[int(0.32 * SR) : int(0.36 * SR)] = FAINT  # after the boundary, 0.3 s in
    audio = np.concatenate([fake_speech(3.0, seed=10), quiet, fake_speech(3.0, seed=11)])
    fake = FakeTranscriber()
    fake.faint_token = 6
    # the decode that finds the pause commits up to 0.2 s before it heard: past the boundary
    options = StreamOptions(
        pauses=ENERGY.pauses, right_context_seconds=0.2, max_segment_seconds=5.0
    )
    updates = run_stream(StreamingTranscriber(fake, options), audio, [800] * 320)
    closed = [(u.segment, u.segment_end) for u in updates if u.segment is not None]
    stray = [s for s, _ in closed if s.chars[0].text == VOCAB[6] and 3 < s.start < 4]
    assert len(stray) == 1 and len(stray[0].chars) == 1, "the scenario: one stray character"
    assert next(end for s, end in closed if s is stray[0]) < 13.0  # closed inside the silence
    assert not any(13.0 < end < 15.9 for _, end in closed), "no cut inside the later speech"


def test_long_speech_without_pause_is_cut_at_max_segment_seconds():
    audio = fake_speech(10.0, seed=9)
    options = StreamOptions(pauses=ENERGY.pauses, max_segment_seconds=3.0)
    updates = run_stream(StreamingTranscriber(FakeTranscriber(), options), audio, [3200] * 50)
    segments = [u.segment for u in updates if u.segment is not None]
    assert len(segments) >= 3
    assert all(s.end - s.start <= 3.0 + 0.6 for s in segments)


def test_reset_starts_a_new_stream_and_push_after_finish_is_refused():
    audio = fake_speech(2.0, seed=10)
    stream = StreamingTranscriber(FakeTranscriber(), ENERGY)
    first = [c for u in run_stream(stream, audio, [len(audio)]) for c in u.committed]
    with pytest.raises(RuntimeError, match="reset"):
        stream.push(audio)
    stream.reset()
    again = [c for u in run_stream(stream, audio, [len(audio)]) for c in u.committed]
    assert key(first) == key(again) and first
    stream.reset()
    with pytest.raises(ValueError, match="mono"):
        stream.push(np.zeros((10, 2), np.float32))


@pytest.mark.parametrize(("field", "value"), [("hop_seconds", 0), ("left_context_seconds", -1)])
def test_options_are_validated_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        StreamOptions(**{field: value})


def test_tiny_model_streams_real_speech(tiny_model_dir, shared_audio):
    from engine.audio import load_audio
    from engine.model import load_model
    from engine.transcribe import Transcriber

    transcriber = Transcriber(load_model(tiny_model_dir))
    audio = load_audio(shared_audio / "aishell1_BAC009S0724W0121.wav")
    stream = StreamingTranscriber(transcriber, StreamOptions(pauses=PauseOptions(vad="silero")))
    updates = run_stream(stream, audio, [1600] * (len(audio) // 1600 + 1))
    assert len(updates) >= len(audio) / SR / 0.3
    committed = [c for u in updates for c in u.committed]
    assert committed, "a random model still emits characters"
    starts = [c.start for c in committed]
    assert starts == sorted(starts) and starts[-1] < len(audio) / SR
    assert all(0 <= c.confidence <= 1 for c in committed)
    # Compute bound: measured 5.5× (each 0.3 s hop re-reads left 1.0 s + right 0.6 s + the hop;
    # less at the start). A 2 s left context measures 7.2×, one re-read too many fails.
    assert stream.samples_decoded / len(audio) < 6.0


def test_cached_front_end_matches_a_full_forward(tiny_model_dir):
    """Reusing convolutional features changes nothing but the compute: windows decoded one
    after another give the frames a single forward over the same window gives."""
    import torch

    from engine.model import LoadOptions, load_model
    from engine.stream import CachedFrontEnd
    from engine.transcribe import Transcriber

    transcriber = Transcriber(load_model(tiny_model_dir, LoadOptions(precision="fp32")))
    assert CachedFrontEnd.supports(transcriber)
    assert not CachedFrontEnd.supports(FakeTranscriber())
    front = CachedFrontEnd(transcriber, scale=0.5)
    audio = np.random.default_rng(0).normal(0, 0.3, 4 * SR).astype(np.float32)
    net = transcriber.model.model
    for first, end in ((0, SR), (0, 2 * SR), (25, 3 * SR), (60, 4 * SR)):
        window = audio[first * HOP : end]
        got = front.log_probs(window, first)
        with torch.inference_mode():
            logits = net(torch.from_numpy(window / 0.5)[None]).logits[0]
        expected = torch.log_softmax(logits.float(), dim=-1).numpy()
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_group_norm_model_with_another_conv_stack_streams_per_window(tmp_path, shared_audio):
    """A feature encoder with group norm (normalizes over time: not reusable) and a 4-layer
    conv stack (receptive field 425 samples), like the demo model: per-window decoding."""
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    from engine.audio import load_audio
    from engine.model import load_model
    from engine.stream import CachedFrontEnd
    from engine.testmodels import write_processor
    from engine.transcribe import Transcriber

    write_processor(tmp_path, VOCAB[5:])
    config = Wav2Vec2Config(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16, 16, 32),
        conv_stride=(5, 4, 4, 4),
        conv_kernel=(10, 8, 8, 4),
        feat_extract_norm="group",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        pad_token_id=0,
    )
    Wav2Vec2ForCTC(config).save_pretrained(tmp_path)
    transcriber = Transcriber(load_model(tmp_path))
    assert transcriber.geometry.receptive_field == 425
    assert not CachedFrontEnd.supports(transcriber)
    audio = load_audio(shared_audio / "aishell1_BAC009S0724W0121.wav")
    counting = _Counting(transcriber)
    stream = StreamingTranscriber(counting, ENERGY)
    committed = [c for u in run_stream(stream, audio, [1600] * 50) for c in u.committed]
    assert counting.calls >= len(audio) / SR / 0.3 - 1  # one model run per hop
    starts = [c.start for c in committed]
    assert starts == sorted(starts) and committed


class _Counting:
    """A Transcriber that counts its model runs."""

    def __init__(self, transcriber) -> None:
        self._t = transcriber
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._t, name)

    def log_probs(self, batch):
        self.calls += 1
        return self._t.log_probs(batch)


# Measured 86.1 % (155 of the 180 characters) with the committed demo model at the default
# contexts; 0.80 allows ~11 characters of drift (another CPU's rounding) and no more. Context
# decides it: left context 0 gives 56.7 %, right context 0 45.6 %, 0.5 s / 0.3 s 72.8 %.
DEMO_AGREEMENT_BOUND = 0.80


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
def test_trained_model_streams_close_to_its_offline_decode(tmp_path):
    """The committed stream of the demo model (a trained model, so its output depends on
    context) agrees with its offline decode of the same audio: 18 unseen sentences as six
    passages of three, with pauses and silence around, pushed in 50 ms blocks.

    Mutations tried, each failing this test: StreamOptions' left context 0 (56.7 %), right
    context 0 (45.6 %), and the tighter 0.5 s / 0.3 s (72.8 %). The fake-model tests above
    all pass with left context 0."""
    from engine.audio import load_audio
    from engine.metrics import cer
    from engine.model import DEMO_MODEL_DIR, LoadOptions, load_model
    from engine.transcribe import TranscribeOptions, Transcriber
    from engine.tune.synth import SynthOptions, read_sentences, synthesize

    corpus = Path(__file__).resolve().parents[1] / "resources" / "corpus" / "general"
    options = SynthOptions(seed=104, sentences_range=(3, 3), silence_range=(0.5, 1.0))
    for _ in synthesize(read_sentences(corpus / "heldout.txt")[60:78], tmp_path, options):
        pass
    rows = (tmp_path / "manifest.tsv").read_text(encoding="utf-8").splitlines()[1:]
    passages = [load_audio(tmp_path / row.split("\t")[0]) for row in rows]
    demo = Transcriber(load_model(DEMO_MODEL_DIR, LoadOptions(device="cpu", precision="fp32")))
    offline, streamed = [], []
    for audio in passages:
        # the stream commits greedy characters: compare with the offline greedy decode (the
        # language model's beam search is the segment finals' business)
        items, _ = demo.transcribe(audio, TranscribeOptions(decoder="greedy"))
        offline.append("".join(s.text for s in items if isinstance(s, Segment)))
        stream = StreamingTranscriber(demo, ENERGY)
        updates = run_stream(stream, audio, [800] * (len(audio) // 800 + 1))
        streamed.append("".join(c.text for u in updates for c in u.committed))
    result = cer(offline, streamed)
    assert len(passages) == 6 and result.reference_chars >= 150
    agreement = 1 - result.cer
    assert agreement >= DEMO_AGREEMENT_BOUND, f"agreement {agreement:.1%}"


def test_int16_pushes_stream_as_their_float_samples():
    """A microphone's int16 was cast to float unscaled: levels of hundreds, other text and
    no pause found."""
    audio = fake_speech(6.0, seed=3, pauses=(2.0,))
    as_int16 = np.round(audio * 32768).astype(np.int16)
    blocks = [1600] * (len(audio) // 1600 + 1)
    floats = run_stream(StreamingTranscriber(FakeTranscriber(), ENERGY), audio, blocks)
    ints = run_stream(StreamingTranscriber(FakeTranscriber(), ENERGY), as_int16, blocks)
    assert key(c for u in ints for c in u.committed) == key(c for u in floats for c in u.committed)
    assert [u.segment_end for u in ints] == [u.segment_end for u in floats]
    assert any(u.at_pause for u in ints)


def test_a_nan_sample_loses_no_text_after_it(tiny_model_dir, shared_audio, caplog):
    """With reuse_features (the default) the running level became NaN for good: every
    character after one bad sample was lost until reset(). It is silence now, once warned."""
    from engine.audio import load_audio
    from engine.model import LoadOptions, load_model
    from engine.transcribe import Transcriber

    transcriber = Transcriber(load_model(tiny_model_dir, LoadOptions(precision="fp32")))
    audio = load_audio(shared_audio / "aishell1_BAC009S0724W0121.wav")
    zeroed, poisoned = audio.copy(), audio.copy()
    zeroed[SR], poisoned[SR] = 0.0, np.nan
    stream = StreamingTranscriber(transcriber)
    assert stream._front is not None  # the cached front end is what the NaN poisoned
    blocks = [1600] * (len(audio) // 1600 + 1)
    clean = [c for u in run_stream(stream, zeroed, blocks) for c in u.committed]
    stream.reset()
    with caplog.at_level("WARNING", logger="tingxie.audio"):
        got = [c for u in run_stream(stream, poisoned, blocks) for c in u.committed]
    assert key(got) == key(clean) and any(c.start > 2.0 for c in got)
    warnings = [r.getMessage() for r in caplog.records if "not a number" in r.getMessage()]
    assert len(warnings) == 1 and "samples: a sample at 1.00 s" in warnings[0]
