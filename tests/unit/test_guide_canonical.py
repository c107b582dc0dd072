"""Blocks of programmes spelled as our writer writes them are read by one pass (epg/canonical.py)
and kept exactly as the parser's reading keeps them; any block with one programme spelled
otherwise, or anything between programmes, is read as before.

Each test reads a guide both ways (tests/unit/test_guide_plain.py's `same`) and counts the
blocks the one pass took, so a test fails if the pass is never taken as well as if it keeps
something the parser would not."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plextuner.epg import canonical, plain, prefilter, splitjoin, starttags
from tests.unit.test_guide_plain import IDS, TIMES, guide, read, same

# Texts whose ends or insides could make the writer's bytes differ from the source's: spaces
# to strip (ASCII and not), entities, a `>` the writer escapes, quotes, tabs, non-ASCII.
EDGY = [
    "News", "A", "Tom &amp; Jerry", "&lt;b&gt;", " padded", "padded ", "\u00a0nbsp", "x\u3000",
    "caf\u00e9", "\u00e9t\u00e9", "a > b", "say \"hi\"", "tab\there", "two\nlines", "&amp;",
    ";", "=", "?", "~", "!x!", "it's", " ", "\n  ", "a >  ",
]  # fmt: skip
SAFE = [
    "News",
    "A",
    "Tom &amp; Jerry",
    "&lt;b&gt;",
    "caf\u00e9 \u00e9t\u00e9 ok",
    'say "hi"',
    "!x!",
]


UNWRITTEN = [
    '<credits><director>D</director><actor role="Lead">A &amp; B</actor><guest/></credits>',
    '<rating system="VCHIP"><value>TV-PG</value><icon src="r.png"/></rating>',
    "<star-rating><value>3/5</value></star-rating>",
    "<video><present>yes</present><aspect>16:9</aspect></video>",
    '<length units="minutes">30</length>',
    "<keyword>k</keyword>",
    "<url>http://u.invalid/x?a=1&amp;b=2</url>",
    "<country>US</country>",
    '<language lang="en">English</language>',
    "<orig-language>fr</orig-language>",
    '<subtitles type="teletext"/>',
    "<premiere/>",
    "<last-chance>Last</last-chance>",
    "<audio><stereo>stereo</stereo></audio>",
    '<review type="text">good</review>',
    '<image type="poster">http://i.invalid/p.jpg</image>',
    "<credits>text around <actor>A</actor> children</credits>",
]
UNWRITTEN_EDGY = [
    "<credits><actor>A<image>i</image></actor></credits>",  # deeper than text-only children
    '<rating system="a>b"><value>x</value></rating>',  # a `>` in a value
    "<keyword>k</keyword>tail",  # a tail between children
    "<desc>A<keyword>k</keyword>B</desc>",  # a tail the reading would join to the text before
    "<desc><credits/>Late</desc>",  # (the parser reads no text in this description)
    "<title>T<url>u</url></title>",  # no tail: dropped, the title read as the parser reads it
    "<keywords>k</keywords>",  # not one of ours
]


@st.composite
def written(draw: st.DrawFn) -> tuple[str, bool]:
    """A programme spelled as the writer writes it (or, one in four, nearly: then its texts,
    icon and systems may hold what the writer would write otherwise)."""
    edgy = draw(st.integers(0, 3)) == 0
    text = st.sampled_from(EDGY if edgy else SAFE)
    start, stop = draw(st.sampled_from(TIMES[:3])), draw(st.sampled_from(TIMES[:3]))
    channel = draw(st.sampled_from(IDS))
    # `lang` as iptv-org spells it, on the elements the writer drops it from (the writer's own
    # spelling has none); edgy: where it is not dropped, or not spelled so
    langs = ["", ' lang="en"', ' lang="fr"', ' lang="x y"', ' lang=""']
    lang = st.sampled_from(langs + ([' lang="en" ', " lang='en'"] if edgy else []))
    kids = [f"<title{draw(lang)}>{draw(text)}</title>"]
    if draw(st.booleans()):  # folded into the title or not (`epg.fold_subtitle`)
        kids.append(f"<sub-title{draw(lang)}>{draw(text)}</sub-title>")
    if draw(st.booleans()):  # (empty: Xtream Codes writes one for every programme)
        kids.append(f"<desc{draw(lang)}>{draw(st.one_of(text, st.just('')))}</desc>")
    if draw(st.booleans()):
        kids.append(f"<date>{draw(text)}</date>")
    kids += [f"<category{draw(lang)}>{c}</category>" for c in draw(st.lists(text, max_size=2))]
    if draw(st.booleans()):
        kids.append(f'<icon src="{draw(st.sampled_from(["u", "a&amp;b", "x y", *[""] * edgy]))}"/>')
    for _ in range(draw(st.integers(0, 2))):
        system = draw(st.sampled_from(["xmltv_ns", "onscreen", *[""] * edgy]))
        kids.append(f'<episode-num system="{system}">{draw(text)}</episode-num>')
    kids += [k for k in ("<previously-shown/>", "<new/>") if draw(st.booleans())]
    # Children the writer does not write (canonical.unwritten_dropped), anywhere among them;
    # edgy: with a tail of text, or where dropping one would join two texts
    for other in draw(st.lists(st.sampled_from(UNWRITTEN + (UNWRITTEN_EDGY if edgy else [])))):
        kids.insert(draw(st.integers(0, len(kids))), other)
    head = f'<programme start="{start}" stop="{stop}" channel="{channel}">'
    return f"{head}{''.join(kids)}</programme>", edgy


@contextmanager
def counted() -> Iterator[list[bool]]:
    """Whether each block tried was read by the one pass."""
    tried: list[bool] = []
    real = canonical.read_block

    def read_block(
        block: bytes, end: int, plain: bool | None = None
    ) -> list[canonical.Found] | None:
        found = real(block, end, plain)
        tried.append(found is not None)
        return found

    with mock.patch.object(canonical, "read_block", read_block):
        yield tried


def programmes_of(n: int, body: Callable[[int], str]) -> list[str]:
    """`n` programmes spelled as the writer spells them, the i-th with `body(i)` inside."""
    return [
        f'\n<programme start="{TIMES[0]}" stop="{TIMES[1]}" channel="{IDS[i % 3]}">'
        f"{body(i)}</programme>"
        for i in range(n)
    ]


def assert_one_pass(programmes: list[str], blocks: int) -> None:
    """Every programme read from its bytes, and every block (of 4 KB, more than `blocks`) by
    the one pass."""
    with mock.patch.object(prefilter, "CHUNK", 4096), counted() as tried:
        assert same(guide(programmes), fold=True) == len(programmes)
    assert len(tried) > blocks and all(tried)


_TAG = re.compile(r'<programme start="([^"]*)" stop="([^"]*)" channel="([^"]*)">')
# Start tags as other generators spell them, a guide at a time: `channel` first (ElementTree's
# sorted attributes), no stop (XMLTV's is optional), both
ORDERS = {
    "writer": r"\g<0>",
    "channel first": r'<programme channel="\3" start="\1" stop="\2">',
    "no stop": r'<programme start="\1" channel="\3">',
    "channel first, no stop": r'<programme channel="\3" start="\1">',
    # respelled first (starttags.respelled): single quotes, other attributes, another order
    "single quotes": r"<programme start='\1' stop='\2' channel='\3'>",
    "other attributes": r'<programme start="\1" stop="\2" start_timestamp="0" channel="\3" x="">',
    "stop first": r'<programme stop="\2" channel="\3" start="\1">',
    "space before the end": r'<programme start="\1" stop="\2" channel="\3" >',  # Xtream Codes'
}


def spelled(programme: str, order: str) -> str:
    return _TAG.sub(ORDERS[order], programme)


# How a pretty-printer indents a programme's children, and its end tag (canonical.compacted):
# lxml's and ElementTree's two spaces, a grabber's tabs, Windows line ends, a bare space
INDENTS = {
    "none": ("", ""),
    "spaces": ("\n    ", "\n  "),
    "tabs": ("\n\t\t", "\n\t"),
    "crlf": ("\r\n  ", "\r\n"),
    "space": (" ", " "),
}


# Empty elements as other writers spell them: ElementTree's `<new />`, Go's `<new></new>`
EMPTIES = {"writer": r"\g<0>", "elementtree": r"<\1\2 />", "go": r"<\1\2></\1>"}
_EMPTY = re.compile(r"<([\w-]+)([^<>]*?)/>")


def indented(programme: str, indent: str, empties: str = "writer") -> str:
    """`programme` with white space between its tags, as a pretty-printer writes it, and its
    empty elements spelled as `empties` spells them."""
    child, end = INDENTS[indent]
    programme = programme.replace("></programme>", f">{end}</programme>").replace(
        "><", f">{child}<"
    )
    return _EMPTY.sub(EMPTIES[empties], programme)


@given(
    st.lists(written(), min_size=1, max_size=12),
    st.sampled_from(["\n", "", "\n  ", "\r\n"]),
    st.booleans(),
    st.sampled_from([7, 300, 1024 * 1024]),
    st.sampled_from(sorted(ORDERS)),
    st.sampled_from(sorted(INDENTS)),
    st.sampled_from(sorted(EMPTIES)),
)
@settings(max_examples=400, deadline=None)
def test_programmes_as_written_are_kept_as_the_parser_keeps_them(
    programmes: list[tuple[str, bool]],
    sep: str,
    fold: bool,
    chunk: int,
    order: str,
    indent: str,
    empties: str,
) -> None:
    """Kept the same either way; a guide with nothing edgy in it is read by the one pass."""
    body = guide([sep + indented(spelled(p, order), indent, empties) for p, _ in programmes])
    with mock.patch.object(prefilter, "CHUNK", chunk), counted() as tried:
        from_bytes = same(body, fold)
    if not any(edgy for _, edgy in programmes):  # (the prefilter may have cut every one)
        assert all(tried) and (tried or not from_bytes)


def test_a_guide_as_written_is_read_by_the_one_pass() -> None:
    """The bench's spelling, every programme kept (titles, descriptions with entities,
    categories, episode numbers, flags, non-ASCII text): every block in one pass."""
    body = (
        "<title>Show {i}</title><desc>An hour &amp; more of caf\u00e9 {i}.</desc>"
        '<category>Series</category><episode-num system="xmltv_ns">0.{i}.</episode-num><new/>'
    )
    programmes = programmes_of(300, lambda i: body.format(i=i))
    assert_one_pass(programmes, 5)
    spelled = [p.replace("<title>", '<title lang="en">') for p in programmes]  # iptv-org's
    spelled = [p.replace("<desc>", '<desc lang="fr">') for p in spelled[:100]] + spelled[100:]
    assert_one_pass(spelled, 5)


def test_other_generators_start_tags_are_read_by_the_one_pass() -> None:
    """A guide whose start tags put `channel` first, or have no stop, or both, or are spelled
    otherwise on one line (single quotes, other attributes, another order): every block in one
    pass, kept as the parser keeps it (a missing stop read as none). A tag over two lines, a
    duplicate attribute or no channel is left to the general reading."""
    programmes = [
        f'\n<programme start="{TIMES[i % 2]}" stop="{TIMES[1 + i % 2]}" channel="{IDS[i % 3]}">'
        f"<title>Show {i}</title><desc>caf\u00e9 &amp; {i}</desc></programme>"
        for i in range(300)
    ]
    for order in ORDERS:
        body = guide([spelled(p, order) for p in programmes])
        with mock.patch.object(prefilter, "CHUNK", 4096), counted() as tried:
            assert same(body, fold=True) == 300, order
        assert len(tried) > 5 and all(tried), order
    for other in (
        r'<programme stop="\2"\n start="\1" channel="\3">',
        r'<programme start="\1" stop="\2" channel="\3" start="\1">',
        r'<programme start="\1" stop="\2" id="\3">',
    ):
        body = guide([_TAG.sub(other, p) for p in programmes])
        with mock.patch.object(prefilter, "CHUNK", 4096), counted() as tried:
            same(body, fold=True)
        assert True not in tried, other


def test_anything_else_in_a_block_leaves_it_to_the_general_reading() -> None:
    """A programme spelled otherwise, an element or text between programmes: that block is
    read the general way, and the same is kept."""
    one = f'<programme start="{TIMES[0]}" stop="{TIMES[1]}" channel="a.tv"><title>A</title>'
    for between in ("<x/>", "text", '<title lang="en">B</title>', "<?pi c?>"):
        programmes = [f"\n{one}</programme>", f"\n{between}", f"\n{one}</programme>"]
        with counted() as tried:
            same(guide(programmes), fold=True)
        assert True not in tried, between
    spelled = one.replace("<title>A</title>", "<title> A</title>")
    with counted() as tried:
        assert same(guide([f"\n{spelled}</programme>"] * 3), fold=True) == 3
    assert tried == [False]


def test_a_block_spelled_otherwise_rests_the_one_pass_a_while() -> None:
    """After a block that was not as written, the next UNWRITTEN_SKIP blocks are not tried."""
    spelled = f'<programme start="{TIMES[0]}" stop="{TIMES[1]}" channel="a.tv">'
    otherwise = [f"\n{spelled}<title> A</title></programme>"] * 40  # a text to strip
    as_written = [f"\n{spelled}<title>A</title></programme>"] * 400
    blocks: list[int] = []
    real = plain.PlainReader.segments

    def segments(self: plain.PlainReader, block: bytes, *args: Any, **kwargs: Any) -> object:
        blocks.append(len(block))
        return real(self, block, *args, **kwargs)

    with (
        mock.patch.object(prefilter, "CHUNK", 2048),
        mock.patch.object(plain.PlainReader, "segments", segments),
        counted() as tried,
    ):
        kept, _, from_bytes = read(guide(otherwise + as_written), fold=True, fast=True)
    assert from_bytes == 440 and len(kept) == 440
    assert len(blocks) > plain.UNWRITTEN_SKIP + 2
    assert tried[0] is False and all(tried[1:])  # the second block spelled otherwise: not tried
    assert len(tried) == len(blocks) - plain.UNWRITTEN_SKIP


def test_wide_space_is_every_character_beyond_ascii_that_strip_takes() -> None:
    """`canonical.WIDE_SPACE` matches the UTF-8 of every such character and of no other one
    (over every code point XML allows beyond ASCII)."""
    for code in range(0x80, 0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        found = canonical.WIDE_SPACE.fullmatch(char.encode("utf-8")) is not None
        assert found == char.isspace(), hex(code)


def test_texts_ending_beyond_ascii_are_read_by_the_one_pass() -> None:
    """Titles and descriptions that begin or end with a character beyond ASCII (`Émission …
    café`): every block in one pass, kept as the parser keeps them; a block holding white
    space beyond ASCII anywhere (a no-break space) is read the general way, and the one text
    with it at its end goes to the parser."""
    texts = ["\u00c9mission 1 caf\u00e9", "\u00fcber", "\u65e5\u672c", "a \u00e9"]
    programmes = programmes_of(
        200, lambda i: f"<title>{texts[i % 4]}</title><desc>{texts[(i + 1) % 4]}</desc>"
    )
    assert_one_pass(programmes, 3)
    spaced = [*programmes[:100], programmes[100].replace("</title>", "\u00a0</title>")]
    with counted() as tried:
        assert same(guide(spaced), fold=True) == 100
    assert True not in tried


def test_pretty_printed_guides_are_read_by_the_one_pass() -> None:
    """Children indented by spaces, tabs or Windows line ends: every block in one pass, kept as
    the parser keeps them (the gaps dropped, the texts as they were)."""
    body = '<title>A  b</title><desc lang="en">d &amp; e\n f</desc><category>C</category><new/>'
    for indent in ("spaces", "tabs", "crlf"):
        programmes = [indented(p, indent) for p in programmes_of(200, lambda i: body)]
        assert_one_pass(programmes, 3)


def test_elementtree_and_go_spellings_are_read_by_the_one_pass() -> None:
    """`<icon src="u" />`, `<new />`, `<previously-shown />` (or `<new></new>`, Go's),
    indented: every block in one pass;
    a value holding ` />` leaves its block to the general reading, kept the same."""
    body = '<title>A</title><icon src="u"/><episode-num system="s">1</episode-num><new/>'
    for empties in ("elementtree", "go"):
        programmes = [indented(p, "spaces", empties) for p in programmes_of(200, lambda i: body)]
        programmes[7] = programmes[7].replace("new", "previously-shown")
        assert_one_pass(programmes, 3)
    for value in ('src=" />u"', 'channel="a.tv />"', 'start="20231114221320 /> +0000"'):
        name = value.split("=")[0]
        odd = [re.sub(f'{name}="[^"]*"', value, p, count=1) for p in programmes[:3]]
        with counted() as tried:
            same(guide(odd), fold=True)
        assert True not in tried, value


def test_xtream_codes_spelling_is_read_by_the_one_pass() -> None:
    """xmltv.php of an Xtream Codes panel: one line, `channel="c" >`, texts escaped with
    `&apos;` and `&quot;`, an empty description where there is none: every block in one pass
    (a 300 MB guide so spelled was 1.59x a bare iterparse, every programme read by plain.py
    and those with an empty description by the parser)."""
    descs = ["", "the &quot;best&quot; &amp; more", "", "Don&apos;t"]
    programmes = [
        p.replace('">', '" >', 1).replace("\n", "")
        for p in programmes_of(
            300, lambda i: f"<title>Show&apos;s {i % 9}</title><desc>{descs[i % 4]}</desc>"
        )
    ]
    assert_one_pass(programmes, 3)


def test_spellings_past_a_blocks_first_bytes_are_read_by_the_one_pass() -> None:
    """A panel's guide ordered by channel (XUI: tab-indented, `start_timestamp`, an empty
    description for the channels that have none), some channels' `<new />` or `lang`: a
    block whose first bytes hold none of those holds some later. Once a block showed each,
    every block is read in one pass (the ones that showed them too); before, each such block
    went a programme at a time."""

    def xui(i: int, channel: str, desc: str, new: str, lang: str) -> str:
        times = f'start="{TIMES[0]}" stop="{TIMES[1]}" start_timestamp="{i}" stop_timestamp="0"'
        return (
            f'\n\t<programme {times} channel="{channel}" >\n\t\t<title{lang}>Show {i}</title>'
            f"\n\t\t<desc>{desc}</desc>{new}\n\t</programme>"
        )

    runs = [
        (
            IDS[i % 3],
            "" if i % 3 == 1 else f"about {i}",
            "\n\t\t<new />" if i == 4 else "",
            ' lang="en"' if i == 8 else "",
        )
        for i in range(10)
    ]
    programmes = [xui(i, *run) for run in runs for i in range(120)]
    with mock.patch.object(prefilter, "CHUNK", 64 * 1024), counted() as tried:
        assert same(guide(programmes), fold=True) == len(programmes)
    # the blocks where each first showed read again, in one pass; every other block at once
    assert tried.count(False) == 3 and tried[0] is False, tried
    assert all(tried[i + 1] for i, ok in enumerate(tried) if not ok), tried


def test_gaps_a_block_did_not_learn_leave_it_to_the_general_reading() -> None:
    """More distinct gaps than GAPS in a block's first bytes, or a gap first seen after them:
    the block is read the general way, and the same is kept."""
    one = programmes_of(1, lambda i: "<title>A</title><desc>D</desc>")[0]
    many = [one.replace("><", ">" + " " * (1 + i % (canonical.GAPS + 1)) + "<") for i in range(9)]
    with counted() as tried:
        assert same(guide(many), fold=True) == 9
    assert tried == [False]
    late = [one] * (canonical.GAP_SAMPLE // len(one) + 2) + [indented(one, "tabs")]
    with counted() as tried:
        assert same(guide(late), fold=True) == len(late)
    assert tried == [False]


def test_sub_titles_are_read_by_the_one_pass_and_folded_as_the_writer_folds_them() -> None:
    """A sub-title: folded into the title (fold on) unless the programme has an episode number
    or the title holds it already (their values compared, entities undone); kept as the parser
    keeps it either way, every block in one pass."""
    subs = [
        '<title>News</title><sub-title lang="en">Evening</sub-title>',
        "<title>Tom &amp; Jerry</title><sub-title>&amp; Jerry</sub-title>",  # in the title
        "<title>Tom &amp; Jerry</title><sub-title>Jerry &amp;</sub-title>",
        '<title>A</title><sub-title>B</sub-title><episode-num system="x">1</episode-num>',
        "<title>A</title><sub-title>A</sub-title><desc>D</desc>",
        "<title>R&amp;D</title><sub-title>amp</sub-title>",  # in its escaped bytes only
    ]
    programmes = programmes_of(200, lambda i: subs[i % len(subs)])
    for fold in (True, False):
        with mock.patch.object(prefilter, "CHUNK", 4096), counted() as tried:
            assert same(guide(programmes), fold=fold) == len(programmes)
        assert len(tried) > 3 and all(tried)
    kept, _, _ = read(guide(programmes[:6]), fold=True, fast=True)
    assert [body.split(b"</title>")[0] for *_, body in kept] == [
        b"<title>News: Evening",
        b"<title>Tom &amp; Jerry",
        b"<title>Tom &amp; Jerry: Jerry &amp;",
        b"<title>A",
        b"<title>A",
        b"<title>R&amp;D: amp",
    ]


_OTHER_NAMES = st.sampled_from(["stop", "catchup-id", "x", "start_timestamp", "start", "channel"])
_RAW_VALUE = st.sampled_from(
    ["20240101000000 +0000", "20240101003000 +0000", "", "a b", "ch1.tv", "ch2.tv", "x'y", "a&b"]
)


@st.composite
def _spelling(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Names in some order (start and channel mostly among them, now and then twice), each
    with its quote."""
    names = ["start", "channel"] if draw(st.integers(0, 5)) else []
    names += draw(st.lists(_OTHER_NAMES, max_size=3, unique=True))
    names = draw(st.permutations(names))
    return [(n, draw(st.sampled_from(['"', '"', "'"]))) for n in names] or [("start", '"')]


