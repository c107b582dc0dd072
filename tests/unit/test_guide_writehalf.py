"""Device guides written by two processes (epg/writehalf.py): the files, fingerprints and notes
are what one process writes, whatever becomes of the helper."""

from __future__ import annotations

import json
import select
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

from plextuner.buckets.models import Device, LineupEntry
from plextuner.config import load_settings
from plextuner.epg import writehalf, writejob
from plextuner.epg.guidedata import GuideData
from plextuner.epg.kept import KeptList
from plextuner.epg.matchresult import UNMATCHED, MatchResult, MatchTier
from plextuner.epg.report import ReportSpool
from plextuner.epg.spill import Spill
from plextuner.epg.stage import parse_source
from plextuner.epg.writeall import write_all
from plextuner.epg.writer import Placeholders
from plextuner.errors import EpgError
from plextuner.ingest.models import Channel, Source
from plextuner.stages import RefreshContext, StageName
from plextuner.state.aggregate import read_guide
from tests.unit.test_guide_spill import HOUR, WINDOW, stamp

GUIDE_CHANNELS = [f"c{i}" for i in range(8)]
SECRET = "http://user:hunter22@provider.invalid/live/1.ts"


def guide(path: Path, title: str = "Show") -> Path:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<tv>']
    parts += [
        f'<channel id="{c}"><display-name>{c}</display-name><icon src="http://i/{c}.png"/>'
        "</channel>"
        for c in GUIDE_CHANNELS
    ]
    for h in range(60):
        t = WINDOW[0] - 6 * HOUR + h * HOUR / 2
        for i, c in enumerate(GUIDE_CHANNELS):
            stop = f' stop="{stamp(t + HOUR / 2)}"' if (h + i) % 9 else ""
            parts.append(
                f'<programme start="{stamp(t)}"{stop} channel="{c}"><title>{title} {h} &amp; '
                f"co</title><desc>{'words ' * (h % 5)}ü</desc></programme>"
            )
    parts.append("</tv>\n")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def devices() -> list[Device]:
    """Four devices; c0 is in the first and the last (the helper's), one entry has no guide,
    one a tvg-shift, one a name that needs escaping."""

    def entry(number: str, gid: str, shift: float | None = None) -> LineupEntry:
        channel = Channel(key=number, name=f"N{number} & <x>", tvg_id=gid, group="", provider="p")
        channel.tvg_shift = shift
        channel.sources = [Source("p", SECRET)]
        return LineupEntry(number, channel)

    rows = [
        [entry("1", "c0"), entry("2", "c1", -2.0)],
        [entry("3", "c2"), entry("4", "c3"), entry("5", "none")],
        [entry("6", "c4"), entry("7", "c5", 1.5)],
        [entry("8", "c6"), entry("9", "c7"), entry("10", "c0")],
    ]
    return [
        Device(f"d{i}", f"d{i}", f"D{i}", f"1500000{i}", 5004 + i, 2, True, row)
        for i, row in enumerate(rows)
    ]


@dataclass
class Written:
    guides: dict[str, bytes]
    prints: dict[str, str]
    notes: dict[str, str]
    matches: bytes
    started: int  # helpers started


def write(
    tmp: Path, source: Path | None, helper: bool, fresh_dir: bool = True, **kw: object
) -> Written:
    """`source`: the guide source parsed (with its spill); None: none, placeholders only."""
    data_dir = tmp / "data"
    settings = load_settings(None, {"data_dir": str(data_dir), **kw}, env={})
    data = GuideData(spill=Spill(settings.paths.epg_cache) if source else None, fold=True)
    ctx = RefreshContext(settings=settings, fetcher=None, previous=None, devices=devices())  # type: ignore[arg-type]
    entries = [e for d in ctx.devices for e in d.entries]
    if source is not None:
        parse_source(source, "g", data, entries, WINDOW)
    started: list[bool] = []
    real_start = writehalf.SecondWriter.start

    def start(self: writehalf.SecondWriter) -> bool:
        started.append(real_start(self))
        return started[-1]

    with (
        mock.patch.object(writehalf, "HELPER_MIN", 0 if helper else 1 << 62),
        mock.patch.object(writehalf.SecondWriter, "start", start),
        mock.patch("plextuner.epg.writer.time.time", return_value=WINDOW[0]),
    ):
        write_all(ctx, data, WINDOW, fresh=fresh_dir)
    paths = settings.paths
    guides = {p.name: read_guide(p) for p in sorted(paths.guides.glob("*.xml"))}
    prints = json.loads((paths.guides / ".fingerprints.json").read_text())
    prints = prints.get("devices", prints)
    matches = paths.guide_matches.read_bytes()
    matches = matches[matches.index(b'"devices"') :]  # after its time stamp
    notes = dict(ctx.report(StageName.GUIDE, "guide").by_device)
    assert not [p for p in paths.guides.iterdir() if p.name.endswith(".tmp")]
    return Written(guides, prints, notes, matches, sum(started))


