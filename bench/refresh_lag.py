"""Viewers streaming through `serve` while it refreshes a 50k-stream list and a large guide.

Reports the daemon's event-loop lag (its own sampler: p99 from the histogram, max from the
`event_loop_blocked` lines), the latency of /healthz polled every 50 ms, and the viewers'
throughput, each against a quiet run of the same length measured just before (issue 16 targets:
max lag <= 100 ms, viewer throughput within 5 % of the quiet run).
BENCH_LAG_GUIDE_MB sets the guide size (default 300), BENCH_LAG_VIEWERS the viewers (20).
Every stream is a channel of its own (50k channels: the guide's 3,000 matched, placeholders for
the rest); with tvg-ids shared by 16 streams each, as this bench had them first, the lineup was
3,000 channels and hid a 75-80 ms stall: the rows of 50k channels pickled for the guide worker
in one C call (epg/worker.py `pack_rows`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.streams import FakeCdn

from bench._net import free_ports
from bench.epg_ingest import generate as generate_guide

STREAMS = 50_000
TOKEN = "bench-token"  # noqa: S105 - a loopback daemon made for this run
QUIET_S = 15.0


def playlist(path: Path, cdn_port: int, viewers: int) -> None:
    lines = ["#EXTM3U"]
    for i in range(viewers):
        lines += [
            f'#EXTINF:-1 tvg-id="ch{i}.tv" group-title="Live",Live {i}',
            f"http://127.0.0.1:{cdn_port}/live/u/p/c{i}.ts",
        ]
    for i in range(viewers, STREAMS):
        group = ("Sports", "News", "Movies", "Kids", "Music")[i % 5]
        lines += [
            f'#EXTINF:-1 tvg-id="ch{i}.tv" group-title="{group}",{group} Channel {i}',
            f"http://cdn{i % 7}.invalid:8080/live/u/p/{i}.ts",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def config(tmp: Path, port: int, guide: Path, viewers: int) -> Path:
    path = tmp / "config.yaml"
    path.write_text(
        f"data_dir: {tmp / 'data'}\nhost: 127.0.0.1\nport: {port}\ndiscovery_port: 0\n"
        f"admin_token: {TOKEN}\nrefresh_interval: 1d\nlog_format: json\n"
        "postvalidate: {enabled: false}\n"
        f"providers:\n  - {{name: p, m3u_url: '{tmp / 'list.m3u'}', "
        f"max_connections: {viewers + 5}}}\n"
        f"epg: {{sources: ['{guide}']}}\n"
        f"buckets:\n  - {{name: live, match: {{group: '^Live$'}}, tuners: {viewers + 2}}}\n"
        "  - {name: rest, match: {group: '.'}}\n",
        encoding="utf-8",
    )
    return path


class Viewers:
    def __init__(self, base: str, numbers: list[str]) -> None:
        self.base, self.numbers = base, numbers
        self.bytes = [0] * len(numbers)
        self.tasks: list[asyncio.Task[None]] = []

    async def _one(self, i: int) -> None:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(30, read=60)) as client,
            client.stream("GET", f"{self.base}/auto/v{self.numbers[i]}") as r,
        ):
            async for chunk in r.aiter_raw():
                self.bytes[i] += len(chunk)

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._one(i)) for i in range(len(self.numbers))]

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def health_latencies(base: str, until: asyncio.Event) -> list[float]:
    out: list[float] = []
    async with httpx.AsyncClient(timeout=30) as client:
        while not until.is_set():
            t = time.perf_counter()
            await client.get(base + "/healthz")
            out.append(time.perf_counter() - t)
            await asyncio.sleep(0.05)
    return out


def lag_counts(metrics_text: str) -> list[tuple[float, float]]:
    """The histogram's cumulative counts by bucket bound, `+Inf` last."""
    return [
        (float(m.group(1)), float(m.group(2)))
        for m in re.finditer(
            r'plextuner_event_loop_lag_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)', metrics_text
        )
    ]


