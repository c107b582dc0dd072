"""A probe that yields its provider connection to a viewer the moment one claims it."""

from __future__ import annotations

import asyncio

from plextuner.ingest.models import Source
from plextuner.stream.budget import Lease
from plextuner.validate.probe import Engine
from plextuner.validate.result import Origin, ProbeResult, Scope, Verdict


async def probe_or_yield(
    engine: Engine, source: Source, lease: Lease | None, timeout: float
) -> ProbeResult:
    """The engine's result, or a preempted result (`Origin.PREEMPTED`) the moment a viewer
    claims the lease (racing its `preempted` event; the probe is cancelled, never
    `uncancel()`ed, and waited for so the engine cleans up first)."""
    if lease is None:
        return await engine.probe(source, timeout)
    probing = asyncio.ensure_future(engine.probe(source, timeout))
    yielded = asyncio.ensure_future(lease.preempted.wait())
    try:
        done, _ = await asyncio.wait({probing, yielded}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        yielded.cancel()
        if not probing.done():
            probing.cancel()
            await asyncio.wait({probing})  # the engine cleans up (kills ffprobe) first
    if probing in done and not probing.cancelled():
        return probing.result()
    return ProbeResult(
        Verdict.TRANSIENT,
        "yielded its connection to a viewer",
        origin=Origin.PREEMPTED,
        scope=Scope.LOCAL,
    )
