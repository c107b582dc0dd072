"""The published state file: streamed per device, identical to the whole-tree encoding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from plextuner.buckets.models import ChannelState, Device, LineupEntry
from plextuner.datadir import DataDir
from plextuner.errors import StateError
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


def test_every_field_round_trips(tmp_path: Path) -> None:
    """The codec is derived from the dataclasses: every field, set to a non-default value,
    comes back equal (headers as pairs, enums by value, optionals, nested lists)."""
    channel = Channel(
        key="k",
        name="N",
        tvg_id="n.uk",
        group="News",
        provider="p",
        logo="http://l.example/n.png",
        tvg_name="N HD",
        chno="7",
        tvg_shift=-1.5,
        sources=[
            Source("p", "http://a.example/1.ts", (("User-Agent", "x"),), StreamKind.TS, "News"),
            Source("q", "http://b.example/1.m3u8", (), StreamKind.HLS, "Backup"),
        ],
        groups=["News", "UK"],
    )
    entry = LineupEntry("1000", channel, ChannelState.DEAD, True, False, "h264")
    device = Device("d", "b", "B", "15000000", 5004, 3, False, [entry])
    state = PublishedState([device], [ProviderState("p", 2, 1, 99, False, "err", 10)], 1.5, ["b"])
    save_state(DataDir(tmp_path), state)
    loaded = load_state(DataDir(tmp_path))
    assert loaded is not None
    assert loaded.devices == state.devices and loaded.providers == state.providers
    assert (loaded.published_at, loaded.held) == (1.5, ["b"])


def test_defaults_are_left_out_and_spelled_out_lines_still_load(tmp_path: Path) -> None:
    """Fields at their defaults are not written (an unprobed entry carries no probe fields);
    a line written with every field spelled out (before they were left out) loads the same."""
    state = _state(1)
    state.devices[0].entries[0].state = ChannelState.UNCHECKED  # the default
    paths = DataDir(tmp_path)
    save_state(paths, state)
    head, line, tail = paths.lineups.read_bytes().split(b"\n", 2)
    device = json.loads(line)
    first = device["entries"][0]
    assert set(first) == {"number", "channel"}, first
    assert "headers" not in first["channel"]["sources"][0]
    assert "logo" not in first["channel"]

    def spelled_out(value: Any, kind: Any) -> Any:
        """Every field a Struct leaves out, written with its default."""
        if isinstance(value, list):
            return [spelled_out(v, kind) for v in value]
        for f in msgspec.structs.fields(kind):
            if f.encode_name not in value:
                default = (
                    f.default_factory() if f.default_factory is not msgspec.NODEFAULT else f.default
                )
                value[f.encode_name] = msgspec.to_builtins(default)
        return value

    for entry in device["entries"]:
        spelled_out(entry, LineupEntry)
        spelled_out(entry["channel"], Channel)
        spelled_out(entry["channel"]["sources"], Source)
    assert first["video_codec"] is None and first["state"] == "unchecked"
    paths.lineups.write_bytes(b"\n".join([head, json.dumps(device).encode(), tail]))
    loaded = load_state(paths)
    assert loaded is not None and loaded.devices == state.devices


def test_format_1_files_still_load(tmp_path: Path) -> None:
    """A lineups.json written by an older version (one JSON document, format 1) loads."""
    (tmp_path / "lineups.json").write_text(
        json.dumps(
            {
                "version": 1,
                "published_at": 5.0,
                "held": [],
                "config_digest": "abc",
                "providers": [{"name": "p", "entries": 3}],
                "devices": [
                    {
                        "name": "d",
                        "device_id": "15000000",
                        "port": 5004,
                        "channels": [
                            {
                                "number": "1000",
                                "key": "k",
                                "name": "N",
                                "group": "G",
                                "provider": "p",
                                "state": "ok",
                                "sources": [{"provider": "p", "url": "http://a.example/1.ts"}],
                            }
                        ],
                    }
                ],
            }
        )
    )
    loaded = load_state(DataDir(tmp_path))
    assert loaded is not None and loaded.config_digest == "abc"
    assert loaded.devices[0].entries[0].channel.groups == ["G"]


def test_malformed_state_is_a_clear_error(tmp_path: Path) -> None:
    """Wrong types in a field name the field; nothing half-loaded."""
    save_state(DataDir(tmp_path), _state(1))
    path = tmp_path / "lineups.json"
    path.write_text(path.read_text().replace('"port":5004', '"port":"5004"'))
    with pytest.raises(StateError, match=r"Device\.port"):
        load_state(DataDir(tmp_path))
