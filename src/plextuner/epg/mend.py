"""A refused programme's bytes with what grabbers and providers commonly get wrong put right
(see resync.py), each the likeliest reading of what the writer meant; what none of these mend is
left to libxml2's recovery."""

from __future__ import annotations

import re
from html.entities import html5

# `&` and what follows it: a reference (group 1), a named one's name (group 2); neither: bare.
_REFERENCE = re.compile(rb"&(#[0-9]{1,7};|#x[0-9A-Fa-f]{1,6};|([A-Za-z][A-Za-z0-9]{0,31});)?")
_PREDEFINED = frozenset({b"amp", b"lt", b"gt", b"quot", b"apos"})
# Characters XML 1.0 refuses (tab, line feed and carriage return are allowed).
_CONTROLS = bytes(c for c in range(32) if c not in (9, 10, 13))
# `<` that cannot begin markup ("a < b", "<18"): escaped, not dropped by the recovery.
_BARE_LT = re.compile(rb"<(?=[\s\d=<])")
_ESCAPED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (`surrogateescape`)
_START_TAG = re.compile(rb"<(?:programme|channel)\b[^>]{0,200}>?")
_POSITION = re.compile(r", line \d+, column \d+$")


def mended(piece: bytes, utf8: bool) -> bytes:
    """`piece` with a bare `&` escaped, an HTML entity as its character reference (an unknown
    one escaped), a `<` that begins no markup escaped, characters XML refuses dropped (and
    references to them), and in a UTF-8 guide each byte that is not UTF-8 read as
    Windows-1252 (the usual mislabel)."""
    if utf8 and not _is_utf8(piece):
        text = _ESCAPED.sub(_cp1252, piece.decode("utf-8", "surrogateescape"))
        piece = text.encode("utf-8")
    piece = _BARE_LT.sub(b"&lt;", _REFERENCE.sub(_reference, piece))
    return piece.translate(None, _CONTROLS)


def allowed(code: int) -> bool:
    """Whether XML 1.0 allows the character (its `Char` production)."""
    return (
        code in (9, 10, 13)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _cp1252(escaped: re.Match[str]) -> str:
    byte = bytes([ord(escaped[0]) - 0xDC00])
    try:
        return byte.decode("cp1252")
    except UnicodeDecodeError:  # the five bytes Windows-1252 leaves undefined
        return byte.decode("latin-1")


def _reference(ref: re.Match[bytes]) -> bytes:
    if ref[1] is None:
        return b"&amp;"
    name = ref[2]
    if name is None:  # a character reference: dropped if XML refuses the character
        number = ref[1][1:-1]
        code = int(number[1:], 16) if number.startswith(b"x") else int(number)
        return ref[0] if allowed(code) else b""
    if name in _PREDEFINED:
        return ref[0]
    text = html5.get(name.decode("ascii") + ";")
    if text is None:
        return b"&amp;" + ref[1]
    return b"".join(b"&#%d;" % ord(c) for c in text)


def refusal(piece: bytes, error: str) -> str:
    """What to say of a refused programme or channel: its start tag (the channel, the times)
    and libxml2's error, without its position (it counts the piece's lines, not the file's)."""
    tag = _START_TAG.search(piece)
    named = tag[0].decode("utf-8", "replace") if tag else "an element"
    return f"{named[:120]}: {_POSITION.sub('', error.strip())[:120]}"
