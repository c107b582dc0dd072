"""Probe results and the rules that classify them (docs/validation.md).

Only a definitive answer makes a channel `dead`. Anything our own load, the network or a CDN
protecting itself can cause is `transient`, and a transient channel is never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from plextuner.httpstatus import StatusClass, classify


class Verdict(StrEnum):
    OK = "ok"
    DEAD = "dead"
    TRANSIENT = "transient"


class Origin(StrEnum):
    """Where a result came from: steers the scheduler and the metrics, never the reason text."""

    PROBE = "probe"  # a probe ran to its end
    CACHE = "cache"  # a fresh ok from the probe cache: nothing was probed
    PREEMPTED = "preempted"  # the probe gave its connection to a viewer before it finished
    SCHEDULER = "scheduler"  # not probed: host parked, bucket tripped, run time over, no slot


class Scope(StrEnum):
    """Whose trouble a transient answer shows: only the host's own slows the host down."""

    HOST = "host"  # refused, reset, connect timeout, 429/5xx, TLS: the host is protecting itself
    CHANNEL = "channel"  # the host answered, this stream did not ("200 then nothing", no TS)
    ACCOUNT = "account"  # the provider refused the account ("max connections"): not the channel
    LOCAL = "local"  # our side (ffprobe missing, preempted): says nothing


@dataclass(frozen=True, slots=True)
class ProbeResult:
    verdict: Verdict
    reason: str
    video_codec: str | None = None
    width: int | None = None
    height: int | None = None
    origin: Origin = Origin.PROBE
    scope: Scope = Scope.HOST  # for a transient verdict: whose trouble it shows
    # A channel-scope failure the server gives the same way every time (a 200 with no bytes,
    # bytes with no TS tables): after the retries it makes the channel dead.
    definite: bool = False
    # We gave up on a request the server still held open (a timeout): the host may count the
    # connection a moment longer. An answer the server ended itself (closed, HTML, an empty
    # playlist) holds nothing.
    dropped: bool = False
    # The host's port refused the connection (the kernel's reset: no load on the server, as
    # a CDN's ban that closes its listener): its end is checked for often (validate/hosts.py).
    refused: bool = False
    # The host accepted the connection and sent nothing (no status line): a panel whose account
    # is full may do that, so it is dead only when the host served other channels between two
    # such attempts (`settle.silence`): the host was up and the account had room.
    silent: bool = False

    @property
    def hd(self) -> bool | None:
        return None if self.height is None else self.height >= 720


def unprobed(reason: str) -> ProbeResult:
    """The scheduler's result for a channel it did not probe (host parked, run time over)."""
    return ProbeResult(Verdict.TRANSIENT, reason, origin=Origin.SCHEDULER)


# 401/403 from a CDN that served a moment ago, 429, 5xx and the "account full" codes some panels
# use (458, 509, 513) all say "not now", never "never".


ACCOUNT_STATUSES = frozenset({401, 403, 407, 458, 509, 513})


def classify_status(status: int) -> ProbeResult | None:
    """A verdict from an HTTP status alone, or None when the body decides."""
    if classify(status) is StatusClass.GONE:
        return ProbeResult(Verdict.DEAD, f"HTTP {status}")
    if status in ACCOUNT_STATUSES:
        return ProbeResult(Verdict.TRANSIENT, f"HTTP {status}", scope=Scope.ACCOUNT)
    if status >= 400:
        return ProbeResult(Verdict.TRANSIENT, f"HTTP {status}", scope=Scope.HOST)
    return None


# ffprobe stderr fragments, checked in order.
_FFPROBE_DEAD = (
    "404 not found",
    "410 gone",
    "invalid data found when processing input",
    "no such file or directory",
    "unsupported protocol",
)
_FFPROBE_TRANSIENT = (
    "connection refused",
    "connection reset",
    "connection timed out",
    "timed out",
    "403 forbidden",
    "429",
    "5xx",
    "server returned 5",
    "name or service not known",
    "temporary failure in name resolution",
    "i/o error",
    "end of file",
    "broken pipe",
    "network is unreachable",
    "401 unauthorized",
)


_FFPROBE_SCOPES = {
    "403 forbidden": Scope.ACCOUNT,
    "401 unauthorized": Scope.ACCOUNT,
    "end of file": Scope.CHANNEL,
    "i/o error": Scope.CHANNEL,
}


def classify_ffprobe_error(stderr: str) -> ProbeResult:
    text = stderr.lower()
    for fragment in _FFPROBE_TRANSIENT:
        if fragment in text:
            scope = _FFPROBE_SCOPES.get(fragment, Scope.HOST)
            refused = fragment == "connection refused"
            return ProbeResult(
                Verdict.TRANSIENT, f"ffprobe: {fragment}", scope=scope, refused=refused
            )
    for fragment in _FFPROBE_DEAD:
        if fragment in text:
            return ProbeResult(Verdict.DEAD, f"ffprobe: {fragment}")
    # An unknown failure is not proof of death.
    return ProbeResult(Verdict.TRANSIENT, "ffprobe failed: " + (text.strip()[-120:] or "no output"))
