"""Transcriber: lazy, exact chunk joining end to end, segmentation, batching, files."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from engine.model import LoadOptions, load_model
from engine.results import Char, Progress, Segment
from engine.transcribe import TranscribeOptions, Transcriber, split_segments
from engine.vad import PauseDetector, PauseOptions, find_pauses

SR = 16_000


@pytest.fixture(scope="module")
def transcriber(tiny_model_dir) -> Transcriber:
    return Transcriber(load_model(tiny_model_dir, LoadOptions(precision="fp32")))


def run(t: Transcriber, source, options: TranscribeOptions | None = None):
    stream, info = t.transcribe(source, options)
    records = list(stream)
    return [r for r in records if isinstance(r, Segment)], records, info


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise bursts separated by silences, so a model sees both."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=int(seconds * SR)).astype(np.float32) * 0.1
    envelope = (np.sin(np.arange(len(x)) / SR * 2 * np.pi * 0.3) > -0.2).astype(np.float32)
    return x * envelope


# --- exact plumbing: a fake model whose output depends only on the absolute frame index ---


def frame_table(t: Transcriber, n_frames: int, seed: int = 0) -> np.ndarray:
    """Log-probs with character runs, blanks, delimiters and a long silence."""
    rng = np.random.default_rng(seed)
    n_out = len(t.silent)
    chars = np.flatnonzero(~t.silent)
    ids = np.where(rng.random(n_frames) < 0.55, 0, rng.choice(chars, n_frames))
    ids = np.repeat(ids, rng.integers(1, 4, n_frames))[:n_frames]  # runs of 1-3 frames
    ids[n_frames // 3 : n_frames // 3 + 100] = 0  # 2 s of silence
    logits = rng.normal(size=(n_frames, n_out)).astype(np.float32)
    logits[np.arange(n_frames), ids] += 8
    return logits - np.log(np.exp(logits).sum(1, keepdims=True))


# Each frame's first sample holds its own index times this (exact in float32), far below any
# detector's idea of speech: the other samples are free to carry speech or silence.
INDEX_SCALE = 2.0**-30
ENERGY = PauseOptions(vad="energy")


def indexed_audio(t: Transcriber, speech: np.ndarray) -> np.ndarray:
    """`speech` with each frame's first sample replaced by the frame's index (fake_forward)."""
    x = speech.astype(np.float32)
    hop = t.geometry.hop
    x[::hop] = np.arange(0, len(x), hop) / hop * INDEX_SCALE
    return x


def fake_forward(t: Transcriber, table: np.ndarray):
    """Replaces the model: frame f's log-probs are table[f], f read from `indexed_audio`."""
    hop = t.geometry.hop

    def log_probs(batch):
        out = []
        for a in batch:
            n = t.geometry.frames(len(a))
            out.append(table[np.round(a[np.arange(n) * hop] / INDEX_SCALE).astype(int)])
        return out

    return log_probs


@pytest.mark.parametrize("seconds", [0.01, 3.3, 7.0, 7.02, 25.0, 61.37])
def test_chunked_transcription_equals_one_decode_of_all_frames(transcriber, monkeypatch, seconds):
    t = transcriber
    n = int(seconds * SR)
    table = frame_table(t, t.geometry.frames(n) + 5)
    monkeypatch.setattr(t, "log_probs", fake_forward(t, table))
    options = TranscribeOptions(
        chunk_seconds=7, stride_seconds=1, batch_size=3, pauses=ENERGY, cut_at_pauses=False
    )
    audio = indexed_audio(t, speech_like(seconds))  # pauses every 3.3 s
    segments, records, _ = run(t, audio, options)
    got = [c for s in segments for c in s.chars]
    expected = t.chars(table[: t.geometry.frames(n)], top_k=options.top_k)
    assert got == expected
    assert [s.id for s in segments] == list(range(len(segments)))
    pauses = find_pauses(audio, ENERGY)
    assert len(pauses) >= seconds // 3.4
    assert segments == split_segments(
        expected, pauses=pauses, max_segment_seconds=options.max_segment_seconds
    )
    progress = [r.done for r in records if isinstance(r, Progress)]
    assert progress == sorted(progress) and progress[-1] == pytest.approx(n / SR)


