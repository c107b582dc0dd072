"""The post-validation refresh stage: probe, classify, guard, cache."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter

from plextuner.buckets.models import ChannelState, Device, LineupEntry
from plextuner.config import Settings
from plextuner.metrics import PROBES
from plextuner.stages import NamedStage, RefreshContext, Stage, StageName
from plextuner.stream.budget import BudgetRegistry
from plextuner.validate.cache import ProbeCache
from plextuner.validate.guard import hold, should_hold
from plextuner.validate.hosts import taught
from plextuner.validate.jobs import Job, JobKey, interleave
from plextuner.validate.pool import ProbePool
from plextuner.validate.probe import Engine, FfprobeEngine, NativeEngine
from plextuner.validate.result import Origin, ProbeResult, Verdict


def cache_key(entry: LineupEntry) -> str:
    first = entry.channel.sources[0].url if entry.channel.sources else entry.channel.key
    return hashlib.sha256(first.encode()).hexdigest()[:24]


def _budgets(ctx: RefreshContext, given: BudgetRegistry | None) -> BudgetRegistry:
    settings = ctx.settings
    budgets = given
    if budgets is None:
        budgets = BudgetRegistry(settings.stream.default_max_connections)
        budgets.configure_accounts(settings.providers)
        budgets.linger = settings.postvalidate.provider_linger
    for cfg, result in zip(settings.providers, ctx.results, strict=False):
        account = result.account.max_connections if result.account else None
        limit = cfg.max_connections or account
        if limit:
            budgets.set_limit(cfg.name, limit)
    return budgets


def make_validate_stage(
    settings: Settings, budgets: BudgetRegistry | None = None, engine: Engine | None = None
) -> Stage:
    async def postvalidate(ctx: RefreshContext) -> None:
        cfg = settings.postvalidate
        cache = await asyncio.to_thread(ProbeCache.load, settings.paths.probe_cache)
        per_bucket: dict[str, list[Job]] = {}
        cached: dict[JobKey, ProbeResult] = {}
        for device in ctx.devices:
            if not device.postvalidate:
                continue
            jobs = per_bucket.setdefault(device.name, [])
            for entry in device.entries:
                key = JobKey(device.name, entry.number)
                hit = cache.fresh_ok(cache_key(entry), cfg.cache_ttl)
                if hit is not None:
                    cached[key] = hit
                elif entry.channel.sources:
                    jobs.append(Job(key, device.name, entry))
        probe_engine = engine or (
            FfprobeEngine(settings.ffprobe, await ctx.fetcher.http())
            if cfg.engine == "ffprobe"
            else NativeEngine(await ctx.fetcher.http())
        )
        pool = ProbePool(cfg, probe_engine, _budgets(ctx, budgets), known=cache.ceilings())
        results = await pool.run(interleave(per_bucket))
        cache.learned(taught(pool.hosts))  # kept for the runs after this one
        for device in ctx.devices:
            for entry in device.entries:
                key = JobKey(device.name, entry.number)
                if key in results:
                    cache.record(cache_key(entry), results[key])
        promote_working_sources(ctx, pool.ok_source)
        cache.prune({cache_key(e) for d in ctx.devices for e in d.entries})
        await asyncio.to_thread(cache.save, settings.paths.probe_cache)
        apply_results(
            ctx, {**results, **cached}, cfg.max_drop_ratio, set(pool.stats.tripped_buckets)
        )

    return NamedStage(StageName.VALIDATE, postvalidate)


def promote_working_sources(ctx: RefreshContext, ok_source: dict[JobKey, int]) -> None:
    """A backup that proved ok while the first source did not becomes the first source."""
    for device in ctx.devices:
        for entry in device.entries:
            index = ok_source.get(JobKey(device.name, entry.number), 0)
            if index:
                sources = entry.channel.sources
                sources.insert(0, sources.pop(index))


def apply_results(
    ctx: RefreshContext,
    results: dict[JobKey, ProbeResult],
    ratio: float,
    tripped: set[str] | None = None,
) -> None:
    previous = {d.name: d for d in ctx.previous.devices} if ctx.previous else {}
    notes = ctx.report(StageName.VALIDATE, "probe").by_device
    for index, device in enumerate(ctx.devices):
        if not device.postvalidate:
            notes[device.name] = "skipped"
            continue
        counts: Counter[str] = Counter()
        kept: list[LineupEntry] = []
        dropped: list[LineupEntry] = []
        now = time.time()
        for entry in device.entries:
            result = results.get(JobKey(device.name, entry.number))
            verdict = result.verdict if result else None
            counts[verdict.value if verdict else "unchecked"] += 1
            if result is not None:
                entry.state_reason = result.reason or None
                if result.origin is not Origin.CACHE:
                    entry.checked_at = now
                    PROBES.labels(bucket=device.name, result=result.verdict.value).inc()
            if verdict is Verdict.DEAD:
                entry.state = ChannelState.DEAD
                dropped.append(entry)
                continue
            entry.state = _state(verdict)
            if result is not None and result.hd is not None:
                entry.hd = result.hd
            if result is not None and result.video_codec:
                entry.video_codec = result.video_codec
            kept.append(entry)
        dead, total = counts["dead"], len(device.entries)
        if should_hold(total, dead, ratio) or device.name in (tripped or set()):
            for entry in device.entries:
                if entry not in kept:
                    entry.state = ChannelState.DEAD
            ctx.devices[index] = hold(device, previous.get(device.name), dead, total)
            ctx.held.append(device.name)
        else:
            device.entries = kept
            device.dropped = dropped
        notes[device.name] = f"ok {counts['ok']} dead {dead} unv {counts['transient']}" + (
            " HELD" if device.name in ctx.held else ""
        )


def _state(verdict: Verdict | None) -> ChannelState:
    if verdict is Verdict.OK:
        return ChannelState.OK
    if verdict is Verdict.TRANSIENT:
        return ChannelState.UNVERIFIED
    return ChannelState.UNCHECKED


__all__ = ["Device", "make_validate_stage"]
