"""Freeing big object graphs off the event loop.

CPython frees an object where its last reference goes. A refresh's leftovers (the parsed
entries of a 50k list, a guide's programmes, the state a publish replaced) are hundreds of
thousands of objects: freed on the event loop they stall every viewer for 0.1-0.5 s. Handing the
last references to a worker thread frees them there.
"""

from __future__ import annotations

import asyncio


async def release_in_thread(box: list[object]) -> None:
    """Clear `box` in a worker thread. The caller puts its last references in `box` and keeps
    none itself (`del` its own names first)."""
    await asyncio.to_thread(box.clear)
