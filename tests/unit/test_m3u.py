"""The extended M3U parser over real-world quirks and hostile input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from plextuner.errors import IngestError
from plextuner.ingest import m3uline
from plextuner.ingest.lines import bounded_blocks
from plextuner.ingest.m3u import parse_attrs, parse_m3u, split_extinf, split_kodi_url
from plextuner.ingest.models import ParseReport

DATA = Path(__file__).parent.parent / "data"
# A copy of ../shared/realworld (Unlicense), so a fresh clone runs these tests on its own.
REALWORLD = DATA / "realworld"


@pytest.fixture(scope="module")
def messy() -> tuple[list, object]:
    return parse_m3u((DATA / "messy.m3u").read_bytes(), "messy.m3u", "p")


class TestMessyPlaylist:
    def test_counts(self, messy: tuple) -> None:
        """Every parsable entry is kept and every skip is counted by reason."""
        entries, report = messy
        assert [e.tvg_id for e in entries] == [
            "news.one",
            "sport.two",
            "dup",
            "café",
            "",
            "radio.one",
            "shift",
        ]
        assert report.skipped == {
            "entry without URL": 1,
            "DASH (.mpd) stream, cannot be served as MPEG-TS": 1,
            "unsupported URL scheme": 1,
            "entry without name": 1,
            "URL without #EXTINF": 2,
        }

    def test_header_guides_and_shift(self, messy: tuple) -> None:
        """url-tvg lists several guides; the header tvg-shift is the default."""
        entries, report = messy
        assert report.guide_urls == ["http://guide.invalid/a.xml", "http://guide.invalid/b.xml"]
        assert entries[0].tvg_shift == 1.0
        assert entries[-1].tvg_shift == -4.5

    def test_name_with_commas_and_quotes(self, messy: tuple) -> None:
        """The display name starts at the first comma outside quotes."""
        entries, _ = messy
        assert entries[0].name == 'News One, the "best" news'
        assert entries[4].name == "Kids, Fun & Games"

    def test_unquoted_and_duplicated_attributes(self, messy: tuple) -> None:
        """Unquoted values parse; of duplicated attributes the first wins; Kodi ; groups split."""
        entries, _ = messy
        assert entries[1].tvg_id == "sport.two" and entries[1].chno == "7"
        assert entries[1].group == "Sports"
        assert entries[2].tvg_id == "dup" and entries[2].group == "A"

    def test_latin1_line(self, messy: tuple) -> None:
        """A Latin-1 line inside a UTF-8 file is read as Latin-1."""
        entries, _ = messy
        assert entries[3].name == "Café TV" and entries[3].group == "Français"

    def test_headers_from_directives(self, messy: tuple) -> None:
        """EXTVLCOPT, KODIPROP and the Kodi pipe suffix become request headers."""
        entries, _ = messy
        assert entries[1].headers == {
            "User-Agent": "Mozilla/5.0 Fake",
            "Referer": "http://ref.invalid/",
        }
        assert entries[4].headers["User-Agent"] == "KodiUA"
        assert entries[4].headers["X-Forwarded-For"] == "1.2.3.4"
        assert entries[4].url == "http://cdn.invalid/live/5.ts"
        assert entries[6].headers == {"User-Agent": "PipeUA", "Referer": "http://pipe.invalid/"}

    def test_extgrp_and_catchup(self, messy: tuple) -> None:
        """#EXTGRP sets the group of following entries; catchup attributes are kept."""
        entries, _ = messy
        assert entries[5].group == "Radio"
        assert entries[6].catchup == {"catchup": "xc", "catchup-days": "3"}

    def test_extgrp_between_an_entry_and_its_url_is_that_entrys_group(self) -> None:
        """Each entry's own #EXTGRP (the common `#EXTINF`, `#EXTGRP`, URL) is its group, not
        the one in force at its #EXTINF; the last stays in force for entries without one, and
        a group-title attribute wins over both."""
        text = (
            "#EXTM3U\n#EXTINF:-1,A\n#EXTGRP:News\nhttp://a.invalid/1.ts\n"
            "#EXTINF:-1,B\n#EXTGRP:Sports\nhttp://a.invalid/2.ts\n"
            "#EXTINF:-1,C\nhttp://a.invalid/3.ts\n"
            '#EXTINF:-1 group-title="Kids",D\n#EXTGRP:Music\nhttp://a.invalid/4.ts\n'
            "#EXTINF:-1,E\nhttp://a.invalid/5.ts\n"
        )
        entries, _ = parse_m3u(text, "t", "p")
        assert [(e.name, e.group) for e in entries] == [
            ("A", "News"), ("B", "Sports"), ("C", "Sports"), ("D", "Kids"), ("E", "Music")
        ]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "hours"),
    [("-4.5", -4.5), ("5,5", 5.5), ("+14", 14.0), ("24", 24.0), ("nan", None), ("inf", None),
     ("-Infinity", None), ("1e300", None), ("25", None), ("", None), ("x", None)],
)  # fmt: skip
def test_tvg_shift_is_hours_a_time_zone_could_be(value: str, hours: float | None) -> None:
    """NaN, infinities and shifts of more than a day are dropped (a NaN made every programme's
    time NaN); in the header's default as in an entry's own."""
    text = f'#EXTM3U tvg-shift="{value}"\n#EXTINF:-1 tvg-shift="{value}",A\nhttp://a.invalid/1.ts\n'
    entries, report = parse_m3u(text, "t", "p")
    assert entries[0].tvg_shift == hours
    assert report.tvg_shift == hours


