"""A big guide read in two halves (epg/halves.py): the same guides as one reader writes, and
every way the helper's half can be unusable falls back to reading on alone."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from plextuner import cpus
from plextuner.buckets.models import LineupEntry
from plextuner.config import load_settings
from plextuner.epg import halfsplit, halves, prefilter, stage, writehalf
from plextuner.epg.guidedata import GuideData, match_pending
from plextuner.epg.halfwire import HalfJob, read_answer
from plextuner.epg.halves import run_half
from plextuner.epg.spill import SOURCE_BASE, Spill, temporary
from plextuner.epg.stage import parse_source
from plextuner.epg.worker import run_guide_job
from plextuner.epg.writeall import write_all
from plextuner.stages import RefreshContext
from plextuner.state.aggregate import read_guide
from tests.unit.test_guide_spill import HOUR, WINDOW, devices, guide_job, stamp

CHANNELS = ["c0", "c1", "c2", "other"]  # the lineup carries c0-c2


@dataclass
class Read:
    guides: dict[str, bytes]
    counts: tuple[int, int, int, str | None]
    guide_channels: list[str]
    halves: int  # the helper's halves taken
    # programmes mended (resync.py): only those that reach a parser, so not always the same
    malformed: int = 0
    adopted: int = 0  # helper spill files read in place (spillparts.py)
    sourced: int = 0  # parts of the guide's file read in place (`Spill.add_source`)
    spilled: int = 0  # bytes the readers spilled


def big_guide(path: Path, hours: int = 120, comment_at: int | None = None) -> Path:
    """Programmes in time order (the window a stretch of them), escapes, a missing stop, a
    sub-title, one channel listed only after the programmes; `comment_at`: an hour whose
    programmes are commented out, `</programme>` tags and all."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<tv generator-info-name="t">']
    parts += [f'<channel id="{c}"><display-name>{c}</display-name></channel>' for c in CHANNELS]
    for h in range(hours):
        t = WINDOW[0] - 30 * HOUR + h * HOUR / 2
        if h == comment_at:
            parts.append("<!--")
        for i, c in enumerate(CHANNELS):
            stop = f' stop="{stamp(t + HOUR / 2)}"' if (h + i) % 7 else ""
            parts.append(
                f'<programme start="{stamp(t)}"{stop} channel="{c}"><title>Show {h} &amp; '
                f"{'&lt;more&gt;' * (h % 3)}</title><sub-title>part {i}</sub-title>"
                f"<desc>{'words ' * (h % 11)}ü€</desc><category>Series</category></programme>"
            )
        if h == comment_at:
            parts.append("-->")
        if h == hours // 2:
            parts.append('<channel id="late"><display-name>Late</display-name></channel>')
    parts.append("</tv>\n")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def read(tmp: Path, guide: Path, split: bool, chunk: int = 4096, writers: int = 1) -> Read:
    data_dir = tmp / ("split" if split else "whole") / str(writers)
    settings = load_settings(None, {"data_dir": str(data_dir)}, env={})
    data = GuideData(spill=Spill(settings.paths.epg_cache), fold=True)
    ctx = RefreshContext(settings=settings, fetcher=None, previous=None, devices=devices())  # type: ignore[arg-type]
    entries = [e for d in ctx.devices for e in d.entries]
    minimum = 0 if split else 1 << 62
    with (
        mock.patch.object(prefilter, "CHUNK", chunk),  # the reader is not done at its first read
        mock.patch.object(halves, "SPLIT_MIN", minimum),
        mock.patch.object(halfsplit, "HELPER_MIN_US", 0.0),
        mock.patch.object(halfsplit, "START_US", 0.0),
        mock.patch.object(stage, "_take_half", wraps=stage._take_half) as took,
    ):
        outcome = parse_source(guide, "g", data, entries, WINDOW)
    known = sorted(data.matcher.guides)
    parts = data.spill.parts() if data.spill is not None else []
    adopted = sum(1 for _, base, _ in parts if base < SOURCE_BASE)
    sourced = len(parts) - adopted
    spilled = data.spill.size if data.spill is not None else 0
    with (
        mock.patch("plextuner.epg.writer.time.time", return_value=WINDOW[0]),
        mock.patch.object(writehalf, "HELPER_MIN", 0 if writers == 2 else 1 << 62),
    ):
        write_all(ctx, data, WINDOW, fresh=True)
    guides = {p.name: read_guide(p) for p in sorted(settings.paths.guides.glob("*.xml"))}
    counts = (outcome.channels, outcome.programmes, outcome.skipped, outcome.truncated)
    assert not list(settings.paths.epg_cache.iterdir())  # the spill files were never named
    return Read(
        guides, counts, known, took.call_count, outcome.malformed, adopted, sourced, spilled
    )


