"""Start tags spelled otherwise than the guide writer spells them, respelled as it does
(`respelled`), so that the one pass (canonical.py) and plain.py read them natively."""

from __future__ import annotations

import functools
import itertools
import re

from plextuner.epg.canonical import TIME
from plextuner.epg.heads import MAX_ATTRIBUTES

# A start tag read natively (by the one pass or by plain.py): the times and the channel, in
# either order, nothing else
_STOP = rb"(?:[ \t\n\r]+stop=" + TIME + rb")?"
_NATIVE = re.compile(
    rb"<programme (?:start=" + TIME + _STOP + rb"[ \t\n\r]+channel=" + TIME
    + rb"|channel=" + TIME + rb"[ \t\n\r]+start=" + TIME + _STOP + rb")[ \t\n\r]*>"
)  # fmt: skip
# Any other start tag of plain attributes on one line: single quotes, other attributes (an
# Xtream panel's `start_timestamp`, a `catchup-id`), another order
_ANY_TAG = re.compile(
    rb"<programme((?:[ \t]+[\w:.-]+=(?:\"[^\"<&\t\n\r]*\"|'[^'\"<&\t\n\r]*'))+)[ \t]*>"
)
_ATTR = re.compile(rb"""([\w:.-]+)=(?:"([^"]*)"|'([^']*)')""")


def respelled(block: bytes) -> bytes:
    """`block` with its start tags spelled as the writer spells them when its first is not
    read natively: other attributes dropped (the parser reads only these three), values in
    double quotes, a missing stop empty (read as none either way). Every such programme went
    to the parser: lean guides with single quotes or a `catchup-id` were 6.2x and 3.2x a bare
    iterparse. A tag with a duplicate attribute, or without start or channel, stays."""
    at = block.find(b"<programme ")
    if at < 0 or _NATIVE.match(block, at):
        return block
    first = _ANY_TAG.match(block, at)
    alike = _spelling(first.group(1)) if first is not None else None
    if alike is not None and (out := _respelled_alike(block, *alike)) is not None:
        return out
    return _ANY_TAG.sub(_respell, block)


# One attribute of a start tag `_ANY_TAG` takes: its name, its value with its quotes
_QUOTED = re.compile(rb"""[ \t]+([\w:.-]+)=("[^"<&\t\n\r]*"|'[^'"<&\t\n\r]*')""")
Spelling = tuple[re.Pattern[bytes], int, int, int]  # a start tag's; where start, channel, stop


@functools.lru_cache(maxsize=64)  # a guide spells its start tags a few ways at most
def _spelling(attrs: bytes) -> Spelling | None:
    """The pattern of start tags with these attributes in this order and quoting (each value a
    group), and the groups of start, channel and stop (0: none); None where `_respell` would
    leave the tag (a duplicate, no start or channel)."""
    found = _QUOTED.findall(attrs)
    names = [name for name, _ in found]
    if len(set(names)) != len(names) or b"start" not in names or b"channel" not in names:
        return None
    if len(names) > MAX_ATTRIBUTES:  # a group a value: a hostile tag's thousands, ~0.2 s a block
        return None  # (each tag is then respelled alone, `_respell`)
    pattern = rb"<programme"
    for name, quoted in found:
        value = rb'"([^"<&\t\n\r]*)"' if quoted[:1] == b'"' else rb"""'([^'"<&\t\n\r]*)'"""
        pattern += rb"[ \t]+" + re.escape(name) + b"=" + value
    at = {name: n for n, name in enumerate(names, 1)}
    return re.compile(pattern + rb"[ \t]*>"), at[b"start"], at[b"channel"], at.get(b"stop", 0)


def _respelled_alike(
    block: bytes, pattern: re.Pattern[bytes], start: int, channel: int, stop: int
) -> bytes | None:
    """`_ANY_TAG.sub(_respell, block)` when every start tag in `block` is spelled as its first
    (most guides): one split and a join in C, not a call a programme (~3 us each: a guide in
    another order, or with another attribute, was 1.4-1.5x one spelled as the writer does).
    None when a tag is spelled otherwise."""
    parts = pattern.split(block)
    width = pattern.groups + 1
    count = (len(parts) - 1) // width
    if count != block.count(b"<programme"):
        return None
    stops = parts[stop::width] if stop else itertools.repeat(b"", count)
    tags = zip(
        parts[0::width],
        itertools.repeat(b'<programme start="'),
        parts[start::width],
        itertools.repeat(b'" stop="'),
        stops,
        itertools.repeat(b'" channel="'),
        parts[channel::width],
        itertools.repeat(b'">'),
    )
    return b"".join(itertools.chain.from_iterable(tags)) + parts[-1]


def _respell(match: re.Match[bytes]) -> bytes:
    found = _ATTR.findall(match.group(1))
    values = {name: double or single for name, double, single in found}
    if len(values) != len(found) or b"start" not in values or b"channel" not in values:
        return match.group(0)  # the parser's to judge
    stop = values.get(b"stop", b"")
    return b'<programme start="%s" stop="%s" channel="%s">' % (
        values[b"start"],
        stop,
        values[b"channel"],
    )
