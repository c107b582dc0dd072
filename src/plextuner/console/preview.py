"""Setup help: which published channels a bucket rule would take, and whether the device it
makes would pass Plex's 479-channel limit (then it is split into shards)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from pydantic import ValidationError

from plextuner.buckets.rules import Rule
from plextuner.config.models import BucketConfig, MatchConfig
from plextuner.console.data import index
from plextuner.hdhr.runtime import Runtime
from plextuner.state.overrides import PLEX_MAX_CHANNELS

SAMPLE = 50


def preview_rule(rt: Runtime, rule: dict[str, str]) -> dict[str, Any]:
    given = {k: v for k, v in rule.items() if v}
    try:
        cfg = BucketConfig(name="preview", match=MatchConfig(**given))
    except ValidationError as err:
        return {"error": "; ".join(str(e["msg"]) for e in err.errors())[:300]}
    compiled = Rule.from_config(cfg)
    hits = [r for r in index(rt).rows if r.served and compiled.matches(r.entry.channel)]
    per_device = Counter(r.device.name for r in hits)
    return {
        "error": "",
        "count": len(hits),
        "limit": PLEX_MAX_CHANNELS,
        "shards": max(1, math.ceil(len(hits) / PLEX_MAX_CHANNELS)),
        "too_many": len(hits) > PLEX_MAX_CHANNELS,
        "per_device": sorted(per_device.items()),
        "sample": [
            {
                "number": r.entry.number,
                "name": r.entry.channel.name,
                "group": r.entry.channel.group,
                "device": r.device.name,
            }
            for r in hits[:SAMPLE]
        ],
    }
