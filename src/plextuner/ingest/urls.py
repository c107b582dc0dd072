"""Stream URLs checked once, at parse time: what is published must be fetchable as written."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from plextuner.addresses import is_ip

_SCHEMES = frozenset({"http", "https"})
# Control characters, whitespace and the characters no URL may carry unescaped.
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f<>\"\\^`{}]")
_LABEL = r"\w(?:[\w-]{0,61}\w)?"  # \w: internationalised host names are real
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
MAX_URL = 8192  # longer stream URLs are garbage, and no CDN accepts them


# A whole URL with none of _BAD_CHARS, its head (`scheme:` or `scheme://authority`, all that
# url_problem checks past the characters) a group: one C-level match for the common URL.
_BAD = r"\x00-\x20\x7f<>\"\\^`{}"


def clean_url(without: str = "") -> str:
    """The pattern of a clean URL (none of `_BAD_CHARS`, nor the characters `without`), its
    head a group. Possessive: no part can end anywhere else in a match, and a URL that does
    not match fails in one pass, not after trying every split of its head and path. Its sets
    stay negated: spelled as ranges up to U+10FFFF they matched sooner (257 ns a URL, not 456)
    but compiled in ~3 ms each, in every process and for every learned spelling (charclass.py)."""
    bad = _BAD + re.escape(without)
    return rf"([A-Za-z][A-Za-z0-9+.-]*+:(?://[^/?#{bad}]*+)?+)[^{bad}]*+"


_CLEAN = re.compile(clean_url())
# A playlist's URLs share a few hosts: the verdict on a head is computed once (the host and port
# checks were half the parse time of a 50k-entry list). Bounded: a hostile list has many.
_VERDICTS: dict[str, str | None] = {}
_VERDICTS_KEPT = 4096


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a stream URL, or None when it can (scheme, host and port checked)."""
    if len(url) > MAX_URL:
        return "URL too long"
    clean = _CLEAN.fullmatch(url)
    if clean is not None:
        return head_problem(clean.group(1))
    if _BAD_CHARS.search(url):
        return "URL with spaces or control characters"
    return _problem(url)  # clean characters but no `scheme:` head: what urlsplit makes of it


def head_problem(head: str) -> str | None:
    """`url_problem` of a URL of at most MAX_URL characters matching `clean_url()`, whose
    head (that pattern's group) is `head`."""
    try:
        return _VERDICTS[head]
    except KeyError:
        scheme, _, rest = head.partition(":")
        verdict = _authority_problem(scheme.lower(), rest[2:] if rest else None)
        if len(_VERDICTS) < _VERDICTS_KEPT:
            _VERDICTS[head] = verdict
        return verdict


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
