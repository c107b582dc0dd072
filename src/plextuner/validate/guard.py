"""The run guard: a bucket that would lose too much to probes keeps its last good lineup."""

from __future__ import annotations

from plextuner.buckets.models import Device
from plextuner.logging import get_logger
from plextuner.metrics import GUARD_HELD

log = get_logger(__name__)


def should_hold(total: int, dead: int, max_drop_ratio: float) -> bool:
    return total > 0 and dead / total > max_drop_ratio


def hold(device: Device, previous: Device | None, dead: int, total: int) -> Device:
    """The device to publish when the guard trips: the last good one, else the unfiltered one."""
    GUARD_HELD.labels(bucket=device.name).inc()
    log.warning(
        "guard_held",
        bucket=device.name,
        dead=dead,
        total=total,
        kept="last_good" if previous is not None else "unfiltered",
    )
    if previous is None:
        return device
    previous.port, previous.tuners = device.port, device.tuners
    previous.friendly_name = device.friendly_name
    return previous