class TestHelpers:
    def test_split_extinf_unbalanced_quote(self) -> None:
        """An unbalanced quote falls back to the last comma."""
        assert split_extinf('-1 tvg-name="Bad,Name') == ('-1 tvg-name="Bad', "Name")

    def test_parse_attrs_weird(self) -> None:
        """Single quotes, spaces around = and unknown attributes parse."""
        assert parse_attrs("-1 a='x y' b = \"z\" status=online") == {
            "a": "x y",
            "b": "z",
            "status": "online",
        }

    def test_kodi_url(self) -> None:
        """A URL without a pipe has no headers."""
        assert split_kodi_url("http://x/y.ts") == ("http://x/y.ts", {})


class TestRejections:
    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            (b"", "empty playlist"),
            (b"   \n\n", "empty playlist"),
            (b"<!DOCTYPE html><html>error</html>", "HTML"),
            (b'{"error": "nope"}', "JSON"),
            (b"#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\nseg.ts\n", "HLS media playlist"),
            (bytes(range(256)) * 100, "binary"),
            (b"#EXTM3U\n", "no channel entries"),
            (b"just some text\nmore text\n", "not an M3U playlist"),
            (b"#EXTM3U\n#EXTINF:-1," + b"A" * (5 * 1024 * 1024) + b"\n", "line too long"),
            (b'#EXTM3U\n#EXTINF:-1 tvg-id="a",A\nhttp://x/a.ts'[:30], "no channel entries"),
        ],
    )
    def test_hostile_bodies(self, body: bytes, reason: str) -> None:
        """Hostile or empty bodies raise IngestError naming the source and the reason."""
        with pytest.raises(IngestError) as info:
            parse_m3u(body, "src-label")
        assert info.value.source == "src-label"
        assert reason in info.value.reason

    def test_missing_header_still_parses(self) -> None:
        """Entries without an #EXTM3U header are parsed."""
        entries, _ = parse_m3u(b"#EXTINF:-1,A\nhttp://x/a.ts\n", "s")
        assert [e.name for e in entries] == ["A"]


class TestRealWorld:
    def test_iptv_org_excerpt(self) -> None:
        """The iptv-org UK excerpt parses; DASH entries are reported, not published."""
        path = REALWORLD / "iptv-org-uk-excerpt.m3u"
        entries, report = parse_m3u(path.read_bytes(), "uk", "org")
        raw_entries = path.read_text().count("#EXTINF")
        assert len(entries) + report.skipped_total == raw_entries
        assert report.skipped.get("DASH (.mpd) stream, cannot be served as MPEG-TS", 0) >= 1
        assert all(e.url.startswith(("http://", "https://")) for e in entries)
        assert all(not e.url.endswith(".mpd") for e in entries)
        ua = [e for e in entries if "User-Agent" in e.headers]
        assert ua, "EXTVLCOPT / user-agent attributes become headers"
        assert any("[" in e.name for e in entries)  # markers kept on entries, cleaned on channels


