"""Placeholder programmes noted in the device guide and rendered when it is read (placeholders.py):
the guide as served holds exactly the programmes the writer used to write, in any title; the
file as it lies is a valid guide without them; a damaged note is served as the file lies."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
from collections import Counter
from pathlib import Path

import httpx
import msgspec
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from plextuner import placeholders as fill
from plextuner.epg.model import Programme
from plextuner.epg.writer import Placeholders, placeholders, write_guide
from plextuner.hdhr.epgxml import paced, send_aggregate
from plextuner.state.aggregate import guide_fill, open_aggregate, open_guide, read_guide
from tests.unit.test_epg import WINDOW, entry
from tests.unit.test_guide_aggregate import read
from tests.unit.test_guide_writer import device

TITLES = ["News -- Live", "a-->b", "-", 'Kids <1> & "Co"', "Ünïcødé ✓ 日本", "", "line\nbreak"]


@pytest.fixture(autouse=True)
def noted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every guide here notes its placeholders, however few (the writer notes them from
    NOTE_FROM slots on; under it they are written, see the last test)."""
    monkeypatch.setattr(fill, "NOTE_FROM", 0)


def programmes_of(xml: bytes) -> Counter[bytes]:
    root = etree.fromstring(xml)
    return Counter(etree.tostring(p, with_tail=False) for p in root.iterfind("programme"))


def mixed(tmp_path: Path, filler: bool) -> Path:
    """A guide with one channel's own programmes and placeholders for the rest, the
    placeholders as `Placeholders` (noted) or as `Programme` lists (written out)."""
    d = device("m", 500)
    d.entries = [entry(str(500 + i), t) for i, t in enumerate(TITLES)]
    lo, hi = WINDOW
    own = [Programme(channel="", start=lo + 600, stop=lo + 4200, title="Own -- show")]
    progs: dict[str, object] = {d.entries[0].number: own}
    for e in d.entries[1:]:
        made = Placeholders(e.channel.name, lo, hi, 3600)
        progs[e.number] = made if filler else placeholders(e.channel.name, lo, hi, 3600)
    path = tmp_path / f"{filler}.xml"
    write_guide(path, d, progs, {}, generated=lo)  # type: ignore[arg-type]
    return path


def test_served_guide_holds_what_the_writer_wrote_before(tmp_path: Path) -> None:
    noted, written = mixed(tmp_path, True), mixed(tmp_path, False)
    raw = noted.read_bytes()
    assert sum(programmes_of(raw).values()) == 1  # as it lies: the own programme only
    served = read_guide(noted)
    assert programmes_of(served) == programmes_of(written.read_bytes())
    assert len(programmes_of(served)) == 1 + 24 * (len(TITLES) - 1)
    head = written.read_bytes().index(b"<programme")
    assert served[:head] == written.read_bytes()[:head]  # the channels as they were
    assert served.endswith(b"</tv>") and b"plextuner-placeholders" not in served


def test_the_note_is_one_xml_comment_whatever_the_titles(tmp_path: Path) -> None:
    collected = fill.Collected()
    for i, title in enumerate(TITLES):
        assert collected.add((*WINDOW, 1800), f"{i}.x", title) == 48
    note = collected.note()
    root = etree.fromstring(b"<tv>" + note + b"</tv>")
    assert len(root) == 1 and isinstance(root[0], etree._Comment)
    parsed = fill.Fill.parse(note)
    assert parsed is not None
    slots = dict(parsed.slots())
    assert [s[0][2] for s in slots.values()] == [t or "Untitled" for t in TITLES]
    rendered = b"".join(fill.render(part) for _, part in parsed.chunks())
    template = fill.SlotTemplate(*WINDOW, 1800)
    assert rendered == b"".join(
        template.render(template.tail(f"{i}.x", t)) for i, t in enumerate(TITLES)
    )
    assert sum(size for size, _ in parsed.chunks()) == len(rendered)
    assert fill.Collected().note() == b""


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b.replace(b"plextuner-placeholders W", b"plextuner-placeholders !"),
        lambda b: b[: b.index(b"-->") - 5] + b"99999-->" + b[b.index(b"-->") + 3 :],
        lambda b: b[: b.index(b"<!--")] + b"</tv>",
        lambda b: b[: b.index(b"<!--") + 40] + b[b.index(b"<!--") + 60 :],
        lambda b: b.replace(b"-->", b"->"),
    ],
    ids=["bad base64", "bad length", "no note", "cut note", "unclosed"],
)
def test_a_damaged_note_is_served_as_the_file_lies(tmp_path: Path, damage: object) -> None:
    path = mixed(tmp_path, True)
    damaged = damage(path.read_bytes())  # type: ignore[operator]
    path.write_bytes(damaged)
    assert read_guide(path) == damaged
    agg = open_aggregate([path])
    assert agg is not None
    try:
        read(agg)  # answered whole, whatever it holds
    finally:
        agg.close()


