"""The probe scheduler's parts: the pure outcome reducer, the tripwire, and event-driven waits."""

from __future__ import annotations

import asyncio
import random

import pytest

from plextuner.buckets.models import LineupEntry
from plextuner.config import PostvalidateConfig
from plextuner.ingest.models import Channel, Source, StreamKind
from plextuner.stream.budget import BudgetRegistry
from plextuner.validate.jobs import Job, JobKey
from plextuner.validate.pool import ProbePool
from plextuner.validate.result import Origin, ProbeResult, Scope, Verdict
from plextuner.validate.settle import (
    MAX_ACCOUNT_WAITS,
    Decided,
    HostSignal,
    NextSource,
    Retry,
    host_signal,
    interim_kept,
    settle,
    silence,
)
from plextuner.validate.tripwire import EARLY_TRIP_MIN_DEAD, BucketTripwire

OK = ProbeResult(Verdict.OK, "ok")
DEAD = ProbeResult(Verdict.DEAD, "HTTP 404")
FLAKY = ProbeResult(Verdict.TRANSIENT, "timeout")
YIELDED = ProbeResult(Verdict.TRANSIENT, "yielded", origin=Origin.PREEMPTED)


def job(sources: int = 1, attempts: int = 0, index: int = 0) -> Job:
    channel = Channel(
        key="k",
        name="n",
        tvg_id="",
        group="",
        provider="p",
        sources=[
            Source("p", f"http://h{i}.example/s.ts", kind=StreamKind.TS) for i in range(sources)
        ],
    )
    return Job(JobKey("d", "1000"), "d", LineupEntry("1000", channel), index, attempts)


class TestSettle:
    rng = random.Random(1)

    def test_ok_decides(self) -> None:
        """An ok result decides the channel at once."""
        assert settle(job(), OK, None, 2, self.rng) == Decided(OK)

    def test_transient_retries_then_gives_up(self) -> None:
        """A transient result retries the same source while retries are left, with a backoff."""
        outcome = settle(job(attempts=0), FLAKY, None, 2, self.rng)
        assert isinstance(outcome, Retry) and 1.0 <= outcome.delay <= 3.0
        assert settle(job(attempts=2), FLAKY, None, 2, self.rng) == Decided(FLAKY)

    def test_a_refusal_during_a_ban_uses_up_nothing(self) -> None:
        """A refused connection from a host banning us only looked for the ban's end: the job
        keeps its retries (none left here) and its account waits."""
        refused = ProbeResult(Verdict.TRANSIENT, "connection refused", refused=True)
        spent = job(attempts=2)
        outcome = settle(spent, refused, None, 2, self.rng, banned=True)
        assert isinstance(outcome, Retry) and outcome.ban_check and not outcome.counted
        # not banning (the first refusal, or a host that never answered): an ordinary try
        assert settle(spent, refused, None, 2, self.rng) == Decided(refused)
        # a 503 in the middle of a ban is the host's answer to this request: counted
        assert settle(spent, FLAKY, None, 2, self.rng, banned=True) == Decided(FLAKY)

    def test_dead_moves_to_backup_source(self) -> None:
        """A dead source hands over to the next one; the last one's verdict decides."""
        assert settle(job(sources=2), DEAD, None, 2, self.rng) == NextSource(DEAD)
        assert settle(job(sources=2, index=1), DEAD, None, 2, self.rng) == Decided(DEAD)

    def test_transient_along_the_way_is_never_dead(self) -> None:
        """A source that was only unreachable means we do not know: the channel is not dead."""
        assert settle(job(sources=2, index=1), DEAD, FLAKY, 0, self.rng) == Decided(FLAKY)
        assert not interim_kept(DEAD, FLAKY)
        assert interim_kept(DEAD, None)

    def test_host_signals(self) -> None:
        """Only a host's own trouble slows it; a dead channel or a yielded probe says nothing."""
        assert host_signal(OK) is HostSignal.OK
        assert host_signal(DEAD) is HostSignal.NEUTRAL
        assert host_signal(YIELDED) is HostSignal.NEUTRAL
        assert host_signal(FLAKY) is HostSignal.TROUBLE


