"""The byte-level prefilter drops programmes without changing what a guide parses to.

Every test compares the items and counters `iter_guide` gives with the prefilter against the
same parse with it switched off (no codec: every byte goes to the parser), over guides written
with the spellings that could fool a byte scanner: attributes in any order, single quotes,
entities, newlines inside tags, comments and CDATA sections holding programme markup, processing
instructions, and blocks cut at every size.
"""

from __future__ import annotations

import io
import itertools
import re
import time
from collections.abc import Container
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plextuner.epg import heads, prefilter, starttags
from plextuner.epg.emit import RenderedRun
from plextuner.epg.markup import Markup
from plextuner.epg.model import GuideChannel, ParseOutcome, Programme
from plextuner.epg.prefilter import ascii_codec
from plextuner.epg.xmltv import iter_guide
from plextuner.errors import EpgError

WANTED = frozenset({"a.tv", "b&c", "ü.tv"})
IDS = ["a.tv", "b&c", "ü.tv", "x.tv", "y&z", "q.tv"]
HOUR = 3600.0
WINDOW = (1_700_000_000.0, 1_700_000_000.0 + 6 * HOUR)
TIMES = ["20231114221320 +0000", "20231115001320 +0000", "20231116001320 +0000", "garbage", ""]


def parse(
    body: bytes, channels: Container[str] | None, window: tuple[float, float] | None, on: bool
) -> tuple[list[GuideChannel | Programme], ParseOutcome]:
    """Like the guide stage: the channels wanted are the ones matched among those read so
    far, asked for once; every channel of the guide must have been read by then."""
    outcome = ParseOutcome("t")
    codec = prefilter.ascii_codec if on else (lambda _head: None)
    items: list[GuideChannel | Programme] = []
    asked: list[int] = []

    def wanted() -> Container[str]:
        assert channels is not None
        asked.append(len(items))
        return {i.id for i in items if isinstance(i, GuideChannel) and i.id in channels}

    with mock.patch("plextuner.epg.xmltv.ascii_codec", codec):
        for item in iter_guide(
            io.BytesIO(body), "t", outcome, wanted if channels is not None else None, window
        ):
            assert not isinstance(item, RenderedRun)  # (only with `fold`)
            items.append(item)
    assert len(asked) <= 1
    if asked:  # the guides generated here put every channel first, as the DTD does
        assert asked[0] == sum(isinstance(i, GuideChannel) for i in items)
    return items, outcome


_COLUMN = re.compile(r"column \d+")


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


@st.composite
def programme(draw: st.DrawFn) -> str:
    attrs = [
        ("start", draw(st.sampled_from(TIMES))),
        ("stop", draw(st.sampled_from(TIMES))),
        ("channel", draw(st.sampled_from(IDS))),
    ]
    attrs = draw(st.permutations(attrs))
    if draw(st.booleans()):
        attrs = [a for a in attrs if a[0] != draw(st.sampled_from(["start", "stop", "x"]))]
    spelled = []
    for name, value in attrs:
        quote = draw(st.sampled_from(['"', '"', "'"]))
        gap = draw(st.sampled_from([" ", " ", "\n", "  "]))
        text = escape(value)
        if value.startswith("2023") and draw(st.booleans()):
            text = text.replace("0", "&#48;", 1)  # a character reference the parser decodes
        spelled.append(f"{gap}{name}={quote}{text}{quote}")
    title = escape(draw(st.text(st.sampled_from("ab <&>'\"!?"), max_size=6)))
    body = f"<title>{title or 'T'}</title>"
    body += draw(
        st.sampled_from(
            [
                "",
                '<desc><![CDATA[ <programme channel="x.tv"></programme> ]]></desc>',
                "<desc>fine</desc><!-- a comment -->",
                '<!-- <programme start="1" channel="a.tv"> -->',
                "<?pi data?>",
                '<programme start="20231114221320 +0000" channel="a.tv"><title>in</title>'
                "</programme>",  # nested: well-formed XML, however wrong for XMLTV
            ]
        )
    )
    return f"<programme{''.join(spelled)}>{body}</programme>"


