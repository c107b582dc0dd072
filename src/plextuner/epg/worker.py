"""The guide work of a refresh (parse every source, match, write the device guides) in a child
process when it is big: a 300 MB guide is ~15 s of CPU, and in a thread it shares the GIL with
the event loop that streams to viewers. Small jobs run in a thread (a process costs ~0.5 s).

The job and its result are plain data (no open files, no event loop), so either runs the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import signal
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec

from plextuner.buckets.models import Device, LineupEntry
from plextuner.config import Settings
from plextuner.errors import EpgError
from plextuner.ingest.models import Channel
from plextuner.stages import RefreshContext, StageName

PROCESS_ABOVE_BYTES = 32 * 1024 * 1024  # guide files bigger than this together: a process
PROCESS_ABOVE_CHANNELS = 20_000


@dataclass(slots=True)
class GuideJob:
    settings: Settings
    manual: dict[str, str]
    sources: list[tuple[str, str]]  # (local file, label), in priority order
    configured: bool  # any source was configured or announced (else placeholders are fresh)
    window: tuple[float, float]
    devices: list[tuple[str, bytes]]  # (device name, its entry rows packed: `pack_rows`)
    # In a thread: the refresh's own devices, amended in place (not sent to a process)
    live: list[Device] | None = None


@dataclass(slots=True)
class GuideJobResult:
    # per device, packed (`pack_rows`): rows (number, guide_id, guide_match, guide_score,
    # has_guide) of the kept entries
    devices: dict[str, bytes]
    notes: dict[str, str] = field(default_factory=dict)
    parsed: list[dict[str, Any]] = field(default_factory=list)  # per source, for the log
    failed: list[str] = field(default_factory=list)  # per failed source: the reason


_PACK = msgspec.msgpack.Encoder()


def pack_rows(rows: list[tuple[Any, ...]]) -> bytes:
    """One device's rows as bytes, for the pipe to or from the worker. The process boundary
    pickles what crosses it in one C call that holds the GIL throughout: the rows of a
    50k-channel lineup as tuples were 75-80 ms of it (the daemon's loop, and its viewers,
    stalled that long); packed a device (<= 479 rows) at a time they are ~50 us each."""
    return _PACK.encode(rows)


def unpack_rows(packed: bytes) -> list[list[Any]]:
    """`pack_rows`' rows, as lists (a device at a time, in the thread that reads them)."""
    return msgspec.msgpack.decode(packed, type=list[list[Any]])


def entry_row(e: LineupEntry) -> tuple[Any, ...]:
    ch = e.channel
    return (e.number, ch.key, ch.name, ch.tvg_id, ch.tvg_name, ch.group, tuple(ch.groups),
            ch.chno, ch.tvg_shift, ch.logo)  # fmt: skip


def _entry(row: tuple[Any, ...] | list[Any]) -> LineupEntry:
    # Positional, in `entry_row`'s order: 34k of these per 50k-stream refresh (a dict per row
    # and keyword calls cost 0.2 s of it). A test holds the round trip.
    number, key, name, tvg_id, tvg_name, group, groups, chno, tvg_shift, logo = row
    channel = Channel(key, name, tvg_id, group, "", logo, tvg_name, chno, tvg_shift)
    channel.groups = list(groups)
    return LineupEntry(number, channel)


