"""Freed heap memory handed back to the system (glibc's `malloc_trim`).

Parsing a big guide allocates and frees millions of small blocks (libxml2's nodes, lxml's
proxies, Python's strings); glibc keeps what was freed for reuse, so the process's RSS stays at
the high-water mark of the heap long after the objects are gone. Measured on the bench guide:
a trim before the device guides are written returned 12 MB of 91 in 1.6 ms. Elsewhere (musl,
macOS) there is no such call and this does nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable


@functools.cache
def _trimmer() -> Callable[[int], int] | None:
    import ctypes  # on the first trim, not at every start (xmltv imports this module)

    try:
        # The process's own symbols, the C library's among them: `ctypes.util.find_library`
        # ran `ldconfig -p` in a subprocess for each process that trims (the guide's helpers)
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    found: Callable[[int], int] | None = getattr(libc, "malloc_trim", None)
    return found


def trim() -> bool:
    """Return the heap's free memory to the system; False where that cannot be done."""
    call = _trimmer()
    if call is None:
        return False
    call(0)
    return True
