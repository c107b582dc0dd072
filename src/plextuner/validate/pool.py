"""The probe scheduler: a global worker cap, per-host limiters, interleaving, bounded retries.

Probes are interleaved across hosts and buckets, so no host gets a burst because a playlist is
sorted by host and no bucket waits for another. Each probe takes a connection from its provider's
budget (never the last one a viewer could need) and yields it when a viewer needs it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from plextuner.buckets.models import LineupEntry
from plextuner.config import PostvalidateConfig
from plextuner.ingest.models import Source
from plextuner.logging import get_logger
from plextuner.redact import host_of
from plextuner.stream.budget import BudgetRegistry, Lease
from plextuner.validate.hosts import HostLimiter, HostMode
from plextuner.validate.probe import Engine
from plextuner.validate.result import ProbeResult, Verdict

IDLE_WAIT = 0.25
# Early guard trip: once this many channels of a bucket are definitively dead and they are more
# than twice the allowed drop share of its decided channels, the guard will hold the bucket
# anyway; probing the rest would only load the CDN.
EARLY_TRIP_MIN_DEAD = 20
PROGRESS_EVERY = 15.0
log = get_logger(__name__)


@dataclass(slots=True)
class Job:
    key: str
    bucket: str
    entry: LineupEntry
    source_index: int = 0
    attempts: int = 0
    not_before: float = 0.0

    @property
    def source(self) -> Source:
        return self.entry.channel.sources[self.source_index]


@dataclass(slots=True)
class PoolStats:
    probes: int = 0
    retries: int = 0
    preempted: int = 0
    parked_hosts: list[str] = field(default_factory=list)
    tripped_buckets: list[str] = field(default_factory=list)


def interleave(per_bucket: dict[str, list[Job]]) -> list[Job]:
    """Round-robin across buckets, so every bucket advances at the same pace."""
    lists = [deque(jobs) for jobs in per_bucket.values()]
    out: list[Job] = []
    while any(lists):
        out.extend(jobs.popleft() for jobs in lists if jobs)
    return out


class ProbePool:
    def __init__(
        self,
        cfg: PostvalidateConfig,
        engine: Engine,
        budgets: BudgetRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.cfg = cfg
        self.engine = engine
        self.budgets = budgets
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.hosts: dict[str, HostLimiter] = {}
        self.queues: dict[str, deque[Job]] = {}
        self.results: dict[str, ProbeResult] = {}
        self.stats = PoolStats()
        self._running = 0
        self._wake = asyncio.Event()
        self._decided: dict[str, list[int]] = {}  # bucket -> [decided, dead]
        self.ok_source: dict[str, int] = {}  # job key -> index of the source that proved ok
        self._blocked_since: dict[str, float] = {}  # provider -> when probes last found no slot

    def _host(self, name: str) -> HostLimiter:
        if name not in self.hosts:
            self.hosts[name] = HostLimiter(
                name,
                self.cfg.per_host,
                self.cfg.min_interval,
                self.cfg.jitter,
                self.cfg.park_after,
                rng=self.rng,
            )
            self.queues[name] = deque()
        return self.hosts[name]

    def _enqueue(self, job: Job) -> None:
        if job.bucket in self.stats.tripped_buckets:
            self.results.setdefault(
                job.key, ProbeResult(Verdict.TRANSIENT, "not probed: bucket held")
            )
            return
        host = host_of(job.source.url)
        self._host(host)
        self.queues[host].append(job)

    async def run(self, jobs: Iterable[Job]) -> dict[str, ProbeResult]:
        total = 0
        for job in jobs:
            self._enqueue(job)
            total += 1
        deadline = self.clock() + self.cfg.max_run_time
        next_report = self.clock() + PROGRESS_EVERY
        async with asyncio.TaskGroup() as tg:
            while self._pending() or self._running:
                if self.clock() > deadline:
                    break
                started = self._dispatch(tg)
                if not started:
                    await self._idle()
                self._give_up_on_busy_providers()
                if self.clock() >= next_report:
                    next_report = self.clock() + PROGRESS_EVERY
                    log.info(
                        "probe_progress",
                        done=len(self.results),
                        total=total,
                        running=self._running,
                        parked_hosts=len(self.stats.parked_hosts),
                    )
        self._finish_unprobed("probe run time exceeded")
        return self.results

    def _pending(self) -> bool:
        return any(self.queues.values())

    def _dispatch(self, tg: asyncio.TaskGroup) -> bool:
        started = False
        now = self.clock()
        hosts = list(self.queues)
        self.rng.shuffle(hosts)  # no host is always first in line
        for host in hosts:
            if self._running >= self.cfg.workers:
                break
            queue, limiter = self.queues[host], self.hosts[host]
            if limiter.mode is HostMode.PARKED:
                self._drain_parked(host)
                continue
            if not queue or not limiter.ready(now) or queue[0].not_before > now:
                continue
            job = queue[0]
            granted, lease, task_box = self._lease(job)
            if not granted:  # no connection free for probes on this provider right now
                self._blocked_since.setdefault(job.source.provider, now)
                continue
            self._blocked_since.pop(job.source.provider, None)
            queue.popleft()
            limiter.started(now)
            self._running += 1
            task = tg.create_task(self._probe(job, limiter, lease))
            task_box.append(task)
            started = True
        return started

    def _lease(self, job: Job) -> tuple[bool, Lease | None, list[asyncio.Task[None]]]:
        """(may start, the lease if budgets apply, a box the probe task goes into)."""
        box: list[asyncio.Task[None]] = []
        if self.budgets is None:
            return True, None, box

        def preempt() -> None:
            if box:
                box[0].cancel()

        lease = self.budgets.get(job.source.provider).try_acquire_probe(on_preempt=preempt)
        return lease is not None, lease, box

    async def _idle(self) -> None:
        self._wake.clear()
        now = self.clock()
        waits = [IDLE_WAIT]
        for host, queue in self.queues.items():
            if queue and self.hosts[host].mode is not HostMode.PARKED:
                at = max(self.hosts[host].next_start, queue[0].not_before)
                waits.append(max(0.0, at - now))
        try:
            async with asyncio.timeout(max(0.01, min(waits))):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _probe(self, job: Job, limiter: HostLimiter, lease: Lease | None) -> None:
        try:
            self.stats.probes += 1
            try:
                result = await self.engine.probe(job.source, self.cfg.timeout)
            except asyncio.CancelledError:
                if lease is None or not lease.preempted.is_set():
                    raise
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
                self.stats.preempted += 1
                result = ProbeResult(Verdict.TRANSIENT, "yielded its connection to a viewer")
            finally:
                if lease is not None:
                    lease.release()
            self._settle(job, limiter, result)
        finally:
            self._running -= 1
            self._wake.set()

    def _settle(self, job: Job, limiter: HostLimiter, result: ProbeResult) -> None:
        now = self.clock()
        if result.verdict is Verdict.OK:
            limiter.finished_ok()
            self.results[job.key] = result
            self.ok_source[job.key] = job.source_index
            self._decide(job, result)
        elif result.verdict is Verdict.DEAD:
            limiter.finished_neutral()
            self._next_source_or(job, result)
        else:
            if result.reason != "yielded its connection to a viewer":
                limiter.finished_transient(now, result.reason)
            else:
                limiter.finished_neutral()
            if job.attempts < self.cfg.retries:
                job.attempts += 1
                self.stats.retries += 1
                backoff = min(60.0, 1.0 * 2**job.attempts) * (0.5 + self.rng.random())
                job.not_before = now + backoff
                self._enqueue(job)
            else:
                self._next_source_or(job, result)

    def _next_source_or(self, job: Job, result: ProbeResult) -> None:
        """A backup source gets its own chance; the channel's verdict is the last one's."""
        if job.source_index + 1 < len(job.entry.channel.sources):
            previous = self.results.get(job.key)
            if previous is None or previous.verdict is not Verdict.TRANSIENT:
                self.results[job.key] = result
            job.source_index += 1
            job.attempts = 0
            job.not_before = 0.0
            self._enqueue(job)
            return
        earlier = self.results.get(job.key)
        # Any transient answer along the way means we do not know: never dead.
        if earlier is not None and earlier.verdict is Verdict.TRANSIENT:
            result = earlier
        self.results[job.key] = result
        self._decide(job, result)

    def _decide(self, job: Job, result: ProbeResult) -> None:
        counts = self._decided.setdefault(job.bucket, [0, 0])
        counts[0] += 1
        counts[1] += result.verdict is Verdict.DEAD
        decided, dead = counts
        if (
            job.bucket not in self.stats.tripped_buckets
            and dead >= EARLY_TRIP_MIN_DEAD
            and dead / decided > min(0.95, 2 * self.cfg.max_drop_ratio)
        ):
            self.stats.tripped_buckets.append(job.bucket)
            log.warning("probe_bucket_tripped", bucket=job.bucket, dead=dead, decided=decided)
            for queue in self.queues.values():
                for queued in [j for j in queue if j.bucket == job.bucket]:
                    queue.remove(queued)  # not probed: the channel stays `unchecked`

    def _give_up_on_busy_providers(self) -> None:
        """Viewers have kept every probe slot of a provider busy too long: its channels stay
        unverified this run rather than holding the refresh (and the next publish) back."""
        patience = min(60.0, max(5.0, 2 * self.cfg.timeout))
        now = self.clock()
        for provider, since in list(self._blocked_since.items()):
            if now - since < patience:
                continue
            del self._blocked_since[provider]
            log.info("probes_yield_to_viewers", provider=provider, waited_s=round(now - since, 1))
            for queue in self.queues.values():
                for job in [j for j in queue if j.source.provider == provider]:
                    queue.remove(job)
                    self.results.setdefault(
                        job.key, ProbeResult(Verdict.TRANSIENT, "no connection free: viewers first")
                    )

    def _drain_parked(self, host: str) -> None:
        if host not in self.stats.parked_hosts:
            self.stats.parked_hosts.append(host)
        queue = self.queues[host]
        while queue:
            job = queue.popleft()
            self._next_source_or(job, ProbeResult(Verdict.TRANSIENT, f"host {host} parked"))

    def _finish_unprobed(self, reason: str) -> None:
        for queue in self.queues.values():
            while queue:
                job = queue.popleft()
                self.results.setdefault(job.key, ProbeResult(Verdict.TRANSIENT, reason))
