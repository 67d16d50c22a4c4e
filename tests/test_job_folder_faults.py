"""Job folders as they are found on disk later: written by a newer Tingxie, copied from another
machine, moved to another data folder, set up with a path typed relative to where the app
runs, or cut off while being made (tiny random model and tone corpus: seconds per job)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_train import _config

from engine.testmodels import build_model
from engine.tune import child
from engine.tune.config import TuneConfig
from engine.tune.events import JobFinished, JobStarted
from engine.tune.export import CARD_FILE, ModelCard, read_card
from engine.tune.jobs import CHECKPOINT_STATE, JobFolder, find_jobs, rename_job, tuned_models
from engine.tune.testdata import tone_corpus


def _job(root: Path, name: str, sources: list[str] | None = None) -> JobFolder:
    config = TuneConfig(model="base", data="x", output_dir="y", steps=10)
    return JobFolder.create(root, name, sources or [str(root / "a.tsv")], config)


def _finished(root: Path, name: str) -> JobFolder:
    """A job as a finished run leaves it, without its checkpoints (copied without them)."""
    job = _job(root, name)
    for folder in (job.model_dir, job.adapter_dir):
        folder.mkdir()
        ModelCard("base", "lora", 10, 8, 30.0, 2, 0.5, 0.25, "x").write(folder)
    return job


def _edit(path: Path, change) -> None:
    record = json.loads(path.read_text(encoding="utf-8"))
    change(record)
    path.write_text(json.dumps(record), encoding="utf-8")


# ---- cards and specs written by another version ------------------------------------------


def test_a_card_from_a_newer_version_or_without_its_cer_is_read(tmp_path):
    newer = _finished(tmp_path, "newer")
    _edit(newer.model_dir / CARD_FILE, lambda d: d.update(speaker_adapt=True))
    unmeasured = _finished(tmp_path, "unmeasured")
    _edit(unmeasured.model_dir / CARD_FILE, lambda d: (d.pop("cer_before"), d.pop("cer_after")))
    card = read_card(newer.model_dir)
    assert card is not None and card.steps == 10 and card.cer_after == 0.25
    card = read_card(unmeasured.model_dir)
    assert card is not None and card.cer_before is None and card.cer_after is None
    assert newer.state() == unmeasured.state() == "finished"
    assert sorted(m.name for m in tuned_models(tmp_path)) == ["newer", "unmeasured"]


def test_a_saved_model_is_finished_even_when_its_card_cannot_be_read(tmp_path):
    damaged = _finished(tmp_path, "damaged")
    (damaged.model_dir / CARD_FILE).write_text("{not json", encoding="utf-8")
    assert damaged.state() == "finished"  # never "new": the app would offer it for discard
    # a model with no card and no checkpoint to resume from is kept as well
    bare = _job(tmp_path, "bare")
    bare.model_dir.mkdir()
    (bare.model_dir / "model.bin").write_bytes(b"weights")
    assert bare.state() == "finished"
    # a Whisper job killed before measuring its model (no card yet) resumes and writes it again
    (bare.path / "checkpoints" / "step-4").mkdir(parents=True)
    (bare.path / "checkpoints" / "step-4" / CHECKPOINT_STATE).write_text("{}")
    assert bare.state() == "stopped"


def test_a_finished_job_whose_job_json_has_an_unknown_key_is_listed(tmp_path):
    newer = _finished(tmp_path, "newer spec")
    _edit(newer.path / "job.json", lambda d: d.update(notes="ward 3"))
    assert newer.spec.name == "newer spec"
    damaged = _finished(tmp_path, "damaged spec")
    (damaged.path / "job.json").write_text("{not json", encoding="utf-8")
    models = {m.name: m for m in tuned_models(tmp_path)}
    assert set(models) == {"newer spec", damaged.id}  # listed under its folder's name
    assert models[damaged.id].sources == () and models[damaged.id].base_model == "base"
    assert models["newer spec"].sources == (str(tmp_path / "a.tsv"),)


def test_renaming_a_job_keeps_what_a_newer_version_wrote_into_its_job_json(tmp_path):
    """Before: job.json was written again with the four fields this version knows."""
    newer = _finished(tmp_path, "newer spec")
    _edit(newer.path / "job.json", lambda d: d.update(notes="ward 3"))
    rename_job(newer, " clinic, May ")
    record = json.loads((newer.path / "job.json").read_text(encoding="utf-8"))
    assert record["notes"] == "ward 3" and record["name"] == "clinic, May"
    assert newer.spec.name == "clinic, May" and newer.spec.base_model == "base"


@pytest.mark.parametrize(
    "damage", [b"{not json", b"\xff\xfe{}", b"[1, 2]"], ids=["json", "bytes", "not-a-mapping"]
)
def test_a_saved_model_whose_card_cannot_be_read_is_listed_without_its_figures(tmp_path, damage):
    """Before: it was left out of My models, so it could not be used, exported or deleted."""
    damaged = _finished(tmp_path, "damaged card")
    (damaged.model_dir / CARD_FILE).write_bytes(damage)
    _finished(tmp_path, "good")
    bare = _job(tmp_path, "no card")  # saved without one, nothing to resume: finished too
    bare.model_dir.mkdir()
    stopped = _job(tmp_path, "stopped")  # a checkpoint and no card yet: resume writes it
    stopped.model_dir.mkdir()
    (stopped.path / "checkpoints" / "step-4").mkdir(parents=True)
    (stopped.path / "checkpoints" / "step-4" / CHECKPOINT_STATE).write_text("{}")
    models = {m.name: m for m in tuned_models(tmp_path)}
    assert set(models) == {"damaged card", "good", "no card"}
    for name in ("damaged card", "no card"):
        m = models[name]
        assert not m.card_readable and m.method is None and m.steps is None
        assert m.cer_before is None and m.cer_after is None
        assert m.base_model == "base" and m.sources == (str(tmp_path / "a.tsv"),)  # job.json's
    assert models["good"].card_readable and models["good"].steps == 10


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cer_before", "0.25"),  # the app's window did not open (a str formatted as a number)
        ("train_seconds", "60"),  # push --dry-run: TypeError
        ("cer_after", True),  # a bool is no number, though Python counts it an int
        ("steps", 10.5),
        ("normalization", "nfkc"),  # was read as the tuple ('n', 'f', 'k', 'c')
        ("method", ["lora"]),
        ("cer_before", float("nan")),
    ],
)
def test_a_card_with_a_value_of_the_wrong_type_is_listed_as_unreadable(
    tmp_path, caplog, field, value
):
    """Before: the value was taken as it was, and failed where it was formatted."""
    job = _finished(tmp_path, "typed")
    _edit(job.model_dir / CARD_FILE, lambda d: d.update({field: value}))
    with caplog.at_level(logging.WARNING, logger="tingxie.export"):
        (model,) = tuned_models(tmp_path)
    assert not model.card_readable and model.steps is None
    assert model.cer_before is None and model.cer_after is None
    said = [r.getMessage() for r in caplog.records if r.name == "tingxie.export"]
    assert said and str(job.model_dir / CARD_FILE) in said[0] and f"{field} is" in said[0]


def test_a_card_whose_figures_are_whole_numbers_or_null_is_read(tmp_path):
    job = _finished(tmp_path, "typed")
    _edit(job.model_dir / CARD_FILE, lambda d: d.update(cer_after=0, train_seconds=60))
    _edit(job.model_dir / CARD_FILE, lambda d: d.update(cer_before=None, normalization=["a"]))
    card = read_card(job.model_dir)
    assert card is not None and card.cer_after == 0 and card.train_seconds == 60
    assert card.cer_before is None and card.normalization == ("a",)


@pytest.mark.parametrize(
    ("field", "value"), [("created", 5), ("name", None), ("sources", "a.tsv"), ("sources", [1])]
)
def test_a_job_json_with_a_value_of_the_wrong_type_is_listed_under_its_folder(
    tmp_path, caplog, field, value
):
    """Before: a str created[:16] of 5 or a sources string read as its letters."""
    job = _finished(tmp_path, "typed")
    _edit(job.path / "job.json", lambda d: d.update({field: value}))
    with pytest.raises(ValueError, match=f"job.json: {field} is"):
        job.spec  # noqa: B018
    with caplog.at_level(logging.WARNING, logger="tingxie.train"):
        (model,) = tuned_models(tmp_path)
    assert model.name == job.id and model.sources == () and model.created == ""
    assert model.card_readable and model.steps == 10
    assert f"{field} is" in caplog.text


# ---- paths ---------------------------------------------------------------------------------


def test_a_moved_job_reads_its_settings_from_where_it_is(tmp_path):
    sources = [str(tmp_path / "a.tsv"), str(tmp_path / "b.tsv")]
    for i, source in enumerate(sources):
        Path(source).write_text(f"path\ttext\n{i}.wav\t天\n", encoding="utf-8")
    job = _job(tmp_path / "old", "two sources", sources)
    assert job.config.data == str(job.path / "data.tsv")
    shutil.move(tmp_path / "old", tmp_path / "new")
    moved = JobFolder(tmp_path / "new" / job.id)
    assert moved.config.output_dir == str(moved.path)
    assert moved.config.data == str(moved.path / "data.tsv")  # its own copy, rebased
    assert moved.spec.sources == tuple(sources)


def test_a_job_on_several_sources_names_its_own_folder_in_its_config(tmp_path):
    """What config.json says as written (not as `JobFolder.config` rebases it): the folder the
    job ended up in, and the combined manifest there."""
    sources = [str(tmp_path / "a.tsv"), str(tmp_path / "b.tsv")]
    for i, source in enumerate(sources):
        Path(source).write_text(f"path\ttext\n{i}.wav\t天\n", encoding="utf-8")
    root = tmp_path / "tuning"
    job = _job(root, "two sources", sources)
    saved = TuneConfig.load(job.config_path)
    assert saved.output_dir == str(job.path) and saved.data == str(job.path / "data.tsv")
    assert (job.path / "data.tsv").is_file() and (job.path / ".tingxie-job").is_file()
    assert [p.name for p in root.iterdir()] == [job.id] and find_jobs(root) == [job]


# Makes a job on the sources in argv[2:] under argv[1] in a thread, as the app's supervisor
# does, with a combine that never ends (a large data set); prints the folder being made once
# it holds part of its manifest, and ends the process at a line on stdin as app.main does when
# the supervisor's thread is still busy as the window closes (os._exit: no cleanup runs).
_CUT_OFF = """
import os, sys, threading
from pathlib import Path
from engine.tune import jobs
from engine.tune.config import TuneConfig

