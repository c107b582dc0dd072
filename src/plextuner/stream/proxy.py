"""The stream engine: tuners, the shared connection budget, proxying with failover.

One session per tune: take a tuner, then for each source (healthiest first) take a provider
connection and open the upstream; the first bytes go out as soon as they arrive. Mid-stream
stalls or drops reconnect to the same or the next source while the client keeps its connection.
Everything is released in `finally`, whatever ends the session.
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
from plextuner.errors import (
    ClientGoneError,
    ConnectionsExhaustedError,
    FailureKind,
    StreamError,
    TuneFailedError,
    UpstreamError,
)
from plextuner.ingest.models import Source
from plextuner.logging import get_logger
from plextuner.metrics import (
    STREAM_BYTES,
    STREAM_FAILOVERS,
    STREAMS_ACTIVE,
    UPSTREAM_ERRORS,
)
from plextuner.redact import host_of
from plextuner.state.published import PublishedState
from plextuner.stream.budget import BudgetRegistry, Lease, TunerPool
from plextuner.stream.sources import SourceHealth
from plextuner.stream.upstream import Upstream, open_upstream

log = get_logger(__name__)
TS_PACKET = 188
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


@dataclass(slots=True)
class Session:
    id: int
    device: str
    channel: str
    name: str
    tuner: int = 0
    client: str = ""
    started: float = field(default_factory=time.time)
    provider: str = ""
    source_index: int = -1
    bytes: int = 0
    failovers: int = 0


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
        for p in settings.providers:
            if p.max_connections:
                self.budgets.set_limit(p.name, p.max_connections)

    async def start(self) -> None:
        cfg = self.settings.stream
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(
                total=None, connect=cfg.connect_timeout, sock_read=cfg.stall_timeout
            ),
            connector=aiohttp.TCPConnector(limit=0, force_close=True),
            auto_decompress=False,
        )

    async def aclose(self) -> None:
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

    def active_sessions(self) -> list[dict[str, Any]]:
        return [
            {
                "device": s.device,
                "tuner": s.tuner,
                "channel": s.channel,
                "name": s.name,
                "client": s.client,
                "provider": s.provider,
                "started": s.started,
                "bytes": s.bytes,
                "bps": round(s.bytes * 8 / max(time.time() - s.started, 1.0)),
                "failovers": s.failovers,
            }
            for s in self._sessions.values()
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
        try:
            response, outcome = await self._run(request, device, entry, session)
            return response
        except ClientGoneError as gone:
            outcome = SessionOutcome.CLIENT_GONE  # not an upstream failure: no failover
            return gone.response
        except asyncio.CancelledError:
            outcome = SessionOutcome.CLIENT_GONE
            raise
        finally:
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
                bytes=session.bytes,
                failovers=session.failovers,
                duration_s=round(time.time() - session.started, 2),
                outcome=outcome.value,
            )

    async def _run(
        self, request: web.Request, device: Device, entry: LineupEntry, session: Session
    ) -> tuple[web.StreamResponse, SessionOutcome]:
        duration = _duration(request)
        deadline = time.monotonic() + duration if duration else None
        response: web.StreamResponse | None = None
        failovers_left = self.settings.stream.max_failovers
        carry = b""
        last_error: StreamError | None = None
        while True:
            opened = await self._open_any(entry, session)
            if opened is None:
                if response is None:
                    detail = str(last_error) if last_error else "no source could be opened"
                    raise TuneFailedError(detail)
                return response, SessionOutcome.UPSTREAM_LOST
            upstream, lease, source = opened
            provider_label = source.provider
            STREAMS_ACTIVE.labels(bucket=device.name, provider=provider_label).inc()
            try:
                if response is None:
                    response = web.StreamResponse(status=200, headers=STREAM_HEADERS)
                    await response.prepare(request)
                carry, ended = await self._pump(
                    upstream, response, device, session, carry, deadline
                )
                if ended:
                    return response, SessionOutcome.DURATION
                reason = FailureKind.EOF.value
            except UpstreamError as err:
                last_error, reason = err, err.label
            except TimeoutError:
                reason = FailureKind.STALL.value
            except aiohttp.ClientError:
                reason = FailureKind.READ_ERROR.value
            finally:
                STREAMS_ACTIVE.labels(bucket=device.name, provider=provider_label).dec()
                await upstream.aclose()
                lease.release()
            self.health.failed(source.url)
            UPSTREAM_ERRORS.labels(kind=reason).inc()
            if response is None:
                raise TuneFailedError(str(last_error) if last_error else "upstream failed")
            if failovers_left <= 0:
                return response, SessionOutcome.FAILOVERS_EXHAUSTED
            failovers_left -= 1
            session.failovers += 1
            STREAM_FAILOVERS.labels(bucket=device.name).inc()
            log.info(
                "stream_failover",
                device=device.name,
                channel=entry.number,
                reason=reason,
                host=host_of(source.url),
            )

    async def _open_any(
        self, entry: LineupEntry, session: Session
    ) -> tuple[Upstream, Lease, Source] | None:
        """The first source that opens, healthiest first; raises when every budget is spent."""
        assert self._session is not None, "StreamEngine.start() not called"
        sources = self.health.order(entry.channel.sources, self.budgets)
        exhausted: ConnectionsExhaustedError | None = None
        opened_any = False
        for index, source in sources:
            try:
                lease = await self.budgets.get(source.provider).acquire_viewer()
            except ConnectionsExhaustedError as err:
                exhausted = err
                continue
            try:
                upstream = await open_upstream(
                    self._session,
                    self.settings.ffmpeg,
                    source,
                    self.settings.stream.connect_timeout,
                )
            except UpstreamError as err:
                lease.release()
                self.health.failed(source.url)
                UPSTREAM_ERRORS.labels(kind=err.label).inc()
                log.info("upstream_failed", host=host_of(source.url), kind=err.label)
                opened_any = True
                continue
            except BaseException:
                lease.release()
                raise
            session.provider, session.source_index = source.provider, index
            self.health.succeeded(source.url)
            return upstream, lease, source
        if exhausted is not None and not opened_any:
            raise exhausted
        return None

    async def _pump(
        self,
        upstream: Upstream,
        response: web.StreamResponse,
        device: Device,
        session: Session,
        carry: bytes,
        deadline: float | None,
    ) -> tuple[bytes, bool]:
        """Copy TS-aligned chunks until the upstream ends; (leftover bytes, duration reached)."""
        stall = self.settings.stream.stall_timeout
        counter = STREAM_BYTES.labels(bucket=device.name)
        chunks = upstream.chunks()
        while True:
            async with asyncio.timeout(stall):
                chunk = await anext(chunks, None)
            if chunk is None:
                return carry, False
            data = carry + chunk
            cut = len(data) - len(data) % TS_PACKET
            carry = data[cut:]
            if cut:
                # write() waits for the client to drain: a slow client slows the upstream read.
                try:
                    await response.write(data[:cut])
                except (ConnectionResetError, aiohttp.ClientConnectionResetError):
                    raise ClientGoneError(response) from None
                session.bytes += cut
                counter.inc(cut)
            if deadline is not None and time.monotonic() >= deadline:
                return carry, True


def _duration(request: web.Request) -> float | None:
    raw = request.query.get("duration", "")
    return float(raw) if raw.isdigit() and 0 < int(raw) < 86400 * 7 else None
