"""A comment, CDATA section or PI a guide never closes (epg/unclosed.py): libxml2 reads the rest
of the file into it, so the reading goes on from the next element with a fresh document; the
broken programme is what is lost, and what closes, however late, is read as the parser reads
it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from plextuner.epg import prefilter, resync, unclosed, xmltv
from plextuner.epg.model import GuideChannel, ParseOutcome, Programme
from plextuner.epg.xmltv import iter_guide
from tests.unit.test_guide_halves import read
from tests.unit.test_guide_spill import HOUR, WINDOW, stamp

OPENERS = ["<![CDATA[x", "x<!-- y", "x<?pi y"]
LOREM = " ".join(["lorem"] * 120)  # a long body (canonical.LONG), no space at its end


def guide(n: int = 300, broken: dict[int, str] | None = None, channel: str = "") -> bytes:
    """`n` programmes of channel c in the window, titled T0..; `broken`: a title by index;
    `channel`: a second channel's display-name (listed first)."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<tv>']
    if channel:
        parts.append(f'<channel id="b"><display-name>{channel}</display-name></channel>')
    parts.append('<channel id="c"><display-name>C</display-name></channel>')
    for i in range(n):
        t = WINDOW[0] + i * HOUR / 16  # (all in the window)
        title = (broken or {}).get(i, f"T{i}")
        parts.append(
            f'<programme start="{stamp(t)}" stop="{stamp(t + HOUR / 16)}" channel="c">'
            f"<title>{title}</title><desc>d {i}</desc></programme>"
        )
    parts.append("</tv>\n")
    return "\n".join(parts).encode()


def titles(data: bytes) -> tuple[list[str], list[str], ParseOutcome]:
    """The programmes' titles and the channels' ids read, the wanted channels asked once."""
    outcome = ParseOutcome("g")
    asked: list[int] = []

    def wanted() -> set[str]:
        asked.append(1)
        return {"c"}

    items = list(iter_guide(io.BytesIO(data), "g", outcome, wanted, WINDOW))
    assert len(asked) == 1
    shows = [p.title for p in items if isinstance(p, Programme)]
    return shows, [c.id for c in items if isinstance(c, GuideChannel)], outcome


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("fold", [None, True])
def test_a_construct_left_open_costs_its_programme(opener: str, fold: bool | None) -> None:
    outcome = ParseOutcome("g")
    data = guide(broken={7: opener})
    items = list(iter_guide(io.BytesIO(data), "g", outcome, lambda: {"c"}, WINDOW, fold=fold))
    assert outcome.truncated is None
    assert outcome.malformed == 1
    assert outcome.malformed_first is not None and "opened at byte" in outcome.malformed_first
    assert outcome.programmes == 300  # the broken one as far as the parser read it
    if fold is None:
        shows = [p.title for p in items if isinstance(p, Programme)]
        assert shows[:7] == [f"T{i}" for i in range(7)]
        assert shows[8:] == [f"T{i}" for i in range(8, 300)]


def test_constructs_left_open_again_and_again_cost_one_programme_each() -> None:
    shows, _, outcome = titles(guide(broken={3: OPENERS[0], 100: OPENERS[1], 299: OPENERS[2]}))
    assert outcome.truncated is None and outcome.malformed == 3
    assert [s for s in shows if s.startswith("T")] == [
        f"T{i}" for i in range(300) if i not in (3, 100, 299)
    ]


def test_past_the_bound_the_reading_ends_as_before() -> None:
    with mock.patch.object(xmltv, "RECOVER_MAX", 1):
        shows, _, outcome = titles(guide(broken={3: OPENERS[0], 100: OPENERS[1]}))
    assert outcome.truncated is not None and outcome.malformed == 1
    assert [s for s in shows if s.startswith("T")] == [f"T{i}" for i in range(100) if i != 3]


def test_a_construct_left_open_in_the_channel_list() -> None:
    """The channels and programmes after it are read (the wanted channels asked once)."""
    asked: list[int] = []

    def wanted() -> set[str]:
        asked.append(1)
        return {"c"}

    outcome = ParseOutcome("g")
    data = guide(channel="B<!-- oops")
    items = list(iter_guide(io.BytesIO(data), "g", outcome, wanted, WINDOW))
    assert [c.id for c in items if isinstance(c, GuideChannel)][-1] == "c"
    assert [p.title for p in items if isinstance(p, Programme)] == [f"T{i}" for i in range(300)]
    assert (outcome.truncated, outcome.malformed, len(asked)) == (None, 1, 1)


def test_a_comment_closed_late_is_read_as_the_parser_reads_it() -> None:
    """A commented-out run of programmes stays out, and nothing is counted malformed."""
    data = guide(broken={10: "x<!-- from here", 20: "--> to here"})
    shows, _, outcome = titles(data)
    assert (outcome.truncated, outcome.malformed) == (None, 0)
    assert [s for s in shows if s.startswith("T")] == [
        *[f"T{i}" for i in range(10)],
        *[f"T{i}" for i in range(21, 300)],
    ]


