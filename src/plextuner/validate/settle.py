"""The outcome reducer: what one probe result means for its job. Pure: no I/O, no clock.

`settle` decides between trying the same source again, moving to the channel's next source, and
deciding the channel; `host_signal` says what the result tells about the host (only a host's own
trouble slows it down). The scheduler applies both.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from plextuner.validate.jobs import Job
from plextuner.validate.result import Origin, ProbeResult, Verdict

MAX_RETRY_BACKOFF = 60.0


class HostSignal(StrEnum):
    OK = "ok"  # the host served: recover towards the configured limits
    NEUTRAL = "neutral"  # says nothing about the host (a dead channel, a preempted probe)
    TROUBLE = "trouble"  # the host refused, timed out or failed: back off


@dataclass(frozen=True, slots=True)
class Retry:
    """Probe the same source again after `delay` seconds."""

    delay: float


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
    if result.verdict is Verdict.OK:
        return HostSignal.OK
    if result.verdict is Verdict.DEAD or result.origin is Origin.PREEMPTED:
        return HostSignal.NEUTRAL
    return HostSignal.TROUBLE


def retry_delay(attempts: int, rng: random.Random) -> float:
    """Exponential backoff with jitter for the `attempts`-th retry."""
    return min(MAX_RETRY_BACKOFF, 2.0**attempts) * (0.5 + rng.random())


def settle(
    job: Job, result: ProbeResult, earlier: ProbeResult | None, retries: int, rng: random.Random
) -> Settlement:
    """What to do after `result` (for `job`, whose channel had `earlier` recorded so far)."""
    if result.verdict is Verdict.OK:
        return Decided(result)
    if result.verdict is Verdict.TRANSIENT and job.attempts < retries:
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
