"""Connection economy: one provider connection per channel for every viewer, against a fake CDN
that counts its open connections and refuses past the account's limit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from plextuner.metrics import REGISTRY
from plextuner.service import Service
from plextuner.stream.ts import NULL_PID, PAT_PID, SYNC, pid_of
from tests.conftest import require_tool
from tests.fakes.daemon import daemon_settings, running
from tests.fakes.streams import FakeCdn
from tests.integration.test_stream import playlist
from tests.waiting import until

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def daemon_with(
    cdn: FakeCdn, tmp_path: Path, connections: int, **stream: Any
) -> AsyncIterator[Service]:
    cdn.state.max_connections = connections  # the provider's own limit: 403 past it
    settings = daemon_settings(
        tmp_path / "data",
        providers=[
            {
                "name": "p",
                "m3u_url": str(playlist(tmp_path / "l.m3u", cdn)),
                "max_connections": connections,
            }
        ],
        buckets=[
            {"name": "a", "match": {"group": "A"}, "tuners": 8},
            {"name": "b", "match": {"group": "B"}, "tuners": 2},
        ],
        devices=2,
        stream={"stall_timeout": 1.5, "viewer_wait": 3, "connect_timeout": 3, **stream},
    )
    async with running(settings) as service:
        yield service


def url(service: Service, number: str) -> str:
    return f"http://127.0.0.1:{service.settings.port}/auto/v{number}"


def numbers(service: Service) -> list[str]:
    assert service.runtime.state is not None
    return [e.number for e in service.runtime.state.devices[0].entries]


class Reader:
    """A viewer: opens the stream, reads continuously (or not at all), counts bytes."""

    def __init__(self, client: httpx.AsyncClient, target: str, *, read: bool = True) -> None:
        self.client, self.target, self.read = client, target, read
        self.status = 0
        self.bytes = 0
        self.first: bytes = b""
        self.opened = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with self.client.stream("GET", self.target) as resp:
            self.status = resp.status_code
            chunks = resp.aiter_raw()
            if resp.status_code == 200:
                self.first = await anext(chunks)
                self.bytes += len(self.first)
            self.opened.set()
            if resp.status_code != 200:
                return
            if not self.read:
                await asyncio.Event().wait()  # hold the connection, read nothing more
            async for chunk in chunks:
                self.bytes += len(chunk)

    def start(self) -> Reader:
        self.task = asyncio.create_task(self._run())
        self.task.add_done_callback(lambda _: self.opened.set())
        return self

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await self.task


async def test_six_viewers_two_channels_two_connections(cdn: FakeCdn, tmp_path: Path) -> None:
    """Six viewers (three per channel) stream on a 2-connection account; the provider never sees
    more than 2; a third channel is refused with 803; joiners start at a PAT."""
    async with daemon_with(cdn, tmp_path, 2) as service, httpx.AsyncClient(timeout=20) as client:
        first, second, third = numbers(service)[1:4]
        readers = [Reader(client, url(service, n)).start() for n in (first, second)]
        try:
            for r in readers:  # the first viewer of each channel opens its upstream
                await asyncio.wait_for(r.opened.wait(), 15)
            readers += [Reader(client, url(service, n)).start() for n in (first, second) * 2]
            for r in readers:
                await asyncio.wait_for(r.opened.wait(), 15)
            assert [r.status for r in readers] == [200] * 6
            await until(lambda: all(r.bytes > 200_000 for r in readers), "every viewer to read")
            assert cdn.state.peak_connections == 2
            joiners = readers[2:]
            for r in joiners:
                assert r.first[0] == SYNC and pid_of(r.first[:188]) == PAT_PID
            refused = await client.get(url(service, third))
            assert refused.status_code == 503 and refused.headers["X-HDHomeRun-Error"][:3] == "803"
            sessions = service.engine.active_sessions()
            assert {s["upstream_viewers"] for s in sessions} == {3}
            assert len({s["upstream"] for s in sessions}) == 2
            joins = REGISTRY.get_sample_value("plextuner_upstream_joins_total", {"bucket": "a"})
            assert joins == 4
        finally:
            for r in readers:
                await r.stop()
        await until(lambda: cdn.state.open_connections == 0, "the provider connections to close")


async def test_slow_reader_stalls_no_one(cdn: FakeCdn, tmp_path: Path) -> None:
    """A viewer that stops reading is skipped ahead (its queue bounded); the other viewer of the
    same upstream keeps reading at the stream's rate."""
    async with (
        daemon_with(cdn, tmp_path, 1, viewer_buffer_bytes=188 * 2000) as service,
        httpx.AsyncClient(timeout=20) as client,
    ):
        number = numbers(service)[1]
        fast = Reader(client, url(service, number)).start()
        slow = Reader(client, url(service, number), read=False).start()
        try:
            await asyncio.wait_for(fast.opened.wait(), 15)
            await asyncio.wait_for(slow.opened.wait(), 15)
            mark = fast.bytes

            def skipped() -> bool:
                value = REGISTRY.get_sample_value(
                    "plextuner_slow_viewers_total", {"action": "skip"}
                )
                return bool(value) and fast.bytes > mark + 2_000_000

            await until(skipped, "the slow viewer to be skipped while the fast one reads", 20)
            assert cdn.state.peak_connections == 1
        finally:
            await fast.stop()
            await slow.stop()


