"""A channel's kept programmes with their numbers spilled (chunked.py): the same programmes in
the same order as a `KeptList` in memory, across chunks, a helper's half and a full disk."""

from __future__ import annotations

import io
from array import array
from pathlib import Path

import pytest

from plextuner.epg import chunked
from plextuner.epg.chunked import CHUNK, SpilledList
from plextuner.epg.kept import NO_STOP, OFFSET_HIGH, OFFSET_LOW, KeptList
from plextuner.epg.spill import Spill

NOW = 1_765_000_000.0


def fill(n: int, spill: Spill, first: int = 0) -> tuple[SpilledList, KeptList]:
    """`n` programmes (every third without a stop) in both forms, bodies in `spill`."""
    spilled, reference = SpilledList(), KeptList()
    for i in range(first, first + n):
        stop = None if i % 3 == 0 else NOW + 60 * i + 30
        body = spill.add(f"<title>{i}</title>".encode())
        spilled.append(NOW + 60 * i, stop, body, spill)
        reference.append(NOW + 60 * i, stop, body)
    return spilled, reference


@pytest.mark.parametrize("n", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_loaded_is_the_list_appended(tmp_path: Path, n: int) -> None:
    spill = Spill(tmp_path)
    spilled, reference = fill(n, spill)
    assert len(spilled) == n
    assert len(spilled.held) < 2 * CHUNK  # at most a chunk's worth held in memory (2 a programme)
    assert list(spilled.loaded(spill)) == list(reference)
    spilled.spill_to(spill)
    assert len(spilled.held) == 0 and len(spilled) == n
    assert spilled.spilled == -(-n // CHUNK)
    loaded = spilled.loaded(spill)
    assert list(loaded) == list(reference)
    assert spill.read_many(loaded.bodies) == [f"<title>{i}</title>".encode() for i in range(n)]
    spill.close()


def test_a_helpers_half_follows_rebased(tmp_path: Path) -> None:
    """The reader's programmes (some still in memory), then the helper's, read from where the
    reader's spill adopted the helper's file: every body comes back as written."""
    spill, theirs = Spill(tmp_path), Spill(tmp_path)
    mine, reference = fill(CHUNK + 5, spill)
    other, _ = fill(2 * CHUNK + 9, theirs, first=CHUNK + 5)
    other.spill_to(theirs)
    out = io.BytesIO()
    other.write_to(out)
    out.seek(0)
    answered = SpilledList.read_from(out, other.spilled, len(other))
    theirs.flush()
    assert theirs._file is not None
    shift = spill.adopt(theirs._file, theirs.size)
    # An answer is all on disk: sealed, no empty array of its own (50,000 of them in the
    # reader as it takes a helper's half), and the list it ends is sealed with it
    assert answered.held is chunked._SEALED_Q
    mine.extend(answered, shift, spill)
    assert len(mine) == 3 * CHUNK + 14
    assert mine.held is answered.held
    with pytest.raises(TypeError, match="sealed"):
        mine.append(NOW, None, 0, spill)
    loaded = mine.loaded(spill)
    expected = [f"<title>{i}</title>".encode() for i in range(3 * CHUNK + 14)]
    assert spill.read_many(loaded.bodies) == expected
    assert [k.start for k in loaded] == [NOW + 60 * i for i in range(3 * CHUNK + 14)]
    assert [k.start for k in loaded][: CHUNK + 5] == [k.start for k in reference]
    with pytest.raises(ValueError, match="not spilled"):
        fill(1, spill)[0].write_to(io.BytesIO())  # an answer holds only what is on disk
    spill.close()
    theirs.close()


def test_load_all_reads_a_devices_lists_at_once_as_each_alone(tmp_path: Path) -> None:
    """A device's channels loaded in one read: each list as `loaded` gives it, in order,
    whatever mix of empty lists, lists still in memory and lists with a helper's half."""
    spill, theirs = Spill(tmp_path), Spill(tmp_path)
    sizes = [CHUNK + 3, 0, 2 * CHUNK, 5, 3 * CHUNK + 1]
    lists, references, first = [], [], 0
    for n in sizes:
        spilled, reference = fill(n, spill, first=first)
        lists.append(spilled)
        references.append(list(reference))
        first += n
    # The first and the last get a helper's half, from its own spill, adopted and rebased
    halves = [fill(CHUNK + 2, theirs, first=1000)[0], fill(7, theirs, first=2000)[0]]
    for half in halves:
        half.spill_to(theirs)
    theirs.flush()
    assert theirs._file is not None
    shift = spill.adopt(theirs._file, theirs.size)
    lists[0].extend(halves[0], shift, spill)
    lists[-1].extend(halves[1], shift, spill)
    lists[2].spill_to(spill)  # every programme of this one on disk
    alone = [list(x.loaded(spill)) for x in lists]
    together = [list(x) for x in chunked.load_all(lists, spill)]
    assert together == alone
    assert [len(x) for x in together] == [CHUNK + 3 + CHUNK + 2, 0, 2 * CHUNK, 5, 3 * CHUNK + 8]
    assert [k.start for k in together[0][: CHUNK + 3]] == [k.start for k in references[0]]
    bodies = spill.read_many(chunked.load_all(lists[-1:], spill)[0].bodies)
    expected = [f"<title>{i}</title>" for i in range(first - 3 * CHUNK - 1, first)]
    assert bodies == [
        b.encode() for b in expected + [f"<title>{2000 + i}</title>" for i in range(7)]
    ]
    assert chunked.load_all([], spill) == []
    spill.close()
    theirs.close()


def test_a_list_an_answer_cut_short_cannot_be_read(tmp_path: Path) -> None:
    spill = Spill(tmp_path)
    spilled, _ = fill(2 * CHUNK, spill)
    out = io.BytesIO()
    spilled.write_to(out)
    with pytest.raises(EOFError):
        SpilledList.read_from(io.BytesIO(out.getvalue()[:-8]), 2, 2 * CHUNK)
    spill.close()


def test_a_full_disk_keeps_the_chunks_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks the disk refused are held in memory with the bodies after them (spill.py)."""
    monkeypatch.setattr(chunked, "CHUNK", 4)
    spill = Spill(tmp_path)

    class Full:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        def write(self, data: memoryview) -> int:
            raise OSError(28, "No space left on device")

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

    spilled, reference = fill(3 * CHUNK, spill)
    spill._file = Full(spill._file)  # type: ignore[assignment]
    more, more_reference = fill(10, spill, first=3 * CHUNK)
    spilled.extend(more, 0, spill)
    spill.flush()
    assert spill.in_memory
    assert list(spilled.loaded(spill)) == list(reference) + list(more_reference)
    spill.close()


def test_a_sealed_list_reads_the_same_and_refuses_more(tmp_path: Path) -> None:
    """Sealed (its source read), a list keeps its programmes with no arrays of its own held;
    the empties it shares refuse growth, so a stray append cannot reach every channel."""
    spill = Spill(tmp_path)
    first, reference = fill(2 * CHUNK + 3, spill)
    second, _ = fill(CHUNK + 1, spill, first=100)
    first.seal(spill)
    second.seal(spill)
    assert len(first) == 2 * CHUNK + 3 and first.spilled == 3
    assert first.held is second.held
    assert list(first.loaded(spill)) == list(reference)
    for grow in (
        lambda: first.append(NOW, None, 0, spill),
        lambda: first.held.extend([1]),
        lambda: first.held.frombytes(b"\0" * 8),
        lambda: first.held.insert(0, 1),
    ):
        with pytest.raises(TypeError, match="sealed"):
            grow()
    assert len(second.held) == 0 and len(second) == CHUNK + 1
    out = io.BytesIO()
    first.write_to(out)  # a sealed list is all on disk: it can be answered
    assert len(out.getvalue()) == first.spilled * SpilledList.CHUNK_BYTES
    spill.close()


def test_lists_share_their_empty_chunks_until_one_spills(tmp_path: Path) -> None:
    """A list that has spilled nothing holds no chunks array of its own (tens of thousands of
    channels a half hold a chunk or less); its first spill gives it one, the others keep the
    shared empty one, and what each reads back is its own."""
    spill = Spill(tmp_path)
    small, small_ref = fill(CHUNK - 1, spill)
    other, _ = fill(2, spill, first=50)
    assert small.chunks is other.chunks and len(small.chunks) == 0
    big, big_ref = fill(CHUNK + 2, spill, first=100)
    assert big.chunks is not small.chunks and big.spilled == 1
    assert len(small.chunks) == 0 and small.spilled == 0
    small.extend(other, 0, spill)  # spills `small` first: now its own
    assert small.chunks is not other.chunks and small.spilled == 1
    assert len(other.chunks) == 0 and other.chunks is SpilledList().chunks
    assert list(big.loaded(spill)) == list(big_ref)
    assert list(small.loaded(spill))[: CHUNK - 1] == list(small_ref)
    big.spill_to(spill)
    out = io.BytesIO()
    big.write_to(out)
    out.seek(0)
    again = SpilledList.read_from(out, big.spilled, len(big))
    assert again.chunks is not SpilledList().chunks
    assert list(again.loaded(spill)) == list(big_ref)
    spill.close()


def test_packed_times_come_back_as_held_at_every_extreme() -> None:
    """A start and a stop packed in one number (`pack_times`) read back whole: negative
    offsets, the range's ends and NO_STOP, in either half."""
    values = [0, 1, -1, OFFSET_LOW, OFFSET_HIGH, NO_STOP, 123_456_789, -987_654_321]
    pairs = [(a, b) for a in values if a != NO_STOP for b in values]
    times = array("q", [chunked.pack_times(a, b) for a, b in pairs])
    starts, stops = chunked.unpack_times(times)
    assert list(zip(starts, stops, strict=True)) == pairs


def test_programmes_still_held_are_rebased_when_taken(tmp_path: Path) -> None:
    """A list taken with programmes not spilled yet (and a shift): their bodies are rebased as
    the spilled ones are, and the list taken from is left as it was."""
    spill, theirs = Spill(tmp_path), Spill(tmp_path)
    mine, reference = fill(5, spill)
    other, other_reference = fill(CHUNK + 3, theirs, first=5)  # a chunk spilled, 3 held
    held_before = list(other.held)
    theirs.flush()
    assert theirs._file is not None
    shift = spill.adopt(theirs._file, theirs.size)
    assert shift
    mine.extend(other, shift, spill)
    assert list(other.held) == held_before
    loaded = mine.loaded(spill)
    assert [k.start for k in loaded] == [k.start for k in [*reference, *other_reference]]
    assert [k.stop for k in loaded] == [k.stop for k in [*reference, *other_reference]]
    assert spill.read_many(loaded.bodies) == [
        f"<title>{i}</title>".encode() for i in range(CHUNK + 8)
    ]
    spill.close()
    theirs.close()
