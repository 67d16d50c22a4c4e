"""Faults found in job files and command-line paths: `tune --write-config` paths, `~` and lists
in a job file, a JSON job with a byte-order mark, `export --check` manifests read before the
model, and `corrections --db` naming no library."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pytest

from engine.audio import write_wav
from engine.cli import main as cli
from engine.tune.config import TuneConfig


def _clip(path: Path, seconds: float = 1.0) -> Path:
    t = np.arange(int(seconds * 16_000)) / 16_000
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    return path


# ---- 2: --write-config keeps the paths as the user meant them ---------------------------------
def test_write_config_paths_mean_what_was_typed(tmp_path, monkeypatch, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "models" / "base").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    args = ["models/base", "data", "out"]
    assert cli(["tune", "jobs/job.yaml", "--write-config", *args]) == 0
    config = TuneConfig.load(tmp_path / "jobs" / "job.yaml")
    assert Path(config.model).resolve() == (tmp_path / "models" / "base").resolve()
    assert Path(config.data).resolve() == (tmp_path / "data").resolve()
    assert Path(config.output_dir).resolve() == (tmp_path / "out").resolve()
    # written relative to the job file's folder: the project folder can move with its jobs
    text = (tmp_path / "jobs" / "job.yaml").read_text(encoding="utf-8")
    assert "data: ../data\n" in text and "output_dir: ../out\n" in text
    # a Hub id is not a path of this machine, and stays as typed
    assert cli(["tune", "jobs/hub.yaml", "--write-config", "owner/model", "data", "/abs/out"]) == 0
    config = TuneConfig.load(tmp_path / "jobs" / "hub.yaml")
    assert (config.model, config.output_dir) == ("owner/model", "/abs/out")


def test_write_config_writes_the_set_values_and_refuses_resume(tmp_path, monkeypatch, capsys):
    """--set was ignored by --write-config (steps: null written), and --resume with it too."""
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    args = ["tune", "jobs/job.yaml", "--write-config", "owner/model", "data", "out"]
    assert cli([*args, "--set", "steps=3", "--set", "domain_text=notes.txt"]) == 0
    config = TuneConfig.load(tmp_path / "jobs" / "job.yaml")
    assert config.steps == 3
    assert Path(config.domain_text).resolve() == (tmp_path / "notes.txt").resolve()
    text = (tmp_path / "jobs" / "job.yaml").read_text(encoding="utf-8")
    assert "domain_text: ../notes.txt\n" in text and "data: ../data\n" in text
    capsys.readouterr()
    assert cli([*args[:1], "jobs/new.yaml", *args[2:], "--set", "steps=-1"]) == 2
    assert "--set" in capsys.readouterr().err and not (tmp_path / "jobs" / "new.yaml").exists()
    assert cli([*args[:1], "jobs/new.yaml", *args[2:], "--resume"]) == 2
    assert "--resume" in capsys.readouterr().err and not (tmp_path / "jobs" / "new.yaml").exists()


# ---- 3: ~ in a job file, a list given for data, a byte-order mark ------------------------------
def test_job_file_paths_starting_with_home_are_expanded(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    job = tmp_path / "jobs" / "job.yaml"
    job.parent.mkdir()
    job.write_text(
        "model: ~/models/base\ndata: ~/rec\noutput_dir: ~/tune-out\ndomain_text: ~/d.txt\n",
        encoding="utf-8",
    )
    config = TuneConfig.load(job)
    assert config.data == str(home / "rec")
    assert config.output_dir == str(home / "tune-out")
    assert config.model == str(home / "models" / "base")
    assert config.domain_text == str(home / "d.txt")
    # the same for a mapping without a config file (the app, --set)
    bare = TuneConfig.from_dict({"model": "m", "data": "~/rec", "output_dir": "~/o"})
    assert (bare.data, bare.output_dir) == (str(home / "rec"), str(home / "o"))


@pytest.mark.parametrize("base", [True, False])
def test_a_list_of_sources_is_refused_with_how_to_combine_them(tmp_path, base):
    data = {"model": "m", "data": ["set-a/manifest.tsv", "set-b/manifest.tsv"], "output_dir": "o"}
    with pytest.raises(ValueError) as e:
        TuneConfig.from_dict(data, base=tmp_path if base else None)
    message = str(e.value)
    assert message.startswith("data: one source per job")
    assert "one manifest" in message and "Tune page" in message


def test_a_path_setting_that_is_not_text_is_refused(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("model: m\ndata: d\noutput_dir: 2024\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"output_dir=2024: expected text"):
        TuneConfig.load(job)


def test_json_job_file_with_a_byte_order_mark(tmp_path):
    job = tmp_path / "job.json"
    job.write_bytes(
        b"\xef\xbb\xbf" + '{"model": "m", "data": "数据", "output_dir": "out"}'.encode()
    )
    assert TuneConfig.load(job).data == str(tmp_path / "数据")


# ---- 10: export --check reads its manifest before the model ----------------------------------
def test_export_check_manifest_without_a_usable_row_is_refused_before_loading(tmp_path, capsys):
    manifest = tmp_path / "heldout.tsv"
    manifest.write_text(f"path\ttext\n{tmp_path / 'moved.wav'}\t一二三\n", encoding="utf-8")
    out = tmp_path / "out"
    # no model there: were it loaded first, the status would be 2 and the message about it
    model = str(tmp_path / "no-model")
    assert cli(["export", model, str(out), "--format", "onnx", "--check", str(manifest)]) == 1
    err = capsys.readouterr().err
    assert "heldout.tsv:2" in err and "moved.wav does not exist" in err
    assert "none of the 1 rows checked is usable" in err
    assert not out.exists()


def test_export_check_skips_bad_rows_and_says_so(tiny_model_dir, tmp_path, capsys):
    good = _clip(tmp_path / "a.wav")
    manifest = tmp_path / "heldout.tsv"
    manifest.write_text(
        f"path\ttext\n{good}\t一二三\n{tmp_path / 'moved.wav'}\t一二三\n", encoding="utf-8"
    )
    out = tmp_path / "out"
    args = ["export", str(tiny_model_dir), str(out), "--format", "onnx", "--check", str(manifest)]
    assert cli(args) == 0
    printed = capsys.readouterr()
    assert "heldout.tsv:3" in printed.err and "skipped" in printed.err
    assert "checked on 1 utterances" in printed.out
    assert (out / "model.onnx").is_file()


# ---- corrections --db: a path that names no library ----------------------------------------
def test_corrections_refuses_a_db_that_does_not_exist(tiny_model_dir, tmp_path, capsys):
    typo = tmp_path / "libary.db"
    args = ["corrections", "set", "--model", str(tiny_model_dir), "--db", str(typo)]
    assert cli(args) == 1
    assert "no such library database" in capsys.readouterr().err
    assert not typo.exists()


def test_corrections_db_with_home_is_expanded(tiny_model_dir, tmp_path, monkeypatch, capsys):
    from engine.library.store import Store

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    Store(tmp_path / "home" / "lib.db").close()
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    cli(["corrections", "set", "--model", str(tiny_model_dir), "--db", "~/lib.db"])
    assert "no such library database" not in capsys.readouterr().err
    assert list((tmp_path / "work").iterdir()) == []  # no folder named ~


def test_set_paths_are_relative_to_the_current_folder_as_typed(tmp_path, monkeypatch):
    """Old: `tune jobs/job.yaml --set data=rec2` read `jobs/rec2` (the job file's folder),
    not the `rec2` beside the user, unlike --write-config's paths."""
    import argparse

    from engine.cli.tune import _load_config, add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())

    for folder in ("rec", "rec2", "jobs", "models/base"):
        (tmp_path / folder).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert cli(["tune", "jobs/job.yaml", "--write-config", "models/base", "rec", "out"]) == 0

    def loaded(*overrides: str) -> TuneConfig:
        sets = [x for item in overrides for x in ("--set", item)]
        return _load_config(parser.parse_args(["tune", "jobs/job.yaml", *sets]))

    config = loaded("data=rec2", "output_dir=out2", "model=models/base")
    assert Path(config.data) == (tmp_path / "rec2").resolve()
    assert Path(config.output_dir) == (tmp_path / "out2").resolve()
    assert Path(config.model) == (tmp_path / "models" / "base").resolve()
    assert loaded("model=owner/name").model == "owner/name"  # no folder here: a Hub id
    assert loaded("data=/abs/rec").data == "/abs/rec"


def test_write_config_prints_a_command_that_pastes_whole(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "my jobs" / "job.yaml"
    assert cli(["tune", str(config), "--write-config", "owner/model", "data", "out"]) == 0
    command = capsys.readouterr().out.split("then run: ", 1)[1].strip()
    assert shlex.split(command) == ["tingxie-cli", "tune", str(config)]