@st.composite
def guide(draw: st.DrawFn) -> bytes:
    head = draw(
        st.sampled_from(
            [
                '<?xml version="1.0" encoding="UTF-8"?>\n',
                "<?xml version='1.0' encoding='ISO-8859-1'?>\n",
                "",
                '<?xml version="1.0"?>\n<!-- top <programme channel="x.tv"> -->\n',
            ]
        )
    )
    channels = "".join(
        f'<channel id="{escape(cid)}"><display-name>{escape(cid)}</display-name></channel>\n'
        for cid in draw(st.lists(st.sampled_from(IDS), max_size=4))
    )
    items = draw(st.lists(programme(), max_size=12))
    seps = draw(st.lists(st.sampled_from(["\n", "", " ", "<!--x-->"]), min_size=len(items)))
    programmes = "".join(sep + p for sep, p in zip(seps, items, strict=False))
    text = f"{head}<tv>{channels}{programmes}\n</tv>\n"
    encoding = "latin-1" if "ISO-8859-1" in head else "utf-8"
    return text.encode(encoding, errors="replace")


@given(
    guide(),
    st.sampled_from([None, WANTED, frozenset()]),
    st.sampled_from([None, WINDOW]),
    st.sampled_from([7, 64, 1024 * 1024]),
    st.integers(0, 40),
)
@settings(max_examples=300, deadline=None)
def test_same_items_and_counts_with_and_without_the_prefilter(
    body: bytes,
    channels: Container[str] | None,
    window: tuple[float, float] | None,
    chunk: int,
    cut: int,
) -> None:
    """Whatever the spelling, block size or truncation, the prefilter changes nothing the
    parse gives: the same items, channel, programme and skipped counts, the same verdict."""
    if cut:
        body = body[: max(0, len(body) - cut)]
    with mock.patch.object(prefilter, "CHUNK", chunk):
        reason: str | None = None
        try:
            plain = parse(body, channels, window, on=False)
        except EpgError as err:  # not a guide at all: the filtered parse says the same
            reason = str(err)
        if reason is not None:  # the same error, at the same line (a column may differ on a
            with pytest.raises(EpgError) as raised:  # line that held a cut programme)
                parse(body, channels, window, on=True)
            assert _COLUMN.sub("", str(raised.value)) == _COLUMN.sub("", reason)
            return
        filtered = parse(body, channels, window, on=True)
    assert filtered[0] == plain[0]
    f, p = filtered[1], plain[1]
    assert (f.channels, f.programmes, f.skipped) == (p.channels, p.programmes, p.skipped)
    assert bool(f.truncated) == bool(p.truncated)


def big_guide(channels: int, hours: int) -> bytes:
    parts = [b'<?xml version="1.0" encoding="UTF-8"?>\n<tv>\n']
    parts += [
        b'<channel id="c%d.tv"><display-name>C %d</display-name></channel>\n' % (c, c)
        for c in range(channels)
    ]
    for h in range(hours):
        t0 = f"202311142{h % 4}0000 +0000"
        parts += [
            b'<programme start="%s" stop="%s" channel="c%d.tv"><title>S</title></programme>\n'
            % (t0.encode(), t0.encode(), c)
            for c in range(channels)
        ]
    parts.append(b"</tv>\n")
    return b"".join(parts)


def test_most_programmes_never_reach_the_parser() -> None:
    """On a guide of 50 channels with 5 in the lineup, 90 % of programmes are cut from the
    bytes (counted as skipped), and the kept ones are the same as without the filter."""
    body = big_guide(50, 40)
    wanted = frozenset(f"c{c}.tv" for c in range(5))
    fed: list[int] = []
    real = prefilter.Prefilter._filtered

    def spy(self: prefilter.Prefilter, block: bytes) -> tuple[bytes, int]:
        out, looked = real(self, block)
        fed.append(out.count(b"<programme "))
        return out, looked

    with mock.patch.object(prefilter.Prefilter, "_filtered", spy):
        items, outcome = parse(body, wanted, None, on=True)
    assert sum(fed) == 5 * 40
    assert outcome.skipped == 45 * 40 and outcome.programmes == 5 * 40
    assert items == parse(body, wanted, None, on=False)[0]