def test_a_note_with_an_endless_window_is_not_rendered() -> None:
    collected = fill.Collected()
    collected.add((*WINDOW, 3600), "1.x", "T")
    note = collected.note()
    encoded = note[len(fill.MARK) : -fill.TRAILER]
    endless = msgspec.json.encode([[0.0, 1e9, 1.0, [["1.x", "T"]]]])  # a billion slots
    assert fill.Fill.parse(note) is not None
    assert fill.Fill.parse(note.replace(encoded, base64.b64encode(endless))) is None
    far = msgspec.json.encode([[1e300, 1e300 + 1e297, 1e296, [["1.x", "T"]]]])  # no such year
    assert fill.Fill.parse(note.replace(encoded, base64.b64encode(far))) is None
    assert fill.note_at(b"x", 1) is None and fill.note_at(b" 00000000009x-->", 20) is None
    assert fill.note_at(b" 000000000016-->", 20) == 4
    assert fill.note_at(b" 000000000016-->", 10) is None  # longer than the file
    huge = f" {fill.MAX_NOTE + 1:012d}-->".encode()
    assert fill.note_at(huge, 1 << 40) is None  # a trailer claiming more than a note can be


@settings(max_examples=40, deadline=None)
@given(
    titles=st.lists(st.text(max_size=30), min_size=1, max_size=5),
    block=st.sampled_from([900, 3600]),
)
def test_any_title_round_trips(titles: list[str], block: int) -> None:
    collected = fill.Collected()
    for i, title in enumerate(titles):
        collected.add((*WINDOW, block), f"{i}.x", title)
    parsed = fill.Fill.parse(collected.note())
    assert parsed is not None
    assert [title for _, slots in parsed.slots() for title in {s[2] for s in slots}] == [
        t or "Untitled" for t in titles
    ]


def test_the_aggregate_and_a_range_render_the_placeholders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fill, "CHUNK_CHANNELS", 2)  # several rendered pieces
    path, written = mixed(tmp_path, True), mixed(tmp_path, False)
    agg = open_guide(path)
    assert agg is not None
    try:
        whole = read(agg)
        assert sum(1 for p in agg.pieces if p.fill is not None) == 3  # 6 channels, 2 a piece
        for start, count in [(0, agg.size), (100, 5000), (agg.size - 7, 7), (3000, 1)]:
            assert read(agg, start, count) == whole[start : start + count]
    finally:
        agg.close()
    assert whole == read_guide(path)
    epg = open_aggregate([path])
    assert epg is not None
    try:
        assert programmes_of(read(epg)) == programmes_of(written.read_bytes())
    finally:
        epg.close()
    found = guide_fill(path)
    assert found is not None and len(dict(found.slots())) == len(TITLES) - 1
    assert guide_fill(written) is None


