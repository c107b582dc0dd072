"""A programme libxml2 refuses costs that programme at most, never the rest of its guide
(epg/resync.py).

Each breakage here is one real grabbers and providers write (a bare `&`, an HTML entity, a
control character, a Windows-1252 byte in a UTF-8 file, a `<` in text, a tag left open). A guide
holding them is read both ways (plain programmes from their bytes, and every programme through
the parser: tests/unit/test_guide_plain.py's `read`) and compared with the same guide written
correctly: every other programme is kept as it was, and the broken one as it was meant.
"""

from __future__ import annotations

import io
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plextuner.epg import prefilter, resync
from plextuner.epg.ends import Ends
from plextuner.epg.mend import mended
from plextuner.epg.model import GuideChannel, ParseOutcome, Programme
from plextuner.epg.xmltv import iter_guide
from tests.unit.test_guide_plain import read

IDS = ["a.tv", "b.tv", "ü.tv", "x.tv"]  # the lineup carries the first three (test_guide_plain)
STARTS = ["20231114221320 +0000", "20231114231320 +0000", "20231115001320 +0000"]
# (as written, as meant): the title's bytes in the guide, and the same title written correctly
BREAKAGES = [
    (b"Business & Financial", b"Business &amp; Financial"),
    (b"A&B", b"A&amp;B"),
    (b"Caf&eacute; &nbsp;Live", "Café \u00a0Live".encode()),
    (b"&bogus; news", b"&amp;bogus; news"),
    (b"Ctrl\x1aZ", b"CtrlZ"),
    (b"Ref &#1; &#xD800;x", b"Ref  x"),
    (b"Caf\xe9 \x93quoted\x94", "Café “quoted”".encode()),
    (b"Under <18 & a < b", b"Under &lt;18 &amp; a &lt; b"),
]


def programme(channel: str, start: str, title: bytes, desc: bytes = b"d") -> bytes:
    return b'<programme start="%s" channel="%s"><title>%s</title><desc>%s</desc></programme>\n' % (
        start.encode(),
        channel.encode(),
        title,
        desc,
    )


def guide(programmes: list[bytes]) -> bytes:
    head = b'<?xml version="1.0" encoding="UTF-8"?>\n<tv generator-info-name="t">\n'
    channels = b"".join(
        b'<channel id="%s"><display-name>%s</display-name></channel>\n' % (c.encode(), c.encode())
        for c in IDS
    )
    return head + channels + b"".join(programmes) + b"</tv>\n"


def outcome_of(body: bytes, fold: bool | None = None) -> tuple[list[Any], ParseOutcome]:
    outcome = ParseOutcome("t")
    window = (1_700_000_000.0, 1_700_000_000.0 + 6 * 3600.0)
    items = list(iter_guide(io.BytesIO(body), "t", outcome, None, window, fold=fold))
    return items, outcome


@pytest.mark.parametrize(("written", "meant"), BREAKAGES)
@pytest.mark.parametrize("at", [0, 700, 1499])
def test_a_broken_programme_costs_nothing_else(written: bytes, meant: bytes, at: int) -> None:
    """1,500 programmes, one broken (first, mid-block, last): both readings keep what the guide
    written correctly keeps, the broken programme mended."""
    titles = [b"Show %d" % n for n in range(1500)]
    spots = [(IDS[n % 4], STARTS[n % 3]) for n in range(1500)]
    broken = guide(
        [
            programme(c, s, written if n == at else t)
            for n, ((c, s), t) in enumerate(zip(spots, titles, strict=True))
        ]
    )
    right = guide(
        [
            programme(c, s, meant if n == at else t)
            for n, ((c, s), t) in enumerate(zip(spots, titles, strict=True))
        ]
    )
    for fast in (True, False):
        assert read(broken, True, fast)[:2] == read(right, True, fast)[:2]
    items, outcome = outcome_of(broken)
    assert (outcome.malformed, outcome.truncated) == (1, None)
    assert outcome.malformed_first is not None
    assert outcome.malformed_first.startswith(f'<programme start="{spots[at][1]}"')
    assert sum(isinstance(i, Programme) for i in items) == 1500


@pytest.mark.parametrize(
    "body",
    [
        b"<title>T</title><credits><actor>A</credits>",  # a tag closed by another's end tag
        b"<title>T</title><desc>left open",
        b"<title>T</title><desc>a</title></desc>",
        b'<title>T</title><icon src="x.png"><desc>d</desc>',  # an empty element not closed
    ],
)
def test_a_programme_with_tags_left_open_is_read_as_libxml2_recovers_it(body: bytes) -> None:
    """Mismatched tags: the programme read by libxml2's recovery (its channel, time and
    title), and every other programme as it was."""
    programmes = [programme(IDS[n % 3], STARTS[0], b"Show %d" % n) for n in range(40)]
    programmes[20] = b'<programme start="%s" channel="b.tv">%s</programme>\n' % (
        STARTS[1].encode(),
        body,
    )
    items, outcome = outcome_of(guide(programmes))
    kept = [i for i in items if isinstance(i, Programme)]
    assert [p.title for p in kept] == [f"Show {n}" for n in range(20)] + ["T"] + [
        f"Show {n}" for n in range(21, 40)
    ]
    assert (kept[20].channel, outcome.malformed, outcome.truncated) == ("b.tv", 1, None)


