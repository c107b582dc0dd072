"""Programmes the lineup does not carry, cut from the raw bytes before libxml2 parses them.

A provider's guide covers thousands of channels; a lineup carries a few hundred, and the guide
window keeps a few days of the two weeks a guide may hold. Building an element for every one of the
programmes and clearing it again was most of a big guide's ingest. Here a `<programme>` whose
`channel` the lineup does not carry, or whose times fall outside the window, is dropped from the
byte stream with a few `find` calls; the kept ones go to the parser, or (plainly spelled) are read
from their bytes by plain.py.

Only what is certainly one whole, plain `<programme>` element is cut: the stream is split on
`</programme>`, and a piece is cut only when it holds exactly one `<programme ` start tag whose
`channel` (and `start`/`stop`) values are plain (no entity, no whitespace the parser would
normalise) and it lies in a block with no comment, CDATA section or processing instruction. A block
holding one is passed whole; one that may leave such a construct open turns the filter off for the
rest of the file. Anything unusual goes to the parser, which decides as before (a property test
holds the items equal). A cut programme's line breaks stay, so a parse error names the file's line
(its column may differ where a programme was cut).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Container, Iterator
from operator import itemgetter
from typing import IO, TYPE_CHECKING

from plextuner.epg.heads import VALUE, head_spelling
from plextuner.epg.markup import Markup, has_markup, unmarked
from plextuner.epg.unclosed import SWALLOW

if TYPE_CHECKING:
    from plextuner.epg.emit import RenderedRun  # (it imports this module)
    from plextuner.epg.plain import PlainReader

END = b"</programme>"
CHANNEL_END = b"</channel>"
START = b"<programme"
START_TAG = b"<programme "
# Anchored after `<programme `, values plain (heads.py), so a match is certainly the start tag's
# own attributes and no quote is out of place; anything spelled otherwise is left to the parser.
# `start`, `stop`, `channel` in the order the XMLTV DTD lists them, which most grabbers write
# (a value's set spelled by what it allows, charclass.py: a block's tags found ~20% sooner):
_COMMON = re.compile(
    b'start="(' + VALUE + b')"\\s+stop="(' + VALUE + b')"\\s+channel="(' + VALUE + b')"'
)
# Any order: the attributes before `channel` (group 1), then the channel's value (group 2).
_TAG = re.compile(rb'((?:[\w:.-]+="[^"<&\t\n\r]*"\s+)*?)channel="([^"<&\t\n\r]*)"')
# What a block becomes (kept programmes, runs read from its bytes) is held at once, in the reader
# and its helper: a lean guide's tree peaked at 136 MB with 1 MB blocks, 120 MB with these.
CHUNK = 256 * 1024
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
# Bytes that make an attribute value differ from what the parser reports (an entity, the
# whitespace it normalises to spaces, markup): such values are left to the parser.
_UNPLAIN = re.compile(rb"[&<\t\n\r]")


def ascii_codec(head: bytes) -> str | None:
    """The codec of a guide whose markup is ASCII (UTF-8, Latin-1, ...), from its declaration;
    None when the filter cannot read its bytes as text (UTF-16, unknown)."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8"
    declared = _DECLARED.match(head)
    name = declared.group(1).decode("ascii") if declared else "utf-8"
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    if codec in ("utf-8", "ascii") or codec.startswith(("iso8859", "cp125", "latin")):
        return codec
    return None


