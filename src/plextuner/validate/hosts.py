"""Per-host probe limits with AIMD: back off hard on trouble, recover slowly on success."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum

from plextuner.logging import get_logger
from plextuner.metrics import HOST_BACKOFF

log = get_logger(__name__)
MAX_INTERVAL = 30.0
MAX_COOLDOWN = 120.0
RECOVER_EVERY = 4  # successes per +1 concurrency


class HostMode(StrEnum):
    NORMAL = "normal"
    BACKOFF = "backoff"
    PARKED = "parked"


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
    interval: float = 0.0
    running: int = 0
    next_start: float = 0.0
    strikes: int = 0  # consecutive transient results
    level: int = 0  # backoff level, exported as a metric
    successes: int = 0
    mode: HostMode = HostMode.NORMAL

    def __post_init__(self) -> None:
        self.concurrency = self.max_concurrency
        self.interval = self.min_interval

    def ready(self, now: float) -> bool:
        return (
            self.mode is not HostMode.PARKED
            and self.running < self.concurrency
            and now >= self.next_start
        )

    def started(self, now: float) -> None:
        self.running += 1
        self.next_start = now + self.interval + self.rng.uniform(0, self.jitter)

    def finished_ok(self) -> None:
        self.running -= 1
        self.strikes = 0
        self.successes += 1
        if self.successes % RECOVER_EVERY:
            return
        # Additive increase: one step back towards the configured limits per few successes.
        self.concurrency = min(self.max_concurrency, self.concurrency + 1)
        self.interval = max(self.min_interval, self.interval * 0.75)
        if self.level:
            self.level -= 1
            if self.level == 0:
                self._set_mode(HostMode.NORMAL, "recovered")
            HOST_BACKOFF.labels(host=self.host).set(self.level)

    def finished_transient(self, now: float, reason: str) -> None:
        """Multiplicative decrease plus a cool-down; park a host that keeps refusing."""
        self.running -= 1
        self.strikes += 1
        self.level += 1
        self.concurrency = max(1, self.concurrency // 2)
        self.interval = min(MAX_INTERVAL, max(self.interval * 2, 0.25))
        cooldown = min(MAX_COOLDOWN, 0.5 * 2 ** min(self.strikes, 8))
        self.next_start = max(self.next_start, now + cooldown * (0.5 + self.rng.random()))
        HOST_BACKOFF.labels(host=self.host).set(self.level)
        if self.strikes >= self.park_after:
            self._set_mode(HostMode.PARKED, reason)
        else:
            self._set_mode(HostMode.BACKOFF, reason)

    def finished_neutral(self) -> None:
        """A definitive answer (dead channel): the host itself is fine."""
        self.running -= 1
        self.strikes = 0

    def _set_mode(self, mode: HostMode, reason: str) -> None:
        if mode is not self.mode:
            log.info(
                "probe_host_state",
                host=self.host,
                mode=mode.value,
                previous=self.mode.value,
                reason=reason,
                concurrency=self.concurrency,
                interval_s=round(self.interval, 2),
            )
            self.mode = mode