def combining(sources, manifest):
    manifest.write_text("path\\ttext\\n", encoding="utf-8")
    print(manifest.parent.name, flush=True)
    threading.Event().wait()

def make():
    config = TuneConfig(model="base", data="x", output_dir="y")
    try:
        jobs.JobFolder.create(Path(sys.argv[1]), "big", sys.argv[2:], config)
    finally:  # one that fails before combining: an empty line, not a test waiting for one
        print(flush=True)

jobs.combine_sources = combining
threading.Thread(target=make, daemon=True).start()
sys.stdin.readline()
os._exit(0)
"""


def test_a_job_folder_cut_off_while_its_sources_combine_is_removed_once_its_maker_is_gone(
    tmp_path,
):
    """Before: the app ending mid-combine left a folder with the job mark and part of a
    manifest, no job.json: never listed, never removed. One a live process makes is left be."""
    root = tmp_path / "tuning"
    command = [sys.executable, "-c", _CUT_OFF, str(root), "a.tsv", "b.tsv"]
    project = Path(__file__).resolve().parents[1]
    maker = subprocess.Popen(command, cwd=project, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        making = root / maker.stdout.readline().decode().strip()
        assert making != root and (making / "data.tsv").is_file()
        assert find_jobs(root) == [] and making.is_dir()  # its maker lives: left alone
    finally:
        maker.communicate(b"\n", timeout=60)  # the window closes
    assert maker.returncode == 0
    assert find_jobs(root) == [] and list(root.iterdir()) == []


def test_only_a_making_cut_off_on_this_host_is_removed(tmp_path):
    """A job folder another host is making (jobs on a shared network folder: its process
    cannot be seen from here) and hidden folders Tingxie did not make stay."""
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    kept = [
        tmp_path / f".tingxie-new-{gone.stdout.strip()}@elsewhere.invalid-0123abcd",
        tmp_path / ".tingxie-new-notes",
        tmp_path / ".estimates",
    ]
    for folder in kept:
        folder.mkdir()
        (folder / "data.tsv").write_text("path\ttext\n", encoding="utf-8")
    assert find_jobs(tmp_path) == [] and all((f / "data.tsv").is_file() for f in kept)


def test_a_relative_domain_text_is_read_from_where_it_was_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("ward-notes.txt").write_text("天地人和\n", encoding="utf-8")
    config = TuneConfig(model="base", data="x", output_dir="y", domain_text="ward-notes.txt")
    job = JobFolder.create(tmp_path / "tuning", "ward", [str(tmp_path / "a.tsv")], config)
    assert job.config.domain_text == str(tmp_path / "ward-notes.txt")
    assert job.config.model == "base"  # no such folder here: a Hub id, as typed


@pytest.mark.slow
@pytest.mark.parametrize("sources", [1, 2])
def test_a_moved_job_resumes_from_its_checkpoint_in_its_new_folder(tmp_path, sources):
    """Two sources: the job trains on its own combined data.tsv, which moved with it."""
    model = build_model(tmp_path / "base", "tiny", chars="天地人和", seed=0)
    data = [
        tone_corpus(tmp_path / f"data{i}", 16 // sources, char_seconds=0.1, seed=i)
        for i in range(sources)
    ]
    config = _config(
        (model, data[0]), Path("unused"), method="lora", steps=2, learning_rate=1e-2,
        eval_every=1, save_every=1,
    )  # fmt: skip
    old_root = tmp_path / "old" / "tuning"
    job = JobFolder.create(old_root, "clinic", [str(d) for d in data], config)
    assert child.run("run", job.path) == 0
    # killed while saving its model: the checkpoints are kept, the model is not
    shutil.rmtree(job.model_dir)
    shutil.rmtree(job.adapter_dir)
    new_root = tmp_path / "new" / "tuning"
    new_root.parent.mkdir()
    shutil.move(old_root, new_root)
    moved = JobFolder(new_root / job.id)
    assert moved.state() == "stopped"
    assert child.run("run", moved.path, resume=True) == 0
    events = moved.events()
    assert [e.resumed_from_step for e in events if isinstance(e, JobStarted)][-1] == 2
    assert isinstance(events[-1], JobFinished)
    assert events[-1].result.model_dir == moved.model_dir
    assert moved.state() == "finished" and not old_root.exists()
    assert [m.job for m in tuned_models(new_root)] == [moved]
