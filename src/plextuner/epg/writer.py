"""guide.xml per device, written incrementally (lxml xmlfile) and atomically."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import tempfile
import time
from array import array
from collections.abc import Iterator, Mapping, Sequence
from operator import lt
from pathlib import Path
from typing import IO, cast

import msgspec

from plextuner.buckets.models import ID_SUFFIX, Device, channel_id
from plextuner.epg.grouped import GroupedReader
from plextuner.epg.kept import NO_STOP, TIME_BASE, Kept, KeptList
from plextuner.epg.model import Programme
from plextuner.epg.spill import Spill
from plextuner.epg.xmltext import programme_body
from plextuner.fileio import Committer, fsync_dir
from plextuner.ingest.models import Channel
from plextuner.placeholders import Collected, fmt_time, steps
from plextuner.xmlescape import NEEDS_ESCAPE, xml_attr, xml_text


class Placeholders(msgspec.Struct, frozen=True, gc=False):
    """A channel's placeholder programmes, rendered from a shared template when written: for a
    50k-channel list with no guide they are almost the whole guide, and building an element per
    placeholder cost half a minute per refresh. A struct: made for every unmatched channel of
    every refresh, as a frozen dataclass it cost 0.55 us (27 ms of a 50k list), this 0.07."""

    title: str
    start: float
    end: float
    block: float


def placeholders(name: str, start: float, end: float, block: float) -> list[Programme]:
    first = start - start % block
    return [
        Programme(channel="", start=t, stop=t + block, title=name) for t in steps(first, end, block)
    ]


def channel_xml(number: str, channel: Channel, icon: str, id_style: str = "xmltv") -> str:
    """One `<channel>`: the name, the GuideNumber (what Plex matches on) and the tvg-id as
    display-names, the logo. Built as a string, byte-identical to the element lxml would write
    (a test holds them equal): an element per channel cost 0.4 s of a 50k-channel refresh, and
    escaping every value one by one another 0.3 s (one search over them all is the fast path)."""
    name, tvg = channel.name, channel.tvg_id
    icon = channel.logo or icon
    if NEEDS_ESCAPE.search(f"{name}{number}{tvg}{icon}") is not None:
        return _channel_xml_escaped(number, channel, icon, id_style)
    names = [name] if name else []
    if number and number != name:
        names.append(number)
    if tvg and tvg not in (name, number):
        names.append(tvg)
    cid = channel_id(number, id_style)
    shown = f"<display-name>{'</display-name><display-name>'.join(names)}</display-name>"
    logo = f'<icon src="{icon}"/>' if icon else ""
    return f'<channel id="{cid}">{shown if names else ""}{logo}</channel>'


def channels_xml(device: Device, icons: dict[str, str], id_style: str = "xmltv") -> bytes:
    """Every `<channel>` of a device's guide, in lineup order (`channel_xml`'s, a test holds them
    equal): written at the head of the guide, and its fingerprint's largest part. The common
    three distinct names spelled out without escaping, then checked once (`_plain`); a device
    with any value to escape is written an element at a time, each escaped."""
    if icons:
        shown = [(e.number, e.channel, e.channel.logo or icons.get(e.number, ""))
                 for e in device.entries]  # fmt: skip
    else:
        shown = [(e.number, e.channel, e.channel.logo) for e in device.entries]
    suffix = "" if id_style == "number" else ID_SUFFIX
    parts: list[str] = []
    add = parts.append
    tags = quotes = 0  # the markup's own `<` (as many `>`) and `"`, counted as it is written
    for number, ch, icon in shown:
        name, tvg = ch.name, ch.tvg_id
        if name and tvg and number and name != number and tvg not in (name, number):
            add(f'<channel id="{number}{suffix}"><display-name>{name}</display-name><display-name>')
            add(f"{number}</display-name><display-name>{tvg}</display-name>")
            tags += 8
        elif name and not tvg and number and name != number:  # no tvg-id (a third of some lists)
            add(f'<channel id="{number}{suffix}"><display-name>{name}</display-name><display-name>')
            add(f"{number}</display-name>")
            tags += 6
        else:  # a name missing or repeated: the general element, escaped as it needs
            element = channel_xml(number, ch, icon, id_style)
            add(element)
            tags, quotes = tags + element.count("<"), quotes + element.count('"')
            continue
        if icon:
            add(f'<icon src="{icon}"/></channel>')
            tags, quotes = tags + 1, quotes + 4
        else:
            add("</channel>")
            quotes += 2
    written = _plain("".join(parts), tags, quotes)
    if written is None:
        return "".join([channel_xml(n, c, i, id_style) for n, c, i in shown]).encode()
    return written


# Every byte but those an escape is for (`<>"&`) and the control characters: deleted, what is
# left is those
_ORDINARY = bytes(sorted(set(range(0x20, 0x100)) - set(b'<>"&')))


def _plain(text: str, tags: int, quotes: int) -> bytes | None:
    """`text` encoded when none of the values written into it needed escaping, else None. Its
    markup holds `tags` of `<` and `>` each and `quotes` of `"`, and nothing else an escape
    is for; so any more, or any `&`, control character or character XML cannot carry, came
    from a value. Counted over the encoded bytes in one pass (C; a class search over the
    values, joined apart for it, was a third of the work: 67 -> 56 ms for a 50k list)."""
    if not text.isascii() and ("\ufffe" in text or "\uffff" in text):
        return None
    try:
        data = text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return None
    # The markup's own are all there: one more is a value's
    return data if len(data.translate(None, _ORDINARY)) == 2 * tags + quotes else None


def _channel_xml_escaped(number: str, channel: Channel, icon: str, id_style: str) -> str:
    names = dict.fromkeys(n for n in (channel.name, number, channel.tvg_id) if n)
    parts = [f"<channel id={xml_attr(channel_id(number, id_style))}>"]
    parts.extend(f"<display-name>{xml_text(name)}</display-name>" for name in names)
    if icon:
        parts.append(f"<icon src={xml_attr(icon)}/>")
    parts.append("</channel>")
    return "".join(parts)


def programme_xml(cid: str, p: Programme, stop: float) -> str:
    """One `<programme>` as a string, byte-identical to the lxml element the writer built
    before (a property test holds them equal): an element tree per kept programme was a tenth
    of a big guide's ingest."""
    return programme_head(p.start, stop, xml_attr(cid)) + programme_body(p)