def lag_bounds(before: str, after: str) -> tuple[float, float]:
    """The bucket bounds of the 99th percentile and of the largest sample taken between the
    two scrapes (the histogram counts from the daemon's start: its first refresh included)."""
    was = dict(lag_counts(before))
    counts = [(bound, count - was.get(bound, 0.0)) for bound, count in lag_counts(after)]
    total = counts[-1][1] if counts else 0.0
    p99 = next((b for b, c in counts if total and c / total >= 0.99), float("inf"))
    top = next((b for b, c in counts if c >= total), float("inf"))
    return p99, top


async def phase(
    base: str, viewers: Viewers, seconds: float | None, refresh: bool
) -> dict[str, float]:
    before = list(viewers.bytes)
    done = asyncio.Event()
    poller = asyncio.create_task(health_latencies(base, done))
    start = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as client:
        earlier = (await client.get(base + "/metrics")).text
        if refresh:
            r = await client.post(
                base + "/api/v1/refresh", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert r.status_code == 202, r.text
            while True:
                await asyncio.sleep(0.5)
                status = (await client.get(base + "/api/v1/status")).json()["refresh"]
                if not status["running"] and (status["finished_at"] or 0) > time.time() - (
                    time.monotonic() - start
                ):
                    break
        else:
            await asyncio.sleep(seconds or QUIET_S)
        metrics = (await client.get(base + "/metrics")).text
    wall = time.monotonic() - start
    done.set()
    lat = await poller
    got = [b - a for a, b in zip(before, viewers.bytes, strict=True)]
    return {
        "wall": wall,
        "per_viewer_kbps": statistics.mean(got) * 8 / 1000 / wall,
        "min_viewer_kbps": min(got) * 8 / 1000 / wall,
        "health_p99_ms": sorted(lat)[int(len(lat) * 0.99) - 1] * 1000 if lat else 0.0,
        "health_max_ms": max(lat) * 1000 if lat else 0.0,
        "lag_p99_bucket_s": lag_bounds(earlier, metrics)[0],
        "lag_max_bucket_s": lag_bounds(earlier, metrics)[1],
    }


def blocked_max(log: Path, since: float) -> float:
    """The longest `event_loop_blocked` the daemon logged after `since` (epoch seconds)."""
    worst = 0.0
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if '"event_loop_blocked"' not in line:
            continue
        try:
            rec = json.loads(line)
            at = datetime.fromisoformat(str(rec["timestamp"]).replace("Z", "+00:00")).timestamp()
        except (ValueError, KeyError):
            continue
        if at >= since:
            worst = max(worst, float(rec.get("lag_s", 0.0)))
    return worst


def start_pyspy(pid: int) -> subprocess.Popen[bytes] | None:
    """With BENCH_LAG_PYSPY=<file>: a GIL profile of the refresh (py-spy), for digging."""
    out = os.environ.get("BENCH_LAG_PYSPY")
    if not out:
        return None
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(pid), "--gil",
         "--threads", "--format", "raw", "-r", "250", "-d", "25", "-o", out],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def report(
    mb: int, n_viewers: int, quiet: dict[str, float], busy: dict[str, float], worst: float
) -> None:
    print(f"{STREAMS} streams, {mb} MB guide, {n_viewers} viewers")
    for name, p in (("quiet", quiet), ("refresh", busy)):
        print(
            f"{name:<8} {p['wall']:6.1f} s  viewer {p['per_viewer_kbps']:8.0f} kb/s (min "
            f"{p['min_viewer_kbps']:.0f})  /healthz p99 {p['health_p99_ms']:6.1f} ms max "
            f"{p['health_max_ms']:6.1f} ms  loop-lag p99 <= {p['lag_p99_bucket_s']} s, max <= "
            f"{p['lag_max_bucket_s']} s"
        )
    ratio = busy["per_viewer_kbps"] / quiet["per_viewer_kbps"]
    print(
        f"loop blocked max {worst * 1000:.0f} ms (target <= 100 ms); viewer throughput during the "
        f"refresh {ratio:.1%} of quiet (target >= 95%)"
    )


async def first_refresh_done(base: str) -> list[dict[str, str]]:
    """The lineup once the daemon is ready and its first refresh (50k + the guide) is over."""
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(1200):  # it may take minutes
            try:
                if (await client.get(base + "/readyz")).status_code == 200:
                    status = (await client.get(base + "/api/v1/status")).json()
                    if not status["refresh"]["running"]:
                        break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
        lineup: list[dict[str, str]] = (await client.get(base + "/devices/live/lineup.json")).json()
    return lineup