def test_no_construct_left_open_is_no_resume_point() -> None:
    assert unclosed.resume_point(io.BytesIO(guide()), 0) is None
    assert unclosed.resume_point(io.BytesIO(b"<tv><!-- x"), 0) == (4, None)  # nothing follows
    data = guide(broken={5: OPENERS[1]})
    opened, resume = unclosed.resume_point(io.BytesIO(data), 0) or (0, 0)
    assert data[opened : opened + 4] == b"<!--"
    assert (
        data[resume:].startswith(b'<programme start="')
        and data.count(b"<programme", 0, resume) == 6
    )


@pytest.mark.parametrize("hour", [40, 100])  # in the reader's half, in its helper's
def test_a_construct_left_open_in_either_half_costs_its_programme(
    tmp_path: Path, hour: int
) -> None:
    source = tmp_path / "g.xml"
    from tests.unit.test_guide_halves import big_guide

    clean = big_guide(tmp_path / "clean.xml").read_bytes()
    at = clean.find(b"<title>Show %d " % hour)
    source.write_bytes(clean[:at] + b"<title><![CDATA[x" + clean[at + len(b"<title>") :])
    whole, split = read(tmp_path / "w", source, False), read(tmp_path / "s", source, True)
    assert whole.counts[3] is None and whole.malformed == 1
    assert split.counts == whole.counts and split.malformed == 1
    assert split.guides == whole.guides


def test_long_bodies_after_a_construct_left_open_are_read_where_they_lie(
    tmp_path: Path,
) -> None:
    """Bodies read in place in the guide file (`Spill.add_source`) are referenced by where
    they lie: after the reading goes on past the construct, each written programme is still
    its own (offsets counted from where the stream was read on, not from none)."""
    from lxml import etree

    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<tv>']
    parts += [f'<channel id="c{c}"><display-name>{c}</display-name></channel>' for c in "012"]
    for h in range(60):
        t = WINDOW[0] + h * HOUR / 4
        for c in "012":
            title = "<![CDATA[x" if (h, c) == (9, "0") else f"Show {h}"
            parts.append(
                f'<programme start="{stamp(t)}" stop="{stamp(t + HOUR / 4)}" channel="c{c}">'
                f"<title>{title}</title><desc>D{h}/c{c} {LOREM}</desc></programme>"
            )
    parts.append("</tv>\n")
    source = tmp_path / "g.xml"
    source.write_text("\n".join(parts), encoding="utf-8")
    got = read(tmp_path, source, False)
    assert got.counts[3] is None and got.malformed == 1 and got.sourced == 1
    checked = 0
    for body in got.guides.values():
        for p in etree.fromstring(body).iter("programme"):
            title = p.findtext("title") or ""
            if title.startswith("Show "):
                number = (p.get("channel") or "").split(".")[0]
                gid = {"1": "c0", "2": "c1", "3": "c2", "4": "c0"}[number]
                assert (p.findtext("desc") or "").startswith(f"D{title[5:]}/{gid} ")
                checked += 1
    assert checked > 100


def test_a_section_past_a_parser_limit_and_a_comment_left_open_cost_their_programmes() -> None:
    """A CDATA section over libxml2's 10 MB (a comment beside it keeps the prefilter from
    writing it as text) closes, so it is refused as its programme; a comment left open later
    costs its own: everything else is read."""
    huge = "<!-- c --><![CDATA[" + "y" * (11 << 20) + "]]>"
    shows, _, outcome = titles(guide(broken={5: huge, 250: OPENERS[1]}))
    assert (outcome.truncated, outcome.malformed) == (None, 2)
    assert [s for s in shows if s.startswith("T")] == [
        f"T{i}" for i in range(300) if i not in (5, 250)
    ]


def test_a_construct_open_for_long_ends_the_bytes_fed_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """libxml2 holds every byte of an open construct: the reading stops feeding it SWALLOW
    bytes after the opener (not at the end of the file), and goes on past the opener."""
    monkeypatch.setattr(unclosed, "SWALLOW", 4096)
    monkeypatch.setattr(prefilter, "SWALLOW", 4096)
    monkeypatch.setattr(prefilter, "CHUNK", 1024)
    data = guide(broken={7: OPENERS[1]})
    opened = data.index(b"<!--")  # (early in the file: the rest is ~40 KB)
    fed: list[int] = []  # the bytes of each pass fed to the parser
    real_feed = resync.Feeder.feed

    def feed(self: resync.Feeder[Any], block: bytes | None, markup: Any = None) -> Any:
        if block is not None:
            fed.append(len(block))
        return (yield from real_feed(self, block, markup))

    monkeypatch.setattr(resync.Feeder, "feed", feed)
    shows, _, outcome = titles(data)
    assert (outcome.truncated, outcome.malformed) == (None, 1)
    assert [s for s in shows if s.startswith("T")] == [f"T{i}" for i in range(300) if i != 7]
    # The first pass up to SWALLOW past the opener (a block more at most), the second from
    # the opener on: not the file twice, as when the first pass fed all the rest
    assert opened < len(data) // 2
    assert sum(fed) <= len(data) + 4096 + 3 * 1024
