"""Kept programmes spilled to disk: the guides written are the ones written from memory."""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from plextuner.buckets.models import Device, LineupEntry
from plextuner.config import Settings, load_settings
from plextuner.epg import spill as spill_module
from plextuner.epg import spillread
from plextuner.epg.chunked import SpilledList
from plextuner.epg.guidedata import GuideData
from plextuner.epg.kept import KeptList
from plextuner.epg.spill import Spill
from plextuner.epg.stage import parse_source
from plextuner.epg.worker import GuideJob, run_guide_job
from plextuner.epg.writeall import write_all
from plextuner.errors import EpgError
from plextuner.ingest.models import Channel
from plextuner.stages import RefreshContext
from plextuner.state.aggregate import read_guide

DATA = Path(__file__).parent.parent / "data"
WINDOW = (
    datetime(2030, 1, 1, tzinfo=UTC).timestamp(),
    datetime(2030, 1, 2, tzinfo=UTC).timestamp(),
)
HOUR = 3600.0


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y%m%d%H%M%S +0000")


def hostile_guide(path: Path, offset: float = 0.0) -> Path:
    """Values every escape path meets, sub-titles to fold, a missing stop, a repeat."""
    values = ["plain", "a & b", 'say "hi" <now>', "tab\there", "ctl\x01char", "ü € 😀"]
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<tv>']
    parts += [f'<channel id="c{c}"><display-name>C {c}</display-name></channel>' for c in range(3)]
    for i, value in enumerate(values * 3):
        t = WINDOW[0] + offset + i * HOUR
        text = value.replace("&", "&amp;").replace("<", "&lt;").replace("\x01", "")
        stop = f' stop="{stamp(t + HOUR)}"' if i % 5 else ""
        episode = f'<episode-num system="onscreen">E{i}</episode-num>' if i % 2 else ""
        parts.append(
            f'<programme start="{stamp(t)}"{stop} channel="c{i % 3}">'
            f"<title>{text}</title><sub-title>{text} part</sub-title><desc>{text}</desc>"
            f'<category>{text}</category><icon src="http://i.invalid/{i}?a=1&amp;b=2"/>'
            f"{episode}<new/></programme>"
        )
    parts.append("</tv>\n")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def devices() -> list[Device]:
    def entry(number: str, gid: str, shift: float | None) -> LineupEntry:
        channel = Channel(key=number, name=f"N{number}", tvg_id=gid, group="", provider="p")
        channel.tvg_shift = shift
        return LineupEntry(number, channel)

    first = [entry("1", "c0", None), entry("2", "c1", -2.0), entry("3", "c2", None)]
    return [
        Device("d0", "d0", "D0", "1500000C", 5004, 2, True, first),
        Device("d1", "d1", "D1", "1500000D", 5005, 2, True, [entry("4", "c0", 1.5)]),
    ]


def guide_job(settings: Settings, guide: Path) -> GuideJob:
    """The guide job over `guide` for `devices()`, run in this process (on the live entries)."""
    return GuideJob(
        settings=settings,
        manual={},
        sources=[(str(guide), "g")],
        configured=True,
        window=WINDOW,
        devices=[],
        live=devices(),
    )


def written(tmp: Path, spilled: bool, fold: bool) -> dict[str, bytes]:
    """The device guides from two sources (the second overlapping the first)."""
    data_dir = tmp / ("spilled" if spilled else "memory") / str(fold)
    settings = load_settings(
        None, {"data_dir": str(data_dir), "epg": {"fold_subtitle": fold}}, env={}
    )
    spill = Spill(settings.paths.epg_cache) if spilled else None
    data = GuideData(spill=spill, fold=fold)
    ctx = RefreshContext(settings=settings, fetcher=None, previous=None, devices=devices())  # type: ignore[arg-type]
    entries = [e for d in ctx.devices for e in d.entries]
    for n, offset in enumerate((0.0, 1800.0)):
        parse_source(hostile_guide(tmp / f"g{n}.xml", offset), f"g{n}", data, entries, WINDOW)
    with mock.patch("plextuner.epg.writer.time.time", return_value=WINDOW[0]):
        write_all(ctx, data, WINDOW, fresh=True)
    return {p.name: read_guide(p) for p in sorted(settings.paths.guides.glob("*.xml"))}