def run_guide_job(job: GuideJob) -> GuideJobResult:
    """Everything the guide stage computes, from plain data to plain data."""
    from plextuner.epg import matchcache
    from plextuner.epg.guidedata import GuideData, match_pending
    from plextuner.epg.match import Matcher
    from plextuner.epg.spill import Spill
    from plextuner.epg.stage import make_matcher, parse_source
    from plextuner.epg.writeall import write_all

    cfg = job.settings.epg
    devices = (
        job.live
        if job.live is not None
        else [
            Device(name, name, name, "", 0, 1, entries=[_entry(r) for r in unpack_rows(rows)])
            for name, rows in job.devices
        ]
    )
    entries = [e for d in devices for e in d.entries]
    result = GuideJobResult(devices={})
    try:
        data = GuideData(make_matcher(job.settings, job.manual))
    except EpgError as err:
        result.failed.append(f"aliases: {err}")
        data = GuideData(Matcher(job.manual, (), cfg.match_threshold))
    data.fold, data.parallel = cfg.fold_subtitle, cfg.parallel
    cache = job.settings.paths.epg_cache
    if job.sources or job.manual:  # else nothing is matched (a guide-less lineup's refresh)
        data.known = matchcache.load(cache)  # the last refresh's answers: not matched again
    if job.sources:  # kept programmes on disk, not in memory (see spill.py)
        try:
            data.spill = Spill(job.settings.paths.epg_cache)
        except EpgError as err:  # a read-only data dir: held in memory, as before
            result.failed.append(str(err))
    parsed_any = False
    for n, (path, label) in enumerate(job.sources, 1):
        try:
            outcome = parse_source(
                Path(path), label, data, entries, job.window, last=n == len(job.sources)
            )
        except EpgError as err:
            result.failed.append(str(err))
            continue
        parsed_any = True
        result.parsed.append(
            {"source": label, "channels": outcome.channels, "programmes": outcome.programmes,
             "skipped": outcome.skipped, "truncated": outcome.truncated,
             "malformed": outcome.malformed, "malformed_first": outcome.malformed_first}
        )  # fmt: skip
    match_pending(data, entries)  # sources with no programmes
    ctx = RefreshContext(settings=job.settings, fetcher=None, previous=None, devices=devices)  # type: ignore[arg-type]
    write_all(ctx, data, job.window, parsed_any or not job.configured)
    if data.answered:  # for the next refresh (a refresh whose guides all failed keeps the last's)
        matchcache.save(cache, data.answered)
    result.notes = dict(ctx.report(StageName.GUIDE, "guide").by_device)
    for d in ctx.devices if job.live is None else ():  # live entries were amended in place
        result.devices[d.name] = pack_rows(
            [(e.number, e.guide_id, e.guide_match, e.guide_score, e.has_guide) for e in d.entries]
        )
    return result


def stop_on_sigterm() -> None:
    """SIGTERM (a cancelled refresh: `run_in_process` terminates the worker) ends the process
    through its `finally` blocks: a big guide's helper (halves.py) is killed and reaped there,
    not orphaned to PID 1 (the daemon, in a container with no init), which never reaps it."""

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)


def _child(conn: Connection, job: GuideJob) -> None:
    # A one-shot process: no automatic collections over the guide's million objects (each full
    # pass walks them all; a third of the matching time). Reference counting frees them.
    gc.disable()
    stop_on_sigterm()
    try:
        conn.send(("ok", run_guide_job(job)))
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which decides
        conn.send(("error", f"{type(err).__name__}: {err}"[:500]))
    finally:
        conn.close()


def wants_process(job: GuideJob, devices: list[Device]) -> bool:
    if not job.sources:  # no guide to parse or match against: placeholders and empty guides
        return False  # are cheap, and a process costs ~0.5 s to start and import
    size = 0
    for path, _ in job.sources:
        with contextlib.suppress(OSError):
            size += Path(path).stat().st_size
    channels = sum(len(d.entries) for d in devices)
    return size > PROCESS_ABOVE_BYTES or channels > PROCESS_ABOVE_CHANNELS


async def run_in_process(job: GuideJob) -> GuideJobResult:
    """`run_guide_job` in a spawned child; the child is killed if the refresh is cancelled."""
    mp = multiprocessing.get_context("spawn")  # no fork of a process that runs threads
    receive, send = mp.Pipe(duplex=False)
    proc = mp.Process(target=_child, args=(send, job), name="plextuner-guide", daemon=True)
    try:
        try:
            await asyncio.to_thread(proc.start)  # pickling the job: off the loop
        except OSError as err:  # no process to be had (EAGAIN, ENOMEM): the caller runs it here
            raise EpgError(f"cannot start the guide worker: {err}") from None
        send.close()
        kind, payload = await asyncio.to_thread(_receive, receive)
    finally:
        if proc.is_alive():
            proc.terminate()
        if proc.pid is not None:  # started (a failed start has nothing to wait for)
            await asyncio.to_thread(proc.join, 10)
        receive.close()
    if kind != "ok":
        raise EpgError(f"the guide worker failed: {payload}")
    assert isinstance(payload, GuideJobResult)
    return payload


def _receive(conn: Connection) -> tuple[str, Any]:
    try:
        message = conn.recv()
    except EOFError:
        return "error", "the guide worker exited without an answer"
    kind, payload = message
    return str(kind), payload
