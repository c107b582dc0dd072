"""A fake stream CDN on loopback: paced MPEG-TS channels, HLS, and failures on demand.

Counts open upstream connections so tests can assert nothing is left behind.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

_CLIP_LOCK = threading.Lock()


def make_clip(directory: Path, seconds: int = 4) -> Path:
    """A small real H.264/AAC TS made by ffmpeg once per directory."""
    out = directory / "clip.ts"
    with _CLIP_LOCK:
        if out.exists():
            return out
        ffmpeg = shutil.which("ffmpeg")
        assert ffmpeg, "ffmpeg required"
        subprocess.run(
            [
                ffmpeg,
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x180:rate=25",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000",
                "-t",
                str(seconds),
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "25",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-f",
                "mpegts",
                str(out),
            ],
            check=True,
            timeout=120,
        )
        hls = directory / "hls"
        hls.mkdir(exist_ok=True)
        subprocess.run(
            [
                ffmpeg,
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-i",
                str(out),
                "-c",
                "copy",
                "-f",
                "hls",
                "-hls_time",
                "1",
                "-hls_list_size",
                "0",
                "-hls_segment_filename",
                str(hls / "seg%03d.ts"),
                str(hls / "index.m3u8"),
            ],
            check=True,
            timeout=120,
        )
    return out


@dataclass
class CdnState:
    open_connections: int = 0
    peak_connections: int = 0
    requests: int = 0
    max_connections: int = 100  # past it: 403, as Xtream providers answer
    die_after: dict[str, int] = field(default_factory=dict)  # channel -> bytes then drop
    stall_after: dict[str, int] = field(default_factory=dict)  # channel -> bytes then hang
    dead: set[str] = field(default_factory=set)  # channel -> 404
    user_limit: dict[str, int] = field(default_factory=dict)  # per-account limits (403 past)
    # The next this many stream requests are refused as over the account's limit: the provider
    # still counting streams that closed (an HLS session lingers for seconds).
    refuse_next: int = 0
    refused: int = 0
    open_by_user: dict[str, int] = field(default_factory=dict)
    peak_by_user: dict[str, int] = field(default_factory=dict)


class FakeCdn:
    def __init__(self, clip_dir: Path) -> None:
        self.clip = make_clip(clip_dir)
        self.hls_dir = clip_dir / "hls"
        self.body = self.clip.read_bytes()
        self.state = CdnState()
        self.port = 0
        self._runner: web.AppRunner | None = None

    def url(self, channel: str, kind: str = "ts") -> str:
        if kind == "hls":
            return f"http://127.0.0.1:{self.port}/hls/index.m3u8"
        return f"http://127.0.0.1:{self.port}/live/user/pass/{channel}.ts"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/live/{u}/{p}/{channel}.ts", self._stream)
        app.router.add_get("/get.php", self._playlist)
        app.router.add_static("/hls", self.hls_dir)
        return app

    async def _playlist(self, request: web.Request) -> web.Response:
        """A panel's get.php: the same channels, with the asking account's credentials."""
        user, pw = request.query.get("username", ""), request.query.get("password", "")
        lines = ["#EXTM3U"]
        for i in range(4):
            lines += [
                f'#EXTINF:-1 tvg-id="c{i}" group-title="A",Channel {i}',
                f"http://127.0.0.1:{self.port}/live/{user}/{pw}/c{i}.ts",
            ]
        return web.Response(text="\n".join(lines) + "\n", content_type="audio/x-mpegurl")

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        channel, user = request.match_info["channel"], request.match_info["u"]
        st = self.state
        st.requests += 1
        if channel in st.dead:
            return web.Response(status=404)
        if st.open_connections >= st.max_connections or st.refuse_next > 0:
            st.refuse_next = max(0, st.refuse_next - 1)
            st.refused += 1
            return web.Response(status=403, text="max connections reached")
        if st.open_by_user.get(user, 0) >= st.user_limit.get(user, 10**6):
            return web.Response(status=403, text="max connections reached for this account")
        st.open_connections += 1
        st.peak_connections = max(st.peak_connections, st.open_connections)
        st.open_by_user[user] = st.open_by_user.get(user, 0) + 1
        st.peak_by_user[user] = max(st.peak_by_user.get(user, 0), st.open_by_user[user])
        try:
            resp = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
            await resp.prepare(request)
            sent = 0
            rate = float(len(self.body))  # the 4 s clip per second: 4x real time, still paced
            loop = asyncio.get_running_loop()
            started = loop.time()
            while True:
                for off in range(0, len(self.body), 188 * 50):
                    chunk = self.body[off : off + 188 * 50]
                    if channel in st.die_after and sent >= st.die_after[channel]:
                        assert request.transport is not None
                        request.transport.close()
                        return resp
                    if channel in st.stall_after and sent >= st.stall_after[channel]:
                        await asyncio.sleep(3600)
                    try:
                        await resp.write(chunk)
                    except ConnectionResetError:  # the viewer left: a CDN just stops sending
                        return resp
                    sent += len(chunk)
                    ahead = sent / rate - (loop.time() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
        finally:
            st.open_connections -= 1
            st.open_by_user[user] -= 1

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
