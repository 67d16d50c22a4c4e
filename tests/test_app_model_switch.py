"""Switching models and runtimes in the window: Model → Runtime applies to the model asked for
last and is undone when that model cannot run on it; a stand-in's reason (the default model
missing on a first start) belongs to the stand-in only; what Whisper ignores is greyed out."""

from __future__ import annotations

import threading
from dataclasses import replace
from types import SimpleNamespace

import pytest
from app_fakes import FakePlayer, emitted
from PySide6.QtCore import QCoreApplication

from app import settings
from app.errors import error_text
from app.i18n import STRINGS, set_language, tr
from app.main import build_window
from app.worker import Engine
from engine.errors import MESSAGES
from engine.model import ModelLoadError
from engine.registry import WHISPER

CLI_WAY_OUT = "use the torch backend"  # the CLI's way out, not the app's


@pytest.fixture(autouse=True)
def _english_ui_then_chinese():
    set_language("en")
    yield
    set_language("zh")


@pytest.fixture
def make_window(qtbot, tmp_path, dialogs):
    """A window on the settings file of this test, with `engine`; `prefs` saved before."""
    ini = tmp_path / "settings.ini"
    windows = []

    def make(engine: Engine, **prefs):
        store = settings.open_settings(ini)
        saved = replace(settings.load(store), language="en", **prefs)
        settings.save(store, saved)
        store.setValue("recordings_dir", str(tmp_path / "recordings"))
        from engine.library.store import Store

        library = Store(tmp_path / f"library-{len(windows)}.db")
        window = build_window(store, engine, library=library, player=FakePlayer())
        qtbot.addWidget(window)
        window.show()
        windows.append((window, library))
        return window

    yield make
    for window, library in windows:
        window.handle.stop()
        library.close()


def _engine(load) -> Engine:
    """An engine whose loads are `load(source, engine.backend)`; transcribing is never asked."""
    engine = Engine(
        transcriber=lambda model: object(),
        streamer=lambda transcriber: object(),
        list_devices=lambda: [],
        find_unfinished=lambda folder: [],
        recover=lambda path: path,
        punctuator=lambda: None,
    )
    engine.load_model = lambda source, tqdm: load(source, engine.backend)
    return engine


def _model(family=None):
    return SimpleNamespace(family=family, device="cpu", dtype="float32")


def _checked(window) -> list[str]:
    return [code for code, act in window.backend_actions.items() if act.isChecked()]


def _settle(qtbot, ms: int = 200) -> None:
    """Let queued worker signals arrive (a load that should not happen would by then)."""
    qtbot.wait(ms)
    QCoreApplication.processEvents()


# ---- 1. a runtime the model cannot use ------------------------------------------------------
def test_a_runtime_the_demo_cannot_use_is_undone_and_the_demo_stays(
    qtbot, make_window, dialogs, tmp_path
):
    """The real demo model (no model.onnx), ONNX Runtime chosen. Old: the menu stayed on ONNX,
    prefs.backend "onnx" was saved (the next start loaded nothing), the dialog said "use the
    torch backend"."""
    from app.demo import demo_model_dir

    demo = demo_model_dir()
    if demo is None:
        pytest.skip("the demo model is not built")
    window = make_window(Engine(list_devices=lambda: [], punctuator=lambda: None), model=demo,
                         model_chosen=True)  # fmt: skip
    emitted(qtbot, window.worker.model_loaded, window.start, 120_000)
    qtbot.waitUntil(lambda: window.model is not None)
    failed = emitted(
        qtbot, window.worker.model_failed, window.backend_actions["onnx"].trigger, 120_000
    )
    assert failed[0].code == "model.no_onnx"
    qtbot.waitUntil(lambda: len(dialogs) == 1)
    assert _checked(window) == ["auto"] and window.prefs.backend == "auto"
    # the next load is not on ONNX either (told to the worker through its queue)
    qtbot.waitUntil(lambda: window.worker.engine.backend == "auto", timeout=5_000)
    assert window.model is not None and window.model.source == demo  # still in use
    assert window.worker.model is not None
    text = dialogs[0]
    assert "Model → Runtime" in text and CLI_WAY_OUT not in text
    assert tr("backend.onnx") in text and tr("backend.auto") in text
    assert settings.load(settings.open_settings(tmp_path / "settings.ini")).backend == "auto"