def test_every_programme_broken_is_every_programme_mended() -> None:
    """A guide whose every title holds a bare `&` (a grabber that never escapes): each is read
    alone and a fresh parser started after it; nothing lost."""
    body = guide([programme(IDS[n % 3], STARTS[0], b"Law & Order %d" % n) for n in range(3000)])
    items, outcome = outcome_of(body)
    titles = [i.title for i in items if isinstance(i, Programme)]
    assert titles == [f"Law & Order {n}" for n in range(3000)]
    assert (outcome.malformed, outcome.truncated) == (3000, None)


@pytest.mark.parametrize("fold", [None, True])
def test_every_programme_broken_amid_comments_is_read_in_one_pass(fold: bool | None) -> None:
    """With comments in the block (where an end tag may hide), where its elements end is found
    once a block, not again from each refused programme to the block's end: 3,000 refused
    programmes were 8 ms each (the rest of the block fed to a `Markup` for each), a guide of
    300 MB hours. What is scanned stays within a few times the guide's bytes."""
    body = guide(
        [
            programme(
                IDS[n % 3], STARTS[0], b"Law & Order %d" % n, b"<!-- n -->d" if n % 19 else b"d"
            )
            for n in range(3000)
        ]
    )
    scanned = 0
    real = Ends.of

    def counted(rest: bytes, state: Any, kind: Any, skip: int = 0, upto: int = -1) -> Any:
        nonlocal scanned
        ends = real(rest, state, kind, skip, upto)
        if upto < 0:  # (a search up to a refused element costs only the way to it)
            scanned += len(rest) - skip
        return ends

    with mock.patch.object(Ends, "of", side_effect=counted):
        items, outcome = outcome_of(body, fold)
    titles = [i.title for i in items if isinstance(i, Programme)]
    if fold:  # (read from their bytes, the kept ones come as runs: counted, not compared)
        assert outcome.programmes == 3000
    else:
        assert titles == [f"Law & Order {n}" for n in range(3000)]
    assert (outcome.malformed, outcome.truncated) == (3000, None)
    assert scanned <= 3 * len(body)


def test_past_the_bound_the_guide_ends_as_before() -> None:
    """More than MALFORMED_MAX refused programmes, most of what was read: the reading ends at
    the next, reported as truncated (what came before it kept)."""
    body = guide([programme("a.tv", STARTS[0], b"A & %d" % n) for n in range(10)])
    with mock.patch.object(resync, "MALFORMED_MAX", 3):
        items, outcome = outcome_of(body)
    assert outcome.malformed == 3 and outcome.truncated
    titles = [i.title for i in items if isinstance(i, Programme)]
    assert titles[:3] == [f"A & {n}" for n in range(3)]
    assert titles[3:] in ([], ["A"])  # as libxml2 left the fourth (its title cut at the `&`)


def test_past_the_bound_a_guide_mostly_read_goes_on() -> None:
    """More than MALFORMED_MAX refused programmes, but a minority of the guide (a grabber that
    never escapes `&`, one title in four holding one): every programme kept, none lost."""
    body = guide(
        [
            programme("a.tv", STARTS[0], b"A & %d" % n if n % 4 == 0 else b"S %d" % n)
            for n in range(40)
        ]
    )
    with mock.patch.object(resync, "MALFORMED_MAX", 3):
        items, outcome = outcome_of(body)
    titles = [i.title for i in items if isinstance(i, Programme)]
    assert titles == [f"A & {n}" if n % 4 == 0 else f"S {n}" for n in range(40)]
    assert (outcome.malformed, outcome.truncated) == (10, None)


def test_a_file_that_ends_early_still_says_so() -> None:
    """A guide cut inside its last programme: no programme to resume after; what came before
    is kept and the outcome says truncated, as before."""
    body = guide([programme("a.tv", STARTS[0], b"S %d" % n) for n in range(50)])
    cut = body[: body.rindex(b"<title>") + 9]
    items, outcome = outcome_of(cut)
    titles = [i.title for i in items if isinstance(i, Programme)]
    assert titles[:49] == [f"S {n}" for n in range(49)] and len(titles) <= 50
    assert outcome.truncated and outcome.malformed == 0