async def test_zap_on_one_connection_account(cdn: FakeCdn, tmp_path: Path) -> None:
    """Plex opens the next channel before it closes the current one: on a 1-connection account
    every zap gets its channel (the old upstream hands its connection over), never a 503."""
    async with daemon_with(cdn, tmp_path, 1) as service, httpx.AsyncClient(timeout=20) as client:
        chans = numbers(service)
        current = Reader(client, url(service, chans[0])).start()
        await asyncio.wait_for(current.opened.wait(), 15)
        try:
            for n in (chans[1], chans[2], chans[3], chans[1], chans[2]):
                nxt = Reader(client, url(service, n)).start()
                await asyncio.sleep(0.5)  # Plex closes the old stream half a second later
                await current.stop()
                await asyncio.wait_for(nxt.opened.wait(), 15)
                assert nxt.status == 200, n
                current = nxt
            assert cdn.state.peak_connections == 1
            handovers = REGISTRY.get_sample_value(
                "plextuner_connection_handovers_total", {"provider": "p"}
            )
            assert handovers and handovers >= 5
        finally:
            await current.stop()
        await until(lambda: cdn.state.open_connections == 0, "the last upstream to close", 10)


async def test_a_tune_outlasts_the_providers_own_linger(cdn: FakeCdn, tmp_path: Path) -> None:
    """The provider still counts a stream that closed and refuses the tune ("max connections")
    though our count has room: the viewer is not turned away; the source is asked again within
    the first-byte time and plays, and probes on that account give way and hold back."""
    async with daemon_with(cdn, tmp_path, 2) as service, httpx.AsyncClient(timeout=20) as client:
        cdn.state.refuse_next = 3
        reader = Reader(client, url(service, numbers(service)[0])).start()
        try:
            await asyncio.wait_for(reader.opened.wait(), 15)
            assert reader.status == 200 and reader.first
            assert cdn.state.refused == 3
            budget = service.engine.budgets.get("p")
            assert budget.try_acquire_probe() is None  # held back after the refusals
            assert budget.linger_s == 0  # not taught: a source refused for good would teach 60 s
        finally:
            await reader.stop()


