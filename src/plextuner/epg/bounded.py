"""A guide file read up to an offset, where a decision is taken: end the document there (the
rest is read by another process, see halves.py) or read on as if nothing happened."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Protocol, cast


class Until(Protocol):
    """Where the first half ends, and what is done there."""

    @property
    def offset(self) -> int: ...

    def decide(self, outside: bool) -> bytes | None:
        """At `offset`: the bytes that end the document there (the root's end tag), or None to
        read on. `outside`: the bytes so far leave no comment, CDATA section or processing
        instruction open (else the other half would start inside one)."""
        ...


class Bounded:
    """`fh` read as it is, except that no read crosses `until.offset`; there `until` decides."""

    def __init__(self, fh: IO[bytes], until: Until, outside: Callable[[], bool]) -> None:
        self._fh = fh
        self._until = until
        self._outside = outside
        self._pos = 0
        self._ending: bytes | None = None
        self._decided = False

    def seek(self, offset: int) -> int:
        """Back to `offset` (before the split, or past it once read on: unclosed.py)."""
        self._pos = self._fh.seek(offset)
        return self._pos

    def read(self, size: int) -> bytes:
        """At most `size` bytes (the reader asks in chunks)."""
        end = self._until.offset
        if self._pos < end:
            data = self._fh.read(min(size, end - self._pos))
            self._pos += len(data)
            return data
        if not self._decided:
            self._decided = True
            self._ending = self._until.decide(self._outside())
            if self._ending is not None:
                return self._ending
        if self._ending is not None:
            return b""
        return self._fh.read(size)


def bounded(fh: IO[bytes], until: Until | None, outside: Callable[[], bool]) -> IO[bytes]:
    """`fh`, bounded by `until` when there is one."""
    return fh if until is None else cast("IO[bytes]", Bounded(fh, until, outside))