class Prefilter:
    """Feeds a guide's bytes on, minus the programmes nobody will read.

    `channels()` is asked once the parser has seen everything before the first programme (the
    DTD puts every channel first): `blocks` yields None there, so the caller can drain the
    parser's channel events before the answer is needed."""

    def __init__(
        self,
        codec: str | None,
        channels: Callable[[], Container[str]] | None,
        in_window: Callable[[str, str], bool] | None,
    ) -> None:
        self._codec = codec
        self._channels = channels
        self._in_window = in_window
        self.wanted: Container[str] | None = None
        self.skipped = 0
        self._verdicts: dict[bytes, bool] = {}  # channel value → the lineup may carry it
        self._times: dict[tuple[bytes, bytes], bool] = {}  # (start, stop) → maybe in the window
        self.markup = Markup()  # where the bytes read so far stand (halves.py asks)
        self.started = False  # the first programme reached: `wanted` asked
        self.plain: PlainReader | None = None  # reads plain kept programmes itself (plain.py)

    def blocks(self, fh: IO[bytes], read: int = 0) -> Iterator[bytes | RenderedRun | None]:
        """The file's bytes to parse (and runs `plain` read), in order; one None marks where
        the channels are known. `read`: where `fh` stands (read on past a construct left open,
        unclosed.py; the channels asked for once only). A construct open for SWALLOW bytes
        ends the bytes there (libxml2 would hold all the rest: see unclosed.py)."""
        markup = self.markup
        on = self._codec is not None and (self._channels is not None or self._in_window is not None)
        pays = Worth()
        tail = b""
        started = self.started  # past the first programme's start: filtering
        while markup.open_for <= SWALLOW and (chunk := fh.read(CHUNK)):
            read += len(chunk)
            buf = tail + chunk
            if not started:
                first, fed = _first_programme(buf, markup)
                if first < 0:  # no programme yet
                    cut = _channels_cut(buf, fed)
                    markup.feed(buf[fed:cut])
                    yield buf[:cut]
                    tail = buf[cut:]
                    continue
                yield buf[:first]
                yield None  # the caller drains the channels; now `wanted` may be asked
                started = self.started = True
                if self._channels is not None:
                    self.wanted = self._channels()
                buf = buf[first:]
            end = buf.rfind(END)
            cut = end + len(END) if end >= 0 else 0
            block, tail = buf[:cut], buf[cut:]  # the tail: an unfinished programme (or the end)
            at: int | None = read - len(buf)  # where the block lies in the stream
            if len(tail) > _MAX_TAIL:  # no end tag for megabytes: not a guide to be clever with
                on, block, tail = False, buf, b""
            if markup.outside:
                bare = unmarked(block)
                at, block = at if bare is block else None, bare
            plain = self.plain  # with one, scanning always pays (it reads what it keeps)
            if on and (plain or pays.examine()) and markup.outside and not has_markup(block):
                before = self.skipped
                if plain is None:
                    kept, looked = self._filtered(block)
                    yield kept
                else:  # no scan first while it keeps (and cuts) every programme itself
                    kept, looked = (block, 0) if plain.took_all else self._filtered(block)
                    at = at if kept is block else None  # (its bytes the stream's, as they lie)
                    yield from plain.segments(kept, self, cut=self.skipped - before, at=at)
                pays.judge(looked, self.skipped - before)
            else:
                markup.feed(block)
                yield block
        yield tail
        if not started:
            yield None

    def _filtered(self, block: bytes) -> tuple[bytes, int]:
        """The block (whole programmes) minus the droppable ones, and how many it held: one
        regex pass over a plainly spelled block, verdicts per distinct channel and time pair."""
        count = block.count(END)
        keep = self._verdicts_at_once(block, count) if count else True
        if keep is True:
            return block, count
        if keep is None:
            return self._filtered_each(block.split(END)[:-1]), count
        if keep is False:  # the pieces' line breaks stay: the parser's errors name lines
            self.skipped += count
            return b"\n" * block.count(b"\n"), count
        self.skipped += keep.count(False)
        pieces = block.split(END)
        pieces.pop()  # what follows the last `</programme>`: nothing
        out = [p + END if k else b"\n" * p.count(b"\n") for p, k in zip(pieces, keep, strict=True)]
        return b"".join(out), count

    def _verdicts_at_once(self, block: bytes, count: int) -> bool | list[bool] | None:
        """Keep the block's `count` pieces (True), drop them all (False), keep each or not (a
        list), when every piece is whitespace and then one programme whose start tag reads
        `start`, `stop`, `channel` plainly; None otherwise. Each `</programme>` but the last is
        followed by such a tag, the block starts with one, and it holds no other `<programme`:
        so the tags found are the pieces' own, in order. (Or `channel` first, then the pair.)"""
        spelled = head_spelling(block)
        if spelled is None:
            return None
        first, next_re, arrange = spelled
        heads = next_re.findall(block)
        if len(heads) != count - 1 or block.count(START) != count:
            return None
        heads.insert(0, first.groups())
        if arrange is not None:  # as the writer's order reads: (pair, channel)
            heads = list(map(arrange, heads))
        verdicts = self._verdicts
        channels = set(map(itemgetter(1), heads))
        missing = channels.difference(verdicts)
        for channel in missing:
            self._remember(channel)
        if missing and len(verdicts) >= _MEMO:
            return None  # more channels than remembered: a piece at a time
        inside: dict[bytes, bool] | None = None
        if self._in_window is not None:
            inside = {pair: self._inside_pair(pair) for pair in set(map(itemgetter(0), heads))}
            if not any(inside.values()):
                return False
        carried = list(map(verdicts.__getitem__, channels))
        if not any(carried):
            return False
        if inside is None or all(inside.values()):
            return True if all(carried) else [verdicts[c] for _, c in heads]
        return [verdicts[c] and inside[pair] for pair, c in heads]

    def _filtered_each(self, pieces: list[bytes]) -> bytes:
        """The same verdicts a piece at a time, for spellings the block pass does not read."""
        out: list[bytes] = []
        append = out.append
        verdicts, times, common = self._verdicts, self._times, _COMMON.match
        timed = self._in_window is not None
        for piece in pieces:
            k = piece.find(START_TAG)
            at = k + len(START_TAG)
            if k >= 0 and (tag := common(piece, at)) is not None:
                channel = tag.group(3)
                carried = verdicts.get(channel)
                if carried is None:
                    carried = self._remember(channel)
                drop = not carried
                if carried and timed:
                    start, stop = tag.group(1, 2)
                    inside = times.get((start, stop))  # slots repeat: memoised
                    drop = not (self._inside(start, stop) if inside is None else inside)
            elif k >= 0:
                drop = self._droppable(piece, at)
            else:
                drop = False
            if drop and piece.find(START, at) < 0:  # exactly one programme in the piece
                append(piece[:k])  # what came before the programme stays
                lines = piece.count(b"\n", at)
                if lines:  # and its line breaks: the parser's errors name the file's lines
                    append(b"\n" * lines)
                self.skipped += 1
                continue
            append(piece)
            append(END)
        return b"".join(out)

    def _remember(self, channel: bytes) -> bool:
        carried = self._carried(channel)
        if len(self._verdicts) < _MEMO:
            self._verdicts[channel] = carried
        return carried

    def _inside(self, start: bytes, stop: bytes) -> bool:
        """The window's verdict on plain `start`/`stop` values, memoised (slots repeat)."""
        inside = self._times.get((start, stop))
        if inside is None:
            inside = self._window_verdict(start, stop or None)
            if len(self._times) < _MEMO:
                self._times[start, stop] = inside
        return inside

    def _inside_pair(self, pair: bytes) -> bool:
        """`_inside` for `start="a" stop="b"` as `heads.py` reads it (split on its quotes)."""
        parts = pair.split(b'"')
        return self._inside(parts[1], parts[3])

    def _droppable(self, piece: bytes, at: int) -> bool:
        """The same verdict for a start tag in another order (or with other attributes)."""
        tag = _TAG.match(piece, at)
        if tag is None:
            return False  # spelled some other way: the parser's to read
        carried = self._verdicts.get(tag.group(2))
        if carried is None:
            carried = self._remember(tag.group(2))
        return not carried or self._outside_window(tag.group(1), tag.end(), piece)

    def _outside_window(self, before: bytes, end: int, piece: bytes) -> bool:
        """Whether a carried programme's plain `start`/`stop` put it outside the window."""
        if self._in_window is None:
            return False
        gt = piece.find(b">", end)
        rest = piece[end:gt]
        if gt < 0 or b"'" in rest:
            return False  # no end, or a single-quoted value that may hold anything
        attrs = b" " + before + rest  # every attribute but `channel`
        start, stop = _attr(attrs, b' start="'), _attr(attrs, b' stop="')
        return start is not None and not self._inside(start, stop or b"")

    def _carried(self, raw: bytes) -> bool:
        """True unless the value is plain and the lineup certainly does not carry it."""
        if self.wanted is None or not raw:  # plain: the tag's pattern admits no `&` or tab
            return True
        assert self._codec is not None
        try:
            return raw.decode(self._codec) in self.wanted
        except UnicodeDecodeError:
            return True  # the parser will say what is wrong with it

    def _window_verdict(self, start: bytes, stop: bytes | None) -> bool:
        """True unless both times are plain and put the programme outside the window."""
        assert self._in_window is not None and self._codec is not None
        if _UNPLAIN.search(start) or (stop is not None and _UNPLAIN.search(stop)):
            return True
        try:
            return self._in_window(start.decode(self._codec), (stop or b"").decode(self._codec))
        except UnicodeDecodeError:
            return True


