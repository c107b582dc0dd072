"""The M3U parser's fast lane: `#EXTINF` lines in a spelling the playlist taught (m3uline.py)
read together with their URL lines straight from a decoded block, one match a pair.

Where a learned spelling's line is followed by a URL line, the pair is read here instead of by
the line walk (m3uwalk.py): the same entry, the same line numbers, and `finish`'s URL checks (the
pattern takes only a URL of clean characters, so only its host's verdict is left to look up;
the line walk checked every URL again with a second match); an `#EXTGRP:` line and
`#EXTVLCOPT:` lines between the two (in that order) are read with them. Whatever the lane does
not take whole (a CR inside a line, a non-printable character, whitespace around the URL,
`|headers`, another directive or a blank line between the two, a line that could be over
MAX_LINE, a DASH URL, a nameless entry) is left to the line walk at that line, so the result is
the line walk's (a property test holds the two equal). A 50k-entry list: 150 -> 129 ms; one
with an `#EXTVLCOPT:` line in every entry (a provider's user agent): 247 -> 183 ms.
"""

from __future__ import annotations

from collections.abc import Iterator

from plextuner.ingest.lines import MAYBE_LONG
from plextuner.ingest.m3udirect import Pending, vlcopt_headers
from plextuner.ingest.m3uline import Spellings
from plextuner.ingest.models import Entry, ParseReport
from plextuner.ingest.urls import MAX_URL, head_problem

# When most tries fail (a directive between every #EXTINF and its URL), the lane is given up
# for the rest of the playlist: each failed try costs a match and a line's second look.
GIVE_UP_AFTER = 256
OPTIONS_KEPT = 64  # distinct runs of `#EXTVLCOPT:` lines remembered as read


class FastLane:
    """Pairs read from blocks for one playlist's parse."""

    __slots__ = ("_known", "_options", "_provider", "_report", "entries", "group", "hits",
                 "misses")  # fmt: skip

    def __init__(
        self,
        known: Spellings,
        report: ParseReport,
        provider: str,
        entries: list[Entry],
    ) -> None:
        self._known, self._report = known, report
        self._provider = provider
        self.entries = entries
        self.group = ""  # the #EXTGRP in force: the lane and the line walk both read and set it
        self.hits = self.misses = 0
        # `#EXTVLCOPT:` lines as read (lines, headers): a provider gives every entry the same
        self._options: dict[str, tuple[int, dict[str, str]]] = {}

    @property
    def open(self) -> bool:
        """Worth a try: a spelling learned, the lane not given up."""
        return bool(self._known.shapes) and (
            self.misses <= GIVE_UP_AFTER or self.misses <= self.hits
        )

    @property
    def ahead(self) -> bool:
        """A block is worth walking with `lines`: the lane is open, or may open (no spelling
        learned yet: the first entry of a list teaches one). Else the line walk splits it."""
        return self.open or (not self._known.shapes and self._known.learning)

    def lines(self, block: str, lineno: int, pending: Pending) -> Iterator[tuple[int, str]]:
        """The lines of `block` the line walk is to read, numbered (`lineno`: the line before
        the block); at each `#EXTINF` with nothing pending, the pairs the lane takes first."""
        pos, size = 0, len(block)
        while pos <= size:
            if (
                pending.entry is None
                and block.startswith("#EXTINF:", pos)
                and not pending.headers
                and not pending.kodiprops
                and self.open
            ):
                pos, lineno = self.read(block, pos, lineno)
                if pos > size:
                    return
            cut = block.find("\n", pos)
            if cut < 0:
                cut = size
            lineno += 1
            yield lineno, block[pos:cut]
            pos = cut + 1

    def read(self, text: str, pos: int, lineno: int) -> tuple[int, int]:  # noqa: C901, PLR0912 - the hot loop: a call a pair or a blank line was 0.5 us
        """Pairs from `pos` (a line's start, the line walk between entries: nothing pending)
        as long as they come; the position and line number after them. `lineno`: the number
        of the line before `pos`."""
        shapes, report, group = self._known.shapes, self._report, self.group
        seen = self._options
        provider, add = self._provider, self.entries.append
        shift = report.tvg_shift
        taken = 0
        while True:
            if not text.startswith("#EXTINF:", pos):
                # A blank line between two pairs (some generators separate entries so): passed
                # over here as the line walk passes it over, not by a return to it (1.3x)
                if text.startswith(("\n", "\r\n"), pos):
                    pos = text.index("\n", pos) + 1
                    lineno += 1
                    continue
                break
            # The spellings in the line walk's order; no line can be in two (they differ in a
            # literal between two quotes, and the text after the last quote holds the only
            # comma), so the first whose pair matches is the one the line walk would use.
            match = None
            for shape in shapes:
                match = shape.pair.match(text, pos)
                if match is not None:
                    break
            if match is None:
                break
            end = match.end()
            if end - pos > MAYBE_LONG or not text[pos : match.end(shape.name_at)].isprintable():
                break  # a line that could be too long; a character the general reading cleans
            # The spelling's values, the name, the #EXTGRP's (None: no such line), the
            # #EXTVLCOPT lines ("": none), the URL and its head
            groups = ("", *match.groups())
            url = groups[-2]
            if len(url) > MAX_URL or ".mpd" in url:
                break  # `finish`'s other checks: the line walk's
            entry = shape.entry(groups, lineno + 1, provider, shift)
            if entry is None:
                break  # no name: the line walk counts the skips of both lines
            if (extgrp := groups[-4]) is not None:  # in force from here, as the walk's
                group = self.group = extgrp.strip()
                lineno += 1
            if options := groups[-3]:  # `#EXTVLCOPT:` lines: the entry's, as `finish` merges
                count, headers = seen.get(options) or self._learn_options(options)
                lineno += count
                entry.headers = {**entry.headers, **headers}
            problem = head_problem(groups[-1])  # `url_problem`: the characters are clean
            if problem is None:
                if group and not entry.group:
                    entry.group = group
                entry.url = url
                add(entry)
            else:
                report.skip(problem)
            lineno += 2
            taken += 1
            pos = end + 1  # past the URL line's newline (or the block's end)
        self._known.hits += taken
        self.hits += taken
        self.misses += not taken
        return pos, lineno

    def _learn_options(self, options: str) -> tuple[int, dict[str, str]]:
        """`#EXTVLCOPT:` lines as read: how many, their headers (remembered, within bounds)."""
        read = (options.count("\n"), vlcopt_headers(options))
        if len(self._options) < OPTIONS_KEPT:
            self._options[options] = read
        return read
