"""The outcome reducer: what one probe result means for its job. Pure: no I/O, no clock.

`settle` decides between trying the same source again, moving to the channel's next source, and
deciding the channel; `host_signal` says what the result tells about the host (only a host's own
trouble slows it down). The scheduler applies both.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from enum import StrEnum

from plextuner.validate.jobs import Job
from plextuner.validate.result import Origin, ProbeResult, Scope, Verdict

MAX_RETRY_BACKOFF = 60.0
CHANNEL_RETRIES = 1  # a channel's own failure gets one more try, with the long timeout
CHANNEL_RETRY_DELAY = 1.0  # seconds (with jitter) before it: the host itself answered
MAX_ACCOUNT_WAITS = 6  # "max connections" refusals waited out before a source gives up


class HostSignal(StrEnum):
    OK = "ok"  # the host served: recover towards the configured limits
    NEUTRAL = "neutral"  # says nothing about the host (a dead channel, a preempted probe)
    TROUBLE = "trouble"  # the host refused, timed out or failed: back off


class Charge(StrEnum):
    """What a retry uses up of its job."""

    ATTEMPT = "attempt"  # one of the channel's `retries`
    ACCOUNT_WAIT = "account_wait"  # the provider refused the account: says nothing of the channel
    NOTHING = "nothing"  # a ban's check (see `settle`'s `banned`)


@dataclass(frozen=True, slots=True)
class Retry:
    """Probe the same source again after `delay` seconds, using up `charge` of the job.
    `deferred`: the retry waits for the end of the run (a channel that hung must not hold a
    slot meanwhile)."""

    delay: float
    charge: Charge = Charge.ATTEMPT
    deferred: bool = False

    @property
    def counted(self) -> bool:
        """It uses up one of the channel's retries."""
        return self.charge is Charge.ATTEMPT

    @property
    def ban_check(self) -> bool:
        """A refused connection from a host that is banning us: the probe only looked for the
        ban's end (every second, hosts.REFUSED_RETRY) and uses up nothing of the job's."""
        return self.charge is Charge.NOTHING


@dataclass(frozen=True, slots=True)
class NextSource:
    """Try the channel's next source; `interim` is recorded unless it would hide a transient."""

    interim: ProbeResult


@dataclass(frozen=True, slots=True)
class Decided:
    """The channel's verdict for this run."""

    result: ProbeResult


Settlement = Retry | NextSource | Decided


def host_signal(result: ProbeResult) -> HostSignal:
    """Only the host's own trouble (refused, reset, connect timeout, 429/5xx) slows it down; a
    channel failing after the host answered, or the account being full, does not."""
    if result.verdict is Verdict.OK:
        return HostSignal.OK
    if result.verdict is Verdict.DEAD or result.origin is Origin.PREEMPTED:
        return HostSignal.NEUTRAL
    return HostSignal.TROUBLE if result.scope is Scope.HOST else HostSignal.NEUTRAL


def retry_delay(attempts: int, rng: random.Random) -> float:
    """Exponential backoff with jitter for the `attempts`-th retry."""
    return min(MAX_RETRY_BACKOFF, 2.0**attempts) * (0.5 + rng.random())


def settle(
    job: Job,
    result: ProbeResult,
    earlier: ProbeResult | None,
    retries: int,
    rng: random.Random,
    banned: bool = False,
) -> Settlement:
    """What to do after `result` (for `job`, whose channel had `earlier` recorded so far).
    `banned`: the host answered earlier in the run and has refused since (its trouble in a
    row): a refused connection now is the ban, not this channel's try (a 30 s ban checked every
    second used up the retries of 21 channels of 840, left unverified)."""
    if result.verdict is Verdict.OK:
        return Decided(result)
    if result.verdict is Verdict.TRANSIENT:
        if result.refused and banned:
            return Retry(0.0, Charge.NOTHING)
        if result.scope is Scope.ACCOUNT and job.account_waits < MAX_ACCOUNT_WAITS:
            return Retry(retry_delay(job.account_waits + 1, rng), Charge.ACCOUNT_WAIT)
        if result.scope is Scope.CHANNEL:
            # Counted in the channel's own answers: a refusal by the host before (our burst,
            # the network) neither uses up its retry nor makes its answers look mixed.
            if retries and job.channel_tries <= CHANNEL_RETRIES:  # the host is fine: no backoff
                return Retry(CHANNEL_RETRY_DELAY * (0.5 + rng.random()), deferred=True)
            if result.definite and job.channel_strikes >= job.channel_tries:
                # The same definite failure on every attempt: the server's answer, not ours.
                dead = ProbeResult(Verdict.DEAD, f"{result.reason} (every attempt)")
                return give_up_source(job, dead, earlier)
        elif job.attempts < retries:
            return Retry(retry_delay(job.attempts + 1, rng))
    return give_up_source(job, result, earlier)


def give_up_source(job: Job, result: ProbeResult, earlier: ProbeResult | None) -> Settlement:
    """This source is done: a backup source gets its own chance; the verdict is the last one's,
    except that any transient answer along the way means we do not know (never dead)."""
    if job.has_next_source:
        return NextSource(result)
    if earlier is not None and earlier.verdict is Verdict.TRANSIENT:
        return Decided(earlier)
    return Decided(result)


def interim_kept(interim: ProbeResult, earlier: ProbeResult | None) -> bool:
    """Whether a NextSource's interim result replaces what was recorded (a transient stays)."""
    return earlier is None or earlier.verdict is not Verdict.TRANSIENT


def silence(job: Job, served: int, result: ProbeResult) -> tuple[ProbeResult, bool]:
    """A channel-scope result for `job`, and whether it is a strike against the channel
    (`served`: what its host has served so far this run). A host that accepts and never
    answers may be a panel whose account is full, so silence is a strike on probation: the
    first one counts, and a later one is definite (dead after the retries) only when the host
    served other channels from the first one's start to now: it was up, with room on the
    account, while this channel hung (and a host that stopped answering everyone after its
    last stream is not this channel's fault)."""
    if not result.silent:
        return result, result.definite
    if job.served_mark is None:
        job.served_mark = job.served_before
        return result, True
    if served > job.served_mark:
        return replace(result, definite=True), True
    return result, False
