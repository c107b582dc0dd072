"""Xtream user_info checks and stream URL building."""

from __future__ import annotations

import pytest

from plextuner.config import XtreamConfig
from plextuner.errors import IngestError, ProviderAuthError
from plextuner.ingest.models import ParseReport
from plextuner.ingest.xtream import XtreamAccount, parse_account, streams_to_entries


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
