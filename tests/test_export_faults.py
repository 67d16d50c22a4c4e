"""Exports and Hub uploads where the person's choice does not fit: an output path that is a file
or cannot be written, ".", a source that cannot be exported in that form (an ONNX export, a
Whisper folder), a pickle-only source, a folder holding other exports, a repository name the Hub
client rejects, a plan whose files changed, a local base model. Each is refused before anything
is loaded or replaced, in one sentence naming what the person chose and what to do. Tiny random
models, no network."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from engine.atomic import atomic_folder, staged_folder
from engine.cli import main as cli
from engine.errors import TingxieError
from engine.registry import features_of
from engine.testmodels import build_model
from engine.tune.export import ModelCard
from engine.tune.formats import ExportOptions, ExportResult, export_target, iter_export
from engine.tune.hub import HubError, UploadPlan, plan_upload, push

CARD = ModelCard(base_model="/home/me/models/tiny-base", method="lora", steps=200,
                 train_examples=150, train_seconds=600.0, heldout_examples=16, cer_before=0.42,
                 cer_after=0.21, data="/home/me/corrections/clinic.tsv")  # fmt: skip


def _adapter_job(root: Path) -> Path:
    """A tuning job's output folder with a LoRA adapter (no weights needed to copy it)."""
    job = root / "job"
    (job / "adapter").mkdir(parents=True)
    (job / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    (job / "adapter" / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    return job


def _onnx_only(source: Path, folder: Path) -> Path:
    """An ONNX export's files: the model's config and processor beside model.onnx, no weights
    (the graph's bytes do not matter to what is checked here)."""
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    (folder / "model.onnx").write_bytes(b"\0" * 64)
    return folder


def _whisper(folder: Path) -> Path:
    """A CTranslate2 Whisper folder, as far as telling its family goes."""
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"\0" * 64)
    for name in ("config.json", "tokenizer.json", "preprocessor_config.json"):
        (folder / name).write_text("{}", encoding="utf-8")
    return folder


# ---- 1: an output path that is a file --------------------------------------------------------
def test_an_export_aimed_at_a_file_leaves_the_file_as_it_was(tmp_path, capsys):
    """The file was renamed to a hidden .notes.txt.old and the export put in its place (rc 0)."""
    job = _adapter_job(tmp_path)
    notes = tmp_path / "r1" / "notes.txt"
    notes.parent.mkdir()
    notes.write_text("my important notes", encoding="utf-8")
    assert cli(["export", str(job), str(notes), "--format", "adapter"]) == 2
    err = capsys.readouterr().err
    assert str(notes) in err and "is a file, not a folder" in err
    assert notes.read_text(encoding="utf-8") == "my important notes"
    assert sorted(p.name for p in notes.parent.iterdir()) == ["notes.txt"]
    with pytest.raises(TingxieError) as e:
        export_target(notes / "inside", str(job), ExportOptions("adapter"))
    assert e.value.code == "export.target_is_file" and str(notes) in str(e.value)


def test_a_folder_swap_never_replaces_a_file(tmp_path):
    """Defence in depth: engine.atomic swaps folders only."""
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me", encoding="utf-8")
    with pytest.raises(NotADirectoryError), staged_folder(notes) as tmp:
        (tmp / "x").write_text("export", encoding="utf-8")
    with pytest.raises(NotADirectoryError):
        atomic_folder(notes, lambda tmp: None)
    assert notes.read_text(encoding="utf-8") == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# ---- 2: sharing a folder that holds other exports ------------------------------------------
def test_sharing_a_folder_leaves_out_the_exports_kept_inside_it(tmp_path, capsys):
    """An unrelated model in a subfolder (and a nested ONNX export whose check FAILED) was
    uploaded with the folder's own model."""
    model = build_model(tmp_path / "model", "tiny", seed=0)
    other = model / "other-hf"
    other.mkdir()
    (other / "model.safetensors").write_bytes(b"\0" * 16)
    (other / "config.json").write_text("{}", encoding="utf-8")
    failed = model / "model-onnx-int8"
    failed.mkdir()
    (failed / "model.onnx").write_bytes(b"\0" * 16)
    (failed / "README.md").write_text(
        "# ONNX export made with Tingxie (听写)\n\n- parity: FAILED\n", encoding="utf-8"
    )
    (model / "lm").mkdir()
    (model / "lm" / "lm.arpa").write_text("\\data\\\n", encoding="utf-8")
    plan = plan_upload(model, "someone/tiny-zh")
    assert not [f for f in plan.files if f.startswith(("other-hf/", "model-onnx-int8/"))]
    assert "lm/lm.arpa" in plan.files and "model.safetensors" in plan.files
    assert plan.left_out == ("model-onnx-int8/", "other-hf/")
    assert cli(["push", str(model), "someone/tiny-zh", "--dry-run"]) == 0
    out = capsys.readouterr().out
    listed = out.split("left out", 1)
    assert "other-hf" not in listed[0] and "other-hf/" in listed[1]


# ---- 3: the ONNX export of a tuned model keeps its card ------------------------------------
def test_the_onnx_export_of_a_tuned_model_keeps_its_tuning_card(tmp_path):
    model = build_model(tmp_path / "tuned", "tiny", seed=0)
    CARD.write(model)
    out = tmp_path / "onnx"
    items = list(iter_export(model, out, ExportOptions("onnx")))
    assert isinstance(items[-1], ExportResult) and items[-1].passed
    assert json.loads((out / "tingxie_card.json").read_text(encoding="utf-8"))["steps"] == 200
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "- method: lora, 200 steps" in readme and "- parity: passed" in readme
    card = plan_upload(out, "someone/tuned-onnx").card
    assert "- method: lora, 200 steps" in card and "after: 21.00 %" in card
    assert "150 training utterances (10.0 min), 16 held out" in card
    assert "- parity: passed" in card and "library_name: onnx" in card
    assert card.count("- method:") == 1 and "/home/me" not in card


# ---- 4: a repository name the Hub client rejects, a plan whose files changed -------------
@pytest.mark.parametrize("repo", ["me/my model", "me/x--y", "me/.hidden"])
def test_a_repository_name_the_hub_rejects_is_refused_when_planned(tmp_path, repo, capsys):
    model = build_model(tmp_path / "model", "tiny", seed=0)
    with pytest.raises(HubError) as e:
        plan_upload(model, repo)
    assert e.value.code == "hub.bad_repo"
    assert cli(["push", str(model), repo, "--dry-run"]) == 1
    assert "write it as owner/name" in capsys.readouterr().err


def test_a_planned_file_gone_before_the_upload_is_said_plainly(tmp_path):
    model = build_model(tmp_path / "model", "tiny", seed=0)
    plan = plan_upload(model, "someone/tiny-zh")
    (model / "vocab.json").unlink()  # exported again meanwhile, say
    with pytest.raises(HubError) as e:
        push(plan, "hf_fake_token")
    assert e.value.code == "hub.files_changed" and "vocab.json" in str(e.value)


def test_the_share_dialog_hears_back_whatever_the_upload_raised(qtbot, monkeypatch, tmp_path):
    """push_model caught HubError only: anything else left the dialog on "Uploading…"."""
    import engine.tune.hub as hub
    from app.worker import Engine, EngineWorker

    def broken(plan, token, progress=None):
        raise KeyError("an engine bug")

    monkeypatch.setattr(hub, "push", broken)
    worker = EngineWorker(Engine())
    failed = []
    worker.push_failed.connect(failed.append)
    plan = UploadPlan(tmp_path, "someone/x", False, (), "card")
    worker.push_model(plan)
    assert len(failed) == 1 and failed[0].code == "hub.failed"
    assert "someone/x" in str(failed[0])


# ---- 5: --allow-pickle for ONNX ---------------------------------------------------------------
def test_allow_pickle_reaches_the_onnx_export(tmp_path, capsys):
    import torch
    from safetensors.torch import load_file

    folder = build_model(tmp_path / "m", "tiny", seed=0)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    assert cli(["export", str(folder), str(tmp_path / "refused"), "--format", "onnx"]) == 2
    capsys.readouterr()
    out = tmp_path / "onnx"
    assert cli(["export", str(folder), str(out), "--format", "onnx", "--allow-pickle"]) == 0
    assert "parity: passed" in capsys.readouterr().out
    assert (out / "model.onnx").is_file() and not (out / "pytorch_model.bin").exists()


# ---- 6: an ONNX export as a source ---------------------------------------------------------
@pytest.mark.parametrize("options", [ExportOptions("hf"), ExportOptions("onnx", "int8")])
def test_an_onnx_export_is_not_exported_again(tiny_model_dir, tmp_path, options):
    source = _onnx_only(tiny_model_dir, tmp_path / "fp32")
    with pytest.raises(TingxieError) as e:
        list(iter_export(source, tmp_path / "out", options))
    assert e.value.code == "export.onnx_source"
    assert str(source) in str(e.value) and "PyTorch model it was made from" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_an_onnx_export_is_offered_no_export_nor_embeddings(tiny_model_dir, tmp_path):
    """The app offered every format for it (and each failed with transformers' own text)."""
    source = _onnx_only(tiny_model_dir, tmp_path / "fp32")
    assert {"hf_export", "onnx_export", "embeddings"}.isdisjoint(features_of(source))
    assert "bounded_streaming" in features_of(source)  # it still transcribes as its family does
    assert {"hf_export", "onnx_export", "embeddings"} <= features_of(tiny_model_dir)
    # the app's Export dialog greys them saying why (not "wav2vec2 models are not re-written")
    from app.features import capabilities
    from app.i18n import tr

    caps = capabilities(str(source))
    assert caps.why_not("hf_export") == caps.why_not("onnx_export") == tr("feature.export_onnx")
    assert caps.why_not("embeddings") == tr("feature.embeddings_onnx")


# ---- 7: a Whisper folder ---------------------------------------------------------------------
def test_a_whisper_folder_is_refused_with_its_reason_not_sent_to_hugging_face(tmp_path, capsys):
    whisper = _whisper(tmp_path / "whisper-base")
    for fmt in ("hf", "onnx"):
        assert cli(["export", str(whisper), str(tmp_path / fmt), "--format", fmt]) == 2
        err = capsys.readouterr().err
        assert "Whisper (CTranslate2) folder" in err and "copy or share it as it is" in err
        assert "missing" not in err
    assert cli(["export", str(whisper), str(tmp_path / "a"), "--format", "adapter"]) == 2
    err = capsys.readouterr().err
    assert "no LoRA adapter" in err and "Hugging Face" not in err


# ---- 8: an output folder that cannot be written -------------------------------------------
def test_an_output_folder_that_cannot_be_written_is_named_before_anything_loads(
    tmp_path, monkeypatch, capsys
):
    """The message named the hidden temporary sibling with a raw errno (after loading the
    model, for hf). Tests run as root, so the folder's refusal is simulated."""
    from app.errors import error_text
    from app.i18n import language, set_language

    job = _adapter_job(tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()

    def refuse(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == ro:
            raise PermissionError(1, "Operation not permitted")
        return real(*args, dir=dir, **kwargs)

    real = tempfile.TemporaryFile
    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    with pytest.raises(TingxieError) as e:
        export_target(ro / "out", str(job), ExportOptions("hf"))
    assert e.value.code == "export.not_writable"
    assert cli(["export", str(job), str(ro / "out"), "--format", "adapter"]) == 2
    err = capsys.readouterr().err
    assert str(ro / "out") in err and "choose another output folder" in err
    assert ".out.tmp" not in err and "Errno" not in err
    before = language()
    set_language("zh")
    try:
        assert "请选择其他输出文件夹" in error_text(e.value)
    finally:
        set_language(before)
    assert list(ro.iterdir()) == []


# ---- 9: "." -------------------------------------------------------------------------------------
def test_the_current_folder_as_output(tmp_path, monkeypatch, capsys):
    job = _adapter_job(tmp_path)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert cli(["export", str(job), ".", "--format", "adapter"]) == 0
    assert f"wrote {here} " in capsys.readouterr().out
    assert (here / "adapter_config.json").is_file()


# ---- 10: embeddings of an ONNX export -------------------------------------------------------
def test_embed_with_an_onnx_export_says_why_before_loading(tiny_model_dir, tmp_path, capsys):
    source = _onnx_only(tiny_model_dir, tmp_path / "fp32")
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"")  # never read: the model is refused first
    assert cli(["embed", str(clip), "--model", str(source), "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "an ONNX export holds only the logits" in err and str(source) in err


# ---- 11: a local base model in the Hub card ------------------------------------------------
def test_the_hub_card_names_a_hub_base_model_only(tmp_path):
    model = build_model(tmp_path / "model", "tiny", seed=0)
    CARD.write(model)
    card = plan_upload(model, "someone/tiny-zh").card
    assert "base_model:" not in card and "/home/me" not in card
    assert "- base model: `tiny-base`" in card
    hub = ModelCard("facebook/wav2vec2-base", "lora", 1, 1, 1.0, 1, None, None, "x")
    hub.write(model)
    assert "base_model: facebook/wav2vec2-base" in plan_upload(model, "someone/tiny-zh").card
