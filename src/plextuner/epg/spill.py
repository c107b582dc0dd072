"""Kept programmes held on disk between reading the guides and writing the device guides.

A provider's own guide keeps every programme of the window: three days of 3,000 channels are
225k programmes, and holding each as an object with its strings cost ~100 MB of a guide job's
150 MB budget, growing with the window and the guide. Each kept programme is rendered once, as
it is read (everything after its start tag, which is all that does not depend on the device
entry that writes it), and its bytes appended to a temporary file; memory keeps its times and
where its bytes are (`Kept`). The writer maps the file and copies each body out; pages it has
touched are handed back every READS_PER_RELEASE reads, so the mapping never grows resident.
"""

from __future__ import annotations

import math
import mmap
import tempfile
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import IO, NamedTuple

from plextuner.errors import EpgError

_SIZE_BITS = 30  # a body's length in the low bits of its reference, its offset above (8 GB)
_MAX_BODY = (1 << _SIZE_BITS) - 1
READS_PER_RELEASE = 2048  # at most ~8 MB of touched pages resident (one page a body)


class Kept(NamedTuple):
    """A kept programme: its times (shifted when written) and where its rendered body is."""

    start: float
    stop: float | None
    body: int


class KeptList:
    """One source's kept programmes of one guide channel, packed: three machine numbers a
    programme (24 bytes) where a tuple with its reference was ~100. A guide whose every
    programme is in the window keeps a million of them."""

    __slots__ = ("bodies", "starts", "stops")

    def __init__(self) -> None:
        self.starts = array("d")
        self.stops = array("d")  # NaN: no stop time
        self.bodies = array("q")  # references into the spill

    def append(self, start: float, stop: float | None, body: int) -> None:
        self.starts.append(start)
        self.stops.append(math.nan if stop is None else stop)
        self.bodies.append(body)

    def __len__(self) -> int:
        return len(self.starts)

    def __iter__(self) -> Iterator[Kept]:
        for start, stop, body in zip(self.starts, self.stops, self.bodies, strict=True):
            yield Kept(start, None if math.isnan(stop) else stop, body)


class Spill:
    """An append-only temporary file of programme bodies, deleted when closed (or when the
    process ends: it is unlinked from the start)."""

    def __init__(self, directory: Path) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._file: IO[bytes] | None = tempfile.TemporaryFile(  # noqa: SIM115 - closed by close()
                dir=directory, prefix=".guide-spill."
            )
        except OSError as err:
            raise EpgError(f"cannot hold the guide's programmes on disk: {err}") from None
        self._size = 0
        self._map: mmap.mmap | None = None
        self._reads = 0

    def add(self, body: bytes) -> int:
        """Append `body`; the reference `read` takes."""
        size = len(body)
        if self._file is None or size > _MAX_BODY:  # larger than libxml2 lets a text be
            raise EpgError("a programme too large to hold (or the spill is closed)")
        try:
            self._file.write(body)
        except OSError as err:
            raise EpgError(f"cannot hold the guide's programmes on disk: {err}") from None
        at = self._size
        self._size = at + size
        return at << _SIZE_BITS | size

    def read(self, ref: int) -> bytes:
        if self._map is None or len(self._map) < self._size:  # none yet, or appended since
            if self._map is not None:
                self._map.close()
            self._map = self._mapped()
        self._reads += 1
        if self._reads % READS_PER_RELEASE == 0:
            self._map.madvise(mmap.MADV_DONTNEED)  # the page cache keeps them; our RSS not
        at = ref >> _SIZE_BITS
        return self._map[at : at + (ref & _MAX_BODY)]

    def _mapped(self) -> mmap.mmap:
        if self._file is None or not self._size:
            raise EpgError("the guide's spilled programmes are gone")
        try:
            self._file.flush()
            return mmap.mmap(self._file.fileno(), self._size, access=mmap.ACCESS_READ)
        except OSError as err:
            raise EpgError(f"cannot read the guide's programmes back: {err}") from None

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None
