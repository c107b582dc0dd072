"""How many CPUs this process may use: whether a helper process on a second one pays."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"


def usable_cpus() -> float:
    """CPUs this process may use: its affinity, capped by a cgroup v2 quota (a pod's limit)."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux; elsewhere every CPU
    cpus = float(len(affinity(0)) if affinity else os.cpu_count() or 1)
    with contextlib.suppress(OSError, ValueError):
        quota, period = CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, int(quota) / int(period))
    return cpus


def second_cpu() -> bool:
    """A second CPU (1.5 at least) for a helper process to run on beside this one."""
    return usable_cpus() >= 1.5
