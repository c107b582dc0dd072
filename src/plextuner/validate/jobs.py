"""What the probe scheduler works on: one job per published channel, keyed by device and number."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

from plextuner.buckets.models import LineupEntry
from plextuner.ingest.models import Source


class JobKey(NamedTuple):
    """A channel as published: its device and its GuideNumber (unique together)."""

    device: str
    number: str

    def __str__(self) -> str:
        return f"{self.device}:{self.number}"


@dataclass(slots=True)
class Job:
    key: JobKey
    bucket: str
    entry: LineupEntry
    source_index: int = 0
    attempts: int = 0
    not_before: float = 0.0
    channel_strikes: int = 0  # definite channel-scope failures of this source, this run
    channel_tries: int = 0  # channel-scope answers of this source (the host's refusals aside)
    account_waits: int = 0  # retries because the provider refused the account (not counted)
    served_before: int = 0  # its host's `served` when its probe started (`settle.silence`)
    served_mark: int | None = None  # `served_before` of its first silent attempt

    @property
    def source(self) -> Source:
        return self.entry.channel.sources[self.source_index]

    def next_source(self) -> None:
        """On to the channel's next source, with that source's own retries and history."""
        self.source_index += 1
        self.attempts = self.channel_strikes = self.channel_tries = self.account_waits = 0
        self.served_mark = None
        self.not_before = 0.0

    @property
    def has_next_source(self) -> bool:
        return self.source_index + 1 < len(self.entry.channel.sources)


def interleave(per_bucket: dict[str, list[Job]]) -> list[Job]:
    """Round-robin across buckets, so every bucket advances at the same pace."""
    lists = [deque(jobs) for jobs in per_bucket.values()]
    out: list[Job] = []
    while any(lists):
        out.extend(jobs.popleft() for jobs in lists if jobs)
    return out


@dataclass(slots=True)
class PoolStats:
    """What one probe run did, for its log line and the tests."""

    probes: int = 0
    retries: int = 0
    preempted: int = 0
    wakeups: int = 0  # times the scheduler woke (a measure of its own overhead)
    parked_hosts: list[str] = field(default_factory=list)
    tripped_buckets: list[str] = field(default_factory=list)
