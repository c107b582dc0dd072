"""The shared upstream's ring buffer: the last few MB of TS, with the clean points in it.

Chunks are TS-aligned (multiples of 188 bytes), so any chunk boundary is a packet boundary. A
joiner starts at the newest keyframe the ring still holds (prefixed by the PAT and PMT), else at
the newest chunk — never mid-packet.

Chunks are scanned for PAT/PMT and keyframes lazily, only when someone asks (a joiner, a skipped
viewer, a keep-alive): scanning every packet in Python on the way in cost more than the whole
fan-out.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from plextuner.stream.ts import StreamHeaders, scan


@dataclass(slots=True)
class Chunk:
    seq: int
    data: bytes
    keyframes: list[int] | None = None  # offsets of random-access packets, once scanned


@dataclass(slots=True)
class Ring:
    capacity: int
    _headers: StreamHeaders = field(default_factory=StreamHeaders)
    _chunks: deque[Chunk] = field(default_factory=deque)
    _size: int = 0
    next_seq: int = 0

    def append(self, data: bytes) -> Chunk:
        chunk = Chunk(self.next_seq, data)
        self.next_seq += 1
        self._chunks.append(chunk)
        self._size += len(data)
        while self._size > self.capacity and len(self._chunks) > 1:
            self._size -= len(self._chunks.popleft().data)
        return chunk

    @property
    def size(self) -> int:
        return self._size

    def _scan(self) -> None:
        """Scan the chunks not scanned yet, oldest first (a PAT is seen before its PMT)."""
        for chunk in self._chunks:
            if chunk.keyframes is None:
                chunk.keyframes = scan(chunk.data, self._headers)

    @property
    def headers(self) -> StreamHeaders:
        """The latest PAT and PMT the ring has seen."""
        self._scan()
        return self._headers

    def start_point(self) -> list[bytes]:
        """What a joiner gets first: PAT+PMT, then from the newest keyframe (or newest chunk)."""
        self._scan()
        prefix = [self._headers.prefix] if self._headers.prefix else []
        for index in range(len(self._chunks) - 1, -1, -1):
            chunk = self._chunks[index]
            if chunk.keyframes:
                first = chunk.data[chunk.keyframes[-1] :]
                rest = [c.data for c in list(self._chunks)[index + 1 :]]
                return [*prefix, first, *rest]
        return [*prefix, self._chunks[-1].data] if self._chunks else prefix

    def clear(self) -> None:
        """A new source: its timeline and PIDs start over."""
        self._chunks.clear()
        self._size = 0
        self._headers = StreamHeaders()
