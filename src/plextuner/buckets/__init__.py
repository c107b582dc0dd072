"""Bucketing: rules split channels into virtual devices with stable numbers.

Its names load with their module on first use: a process that needs only the models (a guide
writer, epg/writehalf.py) does not import the rules and their config (pydantic, 30 MB).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plextuner.lazy import names_of

if TYPE_CHECKING:
    from plextuner.buckets.assignment import Assignments
    from plextuner.buckets.devices import BucketingResult, build_devices, effective_buckets
    from plextuner.buckets.models import ChannelState, Device, LineupEntry
    from plextuner.buckets.numbering import NumberMap
    from plextuner.buckets.rules import Rule, assign

_WHERE = {
    "Assignments": "assignment",
    "BucketingResult": "devices",
    "build_devices": "devices",
    "effective_buckets": "devices",
    "ChannelState": "models",
    "Device": "models",
    "LineupEntry": "models",
    "NumberMap": "numbering",
    "Rule": "rules",
    "assign": "rules",
}
__all__ = [
    "Assignments",
    "BucketingResult",
    "ChannelState",
    "Device",
    "LineupEntry",
    "NumberMap",
    "Rule",
    "assign",
    "build_devices",
    "effective_buckets",
]


__getattr__ = names_of(__name__, _WHERE)