# --- the fast paths agree with the general ones --------------------------------------------------

_ATTR_TEXT = st.lists(
    st.one_of(
        st.sampled_from(
            [
                'tvg-id="a.uk"',
                "tvg-NAME=\"B 'c'\"",
                'group-title=" G; H "',
                " ",
                ",",
                "=",
                '"',
                "'",
                "a=b",
                'x = "y"',
                "k='v w'",
                "-1",
                '9key="v"',
                'tvg-id=""',
                'catchup-days="7"',
                'é="1"',
            ]
        ),
        st.text(alphabet="ab=\"' ,-.:1é", max_size=6),
    ),
    max_size=8,
).map("".join)


@given(_ATTR_TEXT)
@settings(max_examples=600, deadline=None)
@example('="a=b"')  # a value with no key: the scan reads `a=b` inside it (found by hypothesis)
def test_quoted_attribute_reader_agrees_with_the_scan(text: str) -> None:
    """Where the split-based reader answers, it answers what the regex scan does."""
    fast = m3uline._attrs_quoted(text)
    if fast is not None:
        assert fast == m3uline._attrs_scan(text)
    assert parse_attrs(text) == m3uline._attrs_scan(text)


def test_quoted_attribute_reader_takes_the_common_spelling() -> None:
    line = '-1 tvg-id="a.uk" tvg-name="A" tvg-logo="http://l/x=1.png" group-title="News"'
    assert m3uline._attrs_quoted(line) == {
        "tvg-id": "a.uk", "tvg-name": "A", "tvg-logo": "http://l/x=1.png", "group-title": "News"
    }  # fmt: skip
    assert m3uline._attrs_quoted("-1 a=b") is None  # a bare value: the scan reads it


@given(_ATTR_TEXT, st.text(alphabet='ab ,"', max_size=6))
@settings(max_examples=600, deadline=None)
def test_extinf_split_agrees_with_the_regex(attrs: str, name: str) -> None:
    """The first-comma split and the quote-aware regex find the same name."""
    report = ParseReport("t")
    line = f"#EXTINF:{attrs},{name}"
    got = m3uline.entry_from_extinf(line, 1, "p", report)
    match = m3uline._EXTINF.match(line)
    if match is None:
        return
    want_name = match.group(2).strip() or parse_attrs(match.group(1)).get("tvg-name", "")
    assert (got.name if got else "") == want_name
    if got is not None:
        assert got.tvg_id == parse_attrs(match.group(1)).get("tvg-id", "").strip()


@given(
    st.lists(
        st.sampled_from([b"", b"a", b"bb", b"#EXTINF:-1,x", b"\xff\xfe", b"c" * 9]), max_size=12
    ),
    st.booleans(),
    st.integers(1, 7),
)
@settings(max_examples=600, deadline=None)
def test_line_blocks_hold_every_line_once(lines: list[bytes], trailing: bool, chunk: int) -> None:
    """Blocks split back into the file's lines; a line over the limit is None wherever it falls
    (inside a block, or streamed past across reads)."""
    limit = 5
    data = b"\n".join(lines) + (b"\n" if trailing and lines else b"")
    want = data.split(b"\n")
    if data.endswith(b"\n") or not data:
        want.pop()
    want_marked = [None if len(x) > limit else x for x in want]
    got: list[bytes | None] = []
    for block in bounded_blocks(io.BytesIO(data), limit, chunk):
        if block is None:
            got.append(None)
        else:
            got.extend(None if len(x) > limit else x for x in block.split(b"\n"))
    assert got == want_marked