def programme_head(start: float, stop: float, quoted_cid: str) -> str:
    """The start tag: all of a programme that depends on the entry writing it."""
    return f"{_slot(start, stop)}{quoted_cid}>"


@functools.lru_cache(maxsize=8192)  # every channel of a guide repeats the same slots
def _slot(start: float, stop: float) -> str:
    return f'<programme start="{fmt_time(start)}" stop="{fmt_time(stop)}" channel='


def write_guide(  # noqa: PLR0913 - the options are keyword-only
    path: Path,
    device: Device,
    programmes: Mapping[str, Sequence[Programme | Kept] | Placeholders],
    icons: dict[str, str],
    *,
    generated: float | None = None,
    id_style: str = "xmltv",
    committer: Committer | None = None,
    spill: Spill | None = None,
    channels: bytes | None = None,
) -> int:
    """Write `path` atomically; returns the programme count. With a `committer`, the file is
    flushed and put in place by it, in the background, and the caller syncs the directory
    once after writing many (a sync per guide was 0.05 s of a refresh). `channels`: the
    device's `channels_xml` when the caller has it already (it fingerprinted them)."""
    count = 0
    stamp = fmt_time(generated or time.time())
    filler = Collected()  # noted at the end, rendered when read (placeholders.py)
    attrs = {"generator-info-name": "plextuner", "date": stamp}
    reader = None
    if spill is not None:  # the spilled channels' bodies, read a few channels at a time
        found = (programmes.get(e.number) for e in device.entries)
        reader = GroupedReader(spill, [k for k in found if isinstance(k, KeptList) and k])
    with _atomic_raw(path, attrs, committer) as fh:
        fh.write(channels_xml(device, icons, id_style) if channels is None else channels)
        for e in device.entries if programmes else ():  # (no programmes: only channels)
            items = programmes.get(e.number)
            if not items:
                continue
            cid = channel_id(e.number, id_style)
            if isinstance(items, Placeholders):
                count += filler.add((items.start, items.end, items.block), cid, items.title)
                continue
            quoted = xml_attr(cid)
            if isinstance(items, KeptList) and reader is not None:  # a provider's own guide
                parts = _packed(items, quoted, reader.bodies(items))
                fh.write(b"".join(parts))
                count += len(parts) // 3
                continue
            written: list[bytes] = []
            for i, p in enumerate(items):
                stop = p.stop or (items[i + 1].start if i + 1 < len(items) else p.start + 3600)
                if stop <= p.start:
                    continue
                head = programme_head(p.start, stop, quoted)
                if not isinstance(p, Kept):
                    written.append((head + programme_body(p)).encode())
                elif spill is not None:
                    written.append(head.encode() + spill.read(p.body))
                else:
                    raise ValueError("a spilled programme without its spill")
            fh.write(b"".join(written))
            count += len(written)
        fh.write(filler.note())
    return count