@st.composite
def _start_tags(draw: st.DrawFn) -> list[str]:
    """Start tags in one or two spellings (names, order, quotes, spaces), now and then one
    that `_ANY_TAG` leaves (a line break in it, a duplicate, no channel)."""
    spellings = draw(st.lists(_spelling(), min_size=1, max_size=2))
    tags = []
    for _ in range(draw(st.integers(1, 12))):
        attrs = draw(st.sampled_from(spellings))
        gap = draw(st.sampled_from([" ", " ", "\t", "  "]))
        body = gap.join(f"{n}={q}{draw(_RAW_VALUE)}{q}" for n, q in attrs)
        end = draw(st.sampled_from(["", "", " "]))
        tags.append(
            f"<programme {body}{end}>" if draw(st.integers(0, 19)) else f"<programme\n{body}>"
        )
    return tags


@given(_start_tags(), st.sampled_from(["\n", "", "\r\n  "]))
@settings(max_examples=400, deadline=None)
def test_start_tags_spelled_alike_are_respelled_as_one_at_a_time(tags: list[str], gap: str) -> None:
    """A block's start tags respelled together (all spelled as the first) or one at a time
    (`_respell`, the general way): the same bytes."""
    block = "".join(f"{gap}{t}<title>T</title></programme>" for t in tags).encode()
    assert starttags.respelled(block) == (
        block
        if starttags._NATIVE.match(block, max(0, block.find(b"<programme ")))
        else starttags._ANY_TAG.sub(starttags._respell, block)
    )


