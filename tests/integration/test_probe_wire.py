"""Probes against a server that misbehaves below HTTP (tests/fakes/wire.py): where the answer
stopped decides whose trouble it is, and a definite failure is the same on every attempt."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from plextuner.buckets.models import LineupEntry
from plextuner.config import PostvalidateConfig
from plextuner.ingest.models import Channel, Source
from plextuner.validate.pool import Job, JobKey, ProbePool
from plextuner.validate.probe import Engine, FfprobeEngine, NativeEngine
from plextuner.validate.result import ProbeResult, Scope, Verdict
from tests.conftest import require_tool
from tests.fakes.wire import WireServer

pytestmark = pytest.mark.integration

CLOSED = (Verdict.TRANSIENT, Scope.CHANNEL, True, "200, then closed")


@pytest.fixture
async def wire() -> AsyncIterator[WireServer]:
    server = WireServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


ENGINES = ["native", "ffprobe"]


def engine_for(kind: str, client: httpx.AsyncClient, ffprobe: str = "") -> Engine:
    if kind == "native":
        return NativeEngine(client)
    return FfprobeEngine(ffprobe or require_tool("ffprobe"), client)


async def probe(
    wire: WireServer, name: str, kind: str = "native", timeout: float = 10.0
) -> ProbeResult:
    # A client that follows no redirects, as a caller's own client may be: the engine must.
    async with httpx.AsyncClient(timeout=30) as client:
        return await engine_for(kind, client).probe(Source("p", wire.url(name)), timeout)


def shape(result: ProbeResult) -> tuple[Verdict, Scope, bool, str]:
    return result.verdict, result.scope, result.definite, result.reason


@pytest.mark.parametrize("kind", ENGINES)
@pytest.mark.parametrize("name", ["empty", "cut_length", "cut_chunked", "reset", "hls_cut_early"])
async def test_a_200_that_ends_without_a_stream_is_the_channels_definite_failure(
    wire: WireServer, name: str, kind: str
) -> None:
    """However the connection ends after the status line (no body, a body promised and not
    sent, a reset), it is the server's answer for this channel: it does not slow the host and,
    the same on every attempt, makes the channel dead. The server ended it: nothing of ours
    is left open there, so the host's next probe need not wait."""
    result = await probe(wire, name, kind)
    assert shape(result) == CLOSED
    assert not result.dropped


@pytest.mark.parametrize("kind", ENGINES)
@pytest.mark.parametrize(
    "name", ["healthy", "healthy_then_reset", "trickle", "slow_start", "redirect", "hls_cut"]
)
async def test_a_stream_that_started_is_judged_on_what_came(
    wire: WireServer, name: str, kind: str
) -> None:
    """A good start is a good channel: cut short, paused for good (judged on what came once
    it shows video, not timed out: the probe's timeout here is 60 s), slow to start after its
    first packet, behind a redirect, or listed by a playlist whose last line was cut."""
    result = await probe(wire, name, kind, timeout=60)
    assert result.verdict is Verdict.OK, result.reason
    assert result.video_codec == "h264"


@pytest.mark.parametrize("kind", ENGINES)
async def test_where_a_silent_channel_stopped(wire: WireServer, kind: str) -> None:
    """The ffprobe engine used to call both of these "timed out", the host's trouble."""
    stalled = await probe(wire, "stall", kind, timeout=1)
    assert shape(stalled) == (Verdict.TRANSIENT, Scope.CHANNEL, True, "200, then nothing")
    hung = await probe(wire, "hang", kind, timeout=1)
    assert shape(hung) == (Verdict.TRANSIENT, Scope.CHANNEL, False, "connected, no answer")
    assert stalled.dropped and hung.dropped  # we gave up on them: the host may still count them
    assert hung.silent and not stalled.silent  # no status line: dead only on evidence (pool)


@pytest.mark.parametrize("kind", ENGINES)
@pytest.mark.parametrize("name", ["text", "html", "hls_empty"])
async def test_a_body_that_is_not_a_stream_is_a_definite_failure(
    wire: WireServer, kind: str, name: str
) -> None:
    """A page, a text or a playlist with nothing in it, served as a 200: the server's answer
    for this channel, but one a panel also gives for a moment ("busy", "account full")."""
    result = await probe(wire, name, kind)
    assert (result.verdict, result.scope, result.definite, result.dropped) == (
        Verdict.TRANSIENT,
        Scope.CHANNEL,
        True,
        False,
    )


async def test_the_same_answer_on_the_retry_makes_the_channel_dead(wire: WireServer) -> None:
    """Through the scheduler: each such channel is asked twice, then dead; a healthy one once."""
    names = ["text", "html", "hls_empty", "empty", "cut_length", "healthy"]
    jobs = []
    for i, name in enumerate(names):
        source = Source("p", wire.url(name))
        channel = Channel(key=name, name=name, tvg_id="", group="", provider="p", sources=[source])
        jobs.append(Job(JobKey("a", str(i)), "a", LineupEntry(str(i), channel)))
    cfg = PostvalidateConfig(engine="native", workers=2, per_host=2, min_interval=0.0, jitter=0.0)
    async with httpx.AsyncClient() as client:
        results = await ProbePool(cfg, NativeEngine(client)).run(jobs)
    verdicts = {names[int(k.number)]: r.verdict for k, r in results.items()}
    assert verdicts == {n: Verdict.OK if n == "healthy" else Verdict.DEAD for n in names}
    assert all(
        r.reason.endswith("(every attempt)") for r in results.values() if r.verdict is Verdict.DEAD
    )
    assert {n: wire.requests[n] for n in names} == {n: 1 if n == "healthy" else 2 for n in names}


