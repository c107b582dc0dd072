"""A kept programme's times and body reference, and a channel's kept programmes packed
(`KeptList`): what memory holds of a guide's programmes while their bodies are in the spill."""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from typing import IO, NamedTuple, overload

# A body's length in the low bits of its spill reference (spill.py), its offset above
SIZE_BITS = 30


class Kept(NamedTuple):
    """A kept programme: its times (shifted when written) and where its rendered body is."""

    start: float
    stop: float | None
    body: int


# A kept programme's times are whole seconds (XMLTV's, and offsets in whole minutes) held as
# 32-bit offsets from TIME_BASE (Nov 2023): Oct 1955 to Dec 2091, where a kept programme starts
# (it is in the window). A time past either end (a guide's garbage: a show lasting a century) is
# held at it. 16 bytes a programme instead of 24 (floats): a 300 MB guide of 882k programmes all
# in the window peaked at 148-149 MB for the reader and its helper, 135-136 MB after.
TIME_BASE = 1_700_000_000
NO_STOP = -(1 << 31)  # a programme with no stop time (or a stop of 0, which `if p.stop` skips)
OFFSET_LOW, OFFSET_HIGH = NO_STOP + 1, (1 << 31) - 1


def offset_of(when: float) -> int:
    """`when` as a kept time (see TIME_BASE)."""
    return min(OFFSET_HIGH, max(OFFSET_LOW, int(when) - TIME_BASE))


def stop_offset(stop: float | None) -> int:
    return offset_of(stop) if stop else NO_STOP


class KeptList(Sequence[Kept]):
    """One source's kept programmes of one guide channel, packed: three machine numbers a
    programme (16 bytes: start and stop as offsets from TIME_BASE, the body's reference) where
    a tuple with its reference was ~100. A guide whose every programme is in the window keeps
    a million of them, or 2.5M for titles alone in 300 MB. Read as a sequence of `Kept`
    (absolute times, None for no stop), made as they are asked for; `starts` and `stops` are
    the offsets themselves, for the C loops of programmes.py and writer.py."""

    __slots__ = ("bodies", "starts", "stops")
    ITEM_BYTES = 16  # of `write_to`

    def __init__(self) -> None:
        self.starts = array("i")
        self.stops = array("i")  # NO_STOP: no stop time
        self.bodies = array("q")  # references into the spill

    @classmethod
    def of(cls, starts: array[int], stops: array[int], bodies: array[int]) -> KeptList:
        """A list of these numbers (the arrays taken, not copied)."""
        kept = cls.__new__(cls)
        kept.starts, kept.stops, kept.bodies = starts, stops, bodies
        return kept

    def append(self, start: float, stop: float | None, body: int) -> None:
        self.starts.append(offset_of(start))
        self.stops.append(stop_offset(stop))
        self.bodies.append(body)

    def __len__(self) -> int:
        return len(self.starts)

    def write_to(self, out: IO[bytes]) -> None:
        """Its numbers as machine bytes, for `read_from` in a process of the same build."""
        for numbers in (self.starts, self.stops, self.bodies):
            numbers.tofile(out)

    @classmethod
    def read_from(cls, fh: IO[bytes], count: int) -> KeptList:
        """`count` programmes `write_to` wrote (EOFError when fewer are there)."""
        kept = cls()
        for numbers in (kept.starts, kept.stops, kept.bodies):
            numbers.fromfile(fh, count)
        return kept

    def __iter__(self) -> Iterator[Kept]:
        return map(_kept, self.starts, self.stops, self.bodies)

    @overload
    def __getitem__(self, i: int) -> Kept: ...

    @overload
    def __getitem__(self, i: slice) -> list[Kept]: ...

    def __getitem__(self, i: int | slice) -> Kept | list[Kept]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return _kept(self.starts[i], self.stops[i], self.bodies[i])

    def span(self) -> tuple[float, float, float | None]:
        """The first programme's start and the last one's start and stop, as `Kept`s give
        them, with no `Kept` made (a guide's fingerprint asks it of every channel)."""
        stop = self.stops[-1]
        last = None if stop == NO_STOP else TIME_BASE + stop
        return TIME_BASE + self.starts[0], TIME_BASE + self.starts[-1], last


def _kept(start: int, stop: int, body: int) -> Kept:
    """A packed programme as `Kept`: absolute times, None for no stop."""
    return Kept(TIME_BASE + start, None if stop == NO_STOP else TIME_BASE + stop, body)
