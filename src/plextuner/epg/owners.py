"""One owner a guide channel in a device: two channels of one device showing one guide channel's
programmes are two matches of which at most one is right."""

from __future__ import annotations

from plextuner.epg.match import ChannelFacts
from plextuner.epg.matchresult import MatchResult, MatchTier
from plextuner.epg.names import name_key


def assign(entries: list[tuple[ChannelFacts, MatchResult]]) -> list[MatchResult]:
    """One device's results with no guide channel shared by two channels, unless they are the
    same channel (same tvg-id or normalised name): the more confident match keeps it."""
    order = sorted(range(len(entries)), key=lambda i: -entries[i][1].confidence)
    owner: dict[str, ChannelFacts] = {}
    out = [r for _, r in entries]
    for i in order:
        facts, result = entries[i]
        gid = result.guide_id
        if gid is None or result.tier is MatchTier.MANUAL:
            continue
        holder = owner.get(gid)
        if holder is None:
            owner[gid] = facts
        elif not _same_channel(holder, facts):
            out[i] = MatchResult(
                None, MatchTier.NONE, 0.0, result.candidates, f"{gid} taken by {holder.name}"
            )
    return out


def _same_channel(a: ChannelFacts, b: ChannelFacts) -> bool:
    if a.tvg_id and b.tvg_id:
        return a.tvg_id.casefold() == b.tvg_id.casefold()
    return name_key(a.name).compact == name_key(b.name).compact
