"""Verified review decisions become a tuning dataset the tuning engine loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.audio import load_audio, read_span, write_wav
from engine.library.corrections import (
    CorrectionOptions,
    CorrectionsError,
    build_dataset,
    collect_clips,
)
from engine.library.review import EditOp
from engine.library.store import Store
from engine.results import Char, Segment
from engine.tune.config import TuneConfig
from engine.tune.data import load_dataset

SR = 16_000


def make_segments() -> list[Segment]:
    """Two segments of 0.2 s characters: 0.0-1.0 s and 2.0-3.0 s."""

    def seg(sid: int, text: str, start: float) -> Segment:
        chars = tuple(
            Char(t, start + 0.2 * i, start + 0.2 * i + 0.2, 0.3 if i == 2 else 0.9)
            for i, t in enumerate(text)
        )
        return Segment(sid, start, start + 0.2 * len(text), chars)

    return [seg(0, "今天天气好", 0.0), seg(1, "我们去公园", 2.0)]


@pytest.fixture
def store_with_edits(tmp_path: Path) -> tuple[Store, int]:
    rec = tmp_path / "rec.wav"
    t = np.arange(4 * SR) / SR  # a swelling tone: no two moments of it sound the same
    write_wav(rec, ((0.1 + 0.05 * t) * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    store = Store(tmp_path / "db" / "tingxie.db")
    tid = store.add_transcript(make_segments(), audio=rec)
    store.add_edit(tid, EditOp(0, 2, 3, "甜", "fix"))  # a correction in segment 0
    store.add_edit(tid, EditOp(1, 2, 3, "去", "accept"))  # an acceptance in segment 1
    yield store, tid
    store.close()


def test_segment_scope_dataset_loads_in_the_tuning_engine(store_with_edits, tmp_path):
    store, tid = store_with_edits
    summary = build_dataset(
        store, [tid], "my-domain", model=str(tmp_path), vocab=list("今天气好我们去公园")
    )
    assert summary.folder == store.path.parent / "corrections" / "my-domain"
    assert (summary.examples, summary.corrections, summary.accepted) == (2, 1, 1)
    assert summary.seconds == pytest.approx(2.0)
    assert summary.hours == pytest.approx(2.0 / 3600)
    assert summary.new_chars == ("甜",)
    assert summary.command == f"tingxie-cli tune {summary.folder / 'tune.yaml'}"

    dataset = load_dataset(summary.manifest)
    assert [e.text for e in dataset.examples] == ["今天甜气好", "我们去公园"]
    for example, (start, end) in zip(dataset.examples, [(0.0, 1.0), (2.0, 3.0)], strict=True):
        audio = load_audio(example.audio)
        assert len(audio) == pytest.approx(SR * 1.0, abs=2)
        # cut from its segment's own stretch of the recording (16-bit WAV of the same samples)
        expected = read_span(store.audio_path(tid), start, end)
        assert len(audio) == len(expected) and np.abs(audio - expected).max() < 1e-3
    config = TuneConfig.load(summary.config)
    assert Path(config.data) == summary.manifest
    assert Path(config.model) == tmp_path.resolve()
    assert Path(config.output_dir).resolve() == summary.folder.parent / "my-domain-tuned"
    name, folder, record = store.correction_sets()[0]
    assert (name, folder, record["examples"]) == ("my-domain", summary.folder, 2)


def test_span_scope_and_rebuild_replaces(store_with_edits, tmp_path):
    store, tid = store_with_edits
    clips = collect_clips(store, [tid], CorrectionOptions(scope="span", min_seconds=0.0))
    assert [(c.text, round(c.start, 3), round(c.end, 3)) for c in clips] == [
        ("甜", 0.4, 0.6),
        ("去", 2.4, 2.6),
    ]
    assert collect_clips(store, [tid], CorrectionOptions(scope="span", min_seconds=0.3)) == []
    first = build_dataset(store, [tid], "set", model="some/hub-id", folder=tmp_path / "out")
    store.revert(tid, 1)  # the acceptance undone: only segment 0 remains
    again = build_dataset(store, [tid], "set", model="some/hub-id", folder=tmp_path / "out")
    assert again.folder == first.folder
    assert [e.text for e in load_dataset(again.manifest).examples] == ["今天甜气好"]
    assert sorted(p.name for p in (again.folder / "clips").iterdir()) == ["00000.wav"]
    assert TuneConfig.load(again.config).model == "some/hub-id"


def test_nothing_verified_and_bad_name(tmp_path: Path):
    with Store(tmp_path / "t.db") as store:
        tid = store.add_transcript(make_segments())
        with pytest.raises(CorrectionsError, match="accept or fix"):
            build_dataset(store, [tid], "x", model="m")
        # "." would swap out corrections/ itself, every other set and tuned model in it
        for bad in ("a/b", ".", "..", ".hidden"):
            with pytest.raises(CorrectionsError, match="dataset name"):
                build_dataset(store, [tid], bad, model="m")
        store.add_edit(tid, EditOp(0, 0, 1, "昨", "fix"))
        with pytest.raises(CorrectionsError, match="no recording"):
            build_dataset(store, [tid], "x", model="m")


def test_real_recording_to_store_review_and_dataset(tiny_model_dir, shared_audio, tmp_path):
    """A real Mandarin clip (MP3) transcribed by the (random) tiny model, stored, reviewed and
    turned into a dataset whose clip holds the same samples as the recording's span."""
    from engine.library.review import ReviewOptions, find_spans
    from engine.model import LoadOptions, load_model
    from engine.results import Segment as Seg
    from engine.transcribe import Transcriber

    clip = shared_audio / "funasr_asr_example_zh.mp3"
    model = load_model(tiny_model_dir, LoadOptions(device="cpu"))
    items, info = Transcriber(model).transcribe(clip)
    segments = [s for s in items if isinstance(s, Seg)]
    assert segments, "the tiny model produced no text to review"
    with Store(tmp_path / "t.db") as store:
        tid = store.add_transcript(segments, audio=clip, info=info)
        assert store.segments(tid) == segments  # every field survives the round trip
        span = find_spans(store.segments(tid), ReviewOptions(threshold=1.0))[0]
        store.add_edit(tid, EditOp(span.segment, span.first, span.stop, "欢迎", "fix"))
        options = CorrectionOptions(scope="span", min_seconds=0.0)
        (cut,) = collect_clips(store, [tid], options)
        summary = build_dataset(
            store, [tid], "real", model=str(tiny_model_dir), vocab=model.vocab, options=options
        )
    (example,) = load_dataset(summary.manifest).examples
    assert example.text == "欢迎"
    assert summary.new_chars == tuple(c for c in "欢迎" if c not in model.vocab)
    expected = read_span(clip, cut.start, cut.end)
    got = load_audio(example.audio)
    assert len(got) == len(expected)
    assert np.abs(got - expected).max() < 1e-3  # 16-bit WAV of the same samples


def test_a_transcript_deleted_while_the_clips_are_written_leaves_the_set_recorded(
    store_with_edits, tmp_path, monkeypatch
):
    """The app deleted a transcript while the clips were written (minutes for a big library):
    recording the set failed (FOREIGN KEY constraint failed), the folder stayed, unrecorded.
    Now the set is recorded with the transcripts still there."""
    import engine.library.corrections as corrections

    store, tid = store_with_edits
    other = store.add_transcript(make_segments(), audio=tmp_path / "rec.wav")
    store.add_edit(other, EditOp(1, 2, 3, "去", "accept"))
    write = corrections._write_folder

    def deleted_meanwhile(*args, **kwargs):
        write(*args, **kwargs)
        with Store(store.path) as app:  # the app's own connection
            app.delete_transcripts([tid])

    monkeypatch.setattr(corrections, "_write_folder", deleted_meanwhile)
    summary = build_dataset(store, [tid, other], "both", model=str(tmp_path))
    ((name, folder, _),) = store.correction_sets()
    assert (name, folder) == ("both", summary.folder)
