"""Whisper in the app: the model chooser offers it, the worker runs it for files and live
audio through engine.loader (real Whisper-base where packaging/fetch-whisper-base.py put it),
and what the Whisper family cannot do (engine.registry) is greyed out, saying why and what to
do: tested with a stand-in model of the Whisper family, no download."""

from __future__ import annotations

import dataclasses
import json
import queue
from types import SimpleNamespace

import numpy as np
import pytest
from app_fakes import FakePlayer, emitted
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QPushButton

from app import settings
from app.export.model import ExportDialog
from app.i18n import language, set_language, tr
from app.main import build_window
from app.modeldialog import ModelDialog
from app.worker import Engine, EngineWorker, WorkerHandle
from engine.audio import load_audio
from engine.library.store import Store
from engine.registry import WHISPER
from engine.results import Alternative, Char, Segment
from engine.whisper import WHISPER_BASE_DIR
from engine.whisper_stream import WhisperStreamer

CLIP = "fireredasr2s_hello_zh.wav"  # 你好世界, 2.3 s


def _buttons(dialog) -> dict[str, QPushButton]:
    return {b.text(): b for b in dialog.findChildren(QPushButton)}


def test_the_model_chooser_offers_whisper_base_when_the_cache_has_it(qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr("app.demo.whisper_model_dir", lambda: str(tmp_path / "whisper-base"))
    dialog = ModelDialog("some/model")
    qtbot.addWidget(dialog)
    _buttons(dialog)[tr("action.use_whisper")].click()
    assert dialog.source() == str(tmp_path / "whisper-base")
    monkeypatch.setattr("app.demo.whisper_model_dir", lambda: None)
    without = ModelDialog("some/model")
    qtbot.addWidget(without)
    assert tr("action.use_whisper") not in _buttons(without)


@pytest.fixture
def keep_language():
    before = language()
    yield
    set_language(before)


def _stand_in(family):
    """What engine.loader.load_model returns, as far as the worker reads it."""
    return lambda source, tqdm: SimpleNamespace(family=family, device="cpu", dtype="float32")


def _segment(index: int, text: str, alternatives: tuple = ()) -> Segment:
    """A segment whose first character is doubtful (a span to review)."""
    chars = tuple(
        Char(c, index + 0.2 * i, index + 0.2 * i + 0.1, 0.2 if i == 0 else 0.95, alternatives)
        for i, c in enumerate(text)
    )
    return Segment(index, float(index), index + 0.2 * len(text), chars)


def test_a_whisper_model_greys_out_what_its_family_cannot_do(
    qtbot, tmp_path, monkeypatch, tiny_model_dir, keep_language
):
    """Loaded, a model of the Whisper family (its features from engine.registry through the
    worker) disables Export embeddings, the Export dialog's HF and ONNX formats, tuning on the
    Tune page and the alternatives line of Review, each with a tooltip saying why and what to
    do; a CTC model loaded next enables them again, and the reasons follow the UI language."""
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: QMessageBox.StandardButton.Ok)
    families = {"Systran/faster-whisper-base": WHISPER}
    engine = Engine(
        load_model=lambda source, tqdm: _stand_in(families.get(source))(source, tqdm),
        transcriber=lambda model: object(),
        streamer=lambda transcriber: object(),
    )
    with Store(tmp_path / "data" / "library.db") as library:
        plain = library.add_transcript([_segment(0, "你好")])
        with_alternatives = library.add_transcript([_segment(0, "世界", (Alternative("是", 0.3),))])
        window = build_window(
            settings.open_settings(tmp_path / "settings.ini"),
            engine,
            library=library,
            player=FakePlayer(),
        )
        qtbot.addWidget(window)
        window.set_language("en")
        whisper = "Systran/faster-whisper-base"
        summary = emitted(qtbot, window.worker.model_loaded, lambda: window.load_model(whisper))[0]
        assert summary.features == WHISPER.features and summary.family == "whisper"
        qtbot.waitUntil(lambda: window.model is not None, timeout=5_000)

        embeddings = window.export_embeddings_action
        assert not embeddings.isEnabled()
        assert embeddings.toolTip() == tr("feature.embeddings", family="Whisper")
        assert "load a CTC model" in embeddings.toolTip()  # what to do
        assert window.file_menu.toolTipsVisible()

        window.export_model()  # Model → Export…, with the loaded model
        (dialog,) = window.findChildren(ExportDialog)
        assert dialog.model.text() == whisper
        tips = {
            dialog.format.itemData(i): dialog.format.itemData(i, Qt.ItemDataRole.ToolTipRole)
            for i in range(dialog.format.count())
        }
        assert tips["onnx"] == tips["onnx_int8"] == tr("feature.onnx_export", family="Whisper")
        assert tips["hf"] == tr("feature.hf_export", family="Whisper") and not tips["adapter"]
        items = dialog.format.model()
        enabled = {dialog.format.itemData(i): items.item(i).isEnabled() for i in range(4)}
        assert enabled == {"hf": False, "adapter": True, "onnx": False, "onnx_int8": False}
        dialog.format.setCurrentIndex(dialog.format.findData("onnx"))
        assert not dialog.run_button.isEnabled()
        assert not dialog.why.isHidden() and dialog.why.text() == tips["onnx"]
        dialog.run_button.click()  # nothing starts
        assert dialog.request is None
        dialog.model.edit.setText(str(tiny_model_dir))  # another model: ONNX applies to it
        assert dialog.run_button.isEnabled() and dialog.why.isHidden()
        dialog.close()

        tune = window.tune_page
        why = tr("feature.ctc_tuning", family="Whisper")
        assert tune.sources.model() == whisper
        # Whisper is tuned with LoRA: the other methods greyed, saying why; the rest is open
        assert _methods(tune) == {"lora": True, "partial": False, "full": False}
        assert tune.how.form.value("method") == "lora"
        method = tune.how.form.fields["method"].widget
        assert method.itemData(method.findData("full"), Qt.ItemDataRole.ToolTipRole) == why
        assert tune.how.start_button.isEnabled() and tune.how.estimate_button.isEnabled()
        assert tune.sources.check_button.isEnabled()
        assert not tune.sources.model_note.isHidden() and tune.sources.model_note.text() == why
        tune.sources.model_box.setCurrentText(str(tiny_model_dir))  # a CTC base: every method
        assert set(_methods(tune).values()) == {True} and tune.sources.model_note.isHidden()
        tune.sources.model_box.setCurrentText(whisper)

        review = window.review_panel
        window.open_in_review(plain)
        label = review.alternatives_label
        assert label.text() == tr("review.no_alternatives") and not label.isEnabled()
        assert label.toolTip() == tr("feature.alternatives", family="Whisper")
        window.open_in_review(with_alternatives)  # made by a CTC model earlier: kept
        assert label.isEnabled() and "Alt+1" in label.text() and label.toolTip() == ""
        window.open_in_review(plain)

        window.set_language("zh")  # the reasons follow the language
        assert embeddings.toolTip() == tr("feature.embeddings", family="Whisper")
        assert "CTC" in embeddings.toolTip() and "向量" in embeddings.toolTip()
        assert label.toolTip() == tr("feature.alternatives", family="Whisper")
        assert tune.sources.model_note.text() == tr("feature.ctc_tuning", family="Whisper")

        emitted(qtbot, window.worker.model_loaded, lambda: window.load_model(str(tiny_model_dir)))
        qtbot.waitUntil(lambda: window.model.source == str(tiny_model_dir), timeout=5_000)
        assert embeddings.isEnabled() and label.isEnabled() and label.toolTip() == ""
        assert tune.sources.model() == whisper  # typed by the user: kept, still LoRA only
        assert _methods(tune)["full"] is False
        tune.sources.model_box.setCurrentText(str(tiny_model_dir))
        assert _methods(tune)["full"] is True
        window.handle.stop()


