"""A channel's programmes from every source that has them: shifted, windowed, de-duplicated by
time (an earlier source wins an overlap), and shaped for Plex."""

from __future__ import annotations

import dataclasses

from plextuner.buckets.models import LineupEntry
from plextuner.config.models import EpgConfig
from plextuner.epg.xmltv import Programme

DEFAULT_LENGTH = 3600.0


def programmes_for(
    entry: LineupEntry,
    per_source: list[list[Programme]],
    window: tuple[float, float],
    cfg: EpgConfig,
) -> list[Programme]:
    shift = (entry.channel.tvg_shift or 0.0) * 3600.0
    kept: list[Programme] = []
    taken: list[tuple[float, float]] = []  # intervals an earlier source already covers
    for items in per_source:
        mine: list[tuple[float, float]] = []
        for p in sorted(items, key=lambda p: p.start):
            start = p.start + shift
            stop = (p.stop + shift) if p.stop else None
            end = stop or start + DEFAULT_LENGTH
            if not (start < window[1] and end > window[0]):
                continue
            if any(start < b and end > a for a, b in taken):
                continue  # the same slot from a lower-priority source
            if mine and mine[-1][0] == start:
                continue  # a source repeating itself
            shifted = p if not shift else dataclasses.replace(p, start=start, stop=stop)
            kept.append(_shaped(shifted, cfg))
            mine.append((start, end))
        taken.extend(mine)
    kept.sort(key=lambda p: p.start)
    return kept


def _shaped(p: Programme, cfg: EpgConfig) -> Programme:
    """Plex groups airings by title and shows one description for them all when a programme has
    no episode number; folding the sub-title into the title keeps episodes apart."""
    if cfg.fold_subtitle and p.sub_title and not p.episode_nums and p.sub_title not in p.title:
        return dataclasses.replace(p, title=f"{p.title}: {p.sub_title}")
    return p
