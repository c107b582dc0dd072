"""Extended M3U parsing that survives real playlists: parse what can be parsed, report the rest."""

from __future__ import annotations

from pathlib import Path

from plextuner.errors import IngestError
from plextuner.ingest.lines import decode_line, decode_playlist, file_blocks
from plextuner.ingest.m3udirect import split_kodi_url
from plextuner.ingest.m3uhalf import PlaylistHelpers, parse_in_two, split
from plextuner.ingest.m3uline import parse_attrs, split_extinf
from plextuner.ingest.m3uwalk import parse_blocks
from plextuner.ingest.models import Entry, ParseReport

__all__ = ["parse_attrs", "parse_m3u", "parse_m3u_file", "split_extinf", "split_kodi_url"]

SNIFF_BYTES = 2048


def sniff_rejection(text: str) -> str | None:
    """A reason when the body is plainly not a channel list."""
    head = text[:2048].lstrip().lower()
    if not head:
        return "empty playlist"
    if head.startswith(("<!doctype html", "<html", "<?xml", "<head", "<body")):
        return "got an HTML/XML page instead of an M3U playlist"
    if head.startswith(("{", "[")):
        return "got JSON instead of an M3U playlist"
    if "#ext-x-targetduration" in head or "#ext-x-media-sequence" in head:
        return "this is an HLS media playlist, not a channel list"
    if "\x00" in head:
        return "binary data, not an M3U playlist"
    return None


def parse_m3u(
    data: bytes | str, source: str, provider: str = ""
) -> tuple[list[Entry], ParseReport]:
    """Parse an extended M3U playlist; raise IngestError when nothing in it is a channel."""
    text = decode_playlist(data) if isinstance(data, bytes) else data.removeprefix("\ufeff")
    reason = sniff_rejection(text)
    if reason:
        raise IngestError(source, reason)
    return parse_blocks([text], source, provider)


def parse_m3u_file(
    path: Path, source: str, provider: str = "", helpers: PlaylistHelpers | None = None
) -> tuple[list[Entry], ParseReport]:
    """The same from a file, a line at a time: memory follows the entries, not the file size.
    `helpers`: a big file's second part may be parsed by one of them meanwhile (m3uhalf.py)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
            reason = sniff_rejection(decode_line(head.removeprefix(b"\xef\xbb\xbf")))
            if reason:
                raise IngestError(source, reason)
            fh.seek(0)
            part = split(fh, helpers, source, provider) if helpers is not None else None
            if part is not None:
                return parse_in_two(fh, part)
            return parse_blocks(file_blocks(fh), source, provider)
    except OSError as err:
        raise IngestError(source, f"cannot read the playlist: {err.strerror or err}") from None
