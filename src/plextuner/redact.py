"""Removing credentials from anything that may be printed, logged, served or exported."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

# Query keys whose values are credentials in provider and Plex URLs.
SECRET_QUERY_KEYS = frozenset(
    {
        "username",
        "user",
        "password",
        "pass",
        "pwd",
        "token",
        "x-plex-token",
        "api_key",
        "apikey",
        "key",
        "auth",
        "secret",
        "access_token",
    }
)
# Xtream stream/catch-up paths carry the account: /live/<user>/<pass>/<id>.ts
_XTREAM_PATH = re.compile(r"/(live|movie|series|timeshift)/([^/\s?#]+)/([^/\s?#]+)/", re.IGNORECASE)
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]*[^\s\"'<>:,;.)]")


def redact_url(url: str) -> str:
    """Return `url` without userinfo, credential query values or Xtream path credentials."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, MASK if k.lower() in SECRET_QUERY_KEYS else v) for k, v in pairs], safe="*"
        )
    path = _XTREAM_PATH.sub(lambda m: f"/{m.group(1)}/{MASK}/{MASK}/", parts.path)
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Redact every URL inside free text, then every known secret value."""
    out = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    for secret in secrets:
        if secret and len(secret) >= 3:
            out = out.replace(secret, MASK)
    return out


def host_of(url: str) -> str:
    """The host[:port] of a URL, safe to use as a metric label."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "local"
        port = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError:
        return "invalid"
    return f"{host}:{port}" if port else host


class SecretRegistry:
    """Every secret value the process knows, so free text can be scrubbed of them."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and len(value) >= 3:
                self._values.add(value)

    def clear(self) -> None:
        self._values.clear()

    def scrub(self, text: str) -> str:
        return redact_text(text, sorted(self._values, key=len, reverse=True))


SECRETS = SecretRegistry()
