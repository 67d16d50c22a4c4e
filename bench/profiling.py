"""Where a bench's time goes (--profile): torch.profiler over one stretch of it (a few
training steps, one transcription), printed as the operators that took the most time on the
CPU and, on a GPU, on the device, with how much of the stretch's wall time each side covers.
A model run by ONNX Runtime (engine/onnx.py: the int8 copy CPUs without native bf16 run) is
profiled by the runtime's own profiler, its kernels' time summed by operator type.

A GPU lease is short: one call should say what a step or a file is waiting on (the device,
the operators' CPU side, or Python between them) without a second call to find out.
"""

from __future__ import annotations

import collections
import json
import tempfile
import time
from pathlib import Path
from typing import Any


class Profile:
    """start() … stop() → the report (an empty string when not enabled). `onnx`: an
    engine.onnx.OnnxCtcModel, whose session start() replaces by one that records its kernels."""

    def __init__(self, enabled: bool, rows: int = 20, onnx: Any = None) -> None:
        self.enabled, self.rows, self.onnx = enabled, rows, onnx
        self._prof = None

    def start(self) -> None:
        if not self.enabled or self._prof is not None:
            return
        import torch

        if self.onnx is not None:
            from engine.onnx import open_session, session_options

            options = session_options(self.onnx.threads)
            options.enable_profiling = True
            self._ort_dir = tempfile.TemporaryDirectory()
            options.profile_file_prefix = str(Path(self._ort_dir.name) / "ort")
            self.onnx.session = open_session(self.onnx.path, options)
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU]
        if torch.cuda.is_available():
            activities.append(ProfilerActivity.CUDA)
        self._prof = profile(activities=activities)
        self._prof.start()
        self._wall = time.perf_counter()

    def stop(self) -> str:
        if self._prof is None:
            return ""
        import torch

        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.synchronize()
        self._prof.stop()
        wall = time.perf_counter() - self._wall
        averages = self._prof.key_averages()
        cpu = sum(e.self_cpu_time_total for e in averages) / 1e6
        lines = [f"profile: {wall:.2f} s wall; operators' own CPU time {cpu:.2f} s"]
        if cuda:
            device = sum(e.self_device_time_total for e in averages) / 1e6
            lines[0] += f", device time {device:.2f} s ({100 * device / wall:.0f} % of the wall)"
            lines.append(averages.table(sort_by="self_device_time_total", row_limit=self.rows))
        lines.append(averages.table(sort_by="self_cpu_time_total", row_limit=self.rows))
        if self.onnx is not None:
            lines.append(ort_table(Path(self.onnx.session.end_profiling()), wall, self.rows))
            self._ort_dir.cleanup()
        self._prof = None
        return "\n".join(lines)


def ort_table(trace: Path, wall: float, rows: int) -> str:
    """ONNX Runtime's trace (chrome format) as its kernels' time by operator type."""
    seconds: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()
    for event in json.loads(trace.read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            seconds[op] += event["dur"] / 1e6
            calls[op] += 1
    total = sum(seconds.values())
    lines = [
        f"ONNX Runtime kernels: {total:.2f} s ({100 * total / wall:.0f} % of the wall), by type:",
        f"{'operator':<28}{'s':>9}{'share':>8}{'calls':>8}",
    ]
    for op, s in seconds.most_common(rows):
        lines.append(f"{op:<28}{s:>9.2f}{100 * s / total:>7.1f}%{calls[op]:>8}")
    return "\n".join(lines)
