"""The supervision boundary: nothing a long-lived task raises by accident ends the process.

A task that crashes is logged once with its traceback, counted in
`plextuner_refresh_crashes_total{task}`, and started again after a growing pause. Cancellation
(the shutdown path) always passes through untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from plextuner.logging import get_logger
from plextuner.metrics import REFRESH_CRASHES

log = get_logger(__name__)
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0


def record_crash(task: str, err: BaseException) -> None:
    """One log line with the traceback and one count, for a bug that reached a boundary."""
    REFRESH_CRASHES.labels(task=task).inc()
    log.error(f"{task}_crashed", error=err, exc_info=err)


async def supervised(
    task: str,
    body: Callable[[], Awaitable[None]],
    *,
    first_backoff: float = FIRST_BACKOFF,
    max_backoff: float = MAX_BACKOFF,
) -> None:
    """Run `body` until it returns; restart it (with backoff) whenever it raises."""
    delay = first_backoff
    while True:
        try:
            await body()
        except Exception as err:  # noqa: BLE001 - this is the boundary that must catch everything
            record_crash(task, err)
        else:
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_backoff)
