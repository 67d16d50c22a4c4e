"""Tuning events as JSON lines, so a job can run in another process: the child
(`engine.tune.child`) appends one line per event to a file in the job folder, the app reads them
back as the same typed records. Pure (no torch, no I/O beyond strings).

Each line is an object whose "event" names the record type and whose other keys are its fields;
nested records (the config, a CER result) are objects, paths are strings, tuples are lists. The
field types declared on the dataclasses say how to rebuild each value, so a field added to an
event travels without touching this module.

>>> decode(encode(JobCancelled(step=40, checkpoint=Path("/jobs/a/checkpoints/step-0000040"))))
JobCancelled(step=40, checkpoint=PosixPath('/jobs/a/checkpoints/step-0000040'))
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

from .events import (
    CheckpointSaved,
    CheckpointSetAside,
    Estimate,
    Evaluated,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    StepProgress,
)

__all__ = ["EVENT_TYPES", "TERMINAL", "WireError", "decode", "encode"]

EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        JobStarted,
        CheckpointSetAside,
        StepProgress,
        Evaluated,
        CheckpointSaved,
        JobFinished,
        JobCancelled,
        JobFailed,
        Estimate,
    )
}
# The events after which a child process has nothing more to say.
TERMINAL = (JobFinished, JobCancelled, JobFailed, Estimate)


class WireError(ValueError):
    """A line that is not an encoded event (torn write, another program's output)."""


def encode(event: Any) -> str:
    """One line of JSON (no newline inside) for a tuning event."""
    name = type(event).__name__
    if EVENT_TYPES.get(name) is not type(event):
        raise TypeError(f"{name} is not a tuning event; expected one of {', '.join(EVENT_TYPES)}")
    return json.dumps({"event": name, **_plain(event)}, ensure_ascii=False)


def decode(line: str) -> Any:
    """The event `encode` wrote; WireError when the line is not one."""
    try:
        data = json.loads(line)
        cls = EVENT_TYPES[data.pop("event")]
        return _build(cls, data)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise WireError(f"not a tuning event ({type(e).__name__}: {e}): {line[:80]!r}") from e


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _build(cls: type, data: dict) -> Any:
    hints = typing.get_type_hints(cls)
    values = {
        f.name: _coerce(data[f.name], hints[f.name])
        for f in dataclasses.fields(cls)
        if f.name in data
    }
    return cls(**values)


def _coerce(value: Any, hint: Any) -> Any:
    """`value` as decoded JSON, turned into the declared type `hint`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if value is None:
        return None
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return _coerce(value, options[0]) if len(options) == 1 else value
    if origin is Literal or hint is Any:
        return value
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0]) for v in value)
        return tuple(_coerce(v, a) for v, a in zip(value, args, strict=True))
    if origin is list:
        return [_coerce(v, args[0]) for v in value]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value)
    if hint is Path:
        return Path(value)
    if hint is float:
        return float(value)
    return value
