"""The published state: every device's lineup, serialised once, written atomically."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from plextuner.buckets.models import ChannelState, Device, LineupEntry
from plextuner.datadir import DataDir
from plextuner.errors import StateError
from plextuner.fileio import read_json, remove_stale_temp, write_atomic
from plextuner.ingest.models import Channel, Source, StreamKind

FORMAT_VERSION = 1


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


def _source_json(s: Source) -> dict[str, Any]:
    out: dict[str, Any] = {"provider": s.provider, "url": s.url, "kind": s.kind.value}
    if s.headers:
        out["headers"] = dict(s.headers)
    if s.group:
        out["group"] = s.group
    return out


def _entry_json(e: LineupEntry) -> dict[str, Any]:
    ch = e.channel
    out: dict[str, Any] = {
        "number": e.number,
        "key": ch.key,
        "name": ch.name,
        "group": ch.group,
        "provider": ch.provider,
        "state": e.state.value,
        "sources": [_source_json(s) for s in ch.sources],
    }
    if ch.groups and ch.groups != [ch.group]:
        out["groups"] = ch.groups
    # Empty optional fields are left out: the file is rewritten on every publish.
    for name, value in (
        ("tvg_id", ch.tvg_id),
        ("tvg_name", ch.tvg_name),
        ("logo", ch.logo),
        ("chno", ch.chno),
        ("tvg_shift", ch.tvg_shift),
        ("hd", e.hd),
        ("video_codec", e.video_codec),
        ("has_guide", e.has_guide),
    ):
        if value is not None and value != "":
            out[name] = value  # noqa: PERF403 - the pairs are spelt out above for the key order
    return out


def device_json(d: Device) -> dict[str, Any]:
    return {
        "name": d.name,
        "bucket": d.bucket,
        "friendly_name": d.friendly_name,
        "device_id": d.device_id,
        "port": d.port,
        "tuners": d.tuners,
        "postvalidate": d.postvalidate,
        "channels": [_entry_json(e) for e in d.entries],
    }


def state_json(state: PublishedState) -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "published_at": state.published_at,
        "held": state.held,
        "config_digest": state.config_digest,
        "providers": [provider_json(p) for p in state.providers],
        "devices": [device_json(d) for d in state.devices],
    }


def provider_json(p: ProviderState) -> dict[str, Any]:
    return {
        "name": p.name,
        "max_connections": p.max_connections,
        "active_connections": p.active_connections,
        "exp_date": p.exp_date,
        "ok": p.ok,
        "error": p.error,
        "entries": p.entries,
    }


def _entry_from(raw: dict[str, Any]) -> LineupEntry:
    sources = [
        Source(
            provider=s["provider"],
            url=s["url"],
            headers=tuple(sorted(s.get("headers", {}).items())),
            kind=StreamKind(s.get("kind", "other")),
            group=str(s.get("group", "")),
        )
        for s in raw.get("sources", [])
    ]
    group = raw.get("group", "")
    groups = raw.get("groups")
    channel = Channel(
        key=raw["key"],
        name=raw["name"],
        tvg_id=raw.get("tvg_id", ""),
        group=group,
        provider=raw.get("provider", ""),
        logo=raw.get("logo", ""),
        tvg_name=raw.get("tvg_name", ""),
        chno=raw.get("chno", ""),
        tvg_shift=raw.get("tvg_shift"),
        sources=sources,
        groups=[str(g) for g in groups] if isinstance(groups, list) else ([group] if group else []),
    )
    return LineupEntry(
        number=str(raw["number"]),
        channel=channel,
        state=ChannelState(raw.get("state", "unchecked")),
        hd=raw.get("hd"),
        video_codec=raw.get("video_codec"),
        has_guide=raw.get("has_guide"),
    )


def device_from(raw: dict[str, Any]) -> Device:
    return Device(
        name=raw["name"],
        bucket=raw.get("bucket", raw["name"]),
        friendly_name=raw.get("friendly_name", raw["name"]),
        device_id=raw["device_id"],
        port=int(raw["port"]),
        tuners=int(raw.get("tuners", 2)),
        postvalidate=bool(raw.get("postvalidate", True)),
        entries=[_entry_from(c) for c in raw.get("channels", [])],
    )


def state_from(raw: Any) -> PublishedState:
    if not isinstance(raw, dict) or raw.get("version") != FORMAT_VERSION:
        raise StateError("published state has an unknown format")
    try:
        return PublishedState(
            devices=[device_from(d) for d in raw["devices"]],
            providers=[ProviderState(**p) for p in raw.get("providers", [])],
            published_at=float(raw.get("published_at", 0)),
            held=list(raw.get("held", [])),
            config_digest=str(raw.get("config_digest", "")),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise StateError(f"published state is malformed: {err}") from err


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def state_chunks(state: PublishedState) -> Iterator[bytes]:
    """`state_json` encoded one device a line: a 100k-channel state never exists as one tree
    and one string (that doubled the peak memory of a big refresh). Still one JSON document."""
    head = state_json(PublishedState(devices=[], **{f: getattr(state, f) for f in _HEAD_FIELDS}))
    yield _dumps(head)[: -len(_TAIL)] + b"\n"
    for i, device in enumerate(state.devices):
        yield (b"," if i else b"") + _dumps(device_json(device)) + b"\n"
    yield _TAIL + b"\n"


_TAIL = b"]}"


_HEAD_FIELDS = ("providers", "published_at", "held", "config_digest")


def save_state(paths: DataDir, state: PublishedState) -> None:
    write_atomic(paths.lineups, state_chunks(state))


def load_state(paths: DataDir) -> PublishedState | None:
    """The last published state, None when nothing was ever published."""
    remove_stale_temp(paths.root)
    path = paths.lineups
    try:
        with path.open("rb") as fh:
            head = fh.readline()
            if not head.endswith(b'"devices":[\n'):  # written whole (older versions)
                return state_from(read_json(path))
            return _read_lines(head, fh)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StateError(f"cannot read {path}: {err.strerror or err}") from err


def _read_lines(head: bytes, fh: IO[bytes]) -> PublishedState:
    """One device decoded at a time, so the raw tree of a big state is never whole in memory."""
    try:
        state = state_from(json.loads(head[:-1] + _TAIL))
        for line in fh:
            if line.rstrip() == _TAIL:
                return state
            state.devices.append(device_from(json.loads(line.lstrip(b","))))
    except ValueError as err:
        raise StateError(f"published state is corrupt: {err}") from err
    raise StateError("published state is truncated")
