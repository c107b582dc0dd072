"""release.py: freeing big object graphs off the event loop, and handing the heap back."""

from __future__ import annotations

import gc

import pytest

from plextuner import memtrim, release


async def test_a_box_is_emptied_in_a_worker_thread() -> None:
    """The references put in the box are dropped by another thread: what they held is freed
    there, not on the event loop."""
    import threading

    freed_in: list[str] = []

    class Marker:
        def __del__(self) -> None:
            freed_in.append(threading.current_thread().name)

    box: list[object] = [Marker()]
    gc.collect()
    await release.release_in_thread(box)
    assert box == []
    assert freed_in and freed_in[0] != threading.main_thread().name


async def test_trims_in_a_thread_are_folded_while_one_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstreams that end together (20 viewers leaving) ask for a trim each: one runs in a
    thread, the calls made meanwhile become one more trim after it (what they freed is handed
    back too), never a pile of threads walking the heap at once."""
    import asyncio
    import threading

    started, go = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow_trim() -> bool:
        calls.append(len(calls))
        started.set()
        go.wait(10)
        return True

    monkeypatch.setattr(memtrim, "trim", slow_trim)
    first = asyncio.create_task(release.trim_in_thread())
    await asyncio.to_thread(started.wait, 10)
    await asyncio.gather(*(release.trim_in_thread() for _ in range(5)))  # return at once
    assert calls == [0]
    go.set()
    await first
    assert calls == [0, 1]
    await release.trim_in_thread()  # none running: a trim of its own
    assert calls == [0, 1, 2]