def test_a_comment_left_open_turns_the_filter_off() -> None:
    """Programme markup inside a comment that spans blocks is never cut into."""
    body = (
        b'<tv><channel id="a.tv"><display-name>A</display-name></channel><!-- '
        + b'<programme start="20231114221320" channel="x.tv"><title>no</title></programme>' * 50
        + b'--><programme start="20231114221320" channel="a.tv"><title>yes</title></programme>'
        + b"</tv>"
    )
    with mock.patch.object(prefilter, "CHUNK", 100):
        items, outcome = parse(body, WANTED, None, on=True)
    assert [p.title for p in items if isinstance(p, Programme)] == ["yes"]
    assert outcome.skipped == 0


def test_markup_state_across_cut_tokens() -> None:
    """An opener or closer cut by a block's end is still seen."""
    state = Markup()
    for piece in (b"text <!", b"-", b"- inside -", b"-", b"> after <![CD", b"ATA[ x ]", b"]>"):
        state.feed(piece)
    assert state.outside
    state.feed(b"<tv><channel>")  # markup that is no opener's beginning leaves nothing open
    assert state.outside
    state.feed(b"<?pi ")
    assert not state.outside


def test_a_carried_lt_the_first_programme_shows_opened_nothing() -> None:
    """A stray `<` right before the first `<programme` is carried by the markup state (it
    could begin `<!--`); the programme after it shows it opened nothing: the channels are asked
    for there (as before the stray byte), and every programme is read (resync.py mends it)."""
    state = Markup()
    state.feed(b"</channel><")
    assert not state.outside and state.outside_before(b"<programme")
    assert not state.outside_before(b"!--")  # (a token that does open one)
    body = (
        f"<tv>{CHANNELS}<"
        + "".join(
            f'<programme start="{IN_WINDOW}" channel="a.tv"><title>{i}</title></programme>'
            for i in range(3)
        )
        + "</tv>"
    ).encode()
    for chunk in (7, 4096):
        with mock.patch.object(prefilter, "CHUNK", chunk):
            items, outcome = parse(body, WANTED, None, on=True)
        assert [p.title for p in items if isinstance(p, Programme)] == ["0", "1", "2"]
        assert (outcome.malformed, outcome.truncated) == (1, None)


def test_codec_from_the_declaration() -> None:
    assert ascii_codec(b'<?xml version="1.0" encoding="UTF-8"?><tv>') == "utf-8"
    assert ascii_codec(b"<?xml version='1.0' encoding='iso-8859-1'?>") == "iso8859-1"
    assert ascii_codec(b"<tv>") == "utf-8"
    assert ascii_codec(b'<?xml version="1.0" encoding="UTF-16"?>') is None
    assert ascii_codec(b'<?xml version="1.0" encoding="no-such"?>') is None


IN_WINDOW = "20231114231320 +0000"  # an hour into WINDOW
CHANNELS = '<channel id="a.tv"/><channel id="b&amp;c"/><channel id="x.tv"/>'


def test_spellings_the_scanner_cannot_read_go_to_the_parser() -> None:
    """A character reference in a time, a single-quoted value holding a fake `start`, an
    entity in the channel, attributes split by newlines: each programme is kept or dropped
    exactly as the parser alone would (here all are wanted and in the window)."""
    programmes = [
        '<programme channel="a.tv" start="2&#48;231114231320 +0000"><title>1</title></programme>',
        f"<programme channel=\"a.tv\" x=' start=\"19700101\"' start='{IN_WINDOW}'>"
        "<title>2</title></programme>",
        f'<programme start="{IN_WINDOW}" channel="b&amp;c"><title>3</title></programme>',
        f'<programme start="{IN_WINDOW}"\nchannel="a.tv"><title>4</title></programme>',
        f'<programme channel="a.tv" x="1" start="{IN_WINDOW}"><title>5</title></programme>',
    ]
    body = f"<tv>{CHANNELS}{''.join(programmes)}</tv>".encode()
    items, outcome = parse(body, WANTED, WINDOW, on=True)
    assert [p.title for p in items if isinstance(p, Programme)] == ["1", "2", "3", "4", "5"]
    assert outcome.skipped == 0
    assert items == parse(body, WANTED, WINDOW, on=False)[0]


