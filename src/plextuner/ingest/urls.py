"""Stream URLs checked once, at parse time: what is published must be fetchable as written."""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

from plextuner.addresses import is_ip

_SCHEMES = frozenset({"http", "https"})
# Control characters, whitespace and the characters no URL may carry unescaped.
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f<>\"\\^`{}]")
_LABEL = r"\w(?:[\w-]{0,61}\w)?"  # \w: internationalised host names are real
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
MAX_URL = 8192  # longer stream URLs are garbage, and no CDN accepts them


# scheme ":" ["//" authority]: everything url_problem checks past the characters lives here.
_HEAD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(//([^/?#]*))?")


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a stream URL, or None when it can (scheme, host and port checked)."""
    if len(url) > MAX_URL:
        return "URL too long"
    if _BAD_CHARS.search(url):
        return "URL with spaces or control characters"
    head = _HEAD.match(url)
    if head is None:
        return _problem(url)
    # A playlist's URLs share a few hosts: the host/port verdict is computed once per authority
    # (it was half the parse time of a 50k-entry list).
    return _authority_problem(head.group(1).lower(), head.group(3) if head.group(2) else None)


@functools.lru_cache(maxsize=4096)
def _authority_problem(scheme: str, netloc: str | None) -> str | None:
    return _problem(f"{scheme}://{netloc}/" if netloc is not None else f"{scheme}:")


def _problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "URL with a malformed host or port"
    if parts.scheme.lower() not in _SCHEMES:
        return "unsupported URL scheme"
    if port == 0 or parts.netloc.endswith(":"):
        return "URL with a malformed host or port"
    host = parts.hostname or ""
    if not host or not (is_ip(host) or _HOST.match(host)):
        return "URL without a valid host"
    return None
