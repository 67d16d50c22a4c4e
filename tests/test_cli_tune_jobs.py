"""`tingxie-cli tune` on a job the app made: it writes the job's events as the app's child does,
so the Tune page following that job shows its progress and how it ended (before: no events, a
page frozen at the last run's and then "ended without its last report"), and it stops at the
page's Cancel (before: cancel.request was left unread). Tiny random model, four steps."""

from __future__ import annotations

import os

import test_tune_jobs

from engine.cli import tune
from engine.tune.events import (
    CheckpointSaved,
    Evaluated,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    StepProgress,
)
from engine.tune.jobs import JobFolder, claim_output_dir
from engine.tune.loop import Job

# test_tune_jobs's base model and tone corpus (bound by name, as pytest finds fixtures) and its
# job settings: four steps, evaluated and saved every two.
corpus = test_tune_jobs.corpus
_config = test_tune_jobs._config


def _kinds(events: list) -> list[str]:
    return [type(e).__name__ for e in events]


def test_a_run_on_a_job_folder_writes_the_jobs_events_as_the_child_does(tmp_path, corpus):
    job = JobFolder.create(tmp_path / "jobs", "tones", [str(corpus[1])], _config(corpus))
    assert tune.main([str(job.config_path)]) == 0
    events = job.events()
    assert isinstance(events[0], JobStarted) and isinstance(events[-1], JobFinished)
    assert [e.step for e in events if isinstance(e, StepProgress)] == [1, 2, 3, 4]
    assert {Evaluated, CheckpointSaved} <= {type(e) for e in events}
    assert events[-1].result.model_dir == job.model_dir and job.state() == "finished"
    assert not (job.path / "child.pid").exists() and not job.cancel_requested()


def test_a_folder_only_the_cli_wrote_into_gets_no_events_file(tmp_path, corpus):
    config = _config(corpus, output_dir=str(tmp_path / "out"), steps=1, eval_every=0)
    config.save(tmp_path / "job.yaml")
    assert tune.main([str(tmp_path / "job.yaml")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.json*")) == []
    assert not (tmp_path / "out" / "child.pid").exists()


def test_the_pages_cancel_stops_a_cli_run_which_resumes_after_its_events(
    tmp_path, corpus, monkeypatch
):
    """Cancel is pressed while the model loads (the page writes cancel.request): the run stops
    after its first step with a checkpoint, as the app's child would. Resumed, its events follow
    the first run's, and the page finds the run through child.pid while it writes none."""
    job = JobFolder.create(tmp_path / "jobs", "tones", [str(corpus[1])], _config(corpus))
    job.request_cancel()  # left from an earlier run: not this one's
    load, seen = Job._load_base, {}

    def cancel_pressed(self):
        seen["starting"] = job.starting_pid()
        seen["stale"] = job.cancel_requested()
        job.request_cancel()  # what TuneSupervisor.cancel writes
        self.cancel.wait(timeout=30)  # heard by the run's watcher (never, before)
        return load(self)

    monkeypatch.setattr(Job, "_load_base", cancel_pressed)
    assert tune.main([str(job.config_path)]) == 130
    assert seen == {"starting": os.getpid(), "stale": False}
    first = job.events()
    assert isinstance(first[-1], JobCancelled) and first[-1].step == 1
    assert first[-1].checkpoint is not None and job.state() == "stopped"
    assert not job.cancel_requested() and not (job.path / "child.pid").exists()

    monkeypatch.setattr(Job, "_load_base", load)
    assert tune.main([str(job.config_path), "--resume"]) == 0
    events = job.events()
    assert events[: len(first)] == first  # appended, as a resumed child appends
    resumed = events[len(first)]
    assert isinstance(resumed, JobStarted) and resumed.resumed_from_step == 1
    assert isinstance(events[-1], JobFinished) and job.state() == "finished"


def test_a_run_refused_by_the_job_running_there_leaves_its_events_alone(tmp_path, corpus):
    job = JobFolder.create(tmp_path / "jobs", "tones", [str(corpus[1])], _config(corpus))
    job.events_path().write_text("the running job's events\n", encoding="utf-8")
    job.request_cancel()  # pressed for the running job
    with claim_output_dir(job.path, resume=False):  # another run holds the job
        assert tune.main([str(job.config_path)]) == 1
    assert job.events_path().read_text(encoding="utf-8") == "the running job's events\n"
    assert job.cancel_requested() and not (job.path / "child.pid").exists()
    assert not any(isinstance(e, JobFailed) for e in job.events())