def test_two_halves_write_the_guides_one_reader_writes(tmp_path: Path) -> None:
    guide = big_guide(tmp_path / "g.xml")
    whole, split = read(tmp_path, guide, False), read(tmp_path, guide, True)
    assert whole.halves == 0
    assert split.halves == 1  # the helper's half was taken
    assert split.guides == whole.guides
    assert split.counts == whole.counts
    assert split.guide_channels == whole.guide_channels == sorted([*CHANNELS, "late"])
    assert b"Show" in whole.guides["d0.xml"]


@pytest.mark.parametrize("writers", [1, 2])
def test_the_helpers_spill_is_read_in_place(tmp_path: Path, writers: int) -> None:
    """The helper's spill file is adopted as it is, not copied (the reader's own file holds a
    hole there), and read by the writer and by the second writer (its descriptor passed)."""
    guide = big_guide(tmp_path / "g.xml")
    whole, split = read(tmp_path, guide, False), read(tmp_path, guide, True, writers=writers)
    assert (whole.adopted, split.adopted, split.halves) == (0, 1, 1)
    assert split.guides == whole.guides
    assert split.counts == whole.counts


def test_a_split_inside_a_comment_reads_on_alone(tmp_path: Path) -> None:
    """The commented-out programmes stay out: a helper would start inside the comment and
    read them as programmes."""
    guide = big_guide(tmp_path / "g.xml", comment_at=60)  # in the window
    inside = _first_end_after(guide)
    with mock.patch.object(halves, "boundary", return_value=inside):
        split = read(tmp_path / "s", guide, True)
    whole = read(tmp_path / "w", guide, False)
    assert split.halves == 0
    assert split.guides == whole.guides
    assert split.counts == whole.counts


def _first_end_after(path: Path) -> int:
    data = path.read_bytes()
    opened = data.find(b"<!--")
    return data.find(b"</programme>", opened) + len(b"</programme>")


def test_a_truncated_second_half_reads_on_alone(tmp_path: Path) -> None:
    guide = big_guide(tmp_path / "g.xml")
    guide.write_bytes(guide.read_bytes()[:-4000])  # cut inside the last programmes
    whole, split = read(tmp_path, guide, False), read(tmp_path, guide, True)
    assert split.halves == 0
    assert whole.counts[3] is not None  # reported truncated, as before
    assert (split.guides, split.counts) == (whole.guides, whole.counts)


# a helper's start: its job read, what it needs imported (then the case's own ending)
_HALF = (
    "import os, pickle, sys; from plextuner.epg.halves import run_half; "
    "from plextuner.epg.halfwire import write_answer; j = pickle.load(sys.stdin.buffer); "
)


@pytest.mark.parametrize(
    "helper",
    [
        [sys.executable, "-c", "import sys; sys.exit(3)"],  # fails
        [sys.executable, "-c", "import sys; sys.stdout.write('garbage')"],  # answers nowhere
        [sys.executable, "-c", _HALF + "os.write(j.answer, b'garbage')"],  # answers nonsense
        [sys.executable, "-c", _HALF + "f = os.fdopen(j.answer, 'wb'); write_answer(run_half(j), "
         "f); f.truncate(f.tell() - 1)"],  # an answer cut short
        [sys.executable, "-c", _HALF + "os.dup2(os.open('/dev/full', os.O_WRONLY), j.answer); "
         "write_answer(run_half(j), os.fdopen(j.answer, 'wb'))"],  # the disk refuses the answer
        ["/nonexistent/python"],  # cannot start
    ],
)  # fmt: skip
def test_a_failing_helper_leaves_the_guide_to_the_reader(tmp_path: Path, helper: list[str]) -> None:
    guide = big_guide(tmp_path / "g.xml")
    whole = read(tmp_path / "w", guide, False)
    with mock.patch.object(halves, "HELPER", helper):
        split = read(tmp_path / "s", guide, True)
    assert split.halves == 0
    assert (split.guides, split.counts) == (whole.guides, whole.counts)


