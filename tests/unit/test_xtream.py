"""Xtream user_info checks and stream URL building."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plextuner.config import XtreamConfig
from plextuner.errors import IngestError, ProviderAuthError
from plextuner.ingest.models import Entry, ParseReport, clean_text
from plextuner.ingest.urls import url_problem
from plextuner.ingest.xtream import XtreamAccount, _int, parse_account, streams_to_entries


class TestAccount:
    def test_loose_types(self) -> None:
        """Numbers arrive as strings; they are normalised."""
        info = parse_account(
            {
                "user_info": {
                    "auth": "1",
                    "status": "Active",
                    "exp_date": None,
                    "max_connections": "2",
                    "active_cons": "1",
                }
            },
            "x",
        )
        assert (info.max_connections, info.active_connections, info.exp_date) == (2, 1, None)

    @pytest.mark.parametrize(
        ("payload", "match"),
        [
            ({"user_info": {"auth": 0}}, "authentication failed"),
            ({"user_info": {"auth": 1, "status": "Banned"}}, "Banned"),
            ({"user_info": {"auth": 1, "status": "Active", "exp_date": "1000"}}, "expired"),
        ],
    )
    def test_bad_accounts(self, payload: dict, match: str) -> None:
        """Wrong, disabled and expired accounts are clear errors."""
        with pytest.raises(ProviderAuthError, match=match):
            parse_account(payload, "x")

    def test_not_an_object(self) -> None:
        """A reply without user_info is an error."""
        with pytest.raises(IngestError, match="user_info"):
            parse_account([], "x")


def test_stream_urls_and_entries() -> None:
    """Stream URLs take the provider form, credentials percent-encoded; categories are groups."""
    cfg = XtreamConfig(url="http://xt.invalid:8080/", username="a b", password="p/w", output="m3u8")
    acct = XtreamAccount(cfg)
    assert acct.stream_url(5) == "http://xt.invalid:8080/live/a%20b/p%2Fw/5.m3u8"
    report = ParseReport(source="x")
    entries = streams_to_entries(
        acct,
        [{"category_id": "3", "category_name": "Sports"}],
        [
            {"stream_id": "5", "name": "S1", "category_id": 3, "epg_channel_id": "s1.tv"},
            {"stream_id": None, "name": "bad"},
            {"stream_id": 6, "name": "VOD", "stream_type": "movie"},
        ],
        "xt",
        report,
    )
    assert [(e.name, e.group, e.tvg_id) for e in entries] == [("S1", "Sports", "s1.tv")]
    assert report.skipped_total == 2


def test_hostile_json_bodies() -> None:
    """Deeply nested, truncated or HTML replies are clear errors, not tracebacks."""
    from plextuner.ingest.xtream import _json

    for body, match in (
        (b"[" * 200_000, "nested"),
        (b'{"user_info": {', "invalid JSON"),
        (b"<html>blocked</html>", "HTML"),
    ):
        with pytest.raises(IngestError, match=match):
            _json(body, "panel")


def _reference(
    account: XtreamAccount,
    categories: list[dict[str, Any]],
    streams: list[dict[str, Any]],
    provider: str,
    report: ParseReport,
) -> list[Entry]:
    """streams_to_entries as it was before it was made faster (keywords, str() everywhere)."""
    names = {
        str(c.get("category_id")): clean_text(str(c.get("category_name") or "")) for c in categories
    }
    entries = []
    prefix, suffix = account.stream_prefix(), f".{account.output}"
    problem = url_problem(f"{prefix}0{suffix}")
    for item in streams:
        stream_id = _int(item.get("stream_id"))
        name = clean_text(str(item.get("name") or "")).strip()
        if stream_id is None or not name:
            report.skip("stream without id or name")
            continue
        if str(item.get("stream_type") or "live") not in ("live", "created_live", "radio_streams"):
            report.skip("not a live stream")
            continue
        if problem is not None:
            report.skip(problem)
            continue
        entries.append(
            Entry(
                name=name,
                url=f"{prefix}{stream_id}{suffix}",
                provider=provider,
                tvg_id=clean_text(str(item.get("epg_channel_id") or "")).strip(),
                logo=clean_text(str(item.get("stream_icon") or "")),
                group=names.get(str(item.get("category_id")), ""),
                chno=str(item.get("num") or ""),
                attrs={"stream_id": str(stream_id)},
            )
        )
    report.entries = len(entries)
    return entries


_FIELD = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False, width=32),
    st.text(alphabet="ab 1\x01\x85é", max_size=5), st.sampled_from(["live", "movie", "1", ""]),
    st.lists(st.integers(0, 2), max_size=2),
    st.dictionaries(st.just("k"), st.integers(), max_size=1),
)  # fmt: skip
_KEYS = ["stream_id", "name", "stream_type", "epg_channel_id", "stream_icon", "category_id", "num"]


@given(
    st.lists(st.dictionaries(st.sampled_from(_KEYS), _FIELD), max_size=8),
    st.lists(
        st.dictionaries(st.sampled_from(["category_id", "category_name"]), _FIELD), max_size=3
    ),
)
@settings(max_examples=400, deadline=None)
def test_streams_read_as_the_reference_reading_does(
    streams: list[dict[str, Any]], categories: list[dict[str, Any]]
) -> None:
    account = XtreamAccount(
        XtreamConfig(url="http://panel.invalid:8080", username="u", password="p")
    )
    fast, slow = ParseReport("a"), ParseReport("a")
    want = _reference(account, categories, streams, "xt", slow)
    assert streams_to_entries(account, categories, streams, "xt", fast) == want
    assert fast == slow
