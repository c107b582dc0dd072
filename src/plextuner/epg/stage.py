"""The guide refresh stage: fetch every source, match, prune, write one guide.xml per device."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

from plextuner import memtrim
from plextuner.buckets.models import Device, LineupEntry
from plextuner.config import Settings
from plextuner.epg import fingerprint
from plextuner.epg.aliases import load_aliases
from plextuner.epg.bodies import BodyRenderer, keep_programme
from plextuner.epg.chunked import SpilledList, seal_all
from plextuner.epg.fetch import fetch_guide
from plextuner.epg.guidedata import GuideData, match_pending
from plextuner.epg.kept import SIZE_BITS
from plextuner.epg.match import Matcher
from plextuner.epg.model import GuideChannel, ParseOutcome, Programme
from plextuner.epg.spill import HELPER_SOURCE_BASE, SOURCE_BASE
from plextuner.epg.worker import (
    GuideJob,
    GuideJobResult,
    entry_row,
    pack_rows,
    run_guide_job,
    run_in_process,
    unpack_rows,
    wants_process,
)
from plextuner.errors import EpgError
from plextuner.ingest.fetch import is_url
from plextuner.ingest.xtream import XtreamAccount
from plextuner.logging import get_logger
from plextuner.stages import NamedStage, RefreshContext, Stage, StageName

if TYPE_CHECKING:
    from plextuner.epg.halves import SecondHalf

log = get_logger(__name__)
PAST = 2 * 3600.0
SHIFT_SLACK = 26 * 3600.0  # tvg-shift may move programmes by up to a day


def parse_source(
    path: Path,
    label: str,
    data: GuideData,
    entries: list[LineupEntry],
    window: tuple[float, float],
    *,
    last: bool = False,
) -> ParseOutcome:
    """Read one guide into `data`, keeping only programmes of matched channels near the window
    (a big one in two halves, the second by a helper process: see halves.py). `last`: no source
    follows, so the matcher's name indexes go once its channels are matched."""
    from plextuner.epg.xmltv import HEAD_SCAN, iter_guide  # only with a guide (~15 ms)

    outcome = ParseOutcome(source=label)
    mine: dict[str, list[Programme]] = {}
    packed: dict[str, SpilledList] = {}
    bodies = BodyRenderer()
    spill = data.spill
    with path.open("rb") as fh:
        margin = shift_slack(entries)
        slack = (window[0] - margin, window[1] + margin)
        # Long bodies referenced where they lie in the file, not copied through the spill
        origin = None
        if spill is not None and not data.sourced and spill.add_source(fh, SOURCE_BASE):
            data.sourced, origin = True, SOURCE_BASE
        half: SecondHalf | None = None
        if data.parallel and spill is not None and spill.directory is not None:
            from plextuner.epg.halves import SecondHalf  # only with a guide (~10 ms to import)

            half = SecondHalf(fh, fh.read(HEAD_SCAN), label, slack, data.fold, spill.directory)
            half.sourced = origin is not None
            fh.seek(0)

        def wanted() -> set[str]:  # asked once, by the reader, at the first programme
            ids = match_pending(data, entries)
            if last:
                data.matcher.release()  # not needed while the programmes are read
            # What matching freed (keys, indexes) handed back before the readers grow: a 50k
            # list's refresh peaks while they read (its process tree 151-152 -> 148-149 MB)
            memtrim.trim()
            if half is not None:
                half.start(frozenset(ids))
            return ids

        try:
            fold = None if spill is None else data.fold  # plain programmes come rendered
            read = iter_guide(
                fh, label, outcome, wanted, slack, until=half, fold=fold, origin=origin
            )
            for item in read:
                if isinstance(item, GuideChannel):
                    data.matcher.add(item)
                    data.stale = True
                elif spill is None:
                    assert isinstance(item, Programme)  # (rendered ones only with a spill)
                    mine.setdefault(item.channel, []).append(item)
                else:  # rendered once, here; the objects and their strings freed at once
                    keep_programme(item, data.fold, spill, packed, bodies)
            if half is not None and half.result is not None:
                _take_half(half, data, packed, outcome, fh)
            if origin is not None and spill is not None and spill.sources_changed():
                raise EpgError(f"{label}: the guide file changed while it was read")
        finally:
            if half is not None:
                half.close()
    _store(data, mine, packed)
    data.matcher.next_source()
    data.stamps.append(fingerprint.source_stamp(path))
    return outcome


