"""Post-validation on a 2-connection account whose provider keeps counting an HLS session for a
while after its last request (and refuses a third connection with "max connections reached").

One probe slot, one kept for viewers: ours (default pacing, the linger unset, so learned from
the provider's refusals) against an oracle prober with the same slot that knows the provider's
rules (how long each kind of stream lingers). It decides channels as ours must: the same engine,
the short first-byte timeout first, the long one on a retry at the end.

Reports wall time vs the oracle (target <= 1.2x, issue 16), healthy channels dropped (0), dead
found (>= 97%), the provider's refusals, and how long the account had no slot left for a viewer
(its count, lingering sessions included, at the limit).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.cdn import HEALTHY

from plextuner.buckets.models import LineupEntry
from plextuner.config import PostvalidateConfig
from plextuner.ingest.models import Channel, Source, stream_kind
from plextuner.stream.budget import BudgetRegistry
from plextuner.validate.pool import Job, JobKey, ProbePool
from plextuner.validate.probe import NativeEngine
from plextuner.validate.result import Verdict

LIMIT = 2
HLS_LINGER = 4.0  # seconds the provider counts an HLS session after its last request
TS_LINGER = 0.0
# Short timeouts for both sides, so the run stays a bench (the ratio is what counts).
CFG = PostvalidateConfig(engine="native", first_timeout=2.0, timeout=5.0)
# 100 channels: ok TS, ok HLS, and dead ones of every kind a provider has.
KINDS = (
    ["ok"] * 80 + ["hls"] * 6 + ["404"] * 4 + ["html"] * 3 + ["stall"] * 2 + ["close"] * 2
    + ["hang"] + ["hls_empty"] * 2
)  # fmt: skip
# Dead: the same definite answer every time, or none at all ("hang": accepted, never answered)
# while the provider streamed other channels between the attempts.
DEAD = {"404", "html", "stall", "close", "hls_empty", "hang"}


@dataclass
class Provider:
    """Counts sessions per account: a TS stream while open (+ TS_LINGER), an HLS session from
    its playlist until HLS_LINGER after its last request; a new one past LIMIT is refused."""

    channels: dict[str, str]
    port: int = 0
    refusals: int = 0
    full_seconds: float = 0.0  # time with no slot left for a viewer
    _open: dict[str, int] = field(default_factory=dict)
    _until: dict[str, float] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _sampler: asyncio.Task[None] | None = None

    def count(self, now: float) -> int:
        live = {k for k, n in self._open.items() if n > 0}
        live |= {k for k, t in self._until.items() if t > now}
        return len(live)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/live/{name}.ts", self._ts)
        app.router.add_get("/hls/{name}/index.m3u8", self._playlist)
        app.router.add_get("/hls/{name}/seg.ts", self._segment)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._sampler = asyncio.create_task(self._sample())

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.02)
            if self.count(loop.time()) >= LIMIT:
                self.full_seconds += 0.02

    def url(self, name: str) -> str:
        if self.channels[name].startswith("hls"):
            return f"http://127.0.0.1:{self.port}/hls/{name}/index.m3u8"
        return f"http://127.0.0.1:{self.port}/live/{name}.ts"

    def _admit(self, key: str) -> bool:
        now = asyncio.get_running_loop().time()
        known = self._open.get(key, 0) > 0 or self._until.get(key, 0.0) > now
        if not known and self.count(now) >= LIMIT:
            self.refusals += 1
            return False
        self._open[key] = self._open.get(key, 0) + 1
        return True

    def _done(self, key: str, linger: float) -> None:
        self._open[key] -= 1
        now = asyncio.get_running_loop().time()
        self._until[key] = max(self._until.get(key, 0.0), now + linger)

    async def _session(
        self,
        request: web.Request,
        linger: float,
        answer: Callable[[str], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """One request of a session the account counts (refused past LIMIT)."""
        name = request.match_info["name"]
        if not self._admit(name):
            return web.Response(status=403, text="max connections reached")
        try:
            await asyncio.sleep(0.03)
            return await answer(self.channels[name])
        finally:
            self._done(name, linger)

    async def _ts(self, request: web.Request) -> web.StreamResponse:
        return await self._session(request, TS_LINGER, lambda kind: self._answer(kind, request))

    async def _answer(self, kind: str, request: web.Request) -> web.StreamResponse:
        if kind == "404":
            return web.Response(status=404)
        if kind == "html":
            return web.Response(text="<html>offline</html>", content_type="text/html")
        if kind == "hang":
            await asyncio.sleep(3600)
        if kind in ("stall", "close"):
            resp = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
            await resp.prepare(request)
            if kind == "stall":
                await asyncio.sleep(3600)
            return resp
        return web.Response(body=HEALTHY, content_type="video/mp2t")

    async def _playlist(self, request: web.Request) -> web.StreamResponse:
        async def answer(kind: str) -> web.StreamResponse:
            body = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:1\n"
            if kind == "hls":
                body += "#EXTINF:6.0,\nseg.ts\n"
            return web.Response(text=body, content_type="application/vnd.apple.mpegurl")

        return await self._session(request, HLS_LINGER, answer)

    async def _segment(self, request: web.Request) -> web.StreamResponse:
        async def answer(_kind: str) -> web.StreamResponse:
            return web.Response(body=HEALTHY, content_type="video/mp2t")

        return await self._session(request, HLS_LINGER, answer)


async def build() -> tuple[Provider, list[Job]]:
    provider = Provider({f"c{n}": kind for n, kind in enumerate(KINDS)})
    await provider.start()
    counter = itertools.count()
    jobs = []
    for name in provider.channels:  # dead and HLS channels spread through the list
        n = next(counter)
        source = Source("p", provider.url(name), kind=stream_kind(provider.url(name)))
        channel = Channel(key=name, name=name, tvg_id="", group="", provider="p", sources=[source])
        jobs.append(Job(JobKey("b", str(n)), "b", LineupEntry(str(n), channel)))
    order = sorted(range(len(jobs)), key=lambda i: (i * 37) % len(jobs))
    return provider, [jobs[i] for i in order]


async def ours() -> tuple[float, dict[JobKey, Verdict], Provider]:
    provider, jobs = await build()
    budgets = BudgetRegistry(LIMIT)
    budgets.set_limit("p", LIMIT)
    start = time.monotonic()
    async with httpx.AsyncClient(timeout=CFG.timeout) as client:
        pool = ProbePool(CFG, NativeEngine(client), budgets=budgets)
        results = await pool.run(jobs)
    wall = time.monotonic() - start
    await provider.stop()
    return wall, {k: r.verdict for k, r in results.items()}, provider


async def oracle() -> tuple[float, dict[JobKey, Verdict], Provider]:
    """One slot; after each probe it waits exactly as long as the provider keeps counting it."""
    provider, jobs = await build()
    start = time.monotonic()
    verdicts: dict[JobKey, Verdict] = {}
    retries: list[Job] = []
    async with httpx.AsyncClient(timeout=CFG.timeout) as client:
        engine = NativeEngine(client)
        for attempt, batch in ((0, jobs), (1, retries)):
            for job in batch:
                timeout = CFG.first_timeout if attempt == 0 else CFG.timeout
                result = await engine.probe(job.source, timeout)
                hls = provider.channels[job.entry.channel.key].startswith("hls")
                await asyncio.sleep((HLS_LINGER if hls else TS_LINGER) + 0.05)
                if result.verdict is Verdict.TRANSIENT and attempt == 0:
                    retries.append(job)
                    continue
                # Dead: a dead answer, the same definite failure twice, or silence twice (it
                # knows the provider serves the rest); anything else (a timeout twice, say)
                # stays unverified, as the issue asks of every prober.
                dead = result.verdict is Verdict.DEAD or result.definite or result.silent
                verdicts[job.key] = Verdict.DEAD if dead else result.verdict
    wall = time.monotonic() - start
    await provider.stop()
    return wall, verdicts, provider


def report(
    name: str, wall: float, verdicts: dict[JobKey, Verdict], p: Provider, base: float
) -> None:
    kinds = {str(n): kind for n, kind in enumerate(KINDS)}
    dropped = sum(
        1 for k, v in verdicts.items() if kinds[k.number] not in DEAD and v is Verdict.DEAD
    )
    dead = sum(1 for k in kinds.values() if k in DEAD)
    found = sum(1 for k, v in verdicts.items() if kinds[k.number] in DEAD and v is Verdict.DEAD)
    print(
        f"{name:<6} wall {wall:6.1f} s  vs oracle {wall / base:4.2f}x  healthy dropped "
        f"{dropped}  dead found {found}/{dead} ({100 * found / dead:.0f}%)  refusals "
        f"{p.refusals}  no slot for a viewer {p.full_seconds:.1f} s"
    )


def main() -> int:
    print(
        f"{len(KINDS)} channels on a {LIMIT}-connection account (one probe slot); HLS sessions "
        f"linger {HLS_LINGER:.0f} s, TS {TS_LINGER:.0f} s; timeouts {CFG.first_timeout:.0f}/"
        f"{CFG.timeout:.0f} s"
    )
    runs = {"oracle": asyncio.run(oracle()), "ours": asyncio.run(ours())}
    base = runs["oracle"][0]
    for name, (wall, verdicts, provider) in runs.items():
        report(name, wall, verdicts, provider, base)
    print("target: ours <= 1.2x the oracle, 0 healthy dropped, >= 97% of dead found")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
