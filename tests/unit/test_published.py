"""The published state file: streamed per device, identical to the whole-tree encoding."""

from __future__ import annotations

import json
from pathlib import Path

from plextuner.buckets.models import ChannelState, Device, LineupEntry
from plextuner.datadir import DataDir
from plextuner.ingest.models import Channel, Source, StreamKind
from plextuner.state.published import (
    ProviderState,
    PublishedState,
    load_state,
    save_state,
    state_chunks,
    state_json,
)


def _state(devices: int) -> PublishedState:
    out = []
    for d in range(devices):
        entries = [
            LineupEntry(
                number=str(1000 * (d + 1) + i),
                channel=Channel(
                    key=f"k{d}-{i}",
                    name=f'Ch "{d}" {i} ünï',
                    tvg_id=f"ch{i}.uk",
                    group="News",
                    provider="p",
                    sources=[Source("p", f"http://cdn.example/{d}/{i}.ts", kind=StreamKind.TS)],
                ),
                state=ChannelState.OK,
            )
            for i in range(3)
        ]
        out.append(Device(f"dev{d}", "b", "B", f"1500000{d}", 5004 + d, 2, entries=entries))
    return PublishedState(devices=out, providers=[ProviderState("p", entries=9)], held=["b"])


def test_chunks_equal_whole_tree() -> None:
    """Streaming the file gives exactly the JSON the whole tree gives, for 0, 1 and 3 devices."""
    for n in (0, 1, 3):
        state = _state(n)
        assert json.loads(b"".join(state_chunks(state))) == state_json(state)


def test_round_trip(tmp_path: Path) -> None:
    """What is saved loads back with the same devices, numbers, sources and providers."""
    state = _state(2)
    save_state(DataDir(tmp_path), state)
    loaded = load_state(DataDir(tmp_path))
    assert loaded is not None
    assert state_json(loaded) == state_json(state)


def test_repr_is_short() -> None:
    """asyncio.run reprs the main task's result on exit: a state's repr must not be the tree."""
    assert len(repr(_state(50))) < 200
