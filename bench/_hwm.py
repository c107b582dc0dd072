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
