"""The probe scheduler: a global worker cap, per-host pacing (hosts.py), interleaving, retries.

Event-driven: it sleeps until the earliest moment something can start or until a probe finishes
or a connection is returned; it never polls. Results are read by the pure reducer in settle.py.
Probes are interleaved across hosts and buckets (no burst on a host, no bucket waiting). Each
takes a connection from its provider's budget (never the last one a viewer could need) and
yields it to a viewer at once (racing the lease's `preempted` event; never `uncancel()`ed).
A hung channel's long retry takes a spare slot, or waits for the end where slots are scarce."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping

from plextuner.config import PostvalidateConfig
from plextuner.ingest.models import Source, StreamKind
from plextuner.logging import get_logger
from plextuner.redact import host_of
from plextuner.stream.budget import BudgetRegistry, Lease
from plextuner.validate.hosts import HostLimiter, HostMode, Lessons
from plextuner.validate.jobs import Job, JobKey, PoolStats, interleave
from plextuner.validate.probe import Engine
from plextuner.validate.result import Origin, ProbeResult, Scope, Verdict, unprobed
from plextuner.validate.settle import (
    Charge,
    Decided,
    HostSignal,
    NextSource,
    Retry,
    give_up_source,
    host_signal,
    interim_kept,
    settle,
    silence,
)
from plextuner.validate.tripwire import BucketTripwire
from plextuner.validate.yielding import probe_or_yield

__all__ = ["Job", "JobKey", "PoolStats", "ProbePool", "interleave"]
PROGRESS_EVERY = 15.0
log = get_logger(__name__)


class ProbePool:
    def __init__(
        self,
        cfg: PostvalidateConfig,
        engine: Engine,
        budgets: BudgetRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        known: Mapping[str, float] | None = None,
    ) -> None:
        self.cfg = cfg
        self.engine = engine
        self.budgets = budgets
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.hosts: dict[str, HostLimiter] = {}
        self.known = known or {}  # ceilings hosts taught earlier runs (HostLimiter.remember)
        self.lessons = Lessons()  # the hosts' first ceilings, pooled (validate/hosts.py)
        self.queues: dict[str, deque[Job]] = {}
        self.results: dict[JobKey, ProbeResult] = {}
        self.ok_source: dict[JobKey, int] = {}  # index of the source that proved ok
        self.stats = PoolStats()
        self._tripwire = BucketTripwire(cfg.max_drop_ratio, self.stats.tripped_buckets)
        self._running = 0
        self._holding = 0  # of them, hung channels' long retries: not counted against `workers`
        self._wake = asyncio.Event()
        self._blocked_since: dict[str, float] = {}  # provider -> when probes last found no slot
        self.deferred: list[Job] = []  # retries of channels that hung: run at the end

    # --- queues --------------------------------------------------------------------------------
    def _host(self, name: str) -> HostLimiter:
        if name not in self.hosts:
            c, rng, lessons = self.cfg, self.rng, self.lessons
            self.hosts[name] = HostLimiter(
                name, c.per_host, c.min_interval, c.jitter, c.park_after, rng=rng, lessons=lessons
            )
            if name in self.known:
                self.hosts[name].remember(self.known[name])
            self.queues[name] = deque()
        return self.hosts[name]

    def _enqueue(self, job: Job) -> None:
        if job.bucket in self.stats.tripped_buckets:
            self.results.setdefault(job.key, unprobed("not probed: bucket held"))
            return
        host = host_of(job.source.url)
        self._host(host)
        self.queues[host].append(job)

    def _enqueue_retry(self, job: Job, delay: float) -> None:
        """Back into its host's queue where the host reaches it after about `delay` at its
        current pace: not at the back (a refused burst's retries made a tail after the run),
        not at the front (its wait would hold up the host's other work)."""
        if job.bucket in self.stats.tripped_buckets:
            self._enqueue(job)
            return
        host = host_of(job.source.url)
        limiter, queue = self._host(host), self.queues[host]
        queue.insert(min(len(queue), int(delay * limiter.effective_rate)), job)

    def _pending(self) -> bool:
        return any(self.queues.values())

    # --- the loop ------------------------------------------------------------------------------
    async def run(self, jobs: Iterable[Job]) -> dict[JobKey, ProbeResult]:
        total = 0
        for job in jobs:
            self._enqueue(job)
            total += 1
        deadline = self.clock() + self.cfg.max_run_time
        next_report = self.clock() + PROGRESS_EVERY
        unsubscribe = self._subscribe_budgets()
        try:
            async with asyncio.TaskGroup() as tg:
                while (
                    self._pending() or self._running or self.deferred
                ) and self.clock() <= deadline:
                    if not self._pending() and not self._running:
                        self._release_deferred()
                    self._dispatch(tg)
                    self._give_up_on_busy_providers()
                    if self.clock() >= next_report:
                        next_report = self.clock() + PROGRESS_EVERY
                        self._progress(total)
                    if self._pending() or self._running:
                        await self._sleep_until(min(self._next_event(), deadline, next_report))
        finally:
            unsubscribe()
        self._finish_unprobed("probe run time exceeded")
        return self.results

    def _release_deferred(self) -> None:
        now = self.clock()
        for job in self.deferred:
            job.not_before = min(job.not_before, now)
            self._enqueue(job)
        self.deferred.clear()

    def _progress(self, total: int) -> None:
        log.info(
            "probe_progress",
            done=len(self.results),
            total=total,
            running=self._running,
            parked_hosts=len(self.stats.parked_hosts),
        )

    def _subscribe_budgets(self) -> Callable[[], None]:
        """Wake when any provider connection is returned (a probe may start now)."""
        if self.budgets is None:
            return lambda: None
        return self.budgets.subscribe(self._wake.set)

    def _next_event(self) -> float:
        """The earliest clock time at which something may become startable without an event."""
        at = float("inf")
        for host, queue in self.queues.items():
            if queue and self.hosts[host].mode is not HostMode.PARKED:
                at = min(at, max(self.hosts[host].next_start, queue[0].not_before))
        now = self.clock()
        for job in self.deferred:  # may start early; when due but held back, an event wakes us
            due = max(self._host(host_of(job.source.url)).next_start, job.not_before)
            if due > now:
                at = min(at, due)
        patience = self._patience()
        for provider, since in self._blocked_since.items():
            at = min(at, since + patience)
            if self.budgets is not None:
                at = min(at, self.budgets.get(provider).probes_blocked_until(self.clock))
        return at

    async def _sleep_until(self, when: float) -> None:
        """Sleep until `when` (scheduler clock) or the next wake event, whichever is first."""
        delay = when - self.clock()
        self.stats.wakeups += 1
        if self._wake.is_set():
            self._wake.clear()
            return
        handle = asyncio.get_running_loop().call_later(max(delay, 0.0), self._wake.set)
        try:
            await self._wake.wait()
        finally:
            handle.cancel()
            self._wake.clear()

    # --- starting probes -----------------------------------------------------------------------
    def _dispatch(self, tg: asyncio.TaskGroup) -> None:
        now = self.clock()
        if self.deferred:  # due retries first: the host's pace would never leave them a turn
            self._start_deferred_early(tg, now)
        hosts = list(self.queues)
        self.rng.shuffle(hosts)  # no host is always first in line
        for host in hosts:
            if self._busy >= self.cfg.workers:
                break
            queue, limiter = self.queues[host], self.hosts[host]
            if limiter.mode is HostMode.PARKED:
                self._drain_parked(host)
                continue
            if not queue or not limiter.ready(now) or queue[0].not_before > now:
                continue
            job = queue[0]
            granted, lease, source = self._lease(job)
            if not granted:  # no connection free for probes on this provider right now
                self._blocked_since.setdefault(job.source.provider, now)
                continue
            self._blocked_since.pop(job.source.provider, None)
            queue.popleft()
            self._start(tg, job, limiter, lease, source, now)

    def _start_deferred_early(self, tg: asyncio.TaskGroup, now: float) -> None:
        """A hung channel's retry (the long timeout) starts before the end of the run when it
        takes a spare slot: its host keeps another free (see below), and so does its account.
        On a 1-2 connection account it waits for the end: it must not hold the only slot."""
        for job in list(self.deferred):
            if self._busy >= self.cfg.workers:
                return
            host = host_of(job.source.url)
            limiter = self._host(host)
            if job.not_before > now or not limiter.ready(now):
                continue
            # A slot is kept for the host's other work while that work outlasts the retry.
            # With less left, the retry takes the last slot now: the work waits beside it, but
            # the retry no longer waits for the one held, then its own timeout after the work
            # (a host's last hung channel held a 3/s CDN's run up to 15 s: 1.24x -> 1.21-1.23x).
            left = len(self.queues[host]) / limiter.effective_rate
            if limiter.running + (2 if left >= self.cfg.timeout else 1) > limiter.concurrency:
                continue
            if self.budgets is not None and self.budgets.get(job.source.provider).probe_slots() < 2:
                continue  # it would take the account's last probe slot
            granted, lease, source = self._lease(job)
            if not granted:
                continue
            self.deferred.remove(job)
            self._start(tg, job, limiter, lease, source, now)

    @property
    def _busy(self) -> int:
        """Probes in flight that count against `workers`; not a hung channel's long retry,
        waiting up to the full timeout on a connection that sent nothing (a few a host held
        most of the 12: on twenty hosts, one with 11 channels left and none running waited)."""
        return self._running - self._holding

    def _start(self, tg: asyncio.TaskGroup, job: Job, limiter: HostLimiter,
               lease: Lease | None, source: Source, now: float) -> None:  # fmt: skip
        holds = job.channel_tries > 0  # a channel's own retry: it hung
        limiter.started(now, holds=holds)
        job.served_before = limiter.served
        self._running += 1
        self._holding += holds
        tg.create_task(self._probe(job, limiter, lease, source, holds))

    def _lease(self, job: Job) -> tuple[bool, Lease | None, Source]:
        """(may start, the lease when budgets apply, the source as that account reaches it):
        probes use any pooled account with a slot probes may take."""
        if self.budgets is None:
            return True, None, job.source
        accounts = self.budgets.accounts_of(job.source.provider)
        for account in accounts:
            lease = self.budgets.get(account.key).try_acquire_probe()
            if lease is not None:
                lease.hls = job.source.kind is StreamKind.HLS
                url = account.stream_url(job.source.url, accounts[0])
                return True, lease, job.source.at(url)
        return False, None, job.source

    async def _probe(
        self, job: Job, limiter: HostLimiter, lease: Lease | None, source: Source, holds: bool
    ) -> None:
        try:
            self.stats.probes += 1
            # A short timeout first (a hung channel must not hold a slot long), the full on retry
            first = min(self.cfg.first_timeout, self.cfg.timeout)
            timeout = self.cfg.timeout if job.attempts else first
            result: ProbeResult | None = None
            try:
                result = await probe_or_yield(self.engine, source, lease, timeout)
                self.stats.preempted += result.origin is Origin.PREEMPTED
            finally:
                if lease is not None:
                    lease.refused = result is not None and result.scope is Scope.ACCOUNT
                    lease.release()
                limiter.hold_ended(holds)
            self._apply(job, limiter, result)
        finally:
            self._running -= 1
            self._holding -= holds
            self._wake.set()

    # --- results -------------------------------------------------------------------------------
    def _apply(self, job: Job, limiter: HostLimiter, result: ProbeResult) -> None:
        if result.scope is Scope.CHANNEL:
            result, strike = silence(job, limiter.served, result)
            job.channel_tries += 1
            job.channel_strikes += strike
        if result.scope is Scope.ACCOUNT and self.budgets is not None:
            self.budgets.get(job.source.provider).note_refusal()
        signal = host_signal(result)
        if signal is HostSignal.OK:
            limiter.finished_ok()
        elif signal is HostSignal.NEUTRAL:
            limiter.finished_neutral(self.clock(), result.dropped)
        else:
            limiter.finished_transient(self.clock(), result.reason, result.refused)
        earlier, banned = self.results.get(job.key), limiter.banning
        outcome = settle(job, result, earlier, self.cfg.retries, self.rng, banned)
        if isinstance(outcome, Retry) and result.definite:
            self._trip(job.bucket, self._tripwire.struck(job.bucket, job.key))
        self._follow(job, outcome)

    def _follow(self, job: Job, outcome: Retry | NextSource | Decided) -> None:
        match outcome:
            case Retry(delay, charge, deferred):
                if charge is Charge.ATTEMPT:
                    job.attempts += 1
                elif charge is Charge.ACCOUNT_WAIT:
                    job.account_waits += 1
                self.stats.retries += 1
                job.not_before = self.clock() + delay
                if deferred:
                    self.deferred.append(job)  # retried on a spare slot, or at the end
                else:
                    self._enqueue_retry(job, delay)
            case NextSource(interim):
                if interim_kept(interim, self.results.get(job.key)):
                    self.results[job.key] = interim
                job.next_source()
                self._enqueue(job)
            case Decided(result):
                self.results[job.key] = result
                if result.verdict is Verdict.OK:
                    self.ok_source[job.key] = job.source_index
                dead = result.verdict is Verdict.DEAD
                self._trip(job.bucket, self._tripwire.decided(job.bucket, dead, job.key))

    def _trip(self, bucket: str, tripped: bool) -> None:
        for queue in (*self.queues.values(), self.deferred) if tripped else ():
            for queued in [j for j in queue if j.bucket == bucket]:
                queue.remove(queued)  # not probed (again): the channel stays as it was

    def _patience(self) -> float:
        return min(60.0, max(5.0, 2 * self.cfg.timeout))

    def _give_up_on_busy_providers(self) -> None:
        """Viewers have kept every probe slot of a provider busy too long: its channels stay
        unverified this run rather than holding the refresh (and the next publish) back."""
        patience = self._patience()
        now = self.clock()
        for provider, since in list(self._blocked_since.items()):
            if now - since < patience:
                continue
            del self._blocked_since[provider]
            log.info("probes_yield_to_viewers", provider=provider, waited_s=round(now - since, 1))
            for queue in self.queues.values():
                for job in [j for j in queue if j.source.provider == provider]:
                    queue.remove(job)
                    self.results.setdefault(job.key, unprobed("no connection free: viewers first"))

    def _drain_parked(self, host: str) -> None:
        if host not in self.stats.parked_hosts:
            self.stats.parked_hosts.append(host)
        queue = self.queues[host]
        while queue:
            job = queue.popleft()
            gave_up = unprobed(f"host {host} parked")
            self._follow(job, give_up_source(job, gave_up, self.results.get(job.key)))

    def _finish_unprobed(self, reason: str) -> None:
        for job in self.deferred:
            self.results.setdefault(job.key, unprobed(reason))
        self.deferred.clear()
        for queue in self.queues.values():
            while queue:
                job = queue.popleft()
                self.results.setdefault(job.key, unprobed(reason))