def test_every_entry_field_lands_in_its_place() -> None:
    """The parser builds entries positionally (speed): each attribute must reach its field."""
    text = (
        '#EXTM3U\n#EXTINF:-1 tvg-id=" a.uk " tvg-name="A Name" tvg-logo="http://l/a.png" '
        'group-title="News; UK" tvg-chno="7" tvg-shift="-1.5" catchup="shift" '
        'http-user-agent="UA/1",A Channel\nhttp://h.example/a.ts\n'
    )
    (entry,), _ = parse_m3u(text, "t", "prov")
    assert (entry.name, entry.url, entry.provider) == ("A Channel", "http://h.example/a.ts", "prov")
    assert (entry.tvg_id, entry.tvg_name, entry.logo) == ("a.uk", "A Name", "http://l/a.png")
    assert (entry.group, entry.chno, entry.tvg_shift) == ("News", "7", -1.5)
    assert entry.catchup == {"catchup": "shift"} and entry.headers == {"User-Agent": "UA/1"}
    assert (entry.attrs, entry.line) == ({}, 2)


# Spellings of #EXTINF lines: a few per playlist, each line filling one with its own values.
_KEY = st.sampled_from(
    ["tvg-id", "tvg-name", "tvg-logo", "group-title", "tvg-country", "TVG-ID", "catchup",
     "catchup-days", "user-agent", "tvg-shift", "tvg-chno", "x.y:z", "ch-number", "timeshift",
     "catchup-source", "http-referrer", "Referer", "http-user-agent"]
)  # fmt: skip
_GAP = st.sampled_from([" ", "  ", "\t", " x ", ""])
_SPELLING = st.tuples(
    st.sampled_from(["-1", "0", "-1 ", " -1"]),
    st.lists(st.tuples(_GAP, _KEY), max_size=5),
    st.sampled_from(["", " ", "x"]),
    st.sampled_from(['"', '"', "'"]),  # single quotes: a generator's `tvg-id='x'`
)
_VALUE = st.one_of(
    st.text(alphabet=" ,;=aé\x01'\"A1-", max_size=6), st.sampled_from(["1", "-1.5", " 7 ", ""])
)


@st.composite
def _extinf_lines(draw: st.DrawFn) -> list[str]:
    spellings = draw(st.lists(_SPELLING, min_size=1, max_size=3))
    lines = []
    for _ in range(draw(st.integers(1, 12))):
        duration, attrs, tail, quote = draw(st.sampled_from(spellings))
        line = "#EXTINF:" + duration
        for gap, key in attrs:
            line += f"{gap}{key}={quote}{draw(_VALUE)}{quote}"
        lines.append(f"{line}{tail},{draw(_VALUE)}")
    return lines


@given(_extinf_lines(), st.sampled_from([None, 2.0]))
@settings(max_examples=500, deadline=None)
@example(
    ['#EXTINF:-1 tvg-id="a" tvg-name="A",A', '#EXTINF:-1 tvg-id=" b,c " tvg-name="B;x",'], None
)
@example(['#EXTINF:-1 tvg-chno="7",A', '#EXTINF:-1 tvg-chno="8",B'], None)
@example(['#EXTINF:-1 tvg-shift="1",A', '#EXTINF:-1 tvg-shift="x",B'], 2.0)
@example(['#EXTINF:-1 tvg-chno="" ch-number="5",A', '#EXTINF:-1 tvg-chno="" ch-number="6",B'], None)
@example(
    [
        '#EXTINF:-1 user-agent="a" http-user-agent="",A',
        '#EXTINF:-1 user-agent="b" http-user-agent="c",B',
    ],
    None,
)
@example(
    ['#EXTINF:-1 tvg-name="A",A', '#EXTINF:-1 tvg-name="",', '#EXTINF:-1 tvg-name="\x01",x'], None
)
@example(
    [
        "#EXTINF:-1 tvg-id='a' group-title='G',A",
        "#EXTINF:-1 tvg-id='b,c' group-title='G',B",
        "#EXTINF:-1 tvg-id='d\"e' group-title='G',C",
        "#EXTINF:-1 tvg-id='' group-title='H',D",
    ],
    None,
)
def test_learned_spellings_read_lines_as_the_general_way_does(
    lines: list[str], shift: float | None
) -> None:
    """A line read through a spelling learned from the lines before it gives the entry (and the
    skips) the general reading gives it."""
    known = m3uline.Spellings()
    fast, general = ParseReport("a"), ParseReport("b")
    fast.tvg_shift = general.tvg_shift = shift
    for n, line in enumerate(lines):
        want = m3uline.entry_from_extinf(line, n, "p", general)
        assert m3uline.entry_from_extinf(line, n, "p", fast, known) == want, line
    assert fast.skipped == general.skipped


