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


def test_without_malloc_trim_nothing_happens() -> None:
    memtrim._trimmer.cache_clear()
    try:
        with mock.patch("ctypes.util.find_library", return_value=None):
            assert memtrim.trim() is False
    finally:
        memtrim._trimmer.cache_clear()
