"""Programmes read from their bytes (epg/plain.py) are kept exactly as the parser's reading keeps
them: the same channels, times, rendered bodies, order and counts.

Every test reads a guide twice through `iter_guide`: once with plain programmes read from their
bytes (`fold` given, as the guide stage reads with a spill) and once with every programme going
through the parser and `BodyRenderer` (as before). Guides are written with the spellings that
could tell the two apart: entities and character references, CDATA, white space to strip
(ASCII and not), empty and repeated elements, attributes, elements we do not write (nested or
not), children out of the DTD's order, non-ASCII text, refused characters, blocks of any size.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plextuner.epg import prefilter, xmltv
from plextuner.epg.bodies import BodyRenderer, shaped
from plextuner.epg.emit import RenderedRun
from plextuner.epg.kept import offset_of, stop_offset
from plextuner.epg.model import GuideChannel, ParseOutcome, Programme
from plextuner.epg.xmltv import iter_guide
from plextuner.errors import EpgError

WANTED = frozenset({"a.tv", "b.tv", "ü.tv"})
IDS = ["a.tv", "b.tv", "ü.tv", "x.tv"]
WINDOW = (1_700_000_000.0, 1_700_000_000.0 + 6 * 3600.0)
TIMES = ["20231114221320 +0000", "20231115001320 +0000", "20231116001320 +0000", "x", ""]
Kept = tuple[str, int, int, bytes]  # times as a `KeptList` holds them
_COLUMN = re.compile(r"column \d+")  # a line that held a programme read from bytes: may differ


def read(body: bytes, fold: bool, fast: bool) -> tuple[list[Kept], tuple[object, ...], int]:
    """The kept programmes as the stage spills them, the counts, and how many came from the
    bytes."""
    outcome = ParseOutcome("t")
    bodies = BodyRenderer()
    kept: list[Kept] = []
    from_bytes = 0
    for item in iter_guide(
        io.BytesIO(body), "t", outcome, lambda: WANTED, WINDOW, fold=fold if fast else None
    ):  # fmt: skip
        if isinstance(item, RenderedRun):
            kept.extend(item)
            from_bytes += len(item)
        elif isinstance(item, Programme):
            rendered = bodies.render(shaped(item, fold)).encode()
            kept.append((item.channel, offset_of(item.start), stop_offset(item.stop), rendered))
        else:
            assert isinstance(item, GuideChannel)
    truncated = _COLUMN.sub("", outcome.truncated) if outcome.truncated else None
    counts = (outcome.channels, outcome.programmes, outcome.skipped, truncated)
    return kept, counts, from_bytes


def same(body: bytes, fold: bool) -> int:
    """Both readings agree (or both refuse the guide alike); how many came from the bytes."""
    reason: str | None = None
    try:
        slow = read(body, fold, fast=False)
    except EpgError as err:
        reason = str(err)
    if reason is not None:
        with pytest.raises(EpgError) as raised:
            read(body, fold, fast=True)
        assert _COLUMN.sub("", str(raised.value)) == _COLUMN.sub("", reason)
        return 0
    fast = read(body, fold, fast=True)
    assert fast[0] == slow[0]
    assert fast[1] == slow[1]
    return fast[2]


HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


def guide(programmes: Iterable[str], head: str = HEAD) -> bytes:
    channels = "".join(
        f'<channel id="{c}"><display-name>{c}</display-name></channel>\n' for c in IDS
    )
    encoding = "latin-1" if "ISO-8859-1" in head else "utf-8"
    return f"{head}<tv>{channels}{''.join(programmes)}\n</tv>\n".encode(encoding, "replace")


TEXTS = [
    "News", "Tom &amp; Jerry", "a &lt;b&gt; c", " padded ", "\n  multi\n  line\n", "", "  ",
    "caf\u00e9", "\u00a0nbsp\u00a0", "x\u3000", "say &quot;hi&quot;", "it&apos;s", "&#65;BC",
    "<![CDATA[raw <b>]]>", "a > b", "tab\there", "Show: Part", "Part", "\u2028", "emoji \U0001f600",
    "amp; Jerry", "lt;b", " x ",
    # What mend.py puts right, put right before the block is read (premend.py)
    "Law & Order", "R&D &nbsp;", "ctrl\x01x\x1f", "& &amp; &#38;", "a&b=1&c",
]  # fmt: skip
PLAIN_TEXTS = [
    "News",
    "\u00a0nbsp",
    "x\u3000",
    "Tom &amp; Jerry",
    "amp; Jerry",
    " padded ",
    "\n  two\n  lines\n",
    "caf\u00e9",
    "",  # (an empty description: an Xtream panel's for a programme without one)
]
LANGS = ["", ' lang="en"', ' lang="de" ', "\n lang='fr'"]


@st.composite
def child(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(TEXTS))
    lang = draw(st.sampled_from(LANGS))
    return draw(
        st.sampled_from(
            [
                f"<title{lang}>{text}</title>",
                f"<sub-title{lang}>{text}</sub-title>",
                f"<desc{lang}>{text}</desc>",
                f"<date>{text}</date>",
                f"<category{lang}>{text}</category>",
                f'<icon src="{text}"/>',
                f'<icon src="http://i.invalid/a.png?x=1&amp;y=2" width="{len(text)}"/>',
                "<icon/>",
                f'<episode-num system="xmltv_ns">{text}</episode-num>',
                f"<episode-num>{text}</episode-num>",
                f'<episode-num system="">{text}</episode-num>',
                "<new/>", "<new />", "<previously-shown/>", '<previously-shown start="2023"/>',
                f"<credits><director>{text}</director><actor role=\"x\">B</actor></credits>",
                f'<rating system="MPAA"><value>{text}</value></rating>',
                '<length units="minutes">30</length>', '<video><quality>HD</quality></video>',
                '<image type="poster" size="2">u</image>', "<premiere/>", "<star-rating/>",
                f"<!-- {text} -->", f"<desc>{text}<!-- c -->{text}</desc>",
            ]
        )
    )  # fmt: skip


PLAIN_KIDS = [
    "<title>{}</title>", '<sub-title lang="en">{}</sub-title>', "<desc>{}</desc>",
    "<credits><actor>{}</actor></credits>", "<date>{}</date>", "<category>{}</category>",
    '<icon src="{}"/>', '<episode-num system="xmltv_ns">{}</episode-num>',
    "<previously-shown/>", "<new/>", '<rating system="x"><value>{}</value></rating>',
    '<category>{}</category><category lang="en"> </category><category>B</category>',
    '<episode-num>{}</episode-num><episode-num system="a"> </episode-num>'
    '<episode-num>2</episode-num>',
]  # fmt: skip


@st.composite
def programme(draw: st.DrawFn) -> str:
    start, stop = draw(st.sampled_from(TIMES)), draw(st.sampled_from(TIMES))
    channel = draw(st.sampled_from(IDS))
    gap = draw(st.sampled_from([" ", " ", "\n  "]))
    tag = f'<programme start="{start}"{gap}stop="{stop}" channel="{channel}">'
    spelling = draw(st.integers(0, 9))
    if spelling == 0:  # another attribute: the parser's
        tag = f'<programme channel="{channel}" start="{start}" stop="{stop}" x="1">'
    elif spelling == 1:  # `channel` first (ElementTree's sorted attributes)
        tag = f'<programme channel="{channel}"{gap}start="{start}" stop="{stop}">'
    elif spelling == 2:  # no stop (XMLTV's is optional)
        tag = f'<programme start="{start}"{gap}channel="{channel}">'
    elif spelling == 3:
        tag = f'<programme channel="{channel}" start="{start}"{gap}>'
    elif spelling == 4:  # the times in another order: respelled (starttags.respelled)
        tag = f'<programme stop="{stop}" start="{start}" channel="{channel}">'
    elif spelling == 5:  # single quotes, another attribute: respelled
        tag = f"<programme start='{start}' stop='{stop}' channel='{channel}' catchup-id='1'>"
    if draw(st.booleans()):  # what plain.py reads: a title, then the DTD's order
        text = st.sampled_from(PLAIN_TEXTS)
        kids = [f"<title>{draw(text)}</title>"]
        kids += [
            kid.format(draw(text))
            for kid in draw(st.lists(st.sampled_from(PLAIN_KIDS), unique=True))
        ]
        kids.sort(key=lambda k: next(i for i, t in enumerate(PLAIN_KIDS) if k[1:5] == t[1:5]))
        kids.insert(1, draw(st.sampled_from(["", "<title>{}</title>"])).format(draw(text)))
        sep = draw(st.sampled_from(["", "\n    "]))
        return f"{tag}{sep}{sep.join(kids)}{sep}</programme>"
    kids = draw(st.lists(child(), max_size=7))
    order = ["title", "sub-title", "desc", "credits", "date", "category", "length", "icon",
             "episode-num", "video", "previously-shown", "premiere", "new", "rating"]  # fmt: skip
    if draw(st.booleans()):
        kids.sort(key=lambda k: next((i for i, t in enumerate(order) if k[1:].startswith(t)), 99))
    sep = draw(st.sampled_from(["", "\n    ", " "]))
    return f"{tag}{sep}{sep.join(kids)}{sep}</programme>"


@given(
    st.lists(programme(), max_size=10),
    st.sampled_from(["\n", "", "\r\n", "<!-- c -->"]),
    st.booleans(),
    st.sampled_from([7, 200, 1024 * 1024]),
    st.sampled_from([HEAD, "<?xml version='1.0' encoding='ISO-8859-1'?>\n"]),
)  # fmt: skip
@settings(max_examples=400, deadline=None)
def test_the_same_programmes_read_either_way(
    programmes: list[str], sep: str, fold: bool, chunk: int, head: str
) -> None:
    """Whatever the spelling, the block size or the encoding, reading plain programmes from
    their bytes keeps what the parser's reading keeps, in the same order, counted the same."""
    body = guide([sep + p for p in programmes], head)
    with mock.patch.object(prefilter, "CHUNK", chunk):
        same(body, fold)


