"""Another spill's file read in place as part of a spill (`Spill.adopt`).

The second half's helper (halves.py) spills its programmes into a file of its own; copying it
into the reader's spill wrote every byte of that half a second time, on the refresh's critical
path (~0.08 s of a 300 MB guide, and as many new pages of page cache). Adopted, the file stays
where it is: its references are those of the reader's spill from the part's `base` on (the
reader's own file has a hole there, so that its own offsets stay its references), and reading
one maps the part's file.
"""

from __future__ import annotations

import bisect
import itertools
import mmap
import operator
import os
from collections.abc import Sequence
from typing import IO

from plextuner.errors import EpgError

_PAGE = mmap.PAGESIZE


class Part:
    """`size` bytes of `file`, the references from `base` to `base + size` of a spill."""

    __slots__ = ("_map", "base", "end", "file", "reads", "stamp")

    release_every = 2048  # reads (spill.py's READS_PER_RELEASE)

    def __init__(self, base: int, size: int, file: IO[bytes]) -> None:
        self.base, self.end, self.file = base, base + size, file
        self.reads = 0  # since the pages were last handed back
        self._map: mmap.mmap | None = None
        self.stamp: tuple[int, int, int] | None = None  # a guide file's, when it was taken

    def changed(self) -> bool:
        """A guide file's part whose file is not as it was when taken (rewritten in place: a
        grabber's, say), so that bodies read from it may not be those referenced."""
        return self.stamp is not None and self.stamp != stamp_of(self.file)

    @classmethod
    def of(cls, source: IO[bytes], base: int, size: int) -> Part:
        """`source`'s first `size` bytes at `base`, read through a descriptor of its own (the
        caller may close `source`); OSError when it cannot be had, EpgError when it is short."""
        file = os.fdopen(os.dup(source.fileno()), "rb", buffering=0)
        if os.fstat(file.fileno()).st_size < size:
            file.close()
            raise EpgError("the second half's programmes were cut short")
        return cls(base, size, file)

    def view(self) -> mmap.mmap:
        if self._map is None:
            try:
                self._map = mmap.mmap(
                    self.file.fileno(), self.end - self.base, access=mmap.ACCESS_READ
                )
            except (OSError, ValueError) as err:
                raise EpgError(f"cannot read the guide's programmes back: {err}") from None
        return self._map

    def holds(self, at: int) -> bool:
        return self.base <= at < self.end

    def read(self, ats: Sequence[int], ends: Sequence[int]) -> list[bytes]:
        """The bytes from each of `ats` to its end (all of them in this part), in C iterators;
        the pages mapped handed back every `release_every` reads, as the spill's own."""
        view, base = self.view(), itertools.repeat(self.base)
        starts, stops = map(operator.sub, ats, base), map(operator.sub, ends, base)
        out = list(map(view.__getitem__, map(slice, starts, stops)))
        self.reads += len(out)
        if self.reads >= self.release_every:
            self.hand_back()
        return out

    def hand_back(self, low: int = 0, high: int | None = None) -> None:
        """The pages mapped between `low` and `high` (references; all of them by default)
        handed back (the page cache keeps them; the reader's RSS not)."""
        if self._map is None:
            return
        start = max(low, self.base) - self.base
        stop = min(self.end if high is None else high, self.end) - self.base
        start -= start % _PAGE
        if stop > start:
            self._map.madvise(mmap.MADV_DONTNEED, start, stop - start)
        if high is None and not low:
            self.reads = 0  # (counted again from none mapped)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        self.file.close()


def stamp_of(file: IO[bytes]) -> tuple[int, int, int]:
    st = os.fstat(file.fileno())
    return st.st_ino, st.st_size, st.st_mtime_ns


def part_at(parts: Sequence[Part], at: int) -> Part | None:
    """The part holding reference offset `at`, if one does (a spill has a few at most)."""
    for part in parts:
        if part.holds(at):
            return part
    return None


def cuts(parts: Sequence[Part], ats: list[int]) -> list[int]:
    """Where ascending `ats` cross into or out of a part: the runs between read at once."""
    found = {0, len(ats)}
    for part in parts:
        found.add(bisect.bisect_left(ats, part.base))
        found.add(bisect.bisect_left(ats, part.end))
    return sorted(found)
