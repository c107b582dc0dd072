"""The stream engine's output side: one HTTP session per viewer, on a shared upstream.

A tune takes a tuner of its device (Plex counts tuners), then joins the channel's shared upstream
(`shared.py`: one provider connection per channel, whatever the number of viewers) and writes
that viewer's queue (`viewer.py`) to its response with backpressure of its own. Everything is
released in `finally`, whatever ends the session; one `stream_session` line per viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp
from aiohttp import web
from structlog.contextvars import bound_contextvars

from plextuner.buckets.models import Device, LineupEntry
from plextuner.config import Settings
from plextuner.errors import ClientGoneError
from plextuner.logging import get_logger
from plextuner.metrics import STREAM_BYTES, STREAMS_ACTIVE
from plextuner.state.published import PublishedState
from plextuner.stream.budget import BudgetRegistry, LeaseKind, TunerPool
from plextuner.stream.fanout import SharedUpstream
from plextuner.stream.shared import UpstreamHub
from plextuner.stream.sources import SourceHealth
from plextuner.stream.ts import TS_PACKET
from plextuner.stream.viewer import Viewer

__all__ = ["STREAM_HEADERS", "TS_PACKET", "SessionOutcome", "StreamEngine"]
log = get_logger(__name__)
# After its first bytes, a viewer's client is written at most this often (what came meanwhile in
# one write): 5 writes a second instead of one per upstream chunk. Players buffer seconds.
WRITE_EVERY = 0.2
STREAM_HEADERS = {
    "Content-Type": "video/mpeg",
    "transferMode.dlna.org": "Streaming",
    "Server": "HDHomeRun/1.0",
    "Cache-Control": "no-cache",
    "Connection": "close",
}


class SessionOutcome(StrEnum):
    """How a stream session ended (the `outcome` of its `stream_session` log line)."""

    ERROR = "error"
    CLIENT_GONE = "client_gone"
    DURATION = "duration"  # the client's ?duration= ran out
    UPSTREAM_LOST = "upstream_lost"  # every source failed after the stream had started
    FAILOVERS_EXHAUSTED = "failovers_exhausted"
    SLOW_VIEWER = "slow_viewer"  # fell behind its buffer with stream.slow_viewer: disconnect


@dataclass(slots=True)
class Session:
    id: int
    device: str
    channel: str
    name: str
    tuner: int = 0
    client: str = ""
    started: float = field(default_factory=time.time)
    bytes: int = 0
    upstream: SharedUpstream | None = None

    # Read from the shared upstream: one failover or account switch shows in every viewer.
    @property
    def provider(self) -> str:
        return self.upstream.provider if self.upstream else ""

    @property
    def source_index(self) -> int:
        return self.upstream.source_index if self.upstream else -1

    @property
    def failovers(self) -> int:
        return self.upstream.failovers if self.upstream else 0


class StreamEngine:
    def __init__(self, settings: Settings, budgets: BudgetRegistry | None = None) -> None:
        self.settings = settings
        cfg = settings.stream
        self.budgets = budgets or BudgetRegistry(cfg.default_max_connections, cfg.viewer_wait)
        self.health = SourceHealth()
        self._pools: dict[str, TunerPool] = {}
        self._sessions: dict[int, Session] = {}
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.hub = UpstreamHub(
            settings.stream, self.budgets, self.health, settings.ffmpeg, self._client
        )
        for p in settings.providers:
            if p.max_connections:
                self.budgets.set_limit(p.name, p.max_connections)
        self.budgets.configure_accounts(settings.providers)
        self.budgets.linger = settings.postvalidate.provider_linger

    async def start(self) -> None:
        cfg = self.settings.stream
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(
                total=None, connect=cfg.connect_timeout, sock_read=cfg.stall_timeout
            ),
            connector=aiohttp.TCPConnector(limit=0, force_close=True),
            auto_decompress=False,
        )

    def _client(self) -> aiohttp.ClientSession:
        assert self._session is not None, "StreamEngine.start() not called"
        return self._session

    async def aclose(self) -> None:
        await self.hub.aclose()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    def update_state(self, state: PublishedState) -> None:
        for device in state.devices:
            pool = self._pools.get(device.name)
            if pool is None:
                self._pools[device.name] = TunerPool(device.name, device.tuners)
            elif pool.count != device.tuners:  # keep busy tuners busy across a swap
                self._pools[device.name] = pool.resized(device.tuners)
        configured = {p.name: p.max_connections for p in self.settings.providers}
        for provider in state.providers:
            limit = configured.get(provider.name) or provider.max_connections
            if limit:
                self.budgets.set_limit(provider.name, limit)

    def streaming(self) -> bool:
        """Anyone watching through this daemon now."""
        return bool(self._sessions)

    def active_sessions(self) -> list[dict[str, Any]]:
        return [
            {
                "device": s.device,
                "tuner": s.tuner,
                "channel": s.channel,
                "name": s.name,
                "client": s.client,
                "provider": s.provider,
                "upstream": s.upstream.id if s.upstream else None,
                "upstream_viewers": len(s.upstream.viewers) if s.upstream else 0,
                "upstream_state": s.upstream.state.value if s.upstream else "opening",
                "started": s.started,
                "bytes": s.bytes,
                "bps": round(s.bytes * 8 / max(time.time() - s.started, 1.0)),
                "failovers": s.failovers,
            }
            for s in self._sessions.values()
        ]

    def recent_failovers(self) -> list[dict[str, Any]]:
        return list(reversed(self.hub.recent_failovers))

    def budgets_snapshot(self) -> list[dict[str, Any]]:
        """Connections per provider account: limit, in use by viewers and probes, waiting."""
        return [
            {
                "account": b.name,
                "limit": b.limit,
                "in_use": b.in_use,
                "viewers": b.count(LeaseKind.VIEWER),
                "probes": b.count(LeaseKind.PROBE),
                "viewers_waiting": b.viewers_waiting,
            }
            for b in self.budgets.all()
        ]

    def pool(self, device: Device) -> TunerPool:
        pool = self._pools.get(device.name)
        if pool is None:
            pool = self._pools[device.name] = TunerPool(device.name, device.tuners)
        return pool

    async def handle(
        self, request: web.Request, device: Device, entry: LineupEntry, tuner: int | None
    ) -> web.StreamResponse:
        pool = self.pool(device)
        index = pool.acquire(tuner)  # TunersBusyError → 503 805 in the middleware
        session = Session(
            next(self._ids),
            device.name,
            entry.number,
            entry.channel.name,
            tuner=index,
            client=request.remote or "",
        )
        self._sessions[session.id] = session
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        # Every line logged inside the session (failover, upstream) carries its id.
        with bound_contextvars(session=session.id, device=device.name, channel=entry.number):
            return await self._serve(request, device, entry, session, pool, index, task)

    async def _serve(
        self,
        request: web.Request,
        device: Device,
        entry: LineupEntry,
        session: Session,
        pool: TunerPool,
        index: int,
        task: asyncio.Task[Any] | None,
    ) -> web.StreamResponse:
        outcome = SessionOutcome.ERROR
        viewer: Viewer | None = None
        try:
            up, viewer = await self.hub.join(entry, device.name, session.client)
            session.upstream = up
            response = web.StreamResponse(status=200, headers=STREAM_HEADERS)
            await response.prepare(request)
            outcome = await self._write(viewer, response, device, session, _duration(request))
            return response
        except ClientGoneError as gone:
            outcome = SessionOutcome.CLIENT_GONE  # not an upstream failure: no failover
            return gone.response
        except asyncio.CancelledError:
            outcome = SessionOutcome.CLIENT_GONE
            raise
        finally:
            if session.upstream is not None and viewer is not None:
                self.hub.leave(session.upstream, viewer)
            pool.release(index)
            self._sessions.pop(session.id, None)
            if task is not None:
                self._tasks.discard(task)
            log.info(
                "stream_session",
                device=device.name,
                channel=entry.number,
                name=entry.channel.name,
                provider=session.provider,
                source=session.source_index,
                upstream=session.upstream.id if session.upstream else None,
                bytes=session.bytes,
                failovers=session.failovers,
                duration_s=round(time.time() - session.started, 2),
                outcome=outcome.value,
            )

    async def _write(
        self,
        viewer: Viewer,
        response: web.StreamResponse,
        device: Device,
        session: Session,
        duration: float | None,
    ) -> SessionOutcome:
        """Copy this viewer's queue to its client; each write waits for the client to drain, so
        a slow client fills only its own bounded queue. The first bytes go out at once (time
        to first byte); after that a write carries what came in the last WRITE_EVERY."""
        deadline = time.monotonic() + duration if duration else None
        loop = asyncio.get_running_loop()
        not_before = 0.0
        counter = STREAM_BYTES.labels(bucket=device.name)
        gauge = STREAMS_ACTIVE.labels(bucket=device.name, provider=session.provider)
        gauge.inc()
        try:
            while True:
                data = await viewer.take(not_before)
                if data is None:
                    if viewer.closed_reason == "slow viewer":
                        return SessionOutcome.SLOW_VIEWER
                    return SessionOutcome.UPSTREAM_LOST
                try:
                    await response.write(data)
                except (ConnectionResetError, aiohttp.ClientConnectionResetError):
                    raise ClientGoneError(response) from None
                not_before = loop.time() + WRITE_EVERY
                session.bytes += len(data)
                counter.inc(len(data))
                if deadline is not None and time.monotonic() >= deadline:
                    return SessionOutcome.DURATION
        finally:
            gauge.dec()


def _duration(request: web.Request) -> float | None:
    raw = request.query.get("duration", "")
    return float(raw) if raw.isdigit() and 0 < int(raw) < 86400 * 7 else None
