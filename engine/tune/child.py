"""The process a tuning job runs in, apart from the app: a crash, an out-of-memory kill or a
`kill -9` here never takes the window down, and the app may close while the job goes on.

    python -m engine.tune.child run JOB_FOLDER [--resume]
    python -m engine.tune.child estimate JOB_FOLDER

Reads the job's config from its folder (`engine.tune.jobs.JobFolder`), appends each event to
the folder's events file as one JSON line (`engine.tune.wire`), flushed as it happens, and
stops after the current step (saving a checkpoint) once `cancel.request` appears: one there
before it starts counts too (Cancel pressed at once), so whoever starts it clears a stale one
first. A run that ends before its first checkpoint removes its cache/. Exit status: 0 finished,
130 cancelled, 1 failed (the last event says why).

`tingxie-cli tune` on a job's folder works on it the same way, through `job_process` and
`recorded`, so that the app's Tune page follows that run as it follows its own child.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .events import JobCancelled, JobFailed
from .jobs import ChildKind, JobFolder
from .wire import encode

__all__ = ["job_process", "main", "recorded"]

log = logging.getLogger("tingxie.train")

_CANCEL_POLL_SECONDS = 0.2


def _watch_cancel(job: JobFolder, cancel: threading.Event, done: threading.Event) -> None:
    while not done.wait(_CANCEL_POLL_SECONDS):
        if job.cancel_requested():
            cancel.set()
            return


def _events(kind: str, job: JobFolder, cancel: threading.Event, resume: bool) -> Iterator[Any]:
    config = job.config
    if kind == "estimate":
        from .estimate import estimate

        try:
            yield estimate(config)
        except (ValueError, OSError, RuntimeError) as e:
            log.info("estimate failed", exc_info=True)
            yield JobFailed.of(e)
        return
    from .loop import run_job

    yield from run_job(config, cancel=cancel, resume=resume)


@contextlib.contextmanager
def job_process(job: JobFolder, cancel: threading.Event) -> Iterator[None]:
    """This process working on `job` as the app's child does: its pid in the folder (what
    `JobFolder.starting_pid` dates the events by) and `cancel` set once `cancel.request`
    appears (a Cancel on the Tune page); both files are removed when it ends."""
    job.write_pid()  # a cancel request already here is this run's: the starter cleared stale ones
    done = threading.Event()
    watcher = threading.Thread(target=_watch_cancel, args=(job, cancel, done), daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        job.clear_pid()
        job.clear_cancel()


def recorded(events: Iterable[Any], job: JobFolder, kind: ChildKind, resume: bool) -> Iterator[Any]:
    """`events` as they come, each first appended to the job's events file (`kind`'s) as one
    line and flushed: what the app relays and replays. A resumed run adds to the earlier runs'
    events, another starts the file anew. An exception (a bug) is still written as the run's
    JobFailed before it goes on up."""
    with job.events_path(kind).open("a" if resume else "w", encoding="utf-8") as out:
        try:
            for event in events:
                out.write(encode(event) + "\n")
                out.flush()
                yield event
        except Exception as e:
            out.write(encode(JobFailed(f"{type(e).__name__}: {e}".splitlines()[0])) + "\n")
            out.flush()
            raise


def run(kind: str, folder: Path, resume: bool = False) -> int:
    """Run `kind` on the job in `folder`, writing its events; returns the exit status."""
    job = JobFolder(folder)
    cancel = threading.Event()
    status = 1
    try:
        with job_process(job, cancel):
            events = _events(kind, job, cancel, resume)
            for event in recorded(events, job, kind, resume and kind == "run"):
                if isinstance(event, JobFailed):
                    status = 1
                elif isinstance(event, JobCancelled):
                    status = 130
                else:
                    status = 0
    finally:
        if kind == "run":
            job.drop_unresumable_cache()
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.tune.child")
    parser.add_argument("kind", choices=("run", "estimate"))
    parser.add_argument("folder", type=Path, help="the job folder (engine.tune.jobs)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    return run(args.kind, args.folder, args.resume)


if __name__ == "__main__":
    sys.exit(main())
