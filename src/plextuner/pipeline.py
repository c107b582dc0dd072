"""One refresh pass: ingest → buckets → (EPG, post-validation stages) → publish.

Later stages plug in as `Stage` coroutines that read and amend the RefreshContext; publishing is
last and atomic, so a failure anywhere before it leaves the previous state served.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from plextuner.buckets import Assignments, NumberMap, build_devices
from plextuner.config import ProviderConfig, Settings, layout_digest
from plextuner.errors import IngestError, NothingPublishedError
from plextuner.ingest import Entry, ProviderResult, m3uhalf, merge_entries, parse_m3u_file
from plextuner.ingest.client import make_client
from plextuner.ingest.fetch import Fetcher, FetchOptions, is_url
from plextuner.ingest.m3uhalf import PlaylistHelpers
from plextuner.ingest.models import Channel
from plextuner.ingest.xtream import fetch_xtream
from plextuner.logging import get_logger
from plextuner.redact import redact_url
from plextuner.release import release_in_thread
from plextuner.stages import RefreshContext, Stage, StageName
from plextuner.state.overrides import OverrideStore, apply_overrides, layered
from plextuner.state.published import (
    ProviderState,
    PublishedState,
    load_state,
    save_state,
)

if TYPE_CHECKING:  # a refresh of local files never loads httpx
    import httpx

log = get_logger(__name__)
_T = TypeVar("_T")


@dataclass(slots=True, repr=False)
class RefreshOutcome:
    state: PublishedState
    context: RefreshContext
    duration: float = 0.0  # seconds, for the caller's metrics (a one-shot `refresh` has none)

    def __repr__(self) -> str:
        # asyncio.run() reprs the main task's result on the way out (Python 3.11, via
        # signal.getsignal): a full dataclass repr of 100k channels cost 300 MB of peak memory.
        return f"RefreshOutcome(devices={len(self.state.devices)}, held={self.state.held})"

    @property
    def exit_code(self) -> int:
        return 3 if self.state.held else 0


async def ingest_provider(
    fetcher: Fetcher, cfg: ProviderConfig, helpers: PlaylistHelpers | None = None
) -> ProviderResult:
    """One provider's entries, or its error as a one-line reason (credentials redacted).
    `helpers`: a big playlist's second part may be parsed by one of them (m3uhalf.py)."""
    result = ProviderResult(provider=cfg.name)
    headers = {"User-Agent": cfg.user_agent} if cfg.user_agent else None
    try:
        if cfg.xtream is not None:
            entries, report, account, guide = await fetch_xtream(fetcher, cfg.xtream, cfg.name)
            result.account = account
            result.guide_urls = [guide]
        else:
            assert cfg.m3u_url is not None
            location = cfg.m3u_url.get_secret_value()
            path = await fetcher.fetch_file(location, headers)
            label = redact_url(location)
            entries, report = await asyncio.to_thread(
                parse_m3u_file, path, label, cfg.name, helpers
            )
            result.guide_urls = list(report.guide_urls)
    except IngestError as err:
        result.error = str(err)
        log.warning("provider_failed", provider=cfg.name, error=result.error)
        return result
    if cfg.user_agent:
        for entry in entries:
            entry.headers.setdefault("User-Agent", cfg.user_agent)
    result.entries, result.report = entries, report
    log.info(
        "provider_indexed",
        provider=cfg.name,
        entries=len(entries),
        skipped=report.skipped_total,
        skipped_reasons=report.skipped,
    )
    return result


# Every field a channel keeps from its entries, found from the two models (a field added to
# both is carried over with no edit here); provider and group come from the source.
_CARRIED = tuple(
    name
    for name in Entry.__struct_fields__
    if name in Channel.__struct_fields__ and name not in ("provider", "group")
)


def carried_over(previous: PublishedState | None, provider: str) -> list[Entry]:
    """A failed provider's channels as last published, so its outage removes nothing."""
    if previous is None:
        return []
    out: list[Entry] = []
    for device in previous.devices:
        for e in device.entries:
            ch = e.channel
            shared = {name: getattr(ch, name) for name in _CARRIED}
            out.extend(
                Entry(
                    url=s.url,
                    provider=provider,
                    group=s.group or ch.group,
                    headers=dict(s.headers),
                    **shared,
                )
                for s in ch.sources
                if s.provider == provider
            )
    return out


