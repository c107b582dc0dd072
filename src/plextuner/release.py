"""Freeing big object graphs off the event loop.

CPython frees an object where its last reference goes. A refresh's leftovers (the parsed
entries of a 50k list, a guide's programmes, the state a publish replaced) are hundreds of
thousands of objects: freed on the event loop they stall every viewer for 0.1-0.5 s. Handing the
last references to a worker thread frees them there.
"""

from __future__ import annotations

import asyncio

from plextuner import memtrim


async def release_in_thread(box: list[object]) -> None:
    """Clear `box` in a worker thread. The caller puts its last references in `box` and keeps
    none itself (`del` its own names first)."""
    await asyncio.to_thread(box.clear)


class _Trims:
    """Trims in a thread, one at a time (each walks the whole heap): a call while one runs
    asks for one more after it, so what was freed meanwhile is handed back too."""

    running = False
    again = False


async def trim_in_thread() -> None:
    """`memtrim.trim` off the event loop: 150 MB handed back is ~10 ms of madvise calls. Calls
    while one runs are folded into a single trim after it. Here, not in memtrim.py: the guide's
    helper processes import that one, and asyncio would cost each of them ~5 MB."""
    if _Trims.running:
        _Trims.again = True
        return
    _Trims.running = True
    try:
        while True:
            _Trims.again = False
            await asyncio.to_thread(memtrim.trim)
            if not _Trims.again:
                return
    finally:
        _Trims.running = False
