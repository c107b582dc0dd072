"""Waiting on a condition, never on the clock: each helper fails the test when time runs out."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

POLL = 0.02


async def until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 10.0
) -> None:
    """Return as soon as `condition()` is true; fail naming `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(POLL)


def until_sync(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """The same for tests outside an event loop (a subprocess, a thread)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(POLL)