def test_out_of_window_and_unwanted_are_cut_whatever_the_order() -> None:
    """Plain programmes outside the window or for channels not carried are cut in either
    attribute order, and counted as skipped like the parser counts them."""
    early = "20231101000000 +0000"
    programmes = [
        f'<programme start="{early}" stop="{early}" channel="a.tv"><title>old</title></programme>',
        f'<programme channel="a.tv" start="{early}"><title>old2</title></programme>',
        f'<programme start="{IN_WINDOW}" channel="x.tv"><title>other</title></programme>',
        f'<programme start="{IN_WINDOW}" channel="a.tv"><title>kept</title></programme>',
    ]
    body = f"<tv>{CHANNELS}{''.join(programmes)}</tv>".encode()
    fed: list[bytes] = []
    real = prefilter.Prefilter._filtered

    def spy(self: prefilter.Prefilter, block: bytes) -> tuple[bytes, int]:
        out, looked = real(self, block)
        fed.append(out)
        return out, looked

    with mock.patch.object(prefilter.Prefilter, "_filtered", spy):
        items, outcome = parse(body, WANTED, WINDOW, on=True)
    assert [p.title for p in items if isinstance(p, Programme)] == ["kept"]
    assert outcome.skipped == 3 and b"".join(fed).count(b"<programme") == 1


def test_garbage_mid_guide_costs_only_the_programme_it_is_in() -> None:
    """A broken start tag mid-guide: the programmes before it, even those read in the same
    block (the parser's events before its error are still delivered), and those after it (a
    fresh parser reads on, resync.py); the piece holding it read alone with libxml2's recovery,
    which finds the programme behind the broken tag."""
    good = "".join(
        f'<programme start="{IN_WINDOW}" channel="a.tv"><title>{i}</title></programme>'
        for i in range(5)
    )
    body = f"<tv>{CHANNELS}{good}<programme <<< broken>{good}</tv>".encode()
    for on in (True, False):
        items, outcome = parse(body, WANTED, None, on=on)
        assert [p.title for p in items if isinstance(p, Programme)] == list("01234") * 2
        assert (outcome.malformed, outcome.truncated) == (1, None)
        assert outcome.malformed_first == "<programme <<< broken>: error parsing attribute name"
        assert outcome.skipped == 1  # what the recovery read of the broken tag: no channel


def test_filtering_stops_where_it_cuts_nothing() -> None:
    """Past its trial, a filter that cut almost nothing (every channel carried) passes the rest
    whole; one that cuts keeps going. The items are the same either way."""
    body = big_guide(10, 40)
    calls: list[int] = []
    real = prefilter.Prefilter._filtered

    def spy(self: prefilter.Prefilter, block: bytes) -> tuple[bytes, int]:
        calls.append(block.count(prefilter.END))
        return real(self, block)

    for wanted, keeps_going in ((frozenset(f"c{c}.tv" for c in range(10)), False),
                                (frozenset({"c1.tv"}), True)):  # fmt: skip
        calls.clear()
        with (
            mock.patch.object(prefilter, "CHUNK", 2048),
            mock.patch.object(prefilter, "TRIAL", 50),
            mock.patch.object(prefilter.Prefilter, "_filtered", spy),
        ):
            items, _ = parse(body, wanted, None, on=True)
        assert (sum(calls) > 300) is keeps_going, calls
        assert items == parse(body, wanted, None, on=False)[0]


