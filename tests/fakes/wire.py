"""A stream server that misbehaves below HTTP: each path is one scripted answer, written byte by
byte on a raw socket (an aiohttp fake cannot cut a body short, reset a connection after the
status line or pause midway). One request per connection, `Connection: close` on every answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable

from tests.fakes.cdn import HEALTHY

TS_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nConnection: close\r\n"
HLS_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.apple.mpegurl\r\nConnection: close\r\n"
)
FOREVER = 3600.0

Script = Callable[[asyncio.StreamWriter], Awaitable[None]]


def _send(data: bytes) -> Script:
    async def script(writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()

    return script


def _then_wait(data: bytes) -> Script:
    async def script(writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        await asyncio.sleep(FOREVER)

    return script


def _paused(first: bytes, pause: float, rest: bytes) -> Script:
    async def script(writer: asyncio.StreamWriter) -> None:
        writer.write(first)
        await writer.drain()
        await asyncio.sleep(pause)
        writer.write(rest)
        await writer.drain()
        await asyncio.sleep(FOREVER)

    return script


def _then_reset(data: bytes) -> Script:
    async def script(writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return script


LONG = b"Content-Length: 10000000\r\n\r\n"
START = HEALTHY[: 188 * 60]  # its tables and first frames: less than any probe reads
SCRIPTS: dict[str, Script] = {
    "healthy": _send(TS_HEAD + b"Content-Length: %d\r\n\r\n" % len(HEALTHY) + HEALTHY),
    # The status line, then the connection ends: with no body (read to the close), a body
    # promised by Content-Length, an unfinished chunked body, a reset.
    "empty": _send(TS_HEAD + b"\r\n"),
    "cut_length": _send(TS_HEAD + LONG),
    "cut_chunked": _send(TS_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"),
    "reset": _then_reset(TS_HEAD + LONG),
    # A good start that ends early: what came is a stream.
    "healthy_then_reset": _then_reset(TS_HEAD + LONG + START),
    # A good start, then a pause no probe should sit through.
    "trickle": _then_wait(TS_HEAD + LONG + START),
    # Its first packet, then a pause (an on-demand restream fetching its source), then a stream.
    "slow_start": _paused(TS_HEAD + LONG + START[:188], 2.5, START[188:]),
    "stall": _then_wait(TS_HEAD + LONG),
    "hang": _then_wait(b""),
    "text": _send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nStream not available"),
    "html": _send(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>Busy</html>"),
    "hls_empty": _send(HLS_HEAD + b"\r\n#EXTM3U\n#EXT-X-TARGETDURATION:6\n"),
    "redirect": _send(b"HTTP/1.1 302 Found\r\nLocation: /healthy\r\nContent-Length: 0\r\n\r\n"),
    # A playlist cut midway: its first whole line is its first URI, a cut line is not one.
    "hls_cut": _then_reset(HLS_HEAD + LONG + b"#EXTM3U\n#EXTINF:6,\n/healthy\n#EXTINF:6,\n/heal"),
    "hls_cut_early": _then_reset(HLS_HEAD + LONG + b"#EXTM3U\n#EXTINF:6,\n/heal"),
}


class WireServer:
    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.requests: dict[str, int] = {}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            request = await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            parts = request.split()
            name = parts[1].decode().strip("/") if len(parts) > 1 else ""
            self.requests[name] = self.requests.get(name, 0) + 1
            script = SCRIPTS.get(
                name, _send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            )
            with contextlib.suppress(ConnectionError):
                await script(writer)
        finally:
            writer.close()
            self._tasks.discard(task)


__all__ = ["SCRIPTS", "WireServer"]
