"""A comment, CDATA section or processing instruction a guide never closes.

libxml2 reads everything after its opener into it and fails at the end of the file: one
programme's `<title><![CDATA[x</title>` cost every programme after it (8 of 3,000 kept). Once
the reading ends inside one (the prefilter's `Markup` says so; it stops feeding the parser
once one has been open for SWALLOW bytes), the reader goes on from the first channel or
programme start tag after the opener, with a fresh document (xmltv.py); the broken programme
is what is lost, counted as malformed. A construct that closes within SWALLOW bytes is the
parser's to read as it stands (a commented-out run of programmes is one).
"""

from __future__ import annotations

import re
from typing import IO

from plextuner.epg.markup import Markup

SCAN = 1 << 20  # bytes read at a time looking for the opener and what follows it
# A construct open this long is taken as left open, and the reading stops there (prefilter.py):
# libxml2 holds every byte of an open comment, CDATA section or PI until it ends (60 MB of
# comment fed: 60 MB more RSS, and no error), and refuses a text over 10 MB anyway. So each
# costs at most this much of reading again, and of the parser's memory.
SWALLOW = 16 << 20
RECOVER_MAX = 100  # constructs left open that a guide's reading goes on past (then: truncated)
# A channel's or programme's start tag (what `Prefilter` and the parser read a guide by)
_NEXT = re.compile(rb"<(?:programme|channel)[ \t\r\n>/]")
_TAG_MAX = len(b"<programme ")


def resume_point(stream: IO[bytes], start: int) -> tuple[int, int | None] | None:
    """Where the construct left open at the end of `stream` (read from `start`, where the
    reading stood outside any markup), or open for SWALLOW bytes, opens, and the first element
    start tag after it (None: none follows); None when none is."""
    stream.seek(start)
    markup = Markup()
    while markup.open_for <= SWALLOW and (chunk := stream.read(SCAN)):
        markup.feed(chunk)
    if markup.closer is None:
        return None
    opened = start + markup.opened_at
    stream.seek(opened)
    at, tail = opened, b""
    while chunk := stream.read(SCAN):
        buf = tail + chunk
        found = _NEXT.search(buf, 1)  # (never the opener itself, which is `<!` or `<?`)
        if found is not None:
            return opened, at - len(tail) + found.start()
        tail = buf[-_TAG_MAX:]
        at += len(chunk)
    return opened, None