def _store(
    data: GuideData, mine: dict[str, list[Programme]], packed: dict[str, SpilledList]
) -> None:
    """A source's programmes after the earlier sources' (the last of each channel's numbers
    spilled too, its lists sealed)."""
    if data.spill is not None:
        seal_all(packed.values(), data.spill)
    for gid, items in (mine | packed).items():
        data.programmes[gid] = (*data.programmes.get(gid, ()), items)  # a 1-tuple mostly


def _take_half(
    half: SecondHalf,
    data: GuideData,
    packed: dict[str, SpilledList],
    outcome: ParseOutcome,
    fh: IO[bytes],
) -> None:
    """The helper's half after the reader's own, in file order (see halves.py); `fh`: the
    guide's file, where the helper's sourced bodies lie."""
    result, file = half.result, half.spill_file
    assert result is not None and file is not None and data.spill is not None
    for channel in result.channels:
        data.matcher.add(channel)
        data.stale = True
    shift = data.spill.adopt(file, result.spilled)
    # The helper referenced them from HELPER_SOURCE_BASE; the shift (a reference's, its offset
    # in the high bits) moved them with the rest
    if half.sourced and not data.spill.add_source(fh, HELPER_SOURCE_BASE + (shift >> SIZE_BITS)):
        raise EpgError(f"{outcome.source}: cannot read the guide's second half back")
    seal_all(packed.values(), data.spill)  # the reader's own first, each list's end spilled
    for gid, kept in half.packed(shift):
        if (mine := packed.get(gid)) is None:
            packed[gid] = kept
        else:
            mine.follow(kept)
    channels, programmes, skipped = result.counts
    outcome.channels += channels
    outcome.programmes += programmes
    outcome.skipped += skipped
    outcome.malformed += result.malformed[0]
    outcome.malformed_first = outcome.malformed_first or result.malformed[1]
    outcome.notes += result.notes


def shift_slack(entries: list[LineupEntry]) -> float:
    """How far outside the window a programme may lie and still be shifted into it: the
    lineup's largest tvg-shift (at most SHIFT_SLACK). Most lineups have none, and the slack of a
    day each side held ~40% more programmes of a well-matched guide than were written."""
    shifts = [abs(e.channel.tvg_shift) for e in entries if e.channel.tvg_shift]
    return min(SHIFT_SLACK, max(shifts) * 3600.0) if shifts else 0.0


def make_matcher(settings: Settings, manual: dict[str, str] | None = None) -> Matcher:
    cfg = settings.epg
    aliases = load_aliases(Path(cfg.aliases)) if cfg.aliases else []
    return Matcher(cfg.map if manual is None else manual, aliases, cfg.match_threshold)


def make_epg_stage(settings: Settings) -> Stage:
    """While serving, a big guide job runs in a child process, off the daemon's interpreter
    lock. The one-shot `plextuner refresh` (`ctx.serving` False) has no viewers to keep it
    from: it runs every job in a thread, without a second interpreter (~50 MB, and ~0.5 s to
    start) or the copies of the lineup sent to it (a 300 MB guide for 6,000 channels: the
    process tree's peak 214-235 -> 138-149 MB, 4.1 -> 2.8-3.3 s)."""

    async def guide(ctx: RefreshContext) -> None:
        cfg = settings.epg
        now = time.time()
        window = (now - PAST, now + cfg.days * 86400.0)
        sources = list(dict.fromkeys([*cfg.sources, *ctx.guide_urls]))
        early = ctx.early.get(StageName.GUIDE)
        got = cast(Fetched, await early) if early is not None else {}
        got.update(await fetch_sources(ctx, [s for s in sources if s not in got]))
        fetched: list[tuple[str, str]] = []
        for source in sources:  # in priority order, however they came
            path = got[source]
            if isinstance(path, EpgError):
                log.warning("guide_source_failed", error=path)
                continue
            fetched.append((str(path), _label(source)))
        job = GuideJob(
            settings=settings,
            manual={**cfg.map, **{k: o.guide_id for k, o in ctx.overrides.items() if o.guide_id}},
            sources=fetched,
            configured=bool(sources),
            window=window,
            devices=[],
        )
        result = None
        if ctx.serving and await asyncio.to_thread(wants_process, job, ctx.devices):
            job.devices = await asyncio.to_thread(_rows, ctx.devices)
            try:
                result = await run_in_process(job)  # no GIL shared with the loop's viewers
            except EpgError as err:  # the worker died (killed for memory?): do it here
                log.warning("guide_worker_failed", error=err)
        live = result is None
        if result is None:  # in a thread, on the real entries (copies cost 40 MB at 50k)
            job.devices, job.live = [], ctx.devices
            result = await asyncio.to_thread(run_guide_job, job)
        del job
        for reason in result.failed:
            log.warning("guide_source_failed", error=reason)
        for parsed in result.parsed:
            log.info("guide_source_parsed", **parsed)
            if parsed.get("malformed"):  # read, mended, but the grabber should hear of it
                log.warning(
                    "guide_programmes_malformed",
                    source=parsed["source"],
                    count=parsed["malformed"],
                    first=parsed["malformed_first"],
                )
        ctx.report(StageName.GUIDE, "guide").by_device.update(result.notes)
        if not live:
            await asyncio.to_thread(_apply, ctx, result)

    return NamedStage(StageName.GUIDE, guide, early=early_downloads)


