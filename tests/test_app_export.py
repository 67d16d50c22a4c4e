"""The app's ways out for a model and its vectors: the Export dialog (ONNX through the engine
worker, parity shown, stages shown, cancel leaving nothing, the Tune page's tuned models going
through the same dialog), Share on the Hub (token only in the keyring, the offline sentence in
the UI language), Export embeddings (the .npy written), and the runtime preference reaching the
model load. Tiny random models, no network."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf
from app_fakes import FakePlayer, emitted, tone
from PySide6.QtWidgets import QMessageBox
from test_export_hunt_faults import with_domain_lm

from app import settings
from app.errors import error_text
from app.export.embeddings import EmbedDialog
from app.export.model import ExportDialog
from app.export.share import ShareDialog
from app.i18n import language, set_language, tr
from app.main import build_window
from app.worker import Engine, EngineWorker, WorkerHandle
from engine.library.store import Store
from engine.testmodels import build_model
from engine.tune.events import JobFinished, JobResult
from engine.tune.formats import ExportCancelled, ExportResult
from engine.tune.hub import plan_upload

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


def test_the_check_manifest_is_offered_only_for_the_formats_it_checks(qtbot, handle):
    dialog = ExportDialog(handle, "some/model")
    qtbot.addWidget(dialog)
    enabled = {}
    for choice in ("hf", "adapter", "onnx", "onnx_int8"):
        dialog.format.setCurrentIndex(dialog.format.findData(choice))
        enabled[choice] = dialog.check.isEnabled()
    assert enabled == {"hf": False, "adapter": False, "onnx": True, "onnx_int8": True}


def test_export_dialog_says_plainly_when_parity_failed(qtbot, handle, tmp_path):
    """A result whose figures fail is not reported as a plain "exported" (the old CLI-only
    check had no app side at all), nor offered as the model to use."""
    dialog = ExportDialog(handle, "some/model")
    qtbot.addWidget(dialog)
    lines = ("precision: fp32", "parity: FAILED")
    dialog.show()
    dialog._done(ExportResult(tmp_path, "onnx", "none", lines, passed=False))
    assert dialog.figures.toPlainText().startswith(tr("export.parity_failed"))
    assert "parity: FAILED" in dialog.figures.toPlainText()
    assert dialog.use_button.isHidden()  # not offered as the model to transcribe with
    dialog._done(ExportResult(tmp_path, "adapter", "none"))
    assert dialog.use_button.isHidden()  # an adapter alone transcribes nothing
    dialog._done(ExportResult(tmp_path, "onnx", "int8", ("parity: passed",)))
    assert dialog.use_button.isVisible()


def test_export_dialog_shows_an_engine_error_in_the_ui_language(qtbot, handle, tmp_path, zh):
    dialog = ExportDialog(handle, str(tmp_path / "not-a-job"))
    qtbot.addWidget(dialog)
    dialog.format.setCurrentIndex(dialog.format.findData("adapter"))
    dialog.out.edit.setText(str(tmp_path / "out"))
    emitted(qtbot, handle.worker.export_failed, dialog.run_button.click)
    qtbot.waitUntil(dialog.run_button.isEnabled, timeout=5_000)
    assert "没有 LoRA 适配器" in dialog.status.text()


def _tuned_job(root, name: str = "clinic"):
    """A finished tuning job whose tuned model is a real (tiny, random) checkpoint."""
    from engine.tune.config import TuneConfig
    from engine.tune.export import ModelCard
    from engine.tune.jobs import JobFolder

    config = TuneConfig(model="base", data="x", output_dir="y", steps=10)
    job = JobFolder.create(root, name, [str(root / "a.tsv")], config)
    build_model(job.model_dir, "tiny", seed=1)
    ModelCard("base", "lora", 10, 8, 30.0, 2, 0.5, 0.25, "x").write(job.model_dir)
    return job


def test_export_on_a_tuned_model_opens_the_one_export_dialog_with_that_model(
    qtbot, tmp_path, monkeypatch
):
    """My models → Export… and the Result step's Export… open the window's Export dialog (every
    format, ONNX int8 with its parity check) with the job preselected, not a dialog of their
    own; the ONNX export of the tuned model is written and checked on the engine worker. A
    chosen folder holding other files is not replaced: the export gets a subfolder in it."""
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: QMessageBox.StandardButton.Ok)
    with Store(tmp_path / "data" / "library.db") as library:
        job = _tuned_job(tmp_path / "data" / "tuning")
        ini = settings.open_settings(tmp_path / "settings.ini")
        window = build_window(ini, Engine(), library=library, player=FakePlayer())
        qtbot.addWidget(window)
        page = window.tune_page
        page.refresh_models()
        page.models.table.selectRow(0)
        page.models.buttons["export"].click()
        (dialog,) = window.findChildren(ExportDialog)
        assert dialog.isVisible() and dialog.model.text() == str(job.path)
        formats = [dialog.format.itemData(i) for i in range(dialog.format.count())]
        assert formats == ["hf", "adapter", "onnx", "onnx_int8"]
        assert dialog.run_button.isEnabled() and dialog.why.isHidden()
        chosen = tmp_path / "exports"
        chosen.mkdir()
        (chosen / "notes.txt").write_text("mine", encoding="utf-8")
        dialog.format.setCurrentIndex(formats.index("onnx_int8"))
        dialog.out.edit.setText(str(chosen))
        stages = []
        handle = window.handle
        handle.worker.export_progress.connect(lambda stage: stages.append(stage.stage))
        done = emitted(qtbot, handle.worker.export_done, dialog.run_button.click, 120_000)[0]
        asked = chosen / f"{job.path.name}-onnx-int8"
        # a tiny random model's int8 may fail its parity check: then it is kept under that name
        assert done.out in (asked, asked.with_name(f"{asked.name}.parity-failed"))
        out = done.out
        assert done.quantize == "int8"
        assert stages == ["loading", "writing", "quantizing", "checking"]
        assert (out / "model.onnx").is_file() and "parity:" in (out / "README.md").read_text()
        assert (chosen / "notes.txt").read_text(encoding="utf-8") == "mine"
        qtbot.waitUntil(lambda: dialog.run_button.isEnabled(), timeout=5_000)
        assert "parity:" in dialog.figures.toPlainText() and str(out) in dialog.status.text()
        dialog.close()
        qtbot.waitUntil(lambda: not window.findChildren(ExportDialog), timeout=5_000)
        page.job = job  # a job that just finished: its result on the Result step
        finished = JobFinished(JobResult(job.model_dir, None, 0.5, 0.25, 10, 10))
        page.handle.supervisor.event.emit(str(job.path), finished)
        page.result.export_button.click()
        (again,) = window.findChildren(ExportDialog)
        assert again.model.text() == str(job.path)
        again.close()
        window.handle.stop()


def test_use_this_model_switches_the_window_to_the_export_it_just_wrote(
    qtbot, tmp_path, tiny_model_dir
):
    """Model → Export… to ONNX, then *Use this model*: the window loads the folder just written
    (on ONNX Runtime: it holds no other weights) and remembers it across restarts."""
    with Store(tmp_path / "library.db") as library:
        ini = settings.open_settings(tmp_path / "settings.ini")
        window = build_window(ini, Engine(), library=library, player=FakePlayer())
        qtbot.addWidget(window)
        dialog = window.open_export(str(tiny_model_dir))
        dialog.format.setCurrentIndex(dialog.format.findData("onnx"))
        dialog.out.edit.setText(str(tmp_path / "onnx"))
        assert dialog.use_button.isHidden()  # nothing written yet
        worker = window.handle.worker
        (done,) = emitted(qtbot, worker.export_done, dialog.run_button.click, 90_000)
        qtbot.waitUntil(dialog.use_button.isVisible, timeout=5_000)
        loaded = emitted(qtbot, worker.model_loaded, dialog.use_button.click, 60_000)[0]
        assert loaded.source == str(done.out) == window.settings.prefs.model
        assert settings.load(ini).model == str(done.out)  # also after a restart
        qtbot.waitUntil(lambda: not window.findChildren(ExportDialog), timeout=5_000)  # closed
        window.handle.stop()


def test_cancel_stops_a_long_export_between_stages_and_leaves_nothing(
    qtbot, handle, tiny_model_dir, tmp_path, zh
):
    """The dialog shows the export stage by stage; Cancel stops it at the next stage: no output
    folder, no staged folder, the dialog ready for another try and saying so in words."""
    dialog = ExportDialog(handle, str(tiny_model_dir))
    qtbot.addWidget(dialog)
    dialog.format.setCurrentIndex(dialog.format.findData("onnx_int8"))
    out = tmp_path / "exports" / "int8"
    dialog.out.edit.setText(str(out))
    # The worker waits inside its "writing" report until the test has pressed Cancel, so the
    # cancel lands before the next stage however fast or slow this machine is.
    pressed = threading.Event()

    def hold(stage) -> None:  # runs in the worker's thread (a plain function: direct call)
        if stage.stage == "writing":
            pressed.wait(30)

    handle.worker.export_progress.connect(hold)
    assert not dialog.cancel_button.isEnabled() and dialog.progress.isHidden()
    cancelled = []
    handle.worker.export_cancelled.connect(cancelled.append)
    try:
        dialog.run_button.click()
        assert not dialog.run_button.isEnabled() and dialog.cancel_button.isEnabled()
        what = tr("export.stage.writing", path=str(out))
        writing = tr("export.step", index=2, count=4, what=what)
        qtbot.waitUntil(lambda: dialog.status.text() == writing, timeout=60_000)
        assert not dialog.progress.isHidden() and dialog.progress.maximum() == 4
        assert dialog.progress.value() == 1  # one of four stages done
        dialog.cancel_button.click()
        assert dialog.status.text() == tr("export.cancelling")
    finally:
        pressed.set()
    qtbot.waitUntil(lambda: bool(cancelled), timeout=60_000)
    assert isinstance(cancelled[0], ExportCancelled)
    qtbot.waitUntil(dialog.run_button.isEnabled, timeout=5_000)
    assert not dialog.cancel_button.isEnabled() and dialog.progress.isHidden()
    assert dialog.status.text() == error_text(cancelled[0])  # in the UI language
    assert "已取消" in dialog.status.text() and str(out) in dialog.status.text()
    assert not (tmp_path / "exports").exists() or list((tmp_path / "exports").iterdir()) == []


def test_closing_the_dialog_cancels_its_export(qtbot, handle, tiny_model_dir, tmp_path):
    dialog = ExportDialog(handle, str(tiny_model_dir))
    qtbot.addWidget(dialog)
    dialog.format.setCurrentIndex(dialog.format.findData("onnx"))
    dialog.out.edit.setText(str(tmp_path / "onnx"))
    cancelled = []
    handle.worker.export_cancelled.connect(cancelled.append)
    dialog.run_button.click()
    request = dialog.request
    dialog.reject()
    assert request.cancel.is_set()
    qtbot.waitUntil(lambda: bool(cancelled), timeout=60_000)
    assert not (tmp_path / "onnx").exists()


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
    assert "显示将要上传的内容" in dialog.upload_button.toolTip()  # says what enables it
    dialog.show_plan()
    assert dialog.upload_button.isEnabled() and not dialog.upload_button.toolTip()
    dialog.private.setChecked(True)  # the plan no longer says what would be sent
    assert "显示将要上传的内容" in dialog.upload_button.toolTip()
    dialog.private.setChecked(False)
    dialog.show_plan()
    plan = dialog.plan_view.toPlainText()
    assert "model.safetensors" in plan and "README.md" in plan and "- license: unknown" in plan
    assert "不上传" not in plan
    build_model(model / "model-onnx", "tiny", seed=1)  # an export kept inside it: shown left out
    dialog.show_plan()
    plan = dialog.plan_view.toPlainText()
    assert plan.split("：\n")[-1].split("README.md:")[0].strip() == "model-onnx/"

    emitted(qtbot, handle.worker.push_failed, dialog.upload_button.click, 30_000)
    qtbot.waitUntil(lambda: "无法连接" in dialog.status.text(), timeout=5_000)
    assert "无法连接 Hugging Face Hub" in dialog.status.text()
    assert str(model) in dialog.status.text()  # the folder ready to push later
    assert dialog.upload_button.isEnabled()  # the same plan can be tried again
    handle.worker.push_done.emit("https://huggingface.co/someone/tiny-zh")
    assert not dialog.upload_button.isEnabled() and "再次上传" in dialog.upload_button.toolTip()
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


@pytest.mark.parametrize("runtime", ["onnx", "onnx-int8", "torch"])
def test_embeddings_are_greyed_for_an_onnx_export_saying_why(runtime):
    """An ONNX export holds the logits only: the action was enabled and failed only after
    the file and folder were chosen. The int8 copy of a checkpoint embeds from the checkpoint."""
    from types import SimpleNamespace

    from app.features import capabilities
    from app.worker import ModelSummary
    from engine.registry import FAMILIES

    model = SimpleNamespace(family=FAMILIES["wav2vec2"], runtime=runtime, precision="int8")
    summary = ModelSummary.of(model, "models/demo-onnx")
    why = capabilities("models/demo-onnx", summary).why_not("embeddings")
    if runtime == "onnx":
        assert why == tr("feature.embeddings_onnx") and "ONNX" in why and "PyTorch" in why
    else:
        assert why == ""


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


def test_share_dialog_license_is_the_clis_license_option(qtbot, handle, tmp_path):
    """The app could not state a license: the CLI's --license had no field."""
    from PySide6.QtGui import QAccessible

    stated = build_model(tmp_path / "stated", "tiny", seed=0)
    (stated / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n# MMS\n", encoding="utf-8")
    unstated = build_model(tmp_path / "unstated", "tiny", seed=0)
    dialog = ShareDialog(handle, str(stated))
    qtbot.addWidget(dialog)
    dialog.ensurePolished()
    name = QAccessible.queryAccessibleInterface(dialog.license).text(QAccessible.Text.Name)
    assert name == tr("share.license") and dialog.license.toolTip() == tr("share.license_tip")
    assert dialog.license.text() == "cc-by-nc-4.0"  # what the engine states by default
    dialog.repo.setText("me/mms-zh")
    dialog.show_plan()
    assert dialog._plan == plan_upload(stated, "me/mms-zh")  # untouched: the CLI without it
    dialog.license.setText("mit")
    assert not dialog.upload_button.isEnabled()  # the plan shown no longer says it
    dialog.show_plan()
    assert dialog._plan == plan_upload(stated, "me/mms-zh", license="mit")
    card = dialog.plan_view.toPlainText().split("README.md:\n")[1]
    assert "license: mit" in card and "cc-by-nc" not in card.split("---")[1]
    dialog.license.clear()  # empty: the stated one, as the placeholder says
    assert dialog.license.placeholderText() == "cc-by-nc-4.0"
    dialog.show_plan()
    assert dialog._plan.license is None and "license: cc-by-nc-4.0" in dialog._plan.card
    dialog.model.edit.setText(str(unstated))  # nothing typed: the field follows the folder
    assert dialog.license.text() == ""
    assert dialog.license.placeholderText() == tr("share.license_unknown")
    dialog.show_plan()
    assert "- license: unknown" in dialog.plan_view.toPlainText()
    dialog.license.setText("apache-2.0")
    dialog.model.edit.setText(str(stated))  # what the user typed stays
    assert dialog.license.text() == "apache-2.0"
    dialog.show_plan()
    assert dialog._plan.license == "apache-2.0"


def test_share_dialog_domain_lm_box_is_the_clis_with_domain_lm(
    qtbot, handle, tmp_path, monkeypatch
):
    """The app always left the domain n-gram out: the CLI's --with-domain-lm had no box, and
    the offline message gave no command to push the folder later with its options."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    plain = build_model(tmp_path / "plain", "tiny", seed=0)
    tuned = with_domain_lm(build_model(tmp_path / "tuned", "tiny", seed=0))
    dialog = ShareDialog(handle, str(plain))
    qtbot.addWidget(dialog)
    assert not dialog.domain_lm.isVisibleTo(dialog)  # no domain LM: nothing to ask
    dialog.model.edit.setText(str(tuned))
    assert dialog.domain_lm.isVisibleTo(dialog) and not dialog.domain_lm.isChecked()
    assert dialog.domain_lm.text() == tr("share.domain_lm")
    assert dialog.domain_lm.toolTip() == tr("share.domain_lm_tip")
    dialog.repo.setText("me/clinic-zh")
    dialog.show_plan()
    assert "lm/domain-4gram.arpa.gz" not in dialog.plan_view.toPlainText()
    assert "domain language model: not included" in dialog.plan_view.toPlainText()
    dialog.domain_lm.setChecked(True)
    dialog.license.setText("mit")
    dialog.show_plan()
    assert dialog._plan == plan_upload(tuned, "me/clinic-zh", license="mit", domain_lm=True)
    shown = dialog.plan_view.toPlainText()
    assert "lm/domain-4gram.arpa.gz" in shown and "domain language model: included" in shown

    emitted(qtbot, handle.worker.push_failed, dialog.upload_button.click, 30_000)
    command = dialog._plan.command()
    assert "--with-domain-lm" in command and "--license mit" in command
    assert tr("share.push_later", command=command) in dialog.status.text()
    dialog.model.edit.setText(str(plain))  # back to a folder without one: hidden and off
    assert not dialog.domain_lm.isVisibleTo(dialog) and not dialog.domain_lm.isChecked()