def plain(channel: str, start: str, body: str) -> str:
    return f'\n<programme start="{start}" stop="" channel="{channel}">{body}</programme>'


def test_a_plain_guide_is_read_from_its_bytes() -> None:
    """A provider's usual spelling (the bench's, pretty-printed, with `lang`, credits and a
    rating) is read from the bytes: every kept programme, none through the parser."""
    bodies = [
        "<title>Show</title><desc>An hour &amp; more.</desc><category>Series</category>"
        '<episode-num system="xmltv_ns">0.4.</episode-num>',
        '\n  <title lang="en">Film</title>\n  <sub-title lang="en">Part</sub-title>\n'
        '  <desc lang="en">Caf\u00e9 &lt;3</desc>\n  <credits><actor>A</actor></credits>\n'
        '  <date>2020</date>\n  <category lang="en">Movie</category>\n'
        '  <icon src="http://i.invalid/p.png?a=1&amp;b=2"/>\n  <previously-shown/>\n'
        '  <rating system="VCHIP"><value>TV-G</value></rating>\n',
        "<title>News</title><new/>",
    ]
    programmes = [plain(c, t, b) for c in ("a.tv", "ü.tv") for t in TIMES[:2] for b in bodies]
    for fold in (True, False):
        assert same(guide(programmes), fold) == len(programmes)
    # Start tags as other generators spell them: `channel` first (ElementTree's sorted
    # attributes), no stop, both; each guide spelled one way throughout
    tag = re.compile(r'<programme start="([^"]*)" stop="" channel="([^"]*)">')
    for spelled in (
        r'<programme channel="\2" start="\1" stop="">',
        r'<programme start="\1" channel="\2">',
        r'<programme channel="\2"\n  start="\1">',
    ):
        others = [tag.sub(spelled, p) for p in programmes]
        assert all("channel" in p for p in others) and others != programmes
        assert same(guide(others), fold=True) == len(programmes), spelled


