"""What mend.py puts right in a refused programme, put right in a whole block before its
programmes are read from their bytes (plain.py): a bare `&` escaped, the characters XML refuses
dropped. Each is refused by the parser wherever it stands outside markup (a text, an attribute
value; the blocks read from their bytes hold no comment, CDATA section or processing
instruction), and mend.py's reading of such a programme is this one. Refused one at a time
instead, each programme was mended and read alone (~50 us, against ~1.5 read from its bytes): a
grabber that never escapes `&`, with one in a tenth of its titles, read 4x slower, and a guide
with a control character in every programme stopped at MALFORMED_MAX (resync.py).

Each programme so put right is counted as mended, as the parser's refusals are: the guide's
outcome still says how sloppy it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from plextuner.epg.plainre import REFUSED
from plextuner.epg.prefilter import END, START

# A `&` that begins no reference: mend.py's `_REFERENCE` where its group is empty
BARE_AMP = re.compile(rb"&(?!#[0-9]{1,7};|#x[0-9A-Fa-f]{1,6};|[A-Za-z][A-Za-z0-9]{0,31};)")
_UNDEFINED = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos);|#)")  # a named one XML does not define
_NUMERIC = re.compile(rb"&#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}));")


@dataclass(slots=True)
class Mends:
    """Programmes put right before they were read, and the first one's start tag and why."""

    count: int = 0
    first: str | None = None


def premended(block: bytes, entity_at: int | None, clean: bool, mends: Mends) -> bytes:
    """`block` (whole programmes, then what follows the last) with its bare `&` escaped and,
    unless `clean`, the characters XML refuses dropped; `block` itself when neither is there.
    `entity_at`: where the block's first `&` that is not `&amp;`, `&lt;` or `&gt;` stands (a
    bare one cannot be before it), None for none."""
    bare = entity_at is not None and BARE_AMP.search(block, entity_at) is not None
    if clean and not bare:
        return block
    pieces = block.split(END)
    changed = False
    for i, piece in enumerate(pieces):
        put = piece if clean else piece.translate(None, REFUSED)
        why = "" if len(put) == len(piece) else _refused(piece)
        if bare and b"&" in put and len(escaped := BARE_AMP.sub(b"&amp;", put)) != len(put):
            put, why = escaped, why or "xmlParseEntityRef: no name (a bare &, escaped)"
        if why:
            pieces[i], changed = put, True
            # (after the last end tag: no programme; one the parser still refuses is counted
            # when it is mended, not twice)
            if i + 1 < len(pieces) and not _still_refused(put):
                _count(mends, piece, why)
    return END.join(pieces) if changed else block


def _count(mends: Mends, piece: bytes, why: str) -> None:
    mends.count += 1
    if mends.first is None:
        tag = piece[piece.find(START) :]
        named = tag[: tag.find(b">") + 1][:120].decode("utf-8", "replace")
        mends.first = f"{named or 'a programme'}: {why}"


def _refused(piece: bytes) -> str:
    """libxml2's words for the first character XML refuses in `piece`."""
    code = next(b for b in piece if b in REFUSED)
    return f"invalid Char value {code} (dropped)"


def _still_refused(piece: bytes) -> bool:
    """Whether the parser refuses `piece` all the same: a named reference XML does not define
    (an HTML one), or a character reference to a character it refuses."""
    if _UNDEFINED.search(piece):
        return True
    from plextuner.epg.mend import allowed  # (only a guide with something to put right)

    return not all(
        allowed(int(ref[1], 16) if ref[1] else int(ref[2])) for ref in _NUMERIC.finditer(piece)
    )