def test_two_writers_write_what_one_writes(tmp_path: Path) -> None:
    source = guide(tmp_path / "g.xml")
    one = write(tmp_path / "one", source, helper=False)
    two = write(tmp_path / "two", source, helper=True)
    assert (one.started, two.started) == (0, 1)
    assert two.guides == one.guides
    assert two.prints == one.prints
    assert two.notes == one.notes
    assert two.matches == one.matches
    assert b"Show 30" in two.guides["d3.xml"] and b"N10 &amp; &lt;x&gt;" in two.guides["d3.xml"]


def test_with_no_guide_source_two_writers_write_the_placeholders_one_writes(
    tmp_path: Path,
) -> None:
    """No guide source, so no spill: the helper still takes its share of the placeholders
    when there are enough of them (their notes: placeholders.py)."""
    one = write(tmp_path / "one", None, helper=False)
    two = write(tmp_path / "two", None, helper=True)
    assert (one.started, two.started) == (0, 1)
    assert (two.guides, two.prints, two.notes) == (one.guides, one.prints, one.notes)
    assert two.matches == one.matches
    last = two.guides["d3.xml"]  # the helper's device
    assert last.count(b"<programme ") == 3 * round((WINDOW[1] - WINDOW[0]) / HOUR)
    assert b"<title>N10 &amp; &lt;x&gt;</title>" in last


@pytest.mark.parametrize("placeholder", [True, False])
def test_with_no_guide_source_every_entry_is_left_unmatched(
    tmp_path: Path, placeholder: bool
) -> None:
    """A guide-less refresh (the shortcut for a device nothing matched) clears what an entry
    carried from an earlier match, as matching it would, and gives each its placeholders."""
    settings = load_settings(
        None, {"data_dir": str(tmp_path / "data"), "epg": {"placeholder": placeholder}}, env={}
    )
    ctx = RefreshContext(settings=settings, fetcher=None, previous=None, devices=devices())  # type: ignore[arg-type]
    for d in ctx.devices:
        for e in d.entries:
            e.guide_id, e.guide_match, e.guide_score, e.has_guide = "c0", "name", 0.9, True
    write_all(ctx, GuideData(fold=True), WINDOW, fresh=True)
    for d in ctx.devices:
        assert {(e.guide_id, e.guide_match, e.guide_score, e.has_guide) for e in d.entries} == {
            (None, "none", None, False)
        }
    guide = read_guide(settings.paths.guides / "d1.xml")
    assert guide.count(b"<programme ") == (
        3 * round((WINDOW[1] - WINDOW[0]) / HOUR) if placeholder else 0
    )


# A helper that reads its job, starts the first guide's temporary file and dies.
_DIES_WRITING = (
    "import os, sys; from plextuner.epg.writejob import load_job; "
    "j, files = load_job(os.fdopen(int(sys.argv[-1]), 'rb'), int(sys.argv[-2])); "
    "p = next(files).path; "
    "d, n = os.path.split(p); "
    "open(os.path.join(d, '.' + n + '.x1y2.tmp'), 'w').write('<tv>'); os._exit(9)"
)


