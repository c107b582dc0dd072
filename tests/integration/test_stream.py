"""The stream engine: connection budget, failover, HLS remux, nothing leaked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from plextuner.metrics import REGISTRY
from plextuner.service import Service
from tests.conftest import require_tool
from tests.fakes.daemon import daemon_settings, running
from tests.fakes.streams import FakeCdn
from tests.waiting import until

pytestmark = pytest.mark.integration


def playlist(path: Path, cdn: FakeCdn) -> Path:
    lines = ["#EXTM3U"]
    for i in range(4):
        lines += [f'#EXTINF:-1 tvg-id="c{i}" group-title="A",Channel {i}', cdn.url(f"c{i}")]
    # c0 has a backup source; "hls" is an HLS channel
    lines += ['#EXTINF:-1 tvg-id="c0" group-title="A",Channel 0 backup', cdn.url("c0b")]
    lines += ['#EXTINF:-1 tvg-id="hls" group-title="B",HLS', cdn.url("x", "hls")]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
async def daemon(cdn: FakeCdn, tmp_path: Path) -> AsyncIterator[Service]:
    settings = daemon_settings(
        tmp_path / "data",
        providers=[
            {"name": "p", "m3u_url": str(playlist(tmp_path / "l.m3u", cdn)), "max_connections": 2}
        ],
        buckets=[
            {"name": "a", "match": {"group": "A"}, "tuners": 4},
            {"name": "b", "match": {"group": "B"}, "tuners": 2},
        ],
        devices=2,
        stream={"stall_timeout": 1.0, "viewer_wait": 0.5, "connect_timeout": 3, "linger": 0},
    )
    async with running(settings) as service:
        yield service


def numbers(service: Service, device: int = 0) -> list[str]:
    return [e.number for e in service.runtime.state.devices[device].entries]  # type: ignore[union-attr]


def tune_url(service: Service, number: str, device: int = 0) -> str:
    return f"http://127.0.0.1:{service.settings.port + device}/auto/v{number}"


async def settle(cdn: FakeCdn, service: Service) -> None:
    await until(
        lambda: cdn.state.open_connections == 0 and not service.engine.active_sessions(),
        "every upstream connection and stream session to close",
    )


def gauge_total(name: str) -> float:
    return sum(s.value for m in REGISTRY.collect() for s in m.samples if s.name == name)


async def test_budget_caps_provider_connections(daemon: Service, cdn: FakeCdn) -> None:
    """With max_connections 2, a third concurrent tune is 503 and the provider never sees 3."""
    nums = numbers(daemon)
    async with httpx.AsyncClient(timeout=10) as client:
        async with (
            client.stream("GET", tune_url(daemon, nums[0])) as a,
            client.stream("GET", tune_url(daemon, nums[1])) as b,
        ):
            assert a.status_code == b.status_code == 200
            a_chunks, b_chunks = a.aiter_bytes(), b.aiter_bytes()  # held: a dropped iterator closes
            await anext(a_chunks)
            await anext(b_chunks)
            third = await client.get(tune_url(daemon, nums[2]))
            assert third.status_code == 503
            assert third.headers["X-HDHomeRun-Error"].startswith("803")
            assert third.text == ""  # a body would be read as video by Jellyfin
    await settle(cdn, daemon)
    assert cdn.state.peak_connections == 2
    assert cdn.state.open_connections == 0


async def test_failover_mid_stream_keeps_client(daemon: Service, cdn: FakeCdn) -> None:
    """When the upstream dies mid-play, bytes keep flowing from the backup source."""
    cdn.state.die_after["c0"] = 188 * 2000
    received = 0
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", tune_url(daemon, numbers(daemon)[0])) as resp:
            async for chunk in resp.aiter_bytes():
                received += len(chunk)
                if received > 188 * 6000:
                    break
    assert received > 188 * 6000
    await settle(cdn, daemon)
    assert cdn.state.open_connections == 0
    assert gauge_total("plextuner_stream_failovers_total") >= 1


async def test_stall_reconnects(daemon: Service, cdn: FakeCdn) -> None:
    """An upstream that stalls is replaced within the stall timeout, the client kept."""
    cdn.state.stall_after["c1"] = 188 * 1000
    received = 0
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", tune_url(daemon, numbers(daemon)[1])) as resp:
            async for chunk in resp.aiter_bytes():
                received += len(chunk)
                if received > 188 * 3000:
                    break
    assert received > 188 * 3000
    await settle(cdn, daemon)
    assert cdn.state.open_connections == 0


async def test_dead_first_source_fails_over_before_first_byte(
    daemon: Service, cdn: FakeCdn
) -> None:
    """A 404 on the first source is answered from the backup in the same request."""
    cdn.state.dead.add("c0")
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", tune_url(daemon, numbers(daemon)[0])) as resp:
            assert resp.status_code == 200
            assert (await anext(resp.aiter_bytes()))[0] == 0x47
    await settle(cdn, daemon)


async def test_hls_remuxed_to_ts(daemon: Service) -> None:
    """An HLS channel reaches the client as MPEG-TS that ffprobe reads as video."""
    ffprobe = require_tool("ffprobe")
    proc = await asyncio.create_subprocess_exec(
        ffprobe,
        "-v",
        "error",
        "-show_streams",
        "-of",
        "json",
        tune_url(daemon, numbers(daemon, 1)[0], 1),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    streams = json.loads(out).get("streams", [])
    assert "h264" in {s["codec_name"] for s in streams}, err.decode(errors="replace")[-2000:]


async def ffmpeg_children() -> int:
    proc = await asyncio.create_subprocess_exec(
        "pgrep",
        "-c",
        "-P",
        str(__import__("os").getpid()),
        "ffmpeg",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    return int(out.strip() or 0)


async def test_rapid_tune_cancel_leaves_nothing(daemon: Service, cdn: FakeCdn) -> None:
    """200 tune/disconnect cycles leave no upstream connection, session or ffmpeg behind."""
    nums = numbers(daemon)
    cdn.state.requests = 0
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(200):
            async with client.stream("GET", tune_url(daemon, nums[i % 4])) as resp:
                if resp.status_code == 200:
                    await anext(resp.aiter_bytes())
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", tune_url(daemon, numbers(daemon, 1)[0], 1)) as resp:
            await anext(resp.aiter_bytes())
    await settle(cdn, daemon)
    assert cdn.state.open_connections == 0
    assert cdn.state.requests <= 201  # a disconnect never triggers an upstream reconnect
    assert daemon.engine.active_sessions() == []
    assert gauge_total("plextuner_streams_active") == 0
    assert all(b.in_use == 0 for b in daemon.engine.budgets.all())
    await until(lambda: _no_children(), "every ffmpeg child to exit", 5)


async def _no_children() -> bool:
    return await ffmpeg_children() == 0


async def test_client_disconnect_closes_upstream_fast(daemon: Service, cdn: FakeCdn) -> None:
    """When the client goes (no linger configured), the upstream closes within a second."""
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", tune_url(daemon, numbers(daemon)[2])) as resp:
            chunks = resp.aiter_bytes()
            await anext(chunks)
            assert cdn.state.open_connections == 1
    loop = asyncio.get_running_loop()
    start = loop.time()
    while cdn.state.open_connections and loop.time() - start < 2:
        await asyncio.sleep(0.02)
    assert cdn.state.open_connections == 0
    assert loop.time() - start < 1.0


async def test_probes_share_the_budget_with_a_viewer(cdn: FakeCdn, tmp_path: Path) -> None:
    """While a viewer streams, a refresh's probes never push the provider past max_connections."""
    settings = daemon_settings(
        tmp_path / "data",
        providers=[
            {"name": "p", "m3u_url": str(playlist(tmp_path / "l.m3u", cdn)), "max_connections": 2}
        ],
        buckets=[{"name": "a", "match": {"group": "A"}, "tuners": 4}],
        devices=1,
        admin_token="tok-123456",
        postvalidate={
            "enabled": True,
            "engine": "native",
            "min_interval": 0,
            "jitter": 0,
            "per_host": 4,
            "workers": 8,
            "timeout": 3,
            "cache_ttl": 0,
        },
    )
    async with running(settings) as service:
        await until(  # the start-up refresh (quick publish, then probes) must be done
            lambda: not service.refreshing and bool(service.runtime.refresh.finished_at),
            "the start-up refresh to finish",
        )
        cdn.state.peak_connections = 0
        nums = numbers(service)
        async with httpx.AsyncClient(timeout=10) as client:
            async with client.stream("GET", tune_url(service, nums[0])) as viewer:
                chunks = viewer.aiter_bytes()
                await anext(chunks)
                before = service.runtime.refresh.finished_at
                async with httpx.AsyncClient(timeout=10) as admin:  # its own connection pool
                    r = await admin.post(
                        f"http://127.0.0.1:{service.settings.port}/api/v1/refresh",
                        headers={"Authorization": "Bearer tok-123456"},
                    )
                assert r.status_code == 202
                received = 0
                info = service.runtime.refresh
                for _ in range(50_000):  # bounded: the refresh gives up on probes within ~6 s
                    received += len(await anext(chunks))
                    if info.finished_at is not None and info.finished_at != before:
                        break
                assert info.finished_at is not None and info.finished_at != before
                assert service.engine.active_sessions()  # the viewer is still watching
                assert service.runtime.refresh.ok is True
                assert received > 0
        await settle(cdn, service)
    assert cdn.state.peak_connections <= 2
    probed = service.runtime.state.devices[0].entries  # type: ignore[union-attr]
    # Two connections, one viewer: the last connection is the viewer's to need, so no probe ran
    # during the viewing; the channels are kept, unverified.
    assert {e.state.value for e in probed} == {"unverified"}
