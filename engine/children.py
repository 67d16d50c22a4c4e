"""How the engine runs one of its own modules in a child process: `python -m MODULE`, or, in
the PyInstaller bundle (no `-m` there), the bundle's program, which dispatches on its first
argument (packaging/bundle/tingxie_app.py). Tuning jobs (engine.tune.jobs) run so, the
conversion of a large checkpoint to its compute precision (engine.convert), and the export that
makes a CPU's int8 copy of a checkpoint (engine.model), which the bundle, leaving the exporter
out, never asks for."""

from __future__ import annotations

import sys

__all__ = ["module_command"]


def module_command(module: str, *args: str) -> list[str]:
    """The command line that runs `module` with `args` in a new process."""
    prefix = [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m"]
    return [*prefix, module, *args]