@pytest.mark.parametrize("fold", [True, False])
def test_spilled_guides_are_the_guides_written_from_memory(tmp_path: Path, fold: bool) -> None:
    """Two sources, shifts either way, folded sub-titles, escapes of every kind, a programme
    without a stop: the bytes are the same whether the programmes were held as objects or
    spilled to disk and read back."""
    from_memory = written(tmp_path, spilled=False, fold=fold)
    spilled = written(tmp_path, spilled=True, fold=fold)
    assert set(from_memory) == {"d0.xml", "d1.xml"}
    assert spilled == from_memory
    assert b"<programme" in from_memory["d1.xml"]
    assert (b"part</title>" in from_memory["d0.xml"]) is fold  # the sub-title folded


def test_spill_reads_back_what_it_was_given(tmp_path: Path) -> None:
    """References survive appends after reads (the file is mapped afresh) and the periodic
    release of touched pages; the temporary file is gone from the directory at once."""
    spill = Spill(tmp_path)
    bodies = [f"<title>{i}</title>".encode() * (i % 7 + 1) for i in range(50)]
    with mock.patch.object(spillread, "READS_PER_RELEASE", 3):
        refs = [spill.add(b) for b in bodies[:20]]
        assert [spill.read(r) for r in refs] == bodies[:20]
        refs += [spill.add(b) for b in bodies[20:]]
        assert [spill.read(r) for r in reversed(refs)] == bodies[::-1]
    assert not os.listdir(tmp_path)  # unlinked from the start
    spill.close()
    with pytest.raises(EpgError):
        spill.add(b"x")


class FullDisk:
    """A file that takes `room` bytes (the last write partly), then refuses: ENOSPC."""

    def __init__(self, real: Any, room: int) -> None:
        self.real, self.room = real, room

    def write(self, data: memoryview) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        taken = bytes(data[: self.room])
        self.room -= len(taken)
        return int(self.real.write(taken))

    def fileno(self) -> int:
        return int(self.real.fileno())

    def seek(self, at: int) -> int:
        return int(self.real.seek(at))

    def close(self) -> None:
        self.real.close()


def test_a_disk_that_fills_keeps_the_rest_in_memory(tmp_path: Path) -> None:
    """When the disk refuses a write, what reached it is read from the file, the rest
    (a body cut by a partial write included) from memory; every body comes back whole."""
    spill = Spill(tmp_path)
    spill._file = FullDisk(spill._file, room=1000)  # type: ignore[assignment]
    bodies = [f"<title>{i}</title><desc>{'x' * (i % 50)}</desc>".encode() for i in range(200)]
    with mock.patch.object(spill_module, "FLUSH_BYTES", 64):
        refs = [spill.add(b) for b in bodies]
        assert spill.in_memory > 0
        assert [spill.read(r) for r in refs] == bodies
        assert [spill.read(r) for r in reversed(refs)] == bodies[::-1]
    spill.close()


@pytest.mark.parametrize("room", [None, 0, 1000, 5000])
def test_many_at_once_is_one_at_a_time(tmp_path: Path, room: int | None) -> None:
    """`add_many` and `read_many` give the references and bytes `add` and `read` give, on a
    disk with room, one full from the start (all held in memory), or one that fills midway
    (a body cut by a partial write included), with pages released between reads."""
    bodies = [f"<title>{i}</title><desc>{'x' * (i % 50)}</desc>".encode() for i in range(300)]
    runs = [bodies[:7], [], bodies[7:150], bodies[150:151], bodies[151:]]
    spills = []
    for many in (False, True):
        spill = Spill(tmp_path)
        if room is not None:
            spill._file = FullDisk(spill._file, room=room)  # type: ignore[assignment]
        with (
            mock.patch.object(spill_module, "FLUSH_BYTES", 64),
            mock.patch.object(spillread, "READS_PER_RELEASE", 5),
        ):
            refs = [
                r for run in runs for r in (spill.add_many(run) if many else map(spill.add, run))
            ]
            assert spill.read_many(refs) == bodies
            assert spill.read_many(refs[::-1]) == [spill.read(r) for r in refs[::-1]]
        spills.append((refs, spill.in_memory))
        spill.close()
    assert spills[0] == spills[1]


