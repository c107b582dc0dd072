"""A quick refresh carries the last probe results: states, reasons, dead channels kept out."""

from __future__ import annotations

from plextuner.buckets.models import ChannelState, Device
from plextuner.stages import RefreshContext
from plextuner.state.published import PublishedState
from plextuner.validate.carry import carry_states
from tests.unit.test_epg import entry


def test_states_and_dead_channels_carried(tmp_path: object) -> None:
    old = Device("a", "a", "A", "11111111", 5004, 2, entries=[entry("1", "One"), entry("2", "Two")])
    old.entries[0].state, old.entries[0].state_reason = ChannelState.OK, "ok"
    gone = entry("3", "Three")
    gone.state, gone.state_reason, gone.checked_at = ChannelState.DEAD, "HTTP 404", 5.0
    old.dropped = [gone]
    previous = PublishedState(devices=[old], published_at=1.0)
    fresh = Device(
        "a", "a", "A", "11111111", 5004, 2,
        entries=[entry("1", "One"), entry("2", "Two"), entry("3", "Three"), entry("4", "New")],
    )  # fmt: skip
    ctx = RefreshContext(settings=None, fetcher=None, previous=previous, devices=[fresh])  # type: ignore[arg-type]
    assert carry_states(ctx) == 3
    assert [e.number for e in fresh.entries] == ["1", "2", "4"]
    assert fresh.entries[0].state is ChannelState.OK
    assert fresh.entries[2].state is ChannelState.UNCHECKED  # new: not probed yet
    assert [(e.number, e.state_reason) for e in fresh.dropped] == [("3", "HTTP 404")]
