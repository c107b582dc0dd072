"""The lines around an M3U entry's `#EXTINF`: `#EXTVLCOPT:` and `#KODIPROP:` directives before
its URL, Kodi-style `|headers` after it, and the entry finished at its URL line."""

from __future__ import annotations

from urllib.parse import parse_qsl

from plextuner.ingest.m3uline import HEADER_NAMES
from plextuner.ingest.models import Entry, ParseReport
from plextuner.ingest.urls import url_problem


def split_kodi_url(url: str) -> tuple[str, dict[str, str]]:
    """`http://x/s.ts|User-Agent=a&Referer=b` → URL and headers."""
    if "|" not in url:
        return url, {}
    base, _, suffix = url.partition("|")
    headers = {}
    for key, value in parse_qsl(suffix, keep_blank_values=False):
        name = HEADER_NAMES.get(key.lower(), key)
        headers[name] = value
    return base.strip(), headers


class Pending:
    """Directive lines collected between an #EXTINF and its URL."""

    __slots__ = ("entry", "headers", "kodiprops")

    def __init__(self) -> None:
        self.entry: Entry | None = None
        self.headers: dict[str, str] = {}
        self.kodiprops: dict[str, str] = {}


def vlcopt(option: str, pending: Pending) -> None:
    key, sep, value = option.partition("=")
    name = HEADER_NAMES.get(key.strip().lower())
    if sep and name and value.strip():
        pending.headers[name] = value.strip()


def vlcopt_headers(lines: str) -> dict[str, str]:
    """The headers of `#EXTVLCOPT:` lines, each ending in a newline (a CR before it allowed),
    as the line walk reads them one at a time: split at newlines only, as it splits a block."""
    pending = Pending()
    for line in lines.split("\n")[:-1]:
        vlcopt(line[11:], pending)
    return pending.headers


def kodiprop(prop: str, pending: Pending) -> None:
    key, sep, value = prop.partition("=")
    if not sep:
        return
    key = key.strip().lower()
    pending.kodiprops[key] = value.strip()
    if key.endswith(("stream_headers", "manifest_headers")):
        for hkey, hval in parse_qsl(value.strip()):
            pending.headers[HEADER_NAMES.get(hkey.lower(), hkey)] = hval


def finish(pending: Pending, line: str, report: ParseReport) -> Entry | None:
    entry = pending.entry
    assert entry is not None
    url, url_headers = split_kodi_url(line) if "|" in line else (line, None)
    problem = url_problem(url)
    if problem is not None:
        report.skip(problem)
        return None
    if ".mpd" in url and (url.endswith(".mpd") or ".mpd?" in url):
        report.skip("DASH (.mpd) stream, cannot be served as MPEG-TS")
        return None
    entry.url = url
    if pending.headers or url_headers:
        entry.headers = {**entry.headers, **pending.headers, **(url_headers or {})}
    if pending.kodiprops:
        for key, value in pending.kodiprops.items():
            entry.attrs[f"kodiprop:{key}"] = value
    return entry
