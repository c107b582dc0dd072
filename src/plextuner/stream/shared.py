"""Shared upstreams: one provider connection per channel, fanned out to every viewer.

The first viewer of a channel opens the upstream (healthiest source first, within
`first_byte_timeout` across all sources); every later viewer of the same channel, on any device,
joins it and starts at a clean point from the ring buffer. The provider budget counts one
connection per upstream. Failover and reconnects happen once, for all viewers, who get valid TS
keep-alive (PAT/PMT and null packets) meanwhile. When the last viewer leaves, the upstream
lingers `stream.linger` seconds (Plex closes and reopens when it restarts a transcode) — unless a
tune is waiting for its connection (a zap on a full account), then it closes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

import aiohttp

from plextuner.buckets.models import LineupEntry
from plextuner.config import StreamConfig
from plextuner.errors import (
    ConnectionsExhaustedError,
    FailureKind,
    StreamError,
    TuneFailedError,
    UpstreamError,
)
from plextuner.ingest.models import Source
from plextuner.logging import get_logger
from plextuner.metrics import (
    HANDOVERS,
    STREAM_FAILOVERS,
    UPSTREAM_ERRORS,
    UPSTREAM_JOINS,
    UPSTREAM_VIEWERS,
    UPSTREAMS_ACTIVE,
)
from plextuner.redact import host_of
from plextuner.stream.budget import BudgetRegistry, Lease
from plextuner.stream.fanout import SharedUpstream, UpstreamState
from plextuner.stream.sources import SourceHealth
from plextuner.stream.ts import TS_PACKET, keepalive
from plextuner.stream.upstream import FfmpegUpstream, Upstream, open_upstream
from plextuner.stream.viewer import SlowPolicy, Viewer
from plextuner.supervise import record_crash

log = get_logger(__name__)
KEEPALIVE_EVERY = 1.0
RECONNECT_BACKOFF = 0.5  # doubles per failed reconnect of one upstream
ACCOUNT_RETRY_STEP = 0.5  # a source refused for the account's limit is asked again so often,
ACCOUNT_RETRY_FOR = 4.0  # this long at most (the provider still counting a closed stream)
RECENT_FAILOVERS = 20
Opened = tuple[Upstream, Lease, Source]  # an upstream, its connection, the source it reads


class UpstreamHub:
    """Every shared upstream, by channel key; owns their tasks (cancelled in `aclose`)."""

    def __init__(
        self,
        cfg: StreamConfig,
        budgets: BudgetRegistry,
        health: SourceHealth,
        ffmpeg: str,
        session: Callable[[], aiohttp.ClientSession],
    ) -> None:
        self.cfg = cfg
        self.budgets = budgets
        self.health = health
        self.ffmpeg = ffmpeg
        self._session = session
        self.upstreams: dict[str, SharedUpstream] = {}
        self._ids = itertools.count(1)
        self._viewer_ids = itertools.count(1)
        # The last failovers, for the console's live view (no URL: the host only).
        self.recent_failovers: deque[dict[str, object]] = deque(maxlen=RECENT_FAILOVERS)
        self._tasks: set[asyncio.Task[None]] = set()
        budgets.reclaim = self.reclaim_idle

    # --- viewers -------------------------------------------------------------------------------
    async def join(
        self, entry: LineupEntry, bucket: str, client: str
    ) -> tuple[SharedUpstream, Viewer]:
        """A viewer of `entry`'s channel, on the open upstream or a new one (first bytes in)."""
        up = self.upstreams.get(entry.channel.key)
        joined = up is not None and up.open
        if up is None or not up.open:
            up = self._start(entry, bucket)
        policy = SlowPolicy(self.cfg.slow_viewer)
        viewer = Viewer(next(self._viewer_ids), client, self.cfg.viewer_buffer_bytes, policy)
        streaming = up.ready.is_set() and up.error is None
        self._attach(up, viewer)
        if streaming:
            # Joining a running stream: start at a clean point, then every new chunk follows
            # (both happen before the next fan-out, so nothing is lost or doubled). A viewer that
            # attaches before the first bytes gets the source from its very start instead.
            viewer.start(up.ring.start_point())
        try:
            await self._first_bytes(up)
        except BaseException:
            self.leave(up, viewer)
            raise
        if joined:
            UPSTREAM_JOINS.labels(bucket=bucket).inc()
        return up, viewer

    def _attach(self, up: SharedUpstream, viewer: Viewer) -> None:
        if up.linger_handle is not None:
            up.linger_handle.cancel()
            up.linger_handle = None
        if up.state is UpstreamState.LINGERING:
            up.state = UpstreamState.STREAMING
        up.viewers[viewer.id] = viewer
        if up.provider:
            UPSTREAM_VIEWERS.labels(provider=up.provider).inc()

    async def _first_bytes(self, up: SharedUpstream) -> None:
        await up.ready.wait()
        if up.error is not None:
            raise up.error

    def leave(self, up: SharedUpstream, viewer: Viewer) -> None:
        if up.viewers.pop(viewer.id, None) is not None and up.provider:
            UPSTREAM_VIEWERS.labels(provider=up.provider).dec()
        viewer.close("left")
        if up.viewers or not up.open:
            return
        budget_wanted = up.provider and self.budgets.get(up.provider).viewers_waiting
        if budget_wanted or self.cfg.linger <= 0 or up.state is UpstreamState.OPENING:
            self._close(up, "handover" if budget_wanted else "last viewer left")
            if budget_wanted:
                HANDOVERS.labels(provider=up.provider).inc()
            return
        up.state = UpstreamState.LINGERING
        loop = asyncio.get_running_loop()
        up.linger_handle = loop.call_later(self.cfg.linger, self._linger_over, up)

    def _linger_over(self, up: SharedUpstream) -> None:
        up.linger_handle = None
        if not up.viewers and up.open:
            self._close(up, "linger over")

    def reclaim_idle(self, provider: str) -> bool:
        """A tune found `provider`'s budget full: close one upstream nobody watches (lingering),
        so its connection is free at once. True when one was closed."""
        for up in self.upstreams.values():
            if up.provider == provider and not up.viewers and up.open:
                HANDOVERS.labels(provider=provider).inc()
                self._close(up, "handover")
                return True
        return False

    def _close(self, up: SharedUpstream, reason: str) -> None:
        if up.task is not None and not up.task.done():
            up.task.cancel(reason)
        self._forget(up)

    def _forget(self, up: SharedUpstream) -> None:
        """Closed: the next viewer of the channel opens a new upstream."""
        up.state = UpstreamState.CLOSED
        if self.upstreams.get(up.key) is up:
            del self.upstreams[up.key]

    # --- the upstream's task -------------------------------------------------------------------
    def _start(self, entry: LineupEntry, bucket: str) -> SharedUpstream:
        up = SharedUpstream(next(self._ids), entry.channel.key, entry, bucket, self.cfg)
        self.upstreams[up.key] = up
        up.task = asyncio.get_running_loop().create_task(self._run(up), name=f"upstream-{up.id}")
        self._tasks.add(up.task)
        up.task.add_done_callback(self._tasks.discard)
        return up

    async def _run(self, up: SharedUpstream) -> None:
        try:
            reason, source = await self._first_source(up)
            await self._failovers(up, reason, source)
        except StreamError as err:
            up.error = err
        except asyncio.CancelledError:
            if up.error is None:
                up.error = TuneFailedError("upstream closed")
            raise
        except Exception as err:  # noqa: BLE001 - supervision boundary: a bug ends viewers, not us
            record_crash("upstream", err)
            up.error = TuneFailedError("internal error")
        finally:
            up.ready.set()
            self._forget(up)
            for viewer in list(up.viewers.values()):
                viewer.close("upstream ended")
            await up.release()

    async def _first_source(self, up: SharedUpstream) -> tuple[str, Source]:
        """Stream the first source that delivers bytes, until it ends; TuneFailedError when none
        delivers within `first_byte_timeout` (all sources together)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.first_byte_timeout
        attempts = 0
        while True:
            opened = await self._open(up, deadline)
            if opened is None:
                raise TuneFailedError("no source could be opened")
            upstream, lease, source = opened
            attempts += 1
            reason = await self._stream(up, upstream, lease, source, deadline)
            if up.ready.is_set():
                return reason, source
            if loop.time() >= deadline or attempts >= len(up.entry.channel.sources):
                raise TuneFailedError(f"no source delivered any data ({reason})")

    async def _failovers(self, up: SharedUpstream, reason: str, source: Source) -> None:
        """Reconnect (same or next source) once for all viewers, while anyone watches."""
        left = self.cfg.max_failovers
        while up.viewers and up.open:
            if left <= 0:
                log.info("upstream_failovers_exhausted", channel=up.entry.number)
                return
            left -= 1
            up.failovers += 1
            STREAM_FAILOVERS.labels(bucket=up.bucket).inc()
            self.recent_failovers.append(
                {"at": time.time(), "channel": up.entry.number, "name": up.entry.channel.name,
                 "reason": reason, "host": host_of(source.url), "viewers": len(up.viewers)}
            )  # fmt: skip
            log.info(
                "stream_failover",
                channel=up.entry.number,
                viewers=len(up.viewers),
                reason=reason,
                host=host_of(source.url),
            )
            up.state = UpstreamState.RECONNECTING
            opened = await self._open(up, float("inf"))
            if opened is None:  # every source refused: wait (viewers get keep-alive), retry
                await self._keepalive_for(up, RECONNECT_BACKOFF * 2 ** (up.failovers - 1))
                reason = "reconnect_failed"
                continue
            upstream, lease, source = opened
            reason = await self._stream(up, upstream, lease, source, float("inf"))

    async def _open(self, up: SharedUpstream, deadline: float) -> Opened | None:
        """The first source that opens; keep-alive to viewers meanwhile when reconnecting.
        Before the first byte, everything is bounded by the first-byte `deadline`."""
        if up.ready.is_set():  # a reconnect: viewers are fed meanwhile
            async with self._keeping_alive(up):
                return await self._open_any(up)
        try:
            async with asyncio.timeout_at(deadline):
                return await self._open_any(up)
        except TimeoutError:
            raise TuneFailedError(
                f"no source delivered within {self.cfg.first_byte_timeout:g} s"
            ) from None

    async def _keepalive_for(self, up: SharedUpstream, seconds: float) -> None:
        async with self._keeping_alive(up):
            await asyncio.sleep(seconds)

    @contextlib.asynccontextmanager
    async def _keeping_alive(self, up: SharedUpstream) -> AsyncIterator[None]:
        """Valid TS keep-alive to every viewer while the body runs (a reconnect)."""
        ticker = asyncio.get_running_loop().create_task(self._keepalive(up))
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _keepalive(self, up: SharedUpstream) -> None:
        while True:
            filler = keepalive(up.ring.headers)
            for viewer in list(up.viewers.values()):
                viewer.keepalive(filler)
            await asyncio.sleep(KEEPALIVE_EVERY)

    async def _open_any(self, up: SharedUpstream) -> Opened | None:
        sources = self.health.order(up.entry.channel.sources, self.budgets)
        exhausted: ConnectionsExhaustedError | None = None
        last: UpstreamError | None = None
        for retry in itertools.count():
            refused: list[tuple[int, Source]] = []
            for index, source in sources:
                outcome = await self._try_open(up, index, source)
                if isinstance(outcome, ConnectionsExhaustedError):
                    exhausted = outcome
                elif isinstance(outcome, UpstreamError):
                    last = outcome
                    if outcome.kind is FailureKind.LIMIT:
                        refused.append((index, source))
                else:
                    return outcome
            if not refused or retry * ACCOUNT_RETRY_STEP >= ACCOUNT_RETRY_FOR:
                break
            # Some sources failed only as the provider still counts a closed stream: ask again.
            await asyncio.sleep(ACCOUNT_RETRY_STEP)
            sources = refused
        if last is None and exhausted is not None:
            raise exhausted
        if not up.ready.is_set():
            raise TuneFailedError(str(last) if last else "no source could be opened")
        return None

    async def _try_open(
        self, up: SharedUpstream, index: int, source: Source
    ) -> Opened | UpstreamError | ConnectionsExhaustedError:
        """One source opened with a connection of its provider, or why not."""
        try:
            lease, account = await self.budgets.lease_any(source.provider)
        except ConnectionsExhaustedError as err:
            return err
        url = account.stream_url(source.url, self.budgets.accounts_of(source.provider)[0])
        try:
            upstream = await open_upstream(
                self._session(),
                self.ffmpeg,
                source.at(url),
                self.cfg.connect_timeout,
            )
        except UpstreamError as err:
            lease.refused = err.kind is FailureKind.LIMIT
            lease.release()
            if lease.refused:  # the account is full at the provider, not in our count
                self.budgets.get(account.key).viewer_refused()
            self.health.failed(source.url)
            UPSTREAM_ERRORS.labels(kind=err.label).inc()
            log.info("upstream_failed", host=host_of(source.url), kind=err.label)
            return err
        except BaseException:
            lease.release()
            raise
        lease.hls = isinstance(upstream, FfmpegUpstream)  # an HLS session (budget.py)
        up.source_index = index
        self._set_provider(up, account.key)
        self.health.succeeded(source.url)
        return upstream, lease, source

    def _set_provider(self, up: SharedUpstream, provider: str) -> None:
        if up.provider == provider:
            return
        if up.provider:
            UPSTREAM_VIEWERS.labels(provider=up.provider).dec(len(up.viewers))
        up.provider = provider
        UPSTREAM_VIEWERS.labels(provider=provider).inc(len(up.viewers))

    async def _stream(
        self, up: SharedUpstream, upstream: Upstream, lease: Lease, source: Source, deadline: float
    ) -> str:
        """Pump one source into the ring and the viewers until it ends; returns why."""
        UPSTREAMS_ACTIVE.labels(provider=source.provider).inc()
        carry = b""
        up.ring.clear()  # a new source: new PIDs and timeline
        loop = asyncio.get_running_loop()
        try:
            chunks = upstream.chunks()
            while True:
                limit = loop.time() + self.cfg.stall_timeout
                if not up.ready.is_set():
                    limit = min(limit, deadline)
                async with asyncio.timeout_at(limit):
                    chunk = await anext(chunks, None)
                if chunk is None:
                    reason = FailureKind.EOF.value
                    break
                data = carry + chunk
                cut = len(data) - len(data) % TS_PACKET
                carry = data[cut:]
                if cut:
                    up.fan_out(data[:cut])
                    if not up.ready.is_set():
                        up.state = UpstreamState.STREAMING
                        up.ready.set()
                    elif up.state is UpstreamState.RECONNECTING:
                        up.state = UpstreamState.STREAMING
        except UpstreamError as err:
            reason = err.label
        except TimeoutError:
            reason = FailureKind.STALL.value
        except aiohttp.ClientError:
            reason = FailureKind.READ_ERROR.value
        finally:
            UPSTREAMS_ACTIVE.labels(provider=source.provider).dec()
            await upstream.aclose()
            lease.release()
        self.health.failed(source.url)
        UPSTREAM_ERRORS.labels(kind=reason).inc()
        return reason

    async def aclose(self) -> None:
        for up in list(self.upstreams.values()):
            self._close(up, "shutdown")
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