def test_a_broken_channel_costs_nothing_else() -> None:
    """A channel list with a refused display name (zap2it-style "Heroes & Icons"): the channels
    are cut after a `</channel>` and counted as programmes are, so that channel is mended and
    read alone, and every channel and programme after it read."""
    body = guide([programme(IDS[n % 3], STARTS[0], b"S %d" % n) for n in range(30)])
    broken = body.replace(b"<display-name>b.tv", b"<display-name>Heroes & Icons")
    items, outcome = outcome_of(broken)
    channels = [(i.id, i.names) for i in items if isinstance(i, GuideChannel)]
    assert channels == [
        ("a.tv", ("a.tv",)),
        ("b.tv", ("Heroes & Icons",)),
        ("ü.tv", ("ü.tv",)),
        ("x.tv", ("x.tv",)),
    ]
    assert sum(isinstance(i, Programme) for i in items) == 30
    assert (outcome.malformed, outcome.truncated) == (1, None)
    assert outcome.malformed_first == '<channel id="b.tv">: xmlParseEntityRef: no name'


def test_a_broken_channel_after_channels_with_no_end_tag_costs_nothing_else() -> None:
    """Channels written `<channel id="x"/>` (no name, against the DTD) make an end event and
    no end tag: counted as ends all the same, so the parser stopping at a refused channel
    after them is seen, and that channel mended."""
    body = guide([programme(IDS[n % 3], STARTS[0], b"S %d" % n) for n in range(30)])
    broken = body.replace(
        b'<channel id="b.tv">',
        b'<channel id="n1"/><channel id="n2" />\n<channel id="n3"/><channel id="b.tv">',
    ).replace(b"<display-name>b.tv", b"<display-name>Heroes & Icons")
    items, outcome = outcome_of(broken)
    channels = [(i.id, i.names) for i in items if isinstance(i, GuideChannel)]
    assert channels[1:5] == [("n1", ()), ("n2", ()), ("n3", ()), ("b.tv", ("Heroes & Icons",))]
    assert len(channels) == 7
    assert sum(isinstance(i, Programme) for i in items) == 30
    assert (outcome.malformed, outcome.truncated) == (1, None)


def test_a_broken_channel_listed_late_is_read_with_its_programme() -> None:
    """A channel listed late, between programmes (the DTD puts them first; some grabbers do
    not), its name refused: read alone with the programme after it, neither lost; a channel
    listed late and fine, before a refused programme, is not read twice."""
    programmes = [programme(IDS[n % 3], STARTS[0], b"S %d" % n) for n in range(20)]
    late = b'<channel id="late.tv"><display-name>%s</display-name></channel>\n'
    programmes[8] = late % b"Heroes & Icons" + programmes[8]
    programmes[14] = late.replace(b"late", b"fine") % b"Fine" + programmes[14].replace(
        b"S 14", b"S & 14"
    )
    items, outcome = outcome_of(guide(programmes))
    channels = [(i.id, i.names) for i in items if isinstance(i, GuideChannel)]
    assert channels[4:] == [("late.tv", ("Heroes & Icons",)), ("fine.tv", ("Fine",))]
    titles = [i.title for i in items if isinstance(i, Programme)]
    assert titles == [f"S {n}" if n != 14 else "S & 14" for n in range(20)]
    assert (outcome.malformed, outcome.truncated, outcome.skipped) == (2, None, 0)