def _methods(tune) -> dict[str, bool]:
    """The Tune page's methods, each with whether it can be chosen."""
    method = tune.how.form.fields["method"].widget
    return {method.itemData(i): method.model().item(i).isEnabled() for i in range(method.count())}


def test_a_whisper_folder_chosen_as_base_is_tuned_with_lora(qtbot, tmp_path):
    """Told from its files, before anything is loaded: a CTranslate2 Whisper folder typed as
    the base model leaves LoRA only (the reason under it); a CTC checkpoint every method."""
    from app.tune.page import TunePage
    from app.tune.supervisor import SupervisorHandle, TuneSupervisor

    folder = tmp_path / "whisper-small"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"")
    (folder / "config.json").write_text(json.dumps({"alignment_heads": []}))
    page = TunePage(SupervisorHandle(TuneSupervisor(tmp_path)), tmp_path / "tuning")
    qtbot.addWidget(page)
    page.how.form.set_value("method", "full")
    assert set(_methods(page).values()) == {True}  # no base model yet: nothing to say
    page.sources.model_box.setCurrentText(str(folder))
    assert _methods(page) == {"lora": True, "partial": False, "full": False}
    assert page.how.form.value("method") == "lora" and page.how.start_button.isEnabled()
    assert page.sources.model_note.text() == tr("feature.ctc_tuning", family="Whisper")
    page.sources.model_box.setCurrentText("jonatasgrosman/wav2vec2-large-xlsr-53-chinese")
    assert set(_methods(page).values()) == {True} and page.sources.model_note.isHidden()