STALLED = ProbeResult(
    Verdict.TRANSIENT, "200, then nothing", scope=Scope.CHANNEL, definite=True, dropped=True
)
NO_ANSWER = ProbeResult(Verdict.TRANSIENT, "connected, no answer", scope=Scope.CHANNEL)
FULL = ProbeResult(Verdict.TRANSIENT, "HTTP 403", scope=Scope.ACCOUNT)


class TestScopes:
    rng = random.Random(2)

    def test_only_host_trouble_slows_the_host(self) -> None:
        assert host_signal(STALLED) is HostSignal.NEUTRAL
        assert host_signal(NO_ANSWER) is HostSignal.NEUTRAL
        assert host_signal(FULL) is HostSignal.NEUTRAL
        assert host_signal(ProbeResult(Verdict.TRANSIENT, "refused")) is HostSignal.TROUBLE

    @staticmethod
    def answered(j: Job, tries: int, strikes: int) -> Job:
        """`j` after `tries` channel-scope answers (this one included), `strikes` definite."""
        j.channel_tries, j.channel_strikes = tries, strikes
        return j

    def test_a_channel_failure_retries_once_at_the_end(self) -> None:
        first = settle(self.answered(job(attempts=0), 1, 1), STALLED, None, 3, self.rng)
        assert isinstance(first, Retry) and first.deferred and first.counted

    def test_the_same_definite_failure_every_time_is_dead(self) -> None:
        j = self.answered(job(attempts=1), 2, 2)
        outcome = settle(j, STALLED, None, 3, self.rng)
        assert isinstance(outcome, Decided) and outcome.result.verdict is Verdict.DEAD
        assert "every attempt" in outcome.result.reason

    def test_a_mixed_history_stays_unverified(self) -> None:
        j = self.answered(job(attempts=1), 2, 1)  # the first answer was another failure
        assert settle(j, STALLED, None, 3, self.rng) == Decided(STALLED)
        k = self.answered(job(attempts=1), 2, 0)
        assert settle(k, NO_ANSWER, None, 3, self.rng) == Decided(NO_ANSWER)

    def test_a_host_refusal_does_not_use_up_the_channels_retry(self) -> None:
        """Refused once by the host (our burst), then `200` then nothing: the channel still
        gets its retry, and the same answer again makes it dead (not unverified)."""
        j = self.answered(job(attempts=1), 1, 1)
        assert isinstance(settle(j, STALLED, None, 3, self.rng), Retry)
        j = self.answered(job(attempts=2), 2, 2)
        outcome = settle(j, STALLED, None, 3, self.rng)
        assert isinstance(outcome, Decided) and outcome.result.verdict is Verdict.DEAD

    def test_an_account_refusal_never_counts_against_the_channel(self) -> None:
        j = job(attempts=0)
        outcome = settle(j, FULL, None, 0, self.rng)
        assert isinstance(outcome, Retry) and not outcome.counted
        j.account_waits = MAX_ACCOUNT_WAITS
        assert settle(j, FULL, None, 0, self.rng) == Decided(FULL)  # unverified, never dead


