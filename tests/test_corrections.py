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


def _tone(path: Path, seconds: float) -> Path:
    t = np.arange(round(seconds * SR)) / SR
    write_wav(path, ((0.1 + 0.05 * t) * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    return path


def _segment(sid: int, text: str, confs: list[float], start: float, step: float) -> Segment:
    chars = tuple(
        Char(t, start + step * i, start + step * (i + 1), c)
        for i, (t, c) in enumerate(zip(text, confs, strict=True))
    )
    return Segment(sid, start, start + step * len(text), chars)


def test_a_segment_with_unchecked_doubt_gives_only_its_checked_stretches(tmp_path):
    """One reviewed span put its whole segment in the set, so a doubtful character nobody
    checked (园 at 0.2) became a label. Now such a segment gives only its checked stretches,
    or nothing when none is long enough, and the summary says how many."""
    rec = _tone(tmp_path / "rec.wav", 6)
    segs = [
        _segment(0, "今天天气好", [0.9, 0.9, 0.3, 0.9, 0.9], 0.0, 0.2),
        _segment(1, "我门去工园玩", [0.9, 0.3, 0.9, 0.9, 0.2, 0.9], 2.0, 0.2),
        _segment(2, "公园很大", [0.2, 0.9, 0.9, 0.3], 4.0, 0.5),
    ]
    with Store(tmp_path / "t.db") as store:
        tid = store.add_transcript(segs, audio=rec)
        store.add_edit(tid, EditOp(0, 2, 3, "甜", "fix"))  # no doubt left: whole
        store.add_edit(tid, EditOp(1, 1, 2, "们", "fix"))  # 园 unchecked; 们 alone 0.2 s
        store.add_edit(tid, EditOp(2, 0, 1, "公", "accept"))  # 大 unchecked; 公 0.5 s
        s = build_dataset(store, [tid], "set", model="m")
        assert [e.text for e in load_dataset(s.manifest).examples] == ["今天甜气好", "公"]
        assert (s.examples, s.corrections, s.accepted, s.trimmed, s.skipped) == (2, 1, 1, 1, 1)
        # the app's threshold: at 0.25, 大 (0.3) is no doubt, 园 (0.2) still is
        options = CorrectionOptions(threshold=0.25)
        clips = collect_clips(store, [tid], options)
        assert [c.text for c in clips] == ["今天甜气好", "公园很大"]


def test_checked_text_kept_out_by_doubt_says_so(tmp_path):
    """When every segment holding checked text is kept out by doubt nobody checked, the error
    said "accept or fix some doubtful spans first" to a user who had just done so."""
    rec = _tone(tmp_path / "rec.wav", 4)
    segs = [
        _segment(0, "今天天气好", [0.9, 0.3, 0.9, 0.2, 0.9], 0.0, 0.2),
        _segment(1, "我们去公园", [0.3, 0.9, 0.9, 0.9, 0.2], 2.0, 0.2),
    ]
    with Store(tmp_path / "t.db") as store:
        tid = store.add_transcript(segs, audio=rec)
        store.add_edit(tid, EditOp(0, 1, 2, "天", "accept"))
        store.add_edit(tid, EditOp(1, 0, 1, "我", "accept"))
        with pytest.raises(CorrectionsError) as caught:
            build_dataset(store, [tid], "set", model="m")
    assert caught.value.code == "dataset.only_doubtful"
    assert "2 segment(s)" in str(caught.value) and "Ctrl+Shift+R" in str(caught.value)


def test_a_transcript_made_again_never_replaces_checked_text_with_unchecked(tmp_path):
    """Transcribed again, the newer transcript's whole segment (its own fix of 门, the model's
    unchecked 圆) replaced the older one where the user had fixed 圆 to 园. Now each check
    stands where no newer one covers it, and neither whole segment goes in over the other's."""
    rec = _tone(tmp_path / "rec.wav", 4)
    with Store(tmp_path / "t.db") as store:
        confs = [0.9, 0.9, 0.9, 0.9, 0.2, 0.9]
        t1 = store.add_transcript([_segment(0, "我们去公圆玩", confs, 0.0, 0.5)], audio=rec)
        store.add_edit(t1, EditOp(0, 4, 5, "园", "fix"))
        confs = [0.9, 0.3, 0.9, 0.9, 0.7, 0.9]  # sure of 圆 this time
        t2 = store.add_transcript([_segment(0, "我门去公圆玩", confs, 0.0, 0.5)], audio=rec)
        store.add_edit(t2, EditOp(0, 1, 2, "们", "fix"))
        clips = collect_clips(store, [t1, t2])
        assert [(c.transcript, c.text) for c in clips] == [(t1, "园"), (t2, "们")]
        s = build_dataset(store, [t2, t1], "set", model="m")
        assert (s.examples, s.corrections) == (2, 2)
        # a newer check of the same character wins, and the older segment is then whole again
        # nowhere: only the newer transcript's text is there
        store.add_edit(t2, EditOp(0, 4, 5, "园", "fix"))
        clips = collect_clips(store, [t1, t2])
        assert [(c.transcript, c.text) for c in clips] == [(t2, "我们去公园玩")]


def test_the_summary_counts_the_decisions_the_set_holds(tmp_path):
    """The summary counted every decision: a deletion that made no clip, a fix a later fix of
    the same character superseded, a span too short to keep. Now it counts what the clips
    hold, and a segment whose only decision is a deletion goes in whole."""
    rec = _tone(tmp_path / "rec.wav", 4)
    segs = [
        _segment(0, "嗯今天气好", [0.2, 0.9, 0.9, 0.9, 0.9], 0.0, 0.2),
        _segment(1, "我们去公园", [0.9, 0.9, 0.3, 0.9, 0.9], 2.0, 0.2),
    ]
    with Store(tmp_path / "t.db") as store:
        tid = store.add_transcript(segs, audio=rec)
        store.add_edit(tid, EditOp(0, 0, 1, "", "fix"))  # a filler removed
        store.add_edit(tid, EditOp(1, 2, 3, "取", "fix"))
        store.add_edit(tid, EditOp(1, 2, 3, "去", "fix"))  # heard again: it was right
        s = build_dataset(store, [tid], "set", model="m")
        assert [e.text for e in load_dataset(s.manifest).examples] == ["今天气好", "我们去公园"]
        assert (s.examples, s.corrections, s.accepted) == (2, 2, 0)
        span = CorrectionOptions(scope="span")  # 去 alone is too short; a deletion no clip
        with pytest.raises(CorrectionsError, match="accept or fix"):
            build_dataset(store, [tid], "span", model="m", options=span)
        span = CorrectionOptions(scope="span", min_seconds=0.0)
        s = build_dataset(store, [tid], "span", model="m", options=span)
        assert (s.examples, s.corrections, s.accepted) == (1, 1, 0)


def test_the_app_passes_its_review_threshold(tmp_path, monkeypatch):
    """The worker builds with the threshold the Review page doubts below."""
    import engine.library.corrections as corrections
    from app.worker import DatasetRequest, _build_dataset

    seen = []
    monkeypatch.setattr(corrections, "build_dataset", lambda *a, **k: seen.append(k["options"]))
    _build_dataset(DatasetRequest(None, (1,), "set", str(tmp_path), threshold=0.8))
    assert seen == [CorrectionOptions(threshold=0.8)]


def test_audio_two_transcripts_hold_whole_goes_in_once(tmp_path):
    """Each transcript's whole segment stood beside the other's where they cut the recording
    differently, so 1.2-2.0 s went in twice with two texts. The newer whole segment wins."""
    rec = _tone(tmp_path / "rec.wav", 4)
    with Store(tmp_path / "t.db") as store:
        t1 = store.add_transcript([_segment(0, "今天天气好", [0.9] * 5, 0.0, 0.4)], audio=rec)
        store.add_edit(t1, EditOp(0, 0, 2, "今天", "accept"))  # 0.0-0.8 s
        t2 = store.add_transcript([_segment(0, "天气好我们", [0.9] * 5, 1.2, 0.4)], audio=rec)
        store.add_edit(t2, EditOp(0, 3, 5, "我们", "accept"))  # 2.4-3.2 s
        clips = collect_clips(store, [t1, t2])
    assert [(c.transcript, c.text) for c in clips] == [(t1, "今天"), (t2, "天气好我们")]


def test_one_recording_is_known_by_its_checksum_not_its_path(tmp_path):
    """Two files with no checksum stored are two recordings, so both checks of 0.0-1.0 s go
    in; a copy of one recording elsewhere (same checksum) is the same, so the newer wins."""
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    segs = [_segment(0, "今天天气好", [0.9, 0.9, 0.3, 0.9, 0.9], 0.0, 0.2)]
    with Store(tmp_path / "t.db") as store:
        t1 = store.add_transcript(segs, audio=a)  # not there yet: no checksum
        t2 = store.add_transcript(segs, audio=b)
        _tone(a, 2), _tone(b, 2)
        for tid in (t1, t2):
            store.add_edit(tid, EditOp(0, 2, 3, "甜", "fix"))
        assert [c.transcript for c in collect_clips(store, [t1, t2])] == [t1, t2]
    copy = tmp_path / "moved" / "a.wav"
    copy.parent.mkdir()
    copy.write_bytes(a.read_bytes())
    with Store(tmp_path / "u.db") as store:
        t1 = store.add_transcript(segs, audio=a)
        t2 = store.add_transcript(segs, audio=copy)
        for tid in (t1, t2):
            store.add_edit(tid, EditOp(0, 2, 3, "甜", "fix"))
        assert [c.transcript for c in collect_clips(store, [t1, t2])] == [t2]


def test_a_picked_alternative_counts_as_a_correction(tmp_path):
    rec = _tone(tmp_path / "rec.wav", 2)
    with Store(tmp_path / "t.db") as store:
        tid = store.add_transcript(
            [_segment(0, "今天天气好", [0.9, 0.9, 0.3, 0.9, 0.9], 0.0, 0.2)], audio=rec
        )
        store.add_edit(tid, EditOp(0, 2, 3, "甜", "alternative"))
        s = build_dataset(store, [tid], "set", model="m")
    assert (s.examples, s.corrections, s.accepted) == (1, 1, 0)