async def test_linger_then_close(cdn: FakeCdn, tmp_path: Path) -> None:
    """A viewer that comes back within the linger reuses the upstream (no new provider request);
    after the linger the provider's connection is closed."""
    async with (
        daemon_with(cdn, tmp_path, 2, linger=2.0) as service,
        httpx.AsyncClient(timeout=20) as client,
    ):
        number = numbers(service)[1]
        r = Reader(client, url(service, number)).start()
        await asyncio.wait_for(r.opened.wait(), 15)
        await r.stop()
        requests = cdn.state.requests
        again = Reader(client, url(service, number)).start()
        await asyncio.wait_for(again.opened.wait(), 15)
        assert again.status == 200 and cdn.state.requests == requests
        await again.stop()
        assert cdn.state.open_connections == 1  # lingering
        await until(lambda: cdn.state.open_connections == 0, "the linger to end", 5)


async def test_first_byte_bounded_across_sources(cdn: FakeCdn, tmp_path: Path) -> None:
    """Sources that answer and then send nothing: 503 806 after first_byte_timeout, not later."""
    async with (
        daemon_with(cdn, tmp_path, 2, first_byte_timeout=1.0, stall_timeout=30) as service,
        httpx.AsyncClient(timeout=20) as client,
    ):
        number = numbers(service)[1]
        cdn.state.stall_after = {"c1": 0}
        loop = asyncio.get_running_loop()
        start = loop.time()
        resp = await client.get(url(service, number))
        assert resp.status_code == 503 and resp.headers["X-HDHomeRun-Error"][:3] == "806"
        assert loop.time() - start < 5
        await until(lambda: cdn.state.open_connections == 0, "the stalled upstream to close", 5)


async def test_reconnect_keeps_viewers_fed(cdn: FakeCdn, tmp_path: Path) -> None:
    """While the upstream reconnects, viewers get valid TS (null packets) instead of silence, and
    then the stream again; one failover serves both viewers."""
    async with daemon_with(cdn, tmp_path, 2) as service, httpx.AsyncClient(timeout=30) as client:
        number = numbers(service)[1]
        got: list[bytes] = []
        done = asyncio.Event()

        async def read() -> None:
            async with client.stream("GET", url(service, number)) as resp:
                async for chunk in resp.aiter_raw():
                    got.append(chunk)
                    if done.is_set():
                        return

        other = Reader(client, url(service, number)).start()
        task = asyncio.create_task(read())
        try:
            await until(lambda: sum(map(len, got)) > 300_000, "bytes before the failure")
            cdn.state.max_connections = 0  # reconnects are refused for a while ...
            cdn.state.die_after = {"c1": 0}  # ... after the live connection is cut
            await until(
                lambda: bool(
                    REGISTRY.get_sample_value("plextuner_stream_failovers_total", {"bucket": "a"})
                ),
                "a failover",
                10,
            )
            # Nulls while reconnects are refused (given back before they came, the CDN can
            # take the first reconnect before a keep-alive is due: nothing to wait for)
            await until(lambda: _has_nulls(b"".join(got)), "keep-alive null packets", 10)
            cdn.state.max_connections, cdn.state.die_after = 2, {}
            data = b"".join(got)
            mark = sum(map(len, got))
            await until(lambda: sum(map(len, got)) > mark + 300_000, "the stream again", 15)
            assert len(data) > 0 and other.status == 200
            failovers = REGISTRY.get_sample_value(
                "plextuner_stream_failovers_total", {"bucket": "a"}
            )
            assert failovers is not None
            assert failovers <= 3  # once per upstream, not once per viewer
        finally:
            done.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await task
            await other.stop()


def _has_nulls(data: bytes) -> bool:
    start = data.find(bytes([SYNC, 0x1F, 0xFF]))
    return start >= 0 and pid_of(data[start : start + 188]) == NULL_PID


