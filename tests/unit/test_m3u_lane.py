"""The parser's fast lane (ingest/m3ublock.py) gives what the line walk gives, line for line."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from plextuner.errors import IngestError
from plextuner.ingest import lines, m3ublock
from plextuner.ingest.m3u import parse_m3u, parse_m3u_file
from plextuner.ingest.models import Entry, ParseReport
from tests.unit.test_m3u import _extinf_lines

_GOOD_URL = st.builds("http://h{}.invalid/live/{}.ts".format, st.integers(0, 3), st.integers(0, 99))

_URL = st.sampled_from(
    [
        "http://h1.invalid/live/u/p/1.ts",
        "https://h2.invalid:8443/a/b.m3u8?token=x",
        "http://h3.invalid/x.mpd",
        "http://h3.invalid/x.mpd?y=1",
        "http://h1.invalid/1.ts|User-Agent=UA&Referer=http://r",
        " http://h1.invalid/lead.ts",
        "http://h1.invalid/trail.ts ",
        "http://h1.invalid/in side.ts",
        "http://h1.invalid:0/port.ts",
        "http://",
        "ftp://h4.invalid/f.ts",
        "rtmp://h4.invalid/live",
        "not a url",
        "http://h1.invalid/nul\x00.ts",
        "http://h1.invalid/" + "x" * 8200,
        "HTTP://H5.INVALID/UP.TS",
        "http://h6.invalid/é.ts",
    ]
)
_OTHER = st.sampled_from(
    [
        "",
        "   ",
        "#EXTVLCOPT:http-user-agent=VLC/3",
        "#EXTVLCOPT:http-referrer=http://r.invalid/ ",
        "#EXTVLCOPT:network-caching=1000",
        "#extvlcopt:http-user-agent=lower",
        "#EXTVLCOPT:http-user-agent=A\x01B",
        "#KODIPROP:inputstream.adaptive.stream_headers=User-Agent=K",
        "#EXTGRP:Sticky",
        "#EXTGRP:",
        "#EXTGRP: Spaced \t",
        "#extgrp:lower",
        "#EXTGRP:G\x01",
        "#EXTGRP:N\x00",
        "#EXTGRP:é",
        '#EXTM3U url-tvg="http://g.invalid/x.xml" tvg-shift="2"',
        "# a comment",
        "\x00",
        "#EXTINF:-1,",
        '#EXTINF:-1 tvg-id="z",Zed\u00a0',
        '  #EXTINF:-1 tvg-id="lead",Leading space',
    ]
)


_PLAIN_VALUE = st.one_of(
    st.text(alphabet="aZ 1;-.", max_size=5),
    st.sampled_from(["", " x ", "G;H", "\x01", "é", " 2 ", "-1,5", "nan"]),
)


@st.composite
def _plain_extinf_lines(draw: st.DrawFn) -> list[str]:
    """Runs in one or two spellings, printable values mostly: what the lane takes."""
    keys = ["tvg-id", "tvg-name", "tvg-logo", "group-title", "tvg-chno", "catchup", "user-agent",
            "tvg-shift", "ch-number", "catchup-days", "timeshift", "catchup-source",
            "http-user-agent", "referer"]  # fmt: skip
    spellings = draw(
        st.lists(
            st.lists(st.sampled_from(keys), min_size=1, max_size=4, unique=True),
            min_size=1,
            max_size=2,
        )
    )
    out = []
    for _ in range(draw(st.integers(2, 16))):
        quote = draw(st.sampled_from(['"', '"', "'"]))
        attrs = " ".join(
            f"{k}={quote}{draw(_PLAIN_VALUE)}{quote}" for k in draw(st.sampled_from(spellings))
        )
        out.append(f"#EXTINF:-1 {attrs},{draw(_PLAIN_VALUE)}")
    return out


@st.composite
def _playlists(draw: st.DrawFn) -> str:
    """Entries mostly in a few spellings, their URL lines, and what comes between them."""
    extinfs = draw(st.one_of(_extinf_lines(), _plain_extinf_lines()))
    out = ["#EXTM3U"] if draw(st.booleans()) else []
    for extinf in extinfs:
        out.extend(draw(st.lists(_OTHER, max_size=2)))
        out.append(extinf)
        if draw(st.integers(0, 5)) == 0:
            out.extend(draw(st.lists(_OTHER, max_size=2)))
        if draw(st.integers(0, 8)):
            out.append(draw(st.one_of(_GOOD_URL, _GOOD_URL, _URL)))
    ends = draw(st.sampled_from(["\n", "\r\n", "mixed"]))
    text = ""
    for line in out:
        text += line + (("\r\n" if draw(st.booleans()) else "\n") if ends == "mixed" else ends)
    return text[: len(text) - draw(st.integers(0, 2))]  # with or without the last newline


def _outcome(parse: object, *args: object) -> tuple[list[Entry], ParseReport] | str:
    try:
        return parse(*args)  # type: ignore[operator, no-any-return]
    except IngestError as err:
        return str(err)


class _Closed(m3ublock.FastLane):
    @property
    def open(self) -> bool:
        return False


@given(_playlists(), st.sampled_from([16, 64, 1 << 20]))
@settings(max_examples=400, deadline=None)
@example(
    '#EXTM3U\n#EXTINF:-1 tvg-id="a",A\nhttp://h1.invalid/1.ts\n'
    '#EXTINF:-1 tvg-id="b",B\nhttp://h1.invalid/2.ts\n#EXTINF:-1 tvg-id="c",C\nhttp://h1.invalid/3.ts',
    1 << 20,
)
@example(
    '#EXTINF:-1 tvg-id="a",A\r\nhttp://h1.invalid/1.ts\r\n#EXTINF:-1 tvg-id="b",B\r\n\r\n'
    'http://h1.invalid/2.ts\r\n#EXTINF:-1 tvg-id="c",\r\nhttp://h1.invalid/3.ts\r\n',
    16,
)
def test_the_fast_lane_reads_a_playlist_as_the_line_walk_does(text: str, block: int) -> None:
    """Every entry (line numbers included), skip and guide URL is the line walk's, from a text
    and from a file read in blocks of any size (pairs cut between two blocks)."""
    _as_the_line_walk(text, block)


def _as_the_line_walk(text: str, block: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("plextuner.ingest.m3uwalk.FastLane", _Closed)
        want = _outcome(parse_m3u, text, "s", "p")
    assert _outcome(parse_m3u, text, "s", "p") == want
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(lines, "BLOCK", block)
        path = Path(tmp) / "list.m3u"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        assert _outcome(parse_m3u_file, path, "s", "p") == want


def _parsed_with_lane(text: str) -> tuple[list[Entry], ParseReport, m3ublock.FastLane]:
    """`parse_m3u` of `text`, and the fast lane it read with."""
    lanes: list[m3ublock.FastLane] = []

    class Kept(m3ublock.FastLane):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            lanes.append(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("plextuner.ingest.m3uwalk.FastLane", Kept)
        entries, report = parse_m3u(text, "s", "p")
    return entries, report, lanes[0]


def test_a_list_spelled_alike_goes_by_the_fast_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    """All but the first entry (which teaches the spelling) are read by the lane; entries after
    a directive between a line and its URL go by the line walk, and the lane takes up again."""
    taken: list[int] = []
    real = m3ublock.FastLane.read

    def counted(self: m3ublock.FastLane, *args: object) -> tuple[int, int]:
        got = real(self, *args)  # type: ignore[arg-type]
        taken.append(self.hits)
        return got

    monkeypatch.setattr(m3ublock.FastLane, "read", counted)
    rows = [
        f'#EXTINF:-1 tvg-id="c{i}" group-title="G",C {i}\nhttp://h.invalid/{i}.ts' for i in range(9)
    ]
    rows[5] = rows[5].replace(
        "\n", "\n#KODIPROP:inputstream.adaptive.stream_headers=User-Agent=UA\n"
    )
    entries, report = parse_m3u("#EXTM3U\n" + "\n".join(rows), "s", "p")
    assert [e.name for e in entries] == [f"C {i}" for i in range(9)]
    assert [e.line for e in entries] == [2, 4, 6, 8, 10, 12, 15, 17, 19]
    assert entries[5].headers == {"User-Agent": "UA"}
    assert taken[-1] == 7  # 1-4 and 6-8: the first taught the spelling, the fifth had a directive
    assert report.entries == 9


def test_entries_with_their_own_extgrp_go_by_the_fast_lane() -> None:
    """`#EXTINF`, `#EXTGRP`, URL (a common spelling of lists without attributes) is read by
    the lane, each entry with its own group, the last in force after it (for the line walk's
    next entry too), numbers kept."""
    rows = [f"#EXTINF:-1,C {i}\n#EXTGRP: G{i // 2} \nhttp://h.invalid/{i}.ts" for i in range(6)]
    rows.append("#EXTINF:-1,Last\n#KODIPROP:k=v\nhttp://h.invalid/9.ts")  # walked
    entries, report, lane = _parsed_with_lane("#EXTM3U\n" + "\n".join(rows) + "\n")
    assert [(e.name, e.group) for e in entries] == [
        ("C 0", "G0"), ("C 1", "G0"), ("C 2", "G1"), ("C 3", "G1"), ("C 4", "G2"), ("C 5", "G2"),
        ("Last", "G2"),
    ]  # fmt: skip
    assert [e.line for e in entries] == [2, 5, 8, 11, 14, 17, 20]
    assert entries[-1].attrs == {"kodiprop:k": "v"}
    assert lane.hits == 5  # all but the first (it taught the spelling) and the last
    assert report.entries == 7


_VLCOPT = st.sampled_from(
    [
        "#EXTVLCOPT:http-user-agent=UA/1",
        "#EXTVLCOPT:http-user-agent=UA/2 ",
        "#EXTVLCOPT:http-referrer=http://r.invalid/",
        "#EXTVLCOPT: http-origin = http://o.invalid ",
        "#EXTVLCOPT:http-user-agent=",
        "#EXTVLCOPT:network-caching=1000",
        "#EXTVLCOPT:=x",
        "#EXTVLCOPT:",
        "#EXTVLCOPT:http-user-agent=a=b",
        "#EXTVLCOPT:http-user-agent=A\x01B\x1c",
        "#EXTVLCOPT:http-user-agent=x\x0by",
        "#EXTVLCOPT:http-cookie=é\u2028ü",
        "#EXTVLCOPT:http-user-agent=nul\x00",
        " #EXTVLCOPT:http-user-agent=lead",
    ]
)


@st.composite
def _vlcopt_playlists(draw: st.DrawFn) -> str:
    """Every entry with `#EXTVLCOPT:` lines (a provider's user agent), an `#EXTGRP:` before or
    after them now and then."""
    out = ["#EXTM3U"]
    for i in range(draw(st.integers(1, 12))):
        out.append(f'#EXTINF:-1 tvg-id="c{i}" user-agent="{draw(_PLAIN_VALUE)}",C {i}')
        options = draw(st.lists(_VLCOPT, max_size=3))
        grp = draw(st.sampled_from([None, "before", "after"]))
        out.extend(([f"#EXTGRP:G{i}"] if grp == "before" else []) + options)
        out.extend([f"#EXTGRP:G{i}"] if grp == "after" else [])
        out.append(draw(st.one_of(_GOOD_URL, _GOOD_URL, _URL)))
    ends = draw(st.sampled_from(["\n", "\r\n"]))
    return ends.join(out) + ends


@given(_vlcopt_playlists(), st.sampled_from([16, 64, 1 << 20]))
@settings(max_examples=300, deadline=None)
def test_vlcopt_lines_read_by_the_lane_as_by_the_line_walk(text: str, block: int) -> None:
    """`#EXTVLCOPT:` lines between an entry's line and its URL, as the lane reads them: the
    entries, their headers and line numbers, the skips are the line walk's."""
    _as_the_line_walk(text, block)


def test_entries_with_vlcopt_lines_go_by_the_fast_lane() -> None:
    """A provider that gives every entry its user agent: every entry but the first by the lane,
    the options merged over the line's own header attributes, later lines winning."""
    rows = [
        f'#EXTINF:-1 tvg-id="c{i}" user-agent="Attr",C {i}\n#EXTGRP:G\n'
        f"#EXTVLCOPT:http-user-agent=UA{i}\n#EXTVLCOPT:http-referrer=http://r.invalid/{i}\n"
        f"#EXTVLCOPT:http-user-agent=Last{i}\nhttp://h.invalid/{i}.ts"
        for i in range(6)
    ]
    entries, report, lane = _parsed_with_lane("#EXTM3U\n" + "\n".join(rows) + "\n")
    assert [e.line for e in entries] == [2 + 6 * i for i in range(6)]
    assert entries[4].headers == {"User-Agent": "Last4", "Referer": "http://r.invalid/4"}
    assert all(e.group == "G" for e in entries)
    assert lane.hits == 5
    assert report.entries == 6


@pytest.mark.parametrize(
    "option",
    ["http-user-agent=nul\x00", "http-user-agent=x\x0by\x1c", " http-referrer = http://r ", "k"],
)
def test_odd_vlcopt_lines_past_the_sniffed_head(option: str) -> None:
    """Past the head the sniffer reads (where a NUL is not a binary file's): a NUL line is
    skipped by the line walk, other odd characters kept as it keeps them."""
    head = "".join(f'#EXTINF:-1 tvg-id="h{i}",H {i}\nhttp://h.invalid/h{i}.ts\n' for i in range(60))
    rows = "".join(
        f'#EXTINF:-1 tvg-id="c{i}",C {i}\n#EXTVLCOPT:{option}\nhttp://h.invalid/{i}.ts\n'
        for i in range(4)
    )
    assert len(head) > 2048
    _as_the_line_walk("#EXTM3U\n" + head + rows, 1 << 20)


def test_more_distinct_vlcopt_runs_than_remembered() -> None:
    """Past OPTIONS_KEPT distinct runs of options, each is still read as the line walk reads
    it (and the memo stays bounded)."""
    count = m3ublock.OPTIONS_KEPT * 2
    rows = "".join(
        f'#EXTINF:-1 tvg-id="c{i}",C {i}\n#EXTVLCOPT:http-user-agent=UA{i}\nhttp://h.invalid/{i}.ts\n'
        for i in range(count)
    )
    _as_the_line_walk("#EXTM3U\n" + rows, 1 << 20)
    entries, _ = parse_m3u("#EXTM3U\n" + rows, "s", "p")
    assert [e.headers["User-Agent"] for e in entries] == [f"UA{i}" for i in range(count)]


def test_blank_lines_between_entries_are_passed_over_by_the_fast_lane() -> None:
    """Entries separated by blank lines (LF or CRLF): every entry but the first by the lane,
    numbered as the line walk numbers them."""
    for end in ("\n", "\r\n"):
        rows = [
            f'#EXTINF:-1 tvg-id="c{i}",C {i}{end}http://h.invalid/{i}.ts{end}' for i in range(6)
        ]
        text = "#EXTM3U" + end + end.join(rows) + end
        entries, _, lane = _parsed_with_lane(text)
        assert [e.line for e in entries] == [2 + 3 * i for i in range(6)]
        assert lane.hits == 5
        assert lane.misses == 0  # one read took them all
        _as_the_line_walk(text, 1 << 20)


def test_a_list_that_leaves_out_empty_attributes_is_read_by_the_lane() -> None:
    """Each entry names only the attributes it has: dozens of spellings (here 2**5 = 32), all
    learned and read by the lane, as the line walk reads them."""
    keys = ["tvg-id", "tvg-name", "tvg-logo", "tvg-chno", "group-title"]
    rows = []
    for i in range(3 * 2 ** len(keys)):
        attrs = " ".join(f'{k}="{k[4:]}{i}"' for b, k in enumerate(keys) if i >> b & 1)
        rows.append(f"#EXTINF:-1 {attrs},C {i}\nhttp://h.invalid/{i}.ts\n")
    text = "#EXTM3U\n" + "".join(rows)
    entries, _, lane = _parsed_with_lane(text)
    assert len(entries) == len(rows)
    assert lane.hits == len(rows) - 2 ** len(keys)  # each spelling's first taught it
    _as_the_line_walk(text, 1 << 20)
