"""Sticky placement: which device each channel was published in, and each device's port.

Persisted beside numbers.json so that a reordered or re-grouped provider list, a new bucket or a
new shard moves nothing Plex already knows: a channel keeps its device while that device's rule
still matches it, and a device keeps its port while it exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import msgspec

from plextuner.fileio import read_json_as, write_json

FORMAT_VERSION = 1
MAX_PORT = 65535


class _AssignmentsFile(msgspec.Struct):
    """What save() writes, as one type (ports in range: a bool is not a port)."""

    version: int = 0
    channels: dict[str, tuple[str, str]] = {}
    ports: dict[str, Annotated[int, msgspec.Meta(gt=0, le=MAX_PORT)]] = {}
    rules: dict[str, str] = {}


@dataclass(slots=True)
class Assignments:
    """`channels`: channel key → (bucket, device name); `ports`: device name → port;
    `rules`: bucket → fingerprint of the match rule it was last published with (so a rule the
    user added or changed since can be told from one that was always there)."""

    channels: dict[str, tuple[str, str]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Assignments:
        """The file's content; a missing or malformed file (or part of one) is simply ignored:
        the worst case is the placement of a fresh install, never a failed refresh."""
        raw = read_json_as(path, _AssignmentsFile)
        if isinstance(raw, _AssignmentsFile):  # as save() wrote it: checked whole, in C
            if raw.version != FORMAT_VERSION:
                return cls()
            return cls(channels=raw.channels, ports=raw.ports, rules=raw.rules)
        if not isinstance(raw, dict) or raw.get("version") != FORMAT_VERSION:
            return cls()
        return cls(
            channels=_placements(raw.get("channels")),
            ports=_port_map(raw.get("ports")),
            rules=_str_map(raw.get("rules")),
        )

    def save(self, path: Path) -> None:
        write_json(  # the (bucket, device) pairs as JSON arrays: msgspec writes tuples so
            path,
            {
                "version": FORMAT_VERSION,
                "channels": self.channels,
                "ports": self.ports,
                "rules": self.rules,
            },
        )

    def buckets(self) -> dict[str, str]:
        """Channel key → the bucket it was last published in."""
        return {key: bucket for key, (bucket, _) in self.channels.items()}


def shard_index(bucket: str, device: str) -> int | None:
    """0 for the bucket's own device, n-1 for `<bucket>-<n>`, None when not one of its shards."""
    if device == bucket:
        return 0
    prefix = bucket + "-"
    tail = device[len(prefix) :] if device.startswith(prefix) else ""
    return int(tail) - 1 if tail.isdigit() and int(tail) >= 2 else None


def _placements(value: Any) -> dict[str, tuple[str, str]]:
    if not isinstance(value, dict):
        return {}
    return {
        k: (v[0], v[1])
        for k, v in value.items()
        if isinstance(k, str) and isinstance(v, list) and len(v) == 2 and _strs(v)
    }


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _strs(values: list[Any]) -> bool:
    return all(isinstance(v, str) for v in values)


def _port_map(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {
        k: v
        for k, v in value.items()
        if isinstance(k, str) and type(v) is int and 0 < v <= MAX_PORT  # bool is not a port
    }


def allocate_ports(
    devices: list[tuple[str, int | None]], first: int, known: dict[str, int]
) -> dict[str, int]:
    """Ports for devices in order: an explicit port wins, then the device's remembered port when
    no other device holds it, then the lowest free port from `first` (on a fresh install that is
    `first + index`, the documented layout)."""
    taken = {p for _, p in devices if p is not None}
    out: dict[str, int] = {name: explicit for name, explicit in devices if explicit is not None}
    for name, explicit in devices:
        if explicit is None and (port := known.get(name)) is not None and port not in taken:
            out[name] = port
            taken.add(port)
    candidate = first
    for name, explicit in devices:
        if name in out or explicit is not None:
            continue
        while candidate in taken:
            candidate += 1
        if candidate > MAX_PORT:
            raise ValueError("no free port left for the devices")  # pragma: no cover
        out[name] = candidate
        taken.add(candidate)
    return out
