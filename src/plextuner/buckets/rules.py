"""Ordered bucket rules: all given regexes must match; the first matching bucket wins."""

from __future__ import annotations

import re
from dataclasses import dataclass

from plextuner.config import BucketConfig
from plextuner.ingest.models import Channel

DEFAULT_BUCKET = "default"


@dataclass(frozen=True, slots=True)
class Rule:
    bucket: str
    group: re.Pattern[str] | None
    name: re.Pattern[str] | None
    tvg_id: re.Pattern[str] | None
    provider: re.Pattern[str] | None

    @classmethod
    def from_config(cls, cfg: BucketConfig) -> Rule:
        def comp(pattern: str | None) -> re.Pattern[str] | None:
            return re.compile(pattern, re.IGNORECASE) if pattern is not None else None

        m = cfg.match
        return cls(cfg.name, comp(m.group), comp(m.name), comp(m.tvg_id), comp(m.provider))

    def matches(self, ch: Channel) -> bool:
        return (
            (self.group is None or self.group.search(ch.group) is not None)
            and (self.name is None or self.name.search(ch.name) is not None)
            and (self.tvg_id is None or self.tvg_id.search(ch.tvg_id) is not None)
            and (self.provider is None or self.provider.search(ch.provider) is not None)
        )


def assign(
    channels: list[Channel], buckets: list[BucketConfig], unmatched: str
) -> tuple[dict[str, list[Channel]], int]:
    """Channels per bucket name (config order), and how many no rule took and were dropped."""
    rules = [Rule.from_config(b) for b in buckets]
    out: dict[str, list[Channel]] = {b.name: [] for b in buckets}
    keep_default = unmatched == "default"
    if keep_default and DEFAULT_BUCKET not in out:
        out[DEFAULT_BUCKET] = []
    dropped = 0
    for ch in channels:
        for rule in rules:
            if rule.matches(ch):
                out[rule.bucket].append(ch)
                break
        else:
            if keep_default:
                out[DEFAULT_BUCKET].append(ch)
            else:
                dropped += 1
    return out, dropped
