"""Where a big guide splits between its reader and the helper that reads the second half
(halves.py): the point where the two halves cost the same, estimated from samples of what is
left, each programme priced by whether it is kept and how the sample is spelled."""

from __future__ import annotations

import os
import re

from plextuner.epg.canonical import read_block, written
from plextuner.epg.plainre import pattern_for
from plextuner.epg.prefilter import END
from plextuner.epg.starttags import respelled
from plextuner.epg.xmltv import in_window

# The split is where the two halves cost the same. Costs in microseconds, measured on the bench
# guide: a kept programme is parsed, read and rendered; a dropped one mostly cut from the bytes.
KEPT_US, DROPPED_US, START_US = 20.0, 1.5, 400_000.0  # START_US: the helper's start-up
# Where a sample's programmes are spelled as our writer spells them, a kept one is read by one
# pattern a block (canonical.py): ~3x a dropped one's cost, not ~13x. Priced by raising the
# dropped one's, so the helper's start and least work keep their weight. At 1.5, a third-party
# guide whose window lies in its first third split at 21% of its bytes and the reader waited
# 0.57 s of 1.7 s for the helper; at /4 0.27 s, /3 0.09 s, /2.5 none, but then the provider-
# shaped guide's reader (its dropped programmes at the file's end) waited 0.09 s.
DROPPED_BESIDE_CANONICAL_US = KEPT_US / 3
# Spelled plainly otherwise (pretty-printed, say), plain.py reads a kept one at ~5x a dropped
# one's cost (6.2 against 1.2 us, solved from the two halves' times of a pretty-printed
# third-party guide whose reader waited 0.37-0.43 s for its helper).
DROPPED_BESIDE_PLAIN_US = KEPT_US / 5
HELPER_MIN_US = 1_000_000.0  # less than a second's work for the helper: not worth one
SAMPLES, SAMPLE_BYTES = 128, 16 * 1024
_TAG = re.compile(rb"<programme\s([^>]*)>")
_ATTRS = [re.compile(rb"\b" + k + rb'="([^"]*)"') for k in (b"start", b"stop", b"channel")]
# A start tag spelled as the DTD orders it: the three values in one match (three searches and a
# dict a tag were most of a split's 42-76 ms, while both processes wait for it)
_DTD_TAG = re.compile(rb'<programme start="([^"]*)" stop="([^"]*)" channel="([^"]*)">')


def even_split(
    fd: int, at: int, end: int, wanted: frozenset[str], window: tuple[float, float]
) -> int | None:
    """Where what is left of the file splits into two halves of equal work (the helper's start
    counted), estimated from samples spread over it; None when the helper's half is too
    little to be worth one. By bytes alone, a guide in time order that holds the window in its
    first third gave the reader all the work."""
    step = (end - at) / SAMPLES
    costs = []  # estimated microseconds of each sample's stretch of the file
    times: dict[tuple[bytes, bytes], bool] = {}
    for i in range(SAMPLES):
        data = os.pread(fd, SAMPLE_BYTES, at + int(i * step))
        cost = 0.0
        dropped = dropped_us(data)
        for start, stop, channel in _start_tags(data):
            inside = times.get((start, stop))
            if inside is None:
                inside = times[start, stop] = in_window(
                    *window, start.decode("latin-1"), stop.decode("latin-1")
                )
            kept = inside and channel.decode("utf-8", "replace") in wanted
            cost += KEPT_US if kept else dropped
        costs.append(cost / max(len(data), 1) * step)
    total = sum(costs)
    reader = (total + START_US) / 2  # the reader's share: the helper's equals it with its start
    if total - reader < HELPER_MIN_US:
        return None
    done = 0.0
    for i, cost in enumerate(costs):
        if cost > 0 and done + cost >= reader:
            return at + int((i + (reader - done) / cost) * step)
        done += cost
    return None


def _start_tags(data: bytes) -> list[tuple[bytes, ...]]:
    """Each programme start tag's start, stop and channel values (empty when it has none)."""
    tags = _TAG.findall(data)
    spelled = _DTD_TAG.findall(data)
    if len(spelled) == len(tags):
        return spelled
    return [tuple(m.group(1) if (m := rx.search(tag)) else b"" for rx in _ATTRS) for tag in tags]


def dropped_us(data: bytes) -> float:
    """What a dropped programme costs beside a kept one in a sample, by how the sample's whole
    programmes are spelled: as our writer spells them (`lang` aside), plainly, or otherwise."""
    first, last = data.find(b"<programme "), data.rfind(END)
    if first < 0 or last < first:
        return DROPPED_US
    block = respelled(data[first : last + len(END)])  # as plain.py reads it
    as_written, _ = written(block)
    if read_block(as_written, len(as_written)) is not None:
        return DROPPED_BESIDE_CANONICAL_US
    pattern = pattern_for(block)
    plainly = all(pattern.fullmatch(piece) for piece in block.split(END)[:-1])
    return DROPPED_BESIDE_PLAIN_US if plainly else DROPPED_US


def boundary(fd: int, near: int) -> int | None:
    """The offset just after the first `</programme>` at or after `near` followed by a tag."""
    data = os.pread(fd, 1 << 20, near)
    at = data.find(END)
    while at >= 0:
        rest = data[at + len(END) :].lstrip()
        if rest[:1] == b"<":
            return near + at + len(END)
        at = data.find(END, at + 1)
    return None