def test_a_failed_runtime_switch_keeps_the_model_and_the_next_start_loads(
    qtbot, make_window, dialogs
):
    """With a model that cannot run on ONNX: the menu and the saved preference go back, the
    model in use stays, and a new window (the next start) loads the model again."""
    tried = []

    def load(source, backend):
        tried.append((source, backend))
        if backend == "onnx":
            raise ModelLoadError("model.no_onnx", path=source)
        return _model()

    window = make_window(_engine(load), model="/models/ctc", model_chosen=True, backend="torch")
    emitted(qtbot, window.worker.model_loaded, window.start)
    qtbot.waitUntil(lambda: window.model is not None)
    window.backend_actions["onnx"].trigger()
    qtbot.waitUntil(lambda: len(dialogs) == 1)
    _settle(qtbot)
    assert tried == [("/models/ctc", "torch"), ("/models/ctc", "onnx")]  # no reload after
    assert _checked(window) == ["torch"] and window.prefs.backend == "torch"
    assert window.model.source == "/models/ctc" and not window.banner.isVisible()
    assert "Model → Runtime" in dialogs[0] and CLI_WAY_OUT not in dialogs[0]
    window.close()
    again = make_window(_engine(load))
    emitted(qtbot, again.worker.model_loaded, again.start)
    assert tried[-1] == ("/models/ctc", "torch")


def test_the_app_words_a_missing_model_onnx_for_its_menus():
    """The engine's wording of model.no_onnx is the CLI's ("use the torch backend"): the app
    has its own, naming Model → Runtime, in both languages, with the same fields."""
    error = ModelLoadError("model.no_onnx", path="/models/ctc")
    for lang, runtime in (("en", "Model → Runtime"), ("zh", "模型 → 运行时")):
        set_language(lang)
        text = error_text(error)
        assert runtime in text and "/models/ctc" in text and "torch backend" not in text
    en, zh = STRINGS["app.error.model.no_onnx"]
    assert "{path}" in en and "{path}" in zh and "{path}" in MESSAGES["model.no_onnx"]


def test_an_onnx_export_folder_with_pytorch_chosen_says_which_runtime_to_choose(
    qtbot, make_window, dialogs, tmp_path
):
    """PyTorch chosen, an ONNX-only export folder (model.onnx, no safetensors): old dialog,
    "… no file named model.safetensors, or pytorch_model.bin …" and no way out. The engine
    now says what the folder is (model.onnx_only); the app words the way out in its menus."""
    folder = tmp_path / "export-onnx"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"onnx")
    (folder / "config.json").write_text("{}", encoding="utf-8")

    def load(source, backend):
        if source == str(folder) and backend == "torch":
            raise ModelLoadError("model.onnx_only", path=source)
        return _model()

    window = make_window(_engine(load), model="/models/ctc", model_chosen=True, backend="torch")
    emitted(qtbot, window.worker.model_loaded, window.start)
    qtbot.waitUntil(lambda: window.model is not None)
    window.use_model(str(folder))
    qtbot.waitUntil(lambda: len(dialogs) == 1)
    text = dialogs[0]
    assert "Model → Runtime" in text and tr("backend.onnx") in text
    assert str(folder) in text
    window.backend_actions["onnx"].trigger()  # what it says: the folder asked for loads
    qtbot.waitUntil(lambda: window.model.source == str(folder))


# ---- 2. a runtime change while a model loads -------------------------------------------------
def test_a_runtime_change_while_a_new_model_loads_applies_to_that_model(
    qtbot, make_window, dialogs
):
    """A loaded, B chosen, the runtime changed while B loads. Old: loads A, B, A (the worker
    ended on A while the preferences said B)."""
    gate = threading.Event()
    tried = []

    def load(source, backend):
        tried.append((source, backend))
        if source == "/models/b" and len(tried) == 2:
            gate.wait(10)  # B takes a while
        return _model()

    window = make_window(_engine(load), model="/models/a", model_chosen=True)
    emitted(qtbot, window.worker.model_loaded, window.start)
    qtbot.waitUntil(lambda: window.model is not None)
    window.use_model("/models/b")
    qtbot.waitUntil(lambda: len(tried) == 2)
    window.backend_actions["torch"].trigger()
    gate.set()
    qtbot.waitUntil(lambda: len(tried) == 3, timeout=10_000)
    _settle(qtbot, 300)
    assert tried == [("/models/a", "auto"), ("/models/b", "auto"), ("/models/b", "torch")]
    assert window.worker.model is not None and window.model.source == "/models/b"
    assert window.prefs.model == "/models/b" and window.prefs.backend == "torch"