def test_start_tags_spelled_alike_take_the_split() -> None:
    """A block of tags in one other spelling is respelled without a call a tag."""
    block = b"".join(
        b'<programme start="%d" channel="c%d" stop="%d"><title>T</title></programme>\n'
        % (i, i, i + 1)
        for i in range(50)
    )
    with mock.patch.object(starttags, "_respell", side_effect=AssertionError):
        out = starttags.respelled(block)
    assert out.count(b'<programme start="') == 50
    assert b'<programme start="7" stop="8" channel="c7">' in out


def test_a_rich_guide_is_read_by_the_one_pass() -> None:
    """Credits, ratings, video and the rest of what the writer does not write are dropped from
    the bytes first (canonical.unwritten_dropped): every block in one pass, each programme kept
    as the parser keeps it, pretty-printed or not."""
    rich = "".join(UNWRITTEN)
    for indent in ("none", "spaces"):
        programmes = programmes_of(
            300,
            lambda i: (
                f'<title lang="en">Show {i}</title><desc>About {i}</desc>{rich}'
                f'<category>Series</category><episode-num system="onscreen">E{i}</episode-num>'
            ),
        )
        assert_one_pass([indented(p, indent) for p in programmes], 5)


def test_an_unwritten_child_with_text_after_it_is_left_to_the_parser() -> None:
    """Dropping a child with a tail would join the text before it to the tail: the parser reads
    the text before the first child only. Such a block is left to the general reading."""
    for desc in ("<desc>A<keyword>k</keyword>B</desc>", "<desc><credits/>Late</desc>"):
        programmes = [
            p.replace("</programme>", f"{desc}</programme>")
            for p in programmes_of(200, lambda i: f"<title>Show {i}</title>")
        ]
        with mock.patch.object(prefilter, "CHUNK", 4096), counted() as tried:
            same(guide(programmes), fold=True)
        assert True not in tried, desc