@pytest.mark.parametrize(
    "helper",
    [
        [sys.executable, "-c", "import sys; sys.exit(3)"],  # fails at once
        [sys.executable, "-c", "import sys; sys.stdout.write('garbage')"],  # answers nonsense
        [sys.executable, "-c", _DIES_WRITING],  # killed while writing: its temporary file left
        ["/nonexistent/python"],  # cannot start
    ],
)
def test_a_helper_that_writes_nothing_leaves_its_guides_to_the_job(
    tmp_path: Path, helper: list[str]
) -> None:
    """What the helper did not write is written by the guide job: from its programmes, when it
    still has them (the helper never started), else kept for the next refresh."""
    source = guide(tmp_path / "g.xml")
    one = write(tmp_path / "one", source, helper=False)
    with mock.patch.object(writehalf, "WRITER", helper):
        two = write(tmp_path / "two", source, helper=True)
    assert set(two.guides) == set(one.guides)
    assert two.guides["d0.xml"] == one.guides["d0.xml"]  # the guide job's own
    if helper[0].startswith("/nonexistent"):  # nothing handed over: everything as one writes
        assert (two.guides, two.prints, two.notes) == (one.guides, one.prints, one.notes)
        return
    # Handed over, then lost: c4-c7 only the helper's devices had; d3 shares c0 with d0.
    assert (
        two.notes["d2"]
        == two.notes["d3"]
        == ("written without its programmes (the guide writer failed)")
    )
    assert "d2" not in two.prints and "d3" not in two.prints  # rewritten by the next refresh
    assert b"Show" not in two.guides["d2.xml"] and b"N6" in two.guides["d2.xml"]  # placeholders
    again = write(tmp_path / "two", source, helper=True)
    assert (again.guides, again.prints) == (one.guides, one.prints)


def test_a_guide_the_helper_lost_keeps_the_one_on_disk(tmp_path: Path) -> None:
    old = guide(tmp_path / "old.xml", title="Old")
    new = guide(tmp_path / "new.xml", title="New")
    first = write(tmp_path / "w", old, helper=True)
    with mock.patch.object(writehalf, "WRITER", [sys.executable, "-c", "import sys; sys.exit(3)"]):
        second = write(tmp_path / "w", new, helper=True)
    assert second.guides["d2.xml"] == first.guides["d2.xml"]  # an older guide, not an emptier
    assert second.notes["d2"] == "kept (the guide writer failed)"
    assert b"New 30" in second.guides["d0.xml"]
    third = write(tmp_path / "w", new, helper=True)
    assert b"New 30" in third.guides["d2.xml"] and "d2" in third.prints


def test_with_epg_require_a_rewritten_guide_matches_its_entries(tmp_path: Path) -> None:
    """`epg.require` drops entries without a guide before the helper's guides are handed
    over; one written again by the guide job is written from the entries left."""
    source = guide(tmp_path / "g.xml")
    one = write(tmp_path / "one", source, helper=False, epg={"require": True})
    with mock.patch.object(writehalf, "WRITER", ["/nonexistent/python"]):
        two = write(tmp_path / "two", source, helper=True, epg={"require": True})
    assert two.guides == one.guides and b"N5" not in one.guides["d1.xml"]


def test_the_job_carries_no_stream_url(tmp_path: Path) -> None:
    """Only names, ids and logos go to the helper: a source URL carries credentials."""
    kept = KeptList()
    kept.append(WINDOW[0], WINDOW[0] + HOUR, 0)
    files = [writejob.GuideFile(str(tmp_path / "d.xml"), d, {"1": kept}, {}) for d in devices()]
    out = tmp_path / "job"
    with out.open("wb") as fh:
        writejob.dump_head(writejob.WriteJob(-1, 0, "xmltv", 0.0, 1), fh)
        for f in files:
            writejob.dump_frame(f, fh)
        writejob.dump_end(fh)
    raw = out.read_bytes()
    assert b"hunter22" not in raw and b"provider.invalid" not in raw
    with out.open("rb") as fh:
        job, frames = writejob.load_job(fh)
        got = list(frames)
    assert (job.id_style, job.parent, len(got)) == ("xmltv", 1, 4)
    sent = got[0].programmes["1"]
    assert isinstance(sent, KeptList) and list(sent) == list(kept)
    assert [e.channel.name for e in got[3].device.entries] == ["N8 & <x>", "N9 & <x>",
                                                               "N10 & <x>"]  # fmt: skip


