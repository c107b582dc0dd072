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

import itertools
import mmap
import operator
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from plextuner.epg.kept import SIZE_BITS
from plextuner.epg.spillparts import Part, stamp_of
from plextuner.epg.spillread import MAX_BODY, SpillReads
from plextuner.errors import EpgError
from plextuner.logging import get_logger

log = get_logger(__name__)

# A guide's own file read as a part of the spill (`add_source`): the reader's above the spill's own
# bytes (held under it), the helper's above that (moved by the adoption's shift: halves.py)
SOURCE_BASE, HELPER_SOURCE_BASE, SOURCE_MAX = 1 << 31, 1 << 32, 1 << 31
FLUSH_BYTES = 64 * 1024  # bodies gathered before a write (under malloc's mmap threshold)
# A guide's short bodies often repeat (a title-only guide's "News", a provider's "No
# information" in every slot): `add_many` spills each once and hands out its reference again,
# and `read_runs` reads it once for all. Up to SHARE_MAX distinct ones of up to SHARE_MAX_BODY
# bytes are remembered (~3 MB at most); when fewer than SHARE_MIN_HITS of the first
# SHARE_TRIAL bodies were repeats, the lookups stop for this spill.
SHARE_MAX, SHARE_MAX_BODY = 8192, 256
SHARE_TRIAL, SHARE_MIN_HITS = 65_536, 0.25