@given(
    st.lists(
        st.sampled_from(
            [
                b"a",
                b"\xc2",
                b"\x85",
                b"\xa0",
                b"\xc2\xa9",
                b"\xe1\x9a",
                b"\x80",
                b"\xe2\x80",
                b"\x99",
                b"\x8a",
                b"\xaf",
                b"\xe2\x81",
                b"\x9f",
                b"\xe3\x80",
                b"\xe2",
                b"\xe3",
            ]
        ),
        max_size=16,
    )
)
@settings(max_examples=500, deadline=None)
def test_wide_space_in_is_the_pattern_search(pieces: list[bytes]) -> None:
    """The lead bytes looked for first, the answer the pattern's, on any bytes."""
    block = b"".join(pieces)
    assert canonical.wide_space_in(block) == (canonical.WIDE_SPACE.search(block) is not None)


_LONG = "A long description, " * 40 + "end"  # ~800 bytes: read with `_LONG_TEXT`


@pytest.mark.parametrize(
    ("body", "one_pass"),
    [
        (f"<title>T</title><desc>{_LONG}</desc>", True),
        (f"<title>T</title><desc>{_LONG} caf\u00e9 &amp; more</desc>", True),
        (f"<title>T</title><desc>a &lt; b {_LONG}</desc>", True),
        (f"<title>T</title><desc>{_LONG} a > b</desc>", False),  # a `>` the writer escapes
        (f"<title>T</title><desc>{_LONG} line\r\nbreak</desc>", False),  # the parser's LF
        (f"<title>T</title><desc>{_LONG} </desc>", False),  # white space to strip at its end
        # What the one pass's reading takes out of a block (`lang`, empty elements, children
        # it does not write; the block's marks then not told of its own) leaves one seen
        (f'<title lang="en">T</title><desc lang="en">{_LONG}</desc>', True),
        (f'<title lang="en">T</title><desc lang="en">{_LONG} a > b</desc>', False),
        (f"<title>T</title><desc>{_LONG}</desc><desc></desc><new></new>", True),
        (f"<title>T</title><desc>{_LONG} a > b</desc><desc></desc>", False),
        (f"<title>T</title><desc>{_LONG}</desc><credits><actor>A</actor></credits>", True),
        (f"<title>T</title><desc>{_LONG} > </desc><credits><actor>A</actor></credits>", False),
        (f"<title>T</title><desc>{_LONG}</desc><credits><actor>A > B</actor></credits>", False),
    ],
)
def test_long_texts_are_read_by_the_one_pass_as_the_parser_reads_them(
    body: str, one_pass: bool
) -> None:
    """Long descriptions (a block whose first programme is over LONG bytes): kept as the parser
    keeps them, in one pass unless a text holds what the writer would write otherwise."""
    programmes = programmes_of(60, lambda i: body.replace("<title>T", f"<title>S{i}"))
    with mock.patch.object(prefilter, "CHUNK", 16384), counted() as tried:
        from_bytes = same(guide(programmes), fold=True)
    if one_pass:
        assert from_bytes == 60
        assert tried
        assert all(tried)
    else:
        assert True not in tried


