"""A quick refresh (one that applies overrides, or serves a new layout before probing) keeps
what the last probes found: each channel's state, reason and time, and dead channels stay out."""

from __future__ import annotations

from plextuner.buckets.models import LineupEntry
from plextuner.stages import NamedStage, RefreshContext, Stage, StageName


def carry_states(ctx: RefreshContext) -> int:
    """Copy the previous publish's probe results onto the same channels; returns how many."""
    previous = ctx.previous
    if previous is None:
        return 0
    known: dict[str, LineupEntry] = {}
    was_dropped: set[str] = set()
    for device in previous.devices:
        for e in device.entries:
            known.setdefault(e.channel.key, e)
        for e in device.dropped:
            known.setdefault(e.channel.key, e)
            was_dropped.add(e.channel.key)
    carried = 0
    for device in ctx.devices:
        kept: list[LineupEntry] = []
        dropped: list[LineupEntry] = []
        for e in device.entries:
            old = known.get(e.channel.key)
            if old is not None:
                carried += 1
                e.state, e.state_reason, e.checked_at = old.state, old.state_reason, old.checked_at
                e.hd = e.hd if e.hd is not None else old.hd
                e.video_codec = e.video_codec or old.video_codec
                if e.channel.key in was_dropped:
                    dropped.append(e)
                    continue
            kept.append(e)
        device.entries, device.dropped = kept, dropped
    return carried


def make_carry_stage() -> Stage:
    async def carry(ctx: RefreshContext) -> None:
        count = carry_states(ctx)
        notes = ctx.report(StageName.VALIDATE, "probe").by_device
        for device in ctx.devices:
            notes[device.name] = f"carried ({count} known)"

    return NamedStage(StageName.VALIDATE, carry)
