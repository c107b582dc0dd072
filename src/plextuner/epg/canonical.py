"""Programmes spelled exactly as the guide writer writes them, a block at a time.

plain.py reads a plainly spelled programme with a match of its own and puts its body together
from the matched pieces: ~2.4 us a programme of a lean guide (titles only, 2.5M programmes in
300 MB), more than libxml2 takes to parse it. Many guides (generated ones, a provider's own)
spell every programme as our writer does: `start`, `stop` and `channel` in that order with
single spaces, then the children in the writer's order (title, sub-title, description, date,
categories, icon, episode numbers with their system, the two flags), no white space between
them (a pretty-printer's is dropped first: `compacted`), every text non-empty with nothing at
either end the parser would strip, and `lang` only on a title, sub-title, description or
category (dropped first, as the writer drops it). Such a programme's body, everything after its
start tag, is then the bytes `BodyRenderer` writes (a sub-title folded into the title as it
folds it: `folded`), so a block of them is read by one `findall` and each body taken as it
stands: ~1.1 us a programme.

Only a block whose every programme is so spelled is read here (the matches must tile it to its
last `</programme>`, nothing between them but white space); the caller has checked the block
for refused characters, entities other than the three and invalid UTF-8 (plain.py's rules).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Container, Mapping

from plextuner.charclass import allowed_bytes
from plextuner.epg.kept import SIZE_BITS
from plextuner.epg.splitjoin import replaced

# An end of a text: printable ASCII but `<` and `>` (nothing the parser's `.strip()` takes, and
# a `>` the writer would escape), or a byte of a character beyond ASCII in a block holding none
# of the white space `.strip()` takes beyond ASCII (WIDE_SPACE: the caller's check; titles like
# `Émission … café` went to plain.py, and from there to the parser: 4.1x a bare iterparse).
_EDGE = rb"[!-;=?-~\x80-\xff]"
# The characters beyond ASCII that `str.isspace()` holds, in UTF-8 (a test holds the list whole)
WIDE_SPACE = re.compile(
    rb"\xc2[\x85\xa0]|\xe1\x9a\x80|\xe2\x80[\x80-\x8a\xa8\xa9\xaf]|\xe2\x81\x9f|\xe3\x80\x80"
)
_WIDE_E2 = re.compile(rb"\xe2(?:\x80[\x80-\x8a\xa8\xa9\xaf]|\x81\x9f)")


def wide_space_in(block: bytes) -> bool:
    """`WIDE_SPACE.search(block) is not None`, each lead byte looked for first (`in`, a memchr):
    the pattern tried at every byte took ~1.5 ms a 256 KB block of text beyond ASCII (a French
    guide's: more than the one pass's read of it), this ~0.2 ms with typographic quotes in
    every title, ~0.01 ms without."""
    return (
        (b"\xc2" in block and (b"\xc2\x85" in block or b"\xc2\xa0" in block))
        or (b"\xe1" in block and b"\xe1\x9a\x80" in block)
        or (b"\xe2" in block and _WIDE_E2.search(block) is not None)
        or (b"\xe3" in block and b"\xe3\x80\x80" in block)
    )


# Inside, what plain.py's text allows (no `<`, `>` or CR) spelled as the bytes it may hold
# once the caller has refused the control characters XML refuses (plain.py's REFUSED): a range
# the regex engine looks up, not three exclusions it compares a byte with (7-15% of a read).
_TEXT = _EDGE + rb"(?:[\t\n\x20-\x3b\x3d\x3f-\xff]*" + _EDGE + rb")?"
# The same inside long texts: one byte excluded (`<`) is a tight loop for the regex engine where
# a set of three is a lookup a byte (a guide of 1 KB descriptions: ~3.5 -> ~1.4 ns a byte); the
# other two are looked for in the block at once (`read_block`)
_LONG_TEXT = _EDGE + rb"(?:[^<]*" + _EDGE + rb")?"
# A non-empty attribute value with nothing to normalise (the sets spelled by what they allow,
# charclass.py: a lean guide's programmes read ~17% sooner)
_VALUE = allowed_bytes(b'"<>' + bytes(range(0x20))) + b"++"
# Values and texts read here hold no `>` (legal in XML, never in a real time or id): so a ` />`
# or `" >` that `compacted` respells is never inside one that tiles
_PLAIN_VALUE = allowed_bytes(b'"<>&\t\n\r') + b"*+"
TIME = b'"' + _PLAIN_VALUE + b'"'  # a time attribute's value, quoted
_TIMES = rb"start=" + TIME + rb"(?: stop=" + TIME + rb")?"  # XMLTV's stop is optional
_CHANNEL = b'channel="(' + _PLAIN_VALUE + b')"'


def _programme(text: bytes) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """A programme spelled as the writer writes it, its texts `text`: with the times first, and
    with the channel first (ElementTree's sorted attributes, some generators: every such
    programme went to the parser, a lean guide so spelled 3.97x a bare iterparse; the times
    captured ahead, so that the groups come in the same order)."""
    # Every child after the title is optional. The end tag is tried first where most
    # programmes end (after the title: a lean guide; after the description: an Xtream Codes
    # panel's), so that they do not try each later child in turn: the same programmes matched,
    # ~0.2 us sooner each (lean 690 -> 480 ns, Xtream 1000 -> 815 ns a programme).
    tail = (
        rb"(?:<date>" + text + rb"</date>)?"
        rb"(?:<category>" + text + rb"</category>)*+"
        rb'(?:<icon src="' + _VALUE + rb'"/>)?'
        rb'(?:<episode-num system="' + _VALUE + rb'">' + text + rb"</episode-num>)*+"
        rb"(?:<previously-shown/>)?(?:<new/>)?"
    )
    body = (
        rb"(<title>" + text + rb"</title>(?:</programme>|"
        rb"(?:<sub-title>" + text + rb"</sub-title>)?"
        rb"(?:<desc>" + text + rb"</desc>)?"
        rb"(?:</programme>|" + tail + rb"</programme>)))"
    )
    times_first = rb"([ \t\n\r]*+)<programme (" + _TIMES + rb") " + _CHANNEL + rb">" + body
    channel_first = (
        rb'([ \t\n\r]*+)<programme (?=channel="' + _PLAIN_VALUE + b'" (' + _TIMES + rb")>)"
        + _CHANNEL + rb" " + _TIMES + rb">" + body
    )  # fmt: skip
    return re.compile(times_first), re.compile(channel_first)


_PROGRAMME, _CHANNEL_FIRST = _programme(_TEXT)


@functools.cache
def _long() -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """`_programme(_LONG_TEXT)`, compiled at the first block of long programmes (~8 ms of a
    process's start: most guides hold none)."""
    return _programme(_LONG_TEXT)


LONG = 512  # bytes of a block's first programme from which its texts are read as long ones
# The bytes of a match outside its groups: `<programme `, ` channel="`, `">` (or `channel="`,
# `" `, `>`; the times, consumed after the channel, are the group taken ahead)
_FIXED = len(b"<programme ") + len(b' channel="') + len(b'">')

# (the white space before it, the time attributes as they stand, the channel value, the body)
Found = tuple[bytes, bytes, bytes, bytes]
Slot = tuple[int, int]  # as a `KeptList` holds them (spill.py)
Kept = tuple[str, int, int, bytes]  # plain.py's `Rendered`


def channel_first(block: bytes) -> bool:
    """Whether the block's first start tag puts `channel` first (a guide spells them all alike;
    one spelled otherwise is read the general way)."""
    return block.startswith(b"<programme channel=", block.find(b"<programme "))


def _no_cr_nor_gt_in_texts(block: bytes, end: int) -> bool:
    """What `_TEXT` refuses and `_LONG_TEXT` takes (the control characters aside: the caller
    refuses them), found in none of the texts of `block[:end]` should its programmes tile: no
    CR anywhere, and no `>` but the tags' own. Every tag the
    patterns take holds one `<` and one `>` (their values hold neither) and no text a `<`, so
    a tiled block holds as many of each exactly when no text holds a `>`."""
    return block.find(b"\r", 0, end) < 0 and block.count(b"<", 0, end) == block.count(b">", 0, end)


def balanced(marks: bytes) -> bool:
    """`_no_cr_nor_gt_in_texts` told from a block's marks (its CR, `<` and `>`, kept by one
    `translate`: plain.py's), so that the block is not searched three times more."""
    return b"\r" not in marks and marks.count(b"<") == marks.count(b">")


def read_block(block: bytes, end: int, plain: bool | None = None) -> list[Found] | None:
    """Every programme of `block[:end]` (`end` just after its last `</programme>`), or None
    when one of them is spelled otherwise (or anything else stands between them). `plain`:
    `_no_cr_nor_gt_in_texts` when the caller knows it (`balanced`)."""
    first = channel_first(block)
    pattern = _CHANNEL_FIRST if first else _PROGRAMME
    long = block.find(END) > LONG
    if long and (_no_cr_nor_gt_in_texts(block, end) if plain is None else plain):
        times_first, channel_first_ = _long()
        pattern = channel_first_ if first else times_first
    if pattern.match(block, 0, end) is None:
        return None  # the tiling starts with a match at 0: a block of a rich guide (credits,
        # ratings) fails here in a match, not in a `findall` trying every programme (0.4 s)
    found: list[Found] = pattern.findall(block, 0, end)
    # The matches do not overlap and end by `end`: they tile the block exactly when their
    # groups and fixed bytes add up to its length (one join, in C).
    held = len(b"".join(itertools.chain.from_iterable(found))) + _FIXED * len(found)
    return found if found and held == end else None


# White space between two tags inside a programme (a pretty-printed guide: lxml's or
# ElementTree's `indent`, a grabber's tabs). Neither the parser's reading nor the writer keeps it,
# and a `<` outside markup always begins a tag, so `>` white space `<` is only ever such a gap or
# a text's stripped end (a text of white space only becomes empty, which the one pass refuses).
# Every such programme went to plain.py: a lean guide indented by tabs was 2.1x a bare iterparse.
_GAP = re.compile(rb">([ \t\n\r]++)<(?!programme )")  # (between programmes: allowed as it is)
GAP_SAMPLE = 4096  # bytes of a block its gaps are learned from
GAPS = 4  # distinct gaps a block may hold and still be compacted


def compacted(block: bytes, whole: Container[bytes] = ()) -> bytes:
    """`block` spelled as the writer writes it where a generator's spelling differs only in
    what the reading drops, each change made when the block's first bytes show it (one not
    made leaves the block untiled: read_block), or anywhere in it for the spellings in `whole`
    (a guide ordered by channel holds some only in some channels' runs: plain.py learns them
    from a block that did not tile, `left_in`):
    - the white space between the tags inside its programmes (a pretty-printer's), when they
      hold few distinct gaps;
    - a space before a tag's end (`<new />`: ElementTree's; `channel="c" >`: Xtream Codes');
      it ends a tag, or stands in a value or a text beside a `>`, which no value or text read
      here holds; an empty element written whole (`<new></new>`: Go's encoding/xml), where an
      end tag after a `">` ends an empty icon or stands in a text the one pass does not read;
    - an empty description (Xtream Codes writes one for every programme): the reading takes
      the first description that is not empty, and `<desc></desc>` can only be tags."""
    for spaced, written in _SPACED:
        # The sample only: a whole block's search is ~0.15 ms, for every block of every guide
        if spaced in whole or block.find(spaced, 0, GAP_SAMPLE) >= 0:
            block = replaced(block, spaced, written)
    # The sample ends in a `</programme>`'s `</` (cut after a `<`, the look-ahead would pass)
    gaps = set(_GAP.findall(block, 0, block.rfind(END, 0, GAP_SAMPLE) + 2))
    if 0 < len(gaps) <= GAPS:
        for gap in gaps:
            block = replaced(block, b">" + gap + b"<", b"><")
    if NO_DESC in whole or block.find(NO_DESC, 0, GAP_SAMPLE) >= 0:  # (the gaps gone first)
        block = replaced(block, NO_DESC, b"")
    return block


def left_in(source: bytes) -> set[bytes]:
    """The spellings `compacted` takes out that are still in `source` (past its sample)."""
    return {spaced for spaced in (*_SPACED_ONLY, NO_DESC, LANG) if spaced in source}


_SPACED = (
    (b" />", b"/>"),
    (b'" >', b'">'),
    (b'"></icon>', b'"/>'),
    (b"<previously-shown></previously-shown>", b"<previously-shown/>"),
    (b"<new></new>", b"<new/>"),
)
_SPACED_ONLY = tuple(spaced for spaced, _ in _SPACED)
NO_DESC = b"<desc></desc>"
LANG = b' lang="'
END = b"</programme>"


# A `lang` attribute ending a start tag: the parser's reading of a programme keeps none (a
# title's, a description's or a category's text only), nor does the writer write one
_LANGUAGE = re.compile(rb' lang="[^"<&\t\n\r]*+">')
LANGUAGES = 4  # distinct `lang` values a block may hold and still be read here


def unlang(block: bytes, whole: Container[bytes] = ()) -> bytes:
    """`block` with the `lang` attribute that ends a start tag dropped (a guide in the iptv-org
    style spells `<title lang="en">`): the bytes the writer writes. Exact: a double-quoted value
    holds no `"`, and a text holding ` lang="en">` holds a `>`, which the one pass refuses in a
    text; an element the one pass does not read leaves the block untiled either way. A block
    still holding such an attribute after LANGUAGES values, or holding none in its first
    GAP_SAMPLE bytes and one later (unless LANG is in `whole`), does not tile (read_block)."""
    if LANG not in whole and block.find(LANG, 0, GAP_SAMPLE) < 0:  # the sample only, as
        return block  # `compacted` (a guide spells its programmes alike): a whole block ~0.1 ms
    for _ in range(LANGUAGES):
        found = _LANGUAGE.search(block)
        if found is None:
            break
        block = block.replace(found.group(0), b">")
    return block


def written(block: bytes, whole: Container[bytes] = ()) -> tuple[bytes, bool]:
    """`block` as the one pass reads it: what other writers add and the reading drops taken
    out (`unlang`, then `compacted`, whose empty descriptions are found once `lang` is gone,
    then the elements the writer does not write, found once the gaps around them are gone);
    and whether the block's marks tell `balanced` of it. `unlang` and `compacted` take out as
    many `<` as `>` and no text, only white space in gaps; a dropped child may take a text's
    `>` with it."""
    shaped = compacted(unlang(block, whole), whole)
    source = unwritten_dropped(shaped)
    return source, source is shaped


# A programme's children the writer does not write (the parser's reading skips them): a rich
# guide's (Schedules Direct's, a TV listings site's) credits, ratings, video and audio. Every
# such programme went to plain.py (a 100 MB guide of them 1.3-1.5x a bare iterparse).
_UNWRITTEN = (b"credits", b"keyword", b"language", b"orig-language", b"length", b"url",
              b"country", b"video", b"audio", b"premiere", b"last-chance", b"subtitles",
              b"rating", b"star-rating", b"review", b"image")  # fmt: skip
_ATTRS = rb'(?:[ \t\n\r]++[\w:.-]++="[^"<>]*+")*+[ \t\n\r]*+'
_CHILD = rb"<([\w.-]++)" + _ATTRS + rb"(?:/>|>[^<>]*+</\1>)"  # text-only or empty


@functools.cache  # compiled when a guide first holds one (16 at import: ~5 ms of each reader)
def _unwritten(name: bytes) -> re.Pattern[bytes]:
    """The element `name` whole, empty or holding text and elements of text only, its tail
    empty (a `<` after it). Dropping it changes no text the reading reads: the text before it
    stays as it is, and nothing comes after it to join that text."""
    tag = re.escape(name)
    return re.compile(
        rb"<" + tag + rb"(?=[ \t\n\r/>])" + _ATTRS
        + rb"(?:/>|>[^<>]*+(?:" + _CHILD + rb"[^<>]*+)*+</" + tag + rb">)(?=<)"
    )  # fmt: skip


_UNWRITTEN_AT = tuple((b"<" + name, name) for name in _UNWRITTEN)


def unwritten_dropped(block: bytes) -> bytes:
    """`block` without the children the writer does not write, each kind dropped where the
    block's first bytes hold one (a guide spells its programmes alike). One it does not drop
    (another child in it, a tail of text) leaves the block untiled (read_block)."""
    for start, name in _UNWRITTEN_AT:
        if block.find(start, 0, GAP_SAMPLE) >= 0:
            block = _unwritten(name).sub(b"", block)
    return block


# References in text the writer writes as characters: `&quot;` and `&apos;` (what Python's
# `html.escape` writes, `&#x27;` too), numeric references to printable characters (what an ASCII
# output encoding writes). Every programme holding one went to the parser: a lean guide with a
# few in each title, 3.2x a bare iterparse. Replaced in a block only when no attribute value in it
# holds a `&` (there the parser reads them otherwise); a reference to a control character, or
# outside Unicode, stays (the parser's to judge).
_NUMERIC = re.compile(rb"&#(?:[0-9]{1,7}|x[0-9a-fA-F]{1,6});")
_AMP_IN_VALUE = re.compile(rb"""=[ \t\n\r]*(?:"[^"]*&|'[^']*&)""")
_AS_WRITTEN = {b"&": b"&amp;", b"<": b"&lt;", b">": b"&gt;"}


def unescaped(block: bytes, utf8: bool) -> bytes:
    """`block` with the references in its text that the writer writes as characters replaced
    by them (escaped as it escapes them); `utf8`: the block's encoding (else only ASCII)."""
    if _AMP_IN_VALUE.search(block):
        return block
    block = replaced(replaced(block, b"&quot;", b'"'), b"&apos;", b"'")
    if b"&#" not in block:
        return block
    return _NUMERIC.sub(lambda m: _character(m.group(0), utf8), block)


@functools.lru_cache(maxsize=4096)  # a guide repeats a few
def _character(reference: bytes, utf8: bool) -> bytes:
    code = int(reference[3:-1], 16) if reference[2:3] == b"x" else int(reference[2:-1])
    if code < 0x20 or 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF) or code > 0x10FFFF:
        return reference
    if code >= 0x80 and not utf8:
        return reference
    char = chr(code).encode("utf-8")
    return _AS_WRITTEN.get(char, char)


