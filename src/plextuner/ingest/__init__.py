"""The indexer: provider playlists and APIs into de-duplicated channels.

Its names load with their module on first use: a process that needs only the models (a guide
writer, epg/writehalf.py) does not import the parsers and their config (pydantic, 30 MB).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plextuner.lazy import names_of

if TYPE_CHECKING:
    from plextuner.ingest.dedupe import merge_entries, normalise_name
    from plextuner.ingest.m3u import parse_m3u, parse_m3u_file
    from plextuner.ingest.models import (
        AccountInfo,
        Channel,
        Entry,
        ParseReport,
        ProviderResult,
        Source,
        StreamKind,
    )

_WHERE = {
    "merge_entries": "dedupe",
    "normalise_name": "dedupe",
    "parse_m3u": "m3u",
    "parse_m3u_file": "m3u",
    "AccountInfo": "models",
    "Channel": "models",
    "Entry": "models",
    "ParseReport": "models",
    "ProviderResult": "models",
    "Source": "models",
    "StreamKind": "models",
}
__all__ = [
    "AccountInfo",
    "Channel",
    "Entry",
    "ParseReport",
    "ProviderResult",
    "Source",
    "StreamKind",
    "merge_entries",
    "normalise_name",
    "parse_m3u",
    "parse_m3u_file",
]


__getattr__ = names_of(__name__, _WHERE)