def test_programmes_read_from_the_bytes_share_the_wanted_ids_strings() -> None:
    """The kept programmes' channel ids are the wanted set's own strings, not a decoded copy
    for each guide channel (a guide of 50,000 channels: 2.9 MB in each reading process); a
    channel not wanted is still dropped, and one not spelled plainly still read."""
    programmes = [plain(c, TIMES[0], "<title>Show</title>") for c in (*IDS, "a.tv", "ü.tv")]
    kept, counts, from_bytes = read(guide(programmes), fold=True, fast=True)
    assert from_bytes == 5 and sorted(k[0] for k in kept) == [
        "a.tv",
        "a.tv",
        "b.tv",
        "ü.tv",
        "ü.tv",
    ]
    own = {id(gid) for gid in WANTED}
    assert all(id(k[0]) in own for k in kept)
    assert counts[2] == 1  # x.tv, not wanted


def test_what_plain_reading_leaves_to_the_parser() -> None:
    """Each of these is read by the parser (and kept the same): a reference to a control
    character or to none, a second CDATA section, white space a non-ASCII
    character may be, an empty title, children out of order, invalid UTF-8, a reference in a
    block where an attribute value holds a `&`."""
    awkward = [
        "<title>A&#13;</title>", "<title>&#1;A</title>",
        "<title>&#xD800;A</title>", "<title>&nbsp;A</title>",
        "<title><![CDATA[A]]><![CDATA[B]]></title>",
        "<title>\u00a0A</title>", "<title></title><title>B</title>",
        "<desc>D</desc><title>A</title>", "<title>A</title><date>1</date><desc>D</desc>",
        '<title>&quot;A&quot;</title><icon src="a?b=1&amp;c=2"/>',
        '<title>A</title><icon src="x&quot;y"/>', "<title>A</title><icon src='x&apos;y'/>",
    ]  # fmt: skip
    for body in awkward:
        assert same(guide([plain("a.tv", TIMES[0], body)]), fold=True) == 0, body


