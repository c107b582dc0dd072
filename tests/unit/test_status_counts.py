"""The status answer's validation counts (hdhr/status.py), counted in C."""

from __future__ import annotations

from plextuner.buckets.models import ChannelState, LineupEntry
from plextuner.hdhr.status import _counts
from plextuner.ingest.models import Channel


def test_each_state_is_counted_and_every_state_is_listed() -> None:
    states = [ChannelState.OK] * 3 + [ChannelState.DEAD] * 2 + [ChannelState.UNVERIFIED]
    entries = [LineupEntry(str(i), Channel(f"k{i}", "N", "", "", "p")) for i in range(7)]
    for e, state in zip(entries, states, strict=False):
        e.state = state
    assert _counts(entries) == {"ok": 3, "dead": 2, "unverified": 1, "unchecked": 1}
    assert list(_counts([])) == ["ok", "dead", "unverified", "unchecked"]
    assert _counts([]) == dict.fromkeys(["ok", "dead", "unverified", "unchecked"], 0)
