"""A channel's kept programmes with their numbers spilled (chunked.py): the same programmes in
the same order as a `KeptList` in memory, across chunks, a helper's half and a full disk."""

from __future__ import annotations

import io
from array import array
from pathlib import Path

import pytest

from plextuner.epg import chunked
from plextuner.epg.chunked import CHUNK, SpilledList, read_records, seal_all, write_records
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


def answered(lists: list[SpilledList], shift: int) -> list[SpilledList]:
    """`lists` (sealed) as a helper answers them and its reader takes them, rebased by `shift`."""
    out = io.BytesIO()
    write_records(lists, out)
    out.seek(0)
    return list(read_records(out, [(x.spilled, len(x)) for x in lists], shift))


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
    other.seal(theirs)
    theirs.flush()
    assert theirs._file is not None
    shift = spill.adopt(theirs._file, theirs.size)
    (answer,) = answered([other], shift)
    # An answer is all on disk: sealed, no empty array of its own (50,000 of them in the
    # reader as it takes a helper's half), and the list it ends is sealed with it
    assert answer.held is chunked._SEALED_Q
    with pytest.raises(ValueError, match="not spilled"):
        mine.follow(answer)  # (the reader's own spilled first: `seal_all`)
    seal_all([mine], spill)
    mine.follow(answer)
    assert len(mine) == 3 * CHUNK + 14
    assert mine.held is answer.held
    with pytest.raises(TypeError, match="sealed"):
        mine.append(NOW, None, 0, spill)
    loaded = mine.loaded(spill)
    expected = [f"<title>{i}</title>".encode() for i in range(3 * CHUNK + 14)]
    assert spill.read_many(loaded.bodies) == expected
    assert [k.start for k in loaded] == [NOW + 60 * i for i in range(3 * CHUNK + 14)]
    assert [k.start for k in loaded][: CHUNK + 5] == [k.start for k in reference]
    with pytest.raises(ValueError, match="not spilled"):
        write_records([fill(1, spill)[0]], io.BytesIO())  # an answer holds only what is on disk
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
    seal_all(halves, theirs)
    theirs.flush()
    assert theirs._file is not None
    shift = spill.adopt(theirs._file, theirs.size)
    seal_all([lists[0], lists[-1]], spill)
    for mine, answer in zip([lists[0], lists[-1]], answered(halves, shift), strict=True):
        mine.follow(answer)
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
    seal_all(lists, spill)  # as the writer loads them: every list sealed, none holding any
    assert [list(x) for x in chunked.load_all(lists, spill)] == alone
    spill.close()
    theirs.close()


def test_a_list_an_answer_cut_short_cannot_be_read(tmp_path: Path) -> None:
    spill = Spill(tmp_path)
    spilled, _ = fill(2 * CHUNK, spill)
    spilled.seal(spill)
    out = io.BytesIO()
    write_records([spilled], out)
    with pytest.raises(EOFError):
        list(read_records(io.BytesIO(out.getvalue()[:-8]), [(2, 2 * CHUNK)], 0))
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
    seal_all([spilled, more], spill)
    spilled.follow(more)
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
    write_records([first], out)  # a sealed list is all on disk: it can be answered
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
    small.spill_to(spill)  # its first chunk: now its own
    assert small.chunks is not other.chunks and small.spilled == 1
    assert len(other.chunks) == 0 and other.chunks is SpilledList().chunks
    assert list(big.loaded(spill)) == list(big_ref)
    assert list(small.loaded(spill)) == list(small_ref)
    big.seal(spill)
    (again,) = answered([big], 0)
    assert again.chunks is not SpilledList().chunks
    (empty,) = answered([SpilledList()], 0)  # an answered list with no chunks shares the empty
    assert empty.chunks is SpilledList().chunks and len(empty) == 0
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


def test_seal_all_spills_what_every_list_holds_in_one_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each list sealed as `seal` leaves it, whatever it held (nothing, some, a chunk and
    some, sealed already), its held programmes spilled by one `add_all`, none by `add`."""
    spill = Spill(tmp_path)
    sizes = [0, 3, CHUNK, CHUNK + 5, 2 * CHUNK + 1]
    lists, references = [], []
    for k, n in enumerate(sizes):
        spilled, reference = fill(n, spill, first=100 * k)
        lists.append(spilled)
        references.append(list(reference))
    lists[2].seal(spill)
    calls: list[int] = []
    monkeypatch.setattr(spill, "add", lambda body: calls.append(-1))
    add_all = spill.add_all

    def counted(bodies: list[bytes]) -> list[int]:
        calls.append(len(bodies))
        return add_all(bodies)

    monkeypatch.setattr(spill, "add_all", counted)
    seal_all(lists, spill)
    assert calls == [3]  # the three lists holding programmes not spilled yet
    assert all(x.held is chunked._SEALED_Q for x in lists)
    assert [len(x) for x in lists] == sizes
    assert [list(x.loaded(spill)) for x in lists] == references
    spill.close()


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_a_lists_span_is_its_first_and_last_programmes_times(n: int) -> None:
    """`KeptList.span`, what a guide's fingerprint reads of each channel, is what its first
    and last `Kept` say (a last one without a stop among them: every third has none)."""
    kept = KeptList()
    for i in range(n):
        kept.append(NOW + 60 * i, None if (i + 1) % 3 == 0 else NOW + 60 * i + 30, i)
    assert kept.span() == (kept[0].start, kept[-1].start, kept[-1].stop)


@pytest.mark.parametrize("many", [10**9, 1])
def test_programmes_the_parser_read_spill_as_a_runs_do(tmp_path: Path, many: int) -> None:
    """A programme read by the parser (`keep_programme` of a `Programme`) is held by the same
    rule as a run read from its bytes: HELD numbers a list, HELD_MANY with `chunked.MANY`
    channels kept; the list reads back the same either way."""
    from unittest import mock

    from plextuner.epg.bodies import BodyRenderer, keep_programme
    from plextuner.epg.model import Programme

    spill: Spill = Spill(tmp_path)
    packed: dict[str, SpilledList] = {}
    programmes = [
        Programme("c", 1.7e9 + 3600 * i, 1.7e9 + 3600 * (i + 1), f"T{i}") for i in range(20)
    ]
    with mock.patch.object(chunked, "MANY", many):
        for p in programmes:
            keep_programme(p, True, spill, packed, BodyRenderer())
    kept = packed["c"]
    assert kept.spilled == (2 if many == 1 else 1)  # chunks of 8 or 16 programmes so far
    assert [k.start for k in kept.loaded(spill)] == [p.start for p in programmes]
    spill.close()
