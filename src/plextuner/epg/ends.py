"""Where the elements of a block a guide's parser is fed end: what resync.py counts against the
parser's end events to see libxml2 stop without a word, and cuts a refused element out by."""

from __future__ import annotations

import bisect
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


CHANNELS = Kind("channel", b"<channel", b"</channel>")
PROGRAMMES = Kind("programme", START, END)


class Ends:
    """Where the elements of a block end: after each end tag (`</programme>`, `</channel>`)
    that is not in a comment, CDATA section or processing instruction (the block may begin
    inside one: its `Markup.state`; then its first element begins where that ends)."""

    __slots__ = ("begin", "offsets")

    def __init__(self, begin: int, offsets: list[int]) -> None:
        self.begin, self.offsets = begin, offsets

    @classmethod
    def of(cls, rest: bytes, state: MarkupState, end: bytes, skip: int = 0, upto: int = -1) -> Ends:
        """Where the elements that `end` ends end, from `skip` (the first `upto` + 1 of them
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
        at = rest.find(end, begin)
        while at >= 0:
            if aware:
                markup.feed(rest[fed:at])
                fed = at
            if markup.outside:
                offsets.append(at + len(end))
                if len(offsets) == upto + 1:
                    break
            at = rest.find(end, at + 1)
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
