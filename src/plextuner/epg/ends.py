"""Where the elements of a block a guide's parser is fed end: what resync.py counts against the
parser's end events to see libxml2 stop without a word, and cuts a refused element out by."""

from __future__ import annotations

import bisect
import heapq
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from plextuner.epg.markup import Markup, has_markup
from plextuner.epg.prefilter import END, START

MarkupState = tuple[bytes | None, bytes] | None  # `Markup.state`


@dataclass(frozen=True, slots=True)
class Kind:
    """What a stretch holds (the channels before the first programme, then programmes)."""

    tag: str
    start: bytes
    end: bytes
    closed: re.Pattern[bytes] | None = None  # an element with no end tag: `<channel id="x"/>`

    def closes_in(self, block: bytes, skip: int) -> bool:
        """Whether `block` from `skip` holds an element of this kind with no end tag."""
        return self.closed is not None and self.closed.search(block, skip) is not None

    def ends_in(self, rest: bytes, begin: int) -> Iterable[tuple[int, int]]:
        """Where each element's end tag (or its self-closed start tag) begins and ends."""
        tags = _found(rest, self.end, begin)
        if self.closed is None:
            return tags
        return heapq.merge(tags, ((m.start(), m.end()) for m in self.closed.finditer(rest, begin)))


def _found(rest: bytes, tag: bytes, begin: int) -> Iterator[tuple[int, int]]:
    at = rest.find(tag, begin)
    while at >= 0:
        yield at, at + len(tag)
        at = rest.find(tag, at + 1)


# A channel with no display name may be written with no end tag (against the DTD); libxml2
# makes an end event for it all the same
CHANNELS = Kind("channel", b"<channel", b"</channel>", re.compile(rb"<channel\b[^>]*/>"))
PROGRAMMES = Kind("programme", START, END)


class Ends:
    """Where the elements of a block end: after each end tag (`</programme>`, `</channel>`),
    or self-closed start tag (`<channel id="x"/>`), that is not in a comment, CDATA section
    or processing instruction (the block may begin inside one: its `Markup.state`; then its
    first element begins where that ends)."""

    __slots__ = ("begin", "offsets")

    def __init__(self, begin: int, offsets: list[int]) -> None:
        self.begin, self.offsets = begin, offsets

    @classmethod
    def of(cls, rest: bytes, state: MarkupState, kind: Kind, skip: int = 0, upto: int = -1) -> Ends:
        """Where the elements of `kind` end, from `skip` (the first `upto` + 1 of them
        when it is given: a guide whose every title holds a bare `&` would be scanned to the
        block's end once for each); not `known` when the block begins in a token cut at its
        start (not worth telling)."""
        begin = fed = skip
        markup = Markup()
        if state is not None:
            closer, carry = state
            if closer is None:  # the start of a token carried (a `<` that may open a comment)
                markup = Markup.resumed(state)
            elif carry or (at := rest.find(closer, skip)) < 0:
                return cls(-1, [])
            else:
                begin = fed = at + len(closer)
        aware = state is not None or has_markup(rest, begin)
        offsets: list[int] = []
        for at, after in kind.ends_in(rest, begin):
            if aware:
                markup.feed(rest[fed:at])
                fed = at
            if markup.outside:
                offsets.append(after)
                if len(offsets) == upto + 1:
                    break
        return cls(begin, offsets)

    def between(self, start: int, stop: int) -> int:
        """How many end in (start, stop]."""
        return bisect.bisect_right(self.offsets, stop) - bisect.bisect_right(self.offsets, start)

    @property
    def known(self) -> bool:
        return self.begin >= 0

    def span(self, index: int) -> tuple[int, int] | None:
        """Where the `index`th element begins and ends (None: there are not that many)."""
        if index >= len(self.offsets):  # (none when not `known`)
            return None
        return (self.offsets[index - 1] if index else self.begin), self.offsets[index]
