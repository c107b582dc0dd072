"""A channel's programmes from every source that has them: shifted, windowed, de-duplicated by
time (an earlier source wins an overlap), and shaped for Plex."""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
import operator
from collections.abc import Sequence
from typing import overload

from plextuner.buckets.models import LineupEntry
from plextuner.config.models import EpgConfig
from plextuner.epg.bodies import shaped
from plextuner.epg.kept import NO_STOP, TIME_BASE, Kept, KeptList
from plextuner.epg.model import Programme

DEFAULT_LENGTH = 3600.0


@overload
def programmes_for(
    entry: LineupEntry,
    per_source: Sequence[Sequence[Programme]],
    window: tuple[float, float],
    cfg: EpgConfig,
) -> list[Programme]: ...


@overload
def programmes_for(
    entry: LineupEntry,
    per_source: Sequence[Sequence[Programme] | KeptList],
    window: tuple[float, float],
    cfg: EpgConfig,
) -> Sequence[Programme | Kept]: ...


def programmes_for(
    entry: LineupEntry,
    per_source: Sequence[Sequence[Programme] | KeptList],
    window: tuple[float, float],
    cfg: EpgConfig,
) -> list[Programme] | Sequence[Programme | Kept]:
    """Programmes are shaped here; spilled ones (`Kept`) were shaped as they were spilled."""
    shift = (entry.channel.tvg_shift or 0.0) * 3600.0
    if len(per_source) == 1 and isinstance(per_source[0], KeptList):
        return _packed(per_source[0], window, shift)
    kept: list[Programme | Kept] = []
    taken: list[tuple[float, float]] = []  # intervals an earlier source already covers
    lo, hi = window
    for n, items in enumerate(per_source):
        mine: list[tuple[float, float]] = []
        more = n + 1 < len(per_source)  # a later source will look at what this one covers
        last: float | None = None
        ordered: list[Programme | Kept] = sorted(items, key=_start)
        for p in ordered:
            start = p.start + shift
            stop = (p.stop + shift) if p.stop else None
            end = stop or start + DEFAULT_LENGTH
            if not (start < hi and end > lo):
                continue
            if taken and any(start < b and end > a for a, b in taken):
                continue  # the same slot from a lower-priority source
            if last == start:
                continue  # a source repeating itself
            last = start
            if isinstance(p, Kept):
                kept.append(p._replace(start=start, stop=stop) if shift else p)
            else:
                shifted = p if not shift else dataclasses.replace(p, start=start, stop=stop)
                kept.append(shaped(shifted, cfg.fold_subtitle))
            if more:
                mine.append((start, end))
        taken.extend(mine)
    if len(per_source) > 1:  # one source's programmes are in order already
        kept.sort(key=_start)
    return kept


def _packed(items: KeptList, window: tuple[float, float], shift: float) -> KeptList:
    """One spilled source (a provider's own guide): the same choice as the general path, kept
    packed (16 bytes a programme where a list of `Kept` tuples was ~150: a device's share of a
    million kept programmes was the guide job's peak while it was written)."""
    lo, hi = window
    if not shift and _all_kept(items, lo - TIME_BASE, hi - TIME_BASE):
        return items  # what the loop below would copy, programme for programme
    starts, stops, bodies = items.starts, items.stops, items.bodies
    if not shift and _in_step(items):
        # Starts and stops both rising, each stop after its start (a provider's guide): what
        # the loop keeps is one stretch, cut out in C (the loop was 0.1 s of a big guide).
        a = bisect.bisect_right(stops, lo - TIME_BASE)
        b = bisect.bisect_left(starts, hi - TIME_BASE)
        out = KeptList()
        out.starts, out.stops, out.bodies = starts[a:b], stops[a:b], bodies[a:b]
        return out
    out = KeptList()
    n = len(starts)
    ordered = all(map(operator.le, starts, itertools.islice(starts, 1, None)))
    last: float | None = None
    for i in range(n) if ordered else sorted(range(n), key=starts.__getitem__):
        start = TIME_BASE + starts[i] + shift
        raw = stops[i]
        stop = TIME_BASE + raw + shift if raw != NO_STOP else None  # (a stop of 0 is none too)
        end = stop or start + DEFAULT_LENGTH
        if not (start < hi and end > lo) or last == start:
            continue
        last = start
        out.append(start, stop, bodies[i])
    return out


def _in_step(items: KeptList) -> bool:
    """Starts and stops strictly rising, every stop after its start (none missing: NO_STOP is
    under every start), judged by C loops."""
    starts, stops = items.starts, items.stops
    return (
        all(map(operator.lt, starts, itertools.islice(starts, 1, None)))
        and all(map(operator.lt, stops, itertools.islice(stops, 1, None)))
        and all(map(operator.lt, starts, stops))
    )


def _all_kept(items: KeptList, lo: float, hi: float) -> bool:
    """Whether `_packed` would keep every programme as it is, judged by C loops over the
    arrays (`lo`, `hi`: the window as offsets): starts strictly increasing (in order, no
    repeats), the last before the window's end, every programme ending after the window's
    start (no stop at or before it, NO_STOP aside; the first one's default length past it)."""
    starts, stops = items.starts, items.stops
    if not starts:
        return True
    if not (starts[-1] < hi and starts[0] + DEFAULT_LENGTH > lo):
        return False
    # No stop at or before `lo` (NO_STOP aside): the least stop tells, unless it is NO_STOP
    # (one pass of `min`: a quarter of a lean guide's membership test a stop)
    least = min(stops)
    if least == NO_STOP:
        ended = range(NO_STOP + 1, math.floor(lo) + 1)  # a stop at or before `lo`, in C
        if any(map(ended.__contains__, stops)):
            return False
    elif least <= lo:
        return False
    return all(map(operator.lt, starts, itertools.islice(starts, 1, None)))


def _start(p: Programme | Kept) -> float:
    return p.start
