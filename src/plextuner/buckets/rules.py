"""Ordered bucket rules: all given regexes must match; the first matching bucket wins."""

from __future__ import annotations

import json
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
            (self.group is None or self._any_group(ch))
            and (self.name is None or self.name.search(ch.name) is not None)
            and (self.tvg_id is None or self.tvg_id.search(ch.tvg_id) is not None)
            and (self.provider is None or self.provider.search(ch.provider) is not None)
        )

    @property
    def catch_all(self) -> bool:
        return (
            self.group is None
            and self.name is None
            and self.tvg_id is None
            and (self.provider is None)
        )

    def _any_group(self, ch: Channel) -> bool:
        assert self.group is not None
        groups = ch.groups or [ch.group]
        return any(self.group.search(g) is not None for g in groups)


def assign(
    channels: list[Channel],
    buckets: list[BucketConfig],
    unmatched: str,
    sticky: dict[str, str] | None = None,
    fresh: frozenset[str] = frozenset(),
) -> tuple[dict[str, list[Channel]], int]:
    """Channels per bucket name (config order), and how many no rule took and were dropped.

    A channel stays in the bucket `sticky` says it was published in while that bucket's rule
    still matches it; otherwise the first matching rule in config order takes it. A channel
    parked in a catch-all bucket gives way only to a specific rule in `fresh` (added or changed
    since the last publish: the user wrote it for such channels), not to one that merely starts
    matching because the provider listed the channel under one more group.
    """
    rules = [Rule.from_config(b) for b in buckets]
    by_name = {r.bucket: r for r in rules}
    sticky = sticky or {}
    out: dict[str, list[Channel]] = {b.name: [] for b in buckets}
    keep_default = unmatched == "default"
    if keep_default and DEFAULT_BUCKET not in out:
        out[DEFAULT_BUCKET] = []
    dropped = 0
    for ch in channels:
        kept = by_name.get(sticky.get(ch.key, ""))
        if kept is not None and kept.matches(ch) and not _leaves_catch_all(kept, rules, ch, fresh):
            out[kept.bucket].append(ch)
            continue
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


def _leaves_catch_all(kept: Rule, rules: list[Rule], ch: Channel, fresh: frozenset[str]) -> bool:
    return kept.catch_all and any(
        r.bucket in fresh and not r.catch_all and r.matches(ch) for r in rules
    )


def fingerprint(cfg: BucketConfig) -> str:
    """What a bucket's rule matches, as a stable string."""
    return json.dumps(cfg.match.model_dump(), sort_keys=True)