def check_shrink(result: ProviderResult, previous: PublishedState | None, limit: float) -> None:
    """A list that suddenly lost most of its entries is a truncated download, not the provider's
    new line-up: treat it as failed so the last published channels stay."""
    if result.error is not None or previous is None or limit >= 1:
        return
    before = next((p.entries for p in previous.providers if p.name == result.provider), None)
    now = len(result.entries)
    if before and now < before * (1 - limit):
        result.error = (
            f"provider {result.provider}: list shrank from {before} to {now} entries (more than "
            f"fetch.max_shrink {limit:.0%}); kept the last published channels; set "
            "fetch.max_shrink: 1 to accept it"
        )
        log.warning("provider_list_shrank", provider=result.provider, before=before, now=now)


async def ingest_all(ctx: RefreshContext) -> None:
    providers = ctx.settings.providers
    async with asyncio.TaskGroup() as tg:
        tasks = [
            tg.create_task(ingest_provider(ctx.fetcher, p, ctx.playlist_helpers)) for p in providers
        ]
    ctx.results = [t.result() for t in tasks]
    for result in ctx.results:
        check_shrink(result, ctx.previous, ctx.settings.fetch.max_shrink)
    if not any(r.error is None for r in ctx.results):
        reasons = "; ".join(r.error or "" for r in ctx.results) or "no providers configured"
        raise NothingPublishedError(f"every provider failed: {reasons}")
    if ctx.previous is not None and any(r.error is not None for r in ctx.results):
        ctx.previous = await asyncio.to_thread(load_state, ctx.settings.paths)  # with devices
    entries: list[Entry] = []
    for result in ctx.results:
        entries.extend(
            result.entries if result.error is None else carried_over(ctx.previous, result.provider)
        )
        for url in result.guide_urls:
            if url not in ctx.guide_urls:
                ctx.guide_urls.append(url)
    # CPU work (50k entries: ~0.5 s) runs in a thread: viewers stream on the loop meanwhile.
    ctx.channels = await asyncio.to_thread(merge_entries, entries)
    box: list[object] = [entries, *(r.take_entries() for r in ctx.results)]
    del entries
    await release_in_thread(box)  # 50k entries freed here would stall the loop


async def bucket_channels(ctx: RefreshContext, numbers: NumberMap, placed: Assignments) -> None:
    result = await asyncio.to_thread(build_devices, ctx.channels, ctx.settings, numbers, placed)
    await asyncio.to_thread(numbers.seal)  # saved as it is now when the refresh publishes
    ctx.devices = result.devices
    ctx.dropped_unmatched = result.dropped_unmatched
    await asyncio.to_thread(_apply_overrides, ctx)


def _apply_overrides(ctx: RefreshContext) -> None:
    """The operator's overrides, after numbering: they move only the channels they name."""
    store = OverrideStore.load(ctx.settings.paths.overrides)
    rows = [o.model_dump(exclude_none=True) for o in ctx.settings.overrides]
    problems: list[str] = []
    ctx.overrides = layered(rows, store, problems)
    for problem in problems + apply_overrides(ctx.devices, ctx.overrides):
        log.warning("override_not_applied", problem=problem)


def provider_states(ctx: RefreshContext) -> list[ProviderState]:
    states = []
    for cfg, result in zip(ctx.settings.providers, ctx.results, strict=True):
        account = result.account
        states.append(
            ProviderState(
                name=cfg.name,
                max_connections=cfg.max_connections
                or (account.max_connections if account else None),
                active_connections=account.active_connections if account else None,
                exp_date=account.exp_date if account else None,
                ok=result.error is None,
                error=result.error,
                entries=result.count
                if result.error is None
                else _previous_entries(ctx.previous, cfg.name),
            )
        )
    return states


def _previous_entries(previous: PublishedState | None, provider: str) -> int | None:
    if previous is None:
        return None
    return next((p.entries for p in previous.providers if p.name == provider), None)


async def publish(ctx: RefreshContext, numbers: NumberMap, placed: Assignments) -> PublishedState:
    paths = ctx.settings.paths
    state = PublishedState(
        devices=ctx.devices,
        providers=provider_states(ctx),
        held=ctx.held,
        config_digest=layout_digest(ctx.settings),
    )
    await asyncio.to_thread(numbers.save, paths.numbers)
    await asyncio.to_thread(placed.save, paths.assignments)
    await asyncio.to_thread(save_state, paths, state)
    return state


