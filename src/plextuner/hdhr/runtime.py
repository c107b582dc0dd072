"""What the HTTP layer reads: the served state, swapped atomically on each publish."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from plextuner.buckets.models import Device, LineupEntry
from plextuner.config import Settings
from plextuner.hdhr.device import Identity, RenderCache
from plextuner.state.published import PublishedState


class Tuner(Protocol):
    """The stream engine as the routes see it."""

    async def handle(
        self, request: web.Request, device: Device, entry: LineupEntry, tuner: int | None
    ) -> web.StreamResponse: ...

    def active_sessions(self) -> list[dict[str, Any]]: ...

    def budgets_snapshot(self) -> list[dict[str, Any]]: ...

    def recent_failovers(self) -> list[dict[str, Any]]: ...


@dataclass(slots=True)
class RefreshInfo:
    started_at: float | None = None
    finished_at: float | None = None
    ok: bool | None = None
    message: str = ""
    exit_code: int | None = None
    crashes: int = 0

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.finished_at is None


@dataclass(slots=True)
class Runtime:
    settings: Settings
    tuner: Tuner
    state: PublishedState | None = None
    by_name: dict[str, Device] = field(default_factory=dict)
    by_port: dict[int, Device] = field(default_factory=dict)
    numbers: dict[str, dict[str, LineupEntry]] = field(default_factory=dict)
    cache: RenderCache = field(default_factory=RenderCache)
    scan_in_progress: bool = False
    refresh: RefreshInfo = field(default_factory=RefreshInfo)
    started_at: float = field(default_factory=time.time)
    request_refresh: Callable[[], Awaitable[bool]] | None = None
    queue_refresh: Callable[[bool], Awaitable[bool]] | None = None  # (quick) -> started now
    on_state: list[Callable[[PublishedState], None]] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.state is not None

    def identity(self, device: Device) -> Identity:
        """The model the device's bucket claims (config `buckets[].model`)."""
        bucket = next((b for b in self.settings.buckets if b.name == device.bucket), None)
        if bucket is None:
            return Identity()
        return Identity(model=bucket.model, firmware_name=bucket.firmware_name)

    def swap(self, state: PublishedState) -> None:
        """Serve `state` from now on; every derived index is rebuilt before the swap."""
        by_name = {d.name: d for d in state.devices}
        by_port = {d.port: d for d in state.devices}
        numbers = {d.name: {e.number: e for e in d.entries} for d in state.devices}
        self.state, self.by_name, self.by_port, self.numbers = state, by_name, by_port, numbers
        self.cache.clear()
        for callback in self.on_state:
            callback(state)

    def entry(self, device: Device, number: str) -> LineupEntry | None:
        return self.numbers.get(device.name, {}).get(number)
