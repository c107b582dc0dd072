"""A fake IPTV provider on loopback: M3U playlists, Xtream player_api.php, failures on demand.

Runs its own event loop in a thread so synchronous CLI tests (which call asyncio.run) can use it.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

USER, PASSWORD = "demo-user", "s3cr3t-pa55word"


@dataclass
class FakeChannel:
    stream_id: int
    name: str
    group: str
    tvg_id: str = ""
    logo: str = ""


@dataclass
class ProviderWorld:
    """What the fake serves; tests mutate it between refreshes."""

    channels: list[FakeChannel] = field(default_factory=list)
    mode: str = "ok"  # ok | html | empty | garbage | truncated | huge_line | http500 | bomb | hls
    account_status: str = "Active"
    max_connections: int = 2
    exp_date: int | None = None
    gzip_playlist: bool = False
    requests: list[str] = field(default_factory=list)


def make_world(count: int = 900, groups: int = 6) -> ProviderWorld:
    """~900 channels in six groups with unicode names and duplicates across entries."""
    names = ["Sports", "News", "Movies", "Kids", "Ünïcode Wörld", "Music"]
    chans = []
    for i in range(count):
        group = names[i % groups]
        chans.append(
            FakeChannel(
                stream_id=1000 + i,
                name=f"{group} Channel {i} {'Ü' if i % 7 == 0 else ''}".strip(),
                group=group,
                tvg_id=f"ch{i}.fake" if i % 5 else "",
                logo=f"http://logos.invalid/{i}.png",
            )
        )
    # duplicates: same tvg-id under another entry (a backup source)
    for i in (j for j in range(1, 40, 3) if j % 5):
        chans.append(
            FakeChannel(
                stream_id=9000 + i,
                name=f"{names[i % groups]} Channel {i} HD",
                group=names[i % groups],
                tvg_id=f"ch{i}.fake",
            )
        )
    return ProviderWorld(channels=chans)


def render_m3u(world: ProviderWorld, base: str) -> bytes:
    lines = ['#EXTM3U url-tvg="' + base + '/xmltv.php"']
    for ch in world.channels:
        lines.append(
            f'#EXTINF:-1 tvg-id="{ch.tvg_id}" tvg-name="{ch.name}" tvg-logo="{ch.logo}" '
            f'group-title="{ch.group}",{ch.name}'
        )
        lines.append(f"{base}/live/{USER}/{PASSWORD}/{ch.stream_id}.ts")
    return ("\n".join(lines) + "\n").encode()


def _bad_body(mode: str, good: bytes) -> bytes:
    if mode == "html":
        return b"<!DOCTYPE html><html><body>Service temporarily unavailable</body></html>"
    if mode == "empty":
        return b""
    if mode == "garbage":
        return bytes(range(256)) * 64
    if mode == "truncated":
        return good[: len(good) // 3].rsplit(b"\n", 1)[0].rsplit(b"#EXTINF", 1)[0][:200] + b"#EXTI"
    if mode == "huge_line":
        return b"#EXTM3U\n#EXTINF:-1," + b"A" * (5 * 1024 * 1024) + b"\n"
    if mode == "bomb":
        return gzip.compress(b"\0" * (300 * 1024 * 1024), compresslevel=9)
    if mode == "hls":
        return b"#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:6,\nseg1.ts\n"
    return good


class FakeProvider:
    def __init__(self, world: ProviderWorld | None = None) -> None:
        self.world = world or make_world()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def m3u_url(self) -> str:
        return f"{self.base}/get.php?username={USER}&password={PASSWORD}&type=m3u_plus"

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/get.php", self._playlist)
        app.router.add_get("/player_api.php", self._api)
        app.router.add_get("/xmltv.php", self._xmltv)
        return app

    async def _playlist(self, request: web.Request) -> web.StreamResponse:
        self.world.requests.append("get.php")
        if request.query.get("password") != PASSWORD:
            return web.Response(status=401, text="bad credentials")
        if self.world.mode == "http500":
            return web.Response(status=500, text="oops")
        good = render_m3u(self.world, self.base)
        if self.world.mode == "truncated":
            return await self._truncated(request, good)
        body = _bad_body(self.world.mode, good)
        etag = '"' + hashlib.sha1(body).hexdigest() + '"'  # noqa: S324
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        headers = {"ETag": etag, "Content-Type": "audio/x-mpegurl"}
        if self.world.gzip_playlist and self.world.mode != "bomb":
            body = gzip.compress(body)
        return web.Response(body=body, headers=headers)

    async def _truncated(self, request: web.Request, body: bytes) -> web.StreamResponse:
        """The connection drops a third of the way through a declared-length body."""
        resp = web.StreamResponse(headers={"Content-Type": "audio/x-mpegurl"})
        resp.content_length = len(body)
        await resp.prepare(request)
        await resp.write(body[: len(body) // 3])
        assert request.transport is not None
        request.transport.close()
        return resp

    async def _api(self, request: web.Request) -> web.Response:
        q = request.query
        self.world.requests.append("player_api:" + q.get("action", ""))
        if self.world.mode == "html":
            return web.Response(text="<html>blocked</html>", content_type="text/html")
        if q.get("username") != USER or q.get("password") != PASSWORD:
            return web.json_response({"user_info": {"auth": 0}})
        action = q.get("action")
        if action is None:
            return web.json_response(self._user_info())
        if action == "get_live_categories":
            groups = sorted({c.group for c in self.world.channels})
            return web.json_response(
                [
                    {"category_id": str(i + 1), "category_name": g, "parent_id": 0}
                    for i, g in enumerate(groups)
                ]
            )
        if action == "get_live_streams":
            ids = {
                g: str(i + 1) for i, g in enumerate(sorted({c.group for c in self.world.channels}))
            }
            return web.json_response(
                [
                    {
                        "num": i + 1,
                        "name": c.name,
                        "stream_type": "live",
                        "stream_id": c.stream_id,
                        "stream_icon": c.logo,
                        "epg_channel_id": c.tvg_id or None,
                        "category_id": ids[c.group],
                        "tv_archive": 0,
                    }
                    for i, c in enumerate(self.world.channels)
                ]
            )
        return web.json_response([])

    def _user_info(self) -> dict[str, Any]:
        return {
            "user_info": {
                "username": USER,
                "password": PASSWORD,
                "auth": 1,
                "status": self.world.account_status,
                "exp_date": str(self.world.exp_date) if self.world.exp_date else None,
                "max_connections": str(self.world.max_connections),
                "active_cons": "0",
                "is_trial": "0",
            },
            "server_info": {"url": "127.0.0.1", "port": str(self.port)},
        }

    async def _xmltv(self, request: web.Request) -> web.Response:
        return web.Response(text='<?xml version="1.0"?><tv></tv>', content_type="text/xml")

    # --- lifecycle in a background thread -------------------------------------------------
    def start(self) -> FakeProvider:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake provider did not start")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(self._start())
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._stop())
        loop.close()

    async def _start(self) -> None:
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
