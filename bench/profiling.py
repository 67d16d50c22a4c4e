"""Where a bench's time goes (--profile): torch.profiler over one stretch of it (a few
training steps, one transcription), printed as the operators that took the most time on the
CPU and, on a GPU, on the device, with how much of the stretch's wall time each side covers.

A GPU lease is short: one call should say what a step or a file is waiting on (the device,
the operators' CPU side, or Python between them) without a second call to find out.
"""

from __future__ import annotations

import time


class Profile:
    """start() … stop() → the report (an empty string when not enabled)."""

    def __init__(self, enabled: bool, rows: int = 20) -> None:
        self.enabled, self.rows = enabled, rows
        self._prof = None

    def start(self) -> None:
        if not self.enabled or self._prof is not None:
            return
        import torch
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
        self._prof = None
        return "\n".join(lines)
