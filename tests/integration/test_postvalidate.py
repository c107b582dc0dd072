"""Post-validation against a hostile CDN: no healthy channel dropped, dead ones found."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import httpx
import pytest

from plextuner.buckets.models import Device, LineupEntry
from plextuner.config import PostvalidateConfig
from plextuner.ingest.models import Channel, Source, StreamKind
from plextuner.stages import StageName
from plextuner.stream.budget import BudgetRegistry
from plextuner.validate.pool import Job, JobKey, ProbePool, interleave
from plextuner.validate.probe import NativeEngine
from plextuner.validate.result import ProbeResult, Verdict
from tests.fakes.cdn import DEAD_KINDS, CdnHost, HostRules
from tests.waiting import until

pytestmark = pytest.mark.integration
FAST = {"min_interval": 0.05, "jitter": 0.05, "timeout": 2, "retries": 3, "max_run_time": 60}


@pytest.fixture
async def hosts() -> AsyncIterator[list[CdnHost]]:
    created = [CdnHost(HostRules(max_concurrency=2, max_rate=8, ban_seconds=0.6)) for _ in range(3)]
    for host in created:
        await host.start()
    yield created
    for host in created:
        await host.stop()


def world(hosts: list[CdnHost], per_host: int, dead_every: int = 10) -> dict[str, list[Job]]:
    """Channels spread over hosts and two buckets, sorted by host (the worst order)."""
    counter = itertools.count()
    per_bucket: dict[str, list[Job]] = {"a": [], "b": []}
    for host in hosts:
        for _ in range(per_host):
            n = next(counter)
            name = f"c{n}"
            kind = DEAD_KINDS[n % len(DEAD_KINDS)] if n % dead_every == 0 else "ok"
            host.channels[name] = kind
            bucket = "a" if n % 2 else "b"
            entry = LineupEntry(
                str(n),
                Channel(
                    key=name,
                    name=name,
                    tvg_id="",
                    group="",
                    provider="p",
                    sources=[Source("p", host.url(name), (), StreamKind.TS)],
                ),
            )
            per_bucket[bucket].append(Job(JobKey(bucket, str(n)), bucket, entry))
    return per_bucket


def verdicts(results: dict[JobKey, ProbeResult], hosts: list[CdnHost]) -> tuple[int, int, int]:
    kinds = {name: kind for h in hosts for name, kind in h.channels.items()}
    healthy_dropped = dead_found = dead_total = 0
    for key, result in results.items():
        kind = kinds[f"c{key.number}"]
        if kind == "ok" and result.verdict is Verdict.DEAD:
            healthy_dropped += 1
        if kind != "ok":
            dead_total += 1
            dead_found += result.verdict is Verdict.DEAD
    return healthy_dropped, dead_found, dead_total


async def test_no_healthy_channel_dropped_under_bans(hosts: list[CdnHost]) -> None:
    """With bans and rate limits, every dead channel is found and no healthy one dropped."""
    cfg = PostvalidateConfig(workers=12, per_host=2, **FAST)
    async with httpx.AsyncClient() as client:
        pool = ProbePool(cfg, NativeEngine(client))
        results = await pool.run(interleave(world(hosts, 40)))
    dropped, found, total = verdicts(results, hosts)
    assert len(results) == 120
    assert dropped == 0
    assert found >= 0.97 * total  # the target; a dead channel caught only by bans stays unverified


async def test_seed_configuration_drops_healthy_channels(hosts: list[CdnHost]) -> None:
    """The seed's 12 workers without per-host limits, one transient = dead, drop healthy channels.

    This is the bug the project exists to fix, reproduced on the fake CDN for contrast.
    """
    per_bucket = world(hosts, 40)
    healthy = {n for h in hosts for n, k in h.channels.items() if k == "ok"}
    sem = asyncio.Semaphore(12)
    dropped = 0
    async with httpx.AsyncClient() as client:
        engine = NativeEngine(client)

        async def naive(job: Job) -> bool:
            async with sem:
                result = await engine.probe(job.source, 2)
            return job.entry.channel.key in healthy and result.verdict is not Verdict.OK

        for jobs in per_bucket.values():  # buckets in sequence, as the seed ran them
            dropped += sum(await asyncio.gather(*(naive(j) for j in jobs)))
    assert dropped > 0
    assert sum(h.stats.bans for h in hosts) > 0


async def test_dark_host_keeps_channels_unverified(hosts: list[CdnHost]) -> None:
    """A host that refuses everything is parked; its channels stay (transient, never dead)."""
    await hosts[0].go_dark()
    cfg = PostvalidateConfig(workers=6, per_host=2, park_after=3, **FAST)
    async with httpx.AsyncClient() as client:
        pool = ProbePool(cfg, NativeEngine(client))
        results = await pool.run(interleave(world(hosts, 10, dead_every=1000)))
    dark = [r for k, r in results.items() if int(k.number) < 10]
    assert dark and all(r.verdict is Verdict.TRANSIENT for r in dark)
    assert pool.stats.parked_hosts == [f"127.0.0.1:{hosts[0].port}"]
    assert all(r.verdict is Verdict.OK for k, r in results.items() if int(k.number) >= 10)


async def test_backup_source_saves_channel(hosts: list[CdnHost]) -> None:
    """A dead first source with a healthy backup keeps the channel ok."""
    hosts[0].channels["x"] = "404"
    hosts[1].channels["y"] = "ok"
    entry = LineupEntry(
        "1",
        Channel(
            key="k",
            name="n",
            tvg_id="",
            group="",
            provider="p",
            sources=[Source("p", hosts[0].url("x")), Source("p", hosts[1].url("y"))],
        ),
    )
    cfg = PostvalidateConfig(**FAST)
    async with httpx.AsyncClient() as client:
        pool = ProbePool(cfg, NativeEngine(client))
        results = await pool.run([Job(JobKey("d", "1"), "d", entry)])
    assert results[JobKey("d", "1")].verdict is Verdict.OK
    from plextuner.validate.stage import promote_working_sources

    ctx = type("Ctx", (), {"devices": [Device("d", "d", "d", "1500000C", 5004, 2, True, [entry])]})
    promote_working_sources(ctx, pool.ok_source)  # type: ignore[arg-type]
    assert entry.channel.sources[0].url == hosts[1].url("y")  # the proven source goes first


async def test_probe_yields_to_viewer(hosts: list[CdnHost]) -> None:
    """A viewer's tune cancels a probe holding the connection it needs; probe is transient."""
    hosts[0].channels["h"] = "hang"
    budgets = BudgetRegistry(default_limit=2, viewer_wait=2.0)
    entry = LineupEntry(
        "1",
        Channel(
            key="k",
            name="n",
            tvg_id="",
            group="",
            provider="p",
            sources=[Source("p", hosts[0].url("h"))],
        ),
    )
    cfg = PostvalidateConfig(workers=2, per_host=2, min_interval=0, jitter=0, timeout=30, retries=0)
    async with httpx.AsyncClient() as client:
        pool = ProbePool(cfg, NativeEngine(client), budgets)
        run = asyncio.create_task(pool.run([Job(JobKey("d", "1"), "d", entry)]))
        budget = budgets.get("p")
        await until(lambda: budget.in_use > 0, "the probe to take a connection")
        viewer1 = await budget.acquire_viewer()  # the one connection probes never take
        viewer2 = await budget.acquire_viewer()  # needs the probe's connection
        results = await asyncio.wait_for(run, 5)
        assert budget.in_use == 2
        viewer1.release()
        viewer2.release()
    assert results[JobKey("d", "1")].verdict is Verdict.TRANSIENT
    assert pool.stats.preempted == 1


