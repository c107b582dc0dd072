"""Per-host probe pacing, TCP-style: additive increase of the rate after clean answers,
multiplicative decrease on the host's own trouble, and a ceiling learned from where it began.

A host starts at the configured pace (`min_interval` plus up to `jitter` between starts). Every
few answers in a row that say the host is fine, the jitter halves and the rate rises by a step
(one that grows on a long clean run before any trouble: BOLDER_AFTER), towards what the CDN
allows rather than a third below it. The first refusal (refused or reset
connection, 429/503, connect timeout) halves the rate and sets a ceiling just under the rate it
came at; later climbs stop there, closing in on it by halves (back from trouble, a step every
clean answer while the backoff lasts), so one burst teaches a host's limit
and the rest of the run stays under it; trouble far under the ceiling teaches a lower one only
when it lasts (a ban) while one probe at a time met it, and only trouble beside other probes of
ours halves the concurrency too (and, well under the ceiling, caps it for the run at the probes
that were on the host: a CDN allowing fewer connections than `per_host`). Trouble in a row
stretches a cool-down and parks a host that keeps refusing (one that answered earlier in the
run only after BAN_PATIENCE: a ban ends). A channel's own failure after the host answered is
neutral (see settle).

The rate a lesson is taken at is midway between the base rate and the jittered mean (the mean
alone while no jitter is left), or the rate of the last starts when less
(`met`: starts fall behind the pace while a slot is held, and the climb goes on meanwhile); the
trouble came from the densest spacing, the base rate's. A host that met trouble while its jitter
was still wide learns a ceiling well under its limit (1.49/s against its siblings' 1.84/s for a
CDN allowing 2/s: a run 84 s instead of 76 s), and one that met it late in a fast climb could
learn one over it (2.15/s: banned again, before `met`). So
the first lessons of a run's hosts are pooled (`Lessons`): a host whose own ceiling is under
their median takes the median, never above SAFETY times the base rate that met its own trouble;
one a little over it (up to OVERSHOOT) takes it too; a later refusal teaches it as usual.
"""

from __future__ import annotations

import random
import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from plextuner.logging import get_logger
from plextuner.metrics import HOST_BACKOFF