class TestTripwire:
    def test_trips_once_past_twice_the_drop_ratio(self) -> None:
        """A bucket with many dead channels trips once; a healthy one never does."""
        wire = BucketTripwire(0.1)
        trips = [wire.decided("a", dead=True) for _ in range(EARLY_TRIP_MIN_DEAD + 5)]
        assert trips.count(True) == 1 and wire.tripped == ["a"]
        assert not any(wire.decided("b", dead=i % 10 == 0) for i in range(200))

    def test_a_definite_failure_counts_dead_until_its_retry_decides(self) -> None:
        """Struck channels (a page, `200, then nothing`; their retry pending) count as dead for
        the trip, once each: the retry's verdict replaces the strike, it does not add to it."""
        wire = BucketTripwire(0.1)
        for n in range(EARLY_TRIP_MIN_DEAD - 1):
            assert not wire.struck("a", n)
        for n in range(EARLY_TRIP_MIN_DEAD - 1):  # every retry came back ok: no more strikes
            assert not wire.decided("a", dead=False, key=n)
        assert not wire.struck("a", "late")  # 1 struck of 20: far under the share
        fresh = BucketTripwire(0.1)
        trips = [fresh.struck("b", n) for n in range(EARLY_TRIP_MIN_DEAD)]
        assert trips == [False] * (EARLY_TRIP_MIN_DEAD - 1) + [True]
        assert fresh.tripped == ["b"]


class _SlowEngine:
    """An engine whose probes finish only when the test says so."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0

    async def probe(self, source: Source, timeout: float) -> ProbeResult:
        self.started += 1
        await self.release.wait()
        return OK


async def test_scheduler_sleeps_until_an_event() -> None:
    """While a probe runs, the scheduler does not poll: it wakes for the result, not a timer."""
    engine = _SlowEngine()
    cfg = PostvalidateConfig(workers=1, per_host=1, min_interval=0, jitter=0, retries=0)
    pool = ProbePool(cfg, engine)
    run = asyncio.create_task(pool.run([job()]))
    # The run must not finish within this window (the probe is held); a scheduler polling at
    # 0.25 s would wake about three times in it.
    done, _ = await asyncio.wait({run}, timeout=0.75)
    assert not done and engine.started == 1
    wakeups_while_running = pool.stats.wakeups
    engine.release.set()
    results = await run
    assert results[JobKey("d", "1000")] == OK
    assert wakeups_while_running <= 2


async def test_preempted_probe_yields_without_uncancel() -> None:
    """A viewer's claim ends the probe at once; the result is PREEMPTED, the host not blamed."""
    engine = _SlowEngine()
    budgets = BudgetRegistry(2)
    cfg = PostvalidateConfig(workers=1, per_host=1, min_interval=0, jitter=0, retries=0)
    pool = ProbePool(cfg, engine, budgets)
    run = asyncio.create_task(pool.run([job()]))
    budget = budgets.get("p")
    while budget.in_use == 0:
        await asyncio.sleep(0)
    viewer1 = await budget.acquire_viewer()
    viewer2 = await budget.acquire_viewer()  # needs the probe's connection
    results = await asyncio.wait_for(run, 5)
    viewer1.release()
    viewer2.release()
    result = results[JobKey("d", "1000")]
    assert result.origin is Origin.PREEMPTED and result.verdict is Verdict.TRANSIENT
    assert pool.stats.preempted == 1
    assert pool.hosts["h0.example"].strikes == 0