def device(name: str, n: int) -> Device:
    entries = [
        LineupEntry(
            str(i),
            Channel(
                key=f"k{i}",
                name=f"n{i}",
                tvg_id="",
                group="",
                provider="p",
                sources=[Source("p", f"http://h/{i}")],
            ),
        )
        for i in range(n)
    ]
    return Device(name, name, name, "1500000C", 5004, 2, True, entries)


def refresh_settings(tmp_path, hosts: list[CdnHost], cache_ttl: float = 0, engine: str = "native"):  # type: ignore[no-untyped-def]
    from plextuner.config import load_settings

    lines = ["#EXTM3U"]
    for h_index, host in enumerate(hosts[:2]):
        for i in range(10):
            name = f"h{h_index}c{i}"
            host.channels[name] = "ok"
            lines += [f'#EXTINF:-1 tvg-id="{name}" group-title="G{h_index}",{name}', host.url(name)]
    (tmp_path / "list.m3u").write_text("\n".join(lines) + "\n")
    return load_settings(
        None,
        {
            "data_dir": str(tmp_path / "data"),
            "providers": [
                {"name": "p", "m3u_url": str(tmp_path / "list.m3u"), "max_connections": 8}
            ],
            "buckets": [
                {"name": "g0", "match": {"group": "G0"}},
                {"name": "g1", "match": {"group": "G1"}},
            ],
            "postvalidate": {
                "engine": engine,
                "cache_ttl": cache_ttl,
                "max_drop_ratio": 0.2,
                **FAST,
            },
        },
        env={},
    )


