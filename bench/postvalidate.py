"""Post-validation on a fake CDN whose hosts allow a known concurrency and request rate and
refuse connections for a while after a burst. Ours (default settings) vs the seed's configuration
(12 workers, no per-host limit, buckets in sequence, one failure = dead).

Reports wall time vs the bound the limits impose (target <= 1.5x), healthy channels dropped
(target 0), dead channels found (target >= 97%), bans triggered.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.cdn import DEAD_KINDS, SILENT_KINDS, CdnHost, HostRules

from plextuner.buckets.models import LineupEntry
from plextuner.config import PostvalidateConfig
from plextuner.ingest.models import Channel, Source
from plextuner.validate.pool import Job, JobKey, ProbePool, interleave
from plextuner.validate.probe import NativeEngine
from plextuner.validate.result import Verdict

HOSTS, PER_HOST, BUCKETS = 8, 105, 6
RULES = HostRules(max_concurrency=2, max_rate=2, ban_seconds=5.0, service_time=0.05)


async def build() -> tuple[list[CdnHost], dict[str, list[Job]]]:
    hosts = [CdnHost(RULES) for _ in range(HOSTS)]
    for h in hosts:
        await h.start()
    counter = itertools.count()
    per_bucket: dict[str, list[Job]] = {f"b{i}": [] for i in range(BUCKETS)}
    for h in hosts:  # sorted by host: the order that hurts
        for _ in range(PER_HOST):
            n = next(counter)
            kinds = (*DEAD_KINDS, *SILENT_KINDS)
            kind = kinds[n // 12 % len(kinds)] if n % 12 == 0 else "ok"
            h.channels[f"c{n}"] = kind
            bucket = f"b{n * BUCKETS // (HOSTS * PER_HOST)}"
            source = Source("p", h.url(f"c{n}"))
            channel = Channel(
                key=f"c{n}", name=f"c{n}", tvg_id="", group="", provider="p", sources=[source]
            )
            entry = LineupEntry(str(n), channel)
            per_bucket[bucket].append(Job(JobKey(bucket, str(n)), bucket, entry))
    return hosts, per_bucket


def score(hosts: list[CdnHost], verdicts: dict[JobKey, Verdict]) -> tuple[int, int, int]:
    kinds = {name: kind for h in hosts for name, kind in h.channels.items()}
    dropped = found = dead = 0
    for key, verdict in verdicts.items():
        kind = kinds["c" + key.number]
        dropped += kind == "ok" and verdict is Verdict.DEAD
        dead += kind != "ok"
        found += kind != "ok" and verdict is Verdict.DEAD
    return dropped, found, dead


async def ours() -> tuple[float, dict[JobKey, Verdict], list[CdnHost]]:
    hosts, per_bucket = await build()
    start = time.monotonic()
    async with httpx.AsyncClient(timeout=15) as client:
        pool = ProbePool(PostvalidateConfig(engine="native"), NativeEngine(client))
        results = await pool.run(interleave(per_bucket))
    wall = time.monotonic() - start
    for h in hosts:
        await h.stop()
    return wall, {k: r.verdict for k, r in results.items()}, hosts


async def seed() -> tuple[float, dict[JobKey, Verdict], list[CdnHost]]:
    hosts, per_bucket = await build()
    start = time.monotonic()
    verdicts: dict[JobKey, Verdict] = {}
    sem = asyncio.Semaphore(12)
    async with httpx.AsyncClient(timeout=15) as client:
        engine = NativeEngine(client)

        async def one(job: Job) -> None:
            async with sem:
                result = await engine.probe(job.source, 15)
            verdicts[job.key] = Verdict.OK if result.verdict is Verdict.OK else Verdict.DEAD

        for jobs in per_bucket.values():
            await asyncio.gather(*(one(j) for j in jobs))
    wall = time.monotonic() - start
    for h in hosts:
        await h.stop()
    return wall, verdicts, hosts


def report(name: str, wall: float, verdicts: dict[JobKey, Verdict], hosts: list[CdnHost]) -> None:
    dropped, found, dead = score(hosts, verdicts)
    bound = PER_HOST / RULES.max_rate
    bans = sum(h.stats.bans for h in hosts)
    print(
        f"{name:<6} wall {wall:6.1f} s  bound {bound:5.1f} s  ratio {wall / bound:4.2f}x  "
        f"healthy dropped {dropped:3d}  dead found {found}/{dead} ({100 * found / dead:.0f}%)  "
        f"bans {bans}"
    )


def main() -> int:
    print(
        f"{HOSTS * PER_HOST} channels on {HOSTS} hosts; each host allows "
        f"{RULES.max_concurrency} concurrent, {RULES.max_rate}/s, bans {RULES.ban_seconds}s"
    )
    report("seed", *asyncio.run(seed()))
    report("ours", *asyncio.run(ours()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