def test_filtering_resumes_where_it_pays_again() -> None:
    """A guide written hour by hour for every channel has its programmes past the window only
    at its end: the filter that stopped over the early hours (nothing to cut there) samples a
    block now and then and cuts the late hours once a sample pays."""
    channels, hours = 10, 40
    start = 1_700_000_000
    parts = [b'<?xml version="1.0" encoding="UTF-8"?>\n<tv>\n']
    parts += [b'<channel id="c%d.tv"><display-name>C</display-name></channel>\n' % c
              for c in range(channels)]  # fmt: skip
    for h in range(hours):
        t0 = time.strftime("%Y%m%d%H%M%S +0000", time.gmtime(start + h * 3600)).encode()
        t1 = time.strftime("%Y%m%d%H%M%S +0000", time.gmtime(start + h * 3600 + 3600)).encode()
        parts += [
            b'<programme start="%s" stop="%s" channel="c%d.tv"><title>S</title></programme>\n'
            % (t0, t1, c)
            for c in range(channels)
        ]
    body = b"".join(parts) + b"</tv>\n"
    window = (float(start), float(start + 10 * 3600))  # the first 10 hours
    wanted = frozenset(f"c{c}.tv" for c in range(channels))
    fed: list[int] = []
    real = prefilter.Prefilter._filtered

    def spy(self: prefilter.Prefilter, block: bytes) -> tuple[bytes, int]:
        out, looked = real(self, block)
        fed.append(looked - out.count(b"<programme "))  # cut in this block
        return out, looked

    with (
        mock.patch.object(prefilter, "CHUNK", 2048),
        mock.patch.object(prefilter, "TRIAL", 50),
        mock.patch.object(prefilter.Prefilter, "_filtered", spy),
    ):
        items, outcome = parse(body, wanted, window, on=True)
    plain, counted = parse(body, wanted, window, on=False)
    assert items == plain
    assert (outcome.programmes, outcome.skipped) == (counted.programmes, counted.skipped)
    assert counted.skipped >= (hours - 11) * channels
    assert sum(fed) > counted.skipped / 2  # most of the late hours never reached the parser


def test_an_error_after_cut_programmes_names_the_files_line() -> None:
    """Programmes written over several lines (pretty-printed guides) are cut with their line
    breaks kept: a parse error further on names the same line as without the filter."""
    programme = (
        b'<programme start="20231114221320 +0000" stop="20231114231320 +0000"\n'
        b'  channel="x.tv">\n  <title>T</title>\n</programme>\n'
    )
    body = b"<tv>\n" + programme * 30 + b"<programme start=</tv>\n"
    reasons = []
    for on in (False, True):
        with pytest.raises(EpgError) as raised:
            parse(body, WANTED, None, on=on)
        reasons.append(str(raised.value))
    assert "line 122" in reasons[0]
    assert reasons[1] == reasons[0]


# Start tag spellings the block pass reads at once (heads.py): the DTD's order, others, an
# Xtream panel's (its timestamps; `a=b` in a value), and one it leaves (single quotes)
ORDERS = (
    "start stop channel",
    "channel start stop",
    "start channel stop",
    "stop start channel",
    "start stop start_timestamp stop_timestamp channel",
    "channel start catchup-id",
    "start='' stop channel",
)
_OTHER = {"start_timestamp": "1765000000", "stop_timestamp": "1765003600", "catchup-id": "a=b"}
# Any spelling: the three read (stop left out at times) and others, in any order, a value in
# single quotes at times
SPELLINGS = st.builds(
    lambda names, quoted: " ".join(n + "=''" if n in quoted else n for n in names),
    st.permutations(["start", "stop", "channel", *_OTHER]).flatmap(
        lambda names: st.sampled_from([names, [n for n in names if n != "stop"]])
    ),
    st.sets(st.sampled_from(["start", "stop", "channel"]), max_size=1),
)


def plain_programme(channel: str, start: str, stop: str, sep: str, order: str = ORDERS[0]) -> str:
    values = {"start": start, "stop": stop, "channel": escape(channel), **_OTHER}
    attrs = " ".join(
        f"{name[:-3]}='{values[name[:-3]]}'" if name.endswith("=''") else f'{name}="{values[name]}"'
        for name in order.split()
    )
    return f"{sep}<programme {attrs}><title>{escape(channel)} {start[:10]}</title></programme>"