async def test_ffmpeg_decodes_through_forced_failovers(cdn: FakeCdn, tmp_path: Path) -> None:
    """`ffmpeg -i <our URL> -f null -` runs straight through two forced upstream losses."""
    ffmpeg = require_tool("ffmpeg")
    async with daemon_with(cdn, tmp_path, 2) as service:
        number = numbers(service)[1]
        proc = await asyncio.create_subprocess_exec(
            ffmpeg,
            "-v",
            "error",
            "-i",
            url(service, number),
            "-t",
            "40",
            "-f",
            "null",
            "-",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            for kill in (1, 2):
                await until(lambda: cdn.state.open_connections == 1, "ffmpeg to be streaming", 15)
                cdn.state.max_connections = 0  # reconnects refused for a moment ...
                cdn.state.die_after = {"c1": 0}  # ... after the live connection is cut

                def failed_over(n: int = kill) -> bool:
                    value = REGISTRY.get_sample_value(
                        "plextuner_stream_failovers_total", {"bucket": "a"}
                    )
                    return value is not None and value >= n

                await until(failed_over, f"failover {kill}", 10)
                cdn.state.max_connections, cdn.state.die_after = 2, {}
            async with asyncio.timeout(60):
                _, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]


async def test_pooled_second_account_carries_another_channel(cdn: FakeCdn, tmp_path: Path) -> None:
    """Two 1-connection logins of one panel: two channels stream, each account carrying one
    (the URL rewritten with the second account's credentials); a third channel is refused."""
    cdn.state.user_limit = {"user": 1, "second": 1}
    base = f"http://127.0.0.1:{cdn.port}/get.php"
    settings = daemon_settings(
        tmp_path / "data",
        providers=[
            {
                "name": "p",
                "m3u_url": f"{base}?username=user&password=pass&type=m3u_plus",
                "max_connections": 1,
                "accounts": [
                    {"m3u_url": f"{base}?username=second&password=pw2", "max_connections": 1}
                ],
            }
        ],
        buckets=[{"name": "a", "match": {"group": "A"}, "tuners": 8}],
        devices=1,
        stream={"viewer_wait": 1, "linger": 0},
    )
    async with running(settings) as service, httpx.AsyncClient(timeout=20) as client:
        chans = numbers(service)
        one = Reader(client, url(service, chans[0])).start()
        two = Reader(client, url(service, chans[1])).start()
        try:
            await asyncio.wait_for(one.opened.wait(), 15)
            await asyncio.wait_for(two.opened.wait(), 15)
            assert (one.status, two.status) == (200, 200)
            assert cdn.state.open_by_user == {"user": 1, "second": 1}
            refused = await client.get(url(service, chans[2]))
            assert refused.status_code == 503
            providers = {s["provider"] for s in service.engine.active_sessions()}
            assert providers == {"p", "p#2"}  # budget keys, never credentials
            assert max(cdn.state.peak_by_user.values()) == 1
        finally:
            await one.stop()
            await two.stop()
        await until(lambda: cdn.state.open_connections == 0, "both accounts to be released")


async def test_an_ended_upstream_lets_its_ring_go_without_the_collector(
    cdn: FakeCdn, tmp_path: Path
) -> None:
    """Once the linger is over, the upstream, its ring and its chunks are freed by reference
    counting. Its cancelled task kept the CancelledError, whose traceback held the upstream,
    which held the task: a cycle that only a full collection freed, rare in a daemon that
    streams (the collector counts objects, not bytes): each 8 s session of 20 viewers left
    85 MB of TS behind. The collector is off here, so only reference counting frees."""
    import gc

    from plextuner.stream.fanout import SharedUpstream
    from plextuner.stream.ring import Chunk

    def alive() -> list[object]:
        return [o for o in gc.get_objects() if isinstance(o, SharedUpstream | Chunk)]

    async with (
        daemon_with(cdn, tmp_path, 2, linger=0.2) as service,
        httpx.AsyncClient(timeout=20) as client,
    ):
        gc.collect()
        gc.disable()
        try:
            r = Reader(client, url(service, numbers(service)[0])).start()
            await asyncio.wait_for(r.opened.wait(), 15)
            await until(lambda: r.bytes > 200_000, "the viewer to read", 10)
            assert alive()
            await r.stop()
            hub = service.engine.hub
            await until(lambda: not hub.upstreams and not hub._tasks, "the upstream to end", 10)
            assert not alive()
        finally:
            gc.enable()
