"""The event-loop lag sampler: a callback that holds the loop is measured and logged once."""

from __future__ import annotations

import asyncio
import time

from plextuner.looplag import watch_loop_lag
from plextuner.metrics import REGISTRY
from tests.waiting import until


def _count(le: str) -> float:
    value = REGISTRY.get_sample_value("plextuner_event_loop_lag_seconds_bucket", {"le": le})
    return value or 0.0


async def test_blocking_callback_is_measured() -> None:
    """A 0.3 s blocking call shows as one sample above 0.25 s; quiet samples stay small."""
    watcher = asyncio.create_task(watch_loop_lag(interval=0.05, warn_after=0.1))
    try:
        await until(lambda: _count("+Inf") >= 2, "quiet samples")
        assert _count("+Inf") - _count("0.25") == 0
        time.sleep(0.3)
        await until(lambda: _count("+Inf") - _count("0.25") >= 1, "the blocked sample")
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