def test_a_frame_brings_each_channels_programmes_back_as_they_went(tmp_path: Path) -> None:
    """Packed lists travel as machine bytes, placeholders pickled, in one frame: each channel
    number gets its own back (the packed ones by their index among the frame's)."""
    lists = []
    for n in range(3):
        kept = KeptList()
        for i in range(n + 1):
            kept.append(WINDOW[0] + i * HOUR, WINDOW[0] + (i + 1) * HOUR, 100 * n + i)
        lists.append(kept)
    filler = Placeholders("N2", WINDOW[0], WINDOW[1], HOUR)
    programmes: dict[str, writejob.Items] = {
        "1": lists[0], "2": filler, "3": lists[1], "4": KeptList(), "5": lists[2]
    }  # fmt: skip
    f = writejob.GuideFile(str(tmp_path / "d.xml"), devices()[0], programmes, {})
    out = tmp_path / "job"
    with out.open("wb") as fh:
        writejob.dump_head(writejob.WriteJob(-1, 0, "xmltv", 0.0, 1), fh)
        writejob.dump_frame(f, fh)
        writejob.dump_end(fh)
    with out.open("rb") as fh:
        frames = list(writejob.load_job(fh)[1])
    assert len(frames) == 1
    got = frames[0].programmes
    assert list(got) == list(programmes) and got["2"] == filler
    lists_of = {"1": lists[0], "3": lists[1], "4": KeptList(), "5": lists[2]}
    for number, kept in lists_of.items():
        sent = got[number]
        assert isinstance(sent, KeptList) and list(sent) == list(kept), number


@pytest.mark.parametrize(
    ("weights", "taken"),
    [
        # The job gathers all four (80) and writes two: 280 against the helper's 2 x 112; with
        # three the helper's 336 would be the longer
        ([100, 100, 100, 100], {2, 3}),
        ([100] * 10, {4, 5, 6, 7, 8, 9}),  # 200 gathered, 400 written against 6 x 112
        ([400, 10, 10, 10], {1, 2, 3}),  # the first is always the guide job's
        ([10, 10, 10, 400], {3}),  # one device holds nearly all: the helper writes it
        ([200, 200], {1}),
        ([400], set()),
        ([1, 1, 1, 1], set()),  # too little work
    ],
)
def test_the_helper_takes_more_than_half_of_the_writing(
    weights: list[int], taken: set[int]
) -> None:
    with mock.patch.object(writehalf, "HELPER_MIN", 100):
        assert writehalf.share(weights) == taken


def test_a_devices_writing_counts_its_placeholders() -> None:
    """Kept programmes count one each; a channel with none (unmatched, or its guide channel's
    programmes all gone) counts PLACEHOLDER_WORK when placeholders are on (a 50k list's
    unmatched channels all went to the guide job while the helper had none), nothing when
    off."""
    kept = KeptList()
    for i in range(4):
        kept.append(WINDOW[0] + i * HOUR, WINDOW[0] + (i + 1) * HOUR, i)
    programmes = {"g1": [kept], "g2": [KeptList()]}
    results = [MatchResult("g1", MatchTier.TVG_ID, 1.0), MatchResult("g2", MatchTier.TVG_ID, 1.0),
               UNMATCHED, UNMATCHED]  # fmt: skip
    with mock.patch.object(writehalf, "PLACEHOLDER_WORK", 2.5):
        assert writehalf.work(results, programmes, False) == 4
        assert writehalf.work(results, programmes, True) == 4 + int(3 * 2.5)
        assert writehalf.work([UNMATCHED] * 10, {}, True) == 25
        assert writehalf.work([UNMATCHED] * 10, {}, False) == 0


def test_a_job_that_cannot_be_written_leaves_every_guide_to_the_job(tmp_path: Path) -> None:
    """The job file refused (no room for it): the guides added so far and after are written by
    the guide job, from its programmes, as one writer writes them; no helper starts."""
    source = guide(tmp_path / "g.xml")
    one = write(tmp_path / "one", source, helper=False)

    def refused(directory: Path) -> object:
        raise EpgError("cannot hold the guide's programmes on disk: no room")

    with mock.patch.object(writehalf, "temporary", refused):
        two = write(tmp_path / "two", source, helper=True)
    assert two.started == 0
    assert (two.guides, two.prints, two.notes) == (one.guides, one.prints, one.notes)


