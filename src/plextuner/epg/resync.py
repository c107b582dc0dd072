"""A programme or channel libxml2 refuses costs that element, not the rest of its guide.

Real guides hold a bare `&` ("Business & Financial", an icon URL's query), an HTML entity, a
control character, a Windows-1252 byte in a file declared UTF-8, a tag left open; libxml2 stops
at the first, and the rest of the guide was lost. The prefilter hands the parser whole elements
(blocks end after a `</programme>`, or a `</channel>` before the first programme), so the
refused one is found: the elements whose end events came are the block's first, and it is the
next. Its bytes are mended (mend.py) and read alone by libxml2's recovering parser; a fresh
parser, fed the guide's prolog, reads on after it. An error past the last whole element (a file
that ends early, garbage after the root) still ends the reading, as more than MALFORMED_MAX do
when they are most of what was read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from plextuner.epg.ends import CHANNELS, PROGRAMMES, Ends, MarkupState
from plextuner.epg.markup import has_markup
from plextuner.epg.model import ParseOutcome

if TYPE_CHECKING:
    from lxml import etree

T = TypeVar("T")


# Programmes mended in one guide (~50 us each) before it counts as broken, if they are most of
# it: a grabber that never escapes `&` has one in a tenth of its titles, 100,000 in a 300 MB
# guide, whose rest was lost at the bound when it was the only test (five seconds of mends)
MALFORMED_MAX = 100_000
SWEEP_EVERY = 512
# The parser is fed a block this much at a time, its events drained between: libxml2 builds the
# nodes of all it is fed before any is cleared (~14 bytes a byte of a channel list: 20,000
# channels held 14.7 MB fed 1 MB blocks, 1.1 MB fed 64 KB; a bare loop over a 300 MB guide ran
# 5.6 s at 21.7 MB against 4.0 s at 8.9 MB).
FEED_BYTES = 64 * 1024
RESUME_BYTES = 4 * 1024  # the first piece fed after a refused element (doubling to FEED_BYTES)
# How every guide is parsed: no entity resolved, no DTD or network loaded, libxml2's size
# limits kept, comments and processing instructions dropped.
HARDENED: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}
_ROOT = re.compile(rb"""<(?![?!])([\w:.-]+)(?:[^>"']|"[^"]*"|'[^']*')*>""")


def prolog_of(head: bytes) -> tuple[bytes, bytes] | None:
    """A guide's bytes up to and including its root's start tag, and the root's end tag."""
    root = _ROOT.search(head)
    if root is None:
        return None
    return head[: root.end()], b"</" + root.group(1) + b">\n"


class Feeder(Generic[T]):
    """A guide's blocks fed to a pull parser, items made of its elements by `item_of` (which
    counts each programme in `outcome` as kept or skipped: the count of its end events, with no
    `.tag` asked here); a programme the parser refuses read alone, mended (mend.py), and a
    fresh parser started after it.

    libxml2 does not always say when it stops: after a bare `&` or an unknown entity (errors
    lxml lets pass when entities are not resolved) it goes on taking bytes and makes no more
    events, and the error comes at the end of the file. So the `</programme>` fed are counted
    against the programmes' end events: fewer events than ends, and the parser has stopped."""

    def __init__(
        self,
        new_parser: Callable[[], etree.XMLPullParser],
        head: bytes,
        utf8: bool,
        item_of: Callable[[etree._Element], T | None],
        outcome: ParseOutcome,
    ) -> None:
        self._utf8 = utf8
        self._item_of, self._outcome = item_of, outcome
        self._prolog = prolog_of(head)
        self.parser = new_parser()
        self.malformed = 0
        self.first_error: str | None = None
        self._kind = CHANNELS  # until `feed(None)`: the first programme is next
        self._counting = True  # (off where an end tag may hide and cannot be told apart)
        self._skip = len(self._prolog[0]) if self._prolog else 0  # of the next block fed
        self._seen = 0
        self._recovering: etree.XMLParser | None = None  # reads a refused element alone
        self._left = b""  # what the last block of channels held after its last channel

    def drained(self) -> Iterator[T]:
        """The items of the elements the parser has completed."""
        item_of, seen = self._item_of, self._seen
        for _, event in self.parser.read_events():
            elem = cast("etree._Element", event)  # noqa: SLF001 - "end" events carry it
            seen += 1
            if seen % SWEEP_EVERY == 0:
                _sweep(elem)
            item = item_of(elem)
            if item is not None:
                yield item
        self._seen = seen

    def _read(self) -> int:
        """The elements read so far: before the first programme every event is a channel's;
        after it each programme's is counted kept or skipped."""
        if self._kind is CHANNELS:
            return self._seen
        return self._outcome.programmes + self._outcome.skipped

    def feed(
        self, block: bytes | None, markup: MarkupState = None
    ) -> Generator[T, None, etree.XMLSyntaxError | None]:
        """`block` fed FEED_BYTES at a time, what each piece completes read before the next
        (None: only drained, so that the prefilter may ask for `wanted`); the error that ends
        the reading, if any (what parsed before it is read). `markup`: where the block begins
        (`Markup.state`: inside a comment, say, whose `</programme>` ends no programme)."""
        if block is None:
            yield from self.drained()
            self._kind, self._counting = PROGRAMMES, True
            return None
        skip = self._skip  # the prolog's bytes in this block (over several, if it spans them)
        self._skip = max(0, skip - len(block))
        pos = 0  # where the current parser's bytes of the block begin (after a refused one)
        size = FEED_BYTES
        whole: Ends | None = None  # where the block's elements end, found once (see below)
        while pos < len(block):
            base, seen = self._read(), self._seen  # the elements from `pos` numbered from here
            # After a refused element the reading goes on at an end the search found outside
            # any markup: the later ends it found stand. Searched again from each, the rest of
            # the block was fed to a `Markup` once a refused programme: a guide with comments
            # whose every programme was refused took 8 ms a programme (300 MB: hours).
            ends: Ends | None = whole
            if whole is None or not whole.known or not self._counting:
                ends = whole = self._countable(block, markup, max(pos, skip))
            fed = 0  # end tags fed
            end, at = self._kind.end, pos
            while at < len(block):
                stop = at + size
                error = _fed(self.parser, block[at:stop])
                fresh = list(self.drained())
                if self._counting:  # the end tags that finish in this piece
                    fed += (
                        block.count(end, max(pos, at - len(end) + 1), stop)
                        if ends is None
                        else ends.between(at, stop)
                    )
                ended = self._read() - base
                at, size = stop, min(size * 2, FEED_BYTES)
                if error is None and not (self._counting and ended < fed):
                    yield from fresh
                    continue
                late = self._seen - seen - ended  # channels read amid the programmes
                resumed = self._resynced(block, markup, max(pos, skip), ended, late)
                yield from fresh
                if resumed is None:
                    if error is None:  # not stopped after all (see `_resynced`)
                        self._counting = False
                        continue
                    return error
                items, pos = resumed
                # (after an element's end; the next refused one may be near: a grabber that
                # never escapes `&`, whose every programme is refused, is fed 4 KB, not 64)
                markup, size = None, RESUME_BYTES
                yield from items
                break
            else:
                break
        # What the channel list's last block holds after its last channel (the list's blocks
        # end after one, its last where the first programme begins): see `_resynced`
        if self._kind is CHANNELS and block:
            last = block.rfind(CHANNELS.end)
            self._left = block[last + len(CHANNELS.end) :] if last >= 0 else block[skip:]
        return None

    def _countable(self, block: bytes, markup: MarkupState, skip: int) -> Ends | None:
        """Where the elements of `block` from `skip` end, where markup may hide an end tag
        (None: it cannot, count them); counting stopped where that cannot be told."""
        kind = self._kind  # (counted by `count` unless markup or a self-closed one may hide one)
        if not self._counting or (
            markup is None and not has_markup(block, skip) and not kind.closes_in(block, skip)
        ):
            return None
        ends = Ends.of(block, markup, kind, skip)
        if not ends.known:
            self._counting = False
        return ends

    def _resynced(
        self, block: bytes, markup: MarkupState, skip: int, ended: int, late: int
    ) -> tuple[list[T], int] | None:
        """The refused element's items and where the block goes on after it, a fresh parser set
        to read on; None when the element cannot be told. `ended`: the elements from `skip`
        whose end events came (libxml2 makes none for the one it refuses: the next is it);
        `late`: the channels among the programmes from `skip` whose end events came;
        `markup`: where the block begins (see `Ends`)."""
        if self._prolog is None or (
            self.malformed >= MALFORMED_MAX and 2 * self.malformed > self._read()
        ):
            return None
        found = self._located(block, markup, skip, ended)
        if found is not None:
            piece, after, tags = found
            start = after - len(piece)
            if (
                self._kind is PROGRAMMES
                and CHANNELS.start in piece
                and late == block.count(CHANNELS.start, skip, start)
            ):  # a channel listed late, in the refused one's piece, and none of it came
                tags = (CHANNELS.tag, PROGRAMMES.tag)
            items = self._mended_alone(piece, tags, skipped=self._kind is PROGRAMMES)
            if items is not None:
                return self._restarted(items, after)
        left, self._left = self._left, b""
        if ended == 0 and left.strip():  # what the channel list's last block left after its
            # last channel, refused only once the first programme's bytes came: read again
            items = self._mended_alone(left, _after_the_list(left), skipped=False)
            if items is not None:
                return self._restarted(items, skip)
        return None

    def _located(
        self, block: bytes, markup: MarkupState, skip: int, ended: int
    ) -> tuple[bytes, int, tuple[str, ...]] | None:
        """The refused element's bytes, where they end, and the tags to read from them."""
        kind = self._kind
        ends = Ends.of(block, markup, kind, skip, upto=ended)
        span = ends.span(ended)
        tags: tuple[str, ...] = (kind.tag,)
        if span is None and kind is CHANNELS and ends.known and ended == len(ends.offsets):
            # After the channel list's last whole channel: that channel with its end tag
            # broken, or a programme whose start tag is (the first programme is where the
            # list's blocks end), so what is left of the block is read alone, for either
            begin = ends.offsets[-1] if ends.offsets else ends.begin
            if block[begin:].strip():
                span, tags = (begin, len(block)), _after_the_list(block[begin:])
        if span is None:  # past the last whole one: a file that ends early, say
            return None
        piece = block[span[0] : span[1]]
        if markup is not None and span[0] == skip and kind.start not in piece:
            return None  # the block began inside markup, in an element begun in an earlier one
        return piece, span[1], tags

    def _mended_alone(self, piece: bytes, tags: tuple[str, ...], skipped: bool) -> list[T] | None:
        """The items of `piece` mended and read alone; None when libxml2 takes it as it is."""
        from plextuner.epg.mend import mended  # (only a guide with a refused programme needs it)

        assert self._prolog is not None
        fixed = mended(piece, self._utf8)
        # Each mend puts right what XML refuses: a mended piece was refused. One that none
        # mends may be fine by itself (the parser had not stopped, or not there): asked.
        reason = None
        if fixed == piece or self.first_error is None:
            reason = _refused(piece, self._prolog)
            if reason is None and fixed == piece:
                return None
        self.malformed += 1
        self.first_error = self.first_error or reason
        return self._alone(fixed, tags, skipped)

    def _restarted(self, items: list[T], after: int) -> tuple[list[T], int]:
        """The parser started afresh, fed the prolog, to read the block on from `after`.

        The same parser, closed and fed again (lxml starts a new document), not a new one: a
        pull parser is a reference cycle, and a refresh runs with the collector off (cli.py),
        so each one dropped here held its document to the process's end. A guide with 16,000
        refused programmes grew its reader to 141 MB, against 30 with the collector on."""
        assert self._prolog is not None
        parser = self.parser
        _fed(parser, None, close=True)  # (its error is the refusal, already handled)
        for _ in parser.read_events():  # what closing ended, dropped as a new parser had
            pass
        self._counting = True
        _fed(parser, self._prolog[0])
        return items, after

    def _alone(self, piece: bytes, tags: tuple[str, ...], skipped: bool) -> list[T]:
        """The items of a refused element, read by itself with libxml2's recovery (any of its
        kind before it in `piece` too: recovering from a broken start tag may find them); none
        is counted a programme skipped when `skipped` and no programme came of it."""
        from lxml import etree  # lazily: only a guide with a refused programme needs it

        assert self._prolog is not None
        prolog, closing = self._prolog
        if self._recovering is None:  # one a guide (~10 us to make; this guide's thread's)
            self._recovering = etree.XMLParser(recover=True, **HARDENED)
        root = etree.fromstring(prolog + piece + closing, self._recovering)
        items: list[T] = []
        read = 0
        # `tags` only: a channel before a programme in its piece came from the parser if read
        for elem in () if root is None else root.iterchildren(*tags):
            read += elem.tag == PROGRAMMES.tag
            try:
                item = self._item_of(elem)
            except ValueError:  # text lxml cannot hand over (a lone surrogate recovered)
                continue
            if item is not None:
                items.append(item)
        if not read and skipped:  # nothing recovered of it: a programme skipped
            self._outcome.skipped += 1
        return items

    def close(self) -> etree.XMLSyntaxError | None:
        return _fed(self.parser, None, close=True)

    def reopen(self, why: str, read_on: bool = True) -> bool:
        """A programme lost to a construct left open (`why`: unclosed.py) counted as
        malformed, and (`read_on`) a fresh document fed the prolog, to read on where the
        caller moves the stream; False when the prolog is not known (then the reading ends
        there, as the parser stopped)."""
        if self._prolog is None:
            return False
        if read_on:
            self._restarted([], 0)
            self._left = b""
        self.malformed += 1
        self.first_error = self.first_error or why
        return True


def _after_the_list(piece: bytes) -> tuple[str, ...]:
    """What to take from `piece`, after the channel list's last `</channel>`: its programmes,
    and its channel when it holds one start tag and that one has no end (a `<channel .../>`
    there was read by the parser, and would be read twice)."""
    if piece.count(CHANNELS.start) == 1 and not CHANNELS.closes_in(piece, 0):
        return (CHANNELS.tag, PROGRAMMES.tag)
    return (PROGRAMMES.tag,)


def _refused(piece: bytes, prolog: tuple[bytes, bytes]) -> str | None:
    """Why libxml2 refuses `piece` read by itself, if it does (see `mend.refusal`)."""
    from lxml import etree  # lazily: see `_alone`

    from plextuner.epg.mend import refusal  # (only a guide with a refused programme needs it)

    parser = etree.XMLParser(**HARDENED)
    try:
        etree.fromstring(prolog[0] + piece + prolog[1], parser)
    except etree.XMLSyntaxError as err:
        return refusal(piece, err.msg or str(err))
    return None


def _fed(
    parser: etree.XMLPullParser, block: bytes | None, close: bool = False
) -> etree.XMLSyntaxError | None:
    """`block` fed to the parser (or the parser closed): the error it raised, if any."""
    from lxml import etree  # lazily: see `_alone`

    try:
        if close:
            parser.close()
        elif block is not None:
            parser.feed(block)
    except etree.XMLSyntaxError as err:
        return err
    return None


def _sweep(elem: etree._Element) -> None:
    """Drop the cleared siblings before `elem` so the tree never grows (done in batches)."""
    parent = elem.getparent()
    if parent is not None:
        del parent[: parent.index(elem)]
