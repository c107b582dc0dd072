"""What the reader and the second half's helper (halves.py) tell each other: the job it is
sent, and the answer it leaves in a file: read once the helper has exited, its packed numbers a
channel at a time as the reader takes them. Through a pipe, the reader held the whole answer,
twice, while the helper still held its own (the pair's peak: 20 MB of a 150 MB budget)."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from plextuner.epg.chunked import SpilledList, read_records, write_records
from plextuner.epg.model import GuideChannel


@dataclass(frozen=True, slots=True)
class HalfJob:
    path: str  # `/proc/self/fd/N` of a descriptor passed as N (or, without /proc, the path)
    label: str
    start: int  # where the second half starts: right after a `</programme>`
    prolog: bytes  # the file's bytes up to and including the root's start tag
    wanted: frozenset[str]
    window: tuple[float, float]
    fold: bool
    fd: int  # the spill file the parent made, open in the helper under this number
    parent: int
    answer: int  # the file the answer goes to (`write_answer`), open under this number
    sourced: bool = False  # long bodies referenced in the file, not spilled (`Spill.add_source`)


@dataclass(slots=True)
class HalfResult:
    channels: list[GuideChannel] = field(default_factory=list)
    packed: dict[str, SpilledList] = field(default_factory=dict)  # empty in an answer: sizes
    # (channel, chunks, programmes) as answered: every programme spilled, the chunks' numbers
    sizes: list[tuple[str, int, int]] = field(default_factory=list)
    spilled: int = 0  # bytes written to the spill file
    counts: tuple[int, int, int] = (0, 0, 0)  # channels, programmes, skipped
    malformed: tuple[int, str | None] = (
        0,
        None,
    )  # programmes mended (resync.py), the first's error
    notes: list[str] = field(default_factory=list)
    problem: str | None = None  # why the half cannot be used


def write_answer(result: HalfResult, out: IO[bytes]) -> None:
    """The answer without its lists, then each list's chunks as machine bytes, a channel at a
    time (pickled, every array was copied into bytes the pickler kept to its end)."""
    packed, result.packed = result.packed, {}
    result.sizes = [(gid, kept.spilled, len(kept)) for gid, kept in packed.items()]
    pickle.dump(result, out, protocol=pickle.HIGHEST_PROTOCOL)
    write_records(packed.values(), out)
    out.flush()


def read_answer(fh: IO[bytes]) -> HalfResult:
    """`write_answer`'s head, once every packed number it announces is there: `read_packed`
    reads them when the half is taken, when nothing can fall back any more."""
    fh.seek(0)
    result = pickle.load(fh)  # noqa: S301 - our own child's answer
    if not isinstance(result, HalfResult):
        return HalfResult(problem="no answer")
    numbers = sum(chunks for _, chunks, _ in result.sizes) * SpilledList.CHUNK_BYTES
    if os.fstat(fh.fileno()).st_size != fh.tell() + numbers:
        return HalfResult(problem="the helper's answer is cut short")
    return result


def read_packed(result: HalfResult, fh: IO[bytes], shift: int) -> Iterator[tuple[str, SpilledList]]:
    """The kept programmes after `read_answer`'s head, a channel at a time, rebased by `shift`
    (where the reader's spill adopted the helper's: `Spill.adopt`)."""
    sizes = [(chunks, count) for _, chunks, count in result.sizes]
    return zip((gid for gid, _, _ in result.sizes), read_records(fh, sizes, shift), strict=True)
