"""Upstream readers: a direct HTTP TS stream, or ffmpeg remuxing HLS into TS. Both close cleanly."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Protocol

import aiohttp

from plextuner.binaries import header_args
from plextuner.errors import IsHlsError, UpstreamError
from plextuner.ingest.models import Source, StreamKind

HLS_TYPES = (
    "application/vnd.apple.mpegurl",
    "application/x-mpegurl",
    "audio/mpegurl",
    "audio/x-mpegurl",
)
DEAD_TYPES = ("text/html",)
READ_SIZE = 64 * 1024


class Upstream(Protocol):
    def chunks(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class HttpUpstream:
    """A plain HTTP(S) MPEG-TS stream through the shared session."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @classmethod
    async def open(
        cls, session: aiohttp.ClientSession, source: Source, connect_timeout: float
    ) -> HttpUpstream:
        try:
            async with asyncio.timeout(connect_timeout):
                response = await session.get(source.url, headers=dict(source.headers))
        except TimeoutError:
            raise UpstreamError("timeout", "upstream did not answer in time") from None
        except (aiohttp.ClientError, ValueError) as err:  # ValueError: a URL yarl refuses
            raise UpstreamError("connect", f"connection failed ({type(err).__name__})") from None
        if response.status != 200:
            response.release()
            kind = "limit" if response.status in (403, 429, 458, 509) else f"http_{response.status}"
            raise UpstreamError(kind, f"upstream answered HTTP {response.status}")
        ctype = (response.content_type or "").lower()
        if ctype in HLS_TYPES:
            response.close()
            raise IsHlsError
        if ctype in DEAD_TYPES:
            response.close()
            raise UpstreamError("not_media", "upstream answered an HTML page")
        return cls(response)

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.content.iter_chunked(READ_SIZE):
            yield chunk

    async def aclose(self) -> None:
        # close(), not release(): the socket must go now, not back to the pool mid-stream.
        self._response.close()


class FfmpegUpstream:
    """ffmpeg `-c copy -f mpegts` on an HLS URL; killed with the session."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self.stderr_tail: deque[bytes] = deque(maxlen=20)
        self._drain = asyncio.create_task(self._drain_stderr())

    @classmethod
    async def open(cls, ffmpeg: str, source: Source) -> FfmpegUpstream:
        argv = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error"]
        argv += header_args(source.headers)
        argv += [
            "-rw_timeout",
            "10000000",
            "-i",
            source.url,
            "-map",
            "0",
            "-c",
            "copy",
            "-f",
            "mpegts",
            "pipe:1",
        ]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as err:
            raise UpstreamError("ffmpeg_missing", f"cannot start ffmpeg: {err.strerror}") from None
        return cls(proc)

    async def _drain_stderr(self) -> None:
        assert self._proc.stderr is not None
        with contextlib.suppress(Exception):
            async for line in self._proc.stderr:
                self.stderr_tail.append(line[:300])

    async def chunks(self) -> AsyncIterator[bytes]:
        assert self._proc.stdout is not None
        while True:
            chunk = await self._proc.stdout.read(READ_SIZE)
            if not chunk:
                return
            yield chunk

    async def aclose(self) -> None:
        proc = self._proc
        try:
            if proc.returncode is None:
                proc.terminate()
                try:
                    async with asyncio.timeout(1.0):
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        except ProcessLookupError:
            pass
        finally:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._drain
            # The stdout pipe may still hold unread bytes; close the transport now rather than
            # leaving it to the garbage collector (possibly after the loop is gone).
            transport = getattr(proc, "_transport", None)
            if transport is not None:
                transport.close()


async def open_upstream(
    session: aiohttp.ClientSession, ffmpeg: str, source: Source, connect_timeout: float
) -> Upstream:
    if source.kind is StreamKind.HLS:
        return await FfmpegUpstream.open(ffmpeg, source)
    try:
        return await HttpUpstream.open(session, source, connect_timeout)
    except IsHlsError:
        return await FfmpegUpstream.open(ffmpeg, source)