async def test_ffprobe_reads_the_bytes_not_the_url(wire: WireServer, tmp_path: Path) -> None:
    """One connection per probe, ours; ffprobe gets the bytes on stdin, so the stream URL (and
    the credentials in it) is never on a command line another user can read in `ps`."""
    real = require_tool("ffprobe")
    calls = tmp_path / "calls"
    spy = tmp_path / "ffprobe"
    spy.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {real} "$@"\n')
    spy.chmod(0o755)
    async with httpx.AsyncClient() as client:
        engine = engine_for("ffprobe", client, str(spy))
        result = await engine.probe(Source("p", wire.url("healthy")), 10)
    assert result.verdict is Verdict.OK
    argv = calls.read_text()
    assert "pipe:0" in argv
    assert "127.0.0.1" not in argv


@pytest.fixture
async def fmp4_hls(tmp_path: Path) -> AsyncIterator[str]:
    """A real fragmented-MP4 HLS stream (ffmpeg's own), served as files."""
    ffmpeg = require_tool("ffmpeg")
    out = tmp_path / "hls"
    out.mkdir()
    subprocess.run(
        [
            *(ffmpeg, "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"),
            *("-t", "3", "-c:v", "libx264", "-g", "25", "-f", "hls", "-hls_time", "1"),
            *("-hls_segment_type", "fmp4", "-hls_playlist_type", "vod", str(out / "index.m3u8")),
        ],
        check=True,
        timeout=60,
        env={**os.environ, "AV_LOG_FORCE_NOCOLOR": "1"},
    )
    app = web.Application()
    app.router.add_static("/", out)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/index.m3u8"
    finally:
        await runner.cleanup()


async def test_fmp4_hls_is_never_dropped(fmp4_hls: str) -> None:
    """Its segments are not MPEG-TS: the native engine cannot read their codecs (they are in
    the init segment) and leaves the channel unverified, never dead; ffprobe reads it whole."""
    async with httpx.AsyncClient() as client:
        native = await engine_for("native", client).probe(Source("p", fmp4_hls), 10)
        full = await engine_for("ffprobe", client).probe(Source("p", fmp4_hls), 10)
    assert native.verdict is Verdict.TRANSIENT
    assert native.scope is Scope.LOCAL
    assert (full.verdict, full.video_codec, full.height) == (Verdict.OK, "h264", 240)


async def test_the_clients_read_timeout_is_a_stall_too(wire: WireServer) -> None:
    """A client whose read timeout is shorter than the probe's: nothing after the 200 is still
    `200, then nothing`, not a closed connection."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=0.5)) as client:
        result = await NativeEngine(client).probe(Source("p", wire.url("stall")), 5)
    assert shape(result) == (Verdict.TRANSIENT, Scope.CHANNEL, True, "200, then nothing")
    assert result.dropped


@pytest.mark.parametrize("kind", ENGINES)
async def test_a_refused_connection_says_so(kind: str) -> None:
    """A port that refuses (a CDN's ban closing its listener) is the host's trouble, marked
    refused: the scheduler checks for the ban's end often (a refusal costs the server nothing).
    A host that never answers at the TCP level is not marked."""
    with socket.socket() as sock:  # a loopback port bound and never listened on: refused
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/live/1.ts"
        async with httpx.AsyncClient(timeout=5) as client:
            result = await engine_for(kind, client).probe(Source("p", url), 5.0)
    assert (result.verdict, result.scope, result.refused) == (Verdict.TRANSIENT, Scope.HOST, True)
    assert result.reason == "connection refused"
    async with httpx.AsyncClient(timeout=5) as client:  # a name that does not resolve
        other = await engine_for(kind, client).probe(Source("p", "http://no.invalid/x.ts"), 5.0)
    assert other.verdict is Verdict.TRANSIENT and not other.refused


@pytest.mark.parametrize("kind", ENGINES)
async def test_a_hang_on_a_kept_alive_connection_is_the_channels(kind: str) -> None:
    """The request that hangs goes out on the connection a healthy channel's probe left in the
    pool (no connect events this time): still "connected, no answer", the channel's, not the
    host's timeout (which slowed the host and, at its retry, made the ffprobe engine's run of
    the banning bench with hanging channels 2x its oracle and left them unverified)."""
    from tests.fakes.cdn import CdnHost, HostRules

    host = CdnHost(HostRules(max_concurrency=8, max_rate=100))
    host.channels.update({"fine": "ok", "hung": "hang"})
    await host.start()
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            engine = engine_for(kind, client)
            first = await engine.probe(Source("p", host.url("fine")), 10)
            assert first.verdict is Verdict.OK, first.reason
            hung = await engine.probe(Source("p", host.url("hung")), 1)
        assert host.stats.requests == 2
    finally:
        await host.stop()
    assert shape(hung) == (Verdict.TRANSIENT, Scope.CHANNEL, False, "connected, no answer")
    assert hung.silent and hung.dropped
