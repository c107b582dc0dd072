"""Merging entries from several providers and entries into channels with ordered backups."""

from __future__ import annotations

import re
from collections.abc import Iterable

from plextuner.ingest.models import Channel, Entry, Source, fold, stream_kind

# Quality and availability markers that differ between copies of the same channel.
_MARKERS = re.compile(
    r"\((?:\d{3,4}[pi]|4k|uhd|fhd|hd|sd)\)|\[(?:[^\]]*)\]|\b(?:fhd|uhd|hd|sd|4k|hevc|h265|backup)\b",
    re.IGNORECASE,
)
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise_name(name: str) -> str:
    """A comparison key: case, accents, quality markers and punctuation removed."""
    text = _MARKERS.sub(" ", fold(name))
    return _NON_WORD.sub(" ", text).strip()


def channel_key(entry: Entry) -> str:
    if entry.tvg_id:
        return "id:" + entry.tvg_id.casefold()
    return "name:" + (normalise_name(entry.name) or entry.name.casefold())


def merge_entries(entries: Iterable[Entry]) -> list[Channel]:
    """One channel per identity (tvg-id, else normalised name), in first-seen order.

    `entries` arrive in provider priority order, so the first entry names the channel and its
    sources are ordered as the providers are.
    """
    channels: dict[str, Channel] = {}
    get = channels.get
    # A group's name once, not once an entry (each was its own string from the parser: ~3 MB
    # of a 50k list with a few dozen groups, held by the channels and sources to the end)
    group_of: dict[str, str] = {}
    for entry in entries:
        tvg_id = entry.tvg_id
        key = "id:" + tvg_id.casefold() if tvg_id else channel_key(entry)  # channel_key, inlined
        group = group_of.setdefault(entry.group, entry.group)
        # Positional, in the models' field order (a test pins them): 50k of each per big list.
        headers = tuple(sorted(entry.headers.items())) if entry.headers else ()
        source = Source(entry.provider, entry.url, headers, stream_kind(entry.url), group)
        channel = get(key)
        if channel is None:
            channels[key] = Channel(
                key,
                _clean_name(entry.name),
                entry.tvg_id,
                group,
                entry.provider,
                entry.logo,
                entry.tvg_name,
                entry.chno,
                entry.tvg_shift,
                [source],
                [group] if group else [],
            )
            continue
        if group and group not in channel.groups:
            channel.groups.append(group)
        if all(s.url != source.url for s in channel.sources):
            channel.sources.append(source)
            if not channel.logo and entry.logo:
                channel.logo = entry.logo
    return list(channels.values())


# `(\s*(\[[^\]]*\]|\(\d{3,4}[pi]\)))+\s*$` spelled backwards and matched at the start of the
# reversed name: the same (maximal) run of trailing markers, without the forward pattern's
# attempt at every position of every name (a third of the merge of a 50k list).
_TRAILING_MARKERS_REVERSED = re.compile(r"\s*(?:(?:\][^\]]*\[|\)[pi]\d{3,4}\()\s*)+", re.IGNORECASE)


def _clean_name(name: str) -> str:
    """`BBC News HD (720p) [Geo-blocked]` → `BBC News HD`; the name Plex shows."""
    stripped = name.strip()
    if not stripped.endswith(("]", ")")):
        return stripped
    match = _TRAILING_MARKERS_REVERSED.match(stripped[::-1])
    cleaned = stripped[: len(stripped) - match.end()].strip() if match else stripped
    return cleaned or stripped
