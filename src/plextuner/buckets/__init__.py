"""Bucketing: rules split channels into virtual devices with stable numbers."""

from plextuner.buckets.assignment import Assignments
from plextuner.buckets.devices import BucketingResult, build_devices, effective_buckets
from plextuner.buckets.models import ChannelState, Device, LineupEntry
from plextuner.buckets.numbering import NumberMap
from plextuner.buckets.rules import Rule, assign

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
