"""Faults of the Tune page's data check and estimate: a verdict or an estimate that arrives for
sources or settings the user has changed since, and a source deleted between the check and
Start. The supervisor runs in the UI thread here; no child process is started."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app import i18n
from app.i18n import tr

CHARS = "天地人和"


@pytest.fixture(autouse=True)
def _english_ui():
    i18n.set_language("en")
    yield
    i18n.set_language("zh")


def _page(qtbot, root: Path):
    from app.tune.page import TunePage
    from app.tune.supervisor import SupervisorHandle, TuneSupervisor

    page = TunePage(SupervisorHandle(TuneSupervisor(root)), root)
    qtbot.addWidget(page)
    return page


def _model(tmp_path: Path) -> Path:
    from engine.testmodels import build_model

    return build_model(tmp_path / "base", "tiny", chars=CHARS, seed=0)


def _corpus(tmp_path: Path, name: str, seed: int = 0) -> Path:
    from engine.tune.testdata import tone_corpus

    return tone_corpus(tmp_path / name, 8, chars=CHARS, char_seconds=0.1, seed=seed)


def _ready_page(qtbot, tmp_path: Path, *sources: Path):
    """A page with the tiny model and `sources` chosen (short clips allowed)."""
    page = _page(qtbot, tmp_path / "tuning")
    page.sources.model_box.setCurrentText(str(_model(tmp_path)))
    page.how.form.set_value("min_seconds", 0.1)
    page.sources.select_source(sources[0])
    for source in sources[1:]:
        page.sources.select_source(source, only=False)
    return page


def test_a_verdict_on_sources_changed_since_is_not_shown_as_ready(qtbot, tmp_path):
    """Old: A checked, then B; A's verdict arrived first, was shown for B and enabled Next, and
    Start started a job on B, which was never checked."""
    good = _corpus(tmp_path, "good")
    bad = tmp_path / "bad.tsv"
    bad.write_text("path\ttext\n/nowhere/x.wav\t天地\n", encoding="utf-8")
    page = _ready_page(qtbot, tmp_path, good)
    supervisor, handle = page.handle.supervisor, page.handle
    queued, started = [], []
    handle.check.disconnect(supervisor.check)  # requests wait, as in the supervisor's thread
    handle.check.connect(queued.append)
    handle.start_new.disconnect(supervisor.start_new)
    handle.start_new.connect(started.append)
    page.check()  # A
    page.sources.select_source(bad)
    page.check()  # B, while A is still checked
    supervisor.check(queued.pop(0))  # A's verdict arrives first
    assert page.checker.check is None  # still checking B
    assert not page.checker.next_button.isEnabled()
    page.start_job()
    assert started == [] and page.notice.text() == tr("tune.check_first")
    supervisor.check(queued.pop(0))  # B's verdict
    assert page.checker.check.sources == (str(bad),) and page.checker.check.blocking


def test_a_verdict_for_settings_changed_since_is_not_shown(qtbot, tmp_path):
    """The same for a setting the check depends on, on the same sources."""
    good = _corpus(tmp_path, "good")
    page = _ready_page(qtbot, tmp_path, good)
    supervisor, handle = page.handle.supervisor, page.handle
    queued = []
    handle.check.disconnect(supervisor.check)
    handle.check.connect(queued.append)
    page.check()  # with min_seconds 0.1: every clip is used
    page.how.form.set_value("min_seconds", 30.0)
    page.check()  # now every clip is too short
    supervisor.check(queued.pop(0))
    assert page.checker.check is None
    supervisor.check(queued.pop(0))
    assert page.checker.check.blocking


def test_an_estimate_for_settings_edited_while_measuring_keeps_the_stale_note(qtbot, tmp_path):
    """Old: steps edited while it measured; the estimate for the old steps then replaced the
    "Settings changed: measure again" note and read as current."""
    from engine.tune.events import Estimate

    page = _ready_page(qtbot, tmp_path, _corpus(tmp_path, "good"))
    supervisor, handle = page.handle.supervisor, page.handle
    started = []
    handle.start_new.disconnect(supervisor.start_new)  # its answer is emitted below
    handle.start_new.connect(started.append)
    page.how.form.set_value("steps", 100)
    page.check()
    page.checker.accept_box.setChecked(True)
    page.measure()
    assert started[0].config.steps == 100
    page.how.form.set_value("steps", 5000)  # edited while it measures
    e = Estimate(10, 1.0, 1.0, 100, 2, 10**9, 0, "cpu", 4)
    supervisor.estimated.emit("x", e)
    supervisor.finished.emit("x", "estimate")
    assert page.how.estimate.text() == tr("tune.how.stale")
    assert page.how.estimate_button.isEnabled()
    page.measure()  # measured again, unedited: its estimate is shown
    supervisor.estimated.emit("y", e)
    supervisor.finished.emit("y", "estimate")
    from app.tune.how import estimate_text

    assert page.how.estimate.text() == estimate_text(e)


def test_a_source_deleted_after_its_check_is_said_in_the_ui_language_and_checked_again(
    qtbot, tmp_path
):
    """Old: Start said the engine's English sentence in the Chinese UI, and the check step
    still showed the old clean verdict as ready."""
    from app.errors import error_text
    from engine.tune.data import DatasetError

    i18n.set_language("zh")
    a, b = _corpus(tmp_path, "a"), _corpus(tmp_path, "b", seed=1)
    page = _ready_page(qtbot, tmp_path, a, b)
    page.check()
    page.checker.accept_box.setChecked(True)
    assert page.checker.ready()
    shutil.rmtree(b.parent)  # deleted (or moved) after the check
    page.start_job()
    error = DatasetError("dataset.source_missing", source=str(b))
    assert page.notice.text() == error_text(error) != str(error)
    assert not page.checker.ready() and page.checker.check.blocking  # checked again
    assert not list((tmp_path / "tuning").glob("*"))
    i18n.set_language("en")
    page.retranslate()
    assert page.notice.text() == str(error)  # reworded on a language switch


def test_a_check_that_breaks_is_said_in_the_ui_language(qtbot, tmp_path, monkeypatch):
    """Old: "the data could not be checked: …" was English in the Chinese UI (as was "…: the
    tuning process could not start", worded the same way now)."""
    from app.tune.supervisor import CheckRequest, TuneSupervisor
    from engine.tune import prepare
    from engine.tune.config import TuneConfig

    def broken(sources, config):
        raise RuntimeError("boom")

    monkeypatch.setattr(prepare, "check_data", broken)
    i18n.set_language("zh")
    supervisor = TuneSupervisor(tmp_path / "tuning")
    config = TuneConfig(model="m", data="d", output_dir="o")
    with qtbot.waitSignal(supervisor.failed, timeout=1_000) as failed:
        supervisor.check(CheckRequest(("d",), config))
    assert failed.args[0] == "无法检查数据：boom"