def test_a_runtime_change_during_the_start_load_applies_to_it(qtbot, make_window, dialogs):
    """Old: during the start's load (no model yet) the choice was saved and nothing reloaded."""
    gate = threading.Event()
    tried = []

    def load(source, backend):
        tried.append((source, backend))
        if len(tried) == 1:
            gate.wait(10)
        return _model()

    window = make_window(_engine(load), model="/models/a", model_chosen=True)
    window.start()
    qtbot.waitUntil(lambda: len(tried) == 1)
    window.backend_actions["torch"].trigger()
    gate.set()
    qtbot.waitUntil(lambda: len(tried) == 2, timeout=10_000)
    _settle(qtbot, 300)
    assert tried == [("/models/a", "auto"), ("/models/a", "torch")]
    assert window.model.source == "/models/a" and _checked(window) == ["torch"]


def test_a_runtime_change_with_nothing_asked_for_waits_for_the_first_load(
    qtbot, make_window, dialogs
):
    tried = []

    def load(source, backend):
        tried.append((source, backend))
        return _model()

    window = make_window(_engine(load), model="/models/a", model_chosen=True)
    window.backend_actions["onnx"].trigger()  # before start: nothing to reload
    _settle(qtbot)
    assert tried == []
    emitted(qtbot, window.worker.model_loaded, window.start)
    _settle(qtbot)
    assert tried == [("/models/a", "onnx")]


# ---- 3. and 4. the reason a stand-in opened --------------------------------------------------
def _first_start(monkeypatch, tmp_path, whisper_loads: bool):
    """An offline first start: the default model is not cached; Whisper-base stands in (or
    fails too). Returns the loader, what it was asked for, and the user's own folder."""
    whisper, mine = str(tmp_path / "whisper-base"), str(tmp_path / "my-model")
    monkeypatch.setattr("app.demo.whisper_model_dir", lambda: whisper)
    monkeypatch.setattr("app.demo.demo_model_dir", lambda: None)
    tried = []

    def load(source, backend):
        tried.append((source, backend))
        if source == mine or (source == whisper and whisper_loads):
            return _model()
        if source == whisper:
            raise ModelLoadError("model.whisper_load_failed", path=whisper, detail="damaged")
        raise ModelLoadError(
            "model.not_cached", source=source, detail="LocalEntryNotFoundError", cache="/hf/hub"
        )

    return load, tried, whisper, mine


def test_a_model_chosen_after_a_failed_stand_in_is_not_called_a_stand_in(
    qtbot, make_window, dialogs, monkeypatch, tmp_path
):
    """Old: the default's reason stayed from the failed stand-in and the user's own folder
    got "… not in the Hugging Face cache … Tingxie opened … instead … Keep it"."""
    load, tried, whisper, mine = _first_start(monkeypatch, tmp_path, whisper_loads=False)
    window = make_window(_engine(load))
    window.start()
    qtbot.waitUntil(lambda: len(dialogs) == 1)  # the stand-in failed too
    assert [source for source, _ in tried][1:] == [whisper]
    window.use_model(mine)
    qtbot.waitUntil(lambda: window.model is not None)
    _settle(qtbot)
    assert not window.banner.isVisible() and not window.banner.keep_button.isVisible()
    # hidden, it holds the failure of the stand-in (with the default's reason), not "… instead"
    assert "instead" not in window.banner.text()


def test_the_keep_banner_stays_through_a_runtime_change(
    qtbot, make_window, dialogs, monkeypatch, tmp_path
):
    """Old: the reload for the new runtime hid the banner for the session, the stand-in still
    not kept (the next start tried the missing default again)."""
    load, tried, whisper, _mine = _first_start(monkeypatch, tmp_path, whisper_loads=True)
    window = make_window(_engine(load))
    window.start()
    qtbot.waitUntil(lambda: window.model is not None)
    banner = window.banner
    assert banner.isVisible() and banner.keep_button.isVisible()
    before = banner.text()
    window.backend_actions["torch"].trigger()
    qtbot.waitUntil(lambda: len(tried) == 3)
    _settle(qtbot)
    assert tried[-1] == (whisper, "torch")
    assert banner.isVisible() and banner.keep_button.isVisible() and banner.text() == before
    assert dialogs == []
    banner.keep_button.click()  # kept: a runtime change no longer brings the banner back
    assert not banner.isVisible() and window.prefs.model_chosen
    window.backend_actions["auto"].trigger()
    qtbot.waitUntil(lambda: len(tried) == 4)
    _settle(qtbot)
    assert not banner.isVisible()