class Worth:
    """Whether scanning pays, judged over each TRIAL programmes: the scan costs ~1 us a
    programme, and on a stretch where it cuts next to nothing (every channel carried, every
    programme in the window) it only adds that. Once it does not pay, one block in SAMPLE is
    still scanned, and scanning resumes when that one cuts enough: a guide written hour by hour
    for every channel has its programmes past the window only at its end."""

    __slots__ = ("blocks", "cut", "looked", "on")

    def __init__(self) -> None:
        self.on = True
        self.looked = self.cut = self.blocks = 0

    def examine(self) -> bool:
        """Whether to scan the next block."""
        self.blocks += 1
        return self.on or self.blocks % SAMPLE == 0

    def judge(self, looked: int, cut: int) -> None:
        """What the scan of a block found."""
        if not self.on:  # a sample
            self.on = cut >= looked * WORTH_IT
            return
        self.looked += looked
        self.cut += cut
        if self.looked >= TRIAL:
            self.on = self.cut >= self.looked * WORTH_IT
            self.looked = self.cut = 0


_MAX_TAIL = 4 * 1024 * 1024  # bytes (not blocks) of a programme without its end tag
TRIAL = 20_000  # programmes per judgement of whether scanning pays
WORTH_IT = 0.1  # the share of them it must have cut to go on
SAMPLE = 8  # blocks: once scanning stopped paying, one in this many is still scanned
_MEMO = 65536  # distinct channel ids / time pairs remembered (a guide has a few thousand)