@given(
    st.lists(
        st.tuples(
            st.sampled_from(IDS),
            st.sampled_from(TIMES[:3]),
            st.sampled_from(TIMES[:3]),
            st.sampled_from(["\n", "", " ", "\n  ", "\t", "text"]),
            st.one_of(st.sampled_from(ORDERS), SPELLINGS),
        ),
        max_size=40,
    ),
    st.sampled_from([None, WANTED, frozenset()]),
    st.sampled_from([None, WINDOW]),
    st.sampled_from([97, 300, 1024 * 1024]),
    st.one_of(st.sampled_from([None, *ORDERS]), SPELLINGS),
)
@settings(max_examples=300, deadline=None)
def test_block_verdicts_keep_what_the_parser_keeps(
    rows: list[tuple[str, str, str, str, str]],
    channels: Container[str] | None,
    window: tuple[float, float] | None,
    chunk: int,
    order: str | None,
) -> None:
    """Blocks of plainly spelled programmes, in the orders the block pass reads at once (with
    now and then text between programmes, or another order, which it leaves to the
    piece-by-piece pass): the same items and counts as the parser alone, at every block size.
    `order`: every programme's (None: each row's own)."""
    tags = "".join(plain_programme(*r[:4], order or r[4]) for r in rows)
    body = f'<tv>{CHANNELS}<channel id="ü.tv"/>{tags}\n</tv>'.encode()
    with mock.patch.object(prefilter, "CHUNK", chunk):
        filtered, f = parse(body, channels, window, on=True)
    plain, p = parse(body, channels, window, on=False)
    assert filtered == plain
    assert (f.channels, f.programmes, f.skipped) == (p.channels, p.programmes, p.skipped)


def block_verdicts(body: bytes) -> tuple[list[object], list[GuideChannel | Programme], int]:
    """What the block pass said of each block, the items and the skipped count."""
    verdicts: list[object] = []
    real = prefilter.Prefilter._verdicts_at_once

    def spy(self: prefilter.Prefilter, block: bytes, count: int) -> object:
        verdicts.append(real(self, block, count))
        return verdicts[-1]

    with mock.patch.object(prefilter.Prefilter, "_verdicts_at_once", spy):
        items, outcome = parse(body, WANTED, WINDOW, on=True)
    assert items == parse(body, WANTED, WINDOW, on=False)[0]
    return verdicts, items, outcome.skipped


