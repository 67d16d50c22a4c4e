"""Tuning jobs as folders, the way the app runs them (in a child process, `engine.tune.child`),
and the catalogue of tuned models they leave. The folder is the whole contract between the app
and the child: the app can close, crash or restart and still find what a job did. A
`tingxie-cli tune` run on a job's folder writes in it as the child does (`engine.cli.tune`).

    <root>/<job id>/
        job.json         name, sources, base model, creation time (`JobSpec`)
        config.json      the TuneConfig; output_dir is this folder
        data.tsv         the combined manifest, when the job has several sources
        data.problems.json  the rows its sources could not import, listed with its own
        events.jsonl     the job's events, one JSON line each (`engine.tune.wire`), appended
                         by the child or `tingxie-cli tune` (`engine.tune.child.recorded`)
        estimate.jsonl   the time and memory estimate's events
        child.log        the child's log (its stdout and stderr)
        child.pid        while a child (or `tingxie-cli tune`) runs
        cancel.request   asks the run to stop after its current step (a checkpoint is kept)
        .tingxie-job     marks the folder a job's output_dir (`claim_output_dir`)
        .tingxie-lock    locked while a job runs there, naming its pid (`claim_output_dir`)
        checkpoints/ model/ adapter/    what `run_job` writes
        cache/           decoded audio and features while it runs (removed by a run that ends
                         with no checkpoint to resume from, or with its tuned model saved:
                         `drop_unresumable_cache`)
    <root>/.estimates/<job id>/    an estimate's scratch job, removed once it is measured
    <root>/.tingxie-new-<pid>@<host>-<tag>/    a job folder being made (`JobFolder.create`)

Process checks (`running_pid`) use POSIX signals and /proc, as the app targets Linux.
No torch, no Qt.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

from engine.atomic import STAGING_TAG, atomic_write_text, left_by_gone_process, staging_tag
from engine.children import module_command
from engine.errors import TingxieError

from .config import TuneConfig
from .data import Example, SplitBy, TuneDataset
from .events import Evaluated
from .export import CARD_FILE, ModelCard, read_card, record_problem
from .prepare import combine_sources
from .wire import WireError, decode

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = [
    "CHECKPOINT_STATE",
    "ESTIMATES",
    "UNREADABLE",
    "ChildKind",
    "Comparison",
    "EventLog",
    "JobError",
    "JobFolder",
    "JobSpec",
    "JobState",
    "OutputDirError",
    "TunedModel",
    "app_job",
    "check_resumable",
    "checkpoint_dirs",
    "claim_output_dir",
    "compare_heldout",
    "data_setting",
    "delete_job",
    "drop_unresumable_cache",
    "examples_digest",
    "find_jobs",
    "rename_job",
    "running_job",
    "tuned_models",
]

log = logging.getLogger("tingxie.train")

# A checkpoint (checkpoints/step-N, written by engine.tune.loop and engine.tune.whisper_lora)
# is complete once this file is in it.
CHECKPOINT_STATE = "state.json"


def checkpoint_dirs(folder: Path) -> list[Path]:
    """The complete checkpoints under `folder` (step-N folders with their state), oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step-*") if (p / CHECKPOINT_STATE).is_file())


class JobError(TingxieError, ValueError):
    """A job that cannot run as set up (its settings against its data or its checkpoints);
    names the setting to change."""


def examples_digest(examples: Sequence[Example]) -> str:
    """The rows, their order and their (normalized) texts, as a count and a short hash: what a
    resumed run's data must match."""
    digest = hashlib.sha256()
    for e in examples:
        digest.update(f"{e.id}\t{e.text}\n".encode("utf-8", "surrogatepass"))
    return f"{len(examples)} rows [{digest.hexdigest()[:8]}]"


