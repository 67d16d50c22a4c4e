"""A tuning job for tests/test_accelerate.py, run by `accelerate launch tests/ddp_job.py JOB`.

Process N writes its events to EVENTS/events-N.jsonl, a JSON object a line. Options make one
process differ from the others as a signal to one process, or separate machines, would."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _options() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("job", type=Path)
    p.add_argument("events", type=Path, help="the folder of the events-N.jsonl files")
    p.add_argument("--resume", action="store_true")
    p.add_argument(
        "--cancel-on",
        nargs=2,
        type=int,
        metavar=("RANK", "STEP"),
        help="cancel process RANK alone once it has taken STEP",
    )
    p.add_argument(
        "--own-output-dir",
        action="store_true",
        help="process N writes under output_dir/rank-N: machines without a shared filesystem",
    )
    p.add_argument(
        "--disagree",
        action="store_true",
        help="process 0 measures a lower held-out CER at each evaluation, the others a higher "
        "one: as machines whose arithmetic differs",
    )
    return p.parse_args()


def _disagree(rank: int) -> None:
    import engine.tune.loop as loop

    real, calls = loop.cer, itertools.count(1)

    def skewed(references, hypotheses):
        n = next(calls)
        return dataclasses.replace(real(references, hypotheses), cer=10.0 + (n if rank else -n))

    loop.cer = skewed


def _line(event) -> dict:
    fields = ("step", "cer", "path", "best", "checkpoint", "message", "code")
    line = {"event": type(event).__name__}
    line.update({k: getattr(event, k) for k in fields if hasattr(event, k)})
    result = getattr(event, "result", None)
    if hasattr(result, "fingerprint"):
        line.update(fingerprint=result.fingerprint, steps=result.steps)
    return line


def main() -> None:
    from engine.cli.tune import leave_process_group
    from engine.tune.config import TuneConfig
    from engine.tune.loop import run_job

    args = _options()
    rank = int(os.environ["RANK"])
    config = TuneConfig.load(args.job)
    if args.own_output_dir:
        config = dataclasses.replace(config, output_dir=f"{config.output_dir}/rank-{rank}")
    if args.disagree:
        _disagree(rank)
    cancel = threading.Event()
    args.events.mkdir(parents=True, exist_ok=True)
    try:
        with open(args.events / f"events-{rank}.jsonl", "w", encoding="utf-8") as out:
            for event in run_job(config, cancel=cancel, resume=args.resume):
                out.write(json.dumps(_line(event), default=str) + "\n")
                out.flush()
                if args.cancel_on == [rank, getattr(event, "step", -1)]:
                    cancel.set()
    finally:
        leave_process_group()  # as tingxie-cli tune does


if __name__ == "__main__":
    main()
