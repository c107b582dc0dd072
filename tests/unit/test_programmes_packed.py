"""A spilled source's programmes chosen and written packed (a KeptList) are the general path's."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from plextuner.buckets.models import Device, LineupEntry
from plextuner.config.models import EpgConfig
from plextuner.epg.kept import TIME_BASE, Kept, KeptList
from plextuner.epg.programmes import programmes_for
from plextuner.epg.spill import Spill
from plextuner.epg.writer import write_guide
from plextuner.ingest.models import Channel

# Times near TIME_BASE, where kept times are held exactly (times near 0 are clamped to the
# earliest offset: every programme then ended long before any window, and the choice's later
# checks were never reached)
_time = st.sampled_from([0.0, 1800.0, 3600.0, 5400.0, 7200.0, 9000.0, 86400.0, -3600.0]).map(
    lambda t: TIME_BASE + t
)
_stop = st.one_of(st.none(), st.just(0.0), _time)


_B = TIME_BASE


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.tuples(_time, _stop), max_size=30),
    shift=st.sampled_from([None, 0.0, 1.0, -2.5]),
    window=st.tuples(_time, _time),
)
# The least stop at the window's start (that programme ended), and after it; one without a stop
# beside one that ended
@example(
    rows=[(_B, _B + 1800.0), (_B + 1800.0, _B + 3600.0)],
    shift=None,
    window=(_B + 1800.0, _B + 86400.0),
)
@example(
    rows=[(_B, _B + 1800.0), (_B + 1800.0, _B + 3600.0)],
    shift=None,
    window=(_B + 1799.0, _B + 86400.0),
)
@example(
    rows=[(_B, None), (_B + 1800.0, _B + 3600.0), (_B + 3600.0, _B + 1800.0)],
    shift=0.0,
    window=(_B + 1800.0, _B + 86400.0),
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


@settings(max_examples=300, deadline=None)
@given(
    gaps=st.lists(st.integers(1, 4), max_size=30),
    lengths=st.lists(st.integers(1, 5), min_size=30, max_size=30),
    window=st.tuples(st.integers(-3, 70), st.integers(-3, 70)),
)
def test_a_guide_in_step_is_cut_as_the_general_path_cuts(
    gaps: list[int], lengths: list[int], window: tuple[int, int]
) -> None:
    """Starts and stops both rising (a provider's guide: each programme ends when or after the
    next begins, never before its own start): the stretch the window keeps, cut in C, is the
    general loop's choice."""
    from plextuner.epg import programmes

    packed = KeptList()
    start = 0.0
    for i, gap in enumerate(gaps):
        start += gap * 1800.0
        packed.append(start, start + lengths[i] * 1800.0 if i % 7 else start + gap * 1800.0, i)
    lo, hi = window[0] * 1800.0, window[1] * 1800.0
    entry = LineupEntry("1", Channel(key="k", name="n", tvg_id="t", group="", provider="p"))
    as_list: list[Kept] = list(packed)
    general: list[object] = programmes_for(entry, [as_list], (lo, hi), EpgConfig())  # type: ignore[list-item, assignment]
    fast = programmes_for(entry, [packed], (lo, hi), EpgConfig())
    stops = list(packed.stops)
    if all(a < b for a, b in itertools.pairwise(stops)):
        assert programmes._in_step(packed)
    assert isinstance(fast, KeptList)
    assert [(k.start, k.stop, k.body) for k in fast] == [
        (k.start, k.stop, k.body) for k in general if isinstance(k, Kept)
    ]


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(_time, _stop, st.text(max_size=3)), max_size=20))
def test_packed_writing_is_the_general_one(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[float, float | None, str]]
) -> None:
    """A device guide written from a packed list (bodies read out at once, no `Kept` made for
    each) is byte for byte the one the general loop writes from the same programmes."""
    _same_either_way(tmp_path_factory.mktemp("w"), rows)


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(_time, st.none(), st.text(max_size=3)), max_size=20))
def test_packed_writing_without_stops_is_the_general_one(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[float, float | None, str]]
) -> None:
    """The same for a guide with no stop at all (each programme ends where the next starts:
    the packed list's own path for it)."""
    _same_either_way(tmp_path_factory.mktemp("w"), rows)


def _same_either_way(tmp: Path, rows: list[tuple[float, float | None, str]]) -> None:
    spill = Spill(tmp)
    packed = KeptList()
    for start, stop, title in rows:
        packed.append(start, stop, spill.add(f"<title>{title}</title></programme>".encode()))
    channel = Channel(key="k", name="n", tvg_id="t", group="", provider="p")
    device = Device("d", "d", "D", "1500000C", 5004, 2, True, [LineupEntry("1", channel)])
    written = []
    for items in (packed, list(packed)):
        path = tmp / "guide.xml"
        count = write_guide(path, device, {"1": items}, {}, generated=1.0, spill=spill)
        written.append((count, path.read_bytes()))
    spill.close()
    assert written[0] == written[1]


@pytest.mark.parametrize("heads_max", [0, 2, 16_384])
def test_start_tags_looked_up_by_both_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, heads_max: int
) -> None:
    """The packed path's start tags come from a table of (start, stop) pairs: two channels with
    the same starts and other stops, written one after the other, each get their own; a full
    table (or none) writes the same bytes."""
    from plextuner.epg import writer

    monkeypatch.setattr(writer, "_HEADS", {})
    monkeypatch.setattr(writer, "HEADS_MAX", heads_max)
    for stops in ([1800.0, 3600.0, 5400.0], [900.0, 2700.0, 4500.0], [1800.0, 3600.0, 5400.0]):
        rows: list[tuple[float, float | None, str]] = [
            (start, stop, "t") for start, stop in zip([0.0, 1800.0, 3600.0], stops, strict=True)
        ]
        _same_either_way(tmp_path / f"{heads_max}-{stops[0]}-{len(writer._HEADS)}", rows)
    assert len(writer._HEADS) <= max(heads_max, 3)