class Spill(SpillReads):
    """An append-only temporary file of programme bodies, deleted when closed (or when the
    process ends: it is unlinked from the start). Bodies gather in a list and go to disk a
    FLUSH_BYTES block at a time; when the disk refuses one (full), what it has stays readable
    from the file and the rest of the run is held in memory, as before there was a spill."""

    def __init__(self, directory: Path | None = None, *, file: IO[bytes] | None = None) -> None:
        """A new unlinked file in `directory` (where a second reader's spill goes too), or
        `file` (unbuffered, empty, already unlinked): the second half's helper writes into one
        its parent made (halves.py)."""
        if (directory is None) == (file is None):
            raise ValueError("a spill takes a directory or a file")
        self.directory = directory
        self._file: IO[bytes] | None = file or temporary(directory or Path())
        self._size = 0  # bytes added
        self._on_disk = 0  # of them, written to the file
        self._pending: list[bytes] = []  # added, not yet written
        self._pending_size = 0
        self._held: bytearray | None = None  # what the disk refused, and all after it
        self._map: mmap.mmap | None = None
        self._reads = 0
        self._known: dict[bytes, int] | None = {}  # short bodies spilled: `add_many`
        self._looked = self._hits = 0
        self._parts: list[Part] = []  # other spills' files read in place (`adopt`)
        self._below = 1 << 33  # where this spill's own bytes must end (SOURCE_BASE: a source)

    @classmethod
    def written(cls, file: IO[bytes], size: int, parts: Sequence[Part] = ()) -> Spill:
        """Another process's spill to read: its first `size` bytes are on disk, and `parts`
        (the second writer's, writehalf.py)."""
        spill = cls(file=file)
        spill._size = spill._on_disk = size
        spill._parts = list(parts)
        return spill

    def parts(self) -> list[tuple[int, int, int]]:
        """The adopted files' descriptors, bases and sizes (for `written` in a helper)."""
        return [(p.file.fileno(), p.base, p.end - p.base) for p in self._parts]

    def add_source(self, source: IO[bytes], base: int) -> bool:
        """The guide file `source` read in place from `base` on (bodies referenced where they
        lie: plain.py's `SourcedRun`); False when it cannot be (then they are spilled)."""
        if self._file is None or self._size >= SOURCE_BASE:
            return False
        try:
            size = os.fstat(source.fileno()).st_size
            if size > SOURCE_MAX:
                return False
            part = Part.of(source, base, size)
        except (OSError, ValueError, EpgError):
            return False
        try:  # (mapped now, not first when the guides are written: a file that cannot be, spills)
            part.view()
            part.stamp = stamp_of(part.file)
        except (OSError, EpgError):
            part.close()
            return False
        self._parts.append(part)
        self._below = SOURCE_BASE
        return True

    def sources_changed(self) -> bool:
        """Whether a guide file read in place (`add_source`) changed since it was taken."""
        return any(part.changed() for part in self._parts)

    def fileno(self) -> int | None:
        """The file's descriptor, everything added flushed to it first; None once closed."""
        if self._file is None:
            return None
        self.flush()
        return self._file.fileno()

    @property
    def in_memory(self) -> int:
        """Bytes the disk refused, held in memory instead."""
        return len(self._held) if self._held is not None else 0

    def add(self, body: bytes) -> int:
        """Append `body`; the reference `read` takes."""
        size = len(body)
        if self._file is None or size > MAX_BODY:  # larger than libxml2 lets a text be
            raise EpgError("a programme too large to hold (or the spill is closed)")
        at = self._size
        self._room(at + size)
        self._size = at + size
        if self._held is not None:
            self._held += body
        else:
            self._pending.append(body)
            self._pending_size += size
            if self._pending_size >= FLUSH_BYTES:
                self._flush()
        return at << SIZE_BITS | size

    def add_many(self, bodies: list[bytes]) -> list[int]:
        """`add` of each body, in order (a run of programmes read from their bytes); a short
        body spilled before is referenced again, not spilled twice (see SHARE_MAX)."""
        known = self._known
        if known is None:
            return self.add_all(bodies)
        found = list(map(known.get, bodies))  # (a reference is never 0: no body is empty)
        missing = found.count(None)
        self._looked += len(found)
        self._hits += len(found) - missing
        if self._looked >= SHARE_TRIAL and self._hits < self._looked * SHARE_MIN_HITS:
            self._known = None  # this guide's bodies rarely repeat: no more lookups
        if not missing:
            return found  # type: ignore[return-value]
        fresh = list(dict.fromkeys(itertools.compress(bodies, map(operator.not_, found))))
        refs = self.add_all(fresh)
        if len(known) < SHARE_MAX:
            known.update(
                (b, r) for b, r in zip(fresh, refs, strict=True) if len(b) <= SHARE_MAX_BODY
            )
        found = list(map(known.get, bodies))
        if all(found):
            return found  # type: ignore[return-value]
        spilled = dict(zip(fresh, refs, strict=True))  # what the table has no room for
        return [ref or spilled[body] for body, ref in zip(bodies, found, strict=True)]

    def add_all(self, bodies: list[bytes]) -> list[int]:
        """`add` of each body, in order, none shared (`add_many` without its lookups)."""
        sizes = list(map(len, bodies))
        if self._file is None or max(sizes, default=0) > MAX_BODY:
            return [self.add(body) for body in bodies]  # (which says what is wrong)
        at, total = self._size, sum(sizes)
        self._room(at + total)
        refs = [
            offset << SIZE_BITS | size
            for offset, size in zip(itertools.accumulate(sizes, initial=at), sizes, strict=False)
        ]
        self._size = at + total
        if self._held is not None:
            self._held += b"".join(bodies)
        else:
            self._pending += bodies
            self._pending_size += total
            if self._pending_size >= FLUSH_BYTES:
                self._flush()
        return refs

    def _room(self, end: int) -> None:
        if end > self._below:
            raise EpgError("the guide's programmes outgrew what the spill can address")

    def _flush(self) -> None:
        assert self._file is not None
        data = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        done, error = 0, ""
        with memoryview(data) as view:
            try:
                while done < len(view):
                    # At most FLUSH_BYTES a write: the page cache holds a big write in large
                    # folios, and reading a body back maps its whole folio (1 MB writes kept
                    # twice the spill resident while the guides were written).
                    wrote = self._file.write(view[done : done + FLUSH_BYTES])
                    if not wrote:  # a regular file writes something or raises; never spin
                        error = "the disk took nothing"
                        break
                    done += wrote
            except OSError as err:
                error = str(err)
        self._on_disk += done
        if error:
            self._held = bytearray(data[done:])
            log.warning("guide_spill_full", error=error, held_in_memory=len(self._held))

    def flush(self) -> None:
        """Everything added to disk (or, past a full disk, to memory)."""
        if self._pending:
            self._flush()

    def adopt(self, source: IO[bytes], size: int) -> int:
        """The first `size` bytes of `source` (another spill's file) after those added, read
        in place (spillparts.py); what to add to that spill's references (`chunked.rebased`)
        to read them from this one. Copied when it cannot be (a disk that refused bytes)."""
        if self._file is None:
            raise EpgError("the guide's spill is closed")
        if self._pending:
            self._flush()
        base = self._size
        if self._held is None:
            try:
                part = Part.of(source, base, size)
            except OSError:
                pass  # (copied, as before)
            else:
                try:  # a hole in this file where the part's bytes are (offsets as references)
                    os.ftruncate(self._file.fileno(), base + size)
                    self._file.seek(base + size)
                except OSError:
                    part.close()
                else:
                    self._room(base + size)
                    self._parts.append(part)
                    self._size = self._on_disk = base + size
                    return base << SIZE_BITS
        source.seek(0)
        while size > 0 and (chunk := source.read(min(size, FLUSH_BYTES * 16))):
            size -= len(chunk)
            self._size += len(chunk)
            if self._held is not None:
                self._held += chunk
            else:
                self._pending.append(chunk)
                self._flush()
        if size:
            raise EpgError("the second half's programmes were cut short")
        return base << SIZE_BITS

    @property
    def size(self) -> int:
        """Bytes added (on disk, pending or held)."""
        return self._size

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None
        for part in self._parts:
            part.close()
        self._parts = []
        self._pending, self._held = [], None
        self._known = None  # (a repeat must not get a reference into a closed spill)


def temporary(directory: Path) -> IO[bytes]:
    """An unbuffered, already unlinked file in `directory` (nothing left behind by a crash)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryFile(dir=directory, prefix=".guide-spill.", buffering=0)
    except OSError as err:
        raise EpgError(f"cannot hold the guide's programmes on disk: {err}") from None
