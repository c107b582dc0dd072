"""How late the event loop runs: a sampler that wakes a few times a second.

Every stream, HTTP answer and discovery reply waits while a callback holds the loop, so the lag
is what viewers feel during a refresh. Each sample is observed in
`plextuner_event_loop_lag_seconds`; a sample over `WARN_AFTER` logs one `event_loop_blocked` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
import traceback

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


def start_stall_watchdog(threshold: float = 0.15) -> threading.Thread | None:
    """With PLEXTUNER_LOOP_WATCHDOG=1: a thread that pings the loop every 50 ms and, when a ping
    waits longer than `threshold`, logs every thread's stack once (what held the loop or the
    GIL). A diagnostic for operators chasing stalls; off by default."""
    if os.environ.get("PLEXTUNER_LOOP_WATCHDOG", "") not in ("1", "true", "yes"):
        return None
    loop = asyncio.get_running_loop()
    beat = [time.monotonic()]
    loop_ident = threading.get_ident()

    def ping() -> None:
        beat[0] = time.monotonic()

    def watch() -> None:
        reported = 0.0
        while not loop.is_closed():
            time.sleep(0.05)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(ping)
            stale = time.monotonic() - beat[0]
            if stale > threshold and beat[0] != reported:
                reported = beat[0]
                stacks = {
                    ("loop" if tid == loop_ident else str(tid)): "".join(
                        traceback.format_stack(frame)[-6:]
                    )
                    for tid, frame in sys._current_frames().items()  # noqa: SLF001 - the documented way to see other threads
                    if tid != threading.get_ident()
                }
                log.warning("event_loop_stalled", stale_s=round(stale, 3), stacks=stacks)

    thread = threading.Thread(target=watch, name="loop-watchdog", daemon=True)
    thread.start()
    return thread