@st.composite
def broken_channels(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A guide whose channel list has some names broken, and the same written correctly."""
    head = b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- a grabber -->\n<tv>\n'
    broken, right = [head], [head]
    for n in range(draw(st.integers(1, 40))):
        written = meant = b"Channel %d" % n
        if draw(st.integers(0, 3)) == 0:
            written, meant = draw(st.sampled_from(BREAKAGES))
        sep = draw(st.sampled_from([b"", b"\n", b"<!-- c -->\n"]))
        if draw(st.integers(0, 4)) == 0:  # no name, and so no end tag (against the DTD)
            broken.append(b'%s<channel id="c%d"/>\n' % (sep, n))
            right.append(broken[-1])
            continue
        tag = b'%s<channel id="c%d"><display-name>%%s</display-name></channel>\n' % (sep, n)
        broken.append(tag % written)
        right.append(tag % meant)
    tail = programme("c0", STARTS[0], b"S") + b"</tv>\n"
    return b"".join(broken) + tail, b"".join(right) + tail


@given(
    broken_channels(),
    st.sampled_from([7, 300, 4096, 256 * 1024]),
    st.sampled_from([5, 100, 64 * 1024]),
)
@settings(max_examples=100, deadline=None)
def test_broken_channels_anywhere_cost_nothing_else(
    guides: tuple[bytes, bytes], chunk: int, feed: int
) -> None:
    """Whatever the block and piece sizes (the prolog over several blocks too): the channels
    and programmes of the guide written correctly."""
    broken, right = guides
    with (
        mock.patch.object(prefilter, "CHUNK", chunk),
        mock.patch.object(resync, "FEED_BYTES", feed),
    ):
        items, outcome = outcome_of(broken)
        expected, _ = outcome_of(right)
    assert items == expected and outcome.truncated is None


# A programme commented out: its end tag ends no programme (the ends are looked for outside it)
COMMENTED = b"<!-- " + programme("a.tv", STARTS[0], b"gone").strip() + b" -->\n"


@st.composite
def broken_guide(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A guide with some programmes broken, and the same guide written correctly."""
    broken, right = [], []
    for n in range(draw(st.integers(1, 60))):
        channel, start = draw(st.sampled_from(IDS)), draw(st.sampled_from(STARTS))
        title = b"Show %d" % n
        written = meant = title
        if draw(st.integers(0, 4)) == 0:
            written, meant = draw(st.sampled_from(BREAKAGES))
        sep = draw(st.sampled_from([b"", b"\n", b"<!-- c -->\n", COMMENTED]))
        broken.append(sep + programme(channel, start, written))
        right.append(sep + programme(channel, start, meant))
    return guide(broken), guide(right)


@given(
    broken_guide(),
    st.sampled_from([7, 300, 4096, 256 * 1024]),
    st.sampled_from([5, 100, 64 * 1024]),
)
@settings(max_examples=150, deadline=None)
def test_broken_programmes_anywhere_cost_nothing_else(
    guides: tuple[bytes, bytes], chunk: int, feed: int
) -> None:
    """Whatever the block and piece sizes, with comments between programmes (which stop the
    end tags' count and make the programmes' ends be looked for outside markup), a programme
    commented out (a block may begin inside it): both readings keep what the guide written
    correctly keeps."""
    broken, right = guides
    with (
        mock.patch.object(prefilter, "CHUNK", chunk),
        mock.patch.object(resync, "FEED_BYTES", feed),
    ):
        for fast in (True, False):
            assert read(broken, True, fast)[:2] == read(right, True, fast)[:2]


@pytest.mark.parametrize(
    ("piece", "utf8", "expected"),
    [
        (b"a & b &amp; c", True, b"a &amp; b &amp; c"),
        (b"&nbsp;&eacute;&NotEqualTilde;", True, b"&#160;&#233;&#8770;&#824;"),
        (b"&#65;&#x41;&#0;&#xFFFE;&#1114112;", True, b"&#65;&#x41;"),
        (b"&lt;&gt;&quot;&apos;&unknown;", True, b"&lt;&gt;&quot;&apos;&amp;unknown;"),
        (b"a\x00b\x1fc\td\ne\rf", True, b"abc\td\ne\rf"),
        ("é".encode() + b" \xe9 \x80 \x81", True, "é é € \u0081".encode()),
        (b"\xe9", False, b"\xe9"),  # a Latin-1 guide's byte: its own
        (b"1 < 2 <= 3 <<a/>", True, b"1 &lt; 2 &lt;= 3 &lt;<a/>"),
    ],
)
def test_mended(piece: bytes, utf8: bool, expected: bytes) -> None:
    assert mended(piece, utf8) == expected


@given(
    st.integers(0, 10**9),
    st.sampled_from(b'<>&"/=\x00\x1a \n\xe9x'),
    st.sampled_from([7, 300, 256 * 1024]),
    st.sampled_from([5, 64 * 1024]),
    st.sampled_from([None, True]),
)
@settings(max_examples=300, deadline=None)
def test_one_byte_wrong_anywhere_costs_two_programmes_at_most(
    where: int, byte: int, chunk: int, feed: int, fold: bool | None
) -> None:
    """One byte of a guide changed anywhere from its first channel to its end: in a channel's
    tags, its end tag, between the list and the first programme (libxml2 then says so only
    once that programme's bytes come), a programme's start or end tag or text. The reading
    never fails, and loses two programmes at most (one whose end tag breaks joins the next)."""
    body = bytearray(guide([programme(IDS[n % 4], STARTS[n % 3], b"S %d" % n) for n in range(30)]))
    lo, hi = body.index(b"<channel"), body.rindex(b"</tv>")
    body[lo + where % (hi - lo)] = byte
    outcome = ParseOutcome("t")
    window = (0.0, 4e9) if fold else None
    with (
        mock.patch.object(prefilter, "CHUNK", chunk),
        mock.patch.object(resync, "FEED_BYTES", feed),
    ):
        for _ in iter_guide(io.BytesIO(bytes(body)), "t", outcome, None, window, fold=fold):
            pass
    assert outcome.programmes >= 28
