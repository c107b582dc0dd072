"""A playlist helper started as the `plextuner refresh` command starts, before its imports.

The command spends ~0.2 s importing (pydantic, asyncio, the config) and reading its config
before it parses a playlist; a big playlist's second part goes to a helper process (see
ingest/m3uhalf.py) that itself takes ~0.1 s to start. Started here, with nothing imported but
what spawning needs, the helper is ready when the parse begins, and the split needs no lead for
its start. Whether a playlist is big is not known yet: a helper no refresh takes is killed as
the refresh ends (a list under 2 MB, an Xtream account), having cost ~0.1 s of the other CPU.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Sequence

from plextuner.cpus import second_cpu

HELPER = [sys.executable, "-m", "plextuner.ingest.m3uhalf"]

_started: tuple[subprocess.Popen[bytes], float] | None = None


def start(argv: Sequence[str]) -> None:
    """The helper spawned when `argv` is a `refresh` command and a second CPU is there."""
    global _started  # noqa: PLW0603 - one process-wide slot, taken once
    if list(argv[1:2]) != ["refresh"] or _started is not None or not second_cpu():
        return
    with contextlib.suppress(OSError):  # no helper: the refresh starts one later, or none
        _started = (spawn(), time.monotonic())


def spawn() -> subprocess.Popen[bytes]:
    """A playlist helper, waiting for its job on its input (see ingest/m3uhalf.py)."""
    return subprocess.Popen(
        HELPER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def take() -> tuple[subprocess.Popen[bytes], float] | None:
    """The helper started by `start` and when, once; None when there is none."""
    global _started
    started, _started = _started, None
    return started
