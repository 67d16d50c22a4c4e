"""Domain text, hotwords and the beam-search switch in the app (Model → Language model):
remembered in the preferences, sent through the worker to the TranscribeOptions of files and
live finals, read in the worker's thread, a bad file told once (naming it) while transcription
goes on without it, a real domain text reaching the engine's beam search, and the menu greyed
out for Whisper."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from app_fakes import FakeDevice, FakePlayer, emitted, recorder_factory, tone

from app import settings
from app.i18n import set_language
from app.main import build_window
from app.worker import Decoding, Engine, EngineWorker
from engine.library.store import Store
from engine.lm import describe_decoder, read_hotwords
from engine.registry import WHISPER
from engine.results import Char, Progress, Segment, TranscriptionInfo
from engine.transcribe import TranscribeOptions
from engine.twopass import FINAL_OPTIONS
from engine.vad import PauseOptions


@pytest.fixture(autouse=True)
def _chinese_ui_after_each_test(monkeypatch, tmp_path):
    monkeypatch.setattr("app.demo.whisper_model_dir", lambda: None)
    monkeypatch.setenv("TINGXIE_LM_CACHE", str(tmp_path / "lm-cache"))
    yield
    set_language("zh")


# ---- stand-ins: a CTC transcriber as far as the worker reads it ---------------------------


@dataclass
class _Transcriber:
    """Records the options of each transcription and each beam-search build (and the thread
    it ran on); builds the way engine.transcribe does as far as errors go: reads the hotword
    list (engine.lm.read_hotwords raises LmError for a bad line)."""

    calls: list = field(default_factory=list)
    built: list = field(default_factory=list)

    def beam_decoder(self, options=None):
        self.built.append((options, threading.current_thread()))
        if options is not None and options.decoder != "greedy" and options.hotwords:
            read_hotwords(options.hotwords)
        return None

    def transcribe(self, path, options=None):
        self.calls.append((path, options))
        info = TranscriptionInfo(path, 1.0, 16_000, "fake", "cpu", "fp32", "eager", "max_prob")
        chars = (Char("好", 0.1, 0.2, 0.9),)
        return iter([Segment(0, 0.1, 0.2, chars), Progress(1.0, 1.0)]), info


class _Streamer:
    """A two-pass streamer as far as the worker reads it: finals decoded with final_options."""

    gives_finals = True

    def __init__(self) -> None:
        self.final_options = FINAL_OPTIONS

    def push(self, samples):
        return []

    def finish(self):
        return []

    def reset(self):
        pass


def _engine(transcriber, streamer, family=None) -> Engine:
    model = SimpleNamespace(family=family, device="cpu", dtype="float32")
    return Engine(
        load_model=lambda source, tqdm: model,
        transcriber=lambda m: transcriber,
        streamer=lambda t: streamer,
        recorder=recorder_factory(signal=tone(0.3)),
        list_devices=lambda: [FakeDevice("Mic A")],
        find_unfinished=lambda folder: [],
        recover=lambda path: path,
        punctuator=lambda: None,
    )


@pytest.fixture
def pick(monkeypatch):
    """What the file dialog answers next (a path, or "" for Cancel), and what it was asked."""
    answers: list[str] = []
    asked: list[str] = []

    def dialog(parent, title, start, filters, *args, **kwargs):
        asked.append(title)
        return answers.pop(0), ""

    monkeypatch.setattr("app.decoding.QFileDialog.getOpenFileName", dialog)
    return SimpleNamespace(answers=answers, asked=asked)


@pytest.fixture
def make_window(qtbot, tmp_path, dialogs):
    library = Store(tmp_path / "data" / "library.db")
    ini = tmp_path / "settings.ini"

    def make(engine: Engine):
        qs = settings.open_settings(ini)
        qs.setValue("recordings_dir", str(tmp_path / "recordings"))
        window = build_window(qs, engine, library=library, player=FakePlayer())
        qtbot.addWidget(window)
        window.show()
        emitted(qtbot, window.worker.model_loaded, window.start, 10_000)
        qtbot.waitUntil(lambda: window.model is not None, timeout=5_000)
        return window

    yield make
    library.close()


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _transcribe_file(qtbot, window, path: str) -> list:
    ready = []
    window.transcript_ready.connect(lambda *args: ready.append(args))
    window.add_files([path])
    qtbot.waitUntil(lambda: bool(ready), timeout=10_000)
    return ready[0][1]


# ---- the menu, the preferences, the worker ------------------------------------------------


def test_chosen_files_are_shown_remembered_and_reach_files_and_live_finals(
    qtbot, make_window, pick, tmp_path, dialogs
):
    transcriber, streamer = _Transcriber(), _Streamer()
    window = make_window(_engine(transcriber, streamer))
    menu = window.decoding_menu
    assert menu.menuAction() in window.model_menu.actions()
    choose_text = menu.choose_actions["domain_text"]
    assert menu.search_action.isChecked() and not choose_text.isChecked()
    assert choose_text.text() == "领域文本…" and not menu.clear_actions["domain_text"].isVisible()

    domain = _write(tmp_path / "cardiology.txt", "张医生查看心电图\n阿莫西林每日三次\n")
    hotwords = _write(tmp_path / "terms.txt", "阿莫西林\t4\n心电图\n")
    pick.answers += [domain, hotwords]
    choose_text.trigger()
    menu.choose_actions["hotwords"].trigger()
    assert pick.asked == ["选择领域文本", "选择热词列表"]
    assert (window.prefs.domain_text, window.prefs.hotwords) == (domain, hotwords)
    assert choose_text.isChecked() and choose_text.text() == "领域文本：cardiology.txt…"
    assert choose_text.toolTip() == domain
    assert menu.choose_actions["hotwords"].text() == "热词：terms.txt…"

    # The worker checks the choice in its thread (building the beam search), not the UI's.
    want = Decoding("auto", domain, hotwords)
    qtbot.waitUntil(lambda: window.worker._decoding == want, timeout=5_000)
    qtbot.waitUntil(lambda: streamer.final_options.hotwords == hotwords, timeout=5_000)
    options, thread = transcriber.built[-1]
    assert (options.domain_text, options.hotwords) == (domain, hotwords)
    assert thread is not threading.main_thread()
    # Live finals keep their own settings (the energy detector) with the user's decoding.
    final = streamer.final_options
    assert final.domain_text == domain and final.decoder == "auto"
    assert final.pauses == PauseOptions(vad="energy")

    _transcribe_file(qtbot, window, "/data/visit.wav")
    path, options = transcriber.calls[-1]
    assert path == "/data/visit.wav"
    assert (options.decoder, options.domain_text, options.hotwords) == ("auto", domain, hotwords)
    assert options.pauses == TranscribeOptions().pauses  # a file's own defaults otherwise

    # Cancel keeps the file; Clear drops it; greedy turns the search (and the files) off.
    pick.answers.append("")
    choose_text.trigger()
    assert window.prefs.domain_text == domain and choose_text.isChecked()
    menu.clear_actions["domain_text"].trigger()
    assert window.prefs.domain_text == "" and not choose_text.isChecked()
    menu.search_action.trigger()  # unchecks it
    assert window.prefs.decoder == "greedy"
    assert not menu.choose_actions["hotwords"].isEnabled()
    assert "使用语言模型" in menu.choose_actions["hotwords"].toolTip()
    qtbot.waitUntil(lambda: streamer.final_options.decoder == "greedy", timeout=5_000)
    _transcribe_file(qtbot, window, "/data/greedy.wav")
    options = transcriber.calls[-1][1]
    assert (options.decoder, options.domain_text, options.hotwords) == ("greedy", None, hotwords)
    assert dialogs == []
    window.close()

    again = settings.load(settings.open_settings(tmp_path / "settings.ini"))
    assert (again.decoder, again.domain_text, again.hotwords) == ("greedy", "", hotwords)


def test_the_remembered_choice_is_sent_before_the_model_loads(qtbot, make_window, tmp_path):
    hotwords = _write(tmp_path / "terms.txt", "心电图\n")
    qs = settings.open_settings(tmp_path / "settings.ini")
    qs.setValue("hotwords", hotwords)
    qs.sync()
    transcriber, streamer = _Transcriber(), _Streamer()
    window = make_window(_engine(transcriber, streamer))
    assert window.decoding_menu.choose_actions["hotwords"].text() == "热词：terms.txt…"
    qtbot.waitUntil(lambda: streamer.final_options.hotwords == hotwords, timeout=5_000)
    window.close()


def test_a_bad_hotword_file_is_told_once_naming_it_and_files_go_on_without_it(
    qtbot, make_window, pick, tmp_path, dialogs
):
    transcriber, streamer = _Transcriber(), _Streamer()
    window = make_window(_engine(transcriber, streamer))
    bad = _write(tmp_path / "bad-terms.txt", "心电图\n阿莫西林\tinf\n")
    pick.answers.append(bad)
    window.decoding_menu.choose_actions["hotwords"].trigger()
    qtbot.waitUntil(lambda: len(dialogs) == 1, timeout=5_000)
    message = dialogs[0]
    assert message.startswith("未使用热词：")
    assert bad in message and "第 2 行" in message  # the file, the line
    assert "模型 → 语言模型" in message  # what to do in the app
    assert window.prefs.hotwords == bad  # kept: the user may fix the file

    segments = _transcribe_file(qtbot, window, "/data/a.wav")
    assert "".join(c.text for s in segments for c in s.chars) == "好"  # transcribed all the same
    assert transcriber.calls[-1][1].hotwords is None  # without the bad list
    assert streamer.final_options.hotwords is None
    _transcribe_file(qtbot, window, "/data/b.wav")
    assert len(dialogs) == 1  # told once, not per file

    window.set_language("en")
    window.decoding_menu.clear_actions["hotwords"].trigger()
    _write(Path(bad), "心电图\tnan\n")
    pick.answers.append(bad)
    window.decoding_menu.choose_actions["hotwords"].trigger()  # chosen again: told again
    qtbot.waitUntil(lambda: len(dialogs) == 2, timeout=5_000)
    assert dialogs[1].startswith("The hotwords are not used:") and bad in dialogs[1]
    window.close()


def test_whisper_greys_the_menu_out_and_gets_no_decoding_options(qtbot, make_window, tmp_path):
    class _WhisperTranscriber:  # no beam search (engine.whisper.WhisperTranscriber)
        def __init__(self) -> None:
            self.calls: list = []

        def transcribe(self, path, *args):
            self.calls.append(args)
            info = TranscriptionInfo(path, 1.0, 16_000, "w", "cpu", "int8", "", "")
            return iter([Progress(1.0, 1.0)]), info

    qs = settings.open_settings(tmp_path / "settings.ini")
    qs.setValue("domain_text", _write(tmp_path / "d.txt", "心电图\n"))
    qs.sync()
    whisper = _WhisperTranscriber()
    window = make_window(_engine(whisper, SimpleNamespace(), family=WHISPER))
    menu = window.decoding_menu
    assert not menu.menuAction().isEnabled()
    assert "Whisper" in menu.menuAction().toolTip()
    for act in (menu.search_action, *menu.choose_actions.values()):
        assert not act.isEnabled() and "Whisper" in act.toolTip()
    _transcribe_file(qtbot, window, "/data/w.wav")
    assert whisper.calls == [()]  # its own options: nothing of the CTC decoder
    window.close()


def test_a_ctc_model_enables_the_menu(qtbot, make_window):
    window = make_window(_engine(_Transcriber(), _Streamer()))
    menu = window.decoding_menu
    assert menu.menuAction().isEnabled() and menu.search_action.isEnabled()
    assert all(a.isEnabled() for a in menu.choose_actions.values())
    window.close()


# ---- the real engine: a domain text through the worker reaches the beam search -----------


def _real_engine() -> Engine:
    from engine.loader import load_model
    from engine.model import LoadOptions

    return Engine(
        load_model=lambda source, tqdm: load_model(source, LoadOptions(device="cpu")),
        punctuator=lambda: None,
    )


def _run_file(qtbot, worker: EngineWorker, path: str) -> list[Segment]:
    segments: list[Segment] = []
    done: list = []
    worker.file_segment.connect(lambda _job, seg: segments.append(seg))
    worker.file_done.connect(lambda *args: done.append(args))
    worker.file_failed.connect(lambda *args: done.append(args))
    worker.enqueue_file(1, path)
    qtbot.waitUntil(lambda: bool(done), timeout=60_000)
    assert len(done[0]) == 2 and not isinstance(done[0][1], Exception), done
    return segments


def _chars(segments) -> list:
    return [c for s in segments for c in s.chars]


def test_a_domain_text_reaches_the_engines_beam_search(
    qtbot, tiny_with_lm, noise_and_domain_text, tmp_path
):
    audio, domain_file = noise_and_domain_text
    domain = str(domain_file)
    empty = _write(tmp_path / "empty.txt", "\n  \n")

    worker = EngineWorker(_real_engine())
    failed: list = []
    worker.decoding_failed.connect(lambda part, e: failed.append((part, e)))
    worker.load_model(str(tiny_with_lm))
    transcriber = worker._transcriber
    assert describe_decoder(transcriber.beam_decoder()).startswith("beam search, 2-gram LM")

    worker.set_decoding(Decoding(domain_text=domain))
    assert failed == []
    options = TranscribeOptions(domain_text=domain)
    assert "mixed with a domain model" in describe_decoder(transcriber.beam_decoder(options))
    assert worker._streamer.final_options.domain_text == domain
    got = _run_file(qtbot, worker, str(audio))
    items, _ = transcriber.transcribe(str(audio), options)
    assert _chars(got) == _chars(s for s in items if isinstance(s, Segment))
    items, _ = transcriber.transcribe(str(audio))  # the model's LM alone reads it otherwise
    plain = _chars(s for s in items if isinstance(s, Segment))
    assert plain and _chars(got) != plain

    # An empty domain text: told (naming the file), and the file decoded with the model's LM.
    worker.set_decoding(Decoding(domain_text=empty))
    ((part, error),) = failed
    assert part == "domain_text" and error.code == "lm.domain_empty" and empty in str(error)
    assert worker._streamer.final_options.domain_text is None
    assert _chars(_run_file(qtbot, worker, str(audio))) == plain
    worker.set_decoding(Decoding(decoder="greedy", domain_text=empty))
    assert len(failed) == 1  # greedy reads no domain text


def test_a_domain_text_with_no_character_the_model_writes_drops_only_the_domain_text():
    """lm.domain_unusable (English notes, pinyin) was taken for a failure of the model's own
    language model, and the app fell back to greedy decoding."""
    from app.worker import _failed_part
    from engine.lm import LmError

    assert _failed_part(LmError("lm.domain_unusable", path="notes.txt")) == "domain_text"
