"""Faults left in the atomic folder writer and the tuning job's error codes, each with the test
that failed before its fix: a folder written through a symlink, a checkpoint folder that became
read-only, the tuning codes filed under `model.`, and the form reading TuneConfig's English back
into the UI language with a table of its wordings. No model, no network."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import test_app_i18n

from engine.atomic import atomic_folder, staged_folder
from engine.cli import main as cli
from engine.errors import MESSAGES, TingxieError
from engine.tune.cache import checkpoint_unwritten
from engine.tune.config import TuneConfig
from engine.tune.jobs import claim_output_dir

# test_app_i18n's UI-language switch (bound by name, as pytest finds fixtures)
language = test_app_i18n.language


# ---- 1: a target that is a symlink to a folder -------------------------------------------------


def _linked(root: Path) -> tuple[Path, Path]:
    """(a symlink, the folder it points to, holding an older save)."""
    real = root / "big-disk" / "models"
    real.mkdir(parents=True)
    (real / "old.safetensors").write_bytes(b"old")
    link = root / "models"
    link.symlink_to(real, target_is_directory=True)
    return link, real


def test_a_folder_written_through_a_symlink_keeps_the_link(tmp_path):
    """Before: the link was renamed aside and removed, and a plain folder took its name: the
    person's linked location (another disk) got nothing."""
    link, real = _linked(tmp_path)
    atomic_folder(link, lambda tmp: (tmp / "model.safetensors").write_bytes(b"new"))
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert sorted(p.name for p in real.iterdir()) == ["model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big-disk", "models"]
    assert sorted(p.name for p in real.parent.iterdir()) == ["models"]  # no staging left


def test_a_failed_write_through_a_symlink_leaves_link_and_folder_as_they_were(tmp_path):
    link, real = _linked(tmp_path)
    with pytest.raises(OSError), staged_folder(link) as tmp:
        (tmp / "model.safetensors").write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert link.is_symlink() and sorted(p.name for p in real.iterdir()) == ["old.safetensors"]
    assert sorted(p.name for p in real.parent.iterdir()) == ["models"]


# ---- 2: a checkpoint that cannot be written in a folder become read-only -----------------------


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_read_only_checkpoint_folder_is_not_called_a_full_disk(tmp_path, code):
    """Before: "…could not be written (Read-only file system); … free some space"."""
    kept = tmp_path / "checkpoints" / "step-0000002"
    error = checkpoint_unwritten(tmp_path, "the checkpoint of step 3", OSError(code, "x"), kept)
    message = str(error)
    assert isinstance(error, TingxieError) and error.code == "tune.checkpoint_unwritable"
    assert "free" not in message and "space" not in message
    assert str(tmp_path) in message and "step-0000002" in message
    assert "make" in message and "writable" in message and "resume" in message
    error = checkpoint_unwritten(tmp_path, "the tuned model", OSError(code, "x"), None)
    assert error.code == "tune.checkpoint_unwritable_none" and "free" not in str(error)
    assert "writable" in str(error) and "start again" in str(error)


def test_a_full_disk_mid_job_still_says_to_free_space(tmp_path):
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    kept = tmp_path / "checkpoints" / "step-0000001"
    error = checkpoint_unwritten(tmp_path, "the checkpoint of step 2", full, kept)
    assert error.code == "tune.checkpoint_full" and str(error) == (
        f"{tmp_path}: the checkpoint of step 2 could not be written (No space left on device); "
        "the last complete checkpoint (step-0000001) is kept; free some space, then resume the job"
    )
    error = checkpoint_unwritten(tmp_path, "the tuned model", full, None)
    assert error.code == "tune.checkpoint_full_none" and "free some space" in str(error)


def test_a_read_only_checkpoint_reads_in_chinese(language):
    from app.errors import error_text

    language("zh")
    error = checkpoint_unwritten(Path("/o"), "x", OSError(errno.EROFS, "ro"), Path("/o/c/s-1"))
    said = error_text(error)
    assert said != str(error) and "/o" in said and "s-1" in said


# ---- 3: the tuning job's codes under their own prefix ---------------------------------------


def test_the_tuning_jobs_codes_are_filed_under_tune(tmp_path):
    """Before: model.tune_output_in_use, …: filed with model loading, which they are not."""
    assert [code for code in MESSAGES if code.startswith("model.tune")] == []
    folder = tmp_path / "o"
    held = claim_output_dir(folder, resume=False)
    try:
        with pytest.raises(TingxieError) as in_use:
            claim_output_dir(folder, resume=False)
    finally:
        held.close()
    assert in_use.value.code == "tune.output_in_use"


# ---- 4: TuneConfig's setting problems coded, the form worded by code --------------------------


@pytest.mark.parametrize(
    "setting, code, english",
    [
        (dict(steps="x"), "tune.setting_whole_number", "steps='x': expected a whole number"),
        (dict(learning_rate="nan"), "tune.setting_finite", "learning_rate='nan': must be a finite "
         "number"),
        (dict(steps=0), "tune.setting_at_least_one", "steps=0: must be at least 1"),
        (dict(layerdrop=1.0), "tune.setting_fraction", "layerdrop=1.0: choose a value in [0, 1)"),
        (dict(extend_vocab="yes"), "tune.setting_true_or_false",
         "extend_vocab='yes': expected true or false"),
        (dict(method="x"), "tune.setting_choice", "method='x': choose one of lora, partial, full"),
        (dict(micro_batch_seconds=0.5), "tune.setting_micro_batch",
         "micro_batch_seconds: must hold at least one second of audio"),
    ],
)  # fmt: skip
def test_a_setting_problem_is_coded_and_its_english_is_unchanged(setting, code, english):
    """Before: a bare ValueError, which the form read back with a regex and a table of its
    English wordings (a reworded message fell back to English in the Chinese UI)."""
    with pytest.raises(ValueError) as rejected:
        TuneConfig(model="m", data="d", output_dir="o", **setting)
    error = rejected.value
    assert isinstance(error, TingxieError) and error.code == code and str(error) == english
    assert error.params["name"] == next(iter(setting))


def test_the_form_words_a_setting_problem_by_its_code(qtbot, language):
    from app.tune.form import ConfigForm

    language("zh")
    form = ConfigForm()
    qtbot.addWidget(form)
    form.fields["lora_dropout"].widget.setText("2")
    with pytest.raises(ValueError) as rejected:
        form.config("m", "d", "o")
    cause = rejected.value.__cause__
    assert isinstance(cause, TingxieError) and cause.code == "tune.setting_fraction"
    assert str(rejected.value) == "lora_dropout=2.0：请填写 0 到 1 之间的值（不含 1）"
    language("en")
    with pytest.raises(ValueError) as rejected:
        form.config("m", "d", "o")
    assert str(rejected.value) == "lora_dropout=2.0: choose a value in [0, 1)"


def test_the_cli_says_a_setting_problem_in_the_same_english(tmp_path, capsys):
    job = tmp_path / "job.yaml"
    job.write_text(f"model: m\ndata: d\noutput_dir: {tmp_path / 'o'}\n", encoding="utf-8")
    assert cli(["tune", str(job), "--set", "steps=x"]) == 2
    assert capsys.readouterr().err.strip() == "error: --set: steps='x': expected a whole number"
