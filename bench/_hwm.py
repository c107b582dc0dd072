"""Run a module as `python -m bench._hwm OUT module args...` and write its peak RSS (VmHWM, MB)
to OUT at exit. `ru_maxrss` from wait4 cannot be used: Linux carries the pre-exec high-water mark
of the forked parent into the child's, so a child of a big benchmark process reads as big."""

from __future__ import annotations

import atexit
import os
import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


def _write_peak(out: Path) -> None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            out.write_text(str(int(line.split()[1]) / 1024))


def _peak_then(out: Path, exit_now: Callable[[int], NoReturn]) -> Callable[[int], NoReturn]:
    """`os._exit` that writes the peak first: `plextuner refresh` leaves that way (no atexit)."""

    def leave(code: int) -> NoReturn:
        _write_peak(out)
        exit_now(code)

    return leave


if __name__ == "__main__":
    atexit.register(_write_peak, Path(sys.argv[1]))
    os._exit = _peak_then(Path(sys.argv[1]), os._exit)  # type: ignore[assignment]
    sys.argv = sys.argv[2:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)


class TreeSampler:
    """The largest RSS this process and its children held together, sampled every `every`
    seconds in a thread (a helper process, see plextuner/epg/halves.py, counts with its
    parent: a pod's memory limit counts them both). A spike shorter than `every` can be
    missed: read it beside the process's own VmHWM."""

    def __init__(self, every: float = 0.005) -> None:
        import threading

        self.peak_mb = 0.0
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = os.getpid()
        own = _cmdline(me)
        while not self._stop.wait(self._every):
            children = _children(me)
            # A child between its (v)fork and its exec still runs our command line on our
            # pages: its RSS is ours counted twice (one sample caught it: 171 MB for 137).
            started = [int(pid) for pid in children if _cmdline(int(pid)) != own]
            total = _rss_kb(me) + sum(_rss_kb(pid) for pid in started)
            self.peak_mb = max(self.peak_mb, total / 1024)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mb


def _children(pid: int) -> list[str]:
    """Every thread's children: a helper started from a worker thread (the refresh command runs
    its guide job in one) is listed under that thread's task only."""
    found: list[str] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            found += Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        except OSError:
            continue  # the thread ended between the listing and the read
    return found


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass  # gone between the listing and the read
    return 0


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
