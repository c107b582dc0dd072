"""Format 1 of `lineups.json` (before the derived codec), read once after an upgrade.

Frozen: new fields are persisted by `state/codec.py` and never added here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plextuner.buckets.models import ChannelState, Device, LineupEntry
from plextuner.errors import StateError
from plextuner.ingest.models import Channel, Source, StreamKind

if TYPE_CHECKING:
    from plextuner.state.published import PublishedState

LEGACY_VERSION = 1


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


def legacy_device(raw: dict[str, Any]) -> Device:
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


def legacy_state(raw: Any) -> PublishedState:
    from plextuner.state.published import ProviderState, PublishedState

    if not isinstance(raw, dict) or raw.get("version") != LEGACY_VERSION:
        raise StateError("published state has an unknown format")
    try:
        return PublishedState(
            devices=[legacy_device(d) for d in raw["devices"]],
            providers=[ProviderState(**p) for p in raw.get("providers", [])],
            published_at=float(raw.get("published_at", 0)),
            held=list(raw.get("held", [])),
            config_digest=str(raw.get("config_digest", "")),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise StateError(f"published state is malformed: {err}") from err