def test_the_spill_writes_small_pieces(tmp_path: Path) -> None:
    """However much comes at once (a run of programmes, another spill adopted), no write is
    over FLUSH_BYTES: the page cache holds a big write in large folios, and reading one body
    back then maps its whole folio into the writer's memory."""
    sizes: list[int] = []

    class Recording(FullDisk):
        def write(self, data: memoryview) -> int:
            sizes.append(len(data))
            return super().write(data)

    spill = Spill(tmp_path)
    spill._file = Recording(spill._file, room=1 << 30)  # type: ignore[assignment]
    bodies = [b"x" * 300] * 2000
    refs = spill.add_many(bodies)
    other = Spill(tmp_path)
    other.add_many(bodies)
    other.flush()
    assert other._file is not None
    shift = spill.adopt(other._file, other.size)
    spill.flush()
    assert sizes and max(sizes) <= spill_module.FLUSH_BYTES
    assert spill.read_many(refs) == bodies
    assert spill.read_many([r + shift for r in refs]) == bodies
    spill.close()
    other.close()


def test_kept_list_packs_times_and_references() -> None:
    kept = KeptList()
    kept.append(1.0, None, 7)
    kept.append(2.0, 3.0, 1 << 40)
    assert [(k.start, k.stop, k.body) for k in kept] == [(1.0, None, 7), (2.0, 3.0, 1 << 40)]
    assert len(kept) == 2


def test_kept_times_are_exact_whole_seconds_in_16_bytes(tmp_path: Path) -> None:
    """XMLTV times (whole seconds) come back exactly, Oct 1955 to Dec 2091; a stop of 0 is none
    (as `if p.stop` reads it); a stop past 2091 (garbage) is held there; the list crosses to
    the helper's parent at 16 bytes a programme."""
    now = datetime(2026, 12, 5, 14, 30, tzinfo=UTC).timestamp()
    far = datetime(2200, 1, 1, tzinfo=UTC).timestamp()
    kept = KeptList()
    rows = [(now, now + 1800), (now + 1800, None), (now + 3600, 0.0), (-441763200.0, 0.0)]
    for i, (start, stop) in enumerate(rows):
        kept.append(start, stop, i)
    kept.append(now + 7200, far, 9)
    assert [(k.start, k.stop) for k in kept][:4] == [
        (now, now + 1800), (now + 1800, None), (now + 3600, None), (-441763200.0, None)
    ]  # fmt: skip
    assert kept[4].stop is not None and datetime.fromtimestamp(kept[4].stop, UTC).year >= 2091
    path = tmp_path / "packed"
    with path.open("wb") as out:
        kept.write_to(out)
    assert path.stat().st_size == 5 * 16 == 5 * KeptList.ITEM_BYTES
    with path.open("rb") as fh:
        again = KeptList.read_from(fh, 5)
    assert list(again) == list(kept)


def test_an_unwritable_data_dir_keeps_programmes_in_memory(tmp_path: Path) -> None:
    """Where the spill cannot be made, the guide job says so and writes the guides anyway."""
    settings = load_settings(None, {"data_dir": str(tmp_path / "data")}, env={})
    settings.paths.epg_cache.parent.mkdir(parents=True)
    settings.paths.epg_cache.write_text("a file where the cache directory should be")
    guide = hostile_guide(tmp_path / "g.xml")
    result = run_guide_job(guide_job(settings, guide))
    assert any("on disk" in reason for reason in result.failed)
    assert b"<programme" in read_guide(settings.paths.guide("d0"))