def resumed_split(dataset: TuneDataset, config: TuneConfig) -> SplitBy:
    """How `config`'s job splits `dataset`: by content, but by file name for a job whose
    checkpoints were trained on that split (made before rows were split by content), so that
    it still resumes (`check_resumable` compares the training rows)."""
    if not config.output_dir:
        return "content"
    for folder in reversed(checkpoint_dirs(Path(config.output_dir) / "checkpoints")):
        try:
            state = json.loads((folder / CHECKPOINT_STATE).read_text(encoding="utf-8"))
            saved = state["settings"]["train_examples"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: an earlier checkpoint may be resumed instead
        split = dataset.split(config.heldout_fraction, "content")
        if examples_digest(split[0]) == saved:
            return "content"
        by_name = dataset.split(config.heldout_fraction, "name")
        return "name" if examples_digest(by_name[0]) == saved else "content"
    return "content"


def data_setting(config: TuneConfig) -> str:
    """The data setting as a resume compares it: relative to output_dir when inside it (a job's
    own combined data.tsv, wherever the job folder has been moved to), else as given."""
    path, folder = Path(config.data), Path(config.output_dir)
    return path.relative_to(folder).as_posix() if path.is_relative_to(folder) else str(path)


def check_resumable(folder: Path, settings: dict) -> None:
    """Refuse to resume from `folder` when its state was trained with other `settings`: the
    optimizer's moments, the data order and the head's rows would go on meaning what they
    meant there. A state that cannot be read is left for `Job._restore` to name."""
    try:
        state = json.loads((folder / CHECKPOINT_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    saved = state.get("settings") if isinstance(state, dict) else None
    if not isinstance(saved, dict):  # kept since this version only: resumes unchecked
        return
    changed = [n for n, value in settings.items() if n in saved and saved[n] != value]
    if changed:
        changes = "; ".join(f"{n} {_shown(saved[n])} → {_shown(settings[n])}" for n in changed)
        raise JobError("tune.resume_changed", path=folder.parent.parent, changes=changes)


def _shown(value: object) -> str:
    """A setting's value as the message shows it: text as typed, the rest as JSON (null, 1e-05)."""
    return value if isinstance(value, str) and value else json.dumps(value, ensure_ascii=False)


# Marks a job's output_dir, written when a job (or `JobFolder.create`) first claims it.
_OUTPUT_MARK = ".tingxie-job"
# Held locked (and naming its pid) by the job that runs in an output_dir; never replaced, so
# every run locks the same file.
_OUTPUT_LOCK = ".tingxie-lock"


class OutputDirError(TingxieError, OSError):
    """A job's output_dir cannot take its writes: another job runs there, it is read-only, or
    its disk is full. Says what to choose instead."""


def claim_output_dir(folder: Path, resume: bool, lock: bool = True) -> BinaryIO | None:
    """Make `folder` this job's output_dir, or raise ValueError saying what to choose. A job
    replaces model/ and adapter/ there and removes cache/ when done, so it writes only into a
    folder that is new or empty, or already a job's own: marked by an earlier run of it (or made
    by `JobFolder.create`), or, resumed, holding the checkpoints it continues from.

    With `lock`, returns the open lock file: held until closed, it refuses a second job in the
    same folder (OutputDirError) before either overwrites the other's checkpoints. A write is
    tried where the checkpoints go, so that a read-only folder or a full disk stops the job
    before its model loads, not at its first checkpoint."""
    folder = Path(folder)
    saved = checkpoint_dirs(folder / "checkpoints")
    mark = folder / _OUTPUT_MARK
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"output_dir {folder} is a file; choose a new or empty folder")
    own = mark.is_file() or saved  # checkpoints: resumed (a new run is refused below)
    if not own:
        found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        if found:
            shown = ", ".join(found[:5]) + (", …" if len(found) > 5 else "")
            raise ValueError(
                f"output_dir {folder} already holds {shown}, not written by a tuning job; a "
                "job writes model/, adapter/, checkpoints/ and cache/ there and replaces what "
                "is in the way, so choose an empty or new folder"
            )
    with _worded_writes(folder):
        folder.mkdir(parents=True, exist_ok=True)
        if not mark.is_file():  # first: a folder left with the lock file alone is still ours
            atomic_write_text(mark, "This folder is a Tingxie tuning job's output_dir.\n")
        held = _lock(folder) if lock else None
    try:
        if saved and not resume:
            raise ValueError(
                f"{folder} already holds checkpoints of an earlier run; continue it with "
                "--resume (resume=True) or choose another output_dir"
            )
        with _worded_writes(folder):  # where the checkpoints go (made there by the first)
            checkpoints = folder / "checkpoints"
            probe = (checkpoints if checkpoints.is_dir() else folder) / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
    except BaseException:
        if held is not None:
            held.close()
        raise
    return held


@contextlib.contextmanager
def _worded_writes(folder: Path) -> Iterator[None]:
    """Word a failed write in `folder`: read-only apart from full."""
    try:
        yield
    except OutputDirError:
        raise
    except OSError as e:
        detail = e.strerror or str(e)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OutputDirError("tune.output_full", path=folder, detail=detail) from e
        raise OutputDirError("tune.output_unwritable", path=folder, detail=detail) from e


def _lock(folder: Path) -> BinaryIO:
    """The output_dir's lock file, locked by this process and naming its pid; OutputDirError
    naming the other's pid when a job holds it. The kernel lets go when the process ends, by
    kill -9 too. Where there is no flock (Windows) two runs are not kept apart."""
    held = open(folder / _OUTPUT_LOCK, "a+b")  # noqa: SIM115 (held for the job)
    try:
        if fcntl is not None:
            _flock(held, folder)
        held.truncate(0)
        held.write(f"{os.getpid()}\n".encode("ascii"))
        held.flush()
    except BaseException:
        held.close()
        raise
    return held


def _flock(held: BinaryIO, folder: Path) -> None:
    """Lock `held` without waiting: a second job is refused at once, not queued behind."""
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        held.seek(0)
        pid = held.read().decode("ascii", "replace").strip() or "?"
        raise OutputDirError("tune.output_in_use", path=folder, pid=pid) from None
    except OSError as e:  # a file system without locks (some network mounts): run unguarded
        log.warning("%s: cannot lock it (%s); two jobs there would not be kept apart", folder, e)


def _lock_holder(folder: Path) -> int | None:
    """The pid of the run holding `folder`'s lock (`_lock`), or None when none does. Probed with
    a shared lock on a read-only handle, let go at once: nothing is written, and the run keeps
    its lock. A run that has locked it but not yet written its pid (an instant) reads as none,
    as where there is no flock (Windows) or the file system has no locks."""
    if fcntl is None:
        return None
    try:
        with open(folder / _OUTPUT_LOCK, "rb") as held:
            try:
                fcntl.flock(held, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = held.read().decode("ascii", "replace").strip()
                return int(pid) if pid.isdigit() else None
    except OSError:  # no lock file (no run yet), or locks refused (some network mounts)
        return None
    return None


JobState = Literal["new", "running", "stopped", "finished"]
ChildKind = Literal["run", "estimate"]
CHILD_MODULE = "engine.tune.child"  # what a job's process runs (also how it is recognized)
ESTIMATES = ".estimates"  # under the jobs' root: the scratch job folders of estimates
_CACHE = "cache"  # decoded audio and features, as engine.tune.loop names it
_COMBINED = "data.tsv"  # the manifest of a job on several sources (`combine_sources`)
_EVENT_FILES: dict[str, str] = {"run": "events.jsonl", "estimate": "estimate.jsonl"}


def child_command(kind: ChildKind, folder: Path, resume: bool = False) -> list[str]:
    """The command that runs `kind` on the job in `folder` (engine.children.module_command)."""
    return module_command(CHILD_MODULE, kind, str(folder), *(["--resume"] if resume else []))


_SLUG = re.compile(r"[^\w.-]+")
# What reading a job's own files can raise: damaged (a power cut mid-write), or not what this
# version wrote (a setting a newer Tingxie added).
UNREADABLE = (OSError, ValueError, TypeError, KeyError)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What the user asked for, in their words (the config holds the how)."""

    name: str
    sources: tuple[str, ...]
    base_model: str
    created: str  # ISO 8601, local time


class EventLog:
    """Reads a growing events file from where it stopped: only whole lines (a line being
    written is left for the next read), undecodable lines skipped with a log entry."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read_new(self) -> list[Any]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        events = []
        for line in data[:end].decode("utf-8", errors="replace").splitlines():
            try:
                events.append(decode(line))
            except WireError as e:
                log.warning("%s: %s", self.path, e)
        return events


class JobFolder:
    """One job's folder (see the module docstring for what it holds)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"JobFolder({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobFolder) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @classmethod
    def create(
        cls, root: Path, name: str, sources: list[str] | tuple[str, ...], config: TuneConfig
    ) -> JobFolder:
        """A new job folder for `config` on `sources` (combined into one manifest when there
        are several); the config's data and output_dir are set to it, its other paths made
        absolute from the current folder, where they were typed (a relative one in config.json
        would be read from the job folder).

        Made under a staging name (`_staging_name`) and given its own as the last step: a
        process ended while combining (the app closing with it under way) leaves no half-made
        job, only a staging folder that `find_jobs` removes once that process is gone."""
        root = Path(root)
        _sweep_staging(root)
        stamp = datetime.now()
        slug = _SLUG.sub("-", name).strip("-.")[:40] or "job"
        path = root / f"{slug}-{stamp:%Y%m%d-%H%M%S}"
        n = 1
        while path.exists():
            n += 1
            path = root / f"{slug}-{stamp:%Y%m%d-%H%M%S}-{n}"
        staging = root / _staging_name()
        staging.mkdir(parents=True)
        try:  # a source that cannot be read leaves no half-made folder behind
            claim_output_dir(staging, resume=False, lock=False)
            sources = tuple(str(Path(s).expanduser().resolve()) for s in sources)
            config = TuneConfig.from_dict(config.to_dict(), base=Path.cwd())
            combined = combine_sources(sources, staging / _COMBINED)
            data = str(path / _COMBINED) if combined == str(staging / _COMBINED) else combined
            config = replace(config, data=data, output_dir=str(path))  # where it will be
            made = cls(staging)
            config.save(made.config_path)
            made._write_record(asdict(JobSpec(name, sources, config.model, stamp.isoformat("T"))))
            staging.rename(path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return cls(path)

    # ---- files ---------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def log_path(self) -> Path:
        return self.path / "child.log"

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    @property
    def adapter_dir(self) -> Path:
        return self.path / "adapter"

    def events_path(self, kind: ChildKind = "run") -> Path:
        return self.path / _EVENT_FILES[kind]

    @property
    def spec(self) -> JobSpec:
        """What job.json says (one of `UNREADABLE` when it cannot be read, a field missing or
        of the wrong type included: `record_problem`); what a newer Tingxie added to it is
        left out."""
        data = self._read_record()
        data = {f.name: data[f.name] for f in fields(JobSpec) if f.name in data}
        problem = record_problem(data, JobSpec)
        if problem is not None:
            raise ValueError(f"{self.path / 'job.json'}: {problem}")
        return JobSpec(**data | {"sources": tuple(data["sources"])})

    def _read_record(self) -> dict[str, Any]:
        """job.json as written, with any keys a newer Tingxie added (`UNREADABLE` if not)."""
        path = self.path / "job.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a mapping of name, sources, base_model, created")
        return data

    def _write_record(self, record: dict[str, Any]) -> None:
        text = json.dumps(record, ensure_ascii=False, indent=1)
        atomic_write_text(self.path / "job.json", text)

    @property
    def config(self) -> TuneConfig:
        """The config as the job runs it where its folder is now (moved or copied elsewhere,
        config.json still names where it was made): output_dir is this folder, and data that
        named the job's own manifest is the one here."""
        config = TuneConfig.load(self.config_path)
        data = config.data
        if Path(data) == Path(config.output_dir) / _COMBINED:
            data = str(self.path / _COMBINED)
        return replace(config, data=data, output_dir=str(self.path))

    def events(self, kind: ChildKind = "run") -> list[Any]:
        """Every event written so far."""
        return EventLog(self.events_path(kind)).read_new()

    def log_tail(self, lines: int = 3) -> str:
        """The last lines of the child's log (what it said before it ended)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    # ---- state ---------------------------------------------------------------------------
    def checkpoint_steps(self) -> list[int]:
        """Steps of the saved checkpoints, oldest first (what resume continues from)."""
        return [
            int(p.name.removeprefix("step-")) for p in checkpoint_dirs(self.path / "checkpoints")
        ]

    def state(self) -> JobState:
        """running: a child works on it; finished: the tuned model is saved with its card
        (one this version cannot read too), or saved without one and nothing to resume;
        stopped: it ended with checkpoints and no model card (cancelled, crashed, killed, a
        Whisper job before measuring its model: resume continues); new: nothing to continue
        from, no model (what the app offers to discard)."""
        if self.running_pid() is not None:
            return "running"
        if (self.model_dir / CARD_FILE).is_file():
            return "finished"
        if self.checkpoint_steps():
            return "stopped"
        return "finished" if self.model_dir.is_dir() else "new"

    # ---- the child's side ----------------------------------------------------------------
    def write_pid(self) -> None:
        atomic_write_text(self.path / "child.pid", f"{os.getpid()}\n")

    def clear_pid(self) -> None:
        (self.path / "child.pid").unlink(missing_ok=True)

    def running_pid(self) -> int | None:
        """The pid of the process working on this job, if one is alive: the app's child
        (child.pid), or a run holding the folder's lock (`_lock_holder`: `tingxie-cli tune`
        on its config, whose pid in child.pid is not a child's command)."""
        try:
            pid = int((self.path / "child.pid").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pid = None
        return pid if pid is not None and _is_job_process(pid) else _lock_holder(self.path)

    def starting_pid(self) -> int | None:
        """The pid of the child working on this job while it has written no event yet (no
        events file, an empty one, or one last written before its pid file, which a child
        writes first): a resumed run loading its model, whose events file still ends as the
        run before it ended. None once it writes, or with no child."""
        pid = self.running_pid()
        started, written = _stat(self.path / "child.pid"), _stat(self.events_path())
        if pid is None or started is None:
            return None
        if written is None or written.st_size == 0 or written.st_mtime_ns < started.st_mtime_ns:
            return pid
        return None

    def drop_unresumable_cache(self) -> None:
        """`drop_unresumable_cache` of this job's folder, once its child has ended."""
        drop_unresumable_cache(self.path)

    def request_cancel(self) -> None:
        """Ask the child to stop after its current step; it saves a checkpoint first."""
        (self.path / "cancel.request").touch()

    def cancel_requested(self) -> bool:
        return (self.path / "cancel.request").exists()

    def clear_cancel(self) -> None:
        """Forget a request: the starting side does it before a child starts (one written
        after that, even before the child reads it, is this run's) and the child once done."""
        (self.path / "cancel.request").unlink(missing_ok=True)


def drop_unresumable_cache(output_dir: Path) -> None:
    """Remove cache/ (the decoded audio and features, up to gigabytes) of a run in `output_dir`
    that ended before its first checkpoint or after its tuned model was saved: nothing resumes
    from it (the app only discards the one, and the other is done). Where a checkpoint is left,
    cache/ stays: a resume reads it again rather than decode the audio anew. Called by whoever
    ran the job once it has ended (the app's supervisor, the child, `tingxie-cli tune`).

    Left alone where no job claimed the folder (a refused run: the cache/ is someone else's)
    or another run holds it (a second run refused there: the cache/ is the first's)."""
    folder = Path(output_dir)
    if not (folder / _OUTPUT_MARK).is_file() or not (folder / _CACHE).exists():
        return
    if checkpoint_dirs(folder / "checkpoints") and read_card(folder / "model") is None:
        return
    try:
        held = _lock(folder)
    except OSError:  # held by another run (OutputDirError), or a folder that resists
        return
    with held:
        shutil.rmtree(folder / _CACHE, ignore_errors=True)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def _is_job_process(pid: int) -> bool:
    """Alive and running a tuning child (a pid reused by another program does not count; a
    zombie, whose command line is empty, neither)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: ours would be signalable
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():
        return True  # no /proc: trust the signal check
    try:
        return CHILD_MODULE.encode() in cmdline.read_bytes()
    except OSError:
        return False


def find_jobs(root: Path) -> list[JobFolder]:
    """The job folders under `root`, newest first (a folder being made is not one yet; one
    whose making was cut off is removed: `_sweep_staging`)."""
    if not Path(root).is_dir():
        return []
    _sweep_staging(root)
    found = (app_job(p) for p in Path(root).iterdir() if not p.name.startswith("."))
    jobs = [job for job in found if job is not None]
    return sorted(jobs, key=_created, reverse=True)


def app_job(folder: Path) -> JobFolder | None:
    """The job whose folder `folder` is, made by `JobFolder.create` (it holds job.json), or None:
    a folder `tingxie-cli tune` alone wrote into, which the app does not list."""
    return JobFolder(folder) if (Path(folder) / "job.json").is_file() else None


# A job folder being made (`JobFolder.create`): hidden, and named for the process making it on
# this host, e.g. ".tingxie-new-4242@lab-pc-1a2b3c4d" (pid, host, a random tag).
_STAGING = re.compile(rf"\.tingxie-new-{STAGING_TAG}")


def _staging_name() -> str:
    """A new staging folder's name for this process (`_STAGING`)."""
    return f".tingxie-new-{staging_tag()}"


def _sweep_staging(root: Path) -> None:
    """Remove the staging folders under `root` whose process is gone: a job's making cut off
    (the app ended while its sources were combined, its thread never got to clean up). Those
    of a live process, or of another host (whose processes cannot be seen from here, as on a
    shared network folder), are left be; only `JobFolder.create` writes into them, and the
    sources it reads are elsewhere."""
    try:
        entries = list(Path(root).iterdir())
    except OSError:
        return
    for path in entries:
        made = _STAGING.fullmatch(path.name)
        if made is None or path.is_symlink() or not left_by_gone_process(made[1], made[2]):
            continue
        log.info("%s: removing a job folder whose making was cut off", path)
        shutil.rmtree(path, ignore_errors=True)


def _created(job: JobFolder) -> str:
    try:
        return job.spec.created
    except UNREADABLE:
        return ""


def running_job(root: Path) -> JobFolder | None:
    """The job a child is working on (one at a time per machine), an estimate's included, if
    any."""
    jobs = [*find_jobs(root), *find_jobs(Path(root) / ESTIMATES)]
    return next((j for j in jobs if j.running_pid() is not None), None)


# ---- the catalogue -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TunedModel:
    """A finished job's model as the list of tuned models shows it (from its model card; where
    that cannot be read, from job.json, with method, steps and CER unknown: None)."""

    job: JobFolder
    name: str
    base_model: str
    sources: tuple[str, ...]
    created: str
    method: str | None
    steps: int | None
    cer_before: float | None
    cer_after: float | None
    card_readable: bool = True

    @property
    def model_dir(self) -> Path:
        return self.job.model_dir


def tuned_models(root: Path) -> list[TunedModel]:
    """Every finished job's model under `root`, newest first: one whose card cannot be read (or
    that was saved without one) is listed too, as `JobFolder.state` counts it finished, so that
    it can still be used, exported or deleted."""
    models = []
    for job in find_jobs(root):
        card = read_card(job.model_dir)
        if card is not None or job.state() == "finished":
            models.append(_listed(job, card))
    return models


def _listed(job: JobFolder, card: ModelCard | None) -> TunedModel:
    """`job`'s model as the list shows it, from `card` and job.json as far as they can be read."""
    try:
        spec = job.spec
    except UNREADABLE as e:  # listed under its folder's name, as the app names the job
        log.warning("%s: job.json cannot be read (%s); listed as %s", job.path, e, job.id)
        spec = JobSpec(job.id, (), card.base_model if card is not None else "", "")
    if card is None:
        log.warning("%s: its model card cannot be read; listed without it", job.model_dir)
    return TunedModel(
        job=job,
        name=spec.name,
        base_model=card.base_model if card is not None else spec.base_model,
        sources=spec.sources,
        created=spec.created,
        method=card.method if card is not None else None,
        steps=card.steps if card is not None else None,
        cer_before=card.cer_before if card is not None else None,
        cer_after=card.cer_after if card is not None else None,
        card_readable=card is not None,
    )


def rename_job(job: JobFolder, name: str) -> None:
    """Give a job (and its model in the list) a new display name; the folder keeps its id, and
    job.json the keys a newer Tingxie wrote there (this version does not know them)."""
    name = name.strip()
    if not name:
        raise ValueError("a name cannot be empty")
    record = job._read_record()
    job._write_record(record | {"name": name})


def delete_job(job: JobFolder) -> None:
    """Remove a job folder with its model, adapter and checkpoints; refused while a process
    works on it (`JobFolder.running_pid`: the app's child, or `tingxie-cli tune`)."""
    pid = job.running_pid()
    if pid is not None:
        raise ValueError(
            f"{job.path}: a tuning process (pid {pid}) is still working on it; stop it first, "
            "or wait for it to end"
        )
    shutil.rmtree(job.path)


@dataclass(frozen=True, slots=True)
class Comparison:
    """One held-out recording as the base model and the tuned model transcribed it."""

    reference: str
    before: str
    after: str


def compare_heldout(events: list[Any], best_step: int) -> list[Comparison]:
    """The held-out samples of the base model's evaluation (step 0) beside the same recordings
    at `best_step` (the saved model's), those the tuning changed first."""
    evaluated = {e.step: e for e in events if isinstance(e, Evaluated)}
    if 0 not in evaluated or best_step not in evaluated:
        return []
    pairs = zip(evaluated[0].samples, evaluated[best_step].samples, strict=False)
    found = [Comparison(ref, before, after) for (ref, before), (_, after) in pairs]
    return sorted(found, key=lambda c: c.before == c.after)