def stretches(audio: np.ndarray, hop: int, skip: bool) -> list[tuple[int, int]]:
    """The stretches a file is decoded in: from pause boundary to pause boundary, or, skipping
    silence, from 0.3 s before speech resumes (on the frame grid) to the next boundary, and
    nothing after the last boundary when speech does not resume."""
    detector = PauseDetector(ENERGY, onsets=True)
    cuts = detector.push(audio)
    onsets = detector.take_onsets()
    assert all(c % hop == 0 for c in cuts)
    assert len(onsets) in (len(cuts), len(cuts) - 1)
    if not skip:
        return list(itertools.pairwise([0, *cuts, len(audio)]))
    starts = [0] + [
        max(cut, (onset - int(0.3 * SR)) // hop * hop)
        for cut, onset in zip(cuts, [*onsets, len(audio)][: len(cuts)], strict=True)
    ]
    return [(lo, hi) for lo, hi in zip(starts, [*cuts, len(audio)], strict=True) if lo < hi]


@pytest.mark.parametrize("skip", [True, False], ids=["skip-silence", "every-sample"])
@pytest.mark.parametrize("seconds", [3.3, 7.02, 25.0, 61.37])
def test_cut_at_pauses_decodes_each_stretch_between_pauses_alone(
    transcriber, monkeypatch, seconds, skip
):
    """The default: the audio is cut at the pause boundaries (on the 20 ms frame grid) and
    each stretch decodes exactly as its own frames would alone, times moved to where it
    starts: what a live final of that stretch gives (engine.twopass). Skipping silence, a
    stretch starts 0.3 s before the speech after a pause, and the model sees nothing before."""
    t = transcriber
    n = int(seconds * SR)
    table = frame_table(t, t.geometry.frames(n) + 5)
    fake = fake_forward(t, table)
    seen = []
    monkeypatch.setattr(t, "log_probs", lambda batch: seen.extend(map(len, batch)) or fake(batch))
    options = TranscribeOptions(
        chunk_seconds=7, stride_seconds=1, batch_size=3, pauses=ENERGY, skip_silence=skip
    )
    audio = indexed_audio(t, speech_like(seconds))
    segments, _, _ = run(t, audio, options)
    spans = stretches(audio, t.geometry.hop, skip)
    assert len(spans) >= seconds // 3.4
    if skip and seconds > 7:  # the silences beyond the margins were not run through the model
        assert sum(seen) < sum(hi - lo for lo, hi in stretches(audio, t.geometry.hop, False))
    expected = []
    for lo, hi in spans:
        first = lo // t.geometry.hop
        own = table[first : first + t.geometry.frames(hi - lo)]
        expected += t.chars(own, offset_seconds=lo / SR, top_k=options.top_k)
    assert [c for s in segments for c in s.chars] == expected


# --- the real (tiny) model ---


def test_transcription_is_lazy_and_can_be_cancelled(transcriber, monkeypatch):
    calls = []
    real = transcriber.log_probs
    monkeypatch.setattr(transcriber, "log_probs", lambda b: calls.append(len(b)) or real(b))
    stream, info = transcriber.transcribe(speech_like(30), TranscribeOptions(chunk_seconds=5))
    assert calls == [] and info.duration == pytest.approx(30)
    next(stream)
    assert len(calls) == 1
    stream.close()
    assert list(stream) == [] and len(calls) == 1


def test_single_chunk_equals_a_single_pass(transcriber):
    x = speech_like(6)
    segments, _, _ = run(transcriber, x, TranscribeOptions(chunk_seconds=10, stride_seconds=1))
    single = transcriber.chars(transcriber.log_probs([x])[0])
    assert [c for s in segments for c in s.chars] == single


def test_chunked_text_agrees_with_single_pass(transcriber):
    """Edge frames lose some context, so the texts may differ slightly; measured ~0.99."""
    import jiwer

    x = speech_like(40, seed=3)
    single = "".join(c.text for c in transcriber.chars(transcriber.log_probs([x])[0]))
    segments, _, _ = run(transcriber, x, TranscribeOptions(chunk_seconds=10, stride_seconds=2))
    joined = "".join(s.text for s in segments)
    assert len(single) > 100
    assert 1 - jiwer.cer(single, joined) >= 0.95


def test_every_character_has_times_confidence_and_alternatives(transcriber):
    x = speech_like(12, seed=1)
    segments, _, info = run(transcriber, x, TranscribeOptions(chunk_seconds=5, top_k=2))
    chars = [c for s in segments for c in s.chars]
    assert chars and info.confidence_measure == "max_prob:1:mean"
    for a, b in itertools.pairwise(chars):
        assert a.end <= b.start
    for c in chars:
        assert 0 <= c.start < c.end <= 12 + 1e-6
        assert 0 <= c.confidence <= 1
        assert len(c.alternatives) == 2 and c.text not in {a.text for a in c.alternatives}


def test_batching_with_different_lengths_does_not_change_results(transcriber):
    a, b = speech_like(3, seed=4), speech_like(5, seed=5)
    together = transcriber.log_probs([a, b, a[::-1].copy()])
    np.testing.assert_array_equal(together[1], transcriber.log_probs([b])[0])
    np.testing.assert_allclose(together[0], transcriber.log_probs([a])[0], atol=1e-4)
    assert together[0].dtype == np.float32
    assert transcriber.log_probs([np.zeros(100, np.float32)])[0].shape[0] == 0


@pytest.mark.parametrize("model_type", ["wav2vec2", "hubert", "wavlm", "data2vec-audio"])
def test_padded_batches_give_each_array_its_own_output(tmp_path, monkeypatch, model_type):
    """The GPU path (one padded pass under an attention mask), forced on the CPU: every array's
    log-probs match its pass alone, padding and neighbours notwithstanding, for the families
    that pad on a GPU; data2vec-audio, whose stacked positional convolutions carry the padding
    into the last real frames, does not pad there."""
    import torch

    from engine.testmodels import build_model

    folder = build_model(tmp_path / "model", "tiny", model_type=model_type)
    t = Transcriber(load_model(folder, LoadOptions(precision="fp32")))
    assert not t.pads_batches  # a CPU runs lengths apart
    monkeypatch.setattr(t.model, "device", torch.device("cuda"))
    pads = t.pads_batches
    assert pads == (model_type != "data2vec-audio")
    monkeypatch.setattr(t.model, "device", torch.device("cpu"))
    monkeypatch.setattr(Transcriber, "pads_batches", property(lambda self: True))
    arrays = [speech_like(s, seed=k) for k, s in enumerate((3.0, 1.3, 5.2, 0.001))]
    together = t.log_probs(arrays)
    assert together[3].shape[0] == 0
    apart = [t.log_probs([a])[0] for a in arrays[:3]]
    assert all(lp.shape == alone.shape for lp, alone in zip(together, apart, strict=False))
    worst = max(np.abs(lp - alone).max() for lp, alone in zip(together, apart, strict=False))
    assert (worst < 1e-4) == pads


def test_only_layer_norm_encoders_on_a_gpu_pad_batches(transcriber, monkeypatch):
    import torch

    m = transcriber.model
    monkeypatch.setattr(m, "device", torch.device("cuda"))
    assert transcriber.pads_batches
    monkeypatch.setattr(m.model.config, "feat_extract_norm", "group")
    assert not transcriber.pads_batches


def test_reading_ahead_in_a_thread_changes_nothing(transcriber):
    """The GPU's read-ahead (blocks read and scanned for pauses in a thread) gives the same
    records as reading in turn: the chunker and segmenter see the same pauses per block."""
    audio = speech_like(40, seed=7)
    options = TranscribeOptions(chunk_seconds=7, stride_seconds=1, block_seconds=1.3)
    assert transcriber.read_ahead == 0  # a CPU
    _, in_turn, _ = run(transcriber, audio, options)
    try:
        transcriber.read_ahead = 2
        _, ahead, _ = run(transcriber, audio, options)
    finally:
        transcriber.read_ahead = 0
    assert sum(isinstance(r, Segment) for r in in_turn) > 3
    assert ahead == in_turn


def test_cancelling_stops_the_read_ahead_thread_before_the_file_closes(transcriber, tmp_path):
    import threading

    from engine.audio import write_wav

    path = tmp_path / "long.wav"
    write_wav(path, speech_like(60, seed=8))
    options = TranscribeOptions(chunk_seconds=7, stride_seconds=1, block_seconds=1.0)
    try:
        transcriber.read_ahead = 2
        stream, _ = transcriber.transcribe(path, options)
        next(r for r in stream if isinstance(r, Progress))
        assert any(t.name == "read-ahead" for t in threading.enumerate())
        stream.close()  # the file reader closes after the thread stopped: no error here
    finally:
        transcriber.read_ahead = 0
    assert not any(t.name == "read-ahead" for t in threading.enumerate())


def test_read_ahead_keeps_order_hands_over_errors_and_stops_when_closed():
    import threading

    from engine.transcribe import read_ahead

    assert list(read_ahead(iter(range(50)), 3)) == list(range(50))

    def failing():
        yield 1
        yield 2
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in read_ahead(failing(), 2):
            got.append(item)
    assert got == [1, 2]

    closed = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    stream = read_ahead(endless(), 2)
    assert [next(stream) for _ in range(5)] == [0, 1, 2, 3, 4]
    stream.close()
    assert closed.is_set()  # the producer closed its source before close() returned
    assert not any(t.name == "read-ahead" for t in threading.enumerate())


def test_normalization_matches_the_feature_extractor(transcriber):
    import torch

    x = speech_like(2, seed=6) * 5 + 0.3
    m = transcriber.model
    values = m.feature_extractor(x, sampling_rate=SR, return_tensors="pt").input_values
    with torch.inference_mode():
        ref = torch.log_softmax(m.model(values).logits.float(), -1)[0].numpy()
    np.testing.assert_allclose(transcriber.log_probs([x])[0], ref, atol=1e-5)


def test_bf16_model_gives_float32_log_probs(tiny_model_dir):
    t = Transcriber(load_model(tiny_model_dir, LoadOptions(precision="bf16")))
    (lp,) = t.log_probs([speech_like(1)])
    assert lp.dtype == np.float32 and np.allclose(np.exp(lp).sum(1), 1, atol=1e-3)


def ch(start: float, end: float, text: str = "字") -> Char:
    return Char(text, start, end, 0.9)


def test_split_segments_cuts_at_pauses_and_at_max_length():
    chars = [ch(0, 0.1), ch(0.2, 0.3), ch(1.0, 1.1), ch(1.2, 1.3), ch(1.4, 1.5), ch(1.6, 1.7)]
    segs = split_segments(chars, pauses=[0.6], max_segment_seconds=0.45, first_id=7)
    assert [(s.id, s.start, s.end, len(s.chars)) for s in segs] == [
        (7, 0, 0.3, 2),
        (8, 1.0, 1.3, 2),
        (9, 1.4, 1.7, 2),
    ]
    assert split_segments([], pauses=[1.0], max_segment_seconds=5) == []


def test_a_gap_between_characters_is_no_pause_but_a_pause_in_the_audio_is():
    """喝 … 咖啡 with 1.2 s without characters (a model that dropped 一杯) stays one
    segment; the old rule cut at every character gap of 0.6 s, one paragraph per word."""
    chars = [ch(0.0, 0.1, "我"), ch(0.3, 0.4, "想"), ch(0.6, 0.7, "喝")]
    chars += [ch(1.9, 2.0, "咖"), ch(2.2, 2.3, "啡")]  # short gaps, then a long one
    one = split_segments(chars, pauses=[], max_segment_seconds=12)
    assert [s.text for s in one] == ["我想喝咖啡"]
    # pauses before the first and after the last character cut nothing either
    assert split_segments(chars, pauses=[-1.0, 0.0, 9.0], max_segment_seconds=12) == one
    two = split_segments(chars, pauses=[1.3], max_segment_seconds=12)
    assert [s.text for s in two] == ["我想喝", "咖啡"]
    assert [(s.id, s.start, s.end) for s in two] == [(0, 0.0, 0.7), (1, 1.9, 2.3)]
    # two boundaries in one gap make one cut
    assert split_segments(chars, pauses=[1.0, 1.6], max_segment_seconds=12) == two


def test_files_are_segmented_at_pauses_in_the_audio_not_at_blank_runs(transcriber, monkeypatch):
    """A 2 s run without characters inside continuous speech (a model dropping characters)
    stays inside its segment; a 1 s silence in the audio ends one."""
    t = transcriber
    n = 8 * SR
    n_frames = t.geometry.frames(n)
    letters = np.flatnonzero(~t.silent)
    ids = np.zeros(n_frames + 5, int)
    ids[::5] = letters[np.arange(len(ids[::5])) % len(letters)]  # a character every 0.1 s
    ids[150:250] = 0  # 3-5 s: no characters, but speech in the audio
    ids[300:350] = 0  # 6-7 s: silence in the audio
    table = np.full((len(ids), len(t.silent)), -20.0, np.float32)
    table[np.arange(len(ids)), ids] = 0.0
    monkeypatch.setattr(t, "log_probs", fake_forward(t, table))
    speech = np.random.default_rng(0).normal(size=n).astype(np.float32) * 0.1
    speech[6 * SR : 7 * SR] = 0
    options = TranscribeOptions(chunk_seconds=5, stride_seconds=1, pauses=ENERGY)
    segments, _, _ = run(t, indexed_audio(t, speech), options)
    assert len(segments) == 2
    assert segments[0].start == 0 and 5.0 < segments[0].end < 6.0
    assert segments[1].start >= 7.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("chunk_seconds", 0),
        ("stride_seconds", -1),
        ("batch_size", 0),
        ("top_k", -1),
        ("max_segment_seconds", 0),
        ("confidence", "loudness"),
    ],
)
def test_bad_options_name_the_setting(field, value):
    with pytest.raises(ValueError, match=field if field != "confidence" else "loudness"):
        TranscribeOptions(**{field: value})
    with pytest.raises(ValueError, match="chunk_seconds"):
        TranscribeOptions(chunk_seconds=4, stride_seconds=2)


