"""Writing the device guides: each device's channels matched, their programmes gathered and
written, a guide rewritten only when its content changed (see fingerprint.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, overload

from plextuner import memtrim
from plextuner.buckets.models import Device, LineupEntry
from plextuner.config import EpgConfig
from plextuner.epg import fingerprint
from plextuner.epg.chunked import SpilledList, load_all
from plextuner.epg.guidedata import GuideData, facts_of
from plextuner.epg.kept import Kept, KeptList
from plextuner.epg.match import Matcher
from plextuner.epg.matchresult import TIER_VALUE, UNMATCHED, MatchResult
from plextuner.epg.model import Programme
from plextuner.epg.owners import assign
from plextuner.epg.programmes import programmes_for
from plextuner.epg.report import ReportSpool, device_report
from plextuner.epg.writehalf import SecondWriter, share, two_writers, work
from plextuner.epg.writejob import GuideFile
from plextuner.epg.writer import Placeholders, channels_xml, write_guide
from plextuner.fileio import Committer, encode_json, fsync_dir, write_atomic
from plextuner.logging import get_logger
from plextuner.stages import RefreshContext, StageName

log = get_logger(__name__)


@dataclass(slots=True)
class _GuidePass:
    """What writing the device guides keeps track of: their notes, fingerprints and reports."""

    ctx: RefreshContext
    data: GuideData
    window: tuple[float, float]
    fresh: bool
    known: dict[str, str]
    context: str  # the sources' stamps and the guide settings (in every fingerprint)
    reports: ReportSpool  # by device index, spooled to disk as they are made
    prints: dict[str, str] = field(default_factory=dict)

    @overload
    def prepare(
        self, i: int, device: Device, results: list[MatchResult], force: Literal[True]
    ) -> GuideFile: ...

    @overload
    def prepare(self, i: int, device: Device, results: list[MatchResult]) -> GuideFile | None: ...

    def prepare(
        self, i: int, device: Device, results: list[MatchResult], force: bool = False
    ) -> GuideFile | None:
        """The device's entries matched and its programmes gathered; what to write, or None
        when its guide on disk stays (the same again, or kept while its sources failed).
        `force`: gathered again for a guide the helper did not write (`results` matched again:
        `epg.require` may have left fewer entries)."""
        cfg, notes = self.ctx.settings.epg, self.ctx.report(StageName.GUIDE, "guide").by_device
        programmes, icons = _device_programmes(device, results, self.data, self.window, cfg)
        path = self.ctx.settings.paths.guide(device.name)
        if force:
            return GuideFile(str(path), device, programmes, icons)
        self.reports.add(i, encode_json(device_report(device, results)))
        if cfg.require:
            device.entries = [e for e in device.entries if e.has_guide]
        if not self.fresh and path.exists():
            notes[device.name] = "kept (sources failed)"
            if device.name in self.known:
                self.prints[device.name] = self.known[device.name]
            return None  # never publish an emptier guide over a good one
        covered = sum(1 for e in device.entries if e.has_guide)
        rest = len(device.entries) - covered
        filler = "placeholder" if cfg.placeholder else "no guide"
        notes[device.name] = f"{covered} matched, {rest} {filler}"
        channels = channels_xml(device, icons, cfg.channel_ids)
        made = fingerprint.guide_fingerprint(device, programmes, channels, self.context)
        self.prints[device.name] = made
        if self.known.get(device.name) == made and path.exists():
            return None  # the same file again: not rewritten
        self.known.pop(device.name, None)  # until written, what is on disk is not known
        return GuideFile(str(path), device, programmes, icons, channels)

    def rewrite(
        self, i: int, device: Device, gone: set[str], write: Callable[[GuideFile], None]
    ) -> int:
        """A guide the helper did not write, written here (1) from its programmes gathered
        again; or kept (0) when they went to the helper, and rewritten by the next refresh."""
        notes = self.ctx.report(StageName.GUIDE, "guide").by_device
        results = _device_results(device.entries, self.data)
        if any(r.guide_id in gone for r in results):
            self.prints.pop(device.name, None)  # what is on disk is not this refresh's
            path = self.ctx.settings.paths.guide(device.name)
            if path.exists():
                notes[device.name] = "kept (the guide writer failed)"
                return 0
            notes[device.name] = "written without its programmes (the guide writer failed)"
        write(self.prepare(i, device, results, force=True))
        return 1


def write_all(
    ctx: RefreshContext, data: GuideData, window: tuple[float, float], fresh: bool
) -> None:
    cfg = ctx.settings.epg
    if data.stamps:  # what parsing the guides freed, handed back before writing (~10 MB)
        memtrim.trim()
    paths = ctx.settings.paths
    context = "\n".join([cfg.model_dump_json(), *data.stamps])
    reports = ReportSpool(paths.root)
    guides = _GuidePass(ctx, data, window, fresh, fingerprint.load(paths.guides), context, reports)
    devices = ctx.devices
    results = [_device_results(d.entries, data) for d in devices]
    second = _helpers(data, results, cfg)

    def write(f: GuideFile, committer: Committer) -> None:
        write_guide(Path(f.path), f.device, f.programmes, f.icons, id_style=cfg.channel_ids,
                    committer=committer, spill=data.spill, channels=f.channels)  # fmt: skip

    try:
        # The files are flushed and renamed by a committer thread while the next is rendered.
        with Committer() as committer:
            written = _write_devices(guides, results, second, lambda f: write(f, committer))
        write_atomic(paths.guide_matches, reports.chunks())  # a device's report at a time
    finally:
        reports.close()
    if written:
        fsync_dir(paths.guides)  # the renames above made durable before the fingerprints say so

    # /epg.xml is assembled from the device guides when asked (state/aggregate.py); the file an
    # earlier version wrote would only take disk (hundreds of MB for a big lineup).
    with contextlib.suppress(OSError):
        paths.legacy_aggregate_guide.unlink(missing_ok=True)
    fingerprint.save(paths.guides, _known_good(data, guides.prints))
    # Freed here, in the worker thread: a big guide's programmes are a million objects, and
    # freeing them where the stage's frame ends (the event loop) stalls every viewer.
    data.programmes.clear()
    data.results.clear()
    data.matcher = Matcher()
    if data.spill is not None:
        data.spill.close()


def _write_devices(
    guides: _GuidePass,
    results: list[list[MatchResult]],
    second: set[int],
    write: Callable[[GuideFile], None],
) -> int:
    """Every device's guide written here (`write`) or by the helper: `second`, its share,
    gathered first, and more of the rest while it is idle; how many were written here."""
    data, cfg, devices = guides.data, guides.ctx.settings.epg, guides.ctx.devices
    order = sorted(range(len(devices)), key=lambda i: i not in second)
    writer = SecondWriter(data.spill)
    started, generated = time.monotonic(), time.time()
    written = 0
    gone: set[str] = set()  # guide channels whose programmes only the helper has now
    handed = False  # the helper has its share: it takes more of ours while it is idle
    more: set[int] = set()  # the devices it took so
    try:
        for n, i in enumerate(order):
            # The last device's programmes go before this one's are gathered (unless the
            # helper has them): the two together were the guide job's peak.
            f = guides.prepare(i, devices[i], results[i])
            if f is not None and i in second:  # to the helper's job at once
                writer.add(f, cfg.channel_ids, generated)
            elif f is not None and handed and writer.idle():  # (its programmes kept)
                writer.add(f, cfg.channel_ids, generated)
                more.add(i)
            elif f is not None:
                write(f)
                written += 1
            last = i in second and (n + 1 == len(order) or order[n + 1] not in second)
            if last and (handed := writer.start()):
                gone = _hand_over(data, results, second)
        if data.spill is not None and second:
            data.spill.release()  # while the helper writes: its pages, and the heap freed
            memtrim.trim()
        left = set(writer.finish(max(60.0, 4 * (time.monotonic() - started))))
        paths = guides.ctx.settings.paths
        for i in sorted(second | more):
            if str(paths.guide(devices[i].name)) in left:
                written += guides.rewrite(i, devices[i], gone, write)
    finally:
        writer.close()
    return written


def _helpers(data: GuideData, results: list[list[MatchResult]], cfg: EpgConfig) -> set[int]:
    """With a second CPU, the devices (by index) a helper writes, about half the writing
    (writehalf.py): gathered first and handed over, the rest written here meanwhile. The
    writing: kept programmes, and placeholders for the channels without any."""
    if not (data.parallel and two_writers(data.spill)):
        return set()
    return share([work(r, data.programmes, cfg.placeholder) for r in results])


def _known_good(data: GuideData, prints: dict[str, str]) -> dict[str, str]:
    """The guides' fingerprints, none when a guide file read in place was rewritten while the
    guides were written (they may hold its new bytes: the next refresh writes them again)."""
    if data.spill is not None and data.spill.sources_changed():
        log.error("guide_source_changed_while_written")
        return {}
    return prints


def _hand_over(data: GuideData, results: list[list[MatchResult]], second: set[int]) -> set[str]:
    """Forget the programmes only the helper's devices use: it has them (a provider's guide:
    half of its packed programmes, 9 MB, would sit in both processes while both write)."""
    mine = {r.guide_id for i, rs in enumerate(results) if i not in second for r in rs}
    theirs = {r.guide_id for i in second for r in results[i] if r.guide_id not in mine}
    for gid in theirs:
        if gid is not None:
            data.programmes.pop(gid, None)
    memtrim.trim()  # what forgetting them freed, handed back before the helper grows
    return {gid for gid in theirs if gid is not None}


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
    stored = data.programmes
    if not stored and results.count(UNMATCHED) == len(results):
        # Nothing kept and nothing matched (a guide-less lineup's every device): each entry
        # unmatched and without programmes, spelled out (~1 us an entry less, 50 ms of 50k)
        unmatched = TIER_VALUE[UNMATCHED.tier]
        for e in device.entries:
            e.guide_id, e.guide_match, e.guide_score, e.has_guide = None, unmatched, None, False
        if cfg.placeholder:
            start, end, block = window[0], window[1], cfg.placeholder_block
            programmes = {e.number: Placeholders(e.channel.name, start, end, block)
                          for e in device.entries}  # fmt: skip
        return programmes, icons
    loaded = (
        _loaded([stored.get(r.guide_id, ()) if r.guide_id else () for r in results], data)
        if stored
        else [()] * len(results)  # nothing kept (no guide): nothing to look up or load
    )
    guide_icons = data.matcher.icons  # (a property: bound once, not twice an entry)
    for e, result, per_source in zip(device.entries, results, loaded, strict=True):
        gid = result.guide_id
        items = programmes_for(e, per_source, window, cfg) if per_source else []
        e.guide_id, e.guide_match = gid, TIER_VALUE[result.tier]
        e.guide_score = result.confidence if gid else None
        e.has_guide = bool(items)
        if gid and gid in guide_icons:
            icons[e.number] = guide_icons[gid]
        if items:  # a channel with nothing to write has no key: a guide-less 50k lineup's
            programmes[e.number] = items  # 50k empty lists were built, then walked twice
        elif cfg.placeholder:
            programmes[e.number] = Placeholders(
                e.channel.name, window[0], window[1], cfg.placeholder_block
            )
    return programmes, icons


def _loaded(
    stored: list[tuple[list[Programme] | SpilledList, ...]], data: GuideData
) -> list[list[list[Programme] | KeptList]]:
    """Each entry's programmes, a list a source, in memory: the spilled ones' numbers read
    back for the whole device at once (`load_all`)."""
    spilled = [x for xs in stored for x in xs if isinstance(x, SpilledList)]
    kept: Iterator[KeptList] = iter(())
    if spilled:
        assert data.spill is not None  # (a SpilledList is only made with a spill)
        kept = iter(load_all(spilled, data.spill))
    return [[next(kept) if isinstance(x, SpilledList) else x for x in xs] for xs in stored]


def _device_results(entries: list[LineupEntry], data: GuideData) -> list[MatchResult]:
    """Each entry's match, no guide channel held by two different channels of the device."""
    if not data.results:  # nothing matched (no guide source): no lookup per entry
        return [UNMATCHED] * len(entries)
    results = [data.results.get(e.channel.key, UNMATCHED) for e in entries]
    matched = [i for i, r in enumerate(results) if r.guide_id is not None]
    # Only a guide channel matched twice is contended: most devices hold none (their facts
    # made for nothing were ~1 us a channel, on the guide job's critical path)
    if len({results[i].guide_id for i in matched}) < len(matched):
        contended = [(facts_of(entries[i]), results[i]) for i in matched]
        for i, result in zip(matched, assign(contended), strict=True):
            results[i] = result
    return results
