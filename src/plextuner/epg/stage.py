"""The guide refresh stage: fetch every source, match, prune, write one guide.xml per device."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from plextuner.buckets.models import LineupEntry
from plextuner.config import Settings
from plextuner.epg.fetch import fetch_guide
from plextuner.epg.match import Matcher
from plextuner.epg.writer import placeholders, write_aggregate, write_guide
from plextuner.epg.xmltv import GuideChannel, ParseOutcome, Programme, iter_guide
from plextuner.errors import EpgError
from plextuner.logging import get_logger
from plextuner.stages import NamedStage, RefreshContext, Stage, StageName

log = get_logger(__name__)
PAST = 2 * 3600.0
SHIFT_SLACK = 26 * 3600.0  # tvg-shift may move programmes by up to a day


@dataclass(slots=True)
class GuideData:
    matcher: Matcher = field(default_factory=Matcher)
    programmes: dict[str, list[Programme]] = field(default_factory=dict)
    filled: set[str] = field(default_factory=set)  # guide ids a previous source already covered


def parse_source(
    path: Path, label: str, data: GuideData, entries: list[LineupEntry], window: tuple[float, float]
) -> ParseOutcome:
    """Read one guide into `data`, keeping only programmes of matched channels near the window."""
    outcome = ParseOutcome(source=label)
    new_ids: set[str] = set()

    def wanted() -> set[str]:
        return {gid for e in entries if (gid := data.matcher.match(e))} - data.filled

    with path.open("rb") as fh:
        slack = (window[0] - SHIFT_SLACK, window[1] + SHIFT_SLACK)
        for item in iter_guide(fh, label, outcome, wanted, slack):
            if isinstance(item, GuideChannel):
                data.matcher.add(item)
            else:
                data.programmes.setdefault(item.channel, []).append(item)
                new_ids.add(item.channel)
    data.filled |= new_ids
    return outcome


def programmes_for(
    entry: LineupEntry, gid: str | None, data: GuideData, window: tuple[float, float]
) -> list[Programme]:
    if gid is None:
        return []
    shift = (entry.channel.tvg_shift or 0.0) * 3600.0
    out: dict[float, Programme] = {}
    for p in data.programmes.get(gid, ()):
        start, stop = p.start + shift, (p.stop + shift) if p.stop else None
        if start < window[1] and (stop or start + 3600) > window[0] and start not in out:
            out[start] = dataclasses.replace(p, start=start, stop=stop)
    return [out[k] for k in sorted(out)]


def make_epg_stage(settings: Settings) -> Stage:
    async def guide(ctx: RefreshContext) -> None:
        cfg = settings.epg
        now = time.time()
        window = (now - PAST, now + cfg.days * 86400.0)
        sources = list(dict.fromkeys([*cfg.sources, *ctx.guide_urls]))
        entries = [e for d in ctx.devices for e in d.entries]
        data = GuideData()
        parsed_any = False
        cache = settings.paths.epg_cache
        for source in sources:
            try:
                path = await fetch_guide(
                    ctx.fetcher.client, source, cache, cfg.max_bytes, settings.fetch.timeout
                )
            except EpgError as err:
                log.warning("guide_source_failed", error=err)
                continue
            try:
                outcome = await asyncio.to_thread(
                    parse_source, path, _label(source), data, entries, window
                )
            except EpgError as err:
                log.warning("guide_source_failed", error=err)
                continue
            parsed_any = True
            log.info(
                "guide_source_parsed",
                source=_label(source),
                channels=outcome.channels,
                programmes=outcome.programmes,
                skipped=outcome.skipped,
                truncated=outcome.truncated,
            )
        await asyncio.to_thread(_write_all, ctx, data, window, parsed_any or not sources)

    return NamedStage(StageName.GUIDE, guide)


def _label(source: str) -> str:
    from plextuner.redact import redact_url

    return redact_url(source)


def _write_all(
    ctx: RefreshContext, data: GuideData, window: tuple[float, float], fresh: bool
) -> None:
    cfg = ctx.settings.epg
    notes = ctx.report(StageName.GUIDE, "guide").by_device
    for device in ctx.devices:
        programmes: dict[str, list[Programme]] = {}
        icons: dict[str, str] = {}
        for e in device.entries:
            gid = data.matcher.match(e)
            items = programmes_for(e, gid, data, window)
            e.has_guide = bool(items)
            if gid and gid in data.matcher.icons:
                icons[e.number] = data.matcher.icons[gid]
            if not items and cfg.placeholder:
                items = placeholders(e.channel.name, window[0], window[1], cfg.placeholder_block)
            programmes[e.number] = items
        if cfg.require:
            device.entries = [e for e in device.entries if e.has_guide]
        covered = sum(1 for e in device.entries if e.has_guide)
        path = ctx.settings.paths.guide(device.name)
        if not fresh and path.exists():
            notes[device.name] = "kept (sources failed)"
            continue  # never publish an emptier guide over a good one
        write_guide(path, device, programmes, icons, id_style=cfg.channel_ids)
        notes[device.name] = f"{covered}/{len(device.entries)}"

    paths = ctx.settings.paths
    write_aggregate(paths.aggregate_guide, [paths.guide(d.name) for d in ctx.devices])
