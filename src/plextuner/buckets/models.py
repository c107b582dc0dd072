"""What bucketing produces: devices (one per bucket shard) with numbered channels."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from plextuner.ingest.models import Channel


class ChannelState(StrEnum):
    OK = "ok"
    DEAD = "dead"
    UNVERIFIED = "unverified"  # probed, but only transient answers: kept
    UNCHECKED = "unchecked"  # not probed (disabled, opted out, or cached)


@dataclass(slots=True)
class LineupEntry:
    number: str
    channel: Channel
    state: ChannelState = ChannelState.UNCHECKED
    hd: bool | None = None
    has_guide: bool | None = None


@dataclass(slots=True)
class Device:
    """One virtual HDHomeRun: a bucket, or one shard of a bucket larger than max_channels."""

    name: str
    bucket: str
    friendly_name: str
    device_id: str
    port: int
    tuners: int
    postvalidate: bool = True
    entries: list[LineupEntry] = field(default_factory=list)