def test_the_split_follows_the_work_not_the_bytes(tmp_path: Path) -> None:
    """A guide in time order with the window in its first part: the kept programmes cost ~13x
    the dropped ones (read by the parser: priced so), so the reader's half ends well before the
    file's middle."""
    guide = big_guide(tmp_path / "g.xml", hours=400)
    size = guide.stat().st_size
    with (
        guide.open("rb") as fh,
        mock.patch.object(halfsplit, "HELPER_MIN_US", 0.0),
        mock.patch.object(halfsplit, "START_US", 0.0),
        mock.patch.object(halfsplit, "dropped_us", return_value=halfsplit.DROPPED_US),
    ):
        at = halfsplit.even_split(
            fh.fileno(), 0, size, frozenset({"c0", "c1", "c2"}), (WINDOW[0], WINDOW[1])
        )
    assert at is not None
    window_ends = guide.read_bytes().find(f'start="{stamp(WINDOW[1])}"'.encode())
    assert 0 < at < window_ends < size / 2


def _spelled_guide(path: Path, canonical: bool, hours: int = 400) -> Path:
    """`big_guide`'s time order, each programme spelled as our writer spells it, or with a
    description to strip (read by plain.py, not canonical.py)."""
    extra = "" if canonical else " "
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<tv generator-info-name="t">']
    parts += [f'<channel id="{c}"><display-name>{c}</display-name></channel>' for c in CHANNELS]
    for h in range(hours):
        t = WINDOW[0] - 30 * HOUR + h * HOUR / 2
        parts += [
            f'<programme start="{stamp(t)}" stop="{stamp(t + HOUR / 2)}" channel="{c}">'
            f'<title lang="en">Show {h}</title><desc>{extra}{"words " * 9}end</desc></programme>'
            for c in CHANNELS
        ]
    parts.append("</tv>\n")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def test_programmes_spelled_as_we_write_them_cost_less_to_keep(tmp_path: Path) -> None:
    """canonical.py reads a kept programme so spelled at ~3x a dropped one's cost, not ~13x: the
    reader's half takes more of the window (a third-party guide's reader waited 0.57 s of 1.7 s
    for its helper when every kept programme was priced as plain.py's)."""
    splits = {}
    for canonical in (True, False):
        guide = _spelled_guide(tmp_path / f"{canonical}.xml", canonical)
        data = guide.read_bytes()
        priced = halfsplit.dropped_us(data[len(data) // 2 :][:16384])
        assert priced == (
            halfsplit.DROPPED_BESIDE_CANONICAL_US
            if canonical
            else halfsplit.DROPPED_BESIDE_PLAIN_US
        )
        with (
            guide.open("rb") as fh,
            mock.patch.object(halfsplit, "HELPER_MIN_US", 0.0),
            mock.patch.object(halfsplit, "START_US", 0.0),
        ):
            at = halfsplit.even_split(
                fh.fileno(), 0, len(data), frozenset({"c0", "c1", "c2"}), (WINDOW[0], WINDOW[1])
            )
        assert at is not None
        splits[canonical] = at / len(data)
    assert splits[False] < splits[True] < 0.5


@pytest.mark.parametrize(
    "tags",
    [
        b'<programme start="1" stop="2" channel="c">',  # the DTD's order: one match a tag
        b'<programme channel="c" start="1" stop="2">',
        b'<programme start="1" channel="c">',  # no stop
        b'<programme start="1" stop="2" channel="c" catchup-id="9">',
        b'<programme start="1" stop="2" channel="c">'
        b'<programme stop="2" start="1" channel="c">',  # one of two spelled otherwise
    ],
)
def test_a_samples_start_tags_are_read_however_spelled(tags: bytes) -> None:
    """The split's estimate reads each programme's start, stop and channel (an empty value
    for one it lacks): by one pattern where every tag is spelled in the DTD's order."""
    sample = b"<title>T</title></programme>\n".join([b"x", tags, b"</tv>"])
    found = halfsplit._start_tags(sample)
    expected = (b"1", b"2" if b"stop" in tags else b"", b"c")
    assert found == [expected] * tags.count(b"<programme ")


_WRITTEN, _PLAIN, _OTHER = "written", "plain", "other"
_WRITTEN, _PLAIN, _OTHER = "written", "plain", "other"


@pytest.mark.parametrize(
    ("sample", "spelling"),
    [
        (b'x"><programme start="1" stop="2" channel="c"><title>T</title></programme>\n<pr',
         _WRITTEN),
        (b'<programme start="1" stop="2" channel="c"><title lang="de">T</title></programme>',
         _WRITTEN),
        (b'<programme start="1" stop="2" channel="c">\n  <title>T</title>\n</programme>',
         _WRITTEN),  # pretty-printed: compacted
        (b'<programme start="1" stop="2" channel="c">\n  <title> T</title>\n</programme>', _PLAIN),
        (b'<programme start="1" stop="2" channel="c"><title>T</title><sub-title>S</sub-title>'
         b"</programme>", _WRITTEN),
        (b'<programme start="1" stop="2" channel="c"><title>T</title><desc> D</desc>'
         b"</programme>", _PLAIN),
        (b'<programme channel="c" start="1" stop="2"><title>T</title></programme>', _WRITTEN),
        (b'<programme start="1" channel="c"><title>T</title></programme>', _WRITTEN),
        (b"<programme stop='2' start='1' channel='c'><title>T</title></programme>", _WRITTEN),
        (b'<programme stop="2"\n start="1" channel="c"><title>T</title></programme>', _OTHER),
        (b'<programme start="1" stop="2" channel="c"><title>T</title></programme><!-- x -->'
         b'<programme start="1" stop="2" channel="c"><title>T</title></programme>', _OTHER),
        (b"<channel id='c'><display-name>C</display-name></channel>", _OTHER),  # none
        (b'<programme start="1" stop="2" channel="c"><title>T</tit', _OTHER),  # none whole
    ],
)  # fmt: skip
def test_a_samples_spelling_prices_its_reading(sample: bytes, spelling: str) -> None:
    """What a dropped programme costs beside a kept one, by how the sample is spelled."""
    expected = {
        _WRITTEN: halfsplit.DROPPED_BESIDE_CANONICAL_US,
        _PLAIN: halfsplit.DROPPED_BESIDE_PLAIN_US,
        _OTHER: halfsplit.DROPPED_US,
    }[spelling]
    assert halfsplit.dropped_us(sample) == expected


def test_a_helper_whose_reader_is_gone_stops(tmp_path: Path) -> None:
    guide = big_guide(tmp_path / "g.xml")
    data = guide.read_bytes()
    start = data.find(b"</programme>") + len(b"</programme>")
    with temporary(tmp_path) as spill:
        job = HalfJob(
            str(guide),
            "g",
            start,
            data[: data.find(b">", data.find(b"<tv")) + 1],
            frozenset({"c0"}),
            (float("-inf"), float("inf")),
            True,
            os.dup(spill.fileno()),
            -1,  # not our parent: the reader is gone
            -1,
        )
        with pytest.raises(SystemExit):
            run_half(job)


@pytest.mark.parametrize("parallel", [True, False])
def test_epg_parallel_turns_the_helper_on_and_off(tmp_path: Path, parallel: bool) -> None:
    """`epg.parallel` reaches the reader through the guide job (worker.py)."""
    guide = big_guide(tmp_path / "g.xml")
    settings = load_settings(
        None, {"data_dir": str(tmp_path / "data"), "epg": {"parallel": parallel}}, env={}
    )
    job = guide_job(settings, guide)
    with (
        mock.patch.object(prefilter, "CHUNK", 4096),
        mock.patch.object(halves, "SPLIT_MIN", 0),
        mock.patch.object(halfsplit, "HELPER_MIN_US", 0.0),
        mock.patch.object(halfsplit, "START_US", 0.0),
        mock.patch.object(stage, "_take_half", wraps=stage._take_half) as took,
    ):
        result = run_guide_job(job)
    assert not result.failed
    assert took.call_count == int(parallel)
    assert b"Show" in read_guide(settings.paths.guide("d0"))


@pytest.mark.parametrize(
    ("cpu_max", "helper"),
    [("max 100000\n", True), ("200000 100000\n", True), ("100000 100000\n", False), ("", True)],
)
def test_a_pod_limited_to_one_cpu_reads_with_one_process(
    tmp_path: Path, cpu_max: str, helper: bool
) -> None:
    limit = tmp_path / "cpu.max"
    limit.write_text(cpu_max)  # empty: unreadable, the affinity alone counts
    with (
        mock.patch.object(cpus, "CPU_MAX", limit),
        mock.patch("plextuner.epg.halves.os.sched_getaffinity", return_value={0, 1}),
    ):
        assert (cpus.usable_cpus() >= 1.5) is helper
        split = read(tmp_path / "r", big_guide(tmp_path / "g.xml"), True)
    assert split.halves == int(helper)


def test_a_reader_that_cannot_sample_its_file_reads_on_alone(tmp_path: Path) -> None:
    guide = big_guide(tmp_path / "g.xml")
    whole = read(tmp_path / "w", guide, False)
    with mock.patch("plextuner.epg.halves.os.pread", side_effect=OSError(5, "I/O error")):
        split = read(tmp_path / "s", guide, True)
    assert split.halves == 0
    assert (split.guides, split.counts) == (whole.guides, whole.counts)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_the_helper_answers_cleanly_when_it_logs(tmp_path: Path) -> None:
    """A helper whose disk is full says so in its answer; its log line (structlog, unconfigured,
    prints to stdout) goes to stderr, not into the answer the parent unpickles."""
    import pickle
    import subprocess

    guide = big_guide(tmp_path / "g.xml")
    data = guide.read_bytes()
    start = data.find(b"</programme>") + len(b"</programme>")
    full = os.open("/dev/full", os.O_RDWR)  # every write: ENOSPC
    answer = temporary(tmp_path)
    try:
        job = HalfJob(
            str(guide),
            "g",
            start,
            data[: data.find(b">", data.find(b"<tv")) + 1],
            frozenset(CHANNELS),
            (float("-inf"), float("inf")),
            True,
            full,
            os.getpid(),
            answer.fileno(),
        )
        done = subprocess.run(
            halves.HELPER,
            input=pickle.dumps(job),
            capture_output=True,
            pass_fds=(full, answer.fileno()),
            timeout=120,
            check=True,
        )
        result = read_answer(answer)
    finally:
        os.close(full)
        answer.close()
    assert result.problem == "the disk is full"
    assert b"guide_spill_full" in done.stderr


def _hostile_guide(pieces: list[tuple[str, int, int]]) -> str:
    """Programmes, and `</programme>` where a split must not fall: in a comment, a CDATA
    section, a processing instruction; a channel listed late; entities and a missing stop; a
    programme libxml2 refuses (a bare `&` and an HTML entity: resync.py mends it)."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<tv>']
    out += [f'<channel id="{c}"><display-name>{c}</display-name></channel>' for c in CHANNELS]
    for kind, c, h in pieces:
        t = WINDOW[0] - 6 * HOUR + h * HOUR
        channel = CHANNELS[c % len(CHANNELS)]
        stop = f' stop="{stamp(t + HOUR)}"' if h % 4 else ""
        programme = (
            f'<programme start="{stamp(t)}"{stop} channel="{channel}"><title>T{h} &amp; co'
            f"</title><desc>d{h}</desc></programme>"
        )
        if kind == "comment":
            out.append(f"<!-- {programme} -->")
        elif kind == "cdata":
            out.append(programme.replace(f"<desc>d{h}", f"<desc><![CDATA[x</programme>{h}]]>"))
        elif kind == "pi":
            out.append(f"<?note {programme} ?>")
        elif kind == "channel":
            out.append(f'<channel id="x{h}"><display-name>X{h}</display-name></channel>')
        elif kind == "broken":
            out.append(programme.replace("&amp; co", "& co&nbsp;"))
        else:
            out.append(programme)
    out.append("</tv>\n")
    return "\n".join(out)


@settings(max_examples=20, deadline=None)
@given(
    pieces=st.lists(
        st.tuples(
            st.sampled_from(["plain"] * 6 + ["comment", "cdata", "pi", "channel", "broken"]),
            st.integers(0, 3),
            st.integers(0, 40),
        ),
        min_size=1,
        max_size=80,
    ),
    pick=st.integers(0, 10_000),
)
def test_a_split_anywhere_reads_what_one_reader_reads(
    tmp_path_factory: pytest.TempPathFactory, pieces: list[tuple[str, int, int]], pick: int
) -> None:
    """Whichever `</programme>` the split lands after (inside a comment, CDATA section or
    processing instruction too, before the reader or past it), the guides and counts are one
    reader's: the half is taken only where it is right."""
    tmp = tmp_path_factory.mktemp("split")
    guide = tmp / "g.xml"
    guide.write_text(_hostile_guide(pieces), encoding="utf-8")
    data = guide.read_bytes()
    ends = [
        i + len(b"</programme>") for i in range(len(data)) if data.startswith(b"</programme>", i)
    ]
    assume(ends)
    whole = read(tmp / "w", guide, False)
    with mock.patch.object(halves, "boundary", return_value=ends[pick % len(ends)]):
        split = read(tmp / "s", guide, True, chunk=256)
    event(
        f"the helper's half taken: {bool(split.halves)}"
    )  # both kinds, see --hypothesis-show-statistics
    assert (split.guides, split.counts, split.guide_channels) == (
        whole.guides,
        whole.counts,
        whole.guide_channels,
    )
    broken = sum(kind == "broken" for kind, _, _ in pieces)
    assert whole.malformed <= broken and split.malformed <= broken


def test_a_job_bigger_than_a_pipe_reaches_the_helper(tmp_path: Path) -> None:
    """A big lineup's wanted ids (here 40k more, ~600 KB pickled: more than a pipe holds) reach
    the helper whole."""
    guide = big_guide(tmp_path / "g.xml")
    whole = read(tmp_path / "w", guide, False)
    real = match_pending

    def many(data: GuideData, entries: list[LineupEntry]) -> set[str]:
        return real(data, entries) | {f"unused-{i}.example" for i in range(40_000)}

    with mock.patch.object(stage, "match_pending", many):
        split = read(tmp_path / "s", guide, True)
    assert split.halves == 1
    assert (split.guides, split.counts) == (whole.guides, whole.counts)


def test_the_helper_reads_the_readers_file_even_if_its_path_is_replaced(tmp_path: Path) -> None:
    """A second refresh fetching the same guide replaces the cached file by rename while the
    first reads it: the helper reads the file its reader opened, not the new one."""
    guide = big_guide(tmp_path / "g.xml")
    whole = read(tmp_path / "w", guide, False)
    newer = tmp_path / "newer.xml"
    newer.write_bytes(guide.read_bytes().replace(b"<title>Show ", b"<title>Other "))
    launch = halves.SecondHalf._launch

    def then_replaced(self: halves.SecondHalf, wanted: frozenset[str], split: int) -> None:
        launch(self, wanted, split)
        os.replace(newer, guide)  # before the helper has imported its modules and opened it

    with mock.patch.object(halves.SecondHalf, "_launch", then_replaced):
        split = read(tmp_path / "s", guide, True)
    assert split.halves == 1
    assert (split.guides, split.counts) == (whole.guides, whole.counts)
    assert b"Other" not in b"".join(split.guides.values())


def test_the_helper_starts_before_the_channels_are_matched(tmp_path: Path) -> None:
    """Warmed: its start-up overlaps the matching; that one process takes the job."""
    guide = big_guide(tmp_path / "g.xml")
    spawned: list[object] = []
    seen_at_match: list[int] = []
    real_popen, real_match = subprocess.Popen, match_pending

    def popen(*args: Any, **kwargs: Any) -> Any:
        spawned.append(args[0])
        return real_popen(*args, **kwargs)

    def match(*args: Any, **kwargs: Any) -> Any:
        seen_at_match.append(len(spawned))
        return real_match(*args, **kwargs)

    with (
        mock.patch("subprocess.Popen", popen),
        mock.patch.object(stage, "match_pending", match),
    ):
        split = read(tmp_path, guide, True)
    assert split.halves == 1
    assert seen_at_match[0] == 1  # already running when the channels were matched
    assert spawned == [halves.HELPER]  # and it was the one that read the second half


def test_a_warmed_helper_not_needed_is_gone_at_once(tmp_path: Path) -> None:
    guide = big_guide(tmp_path / "g.xml")
    with guide.open("rb") as fh, mock.patch.object(halves, "SPLIT_MIN", 0):
        half = halves.SecondHalf(fh, fh.read(4096), "g", WINDOW, True, tmp_path / "spill")
        proc = half._proc
        assert proc is not None and proc.poll() is None  # warmed, waiting for its job
        half.start(frozenset())  # nothing wanted: not worth a helper
        assert half._proc is None and proc.returncode is not None
        half.close()


def test_a_warmed_helper_gone_before_its_job_is_started_again(tmp_path: Path) -> None:
    guide = big_guide(tmp_path / "g.xml")
    whole = read(tmp_path / "w", guide, False)
    warm = halves.SecondHalf._warm

    def warm_then_die(self: halves.SecondHalf) -> None:
        warm(self)
        assert self._proc is not None
        self._proc.kill()
        self._proc.wait()

    with mock.patch.object(halves.SecondHalf, "_warm", warm_then_die):
        split = read(tmp_path / "s", guide, True)
    assert split.halves == 1
    assert (split.guides, split.counts) == (whole.guides, whole.counts)


def test_a_helper_sent_no_job_leaves_quietly() -> None:
    done = subprocess.run(halves.HELPER, input=b"", capture_output=True, timeout=60, check=False)
    assert (done.returncode, done.stderr) == (0, b"")
