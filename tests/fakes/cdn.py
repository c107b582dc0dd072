"""A hostile fake CDN: hosts with concurrency and rate limits that ban bursts by closing their
listening socket (a real ECONNREFUSED), plus dead channels of each kind, hangs and slow starts."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web

from plextuner.demo.clips import minimal_ts

DEAD_KINDS = ("404", "410", "html", "garbage", "audio_only")
# Dead the way some servers are: a 200 then nothing, or a 200 with no body, on every request.
SILENT_KINDS = ("stall", "close")


def audio_only_ts() -> bytes:
    """A valid TS whose only stream is AAC audio: no video, so a dead channel for Plex."""
    return minimal_ts(500, stream_type=0x0F)


HEALTHY = minimal_ts(600)
AUDIO = audio_only_ts()


@dataclass
class HostRules:
    max_concurrency: int = 2
    max_rate: float = 4.0  # requests per second over a 1 s window
    ban_seconds: float = 2.0
    service_time: float = 0.05


@dataclass
class HostStats:
    requests: int = 0
    bans: int = 0
    peak: int = 0
    served: dict[str, int] = field(default_factory=dict)


class CdnHost:
    def __init__(self, rules: HostRules) -> None:
        self.rules = rules
        self.stats = HostStats()
        self.channels: dict[str, str] = {}  # name -> "ok" | dead kind | "hang" | "slow"
        self.dark = False  # refuses everything: the host went away
        self.port = 0
        self._active = 0
        self._times: deque[float] = deque()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._banned_until = 0.0
        self._ban_task: asyncio.Task[None] | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/live/{name}.ts"

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_get("/live/{name}.ts", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        await self._listen(port)

    async def _listen(self, port: int) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", port, reuse_address=True)
        await self._site.start()
        assert self._site._server is not None
        self.port = self._site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def _ban(self) -> None:
        """Close the listening socket for a while: new connections are refused by the kernel."""
        self.stats.bans += 1
        if self._site is not None:
            await self._site.stop()
        await asyncio.sleep(self.rules.ban_seconds)
        if not self.dark:
            await self._listen(self.port)

    async def go_dark(self) -> None:
        self.dark = True
        if self._site is not None:
            await self._site.stop()

    async def stop(self) -> None:
        if self._ban_task is not None:
            self._ban_task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.stats.requests += 1
        self._times.append(now)
        while self._times and self._times[0] < now - 1.0:
            self._times.popleft()
        over = self._active >= self.rules.max_concurrency or len(self._times) > self.rules.max_rate
        if over:
            if self._ban_task is None or self._ban_task.done():
                self._ban_task = asyncio.create_task(self._ban())
            return web.Response(status=503, text="slow down")
        name = request.match_info["name"]
        kind = self.channels.get(name, "404")
        self._active += 1
        self.stats.peak = max(self.stats.peak, self._active)
        try:
            await asyncio.sleep(self.rules.service_time)
            self.stats.served[kind] = self.stats.served.get(kind, 0) + 1
            return await self._answer(kind, request)
        finally:
            self._active -= 1

    async def _answer(self, kind: str, request: web.Request) -> web.StreamResponse:
        if kind in ("404", "410"):
            return web.Response(status=int(kind))
        if kind == "html":
            return web.Response(
                text="<html><body>Channel offline</body></html>", content_type="text/html"
            )
        if kind == "garbage":
            return web.Response(body=bytes(range(256)) * 300, content_type="video/mp2t")
        if kind == "hang":
            await asyncio.sleep(3600)
        if kind in SILENT_KINDS:
            resp = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
            await resp.prepare(request)
            if kind == "stall":
                await asyncio.sleep(3600)
            return resp
        if kind == "slow":
            await asyncio.sleep(1.0)
        body = AUDIO if kind == "audio_only" else HEALTHY
        return web.Response(body=body, content_type="video/mp2t")


__all__ = ["DEAD_KINDS", "SILENT_KINDS", "CdnHost", "HostRules"]