log = get_logger(__name__)
MAX_COOLDOWN = 120.0
CLEAN_STREAK = 3  # answers in a row that say the host is fine, per step up
RATE_STEP = 0.25  # probes/s added per step (the additive increase)
# Before any trouble, the step grows by RATE_STEP every this many clean answers in a row: a host
# that took that many without a complaint is not near its limit, and at 0.25/s a step the climb
# from the configured 2/s took a 100-channel run 15 s longer than a prober that knew the host.
# A CDN that limits its rate answers with trouble long before (ten probes in, on the bench).
BOLDER_AFTER = 30
MIN_RATE = 1 / 30.0  # at worst a probe every 30 s
MAX_RATE = 50.0  # without a learned ceiling, per host
SAFETY = 0.85  # the ceiling: this share of the rate that met trouble
JITTER_FLOOR = 0.01  # below this the jitter is dropped: pacing becomes regular
REFINE = 0.93  # a later lesson near the ceiling lowers it by this much
BELOW_KNOWN = 0.85  # trouble at less than this share of the ceiling: not about the rate
WINDOW_STARTS = 3  # starts whose spacing is the rate a host saw (see `met`)
ABORT_GRACE = 0.25  # after we drop a hung request, the server needs a moment to see it closed
# A first ceiling at most this far above the hosts' median is the overshoot of the burst that
# taught it (one CDN's nodes learned 1.49-2.15/s of a 2/s limit): it takes the median. Further
# above, the host is taken to allow more than its siblings and keeps its own.
OVERSHOOT = 1.25
POOLED_AFTER = 3  # lessons before their median is trusted to lower a host's own
# A cool-down is its nominal length (doubling with each refusal in a row) within this share
# either way. A CDN's ban has one length; the first probe after it comes after the slowest of
# the doublings that land in it, and the run waits for its slowest host: at +-50% a host now and
# then took its third retry early (still banned) and its fourth at up to 22 s, not 5-9 s
# (the banning bench: 75.6-82.2 s over three runs, 75.4-77.2 s at +-25%).
COOLDOWN_SPREAD = 0.25
# A host that answered earlier in the run and now refuses everything is banning us, and a ban
# ends: it is parked only after refusing for this long (`park_after` refusals in a row park a
# host that never answered: it is gone). At `park_after` refusals alone (~31 s of cool-downs),
# a CDN banning for 30 s had three hosts of eight parked in one run and a third of its dead
# channels left unverified. The price: a host that goes away mid-run holds the run this long
# (its channels stay unverified either way, and `max_run_time` still bounds the run).
BAN_PATIENCE = 300.0
# Meanwhile its retries come at least this often: a refused connection is no load, and waiting
# out a doubled cool-down past the ban's end wasted up to the ban's length again (a 30 s ban:
# retries at 1, 3, 7, 15, 31 s, and at 63 s when the fifth came early; a run 1.9x its oracle).
BAN_RETRY = 5.0
# A host that answered earlier and now refuses connections (a closed listener: the kernel's
# reset, no load on the server) is tried this often: the doubled cool-downs (1, 3, 7 s) found a
# 5 s ban's end 1.5-2.7 s late on every host of the banning bench. A 429/503 still doubles.
REFUSED_RETRY = 1.0
# A host's learned ceiling is kept this long for the runs after the one that learned it (a
# daemon probes every refresh: each run met every host's limit, and its ban, once). After it,
# a run learns afresh, so a CDN that allows more is found within a day.
LESSON_TTL = 86400.0
# A ban this long, on a host whose first lesson came before any climb (the configured pace was
# already over its limit, so that lesson bounds the limit from above only loosely), says the
# CDN punishes hard: its ceiling becomes SAFETY x the halved rate it resumes at, not the first
# lesson's SAFETY x the pace that met the trouble. A CDN allowing 1/s and banning for 30 s
# learned 1.42/s from the default 2/s pace, and each climb back towards it cost another 30 s
# ban (two or three a host: 2.3-2.9x its oracle; banning for 10 s, 1.6x). Shorter bans cost
# less than the slower pace would (1/s banning for 5 s: 1.11x as it is).
LONG_BAN = 8.0


class HostMode(StrEnum):
    NORMAL = "normal"
    BACKOFF = "backoff"
    PARKED = "parked"


@dataclass(slots=True)
class Lessons:
    """The first ceilings the hosts of one probe run learned."""

    ceilings: list[float] = field(default_factory=list)

    def typical(self) -> float:
        """Their median; 0 before any (a host never takes less than its own)."""
        return statistics.median(self.ceilings) if self.ceilings else 0.0