def test_a_guide_of_long_programmes_is_read_with_the_long_texts_pattern() -> None:
    """Every block of long programmes with no CR and no `>` in a text is read by `_LONG_TEXT`'s
    pattern (the short one disabled here), what its marks tell (plain.py) taken for it."""
    programmes = programmes_of(60, lambda i: f'<title lang="en">S{i}</title><desc>{_LONG}</desc>')
    with (
        mock.patch.object(prefilter, "CHUNK", 16384),
        mock.patch.object(canonical, "_PROGRAMME", None),
        mock.patch.object(canonical, "_no_cr_nor_gt_in_texts", None),
        counted() as tried,
    ):
        assert same(guide(programmes), fold=True) == 60
    assert tried
    assert all(tried)


@pytest.mark.parametrize("desc", ["d", _LONG])
def test_an_error_after_programmes_read_in_one_pass_names_the_files_line(desc: str) -> None:
    """Programmes read in one pass leave their line breaks (counted among the block's marks):
    a parse error further on names the same line as the parser's reading."""
    programmes = programmes_of(60, lambda i: f"<title>S{i}</title><desc>{desc}</desc>")
    body = guide(programmes).replace(b"\n</tv>\n", b"\n<programme start=</tv>\n")
    with mock.patch.object(prefilter, "CHUNK", 4096), counted() as tried:
        slow, fast = read(body, True, fast=False), read(body, True, fast=True)
    assert fast[2] == 60 and all(tried)
    assert re.search(r"line \d+", str(slow[1][3]))
    assert fast[:2] == slow[:2]


