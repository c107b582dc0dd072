"""The published state: every device's lineup, serialised once, written atomically."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any

from plextuner.buckets.models import Device
from plextuner.datadir import DataDir
from plextuner.errors import StateError
from plextuner.fileio import read_json, remove_stale_temp, write_atomic
from plextuner.state.codec import decode, decode_json, encode, encode_json
from plextuner.state.legacy import LEGACY_VERSION, legacy_device, legacy_state

FORMAT_VERSION = 2  # derived from the dataclasses (state/codec.py); 1 is still read


@dataclass(slots=True)
class ProviderState:
    name: str
    max_connections: int | None = None
    active_connections: int | None = None
    exp_date: int | None = None
    ok: bool = True
    error: str | None = None
    entries: int | None = None  # entries accepted last time: the baseline for the shrink check


@dataclass(slots=True, repr=False)
class PublishedState:
    devices: list[Device]
    providers: list[ProviderState] = field(default_factory=list)
    published_at: float = field(default_factory=time.time)
    held: list[str] = field(default_factory=list)  # buckets kept at their last good lineup
    config_digest: str = ""  # the settings it was built from: a changed config means rebuild

    def __repr__(self) -> str:  # never the whole tree (it may hold 100k channels)
        return f"PublishedState(devices={len(self.devices)}, published_at={self.published_at})"

    def device(self, name: str) -> Device | None:
        return next((d for d in self.devices if d.name == name), None)


def state_json(state: PublishedState) -> dict[str, Any]:
    """The whole state as one JSON tree (the file holds the same, one device a line)."""
    return {**_head(state), "devices": [encode(d) for d in state.devices]}


def _head(state: PublishedState) -> dict[str, Any]:
    fields = encode(PublishedState(devices=[], **{f: getattr(state, f) for f in _HEAD_FIELDS}))
    fields.pop("devices", None)
    return {"version": FORMAT_VERSION, **fields, "devices": []}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def state_chunks(state: PublishedState) -> Iterator[bytes]:
    """`state_json` encoded one device a line: a 100k-channel state never exists as one tree
    and one string (that doubled the peak memory of a big refresh). Still one JSON document."""
    yield _dumps(_head(state))[: -len(_TAIL)] + b"\n"
    for i, device in enumerate(state.devices):
        yield (b"," if i else b"") + encode_json(device) + b"\n"
    yield _TAIL + b"\n"


_TAIL = b"]}"


_HEAD_FIELDS = ("providers", "published_at", "held", "config_digest")


def save_state(paths: DataDir, state: PublishedState) -> None:
    write_atomic(paths.lineups, state_chunks(state))


def load_state(paths: DataDir, *, devices: bool = True) -> PublishedState | None:
    """The last published state, None when nothing was ever published. `devices=False` reads
    only its head (providers, digest, times: one line), with no device in `devices`."""
    remove_stale_temp(paths.root)
    path = paths.lineups
    try:
        with path.open("rb") as fh:
            head = fh.readline()
            if not head.endswith(b'"devices":[\n'):  # written whole (format 1, older versions)
                state = legacy_state(read_json(path))
                if not devices:
                    state.devices = []
                return state
            return _read_lines(head, fh if devices else None)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StateError(f"cannot read {path}: {err.strerror or err}") from err


def _legacy_line(raw: bytes) -> Device:
    return legacy_device(json.loads(raw))


def _read_lines(head: bytes, fh: IO[bytes] | None) -> PublishedState:
    """One device decoded at a time, so the raw tree of a big state is never whole in memory."""
    try:
        first = json.loads(head[:-1] + _TAIL)
        version = first.pop("version", None) if isinstance(first, dict) else None
        if version == LEGACY_VERSION:
            device_from: Callable[[bytes], Device] = _legacy_line
            state = legacy_state({**first, "version": LEGACY_VERSION})
        elif version == FORMAT_VERSION:
            device_from = partial(decode_json, Device)
            state = decode(PublishedState, first)
        else:
            raise StateError("published state has an unknown format")
        if fh is None:
            return state
        for line in fh:
            if line.rstrip() == _TAIL:
                return state
            state.devices.append(device_from(line.lstrip(b",")))
    except ValueError as err:
        raise StateError(f"published state is corrupt: {err}") from err
    raise StateError("published state is truncated")
