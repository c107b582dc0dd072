"""memtrim: freed heap memory handed back to the system (glibc), a no-op elsewhere."""

from __future__ import annotations

import os
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
    memtrim._libc.cache_clear()
    try:
        how = {"side_effect": libc} if isinstance(libc, OSError) else {"return_value": libc}
        with mock.patch("ctypes.CDLL", **how):
            assert memtrim.trim() is False
    finally:
        memtrim._libc.cache_clear()


def test_the_c_library_is_not_searched_for() -> None:
    """The process's own symbols: `find_library` ran `ldconfig -p` in every process that trims."""
    memtrim._libc.cache_clear()
    try:
        with mock.patch("ctypes.util.find_library", side_effect=AssertionError("searched")):
            memtrim.trim()
    finally:
        memtrim._libc.cache_clear()


# In a child: eight threads allocate at once (each held at a barrier with its blocks), then
# glibc's malloc_stats prints one "Arena N:" section an arena to stderr.
ARENAS_PROBE = """
import ctypes, sys, threading
from plextuner import memtrim
limited = memtrim.limit_arenas(2) if sys.argv[1] == "limit" else None
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
barrier = threading.Barrier(8)
def work():
    blocks = [libc.malloc(4096) for _ in range(200)]
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc.malloc_stats()
print(limited)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas")
@pytest.mark.parametrize("how", ["limit", "as is"])
def test_the_daemon_keeps_two_malloc_arenas(how: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", ARENAS_PROBE, how],
        capture_output=True, text=True, timeout=60, check=True, env=env,
    )  # fmt: skip
    arenas = done.stderr.count("Arena ")
    if arenas == 0:
        pytest.skip("no malloc_stats arenas here (not glibc)")
    if how == "limit":
        assert done.stdout.strip() == "True"
        assert arenas <= 2, done.stderr
    else:
        assert arenas > 2, done.stderr  # what the limit is for


def test_an_operators_arena_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    with mock.patch.object(memtrim, "_libc", side_effect=AssertionError("tuned")):
        assert memtrim.limit_arenas() is False