def _channels_cut(buf: bytes, fed: int) -> int:
    """Where to cut `buf`, before the first programme, `fed` of it fed to the markup: after the
    last channel that ended (resync.py tells the channels apart), or (none for megabytes) where
    only what may be the start of `<programme` is left."""
    limit = len(buf) - len(START) - 1
    ended = buf.rfind(CHANNEL_END, fed, limit)
    if ended >= 0:
        return max(fed, ended + len(CHANNEL_END))
    return max(fed, limit if len(buf) > _MAX_TAIL else 0)


def _first_programme(buf: bytes, markup: Markup) -> tuple[int, int]:
    """Where the first programme's start tag begins in `buf` (-1: not in it) and how much of
    `buf` was fed to `markup` (everything before it). A `<programme` inside a comment or CDATA
    section is not one: the channels would be asked for there, too early to know them all."""
    fed = 0
    at = buf.find(START)
    while at >= 0 and at + len(START) < len(buf):
        markup.feed(buf[fed:at])
        fed = at
        if buf[at + len(START)] in b" \t\r\n>/" and markup.outside_before(START):
            return at, fed
        at = buf.find(START, at + 1)
    return -1, fed


def _attr(attrs: bytes, marker: bytes) -> bytes | None:
    """A double-quoted attribute's raw value in attribute text `_TAG` vouched for (every quote
    delimits a value, so a marker at an even quote count is an attribute name), if it is there
    once (twice would be a malformed tag: the parser's to judge)."""
    at = attrs.find(marker)
    if at < 0 or attrs.find(marker, at + 1) >= 0 or attrs.count(b'"', 0, at) & 1:
        return None
    begin = at + len(marker)
    end = attrs.find(b'"', begin)
    return attrs[begin:end] if end >= 0 else None
