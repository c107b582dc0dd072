"""Freed heap memory handed back to the system (glibc's `malloc_trim`).

Parsing a big guide allocates and frees millions of small blocks (libxml2's nodes, lxml's
proxies, Python's strings); glibc keeps what was freed for reuse, so the process's RSS stays at
the high-water mark of the heap long after the objects are gone. Measured on the bench guide:
a trim before the device guides are written returned 12 MB of 91 in 1.6 ms. Elsewhere (musl,
macOS) there is no such call and this does nothing.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any


@functools.cache
def _libc() -> Any:
    import ctypes  # on the first call, not at every start (xmltv imports this module)

    try:
        # The process's own symbols, the C library's among them: `ctypes.util.find_library`
        # ran `ldconfig -p` in a subprocess for each process that trims (the guide's helpers)
        return ctypes.CDLL(None)
    except OSError:
        return None


def _trimmer() -> Callable[[int], int] | None:
    found: Callable[[int], int] | None = getattr(_libc(), "malloc_trim", None)
    return found


M_ARENA_MAX = -8  # glibc's malloc.h
ARENAS = 2  # the daemon's: as many as this machine's cores, whatever it runs on


def limit_arenas(count: int = ARENAS) -> bool:
    """At most `count` malloc arenas: glibc makes one for each thread that allocates while
    another holds one (up to 8 a core), each keeping what its thread freed. The daemon's
    refreshes run their CPU work in worker threads, so 50k channels' big lists and buffers were
    spread over several arenas that never shrink together: `serve` refreshed 12 times in a row
    rested at 181-183 MB (peaks 221-226); with two arenas 166-168 MB (peaks 210-214). An
    operator's own MALLOC_ARENA_MAX wins. False where there is no such setting (musl, macOS)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    mallopt = getattr(_libc(), "mallopt", None)
    return mallopt is not None and bool(mallopt(M_ARENA_MAX, count))


def trim() -> bool:
    """Return the heap's free memory to the system; False where that cannot be done."""
    call = _trimmer()
    if call is None:
        return False
    call(0)
    return True