# ---- 5. and 6. what Whisper ignores ----------------------------------------------------------
def test_whisper_greys_out_the_runtime_and_punctuation_saying_why(qtbot, make_window, dialogs):
    """Old: both stayed enabled with Whisper loaded, and did nothing (Whisper runs on
    CTranslate2 and writes its own punctuation); ONNX Runtime chosen there was saved and broke
    the next switch to a CTC folder."""
    families = {"Systran/faster-whisper-base": WHISPER}

    def load(source, backend):
        return _model(families.get(source))

    window = make_window(_engine(load), model="Systran/faster-whisper-base", model_chosen=True)
    runtime, punctuation = window.backend_menu.menuAction(), window.punctuation_action
    assert runtime.isEnabled() and punctuation.isEnabled()  # no model yet: nothing greyed
    emitted(qtbot, window.worker.model_loaded, window.start)
    qtbot.waitUntil(lambda: window.model is not None)
    assert not runtime.isEnabled() and not punctuation.isEnabled()
    assert runtime.toolTip() == tr("feature.runtime", family="Whisper")
    assert "Whisper" in runtime.toolTip() and "Model → Runtime" in runtime.toolTip()
    assert punctuation.toolTip() == tr("feature.punctuation", family="Whisper")
    assert "own punctuation" in punctuation.toolTip()
    assert window.model_menu.toolTipsVisible()
    window.set_language("zh")  # the reasons follow the language
    assert "Whisper" in runtime.toolTip() and "运行时" in runtime.toolTip()
    assert "标点" in punctuation.toolTip()
    window.set_language("en")
    emitted(qtbot, window.worker.model_loaded, lambda: window.use_model("/models/ctc"))
    qtbot.waitUntil(lambda: window.model.source == "/models/ctc")
    assert runtime.isEnabled() and punctuation.isEnabled()
    assert "Whisper" not in runtime.toolTip() and "Whisper" not in punctuation.toolTip()


def test_a_whisper_model_reports_its_own_runtime(tmp_path):
    """engine.whisper's LoadedWhisper says it runs on CTranslate2 (the app's ModelSummary
    shows the loaded model's runtime), whatever LoadOptions.backend asked for."""
    from engine.whisper import LoadedWhisper

    loaded = LoadedWhisper(model=None, source="x", path=tmp_path, device="cpu",
                           compute_type="float32")  # fmt: skip
    assert loaded.runtime == "ctranslate2"


def test_a_runtime_change_during_an_offline_first_start_still_opens_the_stand_in(
    qtbot, make_window, dialogs, monkeypatch, tmp_path
):
    """The default missing, the runtime changed while it was tried: its reload on the new
    runtime fails the same way and opens the stand-in, with no dialog and the runtime kept."""
    base, tried, whisper, _mine = _first_start(monkeypatch, tmp_path, whisper_loads=True)
    gate = threading.Event()

    def load(source, backend):
        if not tried:
            gate.wait(10)
        return base(source, backend)

    window = make_window(_engine(load))
    window.start()
    window.backend_actions["torch"].trigger()
    gate.set()
    qtbot.waitUntil(lambda: window.model is not None, timeout=10_000)
    _settle(qtbot)
    assert [backend for _, backend in tried] == ["auto", "torch", "torch"]
    assert tried[-1][0] == whisper and dialogs == []
    assert window.prefs.backend == "torch" and window.banner.keep_button.isVisible()


def test_a_runtime_change_after_a_failed_load_tries_that_model_and_goes_back_if_it_fails(
    qtbot, make_window, dialogs
):
    """Nothing in use (the chosen model failed at start): the runtime change tries that model
    again; failing on it too, the runtime goes back and the banner and a dialog say so."""
    tried = []

    def load(source, backend):
        tried.append((source, backend))
        raise ModelLoadError("model.no_onnx", path=source)

    window = make_window(_engine(load), model="/models/x", model_chosen=True)
    window.start()
    qtbot.waitUntil(lambda: len(dialogs) == 1)
    window.backend_actions["onnx"].trigger()
    qtbot.waitUntil(lambda: len(dialogs) == 2)
    _settle(qtbot)
    assert tried == [("/models/x", "auto"), ("/models/x", "onnx")]
    assert _checked(window) == ["auto"] and window.prefs.backend == "auto"
    assert "Model → Runtime is back on" in dialogs[1] and window.model is None
    assert "Model → Runtime is back on" in window.banner.text()