def times(key: bytes) -> tuple[bytes, bytes]:
    """The quoted start and stop values of a match's time attributes (an empty stop for none:
    read as none, as the parser reads a missing one)."""
    cut = key.find(b'" stop="')
    return (key[6 : cut + 1], key[cut + 7 :]) if cut >= 0 else (key[6:], b'""')


def kept(
    found: list[Found],
    slots: Mapping[bytes, Slot | None],
    channels: Mapping[bytes, str | None],
    slot_of: Callable[[bytes, bytes, bytes], Slot | None],
    channel_of: Callable[[bytes], str | None],
    fold: bool,
) -> tuple[list[Kept], int] | None:
    """The programmes of `found` that are kept (a channel of ours, in the window) and how many
    are not, with the plain reader's memos (`slots`, `channels`) and what fills them; None for
    a channel value the parser decides on (unreadable or empty: plain.py's rule). `fold`: the
    block holds sub-titles and `epg.fold_subtitle` is on (see `folded`)."""
    out: list[Kept] = []
    dropped = 0
    for _, key, raw, body in found:
        try:
            slot = slots[key]
        except KeyError:
            slot = slot_of(key, *times(key))
        try:
            channel = channels[raw]
        except KeyError:
            channel = channel_of(raw)
        if channel is None:
            return None
        if slot is None or not channel:
            dropped += 1
        elif fold and b"<sub-title>" in body:
            out.append((channel, slot[0], slot[1], folded(body)))
        else:
            out.append((channel, slot[0], slot[1], body))
    return out, dropped


