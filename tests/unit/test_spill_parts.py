"""Another spill's file adopted by a spill and read in place (spillparts.py)."""

from __future__ import annotations

import os
import random
from pathlib import Path
from unittest import mock

import pytest

from plextuner.epg import spillread
from plextuner.epg.spill import Spill
from plextuner.epg.spillparts import Part
from plextuner.errors import EpgError
from tests.unit.test_guide_spill import FullDisk


def bodies(tag: str, n: int, size: int) -> list[bytes]:
    return [f"<title>{tag}{i}</title><desc>{'x' * (i % size)}</desc>".encode() for i in range(n)]


def adopted(tmp_path: Path) -> tuple[Spill, list[int], list[bytes], int]:
    """A spill with bodies of its own, then a helper's adopted (4 MB), then its own again:
    every reference and body in order, and the helper's bytes."""
    spill, theirs = Spill(tmp_path), Spill(tmp_path)
    first, second, third = bodies("a", 1001, 37), bodies("b", 4000, 1000), bodies("c", 777, 50)
    refs = spill.add_many(first)
    theirs_refs = theirs.add_many(second)
    theirs.flush()
    assert theirs._file is not None
    shift = spill.adopt(theirs._file, theirs.size)
    size = theirs.size
    theirs.close()  # (the part reads through a descriptor of its own)
    refs += [ref + shift for ref in theirs_refs]
    refs += spill.add_many(third)
    return spill, refs, first + second + third, size


def test_an_adopted_spill_is_read_in_place_among_its_own(tmp_path: Path) -> None:
    """Its bodies, those before it and those after it come back by every way of reading (in
    order, out of order, a run at a time, one by one); its bytes are not written again (the
    spill's own file holds a hole where they are)."""
    spill, refs, expected, adopted_size = adopted(tmp_path)
    assert spill.read_many(refs) == expected
    assert [spill.read(ref) for ref in refs[::97]] == expected[::97]
    order = list(range(len(refs)))
    random.Random(7).shuffle(order)
    assert spill.read_many([refs[i] for i in order]) == [expected[i] for i in order]
    runs = [refs[i::5] for i in range(5)]
    assert spill.read_runs(runs) == [expected[i::5] for i in range(5)]
    spill.release()
    fd = spill.fileno()
    assert fd is not None
    allocated = os.fstat(fd).st_blocks * 512
    assert allocated < spill.size - adopted_size // 2
    spill.close()


@pytest.mark.parametrize("repeats", [False, True])
def test_runs_in_any_order_read_back_across_the_parts(tmp_path: Path, repeats: bool) -> None:
    """`read_runs` puts every body back at its place: runs out of file order, crossing the
    adopted part, empty runs, in batches smaller than a run; with `repeats`, a reference in
    several runs and twice in one (each body read once, found by its reference)."""
    spill, refs, expected, _ = adopted(tmp_path)
    rng = random.Random(11)
    chosen = rng.sample(range(len(refs)), 2000)
    cuts = sorted(rng.sample(range(2000), 8))
    picks = [chosen[a:b] for a, b in zip([0, *cuts], [*cuts, 2000], strict=True)]
    picks.append([])
    if repeats:
        picks.append([5, 5, 4000, 5, chosen[0]])
    spill.flush()  # (else each run is read alone: `read_many`)
    with mock.patch.object(spillread, "SORTED_BATCH", 64):
        read = spill.read_runs([[refs[i] for i in run] for run in picks])
    assert read == [[expected[i] for i in run] for run in picks]
    spill.close()


def test_a_helper_reads_the_adopted_file_through_the_descriptors_it_is_passed(
    tmp_path: Path,
) -> None:
    """The second writer (writehalf.py) reads the spill from its own file and its parts'."""
    spill, refs, expected, _ = adopted(tmp_path)
    fd = spill.fileno()
    assert fd is not None
    parts = [
        Part(base, size, os.fdopen(os.dup(part_fd), "rb", buffering=0))
        for part_fd, base, size in spill.parts()
    ]
    helper = Spill.written(os.fdopen(os.dup(fd), "rb", buffering=0), spill.size, parts)
    assert helper.read_runs([refs]) == [expected]
    helper.close()
    spill.close()


def test_a_spill_cut_short_is_refused(tmp_path: Path) -> None:
    spill, theirs = Spill(tmp_path), Spill(tmp_path)
    theirs.add_many(bodies("b", 100, 10))
    theirs.flush()
    assert theirs._file is not None
    with pytest.raises(EpgError, match="cut short"):
        spill.adopt(theirs._file, theirs.size + 1)
    assert spill.parts() == []
    spill.close()
    theirs.close()


def test_past_a_full_disk_an_adopted_spill_is_copied_into_memory(tmp_path: Path) -> None:
    """Once the disk refused bytes, the rest are held in memory: the helper's with them."""
    spill, theirs = Spill(tmp_path), Spill(tmp_path)
    spill._file = FullDisk(spill._file, room=1000)  # type: ignore[assignment]
    first, second = bodies("a", 300, 20), bodies("b", 300, 20)
    refs = spill.add_many(first)
    spill.flush()
    assert spill.in_memory
    theirs_refs = theirs.add_many(second)
    theirs.flush()
    assert theirs._file is not None
    shift = spill.adopt(theirs._file, theirs.size)
    theirs.close()
    assert spill.parts() == []
    assert spill.read_many(refs + [r + shift for r in theirs_refs]) == first + second
    spill.close()
