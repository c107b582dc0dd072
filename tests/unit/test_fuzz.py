# ruff: noqa: PT017 - a property may end in our own error; its message is then checked.
"""Property-based fuzzing of every parser that reads what a provider or a client sends.

Each property says the same thing: whatever arrives, the answer is a result or one of our own
errors with a reason, never a foreign exception. Examples are bounded so `make test` stays fast;
`make fuzz` runs many more.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from plextuner.config import XtreamConfig
from plextuner.epg.model import GuideChannel, ParseOutcome, Programme
from plextuner.epg.xmltv import iter_guide, parse_time
from plextuner.errors import EpgError, IngestError, PacketError, PlexTunerError
from plextuner.hdhr.discovery import (
    DISCOVER_REQ,
    Announcement,
    DiscoveryProtocol,
    parse_request,
    tlv,
)
from plextuner.ingest.m3u import parse_m3u, parse_m3u_file
from plextuner.ingest.models import ParseReport
from plextuner.ingest.urls import url_problem
from plextuner.ingest.xtream import (
    XtreamAccount,
    _json,
    _list_reply,
    parse_account,
    streams_to_entries,
)
from plextuner.metrics import REGISTRY

# Bounded for `make test`; `make fuzz` (FUZZ_EXAMPLES=5000) runs the long, nightly-style pass.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# --- M3U ------------------------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
_attr_value = st.one_of(_text, st.sampled_from(['"', "", "UK & IE", "US | News", "x" * 300]))
_host = st.sampled_from(
    [
        "cdn.example",
        "127.0.0.1",
        "[::1]",
        "",
        "cdn.example:80a",
        "cdn.example:99999",
        "a b",
        "h\x01",
    ]
)
_url = st.one_of(
    st.builds(
        lambda scheme, host, path: f"{scheme}://{host}/{path}",
        st.sampled_from(["http", "https", "rtmp", "udp", "ftp", "javascript", "HTTP"]),
        _host,
        _text,
    ),
    _text,
)


def _extinf(attrs: list[tuple[str, str]], name: str, duration: str) -> str:
    body = " ".join(f'{k}="{v}"' for k, v in attrs)
    return f"#EXTINF:{duration} {body},{name}"


_extinf_line = st.builds(
    _extinf,
    st.lists(
        st.tuples(
            st.sampled_from(
                ["tvg-id", "tvg-name", "tvg-logo", "group-title", "tvg-chno", "tvg-shift", "x"]
            ),
            _attr_value,
        ),
        max_size=5,
    ),
    _text,
    st.sampled_from(["-1", "0", "abc", "1e999", "", "-1 tvg-id=unquoted"]),
)
_line = st.one_of(
    _extinf_line,
    _url,
    st.sampled_from(
        [
            "#EXTM3U",
            '#EXTM3U url-tvg="http://g.example/a.xml" tvg-shift="nan"',
            "#EXTVLCOPT:http-user-agent=VLC",
            "#EXTVLCOPT:http-referrer=http://r.example/",
            "#KODIPROP:inputstream.adaptive.stream_headers=User-Agent=x&Referer=y",
            "#EXTGRP:Sports",
            "",
            "\x00\x00",
            "<html><body>blocked</body></html>",
        ]
    ),
    _text,
)
_playlist_text = st.lists(_line, max_size=40).map(lambda lines: "\n".join(["#EXTM3U", *lines]))
_playlist_bytes = st.one_of(
    _playlist_text.map(lambda t: t.encode("utf-8")),
    _playlist_text.map(lambda t: t.encode("utf-16", errors="replace")),
    st.binary(max_size=2000),
    st.tuples(_playlist_text, st.binary(max_size=50)).map(lambda p: p[0].encode() + p[1]),
)


@FAST
@given(data=_playlist_bytes)
def test_m3u_parser_total(data: bytes, tmp_path: Path) -> None:
    """Any bytes: entries with checked URLs, or IngestError; the file and memory parsers agree."""
    try:
        entries, report = parse_m3u(data, "fuzz")
    except IngestError as err:
        assert str(err)
        entries, report = None, None
    for e in entries or ():
        assert url_problem(e.url) is None, e.url
        assert e.name
    path = tmp_path / "p.m3u"
    path.write_bytes(data)
    try:
        from_file, file_report = parse_m3u_file(path, "fuzz")
    except IngestError:
        # Both refusing is agreement; the in-memory decoder alone may read a BOM-less UTF-16 list,
        # which always carries NUL bytes.
        assert entries is None or b"\x00" in data, "file parser refused what memory accepted"
        return
    if entries is not None and report is not None:
        assert [e.url for e in from_file] == [e.url for e in entries]
        assert file_report.skipped_total == report.skipped_total


# --- Xtream JSON ----------------------------------------------------------------------------------

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    _text,
    st.sampled_from(["1", "1e999", "inf", "nan", "-0", " 42 ", "live", "Active", "Banned"]),
)
_KEYS = [
    "user_info",
    "auth",
    "status",
    "exp_date",
    "max_connections",
    "active_cons",
    "is_trial",
    "stream_id",
    "name",
    "stream_type",
    "epg_channel_id",
    "stream_icon",
    "category_id",
    "category_name",
    "num",
    "0",
]
_json_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(_KEYS), inner, max_size=6)
    ),
    max_leaves=30,
)
ACCOUNT = XtreamAccount(
    XtreamConfig(url="http://panel.example:8080", username="u s", password="p/w")
)


@FAST
@given(account=_json_value, categories=_json_value, streams=_json_value)
def test_xtream_reader_total(account: Any, categories: Any, streams: Any) -> None:
    """Wrong types, nulls, missing keys, lists for dicts: a result or our own error."""
    for payload in (account, {"user_info": account}):
        try:
            parse_account(payload, "panel")
        except PlexTunerError as err:
            assert str(err)
    try:
        cats = _list_reply(categories, "panel", "categories")
        items = _list_reply(streams, "panel", "streams")
    except PlexTunerError:
        return
    report = ParseReport("panel")
    entries = streams_to_entries(ACCOUNT, cats, items, "xt", report)
    assert report.entries == len(entries)
    for e in entries:
        assert url_problem(e.url) is None


@FAST
@given(raw=st.one_of(st.binary(max_size=300), _json_value.map(lambda v: json.dumps(v).encode())))
def test_xtream_json_decoding(raw: bytes) -> None:
    """Undecodable, HTML or deeply nested replies are IngestError with a reason."""
    try:
        _json(raw, "panel")
    except IngestError as err:
        assert "player_api.php" in str(err)


_json_text = st.one_of(
    _json_value.map(json.dumps),
    st.sampled_from(["[NaN, 1e999, -Infinity]", '{"a": 1, "a": 2}', '"\\ud800"']),
    st.integers().map(lambda n: f'[{n}, "{n}"]'),
    st.text(max_size=40).map(lambda t: json.dumps([t], ensure_ascii=False)),
)


@FAST
@given(raw=_json_text)
def test_xtream_json_as_json_reads_it(raw: str) -> None:
    """The fast decoder (msgspec) takes what `json` takes and reads it the same: NaN, huge
    numbers, duplicate keys and lone surrogates fall back to `json`."""
    expected = json.loads(raw)
    got = _json(raw.encode("utf-8", "surrogatepass"), "panel")
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)


@pytest.mark.parametrize("yield_gil", [True, False], ids=["serving", "refresh-command"])
def test_xtream_json_big_reply_read_the_same(yield_gil: bool) -> None:
    """A reply over INTERRUPTIBLE_ABOVE (decoded with a hook per object while serving, by
    msgspec in the refresh command) reads as `json` does, NaN and all."""
    from plextuner.ingest.xtream import INTERRUPTIBLE_ABOVE

    rows = [
        {"stream_id": i, "name": f"Ch {i} ü", "nested": {"a": [i, None, 1.5]}} for i in range(20000)
    ]
    raw = json.dumps(rows).encode()
    assert len(raw) > INTERRUPTIBLE_ABOVE
    assert _json(raw, "panel", yield_gil) == rows
    with_nan = json.dumps([*rows, {"x": float("nan")}]).encode()
    assert math.isnan(_json(with_nan, "panel", yield_gil)[-1]["x"])
    try:
        _json(raw[:-1], "panel", yield_gil)
    except IngestError as err:
        assert "invalid JSON" in str(err)
    else:
        raise AssertionError("a truncated reply decoded")


@pytest.mark.parametrize("depth", [100_000, 600_000], ids=["small", "over-interruptible"])
@pytest.mark.parametrize("yield_gil", [True, False], ids=["serving", "refresh-command"])
def test_xtream_json_nested_too_deep(depth: int, yield_gil: bool) -> None:
    """A deeply nested array is refused, not a RecursionError, however it is decoded."""
    try:
        _json(b"[" * depth + b"]" * depth, "panel", yield_gil)
    except IngestError as err:
        assert "nested" in str(err) or "invalid" in str(err)


# --- XMLTV ----------------------------------------------------------------------------------------

_time = st.one_of(
    st.sampled_from(
        [
            "20260101000000 +0000",
            "99991231235959 -1400",
            "00010101000000 +1400",
            "20261301000000",
            "2026",
            "20260230120000 EST",
            "",
            "x",
        ]
    ),
    st.from_regex(r"\A[0-9]{4,14}( [+-][0-9]{4}| [A-Z]{3})?\Z"),
)
_xml_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=20).map(
    lambda t: t.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
)


def _guide(channels: list[tuple[str, str]], programmes: list[tuple[str, str, str, str]]) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>', "<tv>"]
    out += [f'<channel id="{c}"><display-name>{n}</display-name></channel>' for c, n in channels]
    out += [
        f'<programme start="{a}" stop="{b}" channel="{c}"><title>{t}</title></programme>'
        for a, b, c, t in programmes
    ]
    out.append("</tv>")
    return "\n".join(out).encode()


_guide_bytes = st.one_of(
    st.builds(
        _guide,
        st.lists(st.tuples(_xml_text, _xml_text), max_size=5),
        st.lists(st.tuples(_time, _time, _xml_text, _xml_text), max_size=10),
    ),
    st.builds(
        lambda g, cut: g[:cut],
        st.just(_guide([("a", "A")], [("2026", "", "a", "t")])),
        st.integers(0, 200),
    ),
    st.binary(max_size=500),
    st.sampled_from(
        [
            b'<?xml version="1.0"?><!DOCTYPE tv [<!ENTITY a "aaaa">]><tv>&a;</tv>',
            b'<!DOCTYPE tv SYSTEM "http://evil.example/x.dtd"><tv/>',
            b"<tv>" + b"<x>" * 5000 + b"</tv>",
        ]
    ),
)


@FAST
@given(data=_guide_bytes)
def test_xmltv_reader_total(data: bytes) -> None:
    """Any bytes: channels and well-formed programmes, or EpgError with a reason."""
    outcome = ParseOutcome(source="guide")
    try:
        items = list(iter_guide(io.BytesIO(data), "guide", outcome))
    except EpgError as err:
        assert str(err).startswith("guide:")
        return
    for item in items:
        assert isinstance(item, GuideChannel | Programme)
        if isinstance(item, Programme):
            assert item.channel and isinstance(item.start, float)


@FAST
@given(text=st.one_of(_time, st.text(max_size=30)))
def test_xmltv_time_total(text: str) -> None:
    """parse_time gives epoch seconds or None, at the calendar's edges too."""
    value = parse_time(text)
    assert value is None or isinstance(value, float)


