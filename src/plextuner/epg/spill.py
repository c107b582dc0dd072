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
from plextuner.epg.spillparts import Part, cuts, part_at, stamp_of
from plextuner.errors import EpgError
from plextuner.logging import get_logger

log = get_logger(__name__)

_MAX_BODY = (1 << SIZE_BITS) - 1
# A guide's own file read as a part of the spill (`add_source`): the reader's above the spill's own
# bytes (held under it), the helper's above that (moved by the adoption's shift: halves.py)
SOURCE_BASE, HELPER_SOURCE_BASE, SOURCE_MAX = 1 << 31, 1 << 32, 1 << 31
READS_PER_RELEASE = 2048  # at most ~8 MB of touched pages resident (one page a body)
FLUSH_BYTES = 64 * 1024  # bodies gathered before a write (under malloc's mmap threshold)
# Bodies read in file order between two hand-backs of the pages they mapped (`read_runs`).
SORTED_BATCH = 1024
# A guide's short bodies often repeat (a title-only guide's "News", a provider's "No
# information" in every slot): `add_many` spills each once and hands out its reference again,
# and `read_runs` reads it once for all. Up to SHARE_MAX distinct ones of up to SHARE_MAX_BODY
# bytes are remembered (~3 MB at most); when fewer than SHARE_MIN_HITS of the first
# SHARE_TRIAL bodies were repeats, the lookups stop for this spill.
SHARE_MAX, SHARE_MAX_BODY = 8192, 256
SHARE_TRIAL, SHARE_MIN_HITS = 65_536, 0.25
# The kernel maps a file's cached pages around a faulting one, this many bytes aligned (its
# `fault_around_bytes`, 64 KB by default): what a read maps, at most.
_WINDOW = 64 * 1024


class Spill:
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
        if self._file is None or size > _MAX_BODY:  # larger than libxml2 lets a text be
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
        if self._file is None or max(sizes, default=0) > _MAX_BODY:
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

    def read(self, ref: int) -> bytes:
        if self._file is None:
            raise EpgError("the guide's spilled programmes are gone")
        if self._pending:
            self._flush()  # everything to disk (or to `_held`) before the file is mapped
        at, size = ref >> SIZE_BITS, ref & _MAX_BODY
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
        ats = list(map(operator.rshift, refs, itertools.repeat(SIZE_BITS)))
        ends = list(map(operator.add, ats, map(operator.and_, refs, itertools.repeat(_MAX_BODY))))
        parts = self._parts
        if not parts or max(ats, default=0) < min(p.base for p in parts):  # none in a part
            return self._read_own(refs, ats, ends)
        if not all(map(operator.le, ats, itertools.islice(ats, 1, None))):
            order = sorted(range(len(refs)), key=ats.__getitem__)  # (a repeat's earlier body)
            found = dict(zip(order, self.read_many([refs[i] for i in order]), strict=True))
            return list(map(found.__getitem__, range(len(refs))))
        out: list[bytes] = []  # ascending (a channel's bodies, `read_runs`): a run a part
        for lo, hi in itertools.pairwise(cuts(self._parts, ats)):
            part = part_at(self._parts, ats[lo])
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
        refs = sorted(itertools.chain.from_iterable(runs))  # each run ascends: merged in C
        if not refs:
            return [[] for _ in runs]
        refs = list(dict.fromkeys(refs))  # a shared body (see SHARE_MAX) read once
        ats = list(map(operator.rshift, refs, itertools.repeat(SIZE_BITS)))
        held = self._held is not None and ats[-1] + (refs[-1] & _MAX_BODY) > self._on_disk
        if self._file is None or self._pending or held:  # (sourced ones lie above `_on_disk`)
            return [self.read_many(run) for run in runs]  # (which flushes, or reads the held)
        view, bodies = self._view() if self._on_disk else None, []
        for first in range(0, len(refs), SORTED_BATCH):
            bodies += self.read_many(refs[first : first + SORTED_BATCH])
            # The pages this batch mapped (whole fault-around windows) are behind the rest:
            # handed back now, so a run of channels holds a few windows, not one per body.
            low = ats[first] & ~(_WINDOW - 1)
            last = min(first + SORTED_BATCH, len(refs)) - 1
            high = (ats[last] + (refs[last] & _MAX_BODY) + _WINDOW) & ~(_WINDOW - 1)
            if view is not None and low < len(view):
                view.madvise(mmap.MADV_DONTNEED, low, min(len(view), high) - low)
            for part in self._parts:
                part.hand_back(low, high)
        found = dict(zip(refs, bodies, strict=True))
        return [list(map(found.__getitem__, run)) for run in runs]

    @property
    def size(self) -> int:
        """Bytes added (on disk, pending or held)."""
        return self._size

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
