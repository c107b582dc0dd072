"""Decompression in bounded steps: a gzip bomb costs at most `step` bytes of memory at a time.

zlib is never asked for more than `step` bytes per call (the rest of the input waits in
`unconsumed_tail`), and the total output is capped, so neither a bomb nor a huge honest file can
grow the process. A leaf module: callers map `InflateError` into their own domain's error.
"""

from __future__ import annotations

import lzma
import zlib
from collections.abc import Iterator

from plextuner.errors import InflateError

GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"
STEP = 1024 * 1024


class BoundedInflater:
    """Feeds compressed chunks, yields decompressed pieces of at most `step` bytes.

    `gzip` members may be concatenated (as `cat a.gz b.gz` makes them); `deflate` is the
    zlib-wrapped form that HTTP's Content-Encoding: deflate names (raw deflate accepted too).
    """

    def __init__(self, cap: int, *, kind: str = "gzip", step: int = STEP) -> None:
        self.cap, self.step, self.kind = cap, step, kind
        self.size = 0
        self._inflater = self._new()
        self._started = False

    def _new(self) -> zlib._Decompress:
        wbits = 16 + zlib.MAX_WBITS if self.kind == "gzip" else zlib.MAX_WBITS
        return zlib.decompressobj(wbits)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self.kind == "deflate" and not self._started and data[:1] and data[0] & 0x0F != 8:
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no header
            self._started = True
            try:
                piece = self._inflater.decompress(data, self.step)
            except zlib.error as err:
                raise InflateError(f"corrupt {self.kind} data ({err})") from None
            self.size += len(piece)
            if self.size > self.cap:
                raise InflateError(f"decompressed size exceeds the cap of {self.cap} bytes")
            if piece:
                yield piece
            if self._inflater.unconsumed_tail:
                data = self._inflater.unconsumed_tail
            elif self._inflater.eof and self._inflater.unused_data:
                data = self._inflater.unused_data
                if self.kind != "gzip" or not data.startswith(GZIP_MAGIC):
                    return  # trailing garbage after the last member is ignored, as gzip(1) does
                self._inflater = self._new()
            else:
                return

    def finish(self) -> None:
        """Raise when the stream ended inside a member (a truncated download)."""
        if self._started and not self._inflater.eof:
            raise InflateError(f"truncated {self.kind} data")


class BoundedXz:
    """The same bounded steps for `.xz` files (XMLTV sites publish `guide.xml.xz`): lzma keeps
    the unread input itself, so each call asks for at most `step` bytes until it needs more."""

    def __init__(self, cap: int, *, step: int = STEP) -> None:
        self.cap, self.step = cap, step
        self.size = 0
        self._dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while not self._dec.eof:
            try:
                piece = self._dec.decompress(data, self.step)
            except lzma.LZMAError as err:
                raise InflateError(f"corrupt xz data ({err})") from None
            data = b""
            self.size += len(piece)
            if self.size > self.cap:
                raise InflateError(f"decompressed size exceeds the cap of {self.cap} bytes")
            if piece:
                yield piece
            if self._dec.needs_input:
                return

    def finish(self) -> None:
        if not self._dec.eof:
            raise InflateError("truncated xz data")


def inflate_all(data: bytes, cap: int) -> bytes:
    """Whole gzip data in memory, within `cap` (for small bodies such as API replies)."""
    inflater = BoundedInflater(cap)
    out = bytearray()
    for piece in inflater.feed(data):
        out += piece
    inflater.finish()
    return bytes(out)
