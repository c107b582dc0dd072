"""Start tags of a whole block read in one pass (prefilter.py's verdicts at once).

A block whose every programme starts with a plain tag in one known order gives each tag's
time pair and channel by one `findall`; other orders are read a piece at a time (~3 us a
programme against ~0.2). The order the XMLTV DTD lists (`start`, `stop`, `channel`) is most
grabbers'; `channel` first is ElementTree's before Python 3.8 (it sorted attributes) and many
dict-built writers': a 100 MB guide so spelled behind a 50k list took 3.6-4.0 s against
2.9-3.2 s before it was read here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from plextuner.charclass import allowed_bytes

# A plain value: no entity, no whitespace the parser would normalise, no markup, so a match is
# certainly the start tag's own attributes and no quote is out of place
VALUE = allowed_bytes(b'"<&\t\n\r') + b"*"
# The same after a `</programme>` (or at a block's start) and whitespace, `start` and `stop`
# read as one pair (group 1) and `channel` (group 2): one pass over a block finds every tag.
PLAIN = b'"' + VALUE + b'"'
HEAD = (
    rb"[ \t\n\r]*<programme (start=" + PLAIN + rb"[ \t\n\r]+stop=" + PLAIN
    + rb')[ \t\n\r]+channel="(' + VALUE + b')"'
)  # fmt: skip
# Other orders (ElementTree before Python 3.8 sorted attributes: `channel` first; dict-built
# tags), each with how its groups become (pair, channel): `channel` first, then the pair; and
# `start`, `channel`, `stop` (its pair made whole: `_inside_pair` reads it by its quotes).
TIME = rb"=" + PLAIN
ORDERS = (
    (rb'channel="(' + VALUE + rb')"[ \t\n\r]+(start' + TIME + rb"[ \t\n\r]+stop" + TIME + b")",
     lambda h: (h[1], h[0])),
    (rb"(start" + TIME + rb')[ \t\n\r]+channel="(' + VALUE + rb')"[ \t\n\r]+(stop' + TIME + b")",
     lambda h: (h[0] + b" " + h[2], h[1])),
)  # fmt: skip
Arrange = Callable[[tuple[bytes, ...]], tuple[bytes, bytes]]
HEADS: tuple[tuple[re.Pattern[bytes], re.Pattern[bytes], Arrange | None], ...] = (
    (re.compile(HEAD), re.compile(rb"</programme>" + HEAD), None),
    *(
        (re.compile(h), re.compile(rb"</programme>" + h), arrange)
        for h, arrange in ((rb"[ \t\n\r]*<programme " + o, a) for o, a in ORDERS)
    ),
)


def head_spelling(
    block: bytes,
) -> tuple[re.Match[bytes], re.Pattern[bytes], Arrange | None] | None:
    """The block's first start tag read by one of `HEADS`, the pattern of the tags after it,
    and how their groups become (pair, channel)."""
    for first_re, next_re, arrange in HEADS:
        if (first := first_re.match(block)) is not None:
            return first, next_re, arrange
    return None