async def _settle(tasks: Iterable[asyncio.Task[object]]) -> None:
    """Early work a failed refresh never reached is cancelled; none is left behind, and an
    error of one that no stage awaited is retrieved here (else asyncio reports it)."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def run_refresh(
    settings: Settings,
    *,
    stages: Sequence[Stage] = (),
    client: httpx.AsyncClient | None = None,
    serving: bool = True,
) -> RefreshOutcome:
    """One full pass; raises NothingPublishedError (previous state untouched) when it cannot.
    `serving`: viewers stream through this process meanwhile (False: the refresh command)."""
    started = time.monotonic()
    opts = FetchOptions(
        timeout=settings.fetch.timeout,
        retries=settings.fetch.retries,
        max_bytes=settings.fetch.max_bytes,
        user_agent=settings.fetch.user_agent,
        cache_dir=settings.paths.fetch_cache,
        yield_gil=serving,
    )
    # Without a client, one is built on the first download (local files need none).
    factory = functools.partial(make_client, settings.fetch.timeout, settings.fetch.user_agent)
    fetcher = Fetcher(client, opts, None if client is not None else factory)
    helpers: PlaylistHelpers | None = None
    early: dict[StageName, asyncio.Task[object]] = {}
    try:
        # The head only (providers, for the shrink check): the previous devices (50 MB for 34k
        # channels) are read once this refresh's entries are merged and freed, so the two
        # never peak together, and only when a stage needs them; a failed provider's channels
        # read them early.
        head = await asyncio.to_thread(load_state, settings.paths, devices=False)
        ctx = RefreshContext(
            settings=settings, fetcher=fetcher, previous=head, serving=serving, early=early
        )
        for stage in stages:  # a configured guide downloads while the playlists are read
            if stage.early is not None:
                early[stage.name] = asyncio.create_task(stage.early(ctx))
        # Started now, a big playlist's helper starts while the numbers are read (m3uhalf.py).
        helpers = ctx.playlist_helpers = PlaylistHelpers(warm=_big_playlist(settings, head))
        numbers = await asyncio.to_thread(NumberMap.load, settings.paths.numbers)
        placed = await asyncio.to_thread(Assignments.load, settings.paths.assignments)
        await _timed(ctx, StageName.INGEST, ingest_all(ctx))
        ctx.ingested.set()
        await bucket_channels(ctx, numbers, placed)
        # Only the probe stage (the guard's last good lineups, carried probe states) reads them.
        probing = any(stage.name is StageName.VALIDATE for stage in stages)
        if head is not None and ctx.previous is head and probing:
            ctx.previous = await asyncio.to_thread(load_state, settings.paths)
        if early:  # nothing downloads while the probes time the provider's network
            await asyncio.wait(early.values())
        for stage in stages:
            await _timed(ctx, stage.name, stage(ctx))
        state = await _timed(ctx, StageName.PUBLISH, publish(ctx, numbers, placed))
    finally:
        if helpers is not None:
            helpers.close()
        await _settle(early.values())
        # Let the tasks go: a task keeps its outcome, and a failed guide download's EpgError
        # keeps its traceback, whose frames hold this context, which held the task. That cycle
        # kept a whole refresh (50k channels: ~50 MB) alive for the cyclic collector, and
        # `serve` froze it for good after each refresh whose guide download failed.
        early.clear()
        await fetcher.aclose()
    duration = time.monotonic() - started
    log.info(
        "refresh_done",
        duration_s=round(duration, 3),
        timings=ctx.timings,
        channels=len(ctx.channels),
        devices={d.name: len(d.entries) for d in ctx.devices},
        held=ctx.held,
        failed_providers=[r.provider for r in ctx.results if r.error],
    )
    return RefreshOutcome(state=state, context=ctx, duration=duration)


def _big_playlist(settings: Settings, head: PublishedState | None) -> bool:
    """A provider's playlist is expected big enough to be parsed in two: it listed
    WARM_ENTRIES last time, or it is a local file of SPLIT_MIN bytes."""
    before = {p.name: p.entries or 0 for p in head.providers} if head is not None else {}
    for cfg in settings.providers:
        if cfg.m3u_url is None:
            continue
        if before.get(cfg.name, 0) >= m3uhalf.WARM_ENTRIES:
            return True
        location = cfg.m3u_url.get_secret_value()
        if not is_url(location):
            with contextlib.suppress(OSError, ValueError):
                if Path(location.removeprefix("file://")).stat().st_size >= m3uhalf.SPLIT_MIN:
                    return True
    return False


async def _timed(ctx: RefreshContext, name: str, coro: Awaitable[_T]) -> _T:
    start = time.monotonic()
    try:
        return await coro
    finally:
        ctx.timings[str(name)] = round(time.monotonic() - start, 3)
