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
from typing import IO

from plextuner.epg.kept import KeptList, offset_of, stop_offset
from plextuner.epg.spill import Spill

CHUNK = 16  # programmes of a channel held in memory before their numbers are spilled (see below)
HELD = 2 * CHUNK  # numbers a list holds then: two a programme


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
    CHUNK_BYTES = 16  # of `write_to`, a chunk: its reference and its shift

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

    def append(self, start: float, stop: float | None, body: int, spill: Spill) -> None:
        held = self.held
        held.append(pack_times(offset_of(start), stop_offset(stop)))
        held.append(body)
        if len(held) >= HELD:
            self.spill_to(spill)

    def spill_to(self, spill: Spill) -> None:
        """The programmes held in memory, appended to `spill` as one chunk."""
        held = self.held
        if not held:
            return
        ref = spill.add(held.tobytes())
        self._own_chunks().extend((ref, 0))
        self.count += len(held) >> 1
        self.held = array("q")

    def seal(self, spill: Spill) -> None:
        """Every programme spilled, none to come (its source is read): what each channel
        holds until its device is gathered is then the list and its chunks' numbers (three
        empty arrays a channel were 2 MB of a lean guide of 20,000 channels, twice)."""
        self.spill_to(spill)
        self.held = _SEALED_Q

    def extend(self, other: SpilledList, shift: int, spill: Spill) -> None:
        """`other`'s programmes after these; `shift` rebases its references into `spill`
        (see `Spill.adopt`). `other` is used up: its arrays are taken, not copied; a sealed
        one (`read_from`'s: the helper's half, the rest of the file) seals this one too."""
        self.spill_to(spill)
        self._own_chunks().extend(rebased(other.chunks, shift))  # references and shifts alike
        self.count += other.count
        held = other.held
        if held and shift:
            held = array("q", held)
            held[1::2] = rebased(held[1::2], shift)
        self.held = held

    def _own_chunks(self) -> array[int]:
        if type(self.chunks) is _Sealed:  # (not `is _SEALED_Q`: a copy, pickled, is one too)
            self.chunks = array("q")
        return self.chunks

    def loaded(self, spill: Spill) -> KeptList:
        """Every programme, in order, as a `KeptList` in memory (see `load_all`)."""
        return load_all([self], spill)[0]

    def from_chunks(self, read: list[bytes]) -> KeptList:
        """This list's programmes, given its chunks' bytes, in order. The body references of a
        run of chunks with the same shift (the reader's, then the helper's) are rebased at
        once, not a chunk at a time."""
        pairs = array("q")
        bodies = array("q")
        run_start, run_shift = 0, 0
        for data, shift in zip(read, self.chunks[1::2], strict=True):
            if shift != run_shift:
                bodies.extend(rebased(pairs[run_start * 2 + 1 :: 2], run_shift))
                run_start, run_shift = len(pairs) // 2, shift
            pairs.frombytes(data)
        bodies.extend(rebased(pairs[run_start * 2 + 1 :: 2], run_shift))
        held = self.held
        pairs.extend(held)
        bodies.extend(held[1::2])
        kept = KeptList()
        kept.starts, kept.stops = unpack_times(pairs[0::2])
        kept.bodies = bodies
        return kept

    def write_to(self, out: IO[bytes]) -> None:
        """Its chunks' references and shifts as machine bytes (a helper's, every programme
        spilled first: `spill_to`), for `read_from` in a process of the same build."""
        if self.held:
            raise ValueError("programmes not spilled yet")
        self.chunks.tofile(out)

    @classmethod
    def read_from(cls, fh: IO[bytes], chunks: int, count: int) -> SpilledList:
        """What `write_to` wrote of a list of `chunks` chunks, `count` programmes in all
        (EOFError when less is there)."""
        spilled = cls()
        spilled._own_chunks().fromfile(fh, 2 * chunks)
        spilled.count = count
        spilled.held = _SEALED_Q  # every programme spilled: no empty array of its own each
        return spilled


def load_all(lists: list[SpilledList], spill: Spill) -> list[KeptList]:
    """`loaded` of each list, their chunks read in one call: a device's channels at once (a
    guide of 25,000 channels with ~20 programmes each spent ~10 us a channel in the reads'
    calls and checks, and sorted each channel's references, the reader's and its helper's)."""
    refs: array[int] = array("q")
    for spilled in lists:
        refs.extend(spilled.chunks[0::2])
    read = spill.read_many(refs) if refs else []
    out: list[KeptList] = []
    at = 0
    for spilled in lists:
        n = len(spilled.chunks) // 2
        out.append(spilled.from_chunks(read[at : at + n]))
        at += n
    return out


def rebased(refs: array[int], shift: int) -> array[int]:
    """Spill references (or shifts) moved by `shift`, where `Spill.adopt` put another spill's
    bytes (a list comprehension: faster here than `map(shift.__add__, ...)`)."""
    return array("q", [ref + shift for ref in refs]) if shift else refs
