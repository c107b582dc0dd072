"""How late the event loop runs: a sampler that wakes a few times a second.

Every stream, HTTP answer and discovery reply waits while a callback holds the loop, so the lag
is what viewers feel during a refresh. Each sample is observed in
`plextuner_event_loop_lag_seconds`; a sample over `WARN_AFTER` logs one `event_loop_blocked` line.
"""

from __future__ import annotations

import asyncio

from plextuner.logging import get_logger
from plextuner.metrics import LOOP_LAG

log = get_logger(__name__)
INTERVAL = 0.25
WARN_AFTER = 0.1


async def watch_loop_lag(interval: float = INTERVAL, warn_after: float = WARN_AFTER) -> None:
    """Runs until cancelled (under the service's supervision boundary)."""
    loop = asyncio.get_running_loop()
    while True:
        expected = loop.time() + interval
        await asyncio.sleep(interval)
        lag = max(0.0, loop.time() - expected)
        LOOP_LAG.observe(lag)
        if lag > warn_after:
            log.warning("event_loop_blocked", lag_s=round(lag, 3))
