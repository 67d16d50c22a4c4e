"""Exports where the folder, the data or the installation is not what the export assumed: a
chosen folder that is written into while the export runs, a symlink, a group-shared folder, an
empty folder in a parent that cannot be written, a stand-alone ONNX export aimed at documents,
a Traditional-vocabulary model checked on its own text, a long check recording, a parity check
that fails, a missing ONNX extra, a path the system refuses, an empty model field, a check
manifest without usable rows, and the adapter of a tuning job's model/ folder. Tiny random
models, no network."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import test_app_export

from engine.cli import main as cli
from engine.errors import TingxieError
from engine.testmodels import build_model
from engine.tune.formats import (
    ExportOptions,
    ExportResult,
    check_rows,
    export_target,
    iter_export,
    reference_audio,
)


def _adapter_job(root: Path) -> Path:
    """A LoRA tuning job's output folder: the merged model/ and the adapter/ beside it."""
    job = root / "job"
    (job / "adapter").mkdir(parents=True)
    (job / "adapter" / "adapter_config.json").write_text('{"peft_type": "LORA"}', "utf-8")
    (job / "adapter" / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    (job / "model").mkdir()
    (job / "model" / "config.json").write_text('{"model_type": "wav2vec2"}', "utf-8")
    return job


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---- 1: the chosen folder is never replaced ------------------------------------------------
def test_a_file_saved_into_the_chosen_folder_while_the_export_runs_is_kept(tmp_path):
    """The empty chosen folder was renamed away and deleted at the end, with what was saved
    into it meanwhile."""
    job = _adapter_job(tmp_path)
    chosen = tmp_path / "Exports"
    chosen.mkdir()
    out = export_target(chosen, str(job), ExportOptions("adapter"))
    assert out == chosen
    for item in iter_export(job, out, ExportOptions("adapter")):
        if not isinstance(item, ExportResult):
            (chosen / "minutes.docx").write_text("typed meanwhile", encoding="utf-8")
    assert (chosen / "minutes.docx").read_text(encoding="utf-8") == "typed meanwhile"
    assert _names(chosen) == ["adapter_config.json", "adapter_model.safetensors", "minutes.docx"]
    assert _names(tmp_path) == ["Exports", "job"]  # nothing hidden left beside it


def test_a_name_taken_while_the_export_ran_is_refused_and_nothing_is_left(tmp_path, capsys):
    job = _adapter_job(tmp_path)
    chosen = tmp_path / "Exports"
    chosen.mkdir()
    with pytest.raises(TingxieError) as e:
        for _item in iter_export(job, chosen, ExportOptions("adapter")):
            (chosen / "adapter_config.json").write_text("someone's own", encoding="utf-8")
    assert e.value.code == "export.name_taken"
    assert str(chosen / "adapter_config.json") in str(e.value)
    assert (chosen / "adapter_config.json").read_text(encoding="utf-8") == "someone's own"
    assert _names(chosen) == ["adapter_config.json"]  # no staging folder left inside
    assert _names(tmp_path) == ["Exports", "job"]


def test_a_symlinked_folder_stays_a_link_and_the_export_lands_where_it_points(tmp_path, capsys):
    """The link was replaced by a plain folder, a stale hidden link left beside it, and the
    next export failed with a bare errno."""
    job = _adapter_job(tmp_path)
    real = tmp_path / "big-disk" / "exports"
    real.mkdir(parents=True)
    home = tmp_path / "home"
    home.mkdir()
    link = home / "Exports"
    link.symlink_to(real)
    assert cli(["export", str(job), str(link), "--format", "adapter"]) == 0
    assert link.is_symlink() and _names(home) == ["Exports"]
    assert _names(real) == ["adapter_config.json", "adapter_model.safetensors"]
    assert cli(["export", str(job), str(link), "--format", "adapter"]) == 0  # a subfolder now
    assert link.is_symlink() and _names(home) == ["Exports"]
    assert (real / "job-adapter" / "adapter_config.json").is_file()
    assert "Errno" not in capsys.readouterr().err


def test_a_group_shared_folder_keeps_its_mode_and_identity(tmp_path):
    job = _adapter_job(tmp_path)
    shared = tmp_path / "lab-shared"
    shared.mkdir()
    os.chmod(shared, 0o2775)
    before = shared.stat()
    assert cli(["export", str(job), str(shared), "--format", "adapter"]) == 0
    after = shared.stat()
    assert stat.S_IMODE(after.st_mode) == 0o2775 and after.st_ino == before.st_ino
    assert (shared / "adapter_config.json").is_file()


def test_a_failed_export_into_a_chosen_folder_leaves_it_as_it_was(tmp_path, monkeypatch):
    """A failure while writing leaves nothing inside the chosen folder, nor beside it."""
    import shutil

    job = _adapter_job(tmp_path)
    chosen = tmp_path / "Exports"
    chosen.mkdir()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copytree", full_disk)
    with pytest.raises(OSError):
        list(iter_export(job, chosen, ExportOptions("adapter")))
    assert chosen.is_dir() and _names(chosen) == [] and _names(tmp_path) == ["Exports", "job"]


# ---- 7: an empty folder in a parent that cannot be written (an empty USB stick) ----------
def test_an_empty_writable_folder_in_a_read_only_parent_is_used(tmp_path, monkeypatch, capsys):
    """The parent was probed (where the export was staged), so an empty stick was refused.
    Tests run as root, so the parent's refusal is simulated."""
    job = _adapter_job(tmp_path)
    media = tmp_path / "media"
    stick = media / "USB"
    stick.mkdir(parents=True)
    real = tempfile.TemporaryFile

    def refuse(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == media:
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    assert export_target(stick, str(job), ExportOptions("adapter")) == stick
    assert cli(["export", str(job), str(stick), "--format", "adapter"]) == 0
    assert (stick / "adapter_config.json").is_file() and _names(media) == ["USB"]
    with pytest.raises(TingxieError) as e:  # a new folder there still cannot be made
        export_target(media / "new", str(job), ExportOptions("adapter"))
    assert e.value.code == "export.not_writable"


# ---- 2: the stand-alone ONNX export --------------------------------------------------------
def test_the_stand_alone_onnx_export_never_replaces_a_folder_holding_files(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    """`python -m engine.export_onnx SOURCE OUT` replaced OUT whole: documents in it deleted."""
    import transformers

    from engine.export_onnx import main

    docs = tmp_path / "Documents"
    docs.mkdir()
    (docs / "thesis.txt").write_text("80 pages", encoding="utf-8")

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(transformers.AutoModelForCTC, "from_pretrained", never)
    assert main([str(tiny_model_dir), str(docs)]) == 2
    err = capsys.readouterr().err
    assert str(docs) in err and "choose another output folder" in err
    assert _names(docs) == ["thesis.txt"] and _names(tmp_path) == ["Documents"]


def test_the_stand_alone_onnx_export_fills_a_new_or_empty_folder(tiny_model_dir, tmp_path):
    from engine.export_onnx import export_onnx, main

    empty = tmp_path / "empty"
    empty.mkdir()
    inode = empty.stat().st_ino
    assert main([str(tiny_model_dir), str(empty)]) == 0
    assert (empty / "model.onnx").is_file() and empty.stat().st_ino == inode
    fresh = tmp_path / "cache" / "abc123"  # as the weights cache asks for it
    assert export_onnx(tiny_model_dir, fresh) == fresh and (fresh / "model.onnx").is_file()
    assert _names(tmp_path) == ["cache", "empty"] and _names(tmp_path / "cache") == ["abc123"]


# ---- 5: a Traditional-vocabulary model checked on its own text ----------------------------
TRADITIONAL = "國說們這個時會來對學點後開長門問東車馬書語"


def _writing_model(folder: Path, chars: str) -> Path:
    """A tiny random model whose head writes characters (not only blanks)."""
    from safetensors.torch import load_file, save_file

    model = build_model(folder, "tiny", chars=chars, seed=1)
    weights = load_file(model / "model.safetensors")
    weights["lm_head.bias"][0] = -3.0
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    return model


def _greedy_text(run, clip: np.ndarray) -> str:
    import torch

    (logits,) = run.logits([clip])
    log_probs = torch.log_softmax(torch.from_numpy(logits), -1).numpy()
    return "".join(c.text for c in run.chars(log_probs, top_k=0))


def test_a_traditional_model_checked_on_its_own_text_has_no_errors(tmp_path):
    """The references were converted to Simplified and the model's texts were not: 100 % CER
    for a model that wrote exactly the references."""
    from engine.export_onnx import measure_parity
    from engine.model import LoadOptions, load_model
    from engine.transcribe import Transcriber

    folder = _writing_model(tmp_path / "model", TRADITIONAL)
    model = load_model(folder, LoadOptions(device="cpu", precision="fp32"))
    run = Transcriber(model)
    rows = []
    for k, clip in enumerate(reference_audio(3, seed=5)):
        sf.write(tmp_path / f"c{k}.wav", clip, 16_000)
        text = _greedy_text(run, clip)
        assert text and any(ch in TRADITIONAL for ch in text)
        rows.append(f"c{k}.wav\t{text[:3]}，{text[3:]}。")  # punctuated, as people write
    manifest = tmp_path / "check.tsv"
    manifest.write_text("path\ttext\n" + "\n".join(rows) + "\n", encoding="utf-8")
    audio, references = check_rows(manifest, 10)
    parity = measure_parity(model, model, audio, references)
    assert parity.cer_torch == 0.0 and parity.cer_export == 0.0 and parity.utterances == 3


# ---- 4: a long check recording ---------------------------------------------------------------
def test_the_parity_check_runs_a_long_recording_in_the_transcriber_s_chunks(
    tiny_model_dir, monkeypatch
):
    """Each check clip went through both models whole (memory growing with its length
    squared: minutes of audio ran out of memory)."""
    from engine.export_onnx import measure_parity
    from engine.model import LoadOptions, load_model
    from engine.transcribe import TranscribeOptions, Transcriber

    model = load_model(tiny_model_dir, LoadOptions(device="cpu", precision="fp32"))
    seen: list[int] = []
    logits = Transcriber.logits

    def recorded(self, batch):
        seen.extend(len(a) for a in batch)
        return logits(self, batch)

    monkeypatch.setattr(Transcriber, "logits", recorded)
    long = np.concatenate(reference_audio(20, seed=1))[: 60 * 16_000]
    short = reference_audio(1, seed=2)[0]
    parity = measure_parity(model, model, [long, short])
    chunk = TranscribeOptions().chunk_seconds * 16_000
    assert max(seen) <= chunk and len(short) in seen
    assert parity.utterances == 2 and parity.char_agreement == 1.0
    assert parity.max_logit_diff == 0.0


# ---- 10: an export whose parity check failed -----------------------------------------------
def _wrong_exporter(monkeypatch, tmp_path: Path) -> None:
    """An exporter that writes the wrong network (a random model of the same shape)."""
    import engine.export_onnx as ex

    real = ex._export_fp32
    other = build_model(tmp_path / "other", "tiny", seed=3)

    def wrong(model, path):
        from transformers import AutoModelForCTC

        real(AutoModelForCTC.from_pretrained(other).eval(), path)

    monkeypatch.setattr(ex, "_export_fp32", wrong)


def test_a_failed_export_is_kept_under_a_failed_name_and_a_retry_does_not_nest(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    """A FAILED export was moved into place as a complete model folder (which loads without a
    word), and the same command again wrote the next export inside it."""
    _wrong_exporter(monkeypatch, tmp_path)
    out = tmp_path / "exports" / "onnx"
    assert cli(["export", str(tiny_model_dir), str(out), "--format", "onnx"]) == 1
    kept = out.with_name("onnx.parity-failed")
    assert not out.exists() and (kept / "model.onnx").is_file()
    assert "parity: FAILED" in (kept / "README.md").read_text(encoding="utf-8")
    captured = capsys.readouterr()
    assert str(kept) in captured.err and "does not match PyTorch" in captured.err
    assert f"wrote {out}" not in captured.out
    assert export_target(out, str(tiny_model_dir), ExportOptions("onnx")) == out  # no nesting
    # into a folder that existed (empty): kept inside it, and the folder stays otherwise empty
    chosen = tmp_path / "stick"
    chosen.mkdir()
    items = list(iter_export(tiny_model_dir, chosen, ExportOptions("onnx")))
    result = items[-1]
    assert isinstance(result, ExportResult) and not result.passed
    assert result.out == chosen / "stick.parity-failed" and _names(chosen) == [result.out.name]


# ---- 8: the ONNX extra not installed ---------------------------------------------------------
def test_an_onnx_export_without_the_onnx_extra_says_what_to_install(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    """The CLI loaded the model, then died in a traceback; the app offered ONNX regardless."""
    import transformers

    for name in ("onnxscript", "onnxruntime", "onnx"):
        monkeypatch.setitem(sys.modules, name, None)

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(transformers.AutoModelForCTC, "from_pretrained", never)
    out = tmp_path / "out"
    assert cli(["export", str(tiny_model_dir), str(out), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "pip install -e '.[onnx]'" in err and "onnxscript" in err and "Traceback" not in err
    assert not out.exists()
    from app.features import capabilities

    caps = capabilities(str(tiny_model_dir))
    assert "pip install -e '.[onnx]'" in caps.why_not("onnx_export")
    assert not caps.why_not("hf_export")


def test_the_export_dialog_greys_out_onnx_without_the_extra(qtbot, handle, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    from app.export.model import ExportDialog

    dialog = ExportDialog(handle, "some/model")
    qtbot.addWidget(dialog)
    items = dialog.format.model()
    enabled = {
        dialog.format.itemData(row): items.item(row).isEnabled()
        for row in range(dialog.format.count())
    }
    assert enabled == {"hf": True, "adapter": True, "onnx": False, "onnx_int8": False}
    dialog.format.setCurrentIndex(dialog.format.findData("onnx_int8"))
    assert "onnxscript" in dialog.why.text() and not dialog.run_button.isEnabled()


# ---- 9: the Export dialog's own refusals -----------------------------------------------------
handle = test_app_export.handle  # a started engine worker (bound by name, as pytest finds it)


def test_an_output_path_the_system_refuses_is_said_in_the_dialog(
    qtbot, handle, tiny_model_dir, tmp_path
):
    """A name past 255 bytes raised OSError out of the Run button's slot: a traceback on
    stderr, nothing in the dialog."""
    from app.export.model import ExportDialog

    dialog = ExportDialog(handle, str(tiny_model_dir))
    qtbot.addWidget(dialog)
    too_long = tmp_path / ("会议记录" * 22)
    dialog.out.edit.setText(str(too_long))
    dialog.run_button.click()
    assert dialog.request is None and dialog.run_button.isEnabled()
    assert str(too_long) in dialog.status.text()
    with pytest.raises(TingxieError) as e:
        export_target(too_long, str(tiny_model_dir), ExportOptions("hf"))
    assert e.value.code == "export.bad_path" and "choose another" in str(e.value)


def test_an_empty_model_field_asks_for_a_model(qtbot, handle, tmp_path):
    from app.export.model import ExportDialog
    from app.i18n import tr

    dialog = ExportDialog(handle, "")
    qtbot.addWidget(dialog)
    dialog.out.edit.setText(str(tmp_path / "out"))
    dialog.run_button.click()
    assert dialog.request is None and dialog.status.text() == tr("export.need_model")
    with pytest.raises(TingxieError) as e:
        list(iter_export("", tmp_path / "out", ExportOptions("hf")))
    assert e.value.code == "export.no_model"
    assert not (tmp_path / "out").exists()


# ---- the check manifest's rows, in export words ---------------------------------------------
def test_a_check_manifest_without_usable_rows_names_them_in_export_words(qtbot, handle, tmp_path):
    """The dialog said "fix the rows the validation table lists" and showed no table; a
    header-only manifest was "nothing to train on"."""
    from app.errors import error_text
    from app.export.model import ExportDialog

    missing = tmp_path / "check.tsv"
    missing.write_text("path\ttext\nmissing1.wav\t你好\nmissing2.wav\t再见\n", encoding="utf-8")
    empty = tmp_path / "empty.tsv"
    empty.write_text("path\ttext\n", encoding="utf-8")
    errors = {}
    for manifest in (missing, empty):
        with pytest.raises(TingxieError) as e:
            list(iter_export("some/model", tmp_path / "out", ExportOptions("onnx", check=manifest)))
        errors[manifest.name] = e.value
    text = str(errors["check.tsv"])
    assert "check.tsv:2" in text and "missing1.wav" in text and "validation table" not in text
    assert "train" not in str(errors["empty.tsv"]) and str(empty) in str(errors["empty.tsv"])
    dialog = ExportDialog(handle, "some/model")
    qtbot.addWidget(dialog)
    dialog.show()
    dialog._failed(errors["check.tsv"])
    assert "check.tsv:2" in dialog.status.text()
    assert dialog.figures.isVisible() and "check.tsv:3" in dialog.figures.toPlainText()
    assert "train" not in error_text(errors["empty.tsv"])


# ---- the adapter of a tuning job's model/ or adapter/ folder --------------------------------
@pytest.mark.parametrize("part", ["", "model", "adapter"])
def test_the_adapter_exports_from_the_job_its_model_or_its_adapter_folder(tmp_path, part):
    """job/model (what *Use this model* loads and Export preselects) and job/adapter were
    refused: "no LoRA adapter here"."""
    from engine.tune.formats import adapter_folder

    job = _adapter_job(tmp_path)
    source = job / part if part else job
    assert adapter_folder(source) == job / "adapter"
    out = tmp_path / "out"
    assert cli(["export", str(source), str(out), "--format", "adapter"]) == 0
    assert _names(out) == ["adapter_config.json", "adapter_model.safetensors"]
    assert adapter_folder(tmp_path) is None
