"""Exports stage by stage (engine.tune.formats): each stage is named and numbered as it begins,
a cancel between stages stops the export with nothing of it left (no staged folder, no scratch
file, an earlier export in place as it was), and a folder a person picks is never replaced.
Tiny random models, no network."""

from __future__ import annotations

import tempfile
import threading

import pytest

from engine.errors import TingxieError
from engine.tune.formats import (
    ExportCancelled,
    ExportOptions,
    ExportResult,
    export_stages,
    export_target,
    iter_export,
    model_folder,
)


def test_each_format_names_its_stages():
    assert export_stages(ExportOptions("adapter")) == ("writing",)
    assert export_stages(ExportOptions("hf")) == ("loading", "writing")
    assert export_stages(ExportOptions("onnx")) == ("loading", "writing", "checking")
    int8 = ("loading", "writing", "quantizing", "checking")
    assert export_stages(ExportOptions("onnx", "int8")) == int8


@pytest.mark.parametrize("fmt", ["hf", "adapter"])
def test_a_check_manifest_is_refused_where_nothing_would_be_checked(fmt, tmp_path, capsys):
    """hf and adapter exports copy the weights unchanged and compare nothing: a --check given
    with them was silently ignored (read as a check that passed); it is refused up front."""
    from engine.cli import main

    with pytest.raises(ValueError, match="onnx only"):
        ExportOptions(fmt, check=tmp_path / "m.tsv")
    code = main(
        ["export", "some/model", str(tmp_path / "out"), "--format", fmt, "--check", "m.tsv"]
    )
    assert code == 2
    assert "m.tsv applies to format onnx only" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_cancelled_int8_export_leaves_nothing_and_the_earlier_export_as_it_was(
    tiny_model_dir, tmp_path, monkeypatch
):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the fp32 graph waits
    out = tmp_path / "exports" / "onnx"
    out.mkdir(parents=True)
    (out / "README.md").write_text("an earlier export", encoding="utf-8")
    cancel = threading.Event()
    seen = []
    with pytest.raises(ExportCancelled) as e:
        for item in iter_export(tiny_model_dir, out, ExportOptions("onnx", "int8"), cancel):
            seen.append((item.stage, item.index, item.count))
            if item.stage == "quantizing":  # the fp32 graph is written: cancel before int8
                cancel.set()
    assert seen == [("loading", 1, 4), ("writing", 2, 4), ("quantizing", 3, 4)]
    assert e.value.code == "export.cancelled" and str(out) in str(e.value)
    assert [p.name for p in out.parent.iterdir()] == ["onnx"]  # no .onnx.tmp
    assert [p.name for p in out.iterdir()] == ["README.md"]
    assert (out / "README.md").read_text(encoding="utf-8") == "an earlier export"
    assert list(scratch.iterdir()) == []


def test_a_merged_model_save_cancelled_after_its_weights_leaves_nothing(
    tiny_model_dir, tmp_path, monkeypatch
):
    """The cancel arrives while the weights are written (the long part of an hf export): the
    export stops before the processor and card, and the half-made folder is removed."""
    from transformers import PreTrainedModel

    cancel = threading.Event()
    save = PreTrainedModel.save_pretrained

    def save_then_cancel(self, *args, **kwargs):
        save(self, *args, **kwargs)
        cancel.set()  # as if the user pressed Cancel meanwhile

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", save_then_cancel)
    out = tmp_path / "merged"
    stages = []
    with pytest.raises(ExportCancelled):
        for item in iter_export(tiny_model_dir, out, ExportOptions("hf"), cancel):
            stages.append(item.stage)
    assert stages == ["loading", "writing"]
    assert list(tmp_path.iterdir()) == []


def test_an_export_not_cancelled_ends_with_its_result(tiny_model_dir, tmp_path):
    items = list(iter_export(tiny_model_dir, tmp_path / "hf", ExportOptions("hf"), None))
    assert [i.stage for i in items[:-1]] == ["loading", "writing"]
    assert isinstance(items[-1], ExportResult) and (tmp_path / "hf" / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]


def test_a_chosen_folder_with_other_files_gets_a_subfolder(tmp_path):
    onnx = ExportOptions("onnx", "int8")
    assert export_target(tmp_path / "new", "owner/model", onnx) == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    assert export_target(tmp_path / "empty", "owner/model", onnx) == tmp_path / "empty"
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "letter.txt").write_text("keep me")
    job = tmp_path / "tuning" / "20250101-clinic"
    target = export_target(tmp_path / "documents", str(job), onnx)
    assert target == tmp_path / "documents" / "20250101-clinic-onnx-int8"
    adapter = export_target(tmp_path / "documents", f"{job}/", ExportOptions("adapter"))
    assert adapter.name == "20250101-clinic-adapter"
    target.mkdir()
    (target / "model.onnx").write_bytes(b"")
    with pytest.raises(TingxieError, match="choose another output folder") as e:
        export_target(tmp_path / "documents", str(job), onnx)
    assert e.value.code == "export.target_exists"


def test_a_tuning_job_stands_for_its_model(tmp_path):
    """The app's job folder holds its settings as config.json beside model/: exporting the job
    exports the model (the settings file must not be taken for the model's config)."""
    from engine.tune.config import TuneConfig
    from engine.tune.jobs import JobFolder

    job = JobFolder.create(
        tmp_path, "clinic", ["a.tsv"], TuneConfig(model="m", data="x", output_dir="y")
    )
    assert model_folder(str(job.path)) == str(job.path)  # nothing tuned yet
    (job.model_dir).mkdir()
    (job.model_dir / "config.json").write_text('{"model_type": "wav2vec2"}', encoding="utf-8")
    assert model_folder(str(job.path)) == str(job.model_dir)
    assert model_folder("owner/model") == "owner/model"


def test_a_cancel_after_the_result_comes_too_late_to_undo_it(tmp_path):
    job = tmp_path / "job"
    (job / "adapter").mkdir(parents=True)
    (job / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    cancel = threading.Event()
    items = []
    for item in iter_export(job, tmp_path / "adapter", ExportOptions("adapter"), cancel):
        items.append(item)
        if isinstance(item, ExportResult):
            cancel.set()  # pressed just as it finished
    assert [type(i).__name__ for i in items] == ["ExportStage", "ExportResult"]
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
