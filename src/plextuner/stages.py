"""The contract between the refresh orchestrator (`pipeline`) and the stages it runs.

Stages (post-validation, the guide) depend on this module, never on the orchestrator: the
pipeline knows nothing about them, and they know only the context they read and amend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from plextuner.buckets.models import Device
from plextuner.config import Settings
from plextuner.ingest.fetch import Fetcher
from plextuner.ingest.m3uhalf import PlaylistHelpers
from plextuner.ingest.models import Channel, ProviderResult
from plextuner.state.overrides import Override
from plextuner.state.published import PublishedState


class StageName(StrEnum):
    """Every step of a refresh, as timed in `refresh_done` and named in the summary."""

    INGEST = "ingest"
    VALIDATE = "postvalidate"
    GUIDE = "guide"
    PUBLISH = "publish"


@dataclass(slots=True)
class StageReport:
    """One summary-table column: a short fact per device name."""

    column: str
    by_device: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class RefreshContext:
    settings: Settings
    fetcher: Fetcher
    previous: PublishedState | None
    results: list[ProviderResult] = field(default_factory=list)
    channels: list[Channel] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    guide_urls: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    overrides: dict[str, Override] = field(default_factory=dict)  # applied after bucketing
    dropped_unmatched: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    reports: dict[StageName, StageReport] = field(default_factory=dict)
    # Viewers stream through this process meanwhile (`serve`); False in the refresh command,
    # which has nobody to keep CPU work from (see pipeline.run_refresh)
    serving: bool = True
    playlist_helpers: PlaylistHelpers | None = None  # for big playlists (ingest/m3uhalf.py)
    # Each stage's early work (`Stage.early`), started with the refresh; the stage awaits it
    early: dict[StageName, asyncio.Task[object]] = field(default_factory=dict)
    ingested: asyncio.Event = field(default_factory=asyncio.Event)  # `results` are in

    def report(self, stage: StageName, column: str) -> StageReport:
        """The stage's summary column, created on first use."""
        return self.reports.setdefault(stage, StageReport(column))


class Stage(Protocol):
    """A step after bucketing that reads and amends the context."""

    @property
    def name(self) -> StageName: ...

    @property
    def early(self) -> Callable[[RefreshContext], Coroutine[Any, Any, object]] | None:
        """Work that can start before the lists are read (a configured guide's download):
        started with the refresh, awaited before the first stage runs, its task in
        `ctx.early`; `ctx.ingested` is set once the lists are read."""

    def __call__(self, ctx: RefreshContext) -> Awaitable[None]: ...


@dataclass(frozen=True, slots=True)
class NamedStage:
    """A coroutine function as a Stage."""

    name: StageName
    run: Callable[[RefreshContext], Awaitable[None]]
    early: Callable[[RefreshContext], Coroutine[Any, Any, object]] | None = None

    def __call__(self, ctx: RefreshContext) -> Awaitable[None]:
        return self.run(ctx)