@pytest.fixture
def worker(qtbot):
    handle = WorkerHandle(EngineWorker())
    handle.start()
    yield handle
    handle.stop()


@pytest.mark.slow
def test_the_worker_runs_whisper_for_files_and_live_audio(qtbot, worker, shared_audio):
    if not (WHISPER_BASE_DIR / "model.bin").is_file():
        pytest.skip(f"{WHISPER_BASE_DIR} is absent: run packaging/fetch-whisper-base.py")
    w = worker.worker
    summary = emitted(
        qtbot, w.model_loaded, lambda: worker.load_model.emit(str(WHISPER_BASE_DIR)), 120_000
    )[0]
    assert summary.features == WHISPER.features and not summary.is_demo
    assert summary.family == "whisper"  # what the app names in its greyed-out tooltips
    segments = []
    w.file_segment.connect(lambda job, s: segments.append(s))
    emitted(
        qtbot, w.file_done, lambda: worker.enqueue_file.emit(1, str(shared_audio / CLIP)), 120_000
    )
    assert "你好" in "".join(s.text for s in segments)
    # The live path: the worker's streamer is the LocalAgreement one; feed it the clip.
    streamer = w._streamer
    assert isinstance(streamer, WhisperStreamer)
    audio = load_audio(shared_audio / CLIP)
    audio = np.concatenate([audio, np.zeros(8000, np.float32)])
    updates = [u for i in range(0, len(audio), 4000) for u in streamer.push(audio[i : i + 4000])]
    updates += streamer.finish()
    streamer.reset()
    text = "".join(c.text for u in updates for c in u.committed)
    assert "你好" in text and "世界" in text


class _EndMark:
    """A punctuation model that ends every segment it is given with 。 and keeps them."""

    def __init__(self) -> None:
        self.given: list[Segment] = []

    def punctuate_one(self, segment, before, after):
        self.given.append(segment)
        last = dataclasses.replace(segment.chars[-1], after="。")
        return dataclasses.replace(segment, chars=(*segment.chars[:-1], last))


def _whisper_transcriber(segment: Segment) -> SimpleNamespace:
    """A Whisper transcriber stand-in whose file transcript is `segment` (Whisper wrote no
    mark in it: a pause cut its sentence)."""
    return SimpleNamespace(
        model=SimpleNamespace(family=WHISPER),
        transcribe=lambda path, *options: (iter([segment]), None),
    )


def test_whisper_text_never_gets_the_punctuation_model_s_marks(qtbot, tmp_path):
    """Before: with the hidden preference on (the default), the punctuation model added its
    marks to each Whisper segment without one, in files and live, while Add punctuation was
    greyed out saying Whisper writes its own; a CTC model's segments still get them."""
    from app.worker import _FileJob
    from engine.stream import SegmentFinal

    worker = EngineWorker(Engine())
    worker._punctuation_model = punctuator = _EndMark()
    plain = _segment(0, "一二线尝试虽然")
    worker._transcriber = _whisper_transcriber(plain)
    job = _FileJob(1, "clip.wav")
    worker._begin_job(job)
    assert list(job.items) == [plain]
    # a recording with Whisper loaded, stopped: its last segment comes out of finish()
    worker._streamer = SimpleNamespace(
        finish=lambda: [SegmentFinal(plain, 7, 2.0)], reset=lambda: None
    )
    shown: list = []
    worker.final.connect(shown.append)
    worker._begin_stream(queue.Queue())
    worker._drain_timer.stop()
    worker._end_stream(str(tmp_path / "rec.wav"))
    assert [f.segment for f in shown] == [plain] and punctuator.given == []
    worker._live_transcriber = SimpleNamespace(model=SimpleNamespace(family=None))  # CTC
    worker._stream_call(SimpleNamespace(finish=lambda: [SegmentFinal(plain, 7, 2.0)]), "finish")
    assert shown[-1].segment.punctuated == "一二线尝试虽然。" and punctuator.given == [plain]