def test_what_mend_puts_right_is_put_right_in_the_block_and_read_from_its_bytes() -> None:
    """A bare `&` (a title's, an icon URL's) and the characters XML refuses are put right as
    mend.py puts a refused programme right, and the programmes read from their bytes, kept as
    the parser keeps them mended; each counted as mended (premend.py). One the parser refuses
    all the same (an HTML entity beside a bare `&`) is counted once, when it is mended."""
    bodies = [
        "<title>Law & Order</title>", "<title>A\x01B</title><desc>\x1fd</desc>",
        '<title>T</title><icon src="http://i.invalid/a.png?b=1&c=2"/>',
        "<title>Tom & Jerry &amp; co</title>", "<title>Plain</title>",
    ]  # fmt: skip
    programmes = [plain("a.tv", TIMES[0], b) for b in bodies]
    assert same(guide(programmes), fold=True) == len(programmes)
    outcome = ParseOutcome("t")
    with_html = [*programmes, plain("b.tv", TIMES[0], "<title>A & B&nbsp;</title>")]
    list(iter_guide(io.BytesIO(guide(with_html)), "t", outcome, lambda: WANTED, WINDOW, fold=True))
    assert outcome.malformed == 5 and outcome.programmes == 6
    assert outcome.malformed_first is not None
    assert outcome.malformed_first.endswith("xmlParseEntityRef: no name (a bare &, escaped)")


def test_the_first_malformed_programme_named_is_the_files_first() -> None:
    """The last programme of a block refused by the parser, one put right before it is read
    early in the next: the outcome names the refused one, the file's first (and counts both).
    Every programme is as long, so the blocks end where they end without them."""

    def made(refused: int | None = None, bare: int | None = None) -> bytes:
        programmes = [plain("b.tv", TIMES[1], f"<title>Show {n:05d}</title>") for n in range(6000)]
        if refused is not None:
            programmes[refused] = plain("a.tv", TIMES[0], "<title>&nbsp;A123</title>")
        if bare is not None:
            programmes[bare] = plain("a.tv", TIMES[0], "<title>Law & Ord.</title>")
        return guide(programmes)

    clean = made()
    ends = [m.end() for m in re.finditer(b"</programme>", clean)]
    last = max(i for i, end in enumerate(ends) if end <= prefilter.CHUNK)  # the first block's
    body = made(last, last + 5)
    assert len(body) == len(clean)
    outcome = ParseOutcome("t")
    list(iter_guide(io.BytesIO(body), "t", outcome, lambda: WANTED, WINDOW, fold=True))
    assert outcome.malformed == 2 and outcome.malformed_first is not None
    assert "nbsp" in outcome.malformed_first and "bare" not in outcome.malformed_first


