"""From bucketed channels to devices: numbering, sharding at max_channels, ports, DeviceIDs."""

from __future__ import annotations

from dataclasses import dataclass

from plextuner.buckets.models import Device, LineupEntry
from plextuner.buckets.numbering import NumberMap
from plextuner.buckets.rules import DEFAULT_BUCKET, assign
from plextuner.config import BucketConfig, Settings
from plextuner.hdhr.device_id import device_ids_for
from plextuner.ingest.models import Channel


@dataclass(slots=True)
class BucketingResult:
    devices: list[Device]
    dropped_unmatched: int


def effective_buckets(settings: Settings) -> list[BucketConfig]:
    buckets = list(settings.buckets)
    names = {b.name for b in buckets}
    if (not buckets or settings.unmatched == "default") and DEFAULT_BUCKET not in names:
        buckets.append(BucketConfig(name=DEFAULT_BUCKET, friendly_name="plextuner"))
    return buckets


def first_numbers(buckets: list[BucketConfig]) -> dict[str, int]:
    return {b.name: b.first_number or 1000 * (i + 1) for i, b in enumerate(buckets)}


def shard_names(bucket: str, count: int) -> list[str]:
    return [bucket] + [f"{bucket}-{i}" for i in range(2, count + 1)]


def build_devices(
    channels: list[Channel], settings: Settings, numbers: NumberMap
) -> BucketingResult:
    """Devices in config order; a bucket's shards follow it; ports `port + index` unless set."""
    buckets = effective_buckets(settings)
    unmatched = "default" if not settings.buckets else settings.unmatched
    per_bucket, dropped = assign(channels, buckets, unmatched)
    assigned = numbers.assign(per_bucket, first_numbers(buckets))
    planned: list[tuple[BucketConfig, str, int, list[LineupEntry]]] = []
    for cfg in buckets:
        entries = sorted(
            (
                LineupEntry(number=str(assigned[cfg.name][ch.key]), channel=ch)
                for ch in per_bucket[cfg.name]
            ),
            key=lambda e: int(e.number),
        )
        chunks = [
            entries[i : i + cfg.max_channels] for i in range(0, len(entries), cfg.max_channels)
        ]
        chunks = chunks or [[]]
        for shard_index, (name, chunk) in enumerate(
            zip(shard_names(cfg.name, len(chunks)), chunks, strict=True)
        ):
            planned.append((cfg, name, shard_index, chunk))
    ids = device_ids_for([name for _, name, _, _ in planned])
    devices = []
    for index, (cfg, name, shard_index, chunk) in enumerate(planned):
        port = cfg.port + shard_index if cfg.port else settings.port + index
        friendly = cfg.friendly_name or cfg.name
        if shard_index:
            friendly = f"{friendly} {shard_index + 1}"
        devices.append(
            Device(
                name=name,
                bucket=cfg.name,
                friendly_name=friendly,
                device_id=ids[name],
                port=port,
                tuners=cfg.tuners,
                postvalidate=cfg.postvalidate,
                entries=chunk,
            )
        )
    return BucketingResult(devices=devices, dropped_unmatched=dropped)
