"""The reading side of a spill (spill.py): bodies copied out of its mapped file, and out of the
files it reads in place (spillparts.py), the pages touched handed back as the reads go on."""

from __future__ import annotations

import collections
import itertools
import mmap
import operator
from collections.abc import Sequence
from typing import IO

from plextuner.epg.kept import SIZE_BITS
from plextuner.epg.spillparts import Part, cuts, part_at
from plextuner.errors import EpgError

MAX_BODY = (1 << SIZE_BITS) - 1  # a reference's size bits
READS_PER_RELEASE = 2048  # at most ~8 MB of touched pages resident (one page a body)
# Bodies read in file order between two hand-backs of the pages they mapped (`read_runs`).
SORTED_BATCH = 1024
# The kernel maps a file's cached pages around a faulting one, this many bytes aligned (its
# `fault_around_bytes`, 64 KB by default): what a read maps, at most.
_WINDOW = 64 * 1024


class SpillReads:
    """`Spill`'s reads: what they need of its state, the writing side's flush left to it."""

    _file: IO[bytes] | None
    _pending: list[bytes]
    _held: bytearray | None
    _on_disk: int
    _map: mmap.mmap | None
    _reads: int
    _parts: list[Part]
    _shares = False  # a read found a body shared (`read_runs`)

    def _flush(self) -> None:
        raise NotImplementedError  # (the writing side's: Spill)

    def read(self, ref: int) -> bytes:
        if self._file is None:
            raise EpgError("the guide's spilled programmes are gone")
        if self._pending:
            self._flush()  # everything to disk (or to `_held`) before the file is mapped
        at, size = ref >> SIZE_BITS, ref & MAX_BODY
        end = at + size
        if self._parts and (part := part_at(self._parts, at)) is not None:
            return part.read((at,), (end,))[0]
        if at >= self._on_disk:  # refused by the disk: held in memory
            assert self._held is not None
            return bytes(self._held[at - self._on_disk : end - self._on_disk])
        view = self._view()
        self._reads += 1
        if self._reads % READS_PER_RELEASE == 0:
            view.madvise(mmap.MADV_DONTNEED)  # the page cache keeps them; our RSS not
        if end <= self._on_disk:
            return view[at:end]
        assert self._held is not None  # a body the disk took only in part
        return view[at:] + bytes(self._held[: end - self._on_disk])

    def read_many(self, refs: Sequence[int]) -> list[bytes]:
        """`read` of each reference, in order: a device guide copies a channel's programmes
        out at once (a call and its checks a programme were a tenth of writing a big guide)."""
        if self._file is None:
            raise EpgError("the guide's spilled programmes are gone")
        if self._pending:
            self._flush()
        if not self._on_disk and not self._parts:  # nothing on disk (the disk refused all)
            return [self.read(ref) for ref in refs]
        ats, ends = _spans(refs)
        parts = self._parts
        if not parts or max(ats, default=0) < min(p.base for p in parts):  # none in a part
            return self._read_own(refs, ats, ends)
        if all(map(operator.le, ats, itertools.islice(ats, 1, None))):
            return self._read_ascending(refs, ats, ends)
        order = sorted(range(len(refs)), key=ats.__getitem__)  # (a repeat's earlier body)
        return _placed(order, self.read_many(list(map(refs.__getitem__, order))))

    def _read_ascending(self, refs: Sequence[int], ats: list[int], ends: list[int]) -> list[bytes]:
        """`read_many` of ascending references: a run a part, or this spill's own."""
        parts = self._parts
        if not parts or (ats and ats[-1] < min(p.base for p in parts)):
            return self._read_own(refs, ats, ends)
        out: list[bytes] = []
        for lo, hi in itertools.pairwise(cuts(parts, ats)):
            part = part_at(parts, ats[lo])
            if part is not None:
                out += part.read(ats[lo:hi], ends[lo:hi])
            else:
                out += self._read_own(refs[lo:hi], ats[lo:hi], ends[lo:hi])
        return out

    def _read_own(self, refs: Sequence[int], ats: list[int], ends: list[int]) -> list[bytes]:
        """`read_many` of references into this spill's own file (or held)."""
        if not self._on_disk:  # (held in memory: the disk refused all)
            return [self.read(ref) for ref in refs]
        on_disk, view = self._on_disk, self._view()
        if not ends or max(ends) <= on_disk:  # all on disk: sliced in C iterators
            out = list(map(view.__getitem__, map(slice, ats, ends)))
        else:
            out = [
                view[a:e] if e <= on_disk else self.read(r)
                for a, e, r in zip(ats, ends, refs, strict=True)
            ]
        self._reads += len(refs)
        if self._reads >= READS_PER_RELEASE:
            self._reads = 0
            view.madvise(mmap.MADV_DONTNEED)  # the page cache keeps them; our RSS not
        return out

    def read_runs(self, runs: Sequence[Sequence[int]]) -> list[list[bytes]]:
        """`read_many` of each run, all the bodies read in file order (see `GroupedReader`)."""
        flat = list(itertools.chain.from_iterable(runs))
        if not flat:
            return [[] for _ in runs]
        # The positions in file order (a sort of the indices, in C), the bodies put back there
        # by them: where no body is shared, the references deduplicated and found again
        # through dicts cost a third of this call (a lean guide's 2.6M bodies: ~0.2 us of ~0.75
        # a body). Where some are (a title-only guide's "News", see SHARE_MAX), each is read
        # once and found by its reference: a group of 8,192 holds a few hundred bodies.
        order: list[int] = []
        if self._shares:  # (learned from an earlier read: the positions would not be used)
            refs, shared = sorted(flat), True
        else:
            order = sorted(range(len(flat)), key=flat.__getitem__)
            refs = list(map(flat.__getitem__, order))
            shared = self._shares = any(map(operator.eq, refs, itertools.islice(refs, 1, None)))
        if shared:
            refs = list(dict.fromkeys(refs))
        ats, ends = _spans(refs)
        held = self._held is not None and ends[-1] > self._on_disk
        if self._file is None or self._pending or held:  # (sourced ones lie above `_on_disk`)
            return [self.read_many(run) for run in runs]  # (which flushes, or reads the held)
        bodies = self._in_batches(refs, ats, ends)
        if shared:
            found = dict(zip(refs, bodies, strict=True))
            return [list(map(found.__getitem__, run)) for run in runs]
        placed = _placed(order, bodies)
        out, at = [], 0
        for run in runs:
            out.append(placed[at : at + len(run)])
            at += len(run)
        return out

    def _in_batches(self, refs: list[int], ats: list[int], ends: list[int]) -> list[bytes]:
        """`_read_ascending` of ascending `refs`, SORTED_BATCH at a time: the pages a batch
        mapped (whole fault-around windows) are behind the rest, handed back after it, so a
        run of channels holds a few windows, not one per body."""
        view, bodies = self._view() if self._on_disk else None, []
        for first in range(0, len(refs), SORTED_BATCH):
            last = min(first + SORTED_BATCH, len(refs))
            bodies += self._read_ascending(refs[first:last], ats[first:last], ends[first:last])
            low = ats[first] & ~(_WINDOW - 1)
            high = (ends[last - 1] + _WINDOW) & ~(_WINDOW - 1)
            if view is not None and low < len(view):
                view.madvise(mmap.MADV_DONTNEED, low, min(len(view), high) - low)
            for part in self._parts:
                part.hand_back(low, high)
        return bodies

    def _view(self) -> mmap.mmap:
        """The file mapped as far as it is written (mapped again when it grew since)."""
        if self._map is None or len(self._map) < self._on_disk:
            if self._map is not None:
                self._map.close()
            self._map = self._mapped()
        return self._map

    def _mapped(self) -> mmap.mmap:
        assert self._file is not None
        try:
            return mmap.mmap(self._file.fileno(), self._on_disk, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as err:
            raise EpgError(f"cannot read the guide's programmes back: {err}") from None

    def release(self) -> None:
        """Hand back the pages reading mapped (the page cache keeps them)."""
        if self._map is not None:
            self._map.madvise(mmap.MADV_DONTNEED)
            self._reads = 0
        for part in self._parts:
            part.hand_back()


def _spans(refs: Sequence[int]) -> tuple[list[int], list[int]]:
    """Where each reference's body starts and ends."""
    ats = list(map(operator.rshift, refs, itertools.repeat(SIZE_BITS)))
    return ats, list(map(operator.add, ats, map(operator.and_, refs, itertools.repeat(MAX_BODY))))


def _placed(order: Sequence[int], bodies: list[bytes]) -> list[bytes]:
    """`bodies`, read in `order` (their positions), each put back at its position."""
    out = bodies.copy()  # (a list of the right length: every slot is set again)
    collections.deque(map(out.__setitem__, order, bodies), maxlen=0)
    return out