def test_transcribes_real_files(transcriber, shared_audio):
    for name, seconds in [("aishell1_BAC009S0764W0121.wav", 4.2), ("fireredtts2_zh_S2.flac", 5.26)]:
        segments, records, info = run(transcriber, shared_audio / name)
        assert info.duration == pytest.approx(seconds, abs=0.02)
        assert info.source.endswith(name)
        assert segments and segments[-1].end <= seconds + 0.05
        assert records[-1] == Progress(done=info.duration, total=info.duration)


def test_progress_goes_on_past_a_length_the_file_only_estimated(transcriber, tmp_path):
    """Raw AAC (and MP3) lengths are FFmpeg's estimates from the bit rate, here 4 s of 15 s:
    the total grows with the audio read past it, and the last record is all of it (before:
    done stopped at the estimate, and the bar sat at 100 % while the rest was transcribed)."""
    from audio_fixtures import aac_with_a_quiet_end

    _, records, info = run(transcriber, aac_with_a_quiet_end(tmp_path))
    progress = [r for r in records if isinstance(r, Progress)]
    assert info.duration < 14
    assert all(p.done <= p.total for p in progress)
    assert progress[-1].done == progress[-1].total == pytest.approx(15.0, abs=0.25)


def test_a_length_the_header_guessed_too_long_gives_way_to_the_length_read(transcriber, tmp_path):
    """An MP3 whose bit rate rises: FFmpeg guesses 13.5 s for 5.2 s. The last record carries
    the length read, which the written JSON says and the last cue ends by (before: 13.5 s in
    `info.duration`, and the last cue held 2.4 s past the end of the audio)."""
    from audio_fixtures import mp3_longer_by_its_header

    from engine.audio import load_audio
    from engine.writers import render

    path = mp3_longer_by_its_header(tmp_path)
    read = len(load_audio(path)) / SR
    segments, records, info = run(transcriber, path)
    assert info.duration > 10 and segments
    assert records[-1] == Progress(done=read, total=read)
    written = info.decoded(records[-1])
    assert json.loads(render(segments, "json", written))["info"]["duration"] == read
    last_end = render(segments, "srt", written).split(" --> ")[-1].split("\n")[0]
    assert last_end == f"00:00:0{read:.3f}".replace(".", ",")


