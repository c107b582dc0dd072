"""memtrim: freed heap memory handed back to the system (glibc), a no-op elsewhere."""

from __future__ import annotations

import subprocess
import sys
from unittest import mock

import pytest

from plextuner import memtrim

# In a child: 100 MB of 1 KB blocks from malloc, all freed but the last (which pins the heap's
# top, so glibc cannot shrink it by itself); RSS before and after a trim.
PROBE = """
import ctypes, ctypes.util
from plextuner import memtrim
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
blocks = [libc.malloc(1024) for _ in range(100_000)]
for b in blocks:
    ctypes.memset(b, 1, 1024)
for b in blocks[:-1]:
    libc.free(b)
held = rss()
print(memtrim.trim(), held, rss())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_a_trim_hands_freed_heap_back() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    trimmed, held, after = done.stdout.split()
    if trimmed == "False":
        pytest.skip("no malloc_trim in this libc")
    assert int(held) - int(after) >= 50, done.stdout  # of the ~100 MB freed


@pytest.mark.parametrize("libc", [OSError("no such library"), object()])
def test_without_malloc_trim_nothing_happens(libc: object) -> None:
    """No C library to open, or one without `malloc_trim` (musl, macOS): a no-op."""
    memtrim._trimmer.cache_clear()
    try:
        how = {"side_effect": libc} if isinstance(libc, OSError) else {"return_value": libc}
        with mock.patch("ctypes.CDLL", **how):
            assert memtrim.trim() is False
    finally:
        memtrim._trimmer.cache_clear()


def test_the_c_library_is_not_searched_for() -> None:
    """The process's own symbols: `find_library` ran `ldconfig -p` in every process that trims."""
    memtrim._trimmer.cache_clear()
    try:
        with mock.patch("ctypes.util.find_library", side_effect=AssertionError("searched")):
            memtrim.trim()
    finally:
        memtrim._trimmer.cache_clear()
