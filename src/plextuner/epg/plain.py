"""Plainly spelled programmes rendered from their bytes, without the XML parser.

A provider's own guide keeps every programme of the window, and each cost ~20 us of Python on
its way from libxml2 to the spill: the element, an object with its fields, the rendered body.
Most programmes of a real guide are spelled the same simple way: the start tag with `start`,
`stop` and `channel`, then children holding text and nothing else (a title, a description, a
category or two, an episode number), in the order the XMLTV DTD lists them. Such a programme is
matched whole by one regular expression and its body put together from the matched bytes: the
same bytes `bodies.BodyRenderer` writes for the element (a property test holds them equal).

Only what is certainly read the same is taken (anything else goes to the parser, which decides
as before): text whose only entities are `&amp;`, `&lt;`, `&gt;` and that holds no `>`, no
carriage return and no character XML refuses (then its escaped form is its bytes as they are),
no leading or trailing white space to strip but ASCII, valid UTF-8 (or ASCII in another
ASCII-based encoding), one attribute at most on an element we skip, and each of title,
sub-title, description and date non-empty where it stands (the parser's rule takes a later
one when the first is empty). The prefilter hands over only pieces it knows to be one whole
`<programme>` in a stretch with no comment, CDATA section or processing instruction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterator

from plextuner.epg import canonical, idmemo, starttags
from plextuner.epg.emit import DROPPED, Rendered, RenderedRun, SourcedRun, emitted
from plextuner.epg.kept import offset_of, stop_offset
from plextuner.epg.plainre import (
    CAT,
    CATEGORY,
    CATS,
    CHANNEL,
    DATE,
    DESC,
    DESCS,
    ENTITY,
    EP,
    EPISODE,
    EPS,
    ICON,
    NEW,
    PROGRAMME,
    REFUSED,
    SHOWN,
    SLOT,
    SPACE,
    START,
    STOP,
    SUB,
    SYSTEM,
    TITLE,
    UNMARKED,
    pattern_for,
)
from plextuner.epg.prefilter import END, Prefilter
from plextuner.epg.premend import Mends, premended


class PlainReader:
    """`take(piece)`: the piece's programme `Rendered`, DROPPED, or None (the parser's)."""

    def __init__(
        self,
        codec: str,
        fold: bool,
        window: tuple[float, float],
        parse_time: Callable[[str], float | None],
    ) -> None:
        self._utf8 = codec == "utf-8"
        self._codec = codec
        self._fold = fold
        # The prefilter's, known from the first programme on: taken from it at each block
        # (`segments`), not asked through a reference to it (a cycle, and a refresh runs with
        # the collector off: the reading's state sat to the process's end, ~11 MB of a
        # 50,000-channel guide's writing)
        self._wanted: Container[str] | None = None
        self._lo, self._hi = window
        self._parse_time = parse_time
        self._slots: dict[bytes, tuple[int, int] | None] = {}  # start and stop
        # raw value -> kept channel id, "" (not ours) or None (the parser's: unreadable, empty)
        self._channels: dict[bytes, str | None] = {}
        self._learned = False  # the wanted ids put in `_channels` (idmemo.py)
        self.mends = Mends()  # programmes put right before they were read (premend.py)
        self.took_all = False  # see `segments`
        # The spill reference of the stream's first byte where the spill reads the guide's file
        # in place (None: it does not): long bodies then come referenced there (`SourcedRun`)
        self.origin: int | None = None
        self._at: int | None = None  # where the block lies in the stream, its bytes as they lie
        # Of the block (`segments`)
        self._clean = self._plain_entities = self._ascii = self._easy = False
        self._marks = b""  # its characters XML refuses, CRs, LFs, `<` and `>` (plainre.UNMARKED)
        self._unwritten = 0  # blocks left before the next is tried as written (canonical.py)
        # Spellings `canonical.compacted` looks for in whole blocks, not their first bytes
        # only: a block held them past those. An Xtream panel's guide (XUI) is ordered by
        # channel and writes `<desc></desc>` for the channels without descriptions only: its
        # blocks whose first bytes had none went to `take`, a programme at a time (1.43x a
        # bare iterparse, 1.15-1.18x since).
        self._whole: set[bytes] = set()
        self._pattern = PROGRAMME  # the block's start tags' order (plainre.py)

    def segments(
        self, block: bytes, counts: Prefilter, cut: int = 0, at: int | None = None
    ) -> Iterator[bytes | RenderedRun]:
        """`block` (whole programmes, each ending in `</programme>`) as bytes for the parser and
        runs of programmes read here, in file order; the programmes cut (DROPPED) counted as
        `counts.skipped`. A programme read or cut here leaves its line breaks to the parser,
        whose errors name the file's lines. `took_all`: every programme of the block was kept
        and read here (and `cut`, the prefilter's cuts from it, is none). `at`: where the block
        lies in the stream when its bytes are the stream's as they lie."""
        self._wanted = counts.wanted
        prepared = self._prepared(block)
        self._at = at if prepared is block and self.origin is not None else None
        block = prepared
        if (read := self._as_written(block)) is not None:  # spelled as we write: canonical.py
            kept, dropped, end = read
            counts.skipped += dropped
            self.took_all = not cut and not dropped
            if kept:
                yield kept
            yield b"\n" * (self._marks.count(b"\n") - block.count(b"\n", end)) + block[end:]
            return
        pieces = block.split(END)
        tail = pieces.pop()  # after the last `</programme>`: the parser's, last
        items = list(map(self.take, pieces))
        self.took_all = not cut and None not in items and DROPPED not in items
        if self.took_all:  # every one kept and read here: most blocks of most guides
            if items:
                yield RenderedRun(items)  # type: ignore[arg-type]  # (None is not in it)
            yield b"\n" * (self._marks.count(b"\n") - tail.count(b"\n")) + tail
            return
        yield from emitted(pieces, items, tail, counts)

    def _prepared(self, block: bytes) -> bytes:
        """`block` with its start tags and references as the writer spells them (canonical.py),
        and what no piece may hold looked for once in it (a piece at a time only when the block
        holds some): characters XML refuses, other entities, non-ASCII bytes."""
        block = starttags.respelled(block)  # start tags read natively, when they are not
        self._marks = block.translate(None, UNMARKED)  # (what the checks below look for)
        self._clean = len(self._marks.translate(None, REFUSED)) == len(self._marks)
        self._pattern = pattern_for(block)
        entity = ENTITY.search(block)
        if entity is not None:  # the references the writer writes as characters
            block = canonical.unescaped(block, self._utf8)
            entity = ENTITY.search(block)
        # What mend.py puts right, put right here (premend.py): after the references the writer
        # writes are undone, so a clean guide's `&quot;` never sends a block to be searched
        if entity is not None or not self._clean:
            mended = premended(block, entity and entity.start(), self._clean, self.mends)
            if mended is not block:
                block, entity = mended, ENTITY.search(mended)
                self._marks, self._clean = block.translate(None, UNMARKED), True
        self._plain_entities = entity is None
        self._ascii = block.isascii()
        self._easy = self._clean and self._plain_entities and self._ascii
        return block

    def _as_written(self, block: bytes) -> tuple[RenderedRun, int, int] | None:
        """The block's kept programmes, how many it cut and where its last one ends, when
        every programme in it is spelled as the writer writes it (canonical.py); else None.
        Long bodies of a block whose bytes are the file's, all kept, none to fold, come
        referenced where they lie (`SourcedRun`: not copied through the spill)."""
        if self._unwritten:  # the last block was spelled otherwise: likely this one too
            self._unwritten -= 1
            return None
        end = block.rfind(END) + len(END)
        if end < len(END) * 2:  # no programme in the block: nothing to tell
            return None
        easy = self._easy or (
            self._clean
            and self._plain_entities
            and self._decodes(block)
            and not canonical.wide_space_in(block)  # (its texts' ends: see there)
        )
        source, found = self._read(block, end) if easy else (block, None)
        if found is None:
            self._unwritten = UNWRITTEN_SKIP
            return None
        fold = self._fold and b"<sub-title>" in source
        read = canonical.kept(found, self._slots, self._channels, self._slot, self._channel, fold)
        if read is None:  # a channel value the parser decides on
            self._unwritten = UNWRITTEN_SKIP
            return None
        kept, dropped = read
        at, origin = self._at, self.origin  # (`_at` is None without an origin)
        short = block.find(END) <= canonical.LONG  # short ones spill (a repeat is spilled once)
        if at is None or origin is None or dropped or fold or source is not block or short:
            return RenderedRun(kept), dropped, end
        return SourcedRun(kept, canonical.references(found, origin + at)), dropped, end

    def _read(self, block: bytes, end: int) -> tuple[bytes, list[canonical.Found] | None]:
        """The block as written and `canonical.read_block` of it, told what its marks tell."""
        source, marked = canonical.written(block, self._whole)
        plain = None
        if marked:  # the marks of `block[:end]`: the block's, its tail's line breaks aside
            tail = block[end:].translate(None, UNMARKED) if end < len(block) else b""
            if not tail.strip(b"\n"):
                plain = canonical.balanced(self._marks)
        found = canonical.read_block(source, source.rfind(END) + len(END), plain)
        if found is None and (missed := canonical.left_in(source) - self._whole):
            self._whole |= missed  # from now on (one search each a block, ~20-180 us)
            return self._read(block, end)
        return source, found

    def take(self, piece: bytes) -> Rendered | None:
        m = self._pattern.fullmatch(piece)
        if m is None or not (self._easy or self._checked(piece)):
            return None
        g = m.groups()
        try:  # (a guide repeats a few thousand of each)
            slot = self._slots[g[SLOT]]
        except KeyError:
            slot = self._slot(g[SLOT], g[START], g[STOP])
        try:
            channel = self._channels[g[CHANNEL]]
        except KeyError:
            channel = self._channel(g[CHANNEL])
        if channel is None:
            return None
        if slot is None or not channel:
            return DROPPED
        title = g[TITLE].strip(SPACE)
        if not title or ((title[0] > _ASCII or title[-1] > _ASCII) and _unsure(title)):
            return None  # no title (the parser's rule: a later one), or one to strip as text
        body = self._body(g, title)
        return None if body is None else (channel, slot[0], slot[1], body)

    def _checked(self, piece: bytes) -> bool:
        """No character XML refuses, no entity but the three, UTF-8 (see `segments`)."""
        if not self._clean and len(piece.translate(None, REFUSED)) != len(piece):
            return False
        if not self._plain_entities and b"&" in piece and ENTITY.search(piece):
            return False
        return self._ascii or piece.isascii() or self._decodes(piece)

    def _decodes(self, piece: bytes) -> bool:
        """Non-ASCII bytes: valid UTF-8 holding no U+FFFE/U+FFFF (which XML refuses)."""
        if not self._utf8 or b"\xef\xbf\xbe" in piece or b"\xef\xbf\xbf" in piece:
            return False
        try:
            piece.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    def _channel(self, raw: bytes) -> str | None:
        wanted = self._wanted
        if not self._learned and wanted is not None:
            self._learned = True  # the wanted ids' own strings, by their bytes (idmemo.py)
            idmemo.fill(self._channels, wanted, self._codec, _MEMO)
            if raw in self._channels:
                return self._channels[raw]
        try:
            value: str | None = raw.decode(self._codec)
        except UnicodeDecodeError:
            value = None
        if not value:
            value = None  # (the parser reads an empty one as no programme)
        elif wanted is not None and value not in wanted:
            value = ""
        if len(self._channels) < _MEMO:
            self._channels[raw] = value
        return value

    def _slot(self, key: bytes, start: bytes, stop: bytes | None) -> tuple[int, int] | None:
        """A start tag's times as kept (spill.py); None: not in the window (or unreadable)."""
        begins, ends = self._time(start), self._time(stop)
        slot = None
        if begins is not None and begins < self._hi and (ends or begins + 3600) > self._lo:
            slot = (offset_of(begins), stop_offset(ends))
        if len(self._slots) < _MEMO:
            self._slots[key] = slot
        return slot

    def _time(self, quoted: bytes | None) -> float | None:
        """A time attribute's value (None: no such attribute, an empty one or unreadable)."""
        try:
            return (
                self._parse_time(quoted[1:-1].decode(self._codec))
                if quoted and len(quoted) > 2
                else None
            )
        except UnicodeDecodeError:
            return None

    def _body(  # noqa: C901, PLR0912 - run a million times for a big guide: inlined
        self, g: tuple[bytes | None, ...], title: bytes
    ) -> bytes | None:
        """Everything after the start tag, as `BodyRenderer` renders the parsed element. A
        value is stripped as the parser's reading strips it, and left to the parser when that
        is not certain from the bytes (`_unsure`) or when it is empty where the parser's rule
        would take a later one of the same kind."""
        episodes = b""
        if (ep := g[EP]) is not None:
            if (ep := ep.strip(SPACE)) and (ep[0] > _ASCII or ep[-1] > _ASCII) and _unsure(ep):
                return None
            if ep:
                episodes = _EPISODE_NUM % (g[SYSTEM] or b"onscreen", ep)
            if more := g[EPS]:
                rest = _more(EPISODE, more)
                if rest is None:
                    return None
                episodes += rest
        parts = [b"<title>", title, b"</title>"]
        if (sub := g[SUB]) is not None:
            if not (sub := _stripped(sub)):
                return None
            if self._fold and not episodes and _folds(sub, title):
                parts[1] = title + b": " + sub  # as `bodies.shaped`
            parts.append(b"<sub-title>%s</sub-title>" % sub)
        if (desc := g[DESC]) is not None:
            desc = desc.strip(SPACE)
            if not desc:  # none (an Xtream panel writes `<desc></desc>`), unless one follows
                if g[DESCS]:
                    return None  # the parser's rule takes the next one
            elif (desc[0] > _ASCII or desc[-1] > _ASCII) and _unsure(desc):
                return None
            else:
                parts.append(b"<desc>%s</desc>" % desc)
        if (date := g[DATE]) is not None:
            if not (date := _stripped(date)):
                return None
            parts.append(b"<date>%s</date>" % date)
        if (cat := g[CAT]) is not None:
            cat = cat.strip(SPACE)
            if cat and (cat[0] > _ASCII or cat[-1] > _ASCII) and _unsure(cat):
                return None
            if cat:
                parts.append(b"<category>%s</category>" % cat)
            if more := g[CATS]:
                rest = _more(CATEGORY, more)
                if rest is None:
                    return None
                parts.append(rest)
        if (icon := g[ICON]) is not None:
            if not icon:
                return None  # the parser's rule lets a later icon have its say
            parts.append(b'<icon src="%s"/>' % icon)
        parts.append(episodes)
        if g[SHOWN] is not None:
            parts.append(b"<previously-shown/>")
        if g[NEW] is not None:
            parts.append(b"<new/>")
        parts.append(b"</programme>")
        return b"".join(parts)


def _more(pattern: re.Pattern[bytes], run: bytes) -> bytes | None:
    """The rest of a run of categories or episode numbers rendered (empty ones dropped)."""
    parts: list[bytes] = []
    for found in pattern.findall(run):
        system, raw = found if isinstance(found, tuple) else (None, found)
        text = _stripped(raw)
        if text is None:
            return None
        if not text:
            continue
        if pattern is EPISODE:
            parts.append(_EPISODE_NUM % (system or b"onscreen", text))
        else:
            parts.append(b"<category>%s</category>" % text)
    return b"".join(parts)


def _folds(sub: bytes, title: bytes) -> bool:
    """`bodies.shaped`'s test on the unescaped values: the sub-title is not in the title."""
    return canonical.unescaped_text(sub) not in canonical.unescaped_text(title)


_EPISODE_NUM = b'<episode-num system="%s">%s</episode-num>'


def _stripped(text: bytes) -> bytes | None:
    """`text` as the parser's `.strip()` leaves it; None when that is not certain from the bytes
    (a non-ASCII character at an end may be white space)."""
    text = text.strip(SPACE)
    if text and (text[0] > _ASCII or text[-1] > _ASCII) and _unsure(text):
        return None
    return text


def _unsure(text: bytes) -> bool:
    """Whether `.strip()` of the decoded value would take more than ASCII white space."""
    value = text.decode("utf-8", "replace")
    return value != value.strip()


_ASCII = 0x7F


_MEMO = 65536  # distinct channel values / time values remembered
# Blocks read the general way after one that was not spelled as we write (a guide that spells
# otherwise does so throughout, and a failed attempt is a pass over the block for nothing)
UNWRITTEN_SKIP = 16
