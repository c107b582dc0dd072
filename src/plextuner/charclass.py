"""Character classes spelled by what they allow: a regex set of a few exclusions (`[^"<>&]`) is
checked a byte at a time by comparing it with each, a set of ranges by looking it up: a lean
guide's programmes (their times and channel) are matched ~17% sooner so spelled.

For bytes only: a str set spelled as ranges up to U+10FFFF compiles in ~3 ms (a 256-entry map
for bytes: ~0.1 ms), and the M3U parser compiles one for every spelling it learns, in the
parser and in its helper: the 50k refresh took ~0.3 s longer (`make bench`, reverted)."""

from __future__ import annotations


def allowed_bytes(excluded: bytes) -> bytes:
    """The set (for a bytes pattern) of every byte but those of `excluded`."""
    spans, start = [], 0
    for code in sorted(set(excluded)):
        if code > start:
            spans.append((start, code - 1))
        start = code + 1
    if start <= 0xFF:
        spans.append((start, 0xFF))
    return b"[" + b"".join(_span(a, b).encode() for a, b in spans) + b"]"


def _span(first: int, last: int) -> str:
    return f"\\x{first:02x}" if first == last else f"\\x{first:02x}-\\x{last:02x}"
