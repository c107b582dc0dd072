"""Safe, streaming XMLTV reading: hardened lxml iterparse, elements cleared as they are consumed.

No entity resolution, no DTD or network loading, libxml2's size limits kept; a file declaring
entities or an internal DTD subset is refused before parsing. A file that ends early keeps what
parsed cleanly and says so.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Container, Generator, Iterator
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any

from plextuner import memtrim
from plextuner.epg.bounded import Until, bounded
from plextuner.epg.emit import RenderedRun
from plextuner.epg.markup import Markup
from plextuner.epg.model import GuideChannel, ParseOutcome, Programme
from plextuner.epg.plain import PlainReader
from plextuner.epg.prefilter import CHUNK, Prefilter, ascii_codec
from plextuner.epg.resync import HARDENED, Feeder
from plextuner.epg.unclosed import RECOVER_MAX, resume_point
from plextuner.errors import EpgError

if TYPE_CHECKING:  # imported where a guide is parsed: a refresh without one never loads it
    from lxml import etree

    from plextuner.epg.premend import Mends

_TIME = re.compile(
    r"^\s*(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?\s*([+-]\d{4}|[A-Za-z]{1,5})?"
)
_ZONES = {
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "BST": 60,
    "CET": 60,
    "CEST": 120,
    "EST": -300,
    "EDT": -240,
    "CST": -360,
    "CDT": -300,
    "MST": -420,
    "MDT": -360,
    "PST": -480,
    "PDT": -420,
}
_DANGEROUS = re.compile(rb"<!ENTITY|<!DOCTYPE[^>\[]*\[", re.IGNORECASE)
HEAD_SCAN = 64 * 1024
TRIM_EVERY = (16 << 20) // CHUNK  # blocks between heap trims (16 MB read): ~1.6 ms each


@functools.lru_cache(maxsize=8192)  # guides repeat the same slot times across channels
def parse_time(text: str | None) -> float | None:
    """Epoch seconds of an XMLTV time: `YYYYMMDDhhmmss +zzzz` or a prefix; no zone means UTC."""
    if not text:
        return None
    m = _TIME.match(text)
    if not m:
        return None
    y, mo, d, h, mi, s = (
        int(p) if p else dflt for p, dflt in zip(m.groups()[:6], (0, 1, 1, 0, 0, 0), strict=True)
    )
    try:
        dt = datetime(y, mo, d, h, mi, s, tzinfo=UTC)
    except ValueError:
        return None
    zone = m.group(7)
    try:
        if zone:
            if zone[0] in "+-":
                minutes = int(zone[1:3]) * 60 + int(zone[3:5])
                dt -= timedelta(minutes=minutes if zone[0] == "+" else -minutes)
            else:
                dt -= timedelta(minutes=_ZONES.get(zone.upper(), 0))
        return dt.timestamp()
    except (OverflowError, ValueError):  # year 1 minus an offset, year 9999 plus one
        return None


def check_head(head: bytes, source: str) -> None:
    stripped = head.lstrip()
    if not stripped:
        raise EpgError(f"{source}: empty guide")
    if not stripped.startswith((b"<", b"\xef\xbb\xbf")):
        raise EpgError(f"{source}: not XML")
    if _DANGEROUS.search(head):
        raise EpgError(f"{source}: refused: the guide declares entities or an internal DTD subset")


SHARED_MAX = 200_000  # distinct short strings shared per parse (ids, titles, categories)


def _programme(
    elem: etree._Element,
    start: float | None = None,
    stop: float | None = None,
    channel: str | None = None,
) -> Programme | None:
    """The programme element's fields; `start`, `stop` and `channel` when the caller has them
    already (reading an attribute of an lxml element costs ~1 us)."""
    start = start if start is not None else parse_time(elem.get("start"))
    channel = channel or elem.get("channel")
    if start is None or not channel:
        return None
    p = Programme(
        channel=channel,
        start=start,
        stop=stop if stop is not None else parse_time(elem.get("stop")),
        title="",
    )
    categories: list[str] = []
    episodes: list[tuple[str, str]] = []
    for child in elem:  # one pass over the children: first title/sub-title/desc/date win
        tag, text = child.tag, (child.text or "").strip()
        if tag == "title":
            p.title = p.title or text
        elif tag == "sub-title":
            p.sub_title = p.sub_title or text
        elif tag == "desc":
            p.desc = p.desc or text
        elif tag == "category" and text:
            categories.append(text)
        elif tag == "episode-num" and text:
            episodes.append((child.get("system") or "onscreen", text))
        elif tag == "icon" and not p.icon:
            p.icon = child.get("src") or ""
        elif tag == "date":
            p.date = p.date or text
        elif tag == "new":
            p.new = True
        elif tag == "previously-shown":
            p.previously_shown = True
    p.categories, p.episode_nums = tuple(categories), tuple(episodes)
    return p


def _share(p: Programme, shared: dict[Any, Any]) -> None:
    """Every kept programme held its own copy of its channel id, title, categories and
    episode numbers; three days of a 3,000-channel guide are ~350k programmes, and these
    repeat (a third of their memory). One object per distinct value instead."""
    share = shared.setdefault
    p.channel, p.title = share(p.channel, p.channel), share(p.title, p.title)
    p.categories = share(p.categories, p.categories)
    if p.episode_nums:  # reruns and sister feeds repeat them
        p.episode_nums = share(p.episode_nums, p.episode_nums)


def _channel(elem: etree._Element) -> GuideChannel | None:
    """The channel's id, its display-names that are not empty (the first one's language), its
    first icon and its first channel number: one pass over the children (three searches were
    4.9 us a channel against 1.5; a guide of 50,000 channels)."""
    cid = elem.get("id")
    if not cid:
        return None
    names: list[str] = []
    lang = icon = lcn = None
    for child in elem:
        tag = child.tag
        if tag == "display-name":
            text = child.text
            if text and (text := text.strip()):
                if lang is None:
                    lang = child.get("lang") or ""
                names.append(text)
        elif tag == "icon":
            if icon is None:
                icon = child.get("src") or ""
        elif tag == "lcn" and lcn is None:
            lcn = (child.text or "").strip()
    return GuideChannel(cid, tuple(names), icon or "", lang or "", lcn or "")


def iter_guide(  # noqa: PLR0913 - the options are keyword-only
    fh: IO[bytes],
    source: str,
    outcome: ParseOutcome,
    channels: Callable[[], Container[str]] | None = None,
    window: tuple[float, float] | None = None,
    *,
    until: Until | None = None,
    fold: bool | None = None,
    origin: int | None = None,
) -> Iterator[GuideChannel | Programme | RenderedRun]:
    """Channels and programmes in file order; memory stays flat whatever the file size.

    `channels()` (asked once, at the first programme: the DTD puts every channel first) and
    `window` prune programmes before any Python object is made for them; most never reach the
    parser at all (see prefilter.py). `until`: the file may end early, where another process
    reads the rest (halves.py). `fold` (for a reader that renders what it keeps): plainly spelled
    programmes come rendered from their bytes, not through the parser, in runs (`RenderedRun`,
    `epg.fold_subtitle` applied: see plain.py); without it, kept programmes share equal strings
    (worth it when they are held as objects, not when each is rendered and dropped at once).
    `origin`: the spill reference of the stream's first byte, where the reader's spill reads the
    file in place (`Spill.add_source`): long bodies come referenced there (`SourcedRun`).
    """

    head = fh.read(HEAD_SCAN)
    check_head(head, source)
    fh.seek(0)
    lo, hi = window or (float("-inf"), float("inf"))
    codec = ascii_codec(head)
    prefilter = _prefilter(codec, channels, window, fold)
    if prefilter.plain is not None:
        prefilter.plain.origin = origin
    fh = bounded(fh, until, lambda: prefilter.markup.outside)
    shared: dict[Any, Any] | None = {} if fold is None else None
    feeder = Feeder[GuideChannel | Programme](
        _new_parser,
        head,
        codec == "utf-8",
        functools.partial(_item, prefilter, lo, hi, outcome, shared),  # (no frame of its own)
        outcome,
    )
    error: etree.XMLSyntaxError | None = None
    mends = prefilter.plain.mends if prefilter.plain is not None else None
    first: str | None = None  # the first of the parser's refusals and the plain reader's mends
    start: int | None = 0  # where the stream is read from: its start, or past a construct
    recovered = 0  # left open (unclosed.py)
    try:
        while start is not None:
            error, first = yield from _read_pass(
                fh, start, prefilter, feeder, outcome, mends, first
            )
            start, error = _read_on(fh, prefilter, feeder, error, start, recovered)
            recovered += 1
    finally:
        outcome.skipped += prefilter.skipped
        outcome.malformed, outcome.malformed_first = feeder.malformed, feeder.first_error
        if mends is not None and mends.count:  # programmes put right before they were read
            outcome.malformed += mends.count
            outcome.malformed_first = first or outcome.malformed_first or mends.first
    if error is not None:
        if outcome.channels or outcome.programmes:
            outcome.truncated = str(error)[:200]
            return
        raise EpgError(f"{source}: not a valid XMLTV file ({str(error)[:160]})") from None


def _read_pass(
    fh: IO[bytes],
    start: int,
    prefilter: Prefilter,
    feeder: Feeder[GuideChannel | Programme],
    outcome: ParseOutcome,
    mends: Mends | None,
    first: str | None,
) -> Generator[
    GuideChannel | Programme | RenderedRun, None, tuple[etree.XMLSyntaxError | None, str | None]
]:
    """The stream read from `start` to its end or to the error that ends the reading (which
    it returns, with the first of the parser's refusals and the plain reader's mends, `first`
    as known before)."""
    markup = prefilter.markup
    at = markup.state  # where the next block begins (see Prefilter.blocks)
    for block in _trimmed(prefilter.blocks(fh, start)):
        if isinstance(block, RenderedRun):  # programmes read from their bytes (plain.py)
            outcome.programmes += len(block)
            yield block
            error = None
        else:
            error = yield from feeder.feed(block, at)
            at = markup.state
        # Which came first, told after each piece (a block's mends, made as it is taken from
        # the prefilter, count as before its refusals)
        if first is None and mends is not None and (mends.first or feeder.first_error):
            first = mends.first or feeder.first_error
        if error is not None:
            return error, first
    error = feeder.close()
    yield from feeder.drained()
    return error, first


def _read_on(
    fh: IO[bytes],
    prefilter: Prefilter,
    feeder: Feeder[Any],
    error: etree.XMLSyntaxError | None,
    start: int,
    recovered: int,
) -> tuple[int | None, etree.XMLSyntaxError | None]:
    """Where the reading goes on, past a comment, CDATA section or PI the guide left open
    (unclosed.py: the reading from `start` ended inside one), the parser and the prefilter set
    to read from there; and the error that ends the reading, if any (none when nothing but
    the broken programme was lost: no element follows it)."""
    if error is None or prefilter.markup.closer is None or recovered >= RECOVER_MAX:
        return None, error
    try:
        found = resume_point(fh, start)
        if found is None:
            return None, error
        opened, resume = found
        why = f"{str(error)[:120]} (opened at byte {opened})"
        if not feeder.reopen(why, read_on=resume is not None):
            return None, error
        if resume is None:  # (the end of the file)
            return None, None
        fh.seek(resume)
    except (OSError, ValueError, AttributeError):  # a stream that cannot be read again
        return None, error
    prefilter.markup = Markup()
    return resume, None


def _new_parser() -> etree.XMLPullParser:
    from lxml import etree  # lazily: see the imports

    return etree.XMLPullParser(
        events=("end",), tag=("channel", "programme"), dtd_validation=False, **HARDENED
    )


def _prefilter(
    codec: str | None,
    channels: Callable[[], Container[str]] | None,
    window: tuple[float, float] | None,
    fold: bool | None,
) -> Prefilter:
    prefilter = Prefilter(
        codec, channels, functools.partial(in_window, *window) if window else None
    )
    if fold is not None and window is not None and codec is not None:
        prefilter.plain = PlainReader(codec, fold, window, parse_time)
    return prefilter


def _item(
    prefilter: Prefilter,
    lo: float,
    hi: float,
    outcome: ParseOutcome,
    shared: dict[Any, Any] | None,
    elem: etree._Element,
) -> GuideChannel | Programme | None:
    """The element as a channel or a kept programme (counted), cleared either way."""
    item: GuideChannel | Programme | None = None
    if elem.tag == "programme":
        wanted, channel = prefilter.wanted, elem.get("channel")
        if wanted is None or channel in wanted:
            start, stop = parse_time(elem.get("start")), parse_time(elem.get("stop"))
            if _overlaps(lo, hi, start, stop):
                item = _programme(elem, start, stop, channel)
                if item is not None and shared is not None and len(shared) < SHARED_MAX:
                    _share(item, shared)
        elem.clear()
        if item is None:
            outcome.skipped += 1
        else:
            outcome.programmes += 1
        return item
    item = _channel(elem)
    elem.clear()
    if item is not None:
        outcome.channels += 1
    return item


def in_window(lo: float, hi: float, start_text: str, stop_text: str) -> bool:
    """The element path's window rule on raw attribute values (for the prefilter)."""
    return _overlaps(lo, hi, parse_time(start_text), parse_time(stop_text))


def _overlaps(lo: float, hi: float, start: float | None, stop: float | None) -> bool:
    """A programme in the window (one without a stop lasts an hour; an unreadable start is out)."""
    return start is not None and start < hi and (stop or start + 3600) > lo


def _trimmed(
    blocks: Iterator[bytes | RenderedRun | None],
) -> Iterator[bytes | RenderedRun | None]:
    """`blocks`, the heap handed back every TRIM_EVERY of them (see memtrim.py): freed nodes
    and strings of the blocks parsed so far otherwise stay in the process's RSS."""
    for n, block in enumerate(blocks, 1):
        if n % TRIM_EVERY == 0:
            memtrim.trim()
        yield block
