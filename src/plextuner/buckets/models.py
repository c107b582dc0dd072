"""What bucketing produces: devices (one per bucket shard) with numbered channels."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import msgspec

from plextuner.ingest.models import Channel


class ChannelState(StrEnum):
    OK = "ok"
    DEAD = "dead"
    UNVERIFIED = "unverified"  # probed, but only transient answers: kept
    UNCHECKED = "unchecked"  # not probed (disabled, opted out, or cached)


class LineupEntry(msgspec.Struct, omit_defaults=True, gc=False):  # untracked: see Source
    number: str
    channel: Channel
    state: ChannelState = ChannelState.UNCHECKED
    hd: bool | None = None
    has_guide: bool | None = None
    guide_id: str | None = None  # the guide channel matched, if any
    guide_match: str | None = None  # how (a MatchTier value: tvg-id, name, fuzzy, manual, ...)
    guide_score: float | None = None  # the match's confidence, 0..1
    video_codec: str | None = None  # as ffprobe names it (h264, mpeg2video, hevc), when probed
    state_reason: str | None = None  # the probe's reason for `state` ("HTTP 404", "no video")
    checked_at: float | None = None  # when that probe result was had


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
    # channels the last probe run found dead: not served, kept so people can see why
    dropped: list[LineupEntry] = field(default_factory=list)


ID_SUFFIX = ".plextuner"


def channel_id(number: str, style: str = "xmltv") -> str:
    """The guide's channel id for a GuideNumber: `1000.plextuner` (the dotted form XMLTV asks for,
    so tv_validate_file accepts the guide), or the bare number (`epg.channel_ids: number`). Plex
    matches guide channels to the lineup by the number, which is always a display-name."""
    return number if style == "number" else number + ID_SUFFIX
