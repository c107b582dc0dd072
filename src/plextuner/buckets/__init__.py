"""Bucketing: rules split channels into virtual devices with stable numbers.

Its names load with their module on first use: a process that needs only the models (a guide
writer, epg/writehalf.py) does not import the rules and their config (pydantic, 30 MB).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
    globals()[name] = value
    return value