async def run() -> int:
    mb = int(os.environ.get("BENCH_LAG_GUIDE_MB", "300"))
    n_viewers = int(os.environ.get("BENCH_LAG_VIEWERS", "20"))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cdn = FakeCdn(tmp)
        await cdn.start()
        guide = tmp / "guide.xml"
        generate_guide(guide, mb)
        playlist(tmp / "list.m3u", cdn.port, n_viewers)
        port = free_ports(STREAMS // 479 + 4)  # every device's port (479 channels each)
        cfg = config(tmp, port, guide, n_viewers)
        log = tmp / "serve.log"
        # The daemon logs to a pipe, as under a container runtime: a log file on the disk the
        # guides are fsynced to would stall every write of the loop behind the journal.
        proc = subprocess.Popen(
            [sys.executable, "-m", "plextuner", "serve", "--config", str(cfg)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        lines: list[str] = []
        reader = threading.Thread(
            target=lambda: lines.extend(iter(proc.stdout.readline, "")) if proc.stdout else None,
            daemon=True,
        )
        reader.start()
        base = f"http://127.0.0.1:{port}"
        try:
            lineup = await first_refresh_done(base)
            at_rest = daemon_rss(proc.pid)  # published and written, nobody watching
            viewers = Viewers(base, [c["GuideNumber"] for c in lineup][:n_viewers])
            viewers.start()
            await asyncio.sleep(3)  # everyone streaming
            quiet = await phase(base, viewers, QUIET_S, refresh=False)
            marker = time.time()
            spy = start_pyspy(proc.pid)
            busy = await phase(base, viewers, None, refresh=True)
            if spy is not None:
                spy.wait(60)
            await viewers.stop()
            rss = daemon_rss(proc.pid)
            closed = await upstreams_closed(base)
            left = daemon_rss(proc.pid) if closed else (float("nan"), float("nan"))
            log.write_text("".join(lines))
            worst = blocked_max(log, marker)
            if os.environ.get("BENCH_LAG_KEEP_LOG"):
                Path(os.environ["BENCH_LAG_KEEP_LOG"]).write_text(log.read_text())
        finally:
            proc.terminate()
            proc.wait(30)
            await cdn.stop()
    report(mb, n_viewers, quiet, busy, worst)
    report_rss(mb, n_viewers, at_rest, rss)
    print(
        f"serve RSS once the viewers left and their upstreams closed (stream.linger): "
        f"{left[0]:.0f} MB (target <= 200 MB)"
    )
    return 0


async def upstreams_closed(base: str, within: float = 30.0) -> bool:
    """Whether the daemon's shared upstreams all closed (`plextuner_upstreams_active` 0)
    within `within` seconds of the viewers leaving: each lingers `stream.linger` first."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=10) as client:
        while time.monotonic() < deadline:
            text = (await client.get(base + "/metrics")).text
            active = re.findall(
                r"^plextuner_upstreams_active(?:\{[^}]*\})? ([0-9.e+]+)$", text, re.M
            )
            if sum(float(v) for v in active) == 0:
                return True
            await asyncio.sleep(0.25)  # polled: the gauge is the condition waited on
    return False


def report_rss(
    mb: int, n_viewers: int, at_rest: tuple[float, float], after: tuple[float, float]
) -> None:
    print(
        f"serve RSS with {STREAMS} streams published and the {mb} MB guide written: "
        f"{at_rest[0]:.0f} MB at rest (target <= 200 MB); {after[0]:.0f} MB after a second "
        f"refresh with {n_viewers} viewers on separate channels (their upstreams' rings: "
        f"stream.ring_bytes each), peak {after[1]:.0f} MB"
    )


def daemon_rss(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of the daemon in MB: now, and its peak (guide worker processes aside)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()[0] if value.split() else "0"
    return int(fields.get("VmRSS", 0)) / 1024, int(fields.get("VmHWM", 0)) / 1024


def main() -> int:
    return asyncio.run(run())


if __name__ == "__main__":
    raise SystemExit(main())
