"""Shared upstreams: what the provider sees, what each viewer costs, joiners, a slow viewer.

- 50 viewers over 5 channels: the provider's peak open connections (target: 5), daemon CPU and
  RSS per viewer, against a direct reader of the same bytes (one aiohttp reader per stream).
- A joiner's time to first byte on a warm upstream (target p95 <= 100 ms) versus the first
  viewer's (which opens the upstream).
- One viewer reading at 5% of the stream rate: the other viewers' throughput against a solo
  viewer's (target >= 95%).
All ratios come from the same run.
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

from bench._net import cpu_seconds, free_port, rss_bytes, wait_ready

RATE = 4_000_000 // 8  # 4 Mbit/s per channel
PACKET = bytes([0x47, 0x1F, 0xFF, 0x10]) + b"\xff" * 184
CHUNK = PACKET * 64
CHANNELS, VIEWERS, WINDOW, LINGER = 5, 50, 8.0, 2.0
OPEN = {"now": 0, "peak": 0}


async def paced(request: web.Request) -> web.StreamResponse:
    OPEN["now"] += 1
    OPEN["peak"] = max(OPEN["peak"], OPEN["now"])
    try:
        resp = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        start, sent = loop.time(), 0
        while True:
            await resp.write(CHUNK)
            sent += len(CHUNK)
            ahead = sent / RATE - (loop.time() - start)
            if ahead > 0:
                await asyncio.sleep(ahead)
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        return web.Response()
    finally:
        OPEN["now"] -= 1


def proc_stat(pid: int) -> tuple[float, int]:
    """(cpu seconds, rss bytes)."""
    return cpu_seconds(pid), rss_bytes(pid)


async def read_for(
    session: aiohttp.ClientSession, url: str, seconds: float, rate: float = 0
) -> int:
    """Bytes read in `seconds`; `rate` > 0 reads at most that many bytes per second."""
    got = 0
    async with session.get(url) as resp:
        end = time.monotonic() + seconds
        start = time.monotonic()
        while time.monotonic() < end:
            got += len(await resp.content.readany())
            if rate:
                ahead = got / rate - (time.monotonic() - start)
                if ahead > 0:
                    await asyncio.sleep(ahead)
    return got


async def first_byte(session: aiohttp.ClientSession, url: str) -> float:
    start = time.perf_counter()
    async with session.get(url) as resp:
        await resp.content.readany()
        return time.perf_counter() - start


async def start_daemon(tmp: Path, src: str) -> tuple[subprocess.Popen[bytes], int]:
    lines = ["#EXTM3U"]
    for i in range(CHANNELS):
        lines += [f'#EXTINF:-1 tvg-id="c{i}" group-title="A",C{i}', f"{src}/live/{i}.ts"]
    (tmp / "l.m3u").write_text("\n".join(lines) + "\n")
    port = free_port()
    (tmp / "c.yaml").write_text(
        f"host: 127.0.0.1\nport: {port}\ndiscovery_port: 0\ndata_dir: {tmp / 'data'}\n"
        "log_level: warning\npostvalidate: {enabled: false}\n"
        f"providers: [{{name: p, m3u_url: '{tmp / 'l.m3u'}', max_connections: {CHANNELS}}}]\n"
        "buckets: [{name: a, match: {group: A}, tuners: 64}]\n"
        f"stream: {{linger: {LINGER}}}\n"
    )
    daemon = subprocess.Popen(
        [sys.executable, "-m", "plextuner", "serve", "--config", str(tmp / "c.yaml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    async with aiohttp.ClientSession() as session:
        await wait_ready(session, port)
    return daemon, port


async def fan_out(session: aiohttp.ClientSession, daemon: int, src: str, urls: list[str]) -> None:
    """50 viewers over 5 channels against 50 direct readers of the same bytes."""
    here0 = time.process_time()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as own:
        direct = await asyncio.gather(
            *(read_for(own, f"{src}/live/{i % CHANNELS}.ts", WINDOW) for i in range(VIEWERS))
        )
    direct_cpu = (time.process_time() - here0) / WINDOW
    while OPEN["now"]:  # noqa: ASYNC110 - the direct readers' connections close first
        await asyncio.sleep(0.05)
    OPEN["peak"] = 0
    cpu0, rss0 = proc_stat(daemon)
    t0 = time.monotonic()
    sampled: list[int] = []

    async def sample_rss() -> None:
        while time.monotonic() - t0 < WINDOW:
            sampled.append(proc_stat(daemon)[1])
            await asyncio.sleep(0.5)

    readers = [read_for(session, urls[i % CHANNELS], WINDOW) for i in range(VIEWERS)]
    got, _ = await asyncio.gather(asyncio.gather(*readers), sample_rss())
    cpu = (proc_stat(daemon)[0] - cpu0) / (time.monotonic() - t0)
    rss = max(sampled) - rss0
    verdict = "PASS" if OPEN["peak"] <= CHANNELS else "MISS"
    print(
        f"{VIEWERS} viewers on {CHANNELS} channels: provider peak connections {OPEN['peak']} "
        f"(target {CHANNELS}): {verdict}"
    )
    print(
        f"  delivered {sum(got) * 8 / WINDOW / 1e6:.0f} Mbit/s "
        f"(direct readers {sum(direct) * 8 / WINDOW / 1e6:.0f}); "
        f"daemon CPU {cpu * 100 / VIEWERS:.2f}% of a core per viewer, "
        f"direct reader {direct_cpu * 100 / VIEWERS:.2f}% per stream "
        f"(ratio {cpu / max(direct_cpu, 1e-9):.2f}); RSS {rss / VIEWERS / 1024:.0f} KiB per viewer"
    )


async def joiners(session: aiohttp.ClientSession, urls: list[str]) -> None:
    """A joiner's first byte on a warm upstream versus the first viewer's (cold channel)."""
    firsts, joins = [], []
    for url in urls:
        await asyncio.sleep(LINGER + 0.5)  # past the linger: this channel starts cold
        start = time.perf_counter()
        async with session.get(url) as holder:
            await holder.content.readany()
            firsts.append(time.perf_counter() - start)
            joins += [await first_byte(session, url) for _ in range(20)]
    p95 = statistics.quantiles(joins, n=20)[18] * 1000
    print(
        f"joiner TTFB p95 {p95:.1f} ms (target <= 100): {'PASS' if p95 <= 100 else 'MISS'}; "
        f"first viewer median {statistics.median(firsts) * 1000:.1f} ms"
    )


async def slow_viewer(session: aiohttp.ClientSession, url: str) -> None:
    """One viewer at 5% of the stream rate must not slow the others."""
    solo = await read_for(session, url, WINDOW / 2)
    slow = read_for(session, url, WINDOW / 2, rate=RATE * 0.05)
    others = [read_for(session, url, WINDOW / 2) for _ in range(3)]
    _, *fast = await asyncio.gather(slow, *others)
    share = min(fast) / solo
    print(
        f"with a 5%-rate viewer on the channel: others at {share * 100:.0f}% of a solo viewer "
        f"(target >= 95%): {'PASS' if share >= 0.95 else 'MISS'}"
    )


async def run(tmp: Path) -> None:
    source = web.AppRunner(web.Application(), access_log=None)
    source.app.router.add_get("/live/{n}.ts", paced)
    await source.setup()
    src_port = free_port()
    await web.TCPSite(source, "127.0.0.1", src_port).start()
    src = f"http://127.0.0.1:{src_port}"
    daemon, port = await start_daemon(tmp, src)
    urls = [f"http://127.0.0.1:{port}/auto/v{1000 + i}" for i in range(CHANNELS)]
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
            await fan_out(session, daemon.pid, src, urls)
            await joiners(session, urls)
            await slow_viewer(session, urls[0])
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