def test_a_playlist_spelled_alike_is_read_through_its_spelling() -> None:
    lines = [f'#EXTINF:-1 tvg-id="c{i}.uk" tvg-logo="l{i}" group-title="G",C {i}' for i in range(9)]
    known = m3uline.Spellings()
    report = ParseReport("s")
    entries = [
        m3uline.entry_from_extinf(line, n, "p", report, known) for n, line in enumerate(lines)
    ]
    assert len(known.shapes) == 1 and known.hits == 8
    assert [(e.name, e.tvg_id, e.logo, e.group) for e in entries if e] == [
        (f"C {i}", f"c{i}.uk", f"l{i}", "G") for i in range(9)
    ]


def test_a_spelling_with_channel_numbers_catchup_and_headers_is_learned() -> None:
    lines = [
        f'#EXTINF:-1 tvg-id="c{i}" tvg-chno="{i}" tvg-shift="1.5" catchup="default" '
        f'catchup-days="7" user-agent="UA/{i}" group-title="G;H",C {i}'
        for i in range(9)
    ]
    known = m3uline.Spellings()
    report = ParseReport("s")
    entries = [
        m3uline.entry_from_extinf(line, n, "p", report, known) for n, line in enumerate(lines)
    ]
    assert len(known.shapes) == 1 and known.hits == 8
    last = entries[-1]
    assert last is not None
    assert (last.name, last.tvg_id, last.chno, last.tvg_shift, last.group) == (
        "C 8",
        "c8",
        "8",
        1.5,
        "G",
    )
    assert last.catchup == {"catchup": "default", "catchup-days": "7"}
    assert last.headers == {"User-Agent": "UA/8"}


def test_a_learned_spelling_reads_what_the_line_says_of_itself() -> None:
    """Fields a spelling decides once from its keys (which of two channel numbers, whether
    catch-up is on, which headers) still read each line's values: the general reading's."""
    spelling = (
        '#EXTINF:-1 tvg-chno="{}" ch-number="{}" catchup-days="{}" timeshift="{}" '
        'referer="{}" http-user-agent="{}" user-agent="{}" tvg-shift="{}",C'
    )
    values = [
        ("", "", "", "", "", "", "", ""),
        ("5", "9", "7", "2", "http://r", "A", "B", "-2"),
        ("", "9", "7", "", "", "A", "", "x"),
        ("5", "", "", "1", "", "", "B", "nan"),
    ]
    lines = [spelling.format(*v) for v in values * 2]
    known = m3uline.Spellings()
    learned = [
        m3uline.entry_from_extinf(line, n, "p", ParseReport("s"), known)
        for n, line in enumerate(lines)
    ]
    general = [
        m3uline.entry_from_extinf(line, n, "p", ParseReport("s")) for n, line in enumerate(lines)
    ]
    assert known.hits == len(lines) - 1
    assert learned == general
    assert [(e.chno, e.headers, e.catchup) for e in general if e][1] == (
        "5", {"Referer": "http://r", "User-Agent": "B"}, {"catchup-days": "7", "timeshift": "2"}
    )  # fmt: skip


@pytest.mark.parametrize(
    "path", [DATA / "messy.m3u", REALWORLD / "iptv-org-uk-excerpt.m3u"], ids=lambda p: p.name
)
def test_real_playlists_read_the_same_without_learned_spellings(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real playlists (and the messy one) give the same entries and report either way."""
    data = path.read_bytes()
    fast = parse_m3u(data, "s", "p")

    class Unlearned(m3uline.Spellings):
        def learn(self, attr_part: str) -> None:
            return None

    monkeypatch.setattr("plextuner.ingest.m3uwalk.Spellings", Unlearned)
    assert parse_m3u(data, "s", "p") == fast
