"""`tingxie-cli tune CONFIG`: run a tuning job described by a YAML/JSON file, with a progress bar.

Ctrl+C stops after the current step and saves a checkpoint; `--resume` continues from it. The
same command runs data-parallel under `accelerate launch -m engine.cli.tune CONFIG` (CTC models;
a Whisper job runs in one process and refuses several), its output printed once. A run that
ends with nothing to resume from removes its cache/ as the app's does
(`engine.tune.jobs.drop_unresumable_cache`).

Run on a job the app made (CONFIG its config.json, or output_dir its folder), it works on the job
as the app's child would (`engine.tune.child.job_process`, `recorded`): its events go to the
job's events.jsonl, so the Tune page shows this run's progress and how it ended, and the page's
Cancel stops it after the current step, as Ctrl+C does.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

__all__ = ["add_parser", "main", "run"]

# How long a process waits for the launcher's store before it prints a failure unasked
_STORE_SECONDS = 5


def _settings_epilog() -> str:
    from engine.tune.config import PRESETS, settings_help

    lines = [
        "settings of the CONFIG file (YAML or JSON; paths relative to the file, ~ the home folder):"
    ]
    for name, default, meaning in settings_help():
        if default.startswith("field("):
            shown = "all true"
        elif default == "None" and name in PRESETS["balanced"]:
            shown = "from the preset"
        else:
            shown = default
        lines.append(f"  {name:<24} {meaning} [default: {shown}]")
    lines.append("")
    lines.append("presets (fill the settings left at None):")
    for preset, values in PRESETS.items():
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        lines.append(f"  {preset:<10} {shown}")
    lines.append("")
    lines.append(
        "outputs in output_dir: model/ (merged checkpoint with README.md, loadable by "
        "`tingxie-cli transcribe --model`), adapter/ (LoRA), checkpoints/ (for --resume)"
    )
    lines.append(
        "several processes or GPUs (CTC models; a Whisper model is tuned in one process, by "
        "tingxie-cli tune alone): accelerate launch --config_file packaging/accelerate/ddp.yaml "
        "(or deepspeed-zero2.yaml) -m engine.cli.tune CONFIG"
    )
    return "\n".join(lines)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "tune",
        help="fine-tune a model on your recordings (LoRA, partial or full)",
        description="Fine-tune a CTC speech model (LoRA, partial or full) or a Whisper model "
        "(LoRA; its CTranslate2 folder will do) on a dataset as described by CONFIG, with "
        "held-out CER before and after. Ctrl+C stops cleanly after the current step and keeps "
        "a checkpoint; --resume continues from it.",
        epilog=_settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", type=Path, help="the job's YAML or JSON file")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last checkpoint in output_dir (same data order, optimizer state)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting of CONFIG for this run (value parsed as YAML; a path is "
        "relative to the current folder), repeatable",
    )
    p.add_argument(
        "--write-config",
        nargs=3,
        metavar=("MODEL", "DATA", "OUTPUT_DIR"),
        help="write a new CONFIG with these paths, the --set values and every other setting "
        "at its default, then exit",
    )
    p.set_defaults(run=run)


def _load_config(args):
    from engine.tune.config import TuneConfig

    config = TuneConfig.load(args.config)
    if not args.overrides:
        return config
    return _overridden(config, args, base=args.config.resolve().parent)


def _overridden(config, args, base: Path | None):
    """`config` with the `--set` overrides of `args`; relative paths in it resolve against
    `base` (None: kept relative, as a new job file holds them)."""
    import yaml

    from engine.tune.config import PATH_SETTINGS, TuneConfig

    data = config.to_dict()
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item}: write KEY=VALUE, e.g. --set steps=500")
        key = key.strip()
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as e:
            first = str(e).splitlines()[0]
            raise ValueError(f"--set {item}: the value is not valid YAML ({first})") from e
        # typed on the command line: relative to the current folder, as --write-config's
        # (a model that is no folder here stays a Hub id)
        here = isinstance(parsed, str) and os.path.exists(os.path.expanduser(parsed))
        if key in PATH_SETTINGS and isinstance(parsed, str) and (key != "model" or here):
            parsed = _from_config(args.config, parsed)
        data[key] = parsed
    try:
        return TuneConfig.from_dict(data, base=base)
    except ValueError as e:
        raise ValueError(f"--set: {e}") from e


def _from_config(config: Path, typed: str) -> str:
    """A path typed on the command line (relative to the current folder) as the job file must
    hold it to mean the same: relative to that file's folder, which a job's paths are read
    against. Absolute and `~` paths stay as typed."""
    if Path(typed).expanduser().is_absolute():
        return typed
    here = os.path.abspath(typed)
    try:
        return Path(os.path.relpath(here, os.path.abspath(config.parent))).as_posix()
    except ValueError:  # on another drive (Windows): no relative path leads there
        return here


def _describe_start(event) -> None:
    cfg = event.config
    print(event.validation)
    for line in event.normalization:
        print(f"normalize: {line}")
    if event.added_chars:
        print(f"vocabulary grows by {len(event.added_chars)}: {event.added_chars}")
    print(
        f"{cfg.method} ({cfg.preset}): {event.trainable_parameters:,} of "
        f"{event.total_parameters:,} parameters train; {event.train_examples} training / "
        f"{event.heldout_examples} held-out utterances ({event.train_seconds / 60:.1f} min); "
        f"padding {100 * event.padding_fraction:.1f} %; {event.device} {event.precision}"
        f" × {event.processes}; lr {cfg.learning_rate:g}, {cfg.steps} steps"
    )
    if event.resumed_from_step:
        print(f"resumed at step {event.resumed_from_step}")


def _consume(events, bar_factory, rank: int) -> int:
    """Print events (progress on the main process only); returns the exit status."""
    from engine.tune.events import (
        CheckpointSaved,
        CheckpointSetAside,
        Evaluated,
        JobCancelled,
        JobFailed,
        JobFinished,
        JobStarted,
        StepProgress,
    )

    main_process = rank == 0
    bar, last_cer, heldout = None, "—", None
    for event in events:
        if isinstance(event, JobStarted) and main_process:
            _describe_start(event)
            heldout = event.heldout_examples
            bar = bar_factory(total=event.config.steps, initial=event.resumed_from_step)
        elif isinstance(event, CheckpointSetAside):  # said by the main process only
            _write(bar, _set_aside(event), err=True)
        elif isinstance(event, StepProgress) and bar is not None:
            bar.total = event.total_steps  # under a time limit, the steps that fit it
            bar.update(event.step - bar.n)
            bar.set_postfix_str(
                f"loss {event.loss:.3f} CER {last_cer} {event.samples_per_second:.1f} utt/s "
                f"ETA {event.eta_seconds / 60:.1f} min"
            )
        elif isinstance(event, Evaluated):
            last_cer = f"{100 * event.cer:.1f}%"
            if main_process:
                _write(bar, f"step {event.step}: held-out CER {last_cer}")
        elif isinstance(event, CheckpointSaved) and main_process:
            _write(bar, f"checkpoint {event.path}" + (" (best)" if event.best else ""))
        elif isinstance(event, JobCancelled):  # every process stops at the same step
            if main_process:
                _write(bar, _stopped(event))
            return 130
        elif isinstance(event, JobFailed):
            if _first_to_say(event.message):
                if event.details:
                    _write(bar, event.details, err=True)
                _write(bar, f"error: {event.message}", err=True)
            return 1
        elif isinstance(event, JobFinished) and not main_process:
            print(f"process {rank}: weights sha256 {event.result.fingerprint}")
        elif isinstance(event, JobFinished):
            r = event.result
            _write(bar, _result_line(r, heldout))
            _write(bar, f"process 0: weights sha256 {r.fingerprint}")
            _write(
                bar,
                f"model: {r.model_dir}" + (f"\nadapter: {r.adapter_dir}" if r.adapter_dir else ""),
            )
    if bar is not None:
        bar.close()
    return 0


def _result_line(result, heldout: int | None) -> str:
    """The held-out CER before → after and the step it is of: chosen on the other held-out rows
    (engine.tune.data.heldout_shares), or the last one, with why none was chosen where the
    number of held-out rows (`heldout`, None: not known) tells."""
    from engine.tune.data import MIN_SPLIT_ROWS

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{100 * v:.2f} %"

    if result.selection_rows:
        step = f"step {result.best_step}, chosen on {result.selection_rows} other held-out rows"
    else:
        step = f"the last step, {result.best_step}: no step chosen"
        if heldout is not None and heldout < MIN_SPLIT_ROWS:
            step += f", fewer than {MIN_SPLIT_ROWS} held-out rows"
    return f"held-out CER {pct(result.cer_before)} → {pct(result.cer_after)} ({step})"


def _set_aside(event) -> str:
    return (
        f"warning: checkpoint {event.checkpoint} could not be read ({event.problem}), so the "
        f"job resumed from step {event.resumed_step}; the damaged checkpoint is kept as "
        f"{event.kept_as}"
    )


def _stopped(event) -> str:
    if event.checkpoint is None:  # nothing to resume from
        return "stopped before the first checkpoint; run the job again (without --resume)"
    return f"stopped at step {event.step}; continue with --resume"


def _first_to_say(text: str) -> bool:
    """Whether this process is the first of its job to print `text`: a failure every process
    meets (bad data, no GPU) is printed once, one that only some meet by one of them. The
    processes of `accelerate launch` ask the launcher's key-value store (torchrun's); a process
    alone, or one that cannot reach it, prints."""
    if int(os.environ.get("WORLD_SIZE", "1")) < 2 or "MASTER_ADDR" not in os.environ:
        return True
    import hashlib
    from datetime import timedelta

    import torch.distributed as dist

    rank = os.environ.get("RANK", "0")
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    key = f"tingxie/said/{attempt}/{hashlib.sha256(text.encode()).hexdigest()}"
    try:
        store = dist.TCPStore(
            os.environ["MASTER_ADDR"],
            int(os.environ["MASTER_PORT"]),
            is_master=False,
            timeout=timedelta(seconds=_STORE_SECONDS),
            wait_for_workers=False,
        )
        return store.compare_set(key, "", rank) == rank.encode()
    except (RuntimeError, ValueError, KeyError):  # DistStoreError is a RuntimeError
        return True


def _write(bar, text: str, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    if bar is not None:
        bar.write(text, file=stream)
    else:
        print(text, file=stream)


def run(args) -> int:
    from tqdm import tqdm

    from engine.tune.config import TuneConfig
    from engine.tune.jobs import drop_unresumable_cache
    from engine.tune.loop import run_job

    if args.write_config:
        if args.config.exists():  # a job file edited by hand must not be replaced
            print(
                f"error: {args.config} exists; --write-config writes a new file: give another "
                "name, or remove that one first",
                file=sys.stderr,
            )
            return 2
        if args.resume:
            print("error: --resume continues a job that ran; --write-config writes a new "
                  "one: run it first, without --resume", file=sys.stderr)  # fmt: skip
            return 2
        model, data, output = args.write_config
        if Path(model).expanduser().exists():  # else a Hub id, kept as typed
            model = _from_config(args.config, model)
        data, output = _from_config(args.config, data), _from_config(args.config, output)
        try:
            new = _overridden(TuneConfig(model=model, data=data, output_dir=output), args, None)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        new.save(args.config)
        command = f"tingxie-cli tune {shlex.quote(str(args.config))}"
        print(f"wrote {args.config}; edit it, then run: {command}")
        return 0
    try:
        config = _load_config(args)
    except ValueError as e:
        if _first_to_say(str(e)):
            print(f"error: {e}", file=sys.stderr)
        return 2
    cancel = threading.Event()

    # the process rank under `accelerate launch` (torchrun sets RANK); read from the
    # environment because creating accelerate's state here would fix it before the job
    # chooses CPU or GPU
    rank = int(os.environ.get("RANK", "0"))

    def on_interrupt(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        if rank == 0:  # Ctrl+C reaches every process; the job tells them all to stop
            print("\nstopping after this step (Ctrl+C again to abort)…", file=sys.stderr)
        cancel.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        # closed before the cache is dropped: a job stopped early lets go of its output_dir
        with (
            contextlib.closing(run_job(config, cancel=cancel, resume=args.resume)) as events,
            _as_app_job(events, config, cancel, args.resume, rank) as reported,
        ):
            return _consume(
                reported,
                lambda **kw: tqdm(unit="step", dynamic_ncols=True, disable=rank != 0, **kw),
                rank,
            )
    except KeyboardInterrupt:  # Ctrl+C twice: what is left to resume from, not a traceback
        if rank == 0:
            print(f"\n{_aborted(Path(config.output_dir))}", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
        if rank == 0:  # the one process that claims the output_dir
            drop_unresumable_cache(Path(config.output_dir))
        leave_process_group()


@contextlib.contextmanager
def _as_app_job(events, config, cancel: threading.Event, resume: bool, rank: int):
    """`events`, recorded in the job's folder when output_dir is a job the app made (read from
    there, as the app's child writes them) and `cancel` set by the Tune page's Cancel; as they
    are elsewhere, on the other processes of `accelerate launch`, or where a run already works
    on the job (this one is refused: the events file is that run's)."""
    from engine.tune.child import job_process, recorded
    from engine.tune.jobs import app_job

    job = app_job(Path(config.output_dir)) if rank == 0 else None
    if job is None or job.running_pid() is not None:
        yield events
        return
    job.clear_cancel()  # left from an earlier run; a Cancel from now on is this run's
    with job_process(job, cancel), contextlib.closing(recorded(events, job, "run", resume)) as out:
        yield out


def leave_process_group() -> None:
    """Destroy torch.distributed's process group where the job joined one (`accelerate launch`),
    as accelerate's end_training does: a process that exits with it alive can abort at exit
    (SIGABRT, "terminate called without an active exception": one of two processes did, after
    both had reported the job's end)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _aborted(output_dir: Path) -> str:
    """The line for a job aborted at once: its last complete checkpoint, or that there is none."""
    from engine.tune.jobs import checkpoint_dirs

    saved = checkpoint_dirs(output_dir / "checkpoints")
    if saved:
        return f"aborted; the last complete checkpoint is {saved[-1]}: continue with --resume"
    return "aborted before any checkpoint was written; run the job again (without --resume)"


def main(argv: list[str] | None = None) -> int:
    """This subcommand alone, for `accelerate launch -m engine.cli.tune CONFIG` (one process per
    device): parses only tune's options."""
    parser = argparse.ArgumentParser(prog="tingxie-cli")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["tune", *(sys.argv[1:] if argv is None else argv)])
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