Fetched = dict[str, Path | EpgError]  # a source's file on disk, or why it has none


DOWNLOADS = 4  # guide sources fetched at once


async def early_downloads(ctx: RefreshContext) -> Fetched:
    """The guides known before any list is read, downloaded while the lists are: the configured
    ones, and each Xtream account's xmltv.php (a panel makes it as it is asked: often the
    refresh's slowest download), cancelled once its panel failed (its guide is not read)."""
    settings = ctx.settings
    panels = [XtreamAccount(p.xtream).xmltv_url() for p in settings.providers if p.xtream]
    async with asyncio.TaskGroup() as tg:
        tasks = _downloads(tg, ctx, [*settings.epg.sources, *panels])
        await ctx.ingested.wait()
        for url in set(panels) - {*ctx.guide_urls, *settings.epg.sources}:
            tasks[url].cancel()
    return _downloaded(tasks)


async def fetch_sources(ctx: RefreshContext, sources: list[str]) -> Fetched:
    """Every source at once (at most DOWNLOADS at a time): a refresh with three guides waits
    for the slowest, not for the three in turn."""
    async with asyncio.TaskGroup() as tg:
        tasks = _downloads(tg, ctx, sources)
    return _downloaded(tasks)


def _downloads(
    tg: asyncio.TaskGroup, ctx: RefreshContext, sources: list[str]
) -> dict[str, asyncio.Task[Path | EpgError]]:
    """A task for each source (each once), DOWNLOADS of them running at a time."""
    gate = asyncio.Semaphore(DOWNLOADS)
    return {s: tg.create_task(_download(ctx, s, gate)) for s in dict.fromkeys(sources)}


def _downloaded(tasks: dict[str, asyncio.Task[Path | EpgError]]) -> Fetched:
    return {source: task.result() for source, task in tasks.items() if not task.cancelled()}


async def _download(ctx: RefreshContext, source: str, gate: asyncio.Semaphore) -> Path | EpgError:
    async with gate:
        try:
            return await fetch_guide(
                await ctx.fetcher.http() if is_url(source) else None,
                source,
                ctx.settings.paths.epg_cache,
                ctx.settings.epg.max_bytes,
                ctx.settings.fetch.timeout,
            )
        except EpgError as err:
            return err


def _rows(devices: list[Device]) -> list[tuple[str, bytes]]:
    return [(d.name, pack_rows([entry_row(e) for e in d.entries])) for d in devices]


def _apply(ctx: RefreshContext, result: GuideJobResult) -> None:
    """A worker process's answer onto the real entries (matched by number; `require` drops)."""
    for device in ctx.devices:
        packed = result.devices.get(device.name)
        rows = {r[0]: r for r in unpack_rows(packed)} if packed is not None else {}
        kept = []
        for e in device.entries:
            row = rows.get(e.number)
            if row is None:
                continue  # `epg.require` dropped it
            _, e.guide_id, e.guide_match, e.guide_score, e.has_guide = row
            kept.append(e)
        device.entries = kept


def _label(source: str) -> str:
    from plextuner.redact import redact_url

    return redact_url(source)
