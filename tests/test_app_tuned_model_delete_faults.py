"""Deleting a tuned model in My models that the window uses or remembers: the next start never
tries to open the deleted folder (it opens the base the model was tuned from once that has
loaded, else the default model as a first start does), and no error is shown for it."""

from __future__ import annotations

from pathlib import Path

import pytest
import test_app_model_choice_faults
import test_app_model_switch
from app_fakes import emitted
from PySide6.QtWidgets import QMessageBox
from test_app_model_choice_faults import _loader, _settle, _stored
from test_app_model_switch import _engine
from test_app_tune import _finished

from engine.model import ModelLoadError

# The model-choice tests' fixtures, shared rather than copied (bound by name).
_english_ui_then_chinese = test_app_model_switch._english_ui_then_chinese
make_window = test_app_model_switch.make_window
shipped = test_app_model_choice_faults.shipped


def _on_disk(load, *broken: str):
    """`load`, but a folder that is gone fails as the engine says it (model.folder_missing),
    and the `broken` ones fail as damaged weights."""

    def checked(source, backend):
        if source in broken:
            raise ModelLoadError("model.bad_weights", path=source, detail="truncated")
        if source.startswith("/") and not Path(source).exists():
            raise ModelLoadError("model.folder_missing", path=source)
        return load(source, backend)

    return checked


def _delete_in_my_models(qtbot, window, monkeypatch, answer=QMessageBox.StandardButton.Yes):
    """Delete the one tuned model My models lists, answering `answer` to the question."""
    monkeypatch.setattr(QMessageBox, "question", lambda *a: answer)
    models = window.tune_page.models
    assert models.table.rowCount() == 1
    models.table.selectRow(0)
    models.buttons["delete"].click()
    _settle(qtbot)


def _restarted(qtbot, window, make_window, load):
    """The app started again on the same settings, its start's load ended."""
    window.close()
    again = make_window(_engine(load))
    emitted(qtbot, again.worker.model_loaded, again.start)
    qtbot.waitUntil(lambda: again.model is not None)
    return again


@pytest.mark.parametrize("base_loads", [True, False], ids=["base-loads", "base-missing"])
def test_the_deleted_model_in_use_is_not_opened_at_the_next_start(
    qtbot, make_window, dialogs, monkeypatch, tmp_path, shipped, base_loads
):
    """The page switched back to the base ("m"), which the window remembers once it loads.
    Old: where the base could not load (not in the cache here), the deleted folder stayed
    remembered, and the next start failed on it with an error and no model. Now it is
    forgotten: the next start opens the default model, or what stands in for it (Whisper-base
    here, the default not being cached), as a first start does."""
    job = _finished(tmp_path / "tuning", "clinic")  # tuned from "m"
    tuned = str(job.model_dir)
    load, tried = _loader(tuned, shipped.whisper, *(["m"] if base_loads else []))
    load = _on_disk(load)
    window = make_window(_engine(load), model=tuned, model_chosen=True)
    emitted(qtbot, window.worker.model_loaded, window.start)
    qtbot.waitUntil(lambda: window.model is not None)
    _delete_in_my_models(qtbot, window, monkeypatch)
    assert not job.path.exists()
    if base_loads:
        qtbot.waitUntil(lambda: window.model.source == "m")
        assert (_stored(tmp_path).model, _stored(tmp_path).model_chosen) == ("m", True)
    else:
        qtbot.waitUntil(lambda: len(dialogs) == 1)  # the base failed: said, ways out offered
        assert "'m'" in dialogs[0]
        assert (_stored(tmp_path).model, _stored(tmp_path).model_chosen) == ("", False)
    tried.clear()
    again = _restarted(qtbot, window, make_window, load)
    assert tuned not in [source for source, _ in tried]
    assert again.model.source == ("m" if base_loads else shipped.whisper)
    assert len(dialogs) == (0 if base_loads else 1)  # nothing more said at the start


def test_a_remembered_model_that_did_not_load_is_forgotten_once_deleted(
    qtbot, make_window, dialogs, monkeypatch, tmp_path, shipped
):
    """The remembered tuned model failed at the start (damaged weights), so nothing said it
    was in use, and deleting it left it remembered: the next start failed on the deleted
    folder, with a dialog again."""
    job = _finished(tmp_path / "tuning", "clinic")
    tuned = str(job.model_dir)
    load, tried = _loader(tuned, shipped.whisper)
    window = make_window(_engine(_on_disk(load, tuned)), model=tuned, model_chosen=True)
    emitted(qtbot, window.worker.model_failed, window.start)
    qtbot.waitUntil(lambda: len(dialogs) == 1)
    assert window.model is None and "truncated" in dialogs[0]
    _delete_in_my_models(qtbot, window, monkeypatch)
    assert not job.path.exists()
    assert (_stored(tmp_path).model, _stored(tmp_path).model_chosen) == ("", False)
    tried.clear()
    again = _restarted(qtbot, window, make_window, _on_disk(load))
    assert tuned not in [source for source, _ in tried]
    assert again.model.source == shipped.whisper and len(dialogs) == 1


def test_a_model_kept_or_not_deleted_stays_remembered(
    qtbot, make_window, dialogs, monkeypatch, tmp_path, shipped
):
    """No to the question, or another tuned model deleted: the remembered one stays."""
    kept = _finished(tmp_path / "tuning", "kept")
    tuned = str(kept.model_dir)
    load, _ = _loader(tuned, shipped.whisper)
    window = make_window(_engine(_on_disk(load)), model=tuned, model_chosen=True)
    emitted(qtbot, window.worker.model_loaded, window.start)
    qtbot.waitUntil(lambda: window.model is not None)
    _delete_in_my_models(qtbot, window, monkeypatch, QMessageBox.StandardButton.No)
    assert kept.path.is_dir()
    other = _finished(tmp_path / "tuning", "other")
    window.tune_page.refresh_models()
    models = window.tune_page.models
    row = next(r for r in range(2) if models.table.item(r, 0).text() == "other")
    models.table.selectRow(row)
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
    models.buttons["delete"].click()
    _settle(qtbot)
    assert not other.path.exists() and kept.path.is_dir()
    assert (_stored(tmp_path).model, _stored(tmp_path).model_chosen) == (tuned, True)
    assert window.model.source == tuned and dialogs == []
