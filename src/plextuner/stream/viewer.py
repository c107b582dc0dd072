"""One viewer of a shared upstream: its own bounded queue, read by its own HTTP handler.

The upstream never waits for a viewer: `offer` is synchronous and bounded. A viewer that falls
more than its bound behind is skipped ahead to a clean point (PAT/PMT and the newest keyframe
in the ring) or disconnected, per `stream.slow_viewer`; the others never notice.
"""

from __future__ import annotations

import asyncio
from collections import deque
from enum import StrEnum

from plextuner.metrics import SLOW_VIEWERS


class SlowPolicy(StrEnum):
    SKIP = "skip"
    DISCONNECT = "disconnect"


class Viewer:
    def __init__(self, viewer_id: int, client: str, max_bytes: int, policy: SlowPolicy) -> None:
        self.id = viewer_id
        self.client = client
        self.max_bytes = max_bytes
        self.policy = policy
        self.closed_reason: str | None = None
        self._queue: deque[bytes] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self._hold: asyncio.Future[None] | None = None  # a `take` waiting for more bytes
        self._enough = max_bytes // 4  # queued this much, a held `take` writes at once

    @property
    def queued(self) -> int:
        return self._bytes

    @property
    def closed(self) -> bool:
        return self.closed_reason is not None

    def _put(self, data: bytes) -> None:
        if data:
            self._queue.append(data)
            self._bytes += len(data)
            self._ready.set()
            if self._hold is not None and self._bytes >= self._enough:
                _release(self._hold)

    def start(self, pieces: list[bytes]) -> None:
        """The joiner's first bytes (a clean point), bounded like everything else."""
        for piece in _bounded(pieces, self.max_bytes):
            self._put(piece)

    def offer(self, data: bytes, clean_point: list[bytes]) -> None:
        """New upstream bytes; never blocks. `clean_point` is where a skipped viewer resumes
        (it already ends with `data`)."""
        if self.closed:
            return
        if self._bytes + len(data) <= self.max_bytes:
            self._put(data)
            return
        if self.policy is SlowPolicy.DISCONNECT:
            SLOW_VIEWERS.labels(action="disconnect").inc()
            self.close("slow viewer")
            return
        SLOW_VIEWERS.labels(action="skip").inc()
        self._queue.clear()
        self._bytes = 0
        self.start(clean_point)

    def keepalive(self, data: bytes) -> None:
        """Filler during a reconnect, only when the viewer has nothing else queued."""
        if not self.closed and not self._queue:
            self._put(data)

    def close(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        self._ready.set()
        if self._hold is not None:
            _release(self._hold)

    async def take(self, not_before: float) -> bytes | None:
        """Everything queued, as one piece; None once closed and drained. Waits for the first
        bytes, then (holding them) until loop time `not_before`, unless the queue fills a
        quarter of its bound or the viewer closes first: a viewer's client gets a few writes a
        second, not one per upstream chunk (a paced 3 Mbit/s source sends ~30 a second, and a
        write and a wake-up per chunk per viewer were most of the proxy's CPU)."""
        while not self._queue:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        loop = asyncio.get_running_loop()
        delay = not_before - loop.time()
        if delay > 0 and self._bytes < self._enough and not self.closed:
            hold = self._hold = loop.create_future()
            timer = loop.call_later(delay, _release, hold)
            try:
                await hold
            finally:
                timer.cancel()
                self._hold = None
        pieces = list(self._queue)
        self._queue.clear()
        self._bytes = 0
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _release(hold: asyncio.Future[None]) -> None:
    if not hold.done():
        hold.set_result(None)


def _bounded(pieces: list[bytes], limit: int) -> list[bytes]:
    """The head (PAT/PMT) and as much of the tail as fits in `limit`."""
    if sum(map(len, pieces)) <= limit or len(pieces) <= 1:
        return pieces
    head, tail = pieces[0], pieces[1:]
    kept: list[bytes] = []
    room = limit - len(head)
    for piece in reversed(tail):
        if len(piece) > room:
            break
        kept.insert(0, piece)
        room -= len(piece)
    return [head, *kept] if kept else [head, tail[-1]]