def references(found: list[Found], origin: int) -> list[int]:
    """The spill reference of each programme's body where it lies in the guide's file (`found`
    tiles a block of the file's own bytes from `origin`, its first byte's reference offset:
    plain.py's `SourcedRun`); the body last in each match, after its fixed bytes."""
    out: list[int] = []
    at = origin
    for ws, key, raw, body in found:
        at += len(ws) + len(key) + len(raw) + _FIXED
        out.append(at << SIZE_BITS | len(body))
        at += len(body)
    return out


def folded(body: bytes) -> bytes:
    """A body with a sub-title, as `bodies.shaped` folds it into the title when the programme
    has no episode number and the sub-title is not in the title already (their values as the
    parser reads them: the three entities a block read here may hold, undone)."""
    if b"<episode-num " in body:
        return body
    cut = body.find(b"</title>")
    sub = body[cut + 19 : body.find(b"</sub-title>", cut)]
    if body.find(b"&", 7, cut + 19 + len(sub)) < 0:  # no entity: the bytes are the values
        if sub in body[7:cut]:
            return body
    elif unescaped_text(sub) in unescaped_text(body[7:cut]):
        return body
    return b"".join((body[:cut], b": ", sub, body[cut:]))


def unescaped_text(text: bytes) -> bytes:
    """A text's value with the three entities the writer writes undone."""
    return text.replace(b"&lt;", b"<").replace(b"&gt;", b">").replace(b"&amp;", b"&")