class _HangingFirstEngine:
    """Channel 0 answers `200` then nothing on every attempt; the others are quick and fine.
    Records each probe's start as (number, timeout)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    async def probe(self, source: Source, timeout: float) -> ProbeResult:
        number = source.url.rsplit("/", 1)[1]
        self.calls.append((number, timeout))
        await asyncio.sleep(0.01)
        return STALLED if number == "0" else OK


def _numbered(n: int, host: str = "cdn.example") -> list[Job]:
    jobs = []
    for i in range(n):
        source = Source("p", f"http://{host}/{i}", kind=StreamKind.TS)
        channel = Channel(key=str(i), name=str(i), tvg_id="", group="", provider="p",
                          sources=[source])  # fmt: skip
        jobs.append(Job(JobKey("d", str(i)), "d", LineupEntry(str(i), channel)))
    return jobs


async def test_a_hung_channels_retry_takes_a_spare_slot_before_the_run_ends() -> None:
    """With slots to spare (no account budget, two per host), the long retry of a channel that
    hung starts among the other probes rather than as a tail after them, and decides it dead."""
    engine = _HangingFirstEngine()
    cfg = PostvalidateConfig(workers=4, per_host=2, min_interval=0.02, jitter=0, retries=1)
    pool = ProbePool(cfg, engine, rng=random.Random(3))
    results = await asyncio.wait_for(pool.run(_numbered(300)), 60)
    retry_at = engine.calls.index(("0", cfg.timeout))
    assert retry_at < len(engine.calls) - 50  # well before the last of the others
    assert results[JobKey("d", "0")].verdict is Verdict.DEAD


class _HeldRetryEngine(_HangingFirstEngine):
    """Channel 0 answers `200` then nothing; its long retry hangs until every other channel
    has been probed (a hung channel's retry, up to the full timeout, holding nothing else)."""

    def __init__(self, others: int) -> None:
        super().__init__()
        self.others = others
        self.all_probed = asyncio.Event()
        self.starts: list[tuple[str, float]] = []

    async def probe(self, source: Source, timeout: float) -> ProbeResult:
        number = source.url.rsplit("/", 1)[1]
        self.starts.append((number, timeout))
        if number == "0" and timeout == PostvalidateConfig().timeout:
            await self.all_probed.wait()
        result = await super().probe(source, timeout)
        if sum(1 for n, _ in self.calls if n != "0") == self.others:
            self.all_probed.set()
        return result


async def test_a_hung_channels_long_retry_does_not_count_against_the_workers() -> None:
    """The global cap is for probes that do work: one waiting out a hung channel's long retry
    sends nothing, and on a run with a retry per host it held the cap while hosts sat idle."""
    engine = _HeldRetryEngine(others=30)
    cfg = PostvalidateConfig(workers=1, per_host=2, min_interval=0.01, jitter=0, retries=1)
    pool = ProbePool(cfg, engine, rng=random.Random(3))
    results = await asyncio.wait_for(pool.run(_numbered(31)), 20)
    assert engine.starts.index(("0", cfg.timeout)) < 30  # the others went on beside it
    assert results[JobKey("d", "0")].verdict is Verdict.DEAD


class _TwoHungEngine:
    """Channels 0 and 1 answer `200` then nothing on every attempt, the others are quick and
    fine. Channel 0's second attempt (its long retry) holds until channel 1's has started: two
    hung channels' retries on a host of two slots. Records how many of the others had been
    probed when channel 1's retry started."""

    def __init__(self) -> None:
        self.tries: dict[str, int] = {}
        self.probed = 0
        self.second_started = asyncio.Event()
        self.others_before_second: int | None = None

    async def probe(self, source: Source, timeout: float) -> ProbeResult:
        number = source.url.rsplit("/", 1)[1]
        self.tries[number] = self.tries.get(number, 0) + 1
        if number not in ("0", "1"):
            self.probed += 1
        elif self.tries[number] == 2 and number == "1":
            self.others_before_second = self.probed
            self.second_started.set()
        elif self.tries[number] == 2:
            await self.second_started.wait()
        await asyncio.sleep(0.01)
        return STALLED if number in ("0", "1") else OK


@pytest.mark.parametrize(("timeout", "early"), [(15.0, True), (0.2, False)])
async def test_a_second_hung_retry_takes_the_last_slot_when_less_work_is_left_than_it_takes(
    timeout: float, early: bool
) -> None:
    """With another hung channel's retry holding one of a host's two slots, a second retry
    waits while the host's other work would outlast it (it leaves that work a slot), and
    starts beside the first when less is left than its timeout (60 channels at ~20/s: 3 s
    against 15), not after the other work and the first retry."""
    engine = _TwoHungEngine()
    cfg = PostvalidateConfig(
        workers=4, per_host=2, min_interval=0.05, jitter=0, retries=1, timeout=timeout
    )
    pool = ProbePool(cfg, engine, rng=random.Random(3))
    results = await asyncio.wait_for(pool.run(_numbered(62)), 30)
    assert engine.others_before_second is not None
    if early:  # its retry came ~1 s after its first try (CHANNEL_RETRY_DELAY), beside the work
        assert engine.others_before_second <= 40
    else:  # work for more than 0.2 s was left until at most ~10 channels (<= 50/s) were
        assert engine.others_before_second >= 50
    assert results[JobKey("d", "0")].verdict is Verdict.DEAD
    assert results[JobKey("d", "1")].verdict is Verdict.DEAD


async def test_on_a_small_account_the_long_retry_waits_for_the_end() -> None:
    """On a 2-connection account (one probe slot), the long retry never holds the only slot
    while other channels wait: it runs after them."""
    engine = _HangingFirstEngine()
    cfg = PostvalidateConfig(workers=4, per_host=2, min_interval=0, jitter=0, retries=1)
    pool = ProbePool(cfg, engine, BudgetRegistry(2), rng=random.Random(3))
    results = await asyncio.wait_for(pool.run(_numbered(40)), 60)
    assert engine.calls[-1] == ("0", cfg.timeout)
    assert results[JobKey("d", "0")].verdict is Verdict.DEAD


class _ScriptedEngine:
    """Answers each probe of channel N with `script[N]`."""

    def __init__(self, script: list[ProbeResult]) -> None:
        self.script = script

    async def probe(self, source: Source, timeout: float) -> ProbeResult:
        return self.script[int(source.url.rsplit("/", 1)[1])]


async def test_only_a_request_we_gave_up_on_holds_the_hosts_next_start() -> None:
    """A channel's own failure leaves the host's pace alone, but when we dropped a request the
    server still held (a timeout), its next start waits ABORT_GRACE; one the server ended
    itself (closed, HTML, an empty playlist) holds nothing of ours there."""
    from unittest import mock

    from plextuner.validate.hosts import HostLimiter

    ended = ProbeResult(Verdict.TRANSIENT, "200, then closed", scope=Scope.CHANNEL, definite=True)
    dropped = ProbeResult(
        Verdict.TRANSIENT, "200, then nothing", scope=Scope.CHANNEL, definite=True, dropped=True
    )
    cfg = PostvalidateConfig(workers=1, per_host=1, min_interval=0, jitter=0, retries=0)
    pool = ProbePool(cfg, _ScriptedEngine([ended, dropped, DEAD]))
    with mock.patch.object(
        HostLimiter, "finished_neutral", autospec=True, side_effect=HostLimiter.finished_neutral
    ) as neutral:
        await asyncio.wait_for(pool.run(_numbered(3)), 10)
    assert sorted(call.args[2] for call in neutral.call_args_list) == [False, False, True]


class _BanningEngine:
    """The first probe answers; every probe for `ban` seconds after it is refused (a CDN that
    closed its listener), then all answer again."""

    def __init__(self, ban: float) -> None:
        self.ban = ban
        self.ends: float | None = None
        self.refused = 0

    async def probe(self, source: Source, timeout: float) -> ProbeResult:
        now = asyncio.get_running_loop().time()
        if self.ends is None:
            self.ends = now + self.ban
        elif now < self.ends:
            self.refused += 1
            return ProbeResult(Verdict.TRANSIENT, "connection refused", refused=True)
        return OK


async def test_a_bans_refusals_use_up_no_channels_retries() -> None:
    """The first refusal of a burst is its channel's try (with no retries: unverified); the
    ones after it, every second until the ban ends, only look for its end: the channels they
    fell on are probed again after it and decided."""
    engine = _BanningEngine(ban=2.5)
    cfg = PostvalidateConfig(workers=1, per_host=1, min_interval=0.05, jitter=0, retries=0)
    pool = ProbePool(cfg, engine, rng=random.Random(1))
    results = await asyncio.wait_for(pool.run(_numbered(8)), 30)
    transient = [r for r in results.values() if r.verdict is Verdict.TRANSIENT]
    assert engine.refused >= 3  # the burst's refusal and at least two checks of the ban
    assert len(transient) == 1 and len(results) == 8


SILENT = ProbeResult(
    Verdict.TRANSIENT, "connected, no answer", scope=Scope.CHANNEL, dropped=True, silent=True
)


class TestSilence:
    """A host that accepts and never answers: a strike on probation (silence)."""

    @staticmethod
    def started(j: Job, served: int) -> Job:
        j.served_before = served  # as the pool sets it when the probe starts
        return j

    def test_the_first_silence_counts_and_is_not_definite(self) -> None:
        j = self.started(job(), 5)
        result, strike = silence(j, 7, SILENT)
        assert strike and not result.definite and j.served_mark == 5  # from its start

    def test_silence_again_after_the_host_served_others_is_definite(self) -> None:
        j = self.started(job(), 5)
        silence(j, 5, SILENT)
        result, strike = silence(self.started(j, 5), 6, SILENT)
        assert strike and result.definite and result.reason == SILENT.reason

    def test_served_while_the_first_attempt_hung_counts(self) -> None:
        j = self.started(job(), 5)
        silence(j, 6, SILENT)  # another channel streamed while this one hung
        assert silence(self.started(j, 6), 6, SILENT)[0].definite

    def test_silence_again_with_nothing_served_since_the_first_is_no_strike(self) -> None:
        j = self.started(job(), 5)
        silence(j, 5, SILENT)
        result, strike = silence(self.started(j, 5), 5, SILENT)
        assert not strike and not result.definite

    def test_other_results_strike_when_definite(self) -> None:
        assert silence(job(), 0, STALLED) == (STALLED, True)
        assert silence(job(), 0, NO_ANSWER) == (NO_ANSWER, False)  # not silent: as before

    def test_a_backup_source_starts_with_no_mark(self) -> None:
        j = job(sources=2)
        silence(j, 3, SILENT)
        j.next_source()
        assert j.served_mark is None


class _SilentEngine:
    """Channels in `silent` are accepted and never answered, every time; the rest are fine."""

    def __init__(self, silent: set[str]) -> None:
        self.silent = silent
        self.calls: list[str] = []

    async def probe(self, source: Source, timeout: float) -> ProbeResult:
        number = source.url.rsplit("/", 1)[1]
        self.calls.append(number)
        await asyncio.sleep(0.005)
        return SILENT if number in self.silent else OK


async def test_a_silent_channel_of_a_host_that_serves_others_is_dead() -> None:
    """Silent on both attempts while the host streamed other channels between them: dead; the
    other channels ok."""
    engine = _SilentEngine({"0", "7"})
    cfg = PostvalidateConfig(workers=2, per_host=2, min_interval=0, jitter=0, retries=1)
    pool = ProbePool(cfg, engine, rng=random.Random(4))
    results = await asyncio.wait_for(pool.run(_numbered(20)), 30)
    for n in ("0", "7"):
        assert results[JobKey("d", n)].verdict is Verdict.DEAD
        assert results[JobKey("d", n)].reason == "connected, no answer (every attempt)"
        assert engine.calls.count(n) == 2
    assert sum(r.verdict is Verdict.OK for r in results.values()) == 18


async def test_a_host_that_answers_nobody_leaves_its_silent_channels_unverified() -> None:
    """Every channel silent (a panel whose account is full may do that): nobody is dead."""
    engine = _SilentEngine({str(i) for i in range(6)})
    cfg = PostvalidateConfig(workers=2, per_host=2, min_interval=0, jitter=0, retries=1)
    pool = ProbePool(cfg, engine, rng=random.Random(4))
    results = await asyncio.wait_for(pool.run(_numbered(6)), 30)
    assert all(r.verdict is Verdict.TRANSIENT for r in results.values())
