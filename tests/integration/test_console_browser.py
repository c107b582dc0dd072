"""The console in a real browser (headless Chromium via playwright, the system's browser):
a person's tasks from the browser alone, against `plextuner serve` on a fake CDN.

Screenshots of each page are kept under $TEST_ARTIFACTS (default .artifacts/) /console/.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import free_port, require_tool
from tests.fakes.daemon import serve_process
from tests.fakes.streams import FakeCdn
from tests.waiting import until

pytestmark = pytest.mark.integration
TOKEN = "console-admin-t0ken"
STREAM_PASSWORD = "pw-SECRET-9931"
ARTIFACTS = Path(
    os.environ.get("TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / ".artifacts")
)
CHANNELS = [  # name, group, cdn channel
    ("Alpha News", "News", "c0"),
    ("Beta News", "News", "c1"),
    ("Gamma Sports", "Sports", "c2"),
    ("Delta Sports", "Sports", "c3"),
    ("Zeta Sports", "Sports", "c4"),
    ("Dead Channel", "Sports", "gone"),
]


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y%m%d%H%M%S +0000")


def write_inputs(tmp: Path, cdn_port: int) -> tuple[Path, int]:
    playlist = ["#EXTM3U"]
    for name, group, ch in CHANNELS:
        playlist += [
            f'#EXTINF:-1 group-title="{group}" tvg-logo="https://logos.example.org/{ch}.png",{name}',
            f"http://127.0.0.1:{cdn_port}/live/alice/{STREAM_PASSWORD}/{ch}.ts",
        ]
    (tmp / "playlist.m3u").write_text("\n".join(playlist) + "\n", encoding="utf-8")
    start = datetime.now(UTC).timestamp() // 3600 * 3600
    guide = ['<?xml version="1.0" encoding="UTF-8"?>', "<tv>"]
    for gid, name in (("alpha.news", "Alpha News"), ("gamma.tv", "Gamma Sports"),
                      ("zeta.tv", "Zeta Premium")):  # fmt: skip
        guide.append(f'<channel id="{gid}"><display-name>{name}</display-name></channel>')
    for gid, title in (("alpha.news", "Alpha Show"), ("gamma.tv", "Gamma Show"),
                       ("zeta.tv", "Zeta Show")):  # fmt: skip
        for k in range(6):
            a, b = _stamp(start + k * 3600), _stamp(start + (k + 1) * 3600)
            body = f"<title>{title}</title>"
            guide.append(f'<programme start="{a}" stop="{b}" channel="{gid}">{body}</programme>')
    guide.append("</tv>")
    (tmp / "guide.xml").write_text("\n".join(guide), encoding="utf-8")
    port = free_port()
    (tmp / "config.yaml").write_text(
        f"data_dir: {tmp / 'data'}\n"
        f"host: 127.0.0.1\nport: {port}\ndiscovery_port: 0\n"
        f"admin_token: {TOKEN}\n"
        "refresh_interval: 1d\n"
        "postvalidate: {engine: native, timeout: 5, retries: 0, min_interval: 0, jitter: 0,"
        " max_drop_ratio: 0.5}\n"
        f"providers:\n  - {{name: p, m3u_url: '{tmp / 'playlist.m3u'}', max_connections: 4}}\n"
        f"epg: {{sources: ['{tmp / 'guide.xml'}']}}\n"
        "buckets:\n"
        "  - {name: news, match: {group: '^News$'}, tuners: 2}\n"
        "  - {name: sports, match: {group: '^Sports$'}, tuners: 2}\n",
        encoding="utf-8",
    )
    return tmp / "config.yaml", port


@contextlib.contextmanager
def daemon(config: Path, port: int) -> Any:
    proc = serve_process(config, port)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


async def api(base: str, path: str) -> Any:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(base + path)
        r.raise_for_status()
        return r.json()


async def channel(base: str, name: str) -> dict[str, Any]:
    data = await api(base, "/api/v1/channels?q=" + quote(name))
    return next(c for c in data["channels"] if c["name"] == name)


async def numbers(base: str) -> dict[str, tuple[str, str]]:
    data = await api(base, "/api/v1/channels")
    return {c["name"]: (c["device"], c["number"]) for c in data["channels"] if c["served"]}


@contextlib.asynccontextmanager
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    chromium = require_tool("chromium")
    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-quic"]
        )
        try:
            yield b
        finally:
            await b.close()


async def shot(page: Any, name: str) -> None:
    (ARTIFACTS / "console").mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "console" / f"{name}.png"), full_page=True)


async def find_a_channel(page: Any, base: str, pages: list[str]) -> None:
    await page.goto(base + "/channels")
    await page.get_by_label("Search").fill("gamma")
    await page.get_by_role("button", name="Filter").click()
    await page.get_by_role("link", name="Gamma Sports").wait_for()
    assert await page.get_by_role("link", name="Alpha News").count() == 0
    pages.append(await page.content())
    await shot(page, "channels")


async def see_why_dead(page: Any, base: str, pages: list[str]) -> None:
    await page.goto(base + "/channels?state=dead")
    await page.get_by_role("link", name="Dead Channel").click()
    await page.get_by_text("HTTP 404").first.wait_for()
    pages.append(await page.content())
    await shot(page, "dead-channel")


async def refused_without_token(page: Any, base: str) -> None:
    zeta = await channel(base, "Zeta Sports")
    refused = await page.request.post(
        base + "/api/v1/overrides", data={"key": zeta["key"], "guide_id": "zeta.tv"}
    )
    assert refused.status == 401
    form = await page.request.post(
        base + "/console/override/" + quote(zeta["key"], safe=""), form={"guide_id": "zeta.tv"}
    )
    assert form.status in (401, 403)
    assert zeta["guide_id"] is None and not zeta["has_guide"]


async def log_in(page: Any, base: str) -> None:
    await page.goto(base + "/login")
    await page.get_by_label("Admin token").fill(TOKEN)
    await page.get_by_role("button", name="Log in").click()
    await page.get_by_role("button", name="Log out").wait_for()


async def fix_guide_mapping(page: Any, base: str) -> None:
    zeta = await channel(base, "Zeta Sports")
    await page.goto(base + "/channels/" + quote(zeta["key"], safe=""))
    await page.get_by_label("Guide channel id").fill("zeta.tv")
    await page.get_by_role("button", name="Save override").click()
    await page.get_by_text("saved").first.wait_for()

    async def guided() -> bool:
        c = await channel(base, "Zeta Sports")
        return bool(c["guide_id"] == "zeta.tv" and c["has_guide"])

    await until(guided, "the guide mapping to apply", 60)
    async with httpx.AsyncClient() as client:
        guide = (await client.get(base + "/devices/sports/guide.xml")).text
    assert "Zeta Show" in guide


async def move_to_another_device(page: Any, base: str, pages: list[str]) -> None:
    before = await numbers(base)
    delta = await channel(base, "Delta Sports")
    await page.goto(base + "/channels/" + quote(delta["key"], safe=""))
    await page.get_by_label("Device").select_option("news")
    await page.get_by_role("button", name="Save override").click()
    await page.get_by_text("saved").first.wait_for()

    async def moved() -> bool:
        return (await numbers(base)).get("Delta Sports", ("", ""))[0] == "news"

    await until(moved, "the move to apply", 60)
    after = await numbers(base)
    assert after.pop("Delta Sports") == ("news", before.pop("Delta Sports")[1])
    assert after == before  # every other channel keeps its device and number
    # an override applies without probing again: what the probes found is carried
    dead, alpha = await channel(base, "Dead Channel"), await channel(base, "Alpha News")
    assert dead["state"] == "dead" and not dead["served"] and "404" in dead["state_reason"]
    assert alpha["state"] == "ok"
    async with httpx.AsyncClient() as client:
        news = (await client.get(base + "/devices/news/lineup.json")).json()
    assert delta["number"] in {c["GuideNumber"] for c in news}
    await page.goto(base + "/overrides")
    assert await page.get_by_role("button", name="Undo").count() == 2
    pages.append(await page.content())
    await shot(page, "overrides")


async def live_view_follows_a_player(page: Any, base: str, pages: list[str], cdn: FakeCdn) -> None:
    await page.goto(base + "/live")
    await page.get_by_text("Nobody is watching.").wait_for()
    alpha = await channel(base, "Alpha News")
    got = 0

    async def play() -> None:
        nonlocal got
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream("GET", f"{base}/auto/v{alpha['number']}") as r,
        ):
            async for chunk in r.aiter_bytes():
                got += len(chunk)

    player = asyncio.create_task(play())
    try:  # no reload: the page's own polling brings the session in
        await page.locator("#sessions").get_by_text("Alpha News").wait_for(timeout=20000)
        assert got > 0
        pages.append(await page.content())
        await shot(page, "live")
        cdn.state.die_after["c0"] = 0  # the CDN drops the stream: a failover shows up
        await page.locator("#recent").get_by_text("Alpha News").first.wait_for(timeout=20000)
        pages.append(await page.content())
    finally:
        player.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await player


async def test_console_tasks_in_a_browser(tmp_path: Path) -> None:
    """Find a channel, see why one is dead, fix a guide mapping, move a channel to another
    device (every other number and device unchanged); refused without the token; the overrides
    survive a restart and a refresh; the live view shows a stream as it plays; no secret or
    provider URL on any page."""
    cdn = FakeCdn(tmp_path)
    cdn.state.dead.add("gone")
    await cdn.start()
    config, port = write_inputs(tmp_path, cdn.port)
    base = f"http://127.0.0.1:{port}"
    pages: list[str] = []
    try:
        with daemon(config, port):

            async def probed() -> bool:
                return bool((await api(base, "/api/v1/channels?state=dead"))["total"] >= 1)

            await until(probed, "the dead channel to be probed", 60)
            async with browser() as b:
                page = await b.new_page(viewport={"width": 390, "height": 844})  # a phone
                await find_a_channel(page, base, pages)
                await see_why_dead(page, base, pages)
                await refused_without_token(page, base)
                await log_in(page, base)
                await fix_guide_mapping(page, base)
                await move_to_another_device(page, base, pages)
                await live_view_follows_a_player(page, base, pages, cdn)
                for path in ("/setup?group=News", "/doctor", "/api/v1/channels", "/api/v1/live"):
                    await page.goto(base + path)
                    pages.append(await page.content())
                await shot(page, "setup-last")
        with daemon(config, port):  # a restart, then a refresh
            assert (await numbers(base))["Delta Sports"][0] == "news"
            async with httpx.AsyncClient() as client:
                r = await client.post(
                    base + "/api/v1/refresh", headers={"Authorization": f"Bearer {TOKEN}"}
                )
                assert r.status_code in (202, 409)
            assert (await numbers(base))["Delta Sports"][0] == "news"
            assert (await channel(base, "Zeta Sports"))["guide_id"] == "zeta.tv"
    finally:
        await cdn.stop()
    for html in pages:
        assert STREAM_PASSWORD not in html and TOKEN not in html
        assert "/live/alice/" not in html  # no provider URL
