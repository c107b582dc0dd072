"""The shared upstream's ring buffer: the last few MB of TS, with the clean points in it.

Chunks are TS-aligned (multiples of 188 bytes), so any chunk boundary is a packet boundary. A
joiner starts at the newest keyframe the ring still holds (prefixed by the PAT and PMT), else at
the newest chunk — never mid-packet.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from plextuner.stream.ts import StreamHeaders, scan


@dataclass(slots=True)
class Chunk:
    seq: int
    data: bytes
    keyframes: list[int]  # offsets of random-access packets


@dataclass(slots=True)
class Ring:
    capacity: int
    headers: StreamHeaders = field(default_factory=StreamHeaders)
    _chunks: deque[Chunk] = field(default_factory=deque)
    _size: int = 0
    next_seq: int = 0

    def append(self, data: bytes) -> Chunk:
        chunk = Chunk(self.next_seq, data, scan(data, self.headers))
        self.next_seq += 1
        self._chunks.append(chunk)
        self._size += len(data)
        while self._size > self.capacity and len(self._chunks) > 1:
            self._size -= len(self._chunks.popleft().data)
        return chunk

    @property
    def size(self) -> int:
        return self._size

    def start_point(self) -> list[bytes]:
        """What a joiner gets first: PAT+PMT, then from the newest keyframe (or newest chunk)."""
        prefix = [self.headers.prefix] if self.headers.prefix else []
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
        self.headers = StreamHeaders()
