"""Upstream readers: a direct HTTP TS stream, or ffmpeg remuxing HLS into TS. Both close cleanly."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Protocol

import aiohttp

from plextuner.binaries import header_args
from plextuner.errors import FailureKind, IsHlsError, UpstreamError
from plextuner.httpstatus import is_account_limit
from plextuner.ingest.models import Source, StreamKind, is_hls_type, is_html_reply
from plextuner.subproc import ManagedProcess, managed_process

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
            raise UpstreamError(FailureKind.TIMEOUT, "upstream did not answer in time") from None
        except (aiohttp.ClientError, ValueError) as err:  # ValueError: a URL yarl refuses
            raise UpstreamError(
                FailureKind.CONNECT, f"connection failed ({type(err).__name__})"
            ) from None
        if response.status != 200:
            response.release()
            kind = FailureKind.LIMIT if is_account_limit(response.status) else FailureKind.HTTP
            raise UpstreamError(kind, f"upstream answered HTTP {response.status}", response.status)
        ctype = (response.content_type or "").lower()
        if is_hls_type(ctype):
            response.close()
            raise IsHlsError
        if is_html_reply(ctype):
            response.close()
            raise UpstreamError(FailureKind.NOT_MEDIA, "upstream answered an HTML page")
        return cls(response)

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.content.iter_chunked(READ_SIZE):
            yield chunk

    async def aclose(self) -> None:
        # close(), not release(): the socket must go now, not back to the pool mid-stream.
        self._response.close()


class FfmpegUpstream:
    """ffmpeg `-c copy -f mpegts` on an HLS URL; killed with the session."""

    def __init__(self, child: ManagedProcess, stack: contextlib.AsyncExitStack) -> None:
        self._child = child
        self._stack = stack  # owns the process: closing it stops ffmpeg

    @property
    def stderr_tail(self) -> deque[bytes]:
        return self._child.stderr_tail

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
        stack = contextlib.AsyncExitStack()
        try:
            child = await stack.enter_async_context(managed_process(argv))
        except OSError as err:
            raise UpstreamError(
                FailureKind.FFMPEG_MISSING, f"cannot start ffmpeg: {err.strerror}"
            ) from None
        return cls(child, stack)

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self._child.stdout.read(READ_SIZE)
            if not chunk:
                return
            yield chunk

    async def aclose(self) -> None:
        await self._stack.aclose()


async def open_upstream(
    session: aiohttp.ClientSession, ffmpeg: str, source: Source, connect_timeout: float
) -> Upstream:
    if source.kind is StreamKind.HLS:
        return await FfmpegUpstream.open(ffmpeg, source)
    try:
        return await HttpUpstream.open(session, source, connect_timeout)
    except IsHlsError:
        return await FfmpegUpstream.open(ffmpeg, source)