def test_with_no_guide_source_nothing_is_spilled(tmp_path: Path) -> None:
    settings = load_settings(None, {"data_dir": str(tmp_path / "data")}, env={})
    job = GuideJob(
        settings=settings,
        manual={},
        sources=[],
        configured=False,
        window=WINDOW,
        devices=[],
        live=devices(),
    )
    with mock.patch("plextuner.epg.spill.tempfile.TemporaryFile") as made:
        run_guide_job(job)
    made.assert_not_called()


def test_a_spill_takes_a_directory_or_a_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="a directory or a file"):
        Spill()
    with tmp_path.joinpath("f").open("w+b", buffering=0) as fh, pytest.raises(ValueError):
        Spill(tmp_path, file=fh)


def test_a_run_read_from_bytes_packs_its_times_as_append_does(tmp_path: Path) -> None:
    """Programmes read from their bytes (plain.py makes their kept times once a slot) hold the
    same numbers as `KeptList.append` of the parser's times, for ordinary, missing, zero,
    far-future (held at the range's end) and zero-length stops."""
    import io

    from plextuner.epg.bodies import BodyRenderer, keep_programme
    from plextuner.epg.emit import RenderedRun
    from plextuner.epg.model import ParseOutcome, Programme
    from plextuner.epg.xmltv import iter_guide

    fmt = "%Y%m%d%H%M%S +0000"
    now = datetime(2026, 12, 5, 14, 30, tzinfo=UTC)
    stops = [now.replace(minute=59).strftime(fmt), None, "19700101000000 +0000",
             "22000101000000 +0000", "20261205143000 +0000"]  # fmt: skip
    body = '<?xml version="1.0" encoding="UTF-8"?>\n<tv><channel id="c"/>\n' + "".join(
        f'<programme start="{now.replace(second=i).strftime(fmt)}"'
        + (f' stop="{stop}"' if stop else "")
        + f' channel="c"><title>x{i}</title></programme>\n'
        for i, stop in enumerate(stops)
    )
    window = (now.timestamp() - 7200, now.timestamp() + 86400)

    def read(fold: bool | None) -> list[Any]:
        guide = io.BytesIO((body + "</tv>").encode())
        return list(iter_guide(guide, "t", ParseOutcome("t"), lambda: {"c"}, window, fold=fold))

    items = [item for item in read(False) if isinstance(item, RenderedRun | Programme)]
    assert sum(len(i) for i in items if isinstance(i, RenderedRun)) == 5  # from their bytes
    spill = Spill(tmp_path)
    packed: dict[str, SpilledList] = {}
    for item in items:
        keep_programme(item, False, spill, packed, BodyRenderer())
    reference = KeptList()
    for p in read(None):
        if isinstance(p, Programme):
            reference.append(p.start, p.stop, 0)
    assert len(reference) == len(stops)
    kept = packed["c"].loaded(spill)
    assert list(kept.starts) == list(reference.starts)
    assert list(kept.stops) == list(reference.stops)
    assert [k.stop is None for k in kept] == [False, True, True, False, False]
    spill.close()


