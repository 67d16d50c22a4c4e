"""Two-pass live text in the app: a segment's final takes its streamed text's place in the
view (colors by the final confidences, no jump of scroll or cursor) and in the transcript."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
from app_fakes import FakeDevice, FakePlayer, emitted, recorder_factory, tone

from app import settings
from app.confidence import BAND_COLORS
from app.main import build_window
from app.transcript import TranscriptView
from app.window import LIVE
from app.worker import Engine
from engine.library.store import Store
from engine.results import Char, Segment
from engine.stream import SegmentFinal


def _chars(text: str, confidence: float, start: float = 0.0) -> tuple[Char, ...]:
    return tuple(
        Char(t, start + 0.1 * i, start + 0.1 * i + 0.08, confidence) for i, t in enumerate(text)
    )


def _segment(i: int, text: str, confidence: float, start: float) -> Segment:
    chars = _chars(text, confidence, start)
    return Segment(i, chars[0].start, chars[-1].end, chars)


def _color(view: TranscriptView, i: int) -> str:
    return view.char_format(i).foreground().color().name()


@pytest.fixture
def view(qtbot):
    v = TranscriptView()
    qtbot.addWidget(v)
    v.resize(400, 200)
    v.show()
    v.set_threshold(0.6)
    return v


def _stream_into(view: TranscriptView, n: int) -> None:
    """n streamed segments of four characters, then two committed ones and a tail."""
    for k in range(n):
        view.apply_update(_chars("今天天气", 0.3, start=k), ())
        view.end_segment(4 * (k + 1))
    view.apply_update(_chars("很好", 0.95, start=n), _chars("吗", 0.5, start=n + 1))


def test_a_final_takes_its_streamed_texts_place_without_moving_the_view(view):
    _stream_into(view, 30)
    bar = view.verticalScrollBar()
    assert bar.maximum() > 0, "the view must scroll for this test to mean anything"
    bar.setValue(bar.maximum() // 2)  # the user scrolled up to read
    view.select_chars(120, 121)  # and selected 很好, after the segment being replaced
    bar.setValue(bar.maximum() // 2)
    scroll = bar.value()

    final = _chars("今天天晴了啊", 0.95, start=29)  # longer: a character was missing
    view.replace_chars(116, 4, final)

    assert bar.value() == scroll
    assert view.textCursor().selectedText() == "很好"
    lines = view.toPlainText().split("\n")
    assert lines[28:] == ["今天天气", "今天天晴了啊", "很好吗"]
    assert "".join(c.text for c in view.chars[116:]) == "今天天晴了啊很好"
    assert view.tail == _chars("吗", 0.5, start=31)
    assert [_color(view, i) for i in (115, 116, 121, 122)] == [
        BAND_COLORS["low"],  # the streamed segment before, untouched
        BAND_COLORS["high"],  # the final, by its own confidence
        BAND_COLORS["high"],
        BAND_COLORS["high"],  # 很, streamed after it
    ]
    view.apply_update(_chars("。", 0.9, start=32), ())  # appending goes on after the tail's place
    assert view.toPlainText().endswith("很好。")


def test_a_view_following_the_end_keeps_following(view):
    _stream_into(view, 30)
    bar = view.verticalScrollBar()
    bar.setValue(bar.maximum())
    view.replace_chars(116, 4, _chars("今天天气很好很好很好很好很好很好很好很好很好", 0.9, 29))
    assert bar.value() == bar.maximum()


def test_a_final_where_the_stream_wrote_nothing_is_its_own_paragraph(view):
    _stream_into(view, 2)
    view.replace_chars(4, 0, _chars("你好", 0.9, start=1.5))
    assert view.toPlainText().split("\n") == ["今天天气", "你好", "今天天气", "很好吗"]
    assert "".join(c.text for c in view.chars) == "今天天气你好今天天气很好"


# ---- the window, with a fake two-pass stream ------------------------------------------


@dataclass
class _Update:
    committed: tuple
    tail: tuple
    segment: Segment | None = None


class _FakeTwoPass:
    """First push: 今天天气 streamed and closed by a pause, then its final 今天天晴 (one
    doubtful character made sure); finish: 很好 streamed and closed, its final 很好啊."""

    gives_finals = True

    def __init__(self) -> None:
        self.pushes = 0

    def push(self, samples):
        self.pushes += 1
        if self.pushes != 1:
            return []
        streamed = _segment(0, "今天天气", 0.3, 0.0)
        return [
            _Update(streamed.chars, _chars("很", 0.5, 1.0), streamed),
            SegmentFinal(_segment(0, "今天天晴", 0.9, 0.0), replaces=4),
            _Update(_chars("很好", 0.9, 1.0), ()),
        ]

    def finish(self):
        streamed = _segment(1, "很好", 0.9, 1.0)
        return [_Update((), (), streamed), SegmentFinal(_segment(1, "很好啊", 0.9, 1.0), 2)]

    def reset(self):
        self.pushes = 0


def test_the_window_shows_finals_and_saves_them(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr("app.demo.whisper_model_dir", lambda: None)
    engine = Engine(
        load_model=lambda source, tqdm: object(),
        transcriber=lambda model: object(),
        streamer=lambda t: _FakeTwoPass(),
        recorder=recorder_factory(signal=tone(1.0), realtime=0.1),
        list_devices=lambda: [FakeDevice("Mic A")],
        find_unfinished=lambda folder: [],
        recover=lambda path: path,
        # the texts as the fake makes them, where the app punctuates live finals
        **({"punctuator": lambda: None} if "punctuator" in Engine.__dataclass_fields__ else {}),
    )
    store = settings.open_settings(tmp_path / "settings.ini")
    store.setValue("recordings_dir", str(tmp_path / "recordings"))
    with Store(tmp_path / "library.db") as library:
        window = build_window(store, engine, library=library, player=FakePlayer())
        qtbot.addWidget(window)
        window.show()
        emitted(qtbot, window.worker.model_loaded, window.start, 10_000)
        ready = []
        window.transcript_ready.connect(lambda *args: ready.append(args))
        window.record_action.trigger()
        qtbot.waitUntil(lambda: "今天天晴" in window.transcript.toPlainText(), timeout=5000)
        assert window.transcript.toPlainText() == "今天天晴\n很好"
        assert _color(window.transcript, 3) == BAND_COLORS["high"]  # the final's confidence
        # Back to the live view (its button, or from a file's): the segment still open was
        # lost, and the final after it raised in the view (IndexError)
        window.show_document(LIVE)
        assert window.transcript.toPlainText() == "今天天晴\n很好"
        assert "".join(c.text for c in window.transcript.chars) == "今天天晴很好"
        window.stop_action.trigger()
        qtbot.waitUntil(lambda: len(ready) == 1, timeout=10_000)
        assert [s.text for s in ready[0][1]] == ["今天天晴", "很好啊"]
        assert window.documents[LIVE].finals == 2
        assert window.transcript.toPlainText() == "今天天晴\n很好啊\n"
        window.close()


def test_a_final_that_removes_its_text_leaves_the_punctuation_context(qtbot):
    """A final with no characters (the stream's text was written into silence) is not the
    context the next final is punctuated after: the segment before it is."""
    from app.worker import EngineWorker

    class Punctuator:
        def __init__(self) -> None:
            self.before: list = []

        def punctuate_one(self, segment, before, after):
            self.before.append(before)
            return segment

    worker = EngineWorker(Engine())
    worker._punctuation_model = punctuator = Punctuator()
    first, second = _segment(0, "你好", 0.9, 0.0), _segment(2, "走吧", 0.9, 9.0)
    empty = Segment(1, 0.3, 8.0, ())
    finals = [
        SegmentFinal(first, 2, 1.0),
        SegmentFinal(empty, 1, 8.0),
        SegmentFinal(second, 2, 9.5),
    ]
    shown: list = []
    worker.final.connect(shown.append)
    worker._stream_call(SimpleNamespace(finish=lambda: finals), "finish")
    assert [f.segment for f in shown] == [first, empty, second]
    assert punctuator.before == [None, first]


def test_a_recording_keeps_the_segments_its_file_transcript_has(
    qtbot, tmp_path, monkeypatch, tiny_model_dir, shared_audio
):
    """The real two-pass stream (tiny model) behind the window: 16 s of speech with no pause,
    a pause, 3 s more. The view, the transcript handed on and the library hold the segments
    the file path gives the saved recording (the first stretch cut at 12 s), times and text;
    the recording was one 16 s segment (one subtitle cue) and a 3 s one."""
    from engine.audio import load_audio
    from engine.transcribe import TranscribeOptions

    monkeypatch.setattr("app.demo.whisper_model_dir", lambda: None)
    long = load_audio(shared_audio / "mossttsd_pod_f_enhanced.wav")  # 16.35 s, no pause
    clip = load_audio(shared_audio / "aishell1_BAC009S0724W0121.wav")[:48_000]
    # 16-bit samples, as the clips are: the saved recording holds the very samples streamed
    speech = np.concatenate([long, np.zeros(16_000, np.float32), clip])
    recorder = recorder_factory(signal=speech)
    engine = Engine(
        recorder=recorder,
        list_devices=lambda: [FakeDevice("Mic A")],
        find_unfinished=lambda folder: [],
        recover=lambda path: path,
        punctuator=lambda: None,
    )
    store = settings.open_settings(tmp_path / "settings.ini")
    prefs = settings.Preferences(
        model=str(tiny_model_dir), model_chosen=True, recordings_dir=str(tmp_path / "rec")
    )
    settings.save(store, prefs)
    with Store(tmp_path / "library.db") as library:
        window = build_window(store, engine, library=library, player=FakePlayer())
        qtbot.addWidget(window)
        window.show()
        emitted(qtbot, window.worker.model_loaded, window.start)
        ready = []
        window.transcript_ready.connect(lambda *args: ready.append(args))
        window.record_action.trigger()
        qtbot.waitUntil(lambda: bool(recorder.made) and recorder.made[-1].fed(), timeout=60_000)
        window.stop_action.trigger()
        qtbot.waitUntil(lambda: len(ready) == 1, timeout=120_000)
        path, kept = ready[0][:2]
        worker = window.worker
        options = TranscribeOptions(**worker._usable_decoding())
        items, _ = worker._transcriber.transcribe(path, options)
        expected = [(s.start, s.end, s.text) for s in items if isinstance(s, Segment)]
        assert len(expected) == 3, "the scenario: 16 s cut at 12 s, then the clip"
        assert [(s.start, s.end, s.text) for s in kept] == expected
        tid = library.list_transcripts()[0].id
        assert [(s.start, s.end, s.text) for s in library.segments(tid)] == expected
        assert window.transcript.toPlainText().split("\n") == [t for *_, t in expected] + [""]
        window.close()
