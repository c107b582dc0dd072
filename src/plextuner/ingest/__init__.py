"""The indexer: provider playlists and APIs into de-duplicated channels."""

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