def test_a_block_of_long_programmes_is_read_with_the_long_texts_pattern() -> None:
    """Its first programme over LONG bytes, no CR, no `>` outside the tags: `_LONG_TEXT`'s."""
    block = "".join(programmes_of(5, lambda i: f"<title>T{i}</title><desc>{_LONG}</desc>"))
    raw = block.encode()
    with mock.patch.object(canonical, "_PROGRAMME", None):
        found = canonical.read_block(raw, len(raw))
    assert found is not None
    assert len(found) == 5


_PIECES = st.sampled_from([b"&quot;", b"&", b"quot;", b">", b"\n\t\t", b"<", b"a", b"&quot", b""])


@given(st.lists(_PIECES, max_size=30), st.sampled_from([b"&quot;", b">\n\t\t<", b"aa", b"&&"]),
       st.sampled_from([b'"', b"><", b"", b"&quot;"]))  # fmt: skip
@settings(max_examples=300, deadline=None)
def test_replaced_is_bytes_replace(pieces: list[bytes], old: bytes, new: bytes) -> None:
    """The split-and-join replace of the block-wide rewrites gives `bytes.replace`'s bytes:
    overlapping and adjacent occurrences, a replacement holding what it replaces, none at all."""
    block = b"".join(pieces)
    assert splitjoin.replaced(block, old, new) == block.replace(old, new)
