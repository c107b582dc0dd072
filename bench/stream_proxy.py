"""The stream engine: time to first byte vs direct, CPU for 100 paced streams, raw throughput.

Targets: TTFB overhead p95 <= 50 ms; 100 concurrent 3 Mbit/s streams <= 50% of one core for the
daemon; unpaced throughput through the daemon vs direct reported as a ratio.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from bench._net import cpu_seconds, free_port, free_ports, wait_ready

RATE = 3_000_000 // 8  # 3 Mbit/s in bytes
PACKETS = bytes([0x47, 0x1F, 0xFF, 0x10]) + b"\xff" * 184
CHUNK = PACKETS * 64
STREAMS, WINDOW = 100, 10.0


async def paced(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    start, sent = loop.time(), 0
    try:
        while True:
            await resp.write(CHUNK)
            sent += len(CHUNK)
            ahead = sent / RATE - (loop.time() - start)
            if ahead > 0:
                await asyncio.sleep(ahead)
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        return resp  # the reader went away: that is how every stream here ends


async def unpaced(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
    await resp.prepare(request)
    big = CHUNK * 16
    for _ in range(int(request.query.get("chunks", "200"))):
        await resp.write(big)
    return resp


async def ttfb(session: aiohttp.ClientSession, url: str) -> float:
    start = time.perf_counter()
    async with session.get(url) as resp:
        await resp.content.readany()
    return time.perf_counter() - start


async def drain(session: aiohttp.ClientSession, url: str, seconds: float) -> int:
    got = 0
    async with session.get(url) as resp:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            got += len(await resp.content.readany())
    return got


async def throughput(session: aiohttp.ClientSession, url: str) -> float:
    start, got = time.perf_counter(), 0
    async with session.get(url) as resp:
        async for chunk in resp.content.iter_any():
            got += len(chunk)
    return got / (time.perf_counter() - start)


async def run(tmp: Path) -> None:
    source = web.AppRunner(web.Application(), access_log=None)
    source.app.router.add_get("/paced/{n}.ts", paced)
    source.app.router.add_get("/fast.ts", unpaced)
    await source.setup()
    src_port = free_port()
    await web.TCPSite(source, "127.0.0.1", src_port).start()
    src = f"http://127.0.0.1:{src_port}"
    lines = ["#EXTM3U"]
    for i in range(STREAMS):
        lines += [
            f'#EXTINF:-1 tvg-id="c{i}" group-title="{"A" if i < 50 else "B"}",C{i}',
            f"{src}/paced/{i}.ts",
        ]
    lines += ['#EXTINF:-1 tvg-id="fast" group-title="B",Fast', f"{src}/fast.ts?chunks=400"]
    (tmp / "l.m3u").write_text("\n".join(lines) + "\n")
    port = free_ports(2)  # the two devices
    (tmp / "c.yaml").write_text(
        f"host: 127.0.0.1\nport: {port}\ndiscovery_port: 0\ndata_dir: {tmp / 'data'}\n"
        "log_level: warning\npostvalidate: {enabled: false}\n"
        f"providers: [{{name: p, m3u_url: '{tmp / 'l.m3u'}', max_connections: 500}}]\n"
        "buckets: [{name: a, match: {group: A}, tuners: 64},"
        " {name: b, match: {group: B}, tuners: 64}]\n"
    )
    daemon = subprocess.Popen(
        [sys.executable, "-m", "plextuner", "serve", "--config", str(tmp / "c.yaml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
            await wait_ready(session, port)
            await asyncio.sleep(1.0)  # the second device port opens after the first publish
            direct = [await ttfb(session, f"{src}/paced/0.ts") for _ in range(30)]
            via = f"http://127.0.0.1:{port}/auto/v1000"
            proxied = [await ttfb(session, via) for _ in range(30)]
            p95 = lambda xs: statistics.quantiles(xs, n=20)[18] * 1000  # noqa: E731
            overhead = p95(proxied) - p95(direct)
            verdict = "PASS" if overhead <= 50 else "MISS"
            print(
                f"TTFB p95: direct {p95(direct):.1f} ms, through daemon {p95(proxied):.1f} ms, "
                f"overhead {overhead:.1f} ms (target <= 50): {verdict}"
            )
            urls = [f"http://127.0.0.1:{port}/auto/v{1000 + i}" for i in range(50)]
            urls += [f"http://127.0.0.1:{port + 1}/auto/v{2000 + i}" for i in range(STREAMS - 50)]
            cpu0, t0 = cpu_seconds(daemon.pid), time.monotonic()
            got = await asyncio.gather(*(drain(session, u, WINDOW) for u in urls))
            cpu = (cpu_seconds(daemon.pid) - cpu0) / (time.monotonic() - t0)
            mbit = sum(got) * 8 / WINDOW / 1e6
            print(
                f"{STREAMS} paced streams: {mbit:.0f} Mbit/s delivered, daemon CPU "
                f"{cpu * 100:.0f}% of one core (target <= 50%): "
                f"{'PASS' if cpu <= 0.5 else 'MISS'}"
            )
            fast_direct = await throughput(session, f"{src}/fast.ts?chunks=400")
            fast_proxy = await throughput(session, f"http://127.0.0.1:{port + 1}/auto/v2050")
            print(
                f"unpaced: direct {fast_direct / 1e6:.0f} MB/s, through daemon "
                f"{fast_proxy / 1e6:.0f} MB/s, ratio {fast_proxy / fast_direct:.2f}"
            )
    finally:
        daemon.terminate()
        daemon.wait(10)
        await source.cleanup()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