# --- UDP discovery --------------------------------------------------------------------------------


def _framed(packet_type: int, payload: bytes) -> bytes:
    head = struct.pack(">HH", packet_type, len(payload)) + payload
    return head + struct.pack("<I", zlib.crc32(head))


_tlvs = st.lists(
    st.tuples(st.integers(0, 255), st.binary(max_size=300)).map(lambda t: tlv(*t)), max_size=6
).map(b"".join)
_packets = st.one_of(
    st.binary(max_size=1600),
    st.builds(_framed, st.sampled_from([DISCOVER_REQ, 0, 3, 0xFFFF]), _tlvs),
    st.builds(_framed, st.just(DISCOVER_REQ), st.binary(max_size=1400)),
    st.builds(lambda p, cut: _framed(DISCOVER_REQ, p)[:cut], _tlvs, st.integers(0, 40)),
)


class _Transport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append((data, addr))

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 65001) if name == "sockname" else None


def _announce(local: str) -> list[Announcement]:
    return [
        Announcement(
            device_id=0x1234ABCD,
            tuner_count=2,
            base_url=f"http://{local}:5004",
            lineup_url=f"http://{local}:5004/lineup.json",
            device_auth="auth",
        )
    ]


@FAST
@given(packet=_packets)
# A well-formed search for another device type (found by this test): neither answered nor, until
# it was fixed, counted as dropped.
@example(packet=b"\x00\x02\x00\x06\x01\x04\x00\x00\x00\x00\xaf\x00p\x90")
def test_discovery_packets_total(packet: bytes) -> None:
    """Any datagram: a reply, or dropped; parse errors are PacketError and nothing crashes."""
    with contextlib.suppress(PacketError):
        parse_request(packet)
    proto = DiscoveryProtocol(_announce)
    transport = _Transport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    proto.datagram_received(packet, ("127.0.0.1", 40000))
    assert proto.answered + proto.dropped >= (1 if not transport.sent else 0)
    crashes = REGISTRY.get_sample_value("plextuner_refresh_crashes_total", {"task": "discovery"})
    assert not crashes


@FAST
@given(url=_url)
def test_url_check_cache_agrees_with_the_full_check(url: str) -> None:
    """The per-authority cache gives the same verdict as checking the whole URL."""
    from plextuner.ingest import urls

    assert url_problem(url) == (
        urls._problem(url)
        if len(url) <= urls.MAX_URL and not urls._BAD_CHARS.search(url)
        else url_problem(url)
    )