@dataclass(slots=True)
class HostLimiter:
    """When the next probe may start on one host, and how many may run there at once."""

    host: str
    max_concurrency: int
    min_interval: float
    jitter: float
    park_after: int
    rng: random.Random = field(default_factory=random.Random)
    concurrency: int = 0
    rate: float = 0.0  # probe starts per second, before jitter
    jitter_now: float = 0.0
    ceiling: float = MAX_RATE  # learned from the first trouble, never raised
    running: int = 0
    served: int = 0  # probes it answered with a stream, this run (`settle.silence`)
    holding: int = 0  # long retries of channels that hung, running: a connection, no load
    next_start: float = 0.0
    strikes: int = 0  # consecutive transient results
    level: int = 0  # backoff level, exported as a metric
    streak: int = 0  # clean answers in a row
    mode: HostMode = HostMode.NORMAL
    lessons: Lessons | None = None  # shared by the run's hosts
    cap: float = MAX_RATE  # SAFETY x the base rate of the first trouble: no lesson goes above
    taught: int = 0  # lessons this host learned itself (its first, then refinements)
    answered: bool = False  # the host itself answered a probe in this run: it is there
    climbed: bool = False  # the rate was raised above the configured pace in this run
    # Probes at once the host allows, learned from trouble beside other probes of ours well
    # under the rate ceiling (see `_first_strike`); 0 while none is learned.
    conc_cap: int = 0
    early: bool = False  # the first lesson came before any climb (see LONG_BAN)
    trouble_since: float = 0.0  # when the refusals in a row began
    # The base rate of trouble that came well under the ceiling with nothing else of ours on
    # the host (no other probe, no hung channel's retry): taught only if the trouble lasts.
    lone_trouble: float = 0.0
    # The last few starts: the rate the host actually saw when trouble came (see `met`).
    starts: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW_STARTS))

    def __post_init__(self) -> None:
        self.concurrency = self.max_concurrency
        self.rate = MAX_RATE if self.min_interval <= 0 else 1.0 / self.min_interval
        self.jitter_now = self.jitter

    @property
    def interval(self) -> float:
        """The least time between two starts (jitter comes on top)."""
        return 1.0 / self.rate

    @property
    def effective_rate(self) -> float:
        """Starts per second, jitter included (its mean)."""
        return 1.0 / (self.interval + self.jitter_now / 2)

    def remember(self, ceiling: float) -> None:
        """A ceiling this host taught an earlier run (kept in probe_cache.json for LESSON_TTL):
        held as this run's own, so the climb stops under it instead of meeting the limit, and
        the ban, again. A refusal near it refines it as usual (and is kept as a new lesson)."""
        self.ceiling = self.cap = min(MAX_RATE, max(MIN_RATE, ceiling))
        self.rate = min(self.rate, self.ceiling)

    def ready(self, now: float) -> bool:
        return (
            self.mode is not HostMode.PARKED
            and self.running < self.concurrency
            and now >= self.next_start
        )

    def started(self, now: float, holds: bool = False) -> None:
        """`holds`: the long retry of a channel that hung (see `finished_transient`)."""
        self.running += 1
        self.holding += holds
        self.starts.append(now)
        jitter = self.rng.uniform(0, self.jitter_now) if self.jitter_now else 0.0
        self.next_start = max(self.next_start, now) + self.interval + jitter

    def hold_ended(self, holds: bool) -> None:
        """A probe started with `holds` ended: told before its result is applied, so a
        backoff that result brings counts only the retries still running."""
        self.holding -= holds

    def finished_ok(self) -> None:
        self.running -= 1
        self.served += 1
        self._clean()

    def finished_neutral(self, now: float, aborted: bool = False) -> None:
        """A channel's own answer (dead, or hung after the host answered): the host itself
        answered, so it counts as clean. `aborted`: we dropped the request (a first-byte
        timeout); the host still counts it as open for a moment, so its slot is not reused at
        once (a CDN that limits connections answers the next one with 503 and a ban)."""
        self.running -= 1
        if aborted:
            self.next_start = max(self.next_start, now + ABORT_GRACE)
            if self.strikes:  # sent before the trouble, unanswered: not the trouble's end (a
                return  # hung channel's retry ending mid-ban made its refusals look new)
        self._clean()

    def _clean(self) -> None:
        self.answered = True
        self.strikes = 0
        self.streak += 1
        # Back from trouble under a learned ceiling, a step every clean answer, as TCP's slow
        # start climbs to its threshold: the ceiling is a lesson already, and each answer at the
        # halved rate is time lost (twenty hosts allowing 2/s: 50.0-50.7 -> 48.5-50.1 s). The
        # concurrency steps with the rate: its trouble then comes well under the ceiling and
        # teaches the concurrency cap (a CDN allowing one connection: 90.2-91.3 -> 85.6-86.1 s),
        # where a rate back at its ceiling first took it for the rate's (105.5 s, 32 bans).
        recovering = self.level > 0 and self.rate < self.ceiling < MAX_RATE
        if self.streak % CLEAN_STREAK and not recovering:
            return
        # Additive increase: regular pacing first, then a faster one, then more at once.
        self.jitter_now = self.jitter_now / 2 if self.jitter_now / 2 >= JITTER_FLOOR else 0.0
        if self.ceiling < MAX_RATE:  # a learned limit: close in on it by halves
            if self.lessons is not None:
                self._pool(self.lessons)
            step = max(RATE_STEP / 4, (self.ceiling - self.rate) / 2)
        else:
            step = RATE_STEP * (1 + self.streak // BOLDER_AFTER)
        if self.rate < self.ceiling:
            self.climbed = True
        self.rate = min(self.ceiling, self.rate + step)
        self._set_concurrency(min(self.max_concurrency, self.concurrency + 1))
        if self.level:
            self.level -= 1
            if self.level == 0:
                self._set_mode(HostMode.NORMAL, "recovered")
            HOST_BACKOFF.labels(host=self.host).set(self.level)

    def _pool(self, lessons: Lessons) -> None:
        """Take the run's typical ceiling where this host's first lesson is off it: up to it
        (never past `cap`) when under, down to it when a little over."""
        typical = lessons.typical()
        if self.ceiling < self.cap:
            self.ceiling = max(self.ceiling, min(self.cap, typical))
        if (
            self.taught == 1
            and len(lessons.ceilings) >= POOLED_AFTER
            and typical < self.ceiling <= OVERSHOOT * typical
        ):
            self.ceiling = typical
            self.rate = min(self.rate, typical)

    def finished_transient(self, now: float, reason: str, refused: bool = False) -> None:
        """Multiplicative decrease plus a cool-down; park a host that keeps refusing.
        `refused`: the connection was refused (see REFUSED_RETRY)."""
        self.running -= 1
        self.streak = 0
        self.strikes += 1
        self.level += 1
        if self.strikes == 1:  # once per burst of trouble: the refusals after it are echoes
            self.trouble_since = now
            self._first_strike()
        elif self.strikes == 2 and self.lone_trouble:
            # Trouble well under the ceiling that lasts (a ban's refusals, a limit answering
            # again), with nothing else of ours on the host: the ceiling is wrong, not a slot
            # or a blip. A first lesson taken while the pace was already over a strict limit
            # (1/s) stayed over it, and climbing back to it cost the run a ban (30 s) per climb.
            # Its second lesson, so a wider margin than the first's: SAFETY x 1.21/s, 1.03/s,
            # was still over that limit and took one ban more to refine.
            self.taught += 1
            self.ceiling = self.cap = max(MIN_RATE, SAFETY * REFINE * self.lone_trouble)
            self.rate = min(self.rate, self.ceiling)
            self.lone_trouble = 0.0
        if self.early and now - self.trouble_since >= LONG_BAN:
            self.early = False  # once: a later lesson refines this one as usual
            self.taught += 1
            self.ceiling = self.cap = max(MIN_RATE, min(self.ceiling, SAFETY * self.rate))
            self.rate = min(self.rate, self.ceiling)
        # Not below the hung channels' long retries plus one: a retry holds its slot for up
        # to the full timeout, sending nothing, and a backoff (a rate limit's 503) that left it
        # the only slot stopped the host's other probes that long (the banning bench with
        # hanging channels: 1.37x its oracle). And not at all for trouble that came with no
        # other probe of ours on the host: one at a time met it, so the rate is what to slow
        # (halved above); a single slot left a hung channel's first-byte timeout (5 s) to stop
        # the host's other probes after every ban (a 3/s CDN: 2 probes in 6 s after its ban).
        if self.running:
            self._set_concurrency(max(1 + self.holding, self.concurrency // 2))
        cooldown = min(
            BAN_RETRY if self.answered else MAX_COOLDOWN, 0.5 * 2 ** min(self.strikes, 8)
        )
        if refused and self.answered:
            cooldown = min(cooldown, REFUSED_RETRY)
        spread = 1 - COOLDOWN_SPREAD + 2 * COOLDOWN_SPREAD * self.rng.random()
        self.next_start = max(self.next_start, now + cooldown * spread)
        HOST_BACKOFF.labels(host=self.host).set(self.level)
        if self.strikes >= self.park_after and (
            not self.answered or now - self.trouble_since >= BAN_PATIENCE
        ):
            self._set_mode(HostMode.PARKED, reason)
        else:
            self._set_mode(HostMode.BACKOFF, reason)

    def _set_concurrency(self, wanted: int) -> None:
        """`wanted` probes at once, never more than the cap the host taught (held retries
        are connections it counts too)."""
        self.concurrency = min(wanted, self.conc_cap) if self.conc_cap else wanted

    def _first_strike(self) -> None:
        """What a burst of trouble's first result teaches, by the rate it came at."""
        rate = self.met()
        self.lone_trouble = 0.0
        # Trouble well under the ceiling is not about the rate (a slot held by a hung
        # request, a blip): it slows the host now but teaches no lower ceiling, unless it
        # lasts with no other probe of ours on the host (strike 2, in `finished_transient`).
        if self.ceiling >= MAX_RATE:  # the first lesson: under the rate that met trouble
            self.taught = 1
            self.early = not self.climbed
            self.ceiling = max(MIN_RATE, SAFETY * rate)
            self.cap = max(self.ceiling, SAFETY * self.rate)
            if self.lessons is not None:
                self.lessons.ceilings.append(self.ceiling)
        elif rate >= BELOW_KNOWN * self.ceiling:  # near it: the ceiling is a little high
            self.taught += 1
            self.ceiling = max(MIN_RATE, min(self.ceiling, rate) * REFINE)
            self.cap = self.ceiling  # its own lesson now: no more taken from the others
        elif self.running == 0:  # (a hung channel's retry held is one running)
            self.lone_trouble = self.rate
        else:
            # Well under the ceiling, beside other probes of ours: one connection too many (a
            # CDN allowing one at a time, or two with one of ours hung). The climb raised the
            # concurrency again after every three clean answers, and every raise met the
            # limit, and its ban, again: a CDN allowing one connection and 2/s, banning for
            # 5 s, banned each host five times, 1.43x its oracle.
            self.conc_cap = self.running
        self.rate = max(MIN_RATE, self.rate / 2)

    @property
    def banning(self) -> bool:
        """It answered earlier in the run and has had trouble in a row since (its refusals
        after the first are the ban's, not any channel's)."""
        return self.answered and self.strikes > 1

    def met(self) -> float:
        """The rate the first trouble came at: midway between the base rate and the jittered
        mean while there is jitter (see below), or what the host saw over
        the last starts when that was less. Starts fall behind the nominal pace while a slot
        is held (a hung channel, a slow answer), and a climb goes on meanwhile: one host
        refused at a nominal 2.53/s, met after starts 0.49 s apart, learned 2.15/s of a 2/s
        limit and was banned again (the bench's only second bans, 1 run in 6)."""
        rate = self.effective_rate
        if self.jitter_now:
            # The jitter only lengthens intervals: the densest spacing, the base rate's, met
            # the trouble, and the mean says less of it the wider the jitter still is (hosts
            # refused at a base 2.25/s learned 1.49/s from the mean while their siblings
            # learned 1.7-1.86/s, and pooled, every host ran at their median). Midway.
            rate = (rate + self.rate) / 2
        if len(self.starts) == WINDOW_STARTS and self.starts[-1] > self.starts[0]:
            seen = (WINDOW_STARTS - 1) / (self.starts[-1] - self.starts[0])
            rate = min(rate, seen)
        return rate

    def _set_mode(self, mode: HostMode, reason: str) -> None:
        if mode is not self.mode:
            log.info(
                "probe_host_state",
                host=self.host,
                mode=mode.value,
                previous=self.mode.value,
                reason=reason,
                concurrency=self.concurrency,
                rate=round(self.rate, 2),
                ceiling=round(self.ceiling, 2),
            )
            self.mode = mode


def taught(hosts: Mapping[str, HostLimiter]) -> dict[str, float]:
    """The ceilings hosts that answered taught this run (not those they were reminded of: see
    `remember`), for the runs after it; a host that never answered taught nothing of its rate."""
    return {name: lim.ceiling for name, lim in hosts.items() if lim.taught and lim.answered}
