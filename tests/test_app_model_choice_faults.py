"""A model choice that fails: what is remembered for the next start, and which ways out the
window offers (never the one that just failed; Whisper-base first for real voices, then the
synthetic-speech demo)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import test_app_model_switch
from app_fakes import emitted
from PySide6.QtCore import QCoreApplication
from test_app_model_switch import _engine
from test_app_window import _dialog_seeing

from app import demo as demo_model
from app import settings
from app.i18n import tr
from engine.model import ModelLoadError

# The model-switch tests' fixtures, shared rather than copied (bound by name).
_english_ui_then_chinese = test_app_model_switch._english_ui_then_chinese
make_window = test_app_model_switch.make_window

GOOD, TYPO = "/models/good", "/models/typo"
# What the ways out add where the demo is left out for ONNX Runtime alone (English UI).
_DEMO_RUNTIME = (
    "The demo model shipped with Tingxie has no model.onnx, so it does not run on ONNX Runtime: "
    "set Model → Runtime to “Automatic (chosen for this computer)” to use it."
)


@pytest.fixture
def shipped(monkeypatch, tmp_path):
    """The demo (no model.onnx, as shipped) and Whisper-base as folders of this test; set
    `present` to hide either."""
    demo, whisper = tmp_path / "demo", tmp_path / "whisper-base"
    demo.mkdir()
    whisper.mkdir()
    present = {"demo": True, "whisper": True}
    monkeypatch.setattr(
        demo_model, "demo_model_dir", lambda: str(demo) if present["demo"] else None
    )
    monkeypatch.setattr(
        demo_model, "whisper_model_dir", lambda: str(whisper) if present["whisper"] else None
    )
    return SimpleNamespace(demo=str(demo), whisper=str(whisper), folder=demo, present=present)


def _loader(*working: str, onnx: tuple[str, ...] = ()):
    """Loads that work for `working` (on any runtime but ONNX Runtime, where only `onnx` runs),
    fail as the engine would for anything else; and the list of (source, runtime) tried."""
    tried: list[tuple[str, str]] = []

    def load(source, backend):
        tried.append((source, backend))
        if backend == "onnx" and source in working and source not in onnx:
            raise ModelLoadError("model.no_onnx", path=source)
        if source in working or source in onnx:
            return SimpleNamespace(device="cpu", dtype="float32")
        if source.startswith("/"):
            raise ModelLoadError("model.folder_missing", path=source)
        raise ModelLoadError(
            "model.not_cached", source=source, detail="LocalEntryNotFoundError", cache="/hf/hub"
        )

    return load, tried


def _stored(tmp_path) -> settings.Preferences:
    """The preferences as the next start reads them from disk."""
    return settings.load(settings.open_settings(tmp_path / "settings.ini"))


def _settle(qtbot, ms: int = 200) -> None:
    """Let queued worker signals arrive (a load that should not happen would by then)."""
    qtbot.wait(ms)
    QCoreApplication.processEvents()


def _offers(window) -> dict[str, bool]:
    banner = window.banner
    return {
        "whisper": banner.whisper_button.isVisible(),
        "demo": banner.demo_button.isVisible(),
        "choose": banner.choose_button.isVisible(),
    }


# ---- 1. a failed choice is not remembered ---------------------------------------------------
def test_a_failed_choice_leaves_the_working_model_for_the_next_start(
    qtbot, make_window, dialogs, monkeypatch, tmp_path, shipped
):
    """Old: use_model saved the failed folder (and "chosen") before the load; the window said
    it transcribed with the good model, the next start opened an error and no model."""
    load, tried = _loader(GOOD)
    window = make_window(_engine(load), model=GOOD, model_chosen=True)
    emitted(qtbot, window.worker.model_loaded, window.start)
    window.use_model(TYPO)
    qtbot.waitUntil(lambda: len(dialogs) == 1)
    assert TYPO in dialogs[0] and window.model.source == GOOD
    assert (window.prefs.model, window.prefs.model_chosen) == (GOOD, True)
    assert (_stored(tmp_path).model, _stored(tmp_path).model_chosen) == (GOOD, True)
    seen = _dialog_seeing(monkeypatch)
    window.model_action.trigger()
    assert seen == [TYPO]  # the failed text, to correct it
    window.close()
    again = make_window(_engine(load))
    assert emitted(qtbot, again.worker.model_loaded, again.start)[0].source == GOOD
    qtbot.waitUntil(lambda: again.model is not None)
    assert len(dialogs) == 1 and tried[-1] == (GOOD, "auto")


def test_a_failed_choice_over_a_stand_in_leaves_it_a_stand_in(
    qtbot, make_window, dialogs, tmp_path, shipped
):
    """First start offline, Whisper-base standing in (not kept), a bad folder chosen. Old: the
    folder was remembered as chosen, so the next start skipped the stand-in and had no model."""
    load, tried = _loader(shipped.whisper)
    window = make_window(_engine(load))
    window.start()
    qtbot.waitUntil(lambda: window.model is not None)
    window.use_model(TYPO)
    qtbot.waitUntil(lambda: len(dialogs) == 1)
    assert (window.prefs.model, window.prefs.model_chosen) == ("", False)
    window.close()
    again = make_window(_engine(load))
    again.start()
    qtbot.waitUntil(lambda: again.model is not None)
    assert again.model.source == shipped.whisper and again.banner.keep_button.isVisible()
    assert [source for source, _ in tried].count(TYPO) == 1 and len(dialogs) == 1


def test_a_choice_is_remembered_once_it_loads_after_a_runtime_change(
    qtbot, make_window, dialogs, tmp_path, shipped
):
    """A folder that fails on ONNX Runtime and loads once Model → Runtime is Auto again: the
    choice rides on that reload and is remembered when it loads."""
    load, _tried = _loader(GOOD, "/models/mine", onnx=(GOOD,))
    window = make_window(_engine(load), model=GOOD, model_chosen=True, backend="onnx")
    emitted(qtbot, window.worker.model_loaded, window.start)
    window.use_model("/models/mine")
    qtbot.waitUntil(lambda: len(dialogs) == 1)
    assert window.prefs.model == GOOD
    window.backend_actions["auto"].trigger()
    qtbot.waitUntil(lambda: window.model.source == "/models/mine")
    assert (_stored(tmp_path).model, _stored(tmp_path).backend) == ("/models/mine", "auto")


# ---- 2. the demo that failed is not offered again ------------------------------------------
def test_the_demo_failing_on_onnx_is_not_offered_again(
    qtbot, make_window, dialogs, tmp_path, shipped
):
    """ONNX Runtime chosen, an ONNX export in use, Model → Use the demo: it has no model.onnx.
    Old: the dialog and banner offered the demo again, and its button failed the same way."""
    shipped.present["whisper"] = False
    load, _tried = _loader(shipped.demo, onnx=("/models/export",))
    window = make_window(_engine(load), model="/models/export", model_chosen=True, backend="onnx")
    emitted(qtbot, window.worker.model_loaded, window.start)
    window.use_demo_model()
    qtbot.waitUntil(lambda: len(dialogs) == 1)
    assert "Model → Runtime" in dialogs[0]  # the engine's way out: the runtime back to Auto
    assert "use the demo model shipped" not in dialogs[0] and "Whisper" not in dialogs[0]
    assert dialogs[0].endswith(tr("dialog.no_demo", message=""))  # said once, by the error
    assert _offers(window) == {"whisper": False, "demo": False, "choose": True}
    assert window.prefs.model == "/models/export"  # and the next start opens what works
    window.backend_actions["auto"].trigger()  # what it says: the demo loads
    qtbot.waitUntil(lambda: window.model.source == shipped.demo)


def test_a_first_start_on_onnx_does_not_try_the_demo_and_says_why(
    qtbot, make_window, dialogs, shipped
):
    """First start offline on ONNX Runtime, no Whisper-base. Old: the demo stood in, failed
    (no model.onnx), and the dialog and banner offered the demo again, the reason the default
    model was missing gone. Now the demo is not tried: the banner says why, no dialog."""
    shipped.present["whisper"] = False
    load, tried = _loader(shipped.demo)
    window = make_window(_engine(load), backend="onnx")
    emitted(qtbot, window.worker.model_failed, window.start)
    qtbot.waitUntil(window.banner.isVisible)
    _settle(qtbot)
    assert len(tried) == 1 and dialogs == []
    text = window.banner.text()
    assert "not in the Hugging Face cache" in text and "use the demo model shipped" not in text
    assert text.endswith(_DEMO_RUNTIME)  # how to have the demo
    assert _offers(window) == {"whisper": False, "demo": False, "choose": True}


def test_a_stand_in_that_fails_keeps_the_reason_and_is_not_offered_again(
    qtbot, make_window, dialogs, shipped
):
    """Whisper-base standing in for the missing default fails too (damaged). Old: the banner
    lost why the default was missing; Whisper-base must not be offered again, the demo is."""
    load, tried = _loader(shipped.demo)
    window = make_window(_engine(load))
    window.start()
    qtbot.waitUntil(lambda: len(dialogs) == 1)
    assert [source for source, _ in tried][1:] == [shipped.whisper]
    text = window.banner.text()
    assert "not in the Hugging Face cache" in text and shipped.whisper in text
    assert text.endswith(tr("dialog.offer_demo", message=""))
    assert _offers(window) == {"whisper": False, "demo": True, "choose": True}


def test_the_demo_is_not_offered_on_a_runtime_it_cannot_run_on(
    qtbot, make_window, dialogs, tmp_path, shipped
):
    """A chosen folder failing on ONNX Runtime: the demo (no model.onnx) is no way out there;
    with a model.onnx it is."""
    shipped.present["whisper"] = False
    load, _tried = _loader()
    window = make_window(_engine(load), model=TYPO, model_chosen=True, backend="onnx")
    window.start()
    qtbot.waitUntil(lambda: len(dialogs) == 1)
    assert (
        "use the demo model shipped" not in dialogs[0] and not window.banner.demo_button.isVisible()
    )
    assert dialogs[0].endswith(_DEMO_RUNTIME) and window.banner.text() == dialogs[0]
    (shipped.folder / "model.onnx").write_bytes(b"onnx")
    window.use_model("/models/other")
    qtbot.waitUntil(lambda: len(dialogs) == 2)
    assert "use the demo model shipped" in dialogs[1] and window.banner.demo_button.isVisible()
    assert "model.onnx" not in dialogs[1]


# ---- 7. Whisper-base first, for real voices ------------------------------------------------
def test_a_failed_choice_offers_whisper_base_first_then_the_demo(
    qtbot, make_window, dialogs, shipped
):
    """Old: only the synthetic-speech demo was offered, with Whisper-base on this computer."""
    load, _tried = _loader(shipped.whisper, shipped.demo)
    window = make_window(_engine(load), model=TYPO, model_chosen=True)
    window.start()
    qtbot.waitUntil(lambda: len(dialogs) == 1)
    text = dialogs[0]
    assert "Whisper-base" in text and "real voices" in text and "synthetic speech" in text
    assert text.index("Whisper-base") < text.index("demo model")
    assert window.banner.text() == text
    assert _offers(window) == {"whisper": True, "demo": True, "choose": True}
    assert window.banner.whisper_button.text() == tr("action.use_whisper")
    window.banner.whisper_button.click()
    qtbot.waitUntil(lambda: window.model is not None)
    assert window.model.source == shipped.whisper and window.prefs.model == shipped.whisper


def test_without_whisper_base_the_demo_is_offered_as_before(qtbot, make_window, dialogs, shipped):
    shipped.present["whisper"] = False
    load, _tried = _loader(shipped.demo)
    window = make_window(_engine(load), model=TYPO, model_chosen=True)
    window.start()
    qtbot.waitUntil(lambda: len(dialogs) == 1)
    assert dialogs[0].endswith(tr("dialog.offer_demo", message=""))  # as before
    assert _offers(window) == {"whisper": False, "demo": True, "choose": True}


def test_whisper_base_that_failed_is_not_offered_again(qtbot, make_window, dialogs, shipped):
    load, _tried = _loader(shipped.demo)
    window = make_window(_engine(load), model=shipped.whisper, model_chosen=True)
    window.start()
    qtbot.waitUntil(lambda: len(dialogs) == 1)
    assert dialogs[0].endswith(tr("dialog.offer_demo", message=""))  # no Whisper-base
    assert _offers(window) == {"whisper": False, "demo": True, "choose": True}


def test_the_ways_out_are_worded_in_both_languages(qtbot, make_window, dialogs, shipped):
    load, _tried = _loader()
    window = make_window(_engine(load), model=TYPO, model_chosen=True)
    window.start()
    qtbot.waitUntil(lambda: len(dialogs) == 1)
    window.set_language("zh")
    QCoreApplication.processEvents()
    assert "Whisper-base" in window.banner.text() and "演示模型" in window.banner.text()
    assert window.banner.whisper_button.text() == tr("action.use_whisper")


def test_a_name_no_folder_can_have_is_named_as_typed_not_a_traceback():
    """Before: the status bar's name of a 100-character model name raised OSError (File name
    too long) and ~nosuchuser/x RuntimeError, printed as tracebacks behind the error dialog."""
    from app.demo import is_demo_model, model_display_name

    long_name = "长" * 100
    assert model_display_name(long_name) == long_name
    assert not is_demo_model(long_name) and not is_demo_model("~nosuchuser/x")
    assert model_display_name("~nosuchuser/x") == "~nosuchuser/x"


def test_a_model_that_loads_with_a_warning_says_it_above_the_transcript(
    qtbot, make_window, dialogs, shipped
):
    """An ONNX export whose parity check failed loads with a warning (engine.model); the
    window said nothing and transcribed with it. The banner says it, with a way to choose
    another model; one without warnings shows no banner."""
    from engine.errors import TingxieError

    detail = "greedy text agreement 97.56 % of characters, under 98 %"
    warned = {GOOD: (TingxieError("model.parity_failed", path=GOOD, detail=detail),)}

    def load(source, backend):
        return SimpleNamespace(device="cpu", dtype="float32", warnings=warned.get(source, ()))

    window = make_window(_engine(load), model=GOOD, model_chosen=True)
    emitted(qtbot, window.worker.model_loaded, window.start)
    qtbot.waitUntil(window.banner.isVisible)
    assert "failed its parity check" in window.banner.text() and detail in window.banner.text()
    assert _offers(window) == {"whisper": False, "demo": False, "choose": True}
    warned.clear()
    emitted(qtbot, window.worker.model_loaded, lambda: window.load_model(GOOD))
    qtbot.waitUntil(lambda: not window.banner.isVisible())