def test_cdata_sections_are_read_as_the_text_they_stand_for() -> None:
    """A title or description in a CDATA section (with `&`, `<`, `>`, a line break, a
    `<programme` and a `]]` inside) is read from the bytes, kept as the parser keeps it."""
    texts = ["Show 1", "a & b <c> d", "two\nlines", "<programme x", "]] ]>", ""]
    bodies = [f"<title><![CDATA[{t}]]></title><desc>x <![CDATA[{t}]]> y</desc>" for t in texts]
    programmes = [plain("a.tv", TIMES[0], b) for b in bodies]
    assert same(guide(programmes), fold=True) == len([t for t in texts if t.strip()])


def test_comments_between_programmes_leave_them_to_be_read_from_the_bytes() -> None:
    """A comment between programmes (over lines, after white space, at a block's start) no
    longer sends its block to the parser; one inside a programme, or one the parser refuses
    (`--` in it), still does, and the same is kept either way."""
    programmes = [plain("a.tv", TIMES[0], f"<title>T{i}</title>") for i in range(6)]
    for comment in ("<!-- hour -->", "\n  <!-- two\nlines -->\n", "<!---->", "<!-- a - b -->"):
        spelled = [programmes[0], comment, *programmes[1:3], comment, *programmes[3:]]
        with mock.patch.object(prefilter, "CHUNK", 300):
            assert same(guide(spelled), fold=True) == 6, comment
    inside = plain("a.tv", TIMES[0], "<title>T</title><!-- x --><desc>D</desc>")
    assert same(guide([*programmes, inside]), fold=True) == 0
    refused = [programmes[0], "<!-- a -- b -->", *programmes[1:]]
    assert same(guide(refused), fold=True) == 0


def test_titles_ending_beyond_ascii_are_read_from_the_bytes() -> None:
    """A title that begins or ends with a character beyond ASCII is read here when `.strip()`
    would take nothing more there; with white space beyond ASCII at an end it is the parser's."""
    for title, here in (("\u00c9mission caf\u00e9", 1), ("\u00fc", 1), ("caf\u00e9\u00a0", 0),
                        ("\u3000x", 0), ("x\u2028", 0)):  # fmt: skip
        body = f"\n  <title>{title}</title>\n  <sub-title>S</sub-title>\n"  # plain.py's
        assert same(guide([plain("a.tv", TIMES[0], body)]), fold=True) == here, title


def test_references_the_writer_writes_as_characters_are_read_from_the_bytes() -> None:
    """`&quot;`, `&apos;` (Python's `html.escape`), numeric references to printable characters
    (an ASCII output encoding), `&`, `<` and `>` among them: read here, kept as the parser's
    reading keeps them (the writer writes the characters, escaping the three)."""
    texts = ["&quot;A&quot;", "it&apos;s", "Grey&#x27;s &#39;", "x &#233;t&#233; &#x1F600; ok",
             "&#38;&#60;&#62; &#34;", "caf&#xE9; &amp; more"]  # fmt: skip
    for text in texts:
        bodies = [f"<title>{text}</title>", f"<title>T</title><desc>{text}</desc>"]
        programmes = [plain("a.tv", TIMES[0], b) for b in bodies]
        assert same(guide(programmes), fold=True) == 2, text
    raw = guide([plain("a.tv", TIMES[0], "<title>A</title>")]).replace(b"<title>A", b"<title>\xff")
    assert same(raw, fold=True) == 0


