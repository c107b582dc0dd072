"""The console's API and forms against the running daemon: every field's bad input, tokens,
CSRF, pagination and filters on a 900-channel provider; nothing secret in any answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from plextuner.service import Service
from tests.fakes.daemon import daemon_settings, running
from tests.fakes.provider import PASSWORD, USER, FakeProvider, make_world

pytestmark = pytest.mark.integration
TOKEN = "api-t0ken-for-tests"
BUCKETS = [
    {"name": "sports", "match": {"group": "Sports"}},
    {"name": "news", "match": {"group": "News"}},
    {"name": "rest", "match": {"group": "."}},
]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
    fake = FakeProvider(make_world()).start()
    spec = [{"name": "xt", "xtream": {"url": fake.base, "username": USER, "password": PASSWORD}}]
    settings = daemon_settings(tmp_path / "d", spec, BUCKETS, devices=6, admin_token=TOKEN)
    try:
        async with (
            running(settings) as service,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}", timeout=10) as http,
        ):
            yield service, http
    finally:
        fake.stop()


async def first_key(http: httpx.AsyncClient, device: str = "") -> dict[str, str]:
    r = await http.get("/api/v1/channels", params={"device": device} if device else {})
    return r.json()["channels"][0]  # type: ignore[no-any-return]


BAD_BODIES = [
    b"not json",
    b"[1, 2]",
    b'"string"',
    b"null",
    b"{}",
    b'{"key": 5, "name": "x"}',
    b'{"key": "KEY", "name": ""}',
    b'{"key": "KEY", "name": "' + b"x" * 300 + b'"}',
    b'{"key": "KEY", "name": "a\\u0000b"}',
    b'{"key": "KEY", "disabled": "true"}',
    b'{"key": "KEY", "number": "abc"}',
    b'{"key": "KEY", "number": 1000}',
    b'{"key": "KEY", "device": "No Such"}',
    b'{"key": "KEY", "guide_id": ["x"]}',
    b'{"key": "KEY", "colour": "red"}',
    b'{"key": "KEY"}',
    b'{"key": "no-such-channel", "name": "x"}',
    b'{"key": "KEY", "device": "nowhere"}',
    b"\xff\xfe\x00garbage",
]


async def test_bad_input_is_a_clear_400(daemon: tuple[Service, httpx.AsyncClient]) -> None:
    service, http = daemon
    key = (await first_key(http))["key"]
    for body in BAD_BODIES:
        r = await http.post(
            "/api/v1/overrides", content=body.replace(b"KEY", key.encode()), headers=AUTH
        )
        assert r.status_code == 400, (body, r.text)
        assert "error" in r.json()
    huge = b'{"key": "' + b"k" * 200_000 + b'", "name": "x"}'
    r = await http.post("/api/v1/overrides", content=huge, headers=AUTH)
    assert r.status_code == 413
    assert (await http.get("/api/v1/overrides")).json() == {"overrides": []}
    assert service.runtime.state is not None  # the daemon is fine


async def test_conflicts_tokens_and_csrf(daemon: tuple[Service, httpx.AsyncClient]) -> None:
    _, http = daemon
    one, other = await first_key(http, "sports"), await first_key(http, "news")
    taken = {"key": one["key"], "number": other["number"]}
    r = await http.post("/api/v1/overrides", json=taken, headers=AUTH)
    assert r.status_code == 409 and "taken" in r.json()["error"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = await http.post(
            "/api/v1/overrides", json={"key": one["key"], "name": "x"}, headers=headers
        )
        assert r.status_code == 401
    assert (await http.delete("/api/v1/overrides/" + quote(one["key"], safe=""))).status_code == 401
    r = await http.delete("/api/v1/overrides/" + quote(one["key"], safe=""), headers=AUTH)
    assert r.status_code == 404
    # a form post: the login cookie alone is not enough, the CSRF token is needed too
    login = await http.post("/login", data={"token": TOKEN})
    assert login.status_code == 303 and "plextuner_session" in http.cookies
    path = "/console/override/" + quote(one["key"], safe="")
    assert (await http.post(path, data={"name": "x"})).status_code == 403
    assert (await http.post(path, data={"name": "x", "csrf": "forged"})).status_code == 403
    page = (await http.get("/channels/" + quote(one["key"], safe=""))).text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    r = await http.post(path, data={"name": "Renamed by form", "csrf": csrf})
    assert r.status_code == 303 and "saved" in r.headers["location"]
    listed = (await http.get("/api/v1/overrides")).json()["overrides"]
    assert listed[0]["key"] == one["key"] and listed[0]["name"] == "Renamed by form"
    yaml_export = (await http.get("/api/v1/overrides", params={"format": "yaml"})).text
    assert "Renamed by form" in yaml_export and yaml_export.startswith("overrides:")
    r = await http.delete("/api/v1/overrides/" + quote(one["key"], safe=""), headers=AUTH)
    assert r.status_code == 200 and (await http.get("/api/v1/overrides")).json()["overrides"] == []


async def test_actions_refused_without_a_configured_token(tmp_path: Path) -> None:
    fake = FakeProvider(make_world(count=20)).start()
    spec = [{"name": "xt", "xtream": {"url": fake.base, "username": USER, "password": PASSWORD}}]
    settings = daemon_settings(tmp_path / "d", spec, BUCKETS, devices=3)
    try:
        async with (
            running(settings),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}") as http,
        ):
            key = (await first_key(http))["key"]
            r = await http.post("/api/v1/overrides", json={"key": key, "name": "x"}, headers=AUTH)
            assert r.status_code == 403
            assert (await http.post("/login", data={"token": "anything"})).status_code == 403
            assert "read-only" in (await http.get("/channels")).text
    finally:
        fake.stop()


async def test_pages_filters_and_odd_queries(daemon: tuple[Service, httpx.AsyncClient]) -> None:
    _, http = daemon
    all_ = (await http.get("/api/v1/channels")).json()
    assert all_["total"] == 900 and len(all_["channels"]) == 100 and all_["pages"] == 9
    last = (await http.get("/api/v1/channels", params={"page": all_["pages"]})).json()
    assert 0 < len(last["channels"]) <= 100
    news = (await http.get("/api/v1/channels", params={"device": "news"})).json()
    assert news["total"] > 0 and {c["device"] for c in news["channels"]} == {"news"}
    found = (await http.get("/api/v1/channels", params={"q": "news channel 1"})).json()
    assert found["total"] >= 1 and all("News" in c["name"] for c in found["channels"])
    for params in ({"page": "-3"}, {"page": "abc"}, {"page": "9" * 40}, {"state": "bogus"},
                   {"q": "x" * 5000}, {"device": "../../etc"}, {"guide": "missing"},
                   {"q": "<script>alert(1)</script>"}):  # fmt: skip
        r = await http.get("/channels", params=params)
        assert r.status_code == 200, params
        assert "<script>alert(1)</script>" not in r.text
        assert r.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    for path in ("/channels/no-such-key", "/channels/%00", "/api/v1/channels/x%2F..%2Fy"):
        assert (await http.get(path)).status_code == 404
    everything = ""
    detail = "/channels/" + quote(all_["channels"][0]["key"], safe="")
    for path in ("/channels", "/live", "/overrides", "/setup", "/doctor", "/api/v1/live",
                 "/api/v1/channels", detail):  # fmt: skip
        r = await http.get(path)
        assert r.status_code == 200, path
        everything += r.text
    assert PASSWORD not in everything and USER not in everything
    assert TOKEN not in everything
    assert json.dumps(all_).count("logos.invalid") > 0  # third-party logos are shown