def test_a_note_too_big_to_read_is_written_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device with more placeholder channels than a note may name gets its placeholders
    written as programmes, so no reader drops them."""
    monkeypatch.setattr(fill, "MAX_NOTE", 200)
    noted, written = mixed(tmp_path, True), mixed(tmp_path, False)
    assert b"plextuner-placeholders" not in noted.read_bytes()
    assert programmes_of(noted.read_bytes()) == programmes_of(written.read_bytes())


def test_a_guide_with_few_placeholders_is_written_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under NOTE_FROM slots (a small lineup) the placeholders are written out: the file on
    disk is the guide as served, for whatever reads it directly."""
    monkeypatch.setattr(fill, "NOTE_FROM", 24 * (len(TITLES) - 1) + 1)
    few, written = mixed(tmp_path, True), mixed(tmp_path, False)
    assert b"plextuner-placeholders" not in few.read_bytes()
    assert read_guide(few) == few.read_bytes()
    assert programmes_of(few.read_bytes()) == programmes_of(written.read_bytes())
    monkeypatch.setattr(fill, "NOTE_FROM", 24 * (len(TITLES) - 1))  # as many: noted
    assert b"plextuner-placeholders" in mixed(tmp_path, True).read_bytes()


async def test_a_noted_guide_over_http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As guide.xml sends it (hdhr/epgxml.py): the length, a range across rendered pieces,
    HEAD, 304 to its ETag, and the bytes read_guide gives."""
    monkeypatch.setattr(fill, "CHUNK_CHANNELS", 2)
    path = mixed(tmp_path, True)
    whole = read_guide(path)

    async def guide(request: web.Request) -> web.StreamResponse:
        agg = await asyncio.to_thread(open_guide, path)
        assert agg is not None
        try:
            return await send_aggregate(request, agg)
        finally:
            agg.close()

    app = web.Application()
    app.router.add_get("/guide.xml", guide)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/guide.xml"
        async with httpx.AsyncClient(timeout=10) as client:
            got = await client.get(url)
            assert got.content == whole and int(got.headers["Content-Length"]) == len(whole)
            part = await client.get(url, headers={"Range": "bytes=900-4099"})
            assert part.status_code == 206 and part.content == whole[900:4100]
            head = await client.head(url)
            assert head.content == b"" and int(head.headers["Content-Length"]) == len(whole)
            same = await client.get(url, headers={"If-None-Match": got.headers["ETag"]})
            assert same.status_code == 304
    finally:
        await runner.cleanup()


async def test_rendered_pieces_let_the_loop_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between two rendered pieces the event loop runs other work (a client that keeps up
    never makes a write suspend)."""
    monkeypatch.setattr(fill, "CHUNK_CHANNELS", 1)
    agg = open_guide(mixed(tmp_path, True))
    assert agg is not None
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    seen: list[int] = []
    task = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0)
        async for piece in paced(agg, 0, agg.size):
            if piece.file is None and piece.size > 100:  # a rendered channel
                seen.append(ticks)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        agg.close()
    assert len(seen) == len(TITLES) - 1
    assert all(b > a for a, b in itertools.pairwise(seen))


@settings(max_examples=60, deadline=None)
@given(
    cut=st.integers(0, 400),
    junk=st.binary(max_size=40),
    digits=st.one_of(st.none(), st.integers(0, 10**12 - 1)),
)
def test_any_damage_near_the_note_is_served(
    tmp_path_factory: pytest.TempPathFactory, cut: int, junk: bytes, digits: int | None
) -> None:
    """Bytes cut from the note, junk put in their place, any length in its trailer: the guide
    is answered (whole, with or without placeholders), never an error."""
    tmp = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fill, "NOTE_FROM", 0)
        path = mixed(tmp, True)
    raw = path.read_bytes()
    at = raw.index(fill.MARK) + cut
    damaged = raw[:at] + junk + raw[at + len(junk) :]
    end = damaged.rfind(b"-->")  # the junk may have broken it
    if digits is not None and end >= 12:
        damaged = damaged[: end - 12] + f"{digits:012d}".encode() + damaged[end:]
    path.write_bytes(damaged)
    served = read_guide(path)
    assert served == damaged or served.startswith(raw[: raw.index(fill.MARK)])
    found = guide_fill(path)
    assert found is None or all(len(slots) <= 24 for _, slots in found.slots())