def test_each_block_verdict() -> None:
    """The block pass keeps a block whole, drops it whole (line breaks kept), keeps some of
    its programmes, or leaves a block it cannot read at once to the piece-by-piece pass."""
    early = "20231101000000 +0000"
    cases: list[tuple[list[tuple[str, str]], object]] = [
        ([("a.tv", IN_WINDOW), ("ü.tv", IN_WINDOW)], True),
        ([("x.tv", early), ("a.tv", early)], False),  # outside the window
        ([("x.tv", IN_WINDOW), ("q.tv", IN_WINDOW)], False),  # channels not carried
        ([("a.tv", IN_WINDOW), ("x.tv", IN_WINDOW), ("a.tv", early)], [True, False, False]),
    ]
    for (rows, expected), order in itertools.product(cases, ORDERS):
        programmes = "".join(plain_programme(c, t, t, "\n", order) for c, t in rows)
        body = f'<tv>{CHANNELS}<channel id="ü.tv"/>{programmes}\n</tv>'.encode()
        verdicts, _, skipped = block_verdicts(body)
        # (a spelling it does not read: a piece at a time, the same programmes kept)
        assert verdicts == [expected if "'" not in order else None], (rows, order)
        assert skipped == sum(1 for c, t in rows if c not in WANTED or t == early)
    # the stop read where it stands: one that started before the window and ends in it is kept
    before, inside = "20231114211320 +0000", "20231114223320 +0000"
    for order in ORDERS[:5]:
        tags = [plain_programme("a.tv", before, stop, "\n", order) for stop in (inside, before)]
        body = f"<tv>{CHANNELS}{''.join(tags)}\n</tv>".encode()
        verdicts, items, skipped = block_verdicts(body)
        assert verdicts == [[True, False]] and skipped == 1, order
    # a duplicate attribute (the parser's error to report) or no channel: a piece at a time
    for tag in ('start="{t}" start="{t}" channel="a.tv"', 'start="{t}" stop="{t}" id="a.tv"'):
        odd = f"<programme {tag.format(t=IN_WINDOW)}><title>t</title></programme>" * 2
        verdicts, _, _ = block_verdicts(f"<tv>{CHANNELS}{odd}\n</tv>".encode())
        assert verdicts == [None], tag
    # a tag of hundreds of attributes (a hostile guide): no pattern is built for it, and no
    # respelling pattern either; read a piece at a time, kept as the parser keeps it
    many = " ".join(f'a{i}="x"' for i in range(heads.MAX_ATTRIBUTES * 20))
    tag = f'start="{IN_WINDOW}" stop="{IN_WINDOW}" {many} channel="a.tv"'
    odd = f"<programme {tag}><title>t</title></programme>\n" * 3
    verdicts, items, _ = block_verdicts(f"<tv>{CHANNELS}{odd}</tv>".encode())
    assert verdicts == [None] and len([p for p in items if isinstance(p, Programme)]) == 3
    assert starttags._spelling(b" " + tag.encode()) is None
    # two orders in one block: a piece at a time
    mixed = plain_programme("a.tv", IN_WINDOW, IN_WINDOW, "\n", ORDERS[1])
    mixed += plain_programme("x.tv", IN_WINDOW, IN_WINDOW, "\n", ORDERS[0])
    verdicts, items, skipped = block_verdicts(f"<tv>{CHANNELS}{mixed}\n</tv>".encode())
    assert verdicts == [None] and skipped == 1
    # a self-closed programme: two in one piece, which one verdict must not cut together
    odd = f'<programme start="{IN_WINDOW}" stop="{IN_WINDOW}" channel="x.tv"/>'
    odd += plain_programme("a.tv", IN_WINDOW, IN_WINDOW, "\n")
    verdicts, items, skipped = block_verdicts(f"<tv>{CHANNELS}{odd}\n</tv>".encode())
    assert verdicts == [None] and skipped == 1
    assert [p.channel for p in items if isinstance(p, Programme)] == ["a.tv"]


def test_a_programme_longer_than_a_block_leaves_the_filter_on() -> None:
    """A 1.5 MB programme (several of the prefilter's blocks) is carried whole, and the
    programmes after it are still cut from the bytes: only megabytes without an end tag turn
    the filter off (its limit is in bytes, not in blocks)."""
    assert prefilter.CHUNK < 1024 * 1024
    long = f'<programme start="{IN_WINDOW}" channel="a.tv"><title>{"L" * 1_500_000}</title>'
    after = "".join(
        f'<programme start="{IN_WINDOW}" channel="{c}"><title>{i}</title></programme>\n'
        for i in range(50)
        for c in ("a.tv", "x.tv")
    )
    body = f"<tv>{CHANNELS}{long}</programme>\n{after}</tv>".encode()
    seen: list[int] = []
    fed: list[int] = []
    real = prefilter.Prefilter._filtered

    def spy(self: prefilter.Prefilter, block: bytes) -> tuple[bytes, int]:
        out, looked = real(self, block)
        seen.append(block.count(b'channel="x.tv"'))
        fed.append(out.count(b'channel="x.tv"'))
        return out, looked

    with mock.patch.object(prefilter.Prefilter, "_filtered", spy):
        items, outcome = parse(body, WANTED, WINDOW, on=True)
    assert (sum(seen), sum(fed)) == (50, 0)  # every x.tv programme cut before the parser
    assert outcome.skipped == 50
    titles = [p.title for p in items if isinstance(p, Programme)]
    assert titles == ["L" * 1_500_000, *map(str, range(50))]
    assert items == parse(body, WANTED, WINDOW, on=False)[0]


