"""Probes against a server that misbehaves below HTTP (tests/fakes/wire.py): where the answer
stopped decides whose trouble it is, and a definite failure is the same on every attempt."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from plextuner.ingest.models import Source
from plextuner.validate.probe import NativeEngine
from plextuner.validate.result import ProbeResult, Scope, Verdict
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


async def native(wire: WireServer, name: str, timeout: float = 10.0) -> ProbeResult:
    # A client that follows no redirects, as a caller's own client may be: the engine must.
    async with httpx.AsyncClient(timeout=30) as client:
        return await NativeEngine(client).probe(Source("p", wire.url(name)), timeout)


def shape(result: ProbeResult) -> tuple[Verdict, Scope, bool, str]:
    return result.verdict, result.scope, result.definite, result.reason


@pytest.mark.parametrize("name", ["empty", "cut_length", "cut_chunked", "reset", "hls_cut_early"])
async def test_a_200_that_ends_without_a_stream_is_the_channels_definite_failure(
    wire: WireServer, name: str
) -> None:
    """However the connection ends after the status line (no body, a body promised and not
    sent, a reset), it is the server's answer for this channel: it does not slow the host and,
    the same on every attempt, makes the channel dead."""
    assert shape(await native(wire, name)) == CLOSED


@pytest.mark.parametrize(
    "name", ["healthy", "healthy_then_reset", "trickle", "redirect", "hls_cut"]
)
async def test_a_stream_that_started_is_judged_on_what_came(wire: WireServer, name: str) -> None:
    """A good start is a good channel: cut short, paused (judged a moment after, not timed
    out: the probe's timeout here is 60 s), behind a redirect, or listed by a playlist whose
    last line was cut."""
    result = await native(wire, name, timeout=60)
    assert result.verdict is Verdict.OK, result.reason


async def test_where_a_silent_channel_stopped(wire: WireServer) -> None:
    stalled = await native(wire, "stall", timeout=1)
    assert shape(stalled) == (Verdict.TRANSIENT, Scope.CHANNEL, True, "200, then nothing")
    hung = await native(wire, "hang", timeout=1)
    assert shape(hung) == (Verdict.TRANSIENT, Scope.CHANNEL, False, "connected, no answer")


async def test_a_body_that_is_not_a_stream_is_dead(wire: WireServer) -> None:
    assert (await native(wire, "text")).verdict is Verdict.DEAD
