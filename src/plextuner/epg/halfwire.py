"""What the reader and the second half's helper (halves.py) tell each other: the job it is
sent, and the answer it leaves."""

from __future__ import annotations

from dataclasses import dataclass, field

from plextuner.epg.spill import KeptList
from plextuner.epg.xmltv import GuideChannel


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


@dataclass(slots=True)
class HalfResult:
    channels: list[GuideChannel] = field(default_factory=list)
    packed: dict[str, KeptList] = field(default_factory=dict)
    spilled: int = 0  # bytes written to the spill file
    counts: tuple[int, int, int] = (0, 0, 0)  # channels, programmes, skipped
    notes: list[str] = field(default_factory=list)
    problem: str | None = None  # why the half cannot be used
