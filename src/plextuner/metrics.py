"""Prometheus metrics on a registry of our own. Names are the contract (interface.md)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

CHANNELS = Gauge(
    "plextuner_channels", "Channels published per bucket", ["bucket"], registry=REGISTRY
)
REFRESH_DURATION = Histogram(
    "plextuner_refresh_duration_seconds",
    "Wall time of one refresh pipeline pass",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)
REFRESH_LAST_SUCCESS = Gauge(
    "plextuner_refresh_last_success_timestamp_seconds",
    "Unix time of the last refresh that published",
    registry=REGISTRY,
)
PROBES = Counter(
    "plextuner_postvalidate_probes_total",
    "Stream probes by bucket and result (ok, dead, transient)",
    ["bucket", "result"],
    registry=REGISTRY,
)
HOST_BACKOFF = Gauge(
    "plextuner_postvalidate_host_backoff",
    "Current probe backoff level per stream host (0 = none)",
    ["host"],
    registry=REGISTRY,
)
GUARD_HELD = Counter(
    "plextuner_guard_held_total",
    "Refreshes in which the run guard kept a bucket's last good lineup",
    ["bucket"],
    registry=REGISTRY,
)
STREAMS_ACTIVE = Gauge(
    "plextuner_streams_active",
    "Streams being served",
    ["bucket", "provider"],
    registry=REGISTRY,
)
STREAM_BYTES = Counter(
    "plextuner_stream_bytes_total", "Bytes sent to clients", ["bucket"], registry=REGISTRY
)
STREAM_REJECTED = Counter(
    "plextuner_stream_rejected_total",
    "Tunes refused, by reason",
    ["bucket", "reason"],
    registry=REGISTRY,
)
STREAM_FAILOVERS = Counter(
    "plextuner_stream_failovers_total",
    "Switches to another source or reconnects within a session",
    ["bucket"],
    registry=REGISTRY,
)
UPSTREAM_ERRORS = Counter(
    "plextuner_upstream_errors_total",
    "Errors talking to providers, by kind",
    ["kind"],
    registry=REGISTRY,
)
LOOP_LAG = Histogram(
    "plextuner_event_loop_lag_seconds",
    "How late the event loop woke a sampler (sampled 4 times a second)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
UPSTREAMS_ACTIVE = Gauge(
    "plextuner_upstreams_active",
    "Provider connections open for viewers (one per channel, shared by its viewers)",
    ["provider"],
    registry=REGISTRY,
)
UPSTREAM_VIEWERS = Gauge(
    "plextuner_upstream_viewers",
    "Viewers reading from shared upstreams (divide by upstreams_active for viewers per upstream)",
    ["provider"],
    registry=REGISTRY,
)
UPSTREAM_JOINS = Counter(
    "plextuner_upstream_joins_total",
    "Viewers that joined an upstream already open for their channel",
    ["bucket"],
    registry=REGISTRY,
)
SLOW_VIEWERS = Counter(
    "plextuner_slow_viewers_total",
    "Viewers that fell behind their buffer, by what was done (skip or disconnect)",
    ["action"],
    registry=REGISTRY,
)
HANDOVERS = Counter(
    "plextuner_connection_handovers_total",
    "Provider connections handed from a closing or idle upstream to a new tune (zapping)",
    ["provider"],
    registry=REGISTRY,
)


REFRESH_CRASHES = Counter(
    "plextuner_refresh_crashes_total",
    "Refreshes or long-lived tasks that ended in an unexpected exception (a bug: see the log)",
    ["task"],
    registry=REGISTRY,
)


def render() -> bytes:
    """The Prometheus text exposition of our registry."""
    return generate_latest(REGISTRY)


def reset() -> None:
    """Every metric back to its initial value (tests: no test sees another test's counts)."""
    # prometheus_client has no public reset; tests need one (SLF001 accepted here only).
    for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001
        if getattr(collector, "_labelnames", ()):
            collector.clear()  # type: ignore[attr-defined]
        elif hasattr(collector, "_metric_init"):
            collector._metric_init()  # noqa: SLF001
