"""A device's spilled bodies read a group of channels at a time in file order (`read_runs`,
`GroupedReader`): the same bytes as reading each channel on its own, and few pages resident."""

from __future__ import annotations

import mmap
from pathlib import Path
from unittest import mock

import pytest

from plextuner.epg import spillread
from plextuner.epg.grouped import GroupedReader
from plextuner.epg.kept import KeptList
from plextuner.epg.spill import Spill
from tests.unit.test_guide_spill import FullDisk


def interleaved(spill: Spill, channels: int, slots: int, size: int) -> list[KeptList]:
    """A guide spelled time by time: every channel's body at one time, then the next time."""
    lists = [KeptList() for _ in range(channels)]
    for slot in range(slots):
        for c, kept in enumerate(lists):
            body = f"<title>{c}@{slot}</title>".encode().ljust(size, b"x")
            kept.append(slot * 60.0 + 1_700_000_000, None, spill.add(body))
    return lists


@pytest.mark.parametrize("room", [None, 0, 3000])
def test_runs_read_together_are_each_read_alone(tmp_path: Path, room: int | None) -> None:
    """On a disk with room, a full one or one that filled midway (then read one at a time),
    with empty runs and runs of one, in small batches."""
    spill = Spill(tmp_path)
    if room is not None:
        spill._file = FullDisk(spill._file, room=room)  # type: ignore[assignment]
    lists = interleaved(spill, 13, 40, 50)
    runs = [kept.bodies for kept in lists] + [KeptList().bodies, lists[3].bodies[5:6]]
    with mock.patch.object(spillread, "SORTED_BATCH", 7):
        assert spill.read_runs(runs) == [spill.read_many(run) for run in runs]
        assert spill.read_runs([]) == []
    spill.close()


def test_the_reader_hands_out_each_channel_in_any_order(tmp_path: Path) -> None:
    """In the order announced, groups are read ahead; out of it, a channel is read alone."""
    spill = Spill(tmp_path)
    lists = interleaved(spill, 30, 20, 40)
    reads: list[int] = []
    real = spill.read_runs

    def read_runs(runs: list[list[int]]) -> list[list[bytes]]:
        reads.append(len(runs))
        return real(runs)

    with (
        mock.patch.object(GroupedReader, "GROUP_BODIES", 100),
        mock.patch.object(spill, "read_runs", read_runs),
    ):
        reader = GroupedReader(spill, lists)
        for kept in lists:
            assert reader.bodies(kept) == spill.read_many(kept.bodies)
        assert reads == [5] * 6  # 100 bodies a group: five channels of 20
        reader = GroupedReader(spill, lists)
        for kept in [lists[2], lists[0], *lists[1:]]:
            assert reader.bodies(kept) == spill.read_many(kept.bodies)
    spill.close()


def resident_kb(spill: Spill) -> int:
    """Pages of the spill's mapping resident in this process (smaps), in KB."""
    assert spill._file is not None
    inode = str(Path(f"/proc/self/fd/{spill._file.fileno()}").stat().st_ino)
    rss, ours = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:  # a mapping's header
            ours = fields[4] == inode
        elif ours and fields[0] == "Rss:":
            rss += int(fields[1])
    return rss


def test_a_device_read_in_file_order_holds_few_pages(tmp_path: Path) -> None:
    """A time-by-time guide's device: read a channel at a time, each body maps the kernel's
    window around it until the next hand-back; in file order, the groups hand them back as
    they go. Resident pages of the mapping stay under 4 MB after each channel."""
    spill = Spill(tmp_path)
    lists = interleaved(spill, 600, 200, 120)  # 14 MB, a channel's bodies 72 KB apart
    spill.flush()
    reader = GroupedReader(spill, lists)
    seen: list[int] = []
    real = spill._read_ascending

    def batch(refs: list[int], ats: list[int], ends: list[int]) -> list[bytes]:
        bodies = real(refs, ats, ends)  # each batch, before its hand-back
        seen.append(resident_kb(spill))
        return bodies

    with mock.patch.object(spill, "_read_ascending", batch):
        read = [reader.bodies(kept) for kept in lists]
    assert len(seen) >= 600 * 200 // spillread.SORTED_BATCH
    assert 0 < max(seen) <= 4096
    assert read == [spill.read_many(kept.bodies) for kept in lists]
    assert spill._map is not None
    spill._map.madvise(mmap.MADV_DONTNEED)
    with mock.patch.object(spillread, "READS_PER_RELEASE", 1 << 30):
        for kept in lists[:20]:  # what reading alone maps: one page a body at least
            spill.read_many(kept.bodies)
    assert resident_kb(spill) > 4096  # (fault-around: a 64 KB window a body, not one page)
    spill.close()