def plain_guide(path: Path, per_channel: int) -> Path:
    """Three channels, `per_channel` programmes each, interleaved by time (a generated guide's
    order) and spelled as the writer writes them (read a block at a time, plain.py)."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<tv>']
    parts += [f'<channel id="c{c}"><display-name>C {c}</display-name></channel>' for c in range(3)]
    for i in range(per_channel):
        t = WINDOW[0] + i * HOUR / 2
        parts += [
            f'<programme start="{stamp(t)}" stop="{stamp(t + HOUR / 2)}" channel="c{c}">'
            f"<title>Show {i} on {c}</title></programme>"
            for c in range(3)
        ]
    path.write_text("\n".join([*parts, "</tv>\n"]), encoding="utf-8")
    return path


def test_many_channels_hold_half_as_many_programmes_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `chunked.MANY` channels kept, each list spills after HELD_MANY numbers, not HELD
    (what they all hold at once is a big guide's peak): more chunks, the same guides."""
    from plextuner.epg import chunked, prefilter

    monkeypatch.setattr(prefilter, "CHUNK", 1024)  # blocks of a few programmes, as a big guide's

    def read(many: int) -> tuple[list[int], dict[str, bytes]]:
        monkeypatch.setattr(chunked, "MANY", many)
        data_dir = tmp_path / str(many)
        settings = load_settings(None, {"data_dir": str(data_dir)}, env={})
        data = GuideData(spill=Spill(settings.paths.epg_cache), fold=True)
        ctx = RefreshContext(settings=settings, fetcher=None, previous=None, devices=devices())  # type: ignore[arg-type]
        entries = [e for d in ctx.devices for e in d.entries]
        parse_source(plain_guide(tmp_path / "g.xml", 20), "g", data, entries, WINDOW)
        chunks = [lists[0].spilled for _, lists in sorted(data.programmes.items())]  # type: ignore[union-attr]
        with mock.patch("plextuner.epg.writer.time.time", return_value=WINDOW[0]):
            write_all(ctx, data, WINDOW, fresh=True)
        return chunks, {p.name: read_guide(p) for p in sorted(settings.paths.guides.glob("*.xml"))}

    assert chunked.held_for(chunked.MANY - 1) == chunked.HELD
    assert chunked.held_for(chunked.MANY) == chunked.HELD_MANY < chunked.HELD
    few, few_guides = read(10**9)
    many, many_guides = read(1)
    assert few == [2, 2, 2]  # 16 programmes, then the 4 left sealed
    assert many == [3, 3, 3]  # 8, 8, then 4
    assert many_guides == few_guides
    # 20 programmes of each channel; channel 2's shifted 2 h back, its first four before it
    assert few_guides["d0.xml"].count(b"<programme ") == 56


def test_a_guide_channels_icon_reaches_a_logoless_channel_after_its_source_is_read(
    tmp_path: Path,
) -> None:
    """The last source read (its guide channels and their icons packed while its programmes
    are read: `Matcher.release`), a lineup channel without a logo shows its guide channel's
    icon, and one with a logo its own."""
    guide = tmp_path / "g.xml"
    t = WINDOW[0]
    guide.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<tv>'
        + "".join(
            f'<channel id="c{c}"><display-name>C {c}</display-name>'
            f'<icon src="http://i.invalid/c{c}.png"/></channel>'
            for c in range(3)
        )
        + "".join(
            f'<programme start="{stamp(t)}" stop="{stamp(t + HOUR)}" channel="c{c}">'
            f"<title>Show {c}</title></programme>"
            for c in range(3)
        )
        + "</tv>\n",
        encoding="utf-8",
    )
    settings = load_settings(None, {"data_dir": str(tmp_path / "data")}, env={})
    data = GuideData(spill=Spill(settings.paths.epg_cache), fold=True)
    ctx = RefreshContext(settings=settings, fetcher=None, previous=None, devices=devices())  # type: ignore[arg-type]
    ctx.devices[0].entries[2].channel.logo = "http://own.invalid/logo.png"
    entries = [e for d in ctx.devices for e in d.entries]
    parse_source(guide, "g", data, entries, WINDOW, last=True)
    with mock.patch("plextuner.epg.writer.time.time", return_value=WINDOW[0]):
        write_all(ctx, data, WINDOW, fresh=True)
    d0 = read_guide(settings.paths.guides / "d0.xml")
    assert b'<icon src="http://i.invalid/c0.png"/>' in d0
    assert b'<icon src="http://i.invalid/c1.png"/>' in d0
    assert b'<icon src="http://own.invalid/logo.png"/>' in d0
    assert b"c2.png" not in d0
