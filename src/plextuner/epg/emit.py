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


class RenderedRun(list[Rendered]):
    """Programmes read from their bytes, in file order (a list of its own kind, so a reader
    tells it from the parser's items)."""

    __slots__ = ()


class SourcedRun(RenderedRun):
    """A run whose bodies are read where they lie in the guide's file: `refs`, their spill
    references (`Spill.add_source`), not to be spilled again."""

    __slots__ = ("refs",)

    def __init__(self, items: Iterable[Rendered], refs: list[int]) -> None:
        super().__init__(items)
        self.refs = refs


class Counts(Protocol):
    skipped: int


def emitted(
    pieces: list[bytes], items: Iterable[Rendered | None], tail: bytes, counts: Counts
) -> Iterator[bytes | RenderedRun]:
    """Each piece (a programme, split at `</programme>`) with its reading (`PlainReader.take`'s:
    Rendered, DROPPED or None, the parser's) in file order as runs and parser bytes; what was
    cut counted in `counts`; `tail` (after the last `</programme>`) the parser's, last."""
    text: list[bytes] = []
    run = RenderedRun()
    parsed = False  # `text` holds a programme for the parser (else line breaks only)
    for piece, item in zip(pieces, items, strict=True):
        if item is None:
            if run:  # the run came before this piece
                yield run
                run = RenderedRun()
            text += (piece, END)
            parsed = True
            continue
        if item is DROPPED:
            counts.skipped += 1
        else:
            if parsed:  # the parser's programmes came before this one
                yield b"".join(text)
                text, parsed = [], False
            run.append(item)
        if lines := piece.count(b"\n"):
            text.append(b"\n" * lines)
    if run:
        yield run
    text.append(tail)
    yield b"".join(text)
