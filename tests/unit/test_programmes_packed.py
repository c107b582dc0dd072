"""A spilled source's programmes chosen packed (a KeptList) are the general path's choice."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from plextuner.buckets.models import LineupEntry
from plextuner.config.models import EpgConfig
from plextuner.epg.programmes import programmes_for
from plextuner.epg.spill import Kept, KeptList
from plextuner.ingest.models import Channel

_time = st.sampled_from([0.0, 1800.0, 3600.0, 5400.0, 7200.0, 9000.0, 86400.0, -3600.0])
_stop = st.one_of(st.none(), st.just(0.0), _time)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.tuples(_time, _stop), max_size=30),
    shift=st.sampled_from([None, 0.0, 1.0, -2.5]),
    window=st.tuples(_time, _time),
)
def test_packed_choice_is_the_general_one(
    rows: list[tuple[float, float | None]], shift: float | None, window: tuple[float, float]
) -> None:
    packed = KeptList()
    for i, (start, stop) in enumerate(rows):
        packed.append(start, stop, i)
    channel = Channel(key="k", name="n", tvg_id="t", group="", provider="p", tvg_shift=shift)
    entry = LineupEntry("1", channel)
    cfg = EpgConfig()
    as_list: list[Kept] = list(packed)
    general = programmes_for(entry, [as_list], window, cfg)  # type: ignore[list-item]  # a list: the general path
    fast = programmes_for(entry, [packed], window, cfg)
    assert isinstance(fast, KeptList)

    def times(items: object) -> list[tuple[float, float | None, int]]:
        assert isinstance(items, list | KeptList)
        return [(k.start, k.stop or None, k.body) for k in items if isinstance(k, Kept)]

    assert times(list(fast)) == times(general)
    assert len(fast) == len(general)
    if len(fast):
        assert fast[-1] == list(fast)[-1] and fast[0:2] == list(fast)[0:2]
