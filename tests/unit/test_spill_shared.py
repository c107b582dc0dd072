"""Short bodies that repeat are spilled once and referenced again (spill.py, SHARE_MAX)."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plextuner.epg import spill as spill_module
from plextuner.epg import spillread
from plextuner.epg.spill import Spill
from plextuner.errors import EpgError
from tests.unit.test_guide_spill import FullDisk

NEWS = b"<title>News</title></programme>\n"
FILM = b"<title>Film</title></programme>\n"
LONG = b"<title>" + b"x" * spill_module.SHARE_MAX_BODY + b"</title></programme>\n"


def test_a_repeated_body_is_spilled_once(tmp_path: Path) -> None:
    """Repeats within a run and across runs get the first one's reference; the file holds each
    short body once; every body reads back."""
    spill = Spill(tmp_path)
    first = spill.add_many([NEWS, NEWS, FILM, NEWS])
    second = spill.add_many([FILM, NEWS])
    assert first[0] == first[1] == first[3] == second[1]
    assert first[2] == second[0] != first[0]
    assert spill.size == len(NEWS) + len(FILM)
    assert spill.read_many(first + second) == [NEWS, NEWS, FILM, NEWS, FILM, NEWS]
    spill.close()


def test_a_closed_spill_refuses_a_repeat_too(tmp_path: Path) -> None:
    spill = Spill(tmp_path)
    spill.add_many([NEWS])
    spill.close()
    with pytest.raises(EpgError):
        spill.add_many([NEWS])


def test_a_long_body_is_not_remembered(tmp_path: Path) -> None:
    spill = Spill(tmp_path)
    refs = spill.add_many([LONG, NEWS]) + spill.add_many([LONG, NEWS])
    assert refs[0] != refs[2] and refs[1] == refs[3]
    assert spill.size == 2 * len(LONG) + len(NEWS)
    assert spill.read_many(refs) == [LONG, NEWS, LONG, NEWS]
    spill.close()


def test_a_full_table_spills_the_rest_as_it_comes(tmp_path: Path) -> None:
    spill = Spill(tmp_path)
    bodies = [f"<title>{i}</title>".encode() for i in range(6)]
    with mock.patch.object(spill_module, "SHARE_MAX", 2):
        refs = spill.add_many(bodies[:2]) + spill.add_many(bodies + bodies[:1])
    assert refs[0] == refs[2] == refs[8] and refs[1] == refs[3]
    assert len(set(refs)) == 6
    assert spill.read_many(refs) == bodies[:2] + bodies + bodies[:1]
    spill.close()


def test_a_guide_whose_bodies_do_not_repeat_stops_looking(tmp_path: Path) -> None:
    """Past the trial, a spill whose bodies were mostly new looks nothing up any more (each
    lookup hashes the body): a later repeat is spilled again, and still reads back."""
    spill = Spill(tmp_path)
    bodies = [f"<title>{i}</title>".encode() for i in range(40)]
    with mock.patch.object(spill_module, "SHARE_TRIAL", 20):
        refs = spill.add_many(bodies[:10]) + spill.add_many(bodies[10:30])
        assert spill._known is None
        again = spill.add_many(bodies[:5])
    assert set(again).isdisjoint(refs)
    assert spill.read_many(refs + again) == bodies[:30] + bodies[:5]
    spill.close()


def test_a_guide_whose_bodies_repeat_keeps_looking(tmp_path: Path) -> None:
    spill = Spill(tmp_path)
    with mock.patch.object(spill_module, "SHARE_TRIAL", 20):
        for _ in range(10):
            spill.add_many([NEWS, FILM, NEWS])
    assert spill._known is not None
    assert spill.size == len(NEWS) + len(FILM)
    spill.close()


def test_runs_sharing_bodies_read_back_in_their_own_order(tmp_path: Path) -> None:
    """`read_runs` reads a shared body once and hands it to every run that holds it."""
    spill = Spill(tmp_path)
    bodies = [NEWS, FILM, LONG, NEWS, b"<title>A</title></programme>\n", FILM]
    refs = spill.add_many(bodies)
    runs = [refs[:3], [refs[3], refs[0]], [], refs[3:]]
    spill.flush()  # (what is not on disk yet is read run by run)
    read = spill.read_runs(runs)
    assert read == [bodies[:3], [NEWS, NEWS], [], bodies[3:]]
    assert spill._reads == len(set(refs)) == 4  # each body read once
    assert spill.read_runs(runs) == read  # (learned: the references sorted, not positions)
    assert spill.read_runs([refs[2:3], refs[:1], refs[4:5]]) == [[LONG], [NEWS], [bodies[4]]]
    spill.close()


_body = st.sampled_from([NEWS, FILM, LONG, b"<title>A</title></programme>\n"]) | st.binary(
    min_size=1, max_size=40
)


@settings(max_examples=150, deadline=None)
@given(
    calls=st.lists(st.lists(_body, max_size=12), max_size=8),
    room=st.sampled_from([None, 0, 40, 200]),
    table=st.sampled_from([1, 3, 8192]),
    trial=st.sampled_from([4, 65_536]),
)
def test_shared_or_not_every_body_reads_back(
    tmp_path_factory: pytest.TempPathFactory,
    calls: list[list[bytes]],
    room: int | None,
    table: int,
    trial: int,
) -> None:
    """Whatever repeats, however full the table or the disk, the references `add_many` gives
    read back the bodies it was given, one by one, at once and in runs."""
    spill = Spill(tmp_path_factory.mktemp("s"))
    if room is not None:
        spill._file = FullDisk(spill._file, room=room)  # type: ignore[assignment]
    with (
        mock.patch.object(spill_module, "SHARE_MAX", table),
        mock.patch.object(spill_module, "SHARE_TRIAL", trial),
        mock.patch.object(spill_module, "FLUSH_BYTES", 64),
        mock.patch.object(spillread, "READS_PER_RELEASE", 5),
    ):
        runs = [spill.add_many(bodies) for bodies in calls]
        assert spill.read_runs(runs) == calls
        flat = [b for bodies in calls for b in bodies]
        refs = [r for run in runs for r in run]
        assert spill.read_many(refs) == flat
        assert [spill.read(r) for r in refs] == flat
        assert spill.size <= sum(map(len, flat))
    spill.close()