def test_missing_file_fails_before_any_work(transcriber, tmp_path):
    from engine.audio import AudioError

    with pytest.raises(AudioError, match=r"nothing\.wav"):
        transcriber.transcribe(tmp_path / "nothing.wav")


def test_single_pass_text_equals_the_transformers_pipeline(tiny_model_dir):
    """Same model, same audio, no chunks: our greedy decoding gives the tokenizer's CTC text
    (which also keeps <unk> tokens and turns delimiters into spaces; Tingxie drops both)."""
    import re

    from transformers import pipeline

    x = speech_like(8, seed=7)
    asr = pipeline("automatic-speech-recognition", model=str(tiny_model_dir))
    reference = re.sub(r"<unk>|\s", "", asr(x.copy())["text"])
    t = Transcriber(load_model(tiny_model_dir, LoadOptions(precision="fp32")))
    segments, _, _ = run(t, x, TranscribeOptions(chunk_seconds=10, stride_seconds=1))
    assert len(reference) > 50
    assert "".join(s.text for s in segments) == reference


@pytest.mark.parametrize("lm", [False, True])
def test_a_span_decoded_as_it_arrives_is_decoded_as_a_file(transcriber, tiny_with_lm, lm):
    """SpanDecoder (the live finals' decode) runs a span's whole chunks as they arrive and
    the rest when asked: its characters are `transcribe`'s of the same audio alone, greedy
    and with beam search, for spans of no chunk to many, pushed in blocks of any size, asked
    for at an earlier end first (which leaves the span open) and with chunks run up to the
    last moment allowed."""
    import random

    from engine.transcribe import SpanDecoder

    # fp32 as the fixture's: in bf16 (a CPU with AMX) a product's rounding depends on its shape
    fp32 = LoadOptions(precision="fp32")
    t = Transcriber(load_model(tiny_with_lm, fp32)) if lm else transcriber
    options = TranscribeOptions(
        chunk_seconds=4.0,
        stride_seconds=0.5,
        cut_at_pauses=False,
        decoder="beam" if lm else "greedy",
    )
    # 7 s and 10 s end where a chunk does (chunks of 4 s every 3 s): that one is the last
    for seed, seconds in enumerate(
        [7.0, 10.0, *(random.Random(i).uniform(0.01, 20) for i in range(6))]
    ):
        rng = random.Random(seed)
        audio = speech_like(seconds, seed)
        n = len(audio)
        whole, _, _ = run(t, audio, options)
        expected = [c for s in whole for c in s.chars]
        span, pushed, ahead = SpanDecoder(t, options), 0, None
        while pushed < n:
            block = rng.randint(100, 3 * SR)
            span.push(audio[pushed : pushed + block])
            pushed = min(n, pushed + block)
            if ahead is None and pushed > n // 2:
                ahead = pushed
                early, _, _ = run(t, audio[:ahead], options)
                assert span.chars(ahead) == [c for s in early for c in s.chars]
            span.advance(n if rng.random() < 0.3 else pushed - rng.randint(0, SR))
        span.advance(n)  # every chunk but the last
        assert span.chars(n) == expected, seed
        if span.ran_to:
            with pytest.raises(ValueError, match="must lie after"):
                span.chars(span.ran_to)
