"""The engine side of tuning from the app: events over the wire, job folders and the catalogue of
tuned models, the data check, the measured estimate, and the child process (tiny random model
and tone corpus: seconds per job)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from engine.metrics import cer
from engine.testmodels import build_model
from engine.tune import wire
from engine.tune.config import TuneConfig
from engine.tune.events import (
    CheckpointSaved,
    Estimate,
    Evaluated,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobResult,
    JobStarted,
    StepProgress,
)
from engine.tune.export import ModelCard, read_card
from engine.tune.jobs import (
    EventLog,
    JobFolder,
    delete_job,
    find_jobs,
    rename_job,
    running_job,
    tuned_models,
)
from engine.tune.prepare import check_data, combine_sources, duration_histogram, load_sources
from engine.tune.testdata import tone_corpus

ROOT = Path(__file__).resolve().parents[1]
CHARS = "天地人和"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("jobs")
    model = build_model(root / "base", "tiny", chars=CHARS, seed=0)
    return model, tone_corpus(root / "data", 16, char_seconds=0.1, seed=0)


def _config(corpus, **overrides) -> TuneConfig:
    model, manifest = corpus
    settings = dict(
        model=str(model),
        data=str(manifest),
        output_dir="unused",
        method="lora",
        steps=4,
        learning_rate=1e-2,
        batch_seconds=2.0,
        micro_batch_seconds=1.0,
        min_seconds=0.1,
        heldout_fraction=0.2,
        eval_every=2,
        save_every=2,
        mask_time_prob=0.0,
        precision="fp32",
        device="cpu",
    )
    settings.update(overrides)
    return TuneConfig(**settings)


# ---- wire ------------------------------------------------------------------------------


def _every_event(tmp_path: Path) -> list:
    config = TuneConfig(model="m", data="d", output_dir=str(tmp_path)).resolved()
    result = cer(["天地人", "和"], ["天人", "和和"])
    return [
        JobStarted(
            config, 9, 1, 12.5, "table", 2, ("half width",), "龘", 0.08, 10, 99, "cpu", "fp32", 1, 0
        ),
        StepProgress(3, 10, 1.25, 1e-3, 4.5, 7.0, 1, examples=4, seconds=0.9),
        Evaluated(0, result.cer, result, (("天地人", "天人"),)),
        Evaluated(4, math.inf, cer([""], ["x"])),
        CheckpointSaved(4, tmp_path / "checkpoints" / "step-0000004", True),
        JobFinished(JobResult(tmp_path / "model", None, 0.5, 0.25, 4, 4, "abc")),
        JobFinished(JobResult(tmp_path / "model", tmp_path / "adapter", None, None, 4, 4)),
        JobCancelled(3, None),
        JobFailed("data d does not exist; give a manifest"),
        JobFailed("m is damaged", "model.bad_weights", (("path", "m"), ("detail", "cut"))),
        Estimate(3.5, 0.25, 1.0, 200, 3, 2_000_000_000, 0, "cpu", 4),
    ]


def test_every_event_survives_the_wire(tmp_path):
    """Round trip of each event type, nested records, paths, None and infinite CER included;
    a mutation that dropped a type conversion (Path, tuple, CerResult) fails the equality."""
    for event in _every_event(tmp_path):
        line = wire.encode(event)
        assert "\n" not in line
        back = wire.decode(line)
        assert back == event, type(event).__name__
        assert type(back) is type(event)
    started = wire.decode(wire.encode(_every_event(tmp_path)[0]))
    assert isinstance(started.config.normalize, type(TuneConfig(model="m", data="d",
                      output_dir="o").normalize))  # fmt: skip


def test_the_wire_refuses_what_is_not_an_event():
    with pytest.raises(TypeError, match="not a tuning event"):
        wire.encode(ModelCard("m", "lora", 1, 1, 1.0, 1, None, None, "d"))
    for line in ('{"event": "Nope"}', "not json", '{"event": "StepProgress", "bogus": 1}'):
        with pytest.raises(wire.WireError):
            wire.decode(line)


def test_event_log_reads_only_whole_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    assert log.read_new() == []  # no file yet
    a, b = JobCancelled(1, None), JobFailed("x")
    line_b = wire.encode(b)
    path.write_text(wire.encode(a) + "\n" + line_b[:10], encoding="utf-8")
    assert log.read_new() == [a]  # the torn line waits
    with path.open("a", encoding="utf-8") as f:
        f.write(line_b[10:] + "\ngarbage\n")
    assert log.read_new() == [b]  # garbage skipped
    assert log.read_new() == []


# ---- data ------------------------------------------------------------------------------


def test_duration_histogram():
    assert duration_histogram([]) == ()
    bins = duration_histogram([1.0, 1.1, 2.0, 4.0], bins=3)
    assert [n for _, _, n in bins] == [2, 1, 1]  # [1, 2) [2, 3) [3, 4]
    assert bins[0][0] == 1.0 and bins[-1][1] == 4.0


def test_sources_combine_into_one_manifest_keeping_spans(tmp_path, corpus):
    _, manifest = corpus
    spans = tmp_path / "spans.tsv"
    clip = manifest.parent / "clips" / "u0000.wav"
    spans.write_text(f"path\ttext\tstart\tend\n{clip}\t天\t0.0\t0.1\n", encoding="utf-8")
    assert combine_sources([str(manifest)], tmp_path / "x.tsv") == str(manifest)
    data = combine_sources([str(manifest), str(spans)], tmp_path / "job" / "data.tsv")
    combined = load_sources([data])
    assert len(combined.examples) == 17
    assert combined.examples[-1].start == 0.0 and combined.examples[-1].end == 0.1
    assert {e.text for e in combined.examples[:16]} == {
        e.text for e in load_sources([manifest]).examples
    }


def test_check_reports_what_the_job_would_find(tmp_path, corpus):
    _, manifest = corpus
    extra = tmp_path / "extra.tsv"
    clip = manifest.parent / "clips" / "u0001.wav"
    extra.write_text(
        f"path\ttext\n{clip}\t天龘\nmissing.wav\t天\n", encoding="utf-8"
    )  # an unknown character, a missing file
    check = check_data([manifest, extra], _config(corpus))
    kinds = {i.kind: i for i in check.issues}
    assert not check.blocking
    assert kinds["unknown_chars"].detail == "龘"
    assert kinds["skipped_rows"].count == 2
    assert "little_data" in kinds  # a few seconds of tones
    assert check.train_examples + check.heldout_examples == 16
    assert sum(n for _, _, n in check.histogram) == 16
    # the same rows the job holds out (the split is by utterance id)
    events = list(_run_job(corpus, tmp_path / "job"))
    started = next(e for e in events if isinstance(e, JobStarted))
    assert started.heldout_examples == check.heldout_examples
    grown = check_data([manifest, extra], _config(corpus, extend_vocab=True))
    assert "unknown_chars" not in {i.kind for i in grown.issues}
    assert grown.train_examples + grown.heldout_examples == 17


def test_the_check_counts_same_named_clips_of_two_training_sets_apart(tmp_path, corpus):
    """Two training sets as Review writes them (clips/00000.wav, … in each) checked together.
    (Before: durations were kept by file name, so the check showed the long set's for both,
    90 s of training audio where there are 50, and no little_data warning.)"""
    import numpy as np

    from engine.audio import write_wav
    from engine.tune.data import manifest_text

    sets = []
    for name, seconds in (("a", 1.0), ("b", 9.0)):
        rows = [(f"clips/{i:05d}.wav", "天地") for i in range(6)]
        for i, (clip, _) in enumerate(rows):  # each clip its own sound: no two are one clip
            (tmp_path / name / clip).parent.mkdir(parents=True, exist_ok=True)
            noise = np.random.default_rng(i).standard_normal(int(seconds * 16000)) * 0.01
            write_wav(tmp_path / name / clip, noise.astype(np.float32))
        sets.append(tmp_path / name / "manifest.tsv")
        sets[-1].write_text(manifest_text(rows), encoding="utf-8")
    check = check_data(sets, _config(corpus))
    assert check.train_seconds + check.heldout_seconds == pytest.approx(60.0, abs=0.1)
    assert check.histogram[0][2] == 6 and check.histogram[-1][2] == 6  # 1 s and 9 s
    assert check.train_seconds < 60 and "little_data" in {i.kind for i in check.issues}


def _run_job(corpus, out: Path):
    from engine.tune.loop import run_job

    return run_job(_config(corpus, data=str(corpus[1]), output_dir=str(out), steps=1))


def test_check_blocks_when_nothing_is_usable(tmp_path, corpus):
    empty = tmp_path / "empty.tsv"
    empty.write_text("path\ttext\nnowhere.wav\t天\n", encoding="utf-8")
    check = check_data([empty], _config(corpus))
    assert check.blocking and "none of 1 rows is usable" in check.issues[-1].detail
    # the rows the message sends the user to are in the report (the table was empty)
    (finding,) = check.report.findings
    assert finding.kind == "missing_audio" and "nowhere.wav" in finding.detail
    check = check_data([tmp_path / "nowhere"], _config(corpus))
    assert check.blocking and "does not exist" in check.issues[-1].detail


# ---- job folders and the catalogue -----------------------------------------------------


def _finished_job(root: Path, name: str, cer_after: float = 0.25) -> JobFolder:
    """A job folder as a finished run leaves it (model card written), without training."""
    job = JobFolder.create(
        root, name, ["a.tsv"], TuneConfig(model="base", data="x", output_dir="y")
    )
    card = ModelCard("base", "lora", 40, 10, 60.0, 2, 0.5, cer_after, str(job.path / "data"))
    job.model_dir.mkdir()
    card.write(job.model_dir)
    (job.model_dir / "model.safetensors").write_bytes(b"weights")
    job.adapter_dir.mkdir()
    (job.adapter_dir / "adapter_model.safetensors").write_bytes(b"lora")
    return job


def test_job_folder_holds_the_config_and_spec(tmp_path):
    config = TuneConfig(model="base", data="x", output_dir="y", steps=7)
    source = str(tmp_path / "a.tsv")
    job = JobFolder.create(tmp_path, "my set / 1", [source], config)
    assert job.path.parent == tmp_path and "/" not in job.id and job.id.startswith("my-set-1")
    assert job.config.steps == 7 and job.config.output_dir == str(job.path)
    assert job.config.data == source  # one source: used as it is
    assert job.spec.name == "my set / 1" and job.spec.sources == (source,)
    assert job.state() == "new"
    (job.path / "checkpoints" / "step-0000002").mkdir(parents=True)
    (job.path / "checkpoints" / "step-0000002" / "state.json").write_text("{}")
    assert job.state() == "stopped" and job.checkpoint_steps() == [2]
    twin = JobFolder.create(tmp_path, "my set / 1", ["a.tsv"], config)
    assert twin != job  # same name, same second: another folder


def test_catalogue_lists_renames_and_deletes(tmp_path):
    root = tmp_path / "tuning"
    first = _finished_job(root, "first", 0.3)
    _finished_job(root, "second")
    JobFolder.create(root, "unfinished", ["b"], TuneConfig(model="m", data="x", output_dir="y"))
    models = tuned_models(root)
    assert [m.name for m in models] == ["second", "first"]  # newest first, finished only
    assert models[1].cer_before == 0.5 and models[1].cer_after == 0.3
    assert models[0].base_model == "base" and models[0].sources[0].endswith("a.tsv")
    rename_job(first, "  renamed ")
    assert [m.name for m in tuned_models(root)][1] == "renamed"
    with pytest.raises(ValueError, match="empty"):
        rename_job(first, " ")
    delete_job(first)
    assert not first.path.exists() and [m.name for m in tuned_models(root)] == ["second"]
    assert len(find_jobs(root)) == 2


def test_a_dead_or_foreign_pid_is_not_a_running_job(tmp_path):
    job = JobFolder.create(tmp_path, "j", ["a"], TuneConfig(model="m", data="x", output_dir="y"))
    job.write_pid()  # this pytest process: alive, but not a tuning child
    assert job.running_pid() is None and running_job(tmp_path) is None
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "engine.tune.child"]
    )
    try:
        (job.path / "child.pid").write_text(str(sleeper.pid))
        assert job.running_pid() == sleeper.pid and job.state() == "running"
        assert running_job(tmp_path) == job
        with pytest.raises(ValueError, match="still working"):
            delete_job(job)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert job.running_pid() is None and job.state() == "new"


# ---- the child process -------------------------------------------------------------------


def _child(kind: str, job: JobFolder, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine.tune.child", kind, str(job.path), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_child_runs_cancels_and_resumes_a_job(tmp_path, corpus):
    # Long enough that it cannot end before the cancel arrives (4 steps did, on an idle CI
    # machine); shortened below so the resumed run is quick.
    job = JobFolder.create(tmp_path, "tones", [str(corpus[1])], _config(corpus, steps=10_000))
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.tune.child", "run", str(job.path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not any(isinstance(e, StepProgress) for e in job.events()):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    job.request_cancel()
    assert proc.wait(timeout=120) == 130
    events = job.events()
    assert isinstance(events[-1], JobCancelled) and events[-1].checkpoint is not None
    assert job.state() == "stopped" and not job.cancel_requested()
    assert (job.path / "child.pid").exists() is False
    stopped_at = events[-1].step
    final = stopped_at + 2
    replace(job.config, steps=final).save(job.config_path)
    done = _child("run", job, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    events = job.events()
    assert isinstance(events[-1], JobFinished) and job.state() == "finished"
    steps = [e.step for e in events if isinstance(e, StepProgress)]
    assert steps == sorted(set(steps)) and steps[-1] == final  # resumed, not restarted
    assert [m.name for m in tuned_models(tmp_path)] == ["tones"]
    card = read_card(job.model_dir)
    assert card.steps == final and card.cer_before is not None


@pytest.mark.slow
def test_child_measures_an_estimate(tmp_path, corpus):
    job = JobFolder.create(tmp_path, "est", [str(corpus[1])], _config(corpus, steps=50))
    done = _child("estimate", job)
    assert done.returncode == 0, done.stderr[-2000:]
    (estimate,) = job.events("estimate")
    assert isinstance(estimate, Estimate)
    assert estimate.steps == 50 and estimate.measured_steps == 4
    assert estimate.evaluations == 1 + 25  # the base model, then every 2 steps
    assert estimate.seconds_per_step > 0 and estimate.setup_seconds > 0
    assert estimate.peak_memory_bytes > 50_000_000  # python + torch at least
    assert estimate.total_seconds > 50 * estimate.seconds_per_step
    assert not list(job.path.glob("checkpoints")), "the estimate trains in a scratch folder"


def test_child_reports_a_bad_job_as_an_event(tmp_path, corpus):
    job = JobFolder.create(
        tmp_path, "bad", [str(corpus[1])], _config(corpus, model=str(tmp_path / "nowhere"))
    )
    done = _child("run", job)
    assert done.returncode == 1
    (failed,) = [e for e in job.events() if isinstance(e, JobFailed)]
    assert "nowhere" in failed.message
    assert json.loads((job.path / "job.json").read_text())["name"] == "bad"


def test_heldout_comparison_pairs_the_base_and_the_saved_model(tmp_path):
    from engine.tune.jobs import Comparison, compare_heldout

    def evaluated(step: int, *hyps: str) -> Evaluated:
        refs = ("天地", "人和")
        return Evaluated(
            step, 0.0, cer(list(refs), list(hyps)), tuple(zip(refs, hyps, strict=True))
        )

    events = [evaluated(0, "天地", "人人"), evaluated(5, "天地", "人和"), evaluated(10, "天", "和")]
    assert compare_heldout(events, 5) == [  # what changed first
        Comparison("人和", "人人", "人和"),
        Comparison("天地", "天地", "天地"),
    ]
    assert compare_heldout(events, 7) == [] and compare_heldout(events[1:], 5) == []


def test_source_kind_says_what_a_source_will_be_read_as(tmp_path, corpus):
    from engine.tune.prepare import source_kind

    cv = tmp_path / "cv"
    (cv / "clips").mkdir(parents=True)
    (cv / "train.tsv").write_text("path\tsentence\n")
    assert source_kind(corpus[1]) == "manifest"
    assert source_kind(corpus[1].parent) == "manifest"  # a training set: manifest.tsv, clips/
    (tmp_path / "recordings").mkdir()
    assert source_kind(tmp_path / "recordings") == "folder"
    assert source_kind(cv) == "common_voice"
    assert source_kind(tmp_path / "nowhere") == "missing"


def test_the_child_runs_as_a_module_or_through_the_bundled_program(tmp_path, monkeypatch):
    from engine.tune.jobs import CHILD_MODULE, child_command

    plain = child_command("run", tmp_path, resume=True)
    assert plain == [sys.executable, "-m", CHILD_MODULE, "run", str(tmp_path), "--resume"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # as in the PyInstaller bundle
    frozen = child_command("estimate", tmp_path)
    assert frozen == [sys.executable, CHILD_MODULE, "estimate", str(tmp_path)]
    bundle = (ROOT / "packaging" / "bundle" / "tingxie_app.py").read_text(encoding="utf-8")
    assert f'sys.argv[1:2] == ["{CHILD_MODULE}"]' in bundle  # the program dispatches on it