def test_folding_matches_the_parsers_reading() -> None:
    """`epg.fold_subtitle`: the sub-title joins the title (once, compared unescaped) unless
    there is an episode number."""
    cases = {
        "<title>A &amp; B</title><sub-title>&amp; B</sub-title>": b"<title>A &amp; B</title>",
        "<title>A</title><sub-title>x &lt; y</sub-title>": b"<title>A: x &lt; y</title>",
        "<title>A</title><sub-title>S</sub-title><episode-num>1</episode-num>": b"<title>A</title>",
        "<title>Tom &amp; J</title><sub-title>amp; J</sub-title>": b"<title>Tom &amp; J: amp; J<",
    }
    for body, title in cases.items():
        kept, _, from_bytes = read(guide([plain("a.tv", TIMES[0], body)]), True, fast=True)
        assert from_bytes == 1 and kept[0][3].startswith(title), body
        assert same(guide([plain("a.tv", TIMES[0], body)]), fold=True) == 1


def test_an_error_after_plain_programmes_names_the_files_line() -> None:
    """Programmes read from the bytes leave their line breaks: a parse error further on names
    the same line as the parser's reading."""
    programme = (
        '<programme start="20231114221320 +0000" stop="20231114231320 +0000"\n'
        '  channel="a.tv">\n  <title>T</title>\n</programme>\n'
    )
    body = guide([programme * 30]).replace(b"\n</tv>\n", b"<programme start=</tv>\n")
    slow, fast = read(body, True, fast=False), read(body, True, fast=True)
    assert fast[2] == 30
    assert "line 126" in str(slow[1][3])
    assert fast[:2] == slow[:2]


def test_the_scan_steps_aside_only_while_everything_is_kept() -> None:
    """Blocks whose programmes are all ours are read without the prefilter's scan first (the
    plain reader cuts what is not ours itself); a block it cut from brings the scan back, so a
    stretch of programmes that are not ours is cut by the cheap scan, block after block. No
    programme reaches the parser."""
    unwanted = [plain("x.tv", TIMES[0], "<title>X</title>")] * 60
    ours = [plain("a.tv", TIMES[0], "<title>A</title>")] * 60
    mixed = [plain(c, TIMES[0], "<title>M</title>") for c in ("a.tv", "x.tv") * 30]
    body = guide([*unwanted, *ours, *mixed, *unwanted])
    scans: list[int] = []
    parsed: list[str] = []
    real_filtered = prefilter.Prefilter._filtered

    def filtered(self: prefilter.Prefilter, block: bytes) -> tuple[bytes, int]:
        scans.append(block.count(b"<programme "))
        return real_filtered(self, block)

    real_item = xmltv._item

    def item(*args: Any) -> object:
        parsed.append(args[-1].tag)  # the element
        return real_item(*args)

    with (
        mock.patch.object(prefilter, "CHUNK", 800),
        mock.patch.object(prefilter.Prefilter, "_filtered", filtered),
        mock.patch.object(xmltv, "_item", item),
    ):
        _, counts, from_bytes = read(body, True, fast=True)
    assert "programme" not in parsed
    assert from_bytes == 90 and counts[1:3] == (90, 150)
    assert sum(scans) >= 120  # both unwanted stretches scanned, not read one by one
    assert sum(scans) < 240  # and the kept stretch mostly not


def test_an_empty_description_is_read_from_the_bytes() -> None:
    """`<desc></desc>` (an Xtream panel writes one for every programme without a description)
    is no description: read from the bytes even where the block is not read in one pass (a
    title here holds white space to strip); one followed by another description is the
    parser's (its rule takes the next)."""
    bodies = ["<title> Padded </title><desc></desc>", "<title>T</title><desc> </desc>"]
    programmes = [plain("a.tv", TIMES[0], bodies[i % 2]) for i in range(40)]
    assert same(guide(programmes), fold=True) == 40
    kept, _, _ = read(guide(programmes[:2]), fold=True, fast=True)
    assert [body for *_, body in kept] == [
        b"<title>Padded</title></programme>",
        b"<title>T</title></programme>",
    ]
    two = plain("a.tv", TIMES[0], "<title> T </title><desc></desc><desc>D</desc>")
    assert same(guide([two]), fold=True) == 0
