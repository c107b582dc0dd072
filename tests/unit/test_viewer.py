"""A viewer's queue as its HTTP handler reads it: first bytes at once, then a few writes a
second carrying everything that came meanwhile, never past its bound."""

from __future__ import annotations

import asyncio

import pytest

from plextuner.stream.viewer import SlowPolicy, Viewer

CHUNK = b"\x47" + b"\xff" * 187
BOUND = 188 * 400  # a held take writes at once past a quarter of it (100 packets)


def viewer() -> Viewer:
    return Viewer(1, "test", BOUND, SlowPolicy.SKIP)


async def held_take(v: Viewer) -> asyncio.Task[bytes | None]:
    """A take, after one chunk, held for an hour: only a full queue or a close ends it."""
    v.offer(CHUNK, [CHUNK])
    waiter = asyncio.create_task(v.take(asyncio.get_running_loop().time() + 3600))
    await asyncio.sleep(0)
    return waiter


async def test_first_bytes_go_out_at_once_and_alone() -> None:
    v = viewer()
    waiter = asyncio.create_task(v.take(0.0))
    await asyncio.sleep(0)  # the take is waiting for bytes
    v.offer(CHUNK, [CHUNK])
    async with asyncio.timeout(5):
        assert await waiter == CHUNK


async def test_a_held_take_carries_what_came_until_its_time() -> None:
    v = viewer()
    loop = asyncio.get_running_loop()
    v.offer(CHUNK, [CHUNK])
    not_before = loop.time() + 0.05
    waiter = asyncio.create_task(v.take(not_before))
    for i in range(5):  # arrivals during the hold
        await asyncio.sleep(0)
        v.offer(bytes([0x47, i]) + b"\xff" * 186, [CHUNK])
    async with asyncio.timeout(5):
        data = await waiter
    assert data is not None
    assert loop.time() >= not_before
    assert len(data) == 6 * 188  # one write, in arrival order
    assert [data[i * 188 + 1] for i in range(1, 6)] == [0, 1, 2, 3, 4]
    assert v.queued == 0


async def test_a_filling_queue_ends_the_hold_before_its_time() -> None:
    """Holding never pushes a viewer past its bound into a skip: at a quarter full it writes."""
    v = viewer()
    waiter = await held_take(v)
    for _ in range(98):
        v.offer(CHUNK, [CHUNK])
    await asyncio.sleep(0)
    assert not waiter.done()  # 99 packets: under a quarter of the bound
    v.offer(CHUNK, [CHUNK])
    async with asyncio.timeout(5):
        data = await waiter
    assert data is not None
    assert len(data) == 100 * 188


async def test_closing_ends_the_hold_and_the_rest_is_drained() -> None:
    v = viewer()
    waiter = await held_take(v)
    v.close("upstream lost")
    async with asyncio.timeout(5):
        assert await waiter == CHUNK
        assert await v.take(0.0) is None


@pytest.mark.parametrize("policy", [SlowPolicy.SKIP, SlowPolicy.DISCONNECT])
async def test_a_viewer_past_its_bound_is_skipped_or_dropped_as_before(policy: SlowPolicy) -> None:
    v = Viewer(1, "test", 188 * 4, policy)
    for _ in range(5):
        v.offer(CHUNK, [b"\x47PAT" + b"\xff" * 184, CHUNK])
    if policy is SlowPolicy.DISCONNECT:
        assert v.closed
        assert await v.take(0.0) is not None  # what was queued before the drop
        assert await v.take(0.0) is None
    else:
        assert not v.closed
        resumed = await v.take(0.0)
        assert resumed is not None
        assert resumed.startswith(b"\x47PAT")
