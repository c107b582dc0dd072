"""Reading a playlist's lines: decoded a block at a time, over-long lines skipped as they stream.

A leaf of `ingest`: the M3U parser reads its lines here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

MAX_LINE = 64 * 1024  # longer lines are garbage (or an attack), not an entry


def decode_playlist(data: bytes) -> str:
    """UTF-8 (with or without BOM); lines that are not UTF-8 are read as Latin-1."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        lines = data.split(b"\n")
        return "\n".join(decode_line(line) for line in lines)


def decode_line(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("latin-1")


def file_blocks(fh: IO[bytes]) -> Iterator[str | None]:
    """The file decoded a block of whole lines at a time (one `decode` per megabyte, not per
    line), the lines joined by `\n`; None stands for a line too long to fit one read (skipped
    as it streams past). A block that is not UTF-8 is decoded line by line, Latin-1 where UTF-8
    fails. A block may still hold a line over MAX_LINE bytes: see `too_long`."""
    first = True
    for raw_block in bounded_blocks(fh, MAX_LINE, BLOCK):
        if raw_block is None:
            yield None
            continue
        block = raw_block.removeprefix(b"\xef\xbb\xbf") if first else raw_block
        first = False
        try:
            yield block.decode("utf-8")
        except UnicodeDecodeError:
            yield "\n".join([decode_line(raw) for raw in block.split(b"\n")])


def too_long(line: str) -> bool:
    """Over MAX_LINE bytes as UTF-8 (only a line over MAYBE_LONG characters can be)."""
    return len(line) > MAYBE_LONG and len(line.encode("utf-8", "surrogateescape")) > MAX_LINE


MAYBE_LONG = MAX_LINE // 4  # UTF-8 takes at most 4 bytes a character
BLOCK = 1024 * 1024  # bytes read at a time


def bounded_blocks(fh: IO[bytes], limit: int, chunk: int = 1024 * 1024) -> Iterator[bytes | None]:
    """The file as blocks of whole lines (joined by `\\n`, without the last newline); a line
    over `limit` bytes that does not fit one read is yielded as None and skipped as it streams
    past, so a 100 MB single-line file costs one chunk of memory. Every line is in exactly one
    block, so `b"\\n".join` of the blocks (None for a long line) is the file."""
    pending = b""
    too_long = False
    while block := fh.read(chunk):
        nl = block.rfind(b"\n")
        if nl < 0:  # no line ends in this read
            if not too_long:
                pending += block
                if len(pending) > limit:
                    pending, too_long = b"", True
            continue
        head, tail = block[:nl], block[nl + 1 :]
        if too_long:  # the long line ends at the first newline of this read
            yield None
            too_long = False
            cut = head.find(b"\n")
            if cut >= 0:
                yield head[cut + 1 :]
        else:
            yield pending + head
        pending = tail
        if len(pending) > limit:
            pending, too_long = b"", True
    if too_long:
        yield None
    elif pending:
        yield pending
