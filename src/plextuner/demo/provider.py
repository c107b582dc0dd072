"""The built-in demo provider: an M3U, paced looping TS streams and a matching XMLTV guide."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web

from plextuner.demo.clips import CLIP_SECONDS

CHANNELS = [
    ("demo.news1", "Demo News One", "News"),
    ("demo.news2", "Demo News Two", "News"),
    ("demo.news3", "Demo Weather", "News"),
    ("demo.sport1", "Demo Sports One", "Sports"),
    ("demo.sport2", "Demo Sports Two", "Sports"),
    ("demo.sport3", "Demo Racing", "Sports"),
]
CHUNK = 188 * 64


def playlist(base: str) -> str:
    lines = [f'#EXTM3U url-tvg="{base}/guide.xml"']
    for i, (tvg, name, group) in enumerate(CHANNELS):
        lines.append(f'#EXTINF:-1 tvg-id="{tvg}" tvg-name="{name}" group-title="{group}",{name}')
        lines.append(f"{base}/stream/{i}.ts")
    return "\n".join(lines) + "\n"


def guide(now: datetime | None = None) -> str:
    now = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    fmt = "%Y%m%d%H%M%S +0000"
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', '<tv generator-info-name="plextuner-demo">']
    for tvg, name, _ in CHANNELS:
        parts.append(
            f"<channel id={quoteattr(tvg)}><display-name>{escape(name)}</display-name></channel>"
        )
    for tvg, name, group in CHANNELS:
        for hour in range(-2, 48):
            start = now + timedelta(hours=hour)
            stop = start + timedelta(hours=1)
            parts.append(
                f'<programme start="{start.strftime(fmt)}" stop="{stop.strftime(fmt)}" '
                f"channel={quoteattr(tvg)}><title>{escape(name)} at {start:%H}:00</title>"
                f"<desc>A demo {escape(group.lower())} programme.</desc>"
                f"<category>{escape(group)}</category></programme>"
            )
    parts.append("</tv>")
    return "\n".join(parts) + "\n"


class DemoProvider:
    def __init__(self, clips: dict[str, Path]) -> None:
        self._clips = clips
        self._bodies: dict[int, bytes] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/playlist.m3u", self._playlist)
        app.router.add_get("/guide.xml", self._guide)
        app.router.add_get("/stream/{index:[0-9]+}.ts", self._stream)
        return app

    async def _playlist(self, request: web.Request) -> web.Response:
        base = f"http://{request.host}"
        return web.Response(text=playlist(base), content_type="audio/x-mpegurl")

    async def _guide(self, _: web.Request) -> web.Response:
        return web.Response(text=guide(), content_type="application/xml")

    def _body(self, index: int) -> bytes:
        if index not in self._bodies:
            name = CHANNELS[index][1]
            self._bodies[index] = self._clips[name].read_bytes()
        return self._bodies[index]

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        index = int(request.match_info["index"])
        if index >= len(CHANNELS):
            raise web.HTTPNotFound
        body = self._body(index)
        rate = max(len(body) / CLIP_SECONDS, 50_000.0)  # bytes per second, as if live
        resp = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
        await resp.prepare(request)
        started, sent = time.monotonic(), 0
        burst = int(rate)  # one second ahead, so a tuner starts fast
        while True:
            for offset in range(0, len(body), CHUNK):
                chunk = body[offset : offset + CHUNK]
                await resp.write(chunk)
                sent += len(chunk)
                ahead = (sent - burst) / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
