"""The app's ways out for a model and its vectors: the Export dialog (ONNX through the engine
worker, parity shown), Share on the Hub (token only in the keyring, the offline sentence in the
UI language), Export embeddings (the .npy written), and the runtime preference reaching the
model load. Tiny random models, no network."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from app_fakes import FakePlayer, emitted, tone

from app import settings
from app.export.embeddings import EmbedDialog
from app.export.model import ExportDialog
from app.export.share import ShareDialog
from app.i18n import language, set_language, tr
from app.main import build_window
from app.worker import Engine, EngineWorker, WorkerHandle
from engine.library.store import Store
from engine.testmodels import build_model
from engine.tune.formats import ExportResult

TOKEN = "hf_tingxie_app_secret_0123456789"


@pytest.fixture
def handle(qtbot):
    """A started engine worker with the real engine, stopped at teardown."""
    handle = WorkerHandle(EngineWorker(Engine()))
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture
def zh():
    before = language()
    set_language("zh")
    yield
    set_language(before)


def test_export_dialog_runs_an_onnx_export_on_the_worker_and_shows_parity(
    qtbot, handle, tiny_model_dir, tmp_path
):
    dialog = ExportDialog(handle, str(tiny_model_dir))
    qtbot.addWidget(dialog)
    dialog.format.setCurrentIndex(dialog.format.findData("onnx"))
    dialog.out.edit.setText(str(tmp_path / "onnx"))
    done = emitted(qtbot, handle.worker.export_done, dialog.run_button.click, 90_000)
    assert isinstance(done[0], ExportResult)
    qtbot.waitUntil(dialog.run_button.isEnabled, timeout=5_000)  # the reply reached the UI
    text = dialog.figures.toPlainText()
    assert "parity: passed" in text and "FAILED" not in text
    assert (tmp_path / "onnx" / "model.onnx").is_file()
    assert "parity: passed" in (tmp_path / "onnx" / "README.md").read_text(encoding="utf-8")


def test_export_dialog_says_plainly_when_parity_failed(qtbot, handle, tmp_path):
    """A result whose figures fail is not reported as a plain "exported" (the old CLI-only
    check had no app side at all)."""
    dialog = ExportDialog(handle, "some/model")
    qtbot.addWidget(dialog)
    lines = ("precision: fp32", "parity: FAILED")
    dialog._done(ExportResult(tmp_path, "onnx", "none", lines, passed=False))
    assert dialog.figures.toPlainText().startswith(tr("export.parity_failed"))
    assert "parity: FAILED" in dialog.figures.toPlainText()


def test_export_dialog_shows_an_engine_error_in_the_ui_language(qtbot, handle, tmp_path, zh):
    dialog = ExportDialog(handle, str(tmp_path / "not-a-job"))
    qtbot.addWidget(dialog)
    dialog.format.setCurrentIndex(dialog.format.findData("adapter"))
    dialog.out.edit.setText(str(tmp_path / "out"))
    emitted(qtbot, handle.worker.export_failed, dialog.run_button.click)
    qtbot.waitUntil(dialog.run_button.isEnabled, timeout=5_000)
    assert "没有 LoRA 适配器" in dialog.status.text()


def test_share_dialog_keeps_the_token_in_the_keyring_and_says_offline_in_chinese(
    qtbot, handle, tmp_path, monkeypatch, zh
):
    import huggingface_hub.constants
    import keyring

    stored = {}
    monkeypatch.setattr(keyring, "set_password", lambda s, u, p: stored.__setitem__((s, u), p))
    monkeypatch.setattr(keyring, "get_password", lambda s, u: stored.get((s, u)))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    prefs = settings.Settings(settings.open_settings(tmp_path / "settings.ini"))
    prefs.set(model="x")  # the settings file exists, so the check below reads it
    model = build_model(tmp_path / "model", "tiny", seed=0)

    dialog = ShareDialog(handle, str(model))
    qtbot.addWidget(dialog)
    dialog.token.setText(TOKEN)
    dialog.sign_in()
    assert stored == {("tingxie", "huggingface"): TOKEN}
    assert dialog.token.text() == ""
    dialog.repo.setText("someone/tiny-zh")
    assert not dialog.upload_button.isEnabled()  # no upload before the plan is shown
    dialog.show_plan()
    plan = dialog.plan_view.toPlainText()
    assert "model.safetensors" in plan and "README.md" in plan and "license: apache-2.0" in plan

    emitted(qtbot, handle.worker.push_failed, dialog.upload_button.click, 30_000)
    qtbot.waitUntil(lambda: "无法连接" in dialog.status.text(), timeout=5_000)
    assert "无法连接 Hugging Face Hub" in dialog.status.text()
    assert str(model) in dialog.status.text()  # the folder ready to push later
    written = [p for p in tmp_path.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert written == []


def test_embeddings_dialog_writes_the_vectors_of_the_file(qtbot, handle, tiny_model_dir, tmp_path):
    emitted(qtbot, handle.worker.model_loaded, lambda: handle.load_model.emit(str(tiny_model_dir)))
    audio = tmp_path / "clip.wav"
    sf.write(audio, tone(2.0), 16_000)
    dialog = EmbedDialog(handle, str(audio))
    qtbot.addWidget(dialog)
    dialog.out.edit.setText(str(tmp_path / "vectors"))
    (path,) = emitted(qtbot, handle.worker.embed_done, dialog.run_button.click, 60_000)
    vectors = np.load(path)
    assert path.endswith("clip.npy") and vectors.ndim == 2 and len(vectors) > 50  # 20 ms frames
    assert np.load(tmp_path / "vectors" / "clip.times.npy").shape == (len(vectors), 2)
    qtbot.waitUntil(dialog.run_button.isEnabled, timeout=5_000)
    assert path in dialog.status.text()


def test_the_runtime_preference_persists_and_reaches_load_options(qtbot, tmp_path, monkeypatch):
    """The backend chosen in the Model menu is saved, checked again in a new window, and passed
    to the engine's model load as LoadOptions.backend."""
    import engine.loader

    seen = []
    monkeypatch.setattr(
        engine.loader, "load_model", lambda s, options, tqdm_class: seen.append(options)
    )
    ini = tmp_path / "settings.ini"

    def window():
        fake = Engine(transcriber=lambda m: object(), streamer=lambda t: object())
        with_store = build_window(
            settings.open_settings(ini), fake, library=library, player=FakePlayer()
        )
        qtbot.addWidget(with_store)
        return with_store

    with Store(tmp_path / "library.db") as library:
        first = window()
        assert first.backend_actions["auto"].isChecked()
        first.backend_actions["onnx"].trigger()
        emitted(qtbot, first.worker.model_loaded, lambda: first.load_model("some/model"))
        assert seen[-1].backend == "onnx"
        assert settings.load(settings.open_settings(ini)).backend == "onnx"
        second = window()
        assert second.backend_actions["onnx"].isChecked()
        assert second.prefs.backend == "onnx"
