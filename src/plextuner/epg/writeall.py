"""Writing the device guides: each device's channels matched, their programmes gathered and
written, a guide rewritten only when its content changed (see fingerprint.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

from plextuner import memtrim
from plextuner.buckets.models import Device, LineupEntry
from plextuner.config import EpgConfig
from plextuner.epg import fingerprint
from plextuner.epg.match import TIER_VALUE, UNMATCHED, Matcher, MatchResult, assign
from plextuner.epg.programmes import programmes_for
from plextuner.epg.report import device_report
from plextuner.epg.spill import Kept
from plextuner.epg.stage import GuideData, facts_of
from plextuner.epg.writer import Placeholders, write_guide
from plextuner.epg.xmltv import Programme
from plextuner.fileio import Committer, encode_json, fsync_dir, write_atomic
from plextuner.stages import RefreshContext, StageName


def write_all(
    ctx: RefreshContext, data: GuideData, window: tuple[float, float], fresh: bool
) -> None:
    cfg = ctx.settings.epg
    if data.stamps:  # what parsing the guides freed, handed back before writing (~10 MB)
        memtrim.trim()
    notes = ctx.report(StageName.GUIDE, "guide").by_device
    reports: list[bytes] = []
    paths = ctx.settings.paths
    known = fingerprint.load(paths.guides)
    prints: dict[str, str] = {}
    context = "\n".join([cfg.model_dump_json(), *data.stamps])
    written = 0
    # The files are flushed and renamed by a committer thread while the next one is rendered.
    with Committer() as committer:
        for device in ctx.devices:
            # The last device's programmes go before this one's are gathered: the two together
            # were the guide job's peak (a device's share of a million kept programmes).
            programmes: dict[str, Sequence[Programme | Kept] | Placeholders] = {}
            results = _device_results(device.entries, data)
            programmes, icons = _device_programmes(device, results, data, window, cfg)
            reports.append(encode_json(device_report(device, results)))  # bytes: 1/4 the memory
            if cfg.require:
                device.entries = [e for e in device.entries if e.has_guide]
            covered = sum(1 for e in device.entries if e.has_guide)
            path = paths.guide(device.name)
            if not fresh and path.exists():
                notes[device.name] = "kept (sources failed)"
                if device.name in known:
                    prints[device.name] = known[device.name]
                continue  # never publish an emptier guide over a good one
            rest = len(device.entries) - covered
            filler = "placeholder" if cfg.placeholder else "no guide"
            notes[device.name] = f"{covered} matched, {rest} {filler}"
            prints[device.name] = fingerprint.guide_fingerprint(device, programmes, icons, context)
            if known.get(device.name) == prints[device.name] and path.exists():
                continue  # the same file again: not rewritten
            known.pop(device.name, None)  # until written, what is on disk is not known
            write_guide(
                path,
                device,
                programmes,
                icons,
                id_style=cfg.channel_ids,
                committer=committer,
                spill=data.spill,
            )
            written += 1
    if written:
        fsync_dir(paths.guides)  # the renames above made durable before the fingerprints say so

    # /epg.xml is assembled from the device guides when asked (state/aggregate.py); the file an
    # earlier version wrote would only take disk (hundreds of MB for a big lineup).
    with contextlib.suppress(OSError):
        paths.legacy_aggregate_guide.unlink(missing_ok=True)
    head = encode_json({"generated": time.time(), "devices": []})[:-2]  # `...,"devices":[`
    write_atomic(paths.guide_matches, [head, b",".join(reports), b"]}"])
    fingerprint.save(paths.guides, prints)
    # Freed here, in the worker thread: a big guide's programmes are a million objects, and
    # freeing them where the stage's frame ends (the event loop) stalls every viewer.
    data.programmes.clear()
    data.results.clear()
    data.matcher = Matcher()
    if data.spill is not None:
        data.spill.close()


def _device_programmes(
    device: Device,
    results: list[MatchResult],
    data: GuideData,
    window: tuple[float, float],
    cfg: EpgConfig,
) -> tuple[dict[str, Sequence[Programme | Kept] | Placeholders], dict[str, str]]:
    """Each entry's programmes (or placeholders) and guide icon; the entries get their match."""
    programmes: dict[str, Sequence[Programme | Kept] | Placeholders] = {}
    icons: dict[str, str] = {}
    for e, result in zip(device.entries, results, strict=True):
        gid = result.guide_id
        per_source = data.programmes.get(gid, []) if gid else []
        items = programmes_for(e, per_source, window, cfg) if per_source else []
        e.guide_id, e.guide_match = gid, TIER_VALUE[result.tier]
        e.guide_score = result.confidence if gid else None
        e.has_guide = bool(items)
        if gid and gid in data.matcher.icons:
            icons[e.number] = data.matcher.icons[gid]
        programmes[e.number] = (
            Placeholders(e.channel.name, window[0], window[1], cfg.placeholder_block)
            if not items and cfg.placeholder
            else items
        )
    return programmes, icons


def _device_results(entries: list[LineupEntry], data: GuideData) -> list[MatchResult]:
    """Each entry's match, no guide channel held by two different channels of the device."""
    results = [data.results.get(e.channel.key, UNMATCHED) for e in entries]
    matched = [i for i, r in enumerate(results) if r.guide_id is not None]
    if matched:  # only matched channels can contend for a guide channel
        contended = [(facts_of(entries[i]), results[i]) for i in matched]
        for i, result in zip(matched, assign(contended), strict=True):
            results[i] = result
    return results