async def test_the_default_engine_through_a_refresh(hosts: list[CdnHost], tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The ffprobe engine (the default) as the refresh builds it: our client fetches, ffprobe
    reads the bytes; a channel that stalls after its 200 and one serving a page are dead after
    their retry (neither slowed its host), the rest ok with the codec ffprobe read."""
    from plextuner.pipeline import run_refresh
    from plextuner.refresh import default_stages
    from tests.conftest import require_tool

    require_tool("ffprobe")
    # The hosts' rate limit out of the way (this is about the engine, not pacing): FAST paces
    # at up to 20/s a host, and a fast ffprobe let the probes reach the fixture's 8/s, a ban
    # that made the run's outcome depend on the machine's speed.
    for host in hosts:
        host.rules = HostRules(max_concurrency=2, max_rate=50, ban_seconds=0.6)
    settings = refresh_settings(tmp_path, hosts, engine="ffprobe")
    hosts[0].channels["h0c3"] = "stall"
    hosts[0].channels["h0c7"] = "html"
    outcome = await run_refresh(settings, stages=default_stages(settings))
    by_device = {d.name: d.entries for d in outcome.state.devices}
    assert sorted(e.channel.name for e in by_device["g0"]) == [
        f"h0c{i}" for i in range(10) if i not in (3, 7)
    ]
    assert len(by_device["g1"]) == 10
    assert all(e.state.value == "ok" for d in outcome.state.devices for e in d.entries)
    assert hosts[0].stats.bans == 0
    assert hosts[0].stats.served["stall"] == 2 and hosts[0].stats.served["html"] == 2


async def test_guard_holds_bucket_whose_host_turns_bad(hosts: list[CdnHost], tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A host answering 404 for everything leaves its bucket on its last good lineup (exit 3)."""
    from plextuner.pipeline import run_refresh
    from plextuner.refresh import default_stages

    settings = refresh_settings(tmp_path, hosts)
    first = await run_refresh(settings, stages=default_stages(settings))
    assert first.exit_code == 0
    assert [len(d.entries) for d in first.state.devices] == [10, 10]
    assert all(e.state.value == "ok" for d in first.state.devices for e in d.entries)
    for name in list(hosts[0].channels):
        hosts[0].channels[name] = "404"
    second = await run_refresh(settings, stages=default_stages(settings))
    assert second.exit_code == 3 and second.state.held == ["g0"]
    assert [len(d.entries) for d in second.state.devices] == [10, 10]
    assert "HELD" in second.context.reports[StageName.VALIDATE].by_device["g0"]


async def test_cache_skips_recently_ok(hosts: list[CdnHost], tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Channels proven ok within cache_ttl are not probed again, even after a restart."""
    from plextuner.pipeline import run_refresh
    from plextuner.refresh import default_stages

    settings = refresh_settings(tmp_path, hosts, cache_ttl=3600)
    await run_refresh(settings, stages=default_stages(settings))
    before = sum(h.stats.requests for h in hosts)
    again = await run_refresh(settings, stages=default_stages(settings))
    assert sum(h.stats.requests for h in hosts) == before
    assert all(e.state.value == "ok" for d in again.state.devices for e in d.entries)


@pytest.mark.parametrize(
    ("kind", "verdict"),
    [
        ("404", Verdict.DEAD),
        ("410", Verdict.DEAD),
        ("html", Verdict.TRANSIENT),  # definite: dead when the retry says it again
        ("garbage", Verdict.TRANSIENT),
        ("audio_only", Verdict.DEAD),
        ("ok", Verdict.OK),
        ("hang", Verdict.TRANSIENT),
    ],
)
async def test_ffprobe_engine_classifies(hosts: list[CdnHost], kind: str, verdict: Verdict) -> None:
    """The ffprobe engine (the default) gets each kind of channel right; no URL in its reason."""
    from plextuner.validate.probe import FfprobeEngine
    from tests.conftest import require_tool

    engine_bin = require_tool("ffprobe")
    hosts[0].rules.max_rate = 100
    hosts[0].channels[f"k{kind}"] = kind
    async with httpx.AsyncClient() as client:
        result = await FfprobeEngine(engine_bin, client).probe(
            Source("p", hosts[0].url(f"k{kind}")), 3
        )
    assert result.verdict is verdict, result.reason
    assert result.definite is (kind in ("html", "garbage"))
    assert "127.0.0.1" not in result.reason


async def test_whole_dead_bucket_trips_early(hosts: list[CdnHost]) -> None:
    """A bucket answering 404 everywhere stops being probed once the guard's verdict is certain."""
    per_bucket = world(hosts[:1], 60, dead_every=1000)
    for name in hosts[0].channels:
        hosts[0].channels[name] = "404"
    cfg = PostvalidateConfig(workers=4, per_host=2, **FAST)
    async with httpx.AsyncClient() as client:
        pool = ProbePool(cfg, NativeEngine(client))
        results = await pool.run(interleave(per_bucket))
    assert sorted(pool.stats.tripped_buckets) == ["a", "b"]
    assert hosts[0].stats.requests < 60
    assert all(r.verdict is Verdict.DEAD for r in results.values())
    assert len(results) < 120  # the rest were never probed: they stay unchecked


async def test_a_bucket_of_error_pages_trips_early(hosts: list[CdnHost]) -> None:
    """A provider serving its error page for every channel, on a 2-connection account (one
    probe slot: each page's retry waits for the end of the run): the bucket trips as early as
    a bucket of 404s. Before, every channel was asked once before any retry could decide one."""
    per_bucket = world(hosts[:1], 60, dead_every=1000)
    for name in hosts[0].channels:
        hosts[0].channels[name] = "html"
    budgets = BudgetRegistry(2)
    budgets.set_limit("p", 2)
    cfg = PostvalidateConfig(workers=4, per_host=2, **FAST)
    async with httpx.AsyncClient() as client:
        pool = ProbePool(cfg, NativeEngine(client), budgets)
        results = await pool.run(interleave(per_bucket))
    assert sorted(pool.stats.tripped_buckets) == ["a", "b"]
    assert hosts[0].stats.requests < 60  # each bucket's 20th page trips it
    assert not any(r.verdict is Verdict.OK for r in results.values())


async def test_daemon_serves_before_probing_finishes(hosts: list[CdnHost], tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A fresh daemon publishes its lineups at once and validates them afterwards."""
    from tests.fakes.daemon import daemon_settings, running

    lines = ["#EXTM3U"]
    for i in range(4):
        hosts[0].channels[f"s{i}"] = "slow"
        lines += [f'#EXTINF:-1 tvg-id="s{i}" group-title="G",S{i}', hosts[0].url(f"s{i}")]
    (tmp_path / "l.m3u").write_text("\n".join(lines) + "\n")
    settings = daemon_settings(
        tmp_path / "data",
        [{"name": "p", "m3u_url": str(tmp_path / "l.m3u"), "max_connections": 4}],
        [{"name": "g", "match": {"group": "G"}}],
        devices=1,
        postvalidate={
            "enabled": True,
            "engine": "native",
            "per_host": 1,
            "min_interval": 0.2,
            "jitter": 0,
            "timeout": 5,
        },
    )
    async with running(settings) as service:
        state = service.runtime.state
        assert state is not None and len(state.devices[0].entries) == 4
        assert {e.state.value for e in state.devices[0].entries} == {"unchecked"}
        await until(lambda: service.runtime.state is not state, "the validated state", 20)
        validated = service.runtime.state
        assert {e.state.value for e in validated.devices[0].entries} == {"ok"}  # type: ignore[union-attr]


async def test_a_run_holds_the_ceilings_an_earlier_run_was_taught() -> None:
    """Each host of a CDN that limits the probe rate bans the first run once, while its limit is
    learned; a later run given those ceilings (probe_cache.json carries them) is banned by none."""
    hosts = [CdnHost(HostRules(max_concurrency=10, max_rate=8, ban_seconds=0.6)) for _ in range(2)]
    for host in hosts:
        await host.start()
    # Starting under the limit (6.7/s), as a configured pace does: the climb teaches it
    cfg = PostvalidateConfig(workers=6, per_host=2, **{**FAST, "min_interval": 0.15})
    try:
        async with httpx.AsyncClient() as client:
            first = ProbePool(cfg, NativeEngine(client))
            await first.run(interleave(world(hosts, 30, dead_every=1000)))
            bans = sum(h.stats.bans for h in hosts)
            taught = {h: lim.ceiling for h, lim in first.hosts.items() if lim.taught}
            assert bans > 0 and len(taught) == len(hosts)
            await until(
                lambda: all(h._ban_task is None or h._ban_task.done() for h in hosts), "bans over"
            )
            second = ProbePool(cfg, NativeEngine(client), known=taught)
            results = await second.run(interleave(world(hosts, 30, dead_every=1000)))
    finally:
        for host in hosts:
            await host.stop()
    assert sum(h.stats.bans for h in hosts) == bans
    # every channel decided, as the world made it (channel 0 is its one dead channel)
    assert [k.number for k, r in results.items() if r.verdict is not Verdict.OK] == ["0"]


async def test_a_refresh_keeps_the_ceilings_its_hosts_taught(
    hosts: list[CdnHost],
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    """The ceilings a refresh's probes were taught go to probe_cache.json; the next refresh's
    probe pool is given them."""
    import json

    from plextuner.pipeline import run_refresh
    from plextuner.refresh import default_stages
    from plextuner.validate import stage

    settings = refresh_settings(tmp_path, hosts)  # FAST: 20/s against the hosts' 8/s
    await run_refresh(settings, stages=default_stages(settings))
    saved = json.loads(settings.paths.probe_cache.read_bytes())["hosts"]
    taught = {h: v["ceiling"] for h, v in saved.items()}
    assert sum(h.stats.bans for h in hosts) > 0 and taught
    assert set(taught) <= {f"127.0.0.1:{h.port}" for h in hosts}
    given: list[object] = []

    class Spy(ProbePool):
        def __init__(self, *args: object, **kwargs: object) -> None:
            given.append(kwargs.get("known"))
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(stage, "ProbePool", Spy)
    await run_refresh(settings, stages=default_stages(settings))
    assert given == [taught]


@pytest.fixture
async def roomy() -> AsyncIterator[list[CdnHost]]:
    """Hosts whose limits no probe here meets: this is about silence, not bans."""
    created = [CdnHost(HostRules(max_concurrency=64, max_rate=100)) for _ in range(2)]
    for host in created:
        await host.start()
    yield created
    for host in created:
        await host.stop()


async def test_a_channel_that_hangs_while_its_host_serves_others_is_dead(
    roomy: list[CdnHost],
) -> None:
    """A channel whose server accepts and never answers, on both attempts, while the same host
    streams other channels between them: dead. A host whose every channel hangs: unverified."""
    good, hanging = roomy
    for n in range(12):
        good.channels[f"c{n}"] = "hang" if n in (3, 8) else "ok"
        hanging.channels[f"c{100 + n}"] = "hang"

    def job(host: CdnHost, n: int) -> Job:
        source = Source("p", host.url(f"c{n}"), (), StreamKind.TS)
        channel = Channel(key=f"c{n}", name=f"c{n}", tvg_id="", group="", provider="p",
                          sources=[source])  # fmt: skip
        return Job(JobKey("a", str(n)), "a", LineupEntry(str(n), channel))

    jobs = [job(good, n) for n in range(12)] + [job(hanging, 100 + n) for n in range(4)]
    cfg = PostvalidateConfig(
        workers=4, per_host=2, **{**FAST, "timeout": 1.0, "first_timeout": 0.5}
    )
    async with httpx.AsyncClient() as client:
        results = await ProbePool(cfg, NativeEngine(client)).run(jobs)
    verdict = {int(k.number): r for k, r in results.items()}
    for n in (3, 8):
        assert verdict[n].verdict is Verdict.DEAD
        assert verdict[n].reason == "connected, no answer (every attempt)"
    assert all(verdict[n].verdict is Verdict.OK for n in range(12) if n not in (3, 8))
    assert all(verdict[100 + n].verdict is Verdict.TRANSIENT for n in range(4))
