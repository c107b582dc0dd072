"""Kept programmes' numbers on disk too, while a guide is read.

A kept programme's body goes to the spill as it is read (spill.py); its times and reference,
16 bytes, stayed in memory (`KeptList`) until the device guides were written. For a lean guide
(titles only, ~120 bytes a programme, every one in the window) that is 2.5M programmes in 300
MB: 40 MB of numbers, ~55 MB with the growth of 26,000 interleaved arrays, in the reader and
again in its helper. A `SpilledList` holds the last CHUNK of a channel's programmes in memory and
appends each full chunk's numbers, as machine bytes, to the same spill as the bodies; the writer
takes a channel's `KeptList` back (`loaded`) when it gathers the device that shows it.

CHUNK is small so that what each channel holds stays in Python's small-object allocator (an
array of 32 references is 256 bytes; above 512 they come from malloc, whose heap the 26,000
growing arrays fragment): on the lean guide, `plextuner refresh`'s process tree peaked at 176 MB
with 128, 157-158 MB with 64, 155 MB with 32 and with 16, in the same time, while the write was
the peak. With the write's pages handed back as it reads (grouped.py), reading the guide is the
peak, and what each of the 8,700 channels holds there counts twice (the reader and its helper):
145 MB with 32, 140-141 MB with 16, in the same time (alternating runs: 4.15-4.36 s, 4.29-4.39).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Iterator
from itertools import chain, repeat
from operator import add
from typing import IO

from plextuner.epg.kept import KeptList, offset_of, stop_offset
from plextuner.epg.spill import Spill

CHUNK = 16  # programmes of a channel held in memory before their numbers are spilled (see below)
HELD = 2 * CHUNK  # numbers a list holds then: two a programme
PAIR_BYTES = 16  # a programme's two numbers as machine bytes
SEAL_BATCH = 1024  # lists whose held programmes `seal_all` spills by one call
# With this many channels kept, each holds half as many: what they all hold at once is the
# reading's peak. A guide of 50,000 channels read in two halves (~10 programmes of each in
# each half): the process tree 216-221 -> 208 MB, for a second chunk a channel in each half.
MANY = 20_000
HELD_MANY = CHUNK


def held_for(lists: int) -> int:
    """The numbers a list holds before they are spilled, with `lists` channels kept so far."""
    return HELD_MANY if lists >= MANY else HELD


class _Sealed(array):  # type: ignore[type-arg]
    """The empty arrays of every sealed list, shared: growing one is a bug, refused loudly
    (it would put programmes into every channel's guide)."""

    def _refuse(self, *_: object) -> None:
        raise TypeError("a sealed list takes no more programmes")

    append = extend = frombytes = fromfile = fromlist = insert = _refuse


_SEALED_Q = _Sealed("q")
_LOW = (1 << 32) - 1
# A pair's times read back as two 32-bit numbers: which of them is the start (the high half)
_START_HALF = 1 if sys.byteorder == "little" else 0


def pack_times(start: int, stop: int) -> int:
    """A kept programme's start and stop offsets (kept.py) as one 64-bit number: the start in
    the high half, the stop's 32 bits in the low one (read back by `unpack_times`)."""
    return start << 32 | stop & _LOW


def unpack_times(times: array[int]) -> tuple[array[int], array[int]]:
    """The starts and the stops of packed times, as `KeptList` holds them (two slices in C)."""
    halves = array("i")
    halves.frombytes(times.tobytes())
    return halves[_START_HALF::2], halves[1 - _START_HALF :: 2]


class SpilledList:
    """One source's kept programmes of one guide channel: spilled chunks, then `held`, the
    ones not spilled yet. Not a sequence of programmes on purpose: read it through `loaded`.

    A programme held is two numbers of one array, its times packed (`pack_times`) and its
    body's reference, where it was three arrays a channel (starts, stops, bodies): a guide of
    25,000 channels holds that many lists in the reader and again in its helper, ~690 bytes a
    channel with three arrays, ~440 with one. A chunk on disk is those pairs as machine bytes."""

    __slots__ = ("chunks", "count", "held")
    CHUNK_BYTES = 16  # of `write_records`, a chunk: its reference and its shift

    def __init__(self) -> None:
        self.held = array("q")  # (times, body) pairs
        # Each chunk's spill reference and shift (what to add to its body references:
        # `rebase`), in pairs: one array, not two, for each of tens of thousands of channels;
        # the shared empty one until a chunk is spilled (most of a guide's channels hold no
        # more than a chunk in a reader's half: 24,000 of them, 1.9 MB in each process)
        self.chunks: array[int] = _SEALED_Q
        self.count = 0  # programmes in the chunks

    def __len__(self) -> int:
        return self.count + (len(self.held) >> 1)

    @property
    def spilled(self) -> int:
        """Chunks on disk."""
        return len(self.chunks) // 2

    def append(
        self, start: float, stop: float | None, body: int, spill: Spill, full: int = HELD
    ) -> None:
        """One programme; its list spilled once it holds `full` numbers (`held_for`)."""
        held = self.held
        held.append(pack_times(offset_of(start), stop_offset(stop)))
        held.append(body)
        if len(held) >= full:
            self.spill_to(spill)

    def spill_to(self, spill: Spill) -> None:
        """The programmes held in memory, appended to `spill` as one chunk."""
        held = self.held
        if not held:
            return
        self.spilled_at(spill.add(held.tobytes()))
        self.held = array("q")

    def spilled_at(self, ref: int) -> None:
        """The programmes held, spilled by the caller at `ref`: now a chunk (`held` is the
        caller's to empty or seal)."""
        self._own_chunks().extend((ref, 0))
        self.count += len(self.held) >> 1

    def seal(self, spill: Spill) -> None:
        """Every programme spilled, none to come (its source is read): what each channel
        holds until its device is gathered is then the list and its chunks' numbers (three
        empty arrays a channel were 2 MB of a lean guide of 20,000 channels, twice)."""
        seal_all([self], spill)

    def _own_chunks(self) -> array[int]:
        if type(self.chunks) is _Sealed:  # (not `is _SEALED_Q`: a copy, pickled, is one too)
            self.chunks = array("q")
        return self.chunks

    def loaded(self, spill: Spill) -> KeptList:
        """Every programme, in order, as a `KeptList` in memory (see `load_all`)."""
        return load_all([self], spill)[0]

    @classmethod
    def sealed(cls, records: array[int], count: int) -> SpilledList:
        """A sealed list of spilled chunks: their `records` (each's reference and shift, as
        `chunks` holds them, the array taken), `count` programmes in all (a helper's answer)."""
        spilled = cls.__new__(cls)
        spilled.held = _SEALED_Q  # every programme spilled: no empty array of its own each
        spilled.chunks, spilled.count = records if records else _SEALED_Q, count
        return spilled

    def follow(self, other: SpilledList) -> None:
        """A sealed list's programmes after these, sealed too (a helper's answer, its
        records rebased already: `read_records`)."""
        if self.held or other.held:
            raise ValueError("programmes not spilled yet")
        if other.chunks:
            self._own_chunks().extend(other.chunks)
        self.count += other.count
        self.held = _SEALED_Q


def seal_all(lists: Iterable[SpilledList], spill: Spill) -> None:
    """`seal` of each list, what they hold spilled by one call (a source of 50,000 channels
    read, or taken with a helper's half: 50,000 calls of `Spill.add` otherwise)."""
    lists = list(lists)
    held = [spilled for spilled in lists if spilled.held]
    for first in range(0, len(held), SEAL_BATCH):  # (all at once: 20 MB of bytes for 50,000)
        batch = held[first : first + SEAL_BATCH]
        refs = spill.add_all([spilled.held.tobytes() for spilled in batch])
        for spilled, ref in zip(batch, refs, strict=True):
            spilled.spilled_at(ref)
            spilled.held = _SEALED_Q  # (its array freed with its batch, not at the end)
    for spilled in lists:  # (those that held nothing)
        spilled.held = _SEALED_Q


def write_records(lists: Iterable[SpilledList], out: IO[bytes]) -> None:
    """Sealed lists' chunk records (references and shifts) as machine bytes, one list after
    another, for `read_records` in a process of the same build."""
    records = array("q")
    for spilled in lists:
        if spilled.held:
            raise ValueError("programmes not spilled yet")
        records.extend(spilled.chunks)
    records.tofile(out)


def read_records(
    fh: IO[bytes], sizes: Iterable[tuple[int, int]], shift: int
) -> Iterator[SpilledList]:
    """What `write_records` wrote of lists of (chunks, programmes) `sizes`, each sealed, its
    records rebased by `shift` (`rebased`): all read and rebased at once, then cut a list at
    a time (EOFError when less is there)."""
    sizes = list(sizes)
    records: array[int] = array("q")
    records.fromfile(fh, 2 * sum(chunks for chunks, _ in sizes))
    records = rebased(records, shift)  # references and shifts alike
    at = 0
    for chunks, count in sizes:
        end = at + 2 * chunks
        yield SpilledList.sealed(records[at:end], count)
        at = end


def load_all(lists: list[SpilledList], spill: Spill) -> list[KeptList]:
    """`loaded` of each list: a device's channels at once, their chunks read in one call and
    their numbers unpacked and rebased as one array, then cut a channel at a time (a guide of
    50,000 channels with ~20 programmes each spent ~7 us a channel making each alone: 0.36 s of
    its writing, on the guide job's critical path)."""
    records: array[int] = array("q")
    for spilled in lists:
        records.extend(spilled.chunks)
    read = spill.read_many(records[0::2]) if records else []
    shifts = records[1::2]  # a chunk's: the reader's 0, the helper's where it was adopted
    if any(spilled.held for spilled in lists):  # (not sealed: its source is still read)
        read, shifts = _with_held(lists, read, shifts)
    pairs = array("q", b"".join(read))
    bodies = pairs[1::2]
    if any(shifts):  # each chunk's shift, a programme at a time (iterated in C)
        each = map(repeat, shifts, map(PAIR_BYTES.__rfloordiv__, map(len, read)))
        bodies = array("q", map(add, bodies, chain.from_iterable(each)))
    starts, stops = unpack_times(pairs[0::2])
    out: list[KeptList] = []
    at = 0
    for spilled in lists:
        end = at + len(spilled)
        out.append(KeptList.of(starts[at:end], stops[at:end], bodies[at:end]))
        at = end
    return out


def _with_held(
    lists: list[SpilledList], read: list[bytes], shifts: array[int]
) -> tuple[list[bytes], array[int]]:
    """Each list's chunks' bytes and shifts, then its held programmes' (not rebased), in
    order."""
    pieces: list[bytes] = []
    each: array[int] = array("q")
    at = 0
    for spilled in lists:
        end = at + (len(spilled.chunks) >> 1)
        pieces += read[at:end]
        each.extend(shifts[at:end])
        at = end
        if spilled.held:
            pieces.append(spilled.held.tobytes())
            each.append(0)
    return pieces, each


def rebased(refs: array[int], shift: int) -> array[int]:
    """Spill references (or shifts) moved by `shift`, where `Spill.adopt` put another spill's
    bytes (a list comprehension: faster here than `map(shift.__add__, ...)`)."""
    return array("q", [ref + shift for ref in refs]) if shift else refs
