"""What a block read from its bytes becomes, in file order: runs of programmes read here and bytes
for the parser (the programmes left to it, and every read or cut programme's line breaks, so
that the parser's errors name the file's lines)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from plextuner.epg.prefilter import END

# A programme read from its bytes: its channel, times as a `KeptList` holds them (made once a
# slot, not once a programme: 0.25 us of ~0.8 to keep one) and rendered body (what `Spill` holds).
Rendered = tuple[str, int, int, bytes]
DROPPED: Rendered = ("", 0, 0, b"")  # `take`'s answer for one not kept: cut, as prefilter.py cuts
# Consecutive programmes of a block (their pieces, split at `</programme>`), what was kept of
# them (None: the parser's, all of them) and how many were cut
Unit = tuple[list[bytes], list[Rendered] | None, int]


class RenderedRun(list[Rendered]):
    """Programmes read from their bytes, in file order (a list of its own kind, so a reader
    tells it from the parser's items)."""

    __slots__ = ()


class Counts(Protocol):
    skipped: int


def units_of(pieces: list[bytes], items: list[Rendered | None]) -> Iterator[Unit]:
    """Each piece with its reading (`PlainReader.take`'s: Rendered, DROPPED or None)."""
    for piece, item in zip(pieces, items, strict=True):
        if item is None:
            yield [piece], None, 0
        elif item is DROPPED:
            yield [piece], [], 1
        else:
            yield [piece], [item], 0


def emitted(units: Iterable[Unit], tail: bytes, counts: Counts) -> Iterator[bytes | RenderedRun]:
    """The units in file order as runs and parser bytes; what was cut counted in `counts`;
    `tail` (after the last `</programme>`) the parser's, last."""
    text: list[bytes] = []
    run = RenderedRun()
    parsed = False  # `text` holds a programme for the parser (else line breaks only)
    for pieces, kept, dropped in units:
        if kept is None:
            if run:  # the run came before these pieces
                yield run
                run = RenderedRun()
            for piece in pieces:
                text += (piece, END)
            parsed = True
            continue
        counts.skipped += dropped
        if kept:
            if parsed:  # the parser's programmes came before these
                yield b"".join(text)
                text, parsed = [], False
            run += kept
        if lines := sum(piece.count(b"\n") for piece in pieces):
            text.append(b"\n" * lines)
    if run:
        yield run
    text.append(tail)
    yield b"".join(text)
