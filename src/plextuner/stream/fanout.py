"""One shared upstream's state: its viewers, its ring buffer, and the fan-out of new bytes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum

from plextuner.buckets.models import LineupEntry
from plextuner.config import StreamConfig
from plextuner.errors import StreamError
from plextuner.stream.ring import Ring
from plextuner.stream.viewer import Viewer


class UpstreamState(StrEnum):
    OPENING = "opening"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    LINGERING = "lingering"  # no viewers; kept for a moment
    CLOSED = "closed"


@dataclass(slots=True)
class SharedUpstream:
    id: int
    key: str
    entry: LineupEntry
    bucket: str
    cfg: StreamConfig
    state: UpstreamState = UpstreamState.OPENING
    viewers: dict[int, Viewer] = field(default_factory=dict)
    ring: Ring = field(init=False)
    provider: str = ""
    source_index: int = -1
    failovers: int = 0
    error: StreamError | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    linger_handle: asyncio.TimerHandle | None = None

    def __post_init__(self) -> None:
        self.ring = Ring(self.cfg.ring_bytes)

    @property
    def open(self) -> bool:
        return self.state is not UpstreamState.CLOSED

    def fan_out(self, data: bytes) -> None:
        self.ring.append(data)
        clean: list[bytes] | None = None
        for viewer in list(self.viewers.values()):
            if viewer.queued + len(data) > viewer.max_bytes and clean is None:
                clean = self.ring.start_point()
            viewer.offer(data, clean or [])