def _packed(items: KeptList, quoted: str, bodies: list[bytes]) -> list[bytes]:
    """The general loop's programmes for a packed list, three parts each (start tag, channel,
    body), without a `Kept` made for each (a device's share of a million programmes)."""
    starts, stops, n = items.starts, items.stops, len(items)  # offsets from TIME_BASE
    channel = f"{quoted}>".encode()
    base = TIME_BASE.__add__
    if n and stops.count(NO_STOP) == n:  # a guide without stops: each ends where the next
        stops = array("q", starts[1:])  # starts, as the loop below reads a missing one
        stops.append(starts[-1] + 3600)
    if all(map(lt, starts, stops)):
        # Every programme has its own stop after its start (a provider's guide; NO_STOP is
        # under every start): the loop below in C iterators, nothing skipped
        heads = _heads(starts, stops)
        return list(itertools.chain.from_iterable(zip(heads, itertools.repeat(channel), bodies)))
    parts: list[bytes] = []
    for i in range(n):
        start, stop = starts[i], stops[i]
        if stop == NO_STOP:  # none, as `p.stop or ...` above
            stop = starts[i + 1] if i + 1 < n else start + 3600
        if stop <= start:
            continue
        parts += (_slot_bytes(base(start), base(stop)), channel, bodies[i])
    return parts


@functools.lru_cache(maxsize=8192)
def _slot_bytes(start: float, stop: float) -> bytes:
    return _slot(start, stop).encode()


# Start tags (up to the channel) by their times as a `KeptList` holds them: looked up by the
# pair of offsets as they come out of the arrays (a tuple `zip` makes once and reuses), not
# through `_slot_bytes`'s float arguments and its cache's key (a lean guide's 2.5M programmes:
# ~150 ns less each). Bounded: a guide of irregular times (most pairs seen once) fills it and
# reads the rest the old way; a few MB at most, kept for the next guide.
_HEADS: dict[tuple[int, int], bytes] = {}
HEADS_MAX = 16_384


def _heads(starts: array[int], stops: array[int]) -> list[bytes]:
    found = list(map(_HEADS.get, zip(starts, stops, strict=True)))
    if all(found):  # every pair seen before (a head is never empty)
        return cast(list[bytes], found)
    base = TIME_BASE.__add__
    heads = list(map(_slot_bytes, map(base, starts), map(base, stops)))
    if len(_HEADS) < HEADS_MAX:
        _HEADS.update(zip(zip(starts, stops, strict=True), heads, strict=True))
    return heads


_TEMPORARY = ".tmp"  # `.<name>.<random>.tmp` beside the guide, until it is renamed over it


def remove_temporaries(path: Path) -> None:
    """What a writer killed while writing `path` left beside it (the guide itself stays)."""
    for tmp in path.parent.glob(f".{path.name}.*{_TEMPORARY}"):
        with contextlib.suppress(OSError):
            tmp.unlink()


@contextlib.contextmanager
def _atomic_raw(
    path: Path, attrs: dict[str, str], committer: Committer | None = None
) -> Iterator[IO[bytes]]:
    """An XMLTV `<tv>` whose body the caller writes as serialised bytes, then fsynced and renamed
    over `path` only when the body finished (a crash or an error leaves the old file); by the
    `committer` when one is given (then the caller syncs the directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TEMPORARY, dir=path.parent)
    head = "".join(f" {k}={xml_attr(v)}" for k, v in attrs.items())
    try:
        with os.fdopen(fd, "wb", buffering=1024 * 1024) as fh:
            fh.write(f"<?xml version='1.0' encoding='utf-8'?>\n<tv{head}>".encode())
            yield fh
            fh.write(b"</tv>")
            if committer is None:
                fh.flush()
                os.fsync(fh.fileno())
        if committer is not None:
            committer.submit(tmp, path)  # it owns the temp file from here
            return
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