def test_the_report_spool_writes_device_order_and_leaves_nothing(tmp_path: Path) -> None:
    """Reports spooled in the order devices are prepared (the helper's first) come out in
    device order, as one JSON document; the spool's file is never visible in the directory,
    and a spool closed unread leaves nothing either."""
    spool = ReportSpool(tmp_path)
    reports = {i: json.dumps([{"device": f"d{i}", "rows": ["x" * i]}]).encode() for i in range(5)}
    for i in (3, 4, 0, 2, 1):
        spool.add(i, reports[i])
    assert list(tmp_path.iterdir()) == []
    out = b"".join(spool.chunks())
    spool.close()
    doc = json.loads(out)
    assert doc["devices"] == [json.loads(reports[i]) for i in range(5)]
    assert isinstance(doc["generated"], float)
    ReportSpool(tmp_path).close()
    assert list(tmp_path.iterdir()) == []


def test_an_idle_helper_takes_more_of_the_guides_and_they_are_what_one_writes(
    tmp_path: Path,
) -> None:
    """Once the helper has its share, each guide the job would write goes to it instead while
    it is idle (here: always); the files are the same, and so is everything else."""
    source = guide(tmp_path / "g.xml")
    one = write(tmp_path / "one", source, helper=False)
    added: list[str] = []
    real_add = writehalf.SecondWriter.add

    def add(self: writehalf.SecondWriter, f: writejob.GuideFile, *args: object) -> None:
        added.append(Path(f.path).name)
        real_add(self, f, *args)  # type: ignore[arg-type]

    with (
        mock.patch.object(writehalf.SecondWriter, "idle", return_value=True),
        mock.patch.object(writehalf.SecondWriter, "add", add),
    ):
        two = write(tmp_path / "two", source, helper=True)
    assert sorted(added) == ["d0.xml", "d1.xml", "d2.xml", "d3.xml"]  # its share, then ours
    assert (two.guides, two.prints, two.notes, two.matches) == (
        one.guides,
        one.prints,
        one.notes,
        one.matches,
    )


def test_guides_an_idle_helper_took_and_lost_are_written_with_their_programmes(
    tmp_path: Path,
) -> None:
    """The job keeps the programmes of the guides it hands over beyond the helper's share:
    when the helper dies, those are written again as one writes them (its share's, only it
    had: written without them, as before)."""
    source = guide(tmp_path / "g.xml")
    one = write(tmp_path / "one", source, helper=False)
    with (
        mock.patch.object(writehalf.SecondWriter, "idle", return_value=True),
        mock.patch.object(writehalf, "WRITER", [sys.executable, "-c", _DIES_WRITING]),
    ):
        two = write(tmp_path / "two", source, helper=True)
    assert two.guides["d0.xml"] == one.guides["d0.xml"]
    assert two.guides["d1.xml"] == one.guides["d1.xml"]
    assert two.notes["d0"] == one.notes["d0"] and two.notes["d1"] == one.notes["d1"]
    assert two.notes["d2"] == "written without its programmes (the guide writer failed)"


def test_the_helper_says_when_it_is_idle(tmp_path: Path) -> None:
    """`idle` counts the guides the helper says it wrote (a byte each on a pipe): idle once
    all but one it was sent are written; never once its job has ended."""
    files = [writejob.GuideFile(str(tmp_path / f"{d.name}.xml"), d, {}, {}) for d in devices()]
    writer = writehalf.SecondWriter(None)
    try:
        writer.add(files[0], "xmltv", WINDOW[0])
        writer.add(files[1], "xmltv", WINDOW[0])
        assert writer.start()
        assert writer._done is not None
        deadline = time.monotonic() + 60
        while not writer.idle():  # waits for the helper's word, not for a time
            assert time.monotonic() < deadline, "the helper never said it wrote a guide"
            select.select([writer._done], [], [], 5)
        assert writer._written >= 1
        writer.add(files[2], "xmltv", WINDOW[0])
        assert writer.finish(60) == []
        assert not writer.idle()  # its job ended
    finally:
        writer.close()
    assert sorted(p.name for p in tmp_path.glob("*.xml")) == ["d0.xml", "d1.xml", "d2.xml"]