def test_cdata_sections_become_text_only_where_they_are_sections() -> None:
    """Titles in CDATA sections are read as the text they stand for (the same items as without
    the prefilter); an opener inside a comment is no section, and the block that holds it is
    left as it is (rewritten, the opener would take the comment's end and the next programme
    with it)."""
    titles = [
        f'<programme start="{IN_WINDOW}" channel="a.tv"><title><![CDATA[{t}]]></title></programme>'
        for t in ("A & B", "<c>", "two\nlines")
    ]
    for between in ("", "<!-- a><![CDATA[ -->"):
        body = f"<tv>{CHANNELS}{titles[0]}{titles[1]}{between}\n{titles[2]}</tv>".encode()
        items, outcome = parse(body, WANTED, WINDOW, on=True)
        assert [p.title for p in items if isinstance(p, Programme)] == [
            "A & B",
            "<c>",
            "two\nlines",
        ]
        assert (items, outcome.truncated) == (
            parse(body, WANTED, WINDOW, on=False)[0],
            parse(body, WANTED, WINDOW, on=False)[1].truncated,
        )


def test_a_block_with_a_cdata_section_left_open_is_not_searched_for_its_ends() -> None:
    """Hostile bytes: thousands of CDATA openers and no end. Each try of the pattern would look
    for `]]>` to the block's end (seconds a block): the block is left as it is, unsearched, and
    the guide reads as it did (the same items with and without the prefilter)."""
    from plextuner.epg import markup

    garbage = b"<title>a<![CDATA[" + b"y" * 100
    block = garbage * 2000
    with mock.patch.object(markup, "_CDATA") as pattern:
        assert markup.cdata_as_text(block) is block
        closed_first = b"<title>a<![CDATA[b]]></title>" + block
        assert markup.cdata_as_text(closed_first) is closed_first  # the last one is open
    pattern.sub.assert_not_called()
    programme = f'<programme start="{IN_WINDOW}" channel="a.tv"><title>A</title></programme>'
    body = f"<tv>{CHANNELS}{programme}".encode() + block + b"</tv>"
    items, outcome = parse(body, WANTED, WINDOW, on=True)
    assert outcome.truncated and len(items) >= 1
    assert items == parse(body, WANTED, WINDOW, on=False)[0]


_CDATA_PIECES = st.sampled_from(
    [
        b"<title>",
        b"</title>",
        b"<desc>pre ",
        b"</desc>",
        b"<![CDATA[plain]]>",
        b"<![CDATA[a & b <c> ]] ]>]]>",
        b"<![CDATA[]]>",
        b"<![CDATA[two\nlines\r\n]]>",
        b"<![CDATA[nul\x00]]>",
        b"text > more",
        b"\n",
        b"</programme>",
    ]
)


@given(st.lists(_CDATA_PIECES, max_size=20))
@settings(max_examples=300, deadline=None)
def test_cdata_sections_written_as_text_all_at_once_as_one_at_a_time(pieces: list[bytes]) -> None:
    """The sections of a block escaped together (one split, one join) give what a call a
    section gives (`_as_text`)."""
    from plextuner.epg import markup

    block = b"".join(pieces)
    want = markup._CDATA.sub(markup._as_text, block)
    assert markup.cdata_as_text(block) == want


@given(
    st.lists(st.sampled_from([b">", b"a", b"]", b"]]>", b"<![CDATA[", b"<", b"\n"]), max_size=24)
)
@settings(max_examples=500, deadline=None)
def test_the_cdata_pattern_ends_a_section_at_its_first_end(pieces: list[bytes]) -> None:
    """The section's text taken in runs ends where the lazy reading (`.*?` up to `]]>`) ends
    it: at the first `]]>`."""
    from plextuner.epg import markup

    lazy = re.compile(rb">([^<>]*+)<!\[CDATA\[(.*?)\]\]>", re.DOTALL)
    block = b"".join(pieces)
    assert markup._CDATA.split(block) == lazy.split(block)
