"""Start tags of a whole block read in one pass (prefilter.py's verdicts at once).

A block whose every programme starts with a plain tag spelled as its first gives each tag's
time pair and channel by one `findall`; otherwise each is read a piece at a time (~3 us a
programme against ~0.2). The XMLTV DTD's order (`start`, `stop`, `channel`) is most grabbers'
and has its own pattern; any other spelling of plain attributes is learned from the block's
first tag: `channel` first (ElementTree's order before Python 3.8, which sorted attributes,
and many dict-built writers'), or an Xtream Codes panel's xmltv.php, whose tags carry
`start_timestamp` and `stop_timestamp` before the channel. A 100 MB guide behind a 50k list:
2.9-3.1 s as the DTD orders it; `channel` first 3.6-4.0 s and the panel's 4.0 s before they
were read here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from operator import itemgetter
from typing import cast

from plextuner.charclass import allowed_bytes

# A plain value: no entity, no whitespace the parser would normalise, no markup, so a match is
# certainly the start tag's own attributes and no quote is out of place
VALUE = allowed_bytes(b'"<&\t\n\r') + b"*"
# After a `</programme>` (or at a block's start) and whitespace, `start` and `stop` read as one
# pair (group 1) and `channel` (group 2): one pass over a block finds every tag.
PLAIN = b'"' + VALUE + b'"'
HEAD = (
    rb"[ \t\n\r]*<programme (start=" + PLAIN + rb"[ \t\n\r]+stop=" + PLAIN
    + rb')[ \t\n\r]+channel="(' + VALUE + b')"'
)  # fmt: skip
_STANDARD = (re.compile(HEAD), re.compile(rb"</programme>" + HEAD), None)
# A first tag of plain attributes (names as `starttags.py` takes them): its attributes' text
_FIRST_TAG = re.compile(rb"[ \t\n\r]*<programme((?:[ \t\n\r]+[\w:.-]+=" + PLAIN + rb")+)")
_NAME = re.compile(rb"[ \t\n\r]+([\w:.-]+)=" + PLAIN)  # (a value may hold `a=`)

# The DTD lists nine attributes of a programme; a tag with thousands (a hostile guide, each
# block's first tag spelled anew) cost ~0.6 s a block to compile a pattern for
MAX_ATTRIBUTES = 16

Arrange = Callable[[tuple[bytes, ...]], tuple[bytes, bytes]]
Heads = tuple[re.Pattern[bytes], re.Pattern[bytes], Arrange | None]


def head_spelling(block: bytes) -> tuple[re.Match[bytes], re.Pattern[bytes], Arrange | None] | None:
    """The block's first start tag, the pattern of the tags after it (spelled alike), and how
    their groups become (pair, channel) (None: they are that already); None when the first
    tag is not plain or lacks a start or a channel."""
    first_re, next_re, arrange = _STANDARD
    if (first := first_re.match(block)) is not None:
        return first, next_re, arrange
    tag = _FIRST_TAG.match(block)
    heads = _learned(tuple(_NAME.findall(tag.group(1)))) if tag is not None else None
    if heads is None or (first := heads[0].match(block)) is None:
        return None
    return first, heads[1], heads[2]


@functools.lru_cache(maxsize=16)  # a guide spells its start tags one way, or a few
def _learned(names: tuple[bytes, ...]) -> Heads | None:
    """The patterns of start tags with these attributes in this order (the three read captured,
    the others matched), and how a match's groups become (pair, channel)."""
    if len(set(names)) != len(names) or b"start" not in names or b"channel" not in names:
        return None  # a duplicate is the parser's to judge; no start or channel: not ours
    if len(names) > MAX_ATTRIBUTES:
        return None  # a pattern a block for a hostile guide's thousands: the parser's to read
    read = (b"start", b"stop", b"channel")
    paired = b"stop" in names and names.index(b"stop") == names.index(b"start") + 1
    head = rb"[ \t\n\r]*<programme"
    for name in names:
        if paired and name == b"start":  # start and stop as one group, as `HEAD` reads them
            head += rb"[ \t\n\r]+(start=" + PLAIN
        elif paired and name == b"stop":
            head += rb"[ \t\n\r]+stop=" + PLAIN + b")"
        else:
            value = b'"(' + VALUE + b')"' if name in read else PLAIN
            head += rb"[ \t\n\r]+" + re.escape(name) + b"=" + value
    if paired:  # the groups: (pair, channel) already, or (channel, pair), swapped in C
        after = names.index(b"channel") > names.index(b"stop")
        swap = None if after else cast(Arrange, itemgetter(1, 0))
        return re.compile(head), re.compile(rb"</programme>" + head), swap
    found = [name for name in names if name in read]
    start, channel = found.index(b"start"), found.index(b"channel")
    stop = found.index(b"stop") if b"stop" in found else -1

    # (the pair spelled as `HEAD` reads it: `_inside_pair` splits it on its quotes)
    def timed(h: tuple[bytes, ...]) -> tuple[bytes, bytes]:
        return b'start="' + h[start] + b'" stop="' + h[stop] + b'"', h[channel]

    def untimed(h: tuple[bytes, ...]) -> tuple[bytes, bytes]:  # no stop: an empty one
        return b'start="' + h[start] + b'" stop=""', h[channel]

    return re.compile(head), re.compile(rb"</programme>" + head), untimed if stop < 0 else timed
