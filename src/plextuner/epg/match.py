"""Matching lineup channels to guide channels: tvg-id first, then normalised display names."""

from __future__ import annotations

from plextuner.buckets.models import LineupEntry
from plextuner.epg.xmltv import GuideChannel
from plextuner.ingest.dedupe import normalise_name


class Matcher:
    def __init__(self) -> None:
        self.by_id: dict[str, str] = {}
        self.by_name: dict[str, str] = {}
        self.icons: dict[str, str] = {}

    def add(self, channel: GuideChannel) -> None:
        self.by_id.setdefault(channel.id.casefold(), channel.id)
        for name in channel.names:
            key = normalise_name(name)
            if key:
                self.by_name.setdefault(key, channel.id)
        if channel.icon:
            self.icons.setdefault(channel.id, channel.icon)

    def match(self, entry: LineupEntry) -> str | None:
        ch = entry.channel
        if ch.tvg_id and ch.tvg_id.casefold() in self.by_id:
            return self.by_id[ch.tvg_id.casefold()]
        for name in (ch.name, ch.tvg_name.replace("_", " ")):
            key = normalise_name(name) if name else ""
            if key and key in self.by_name:
                return self.by_name[key]
        return None
