"""Downloading playlists and guides: timeouts, bounded retries, revalidation, size caps.

Every byte from a provider goes through one `_Decoder` in bounded steps: Content-Encoding undone
by us (httpx's own decoder inflates a whole network chunk at once, so a bomb would cost its full
size), a gzip file undone after it, and the total capped. Big bodies go to a file on disk
(`fetch_file`) and are parsed from there a line at a time; small ones (API replies) to memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from plextuner.errors import FetchError, FetchTimeoutError, InflateError, StateError
from plextuner.httpstatus import retry_may_help
from plextuner.inflate import GZIP_MAGIC, XZ_MAGIC, BoundedInflater, BoundedXz
from plextuner.ingest.bodycache import (
    CHUNK,
    FileSinkProxy,
    close_synced,
    commit,
    open_part,
    read_capped_file,
    read_meta,
    store_cache,
)
from plextuner.ingest.client import load_pending
from plextuner.logging import get_logger
from plextuner.redact import redact_url

if TYPE_CHECKING:  # imported where a download starts: a local refresh never loads it (50 ms)
    import httpx

log = get_logger(__name__)
# What we can undo in bounded steps; asking for nothing else keeps br/zstd bombs out.
ACCEPT_ENCODING = "gzip, deflate"
_CONTENT_CODINGS = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}


@dataclass(frozen=True, slots=True)
class FetchOptions:
    timeout: float = 30.0
    retries: int = 2
    max_bytes: int = 256 * 1024**2
    user_agent: str = "plextuner/0.1"
    cache_dir: Path | None = None
    backoff: float = 0.5  # first retry delay; doubles per attempt, capped at 8 s, jittered
    total_timeout: float | None = None  # whole download; default 4 x timeout
    # Big replies decoded in steps that let a serving daemon's event loop run (xtream.py), and
    # downloads' chunks decoded and written in a thread; False in the one-shot refresh command,
    # which serves nobody (a 9.5 MB playlist's 37 thread hops cost ~10 ms of a 50k refresh)
    yield_gil: bool = True


def is_url(location: str) -> bool:
    return location.lower().startswith(("http://", "https://"))


class _Sink(Protocol):
    def write(self, piece: bytes, /) -> object: ...


class _Decoder:
    """Raw bytes in; decoded bytes out to a sink, within the cap, in bounded steps."""

    def __init__(self, sink: _Sink, cap: int, label: str, content_encoding: str = "") -> None:
        self.sink, self.cap, self.label = sink, cap, label
        self.raw = 0
        self.size = 0
        coding = content_encoding.strip().lower()
        if coding in ("", "identity"):
            self._transfer: BoundedInflater | None = None
        elif coding in _CONTENT_CODINGS:
            self._transfer = BoundedInflater(cap, kind=_CONTENT_CODINGS[coding])
        else:
            raise FetchError(label, f"unsupported Content-Encoding {coding[:32]!r}")
        self._file: BoundedInflater | BoundedXz | None = None
        self._sniffed = False

    def push(self, raw: bytes) -> None:
        self.raw += len(raw)
        if self.raw > self.cap:
            raise FetchError(self.label, f"body exceeds the cap of {self.cap} bytes")
        try:
            for piece in self._transfer.feed(raw) if self._transfer else (raw,):
                self._emit(piece)
        except InflateError as err:
            raise FetchError(self.label, str(err)) from None

    def _emit(self, piece: bytes) -> None:
        if not self._sniffed and piece:
            self._sniffed = True
            if piece.startswith(GZIP_MAGIC):
                self._file = BoundedInflater(self.cap)
            elif piece.startswith(XZ_MAGIC[:4]):  # a first piece may be shorter than the magic
                self._file = BoundedXz(self.cap)
        for out in self._file.feed(piece) if self._file else (piece,):
            self.size += len(out)
            if self.size > self.cap:
                raise FetchError(self.label, f"body exceeds the cap of {self.cap} bytes")
            self.sink.write(out)

    def finish(self) -> None:
        try:
            if self._transfer is not None:
                self._transfer.finish()
            if self._file is not None:
                self._file.finish()
        except InflateError as err:
            raise FetchError(self.label, str(err)) from None


class _MemorySink:
    def __init__(self) -> None:
        self.buf = bytearray()

    def write(self, piece: bytes) -> None:
        self.buf += piece


def gunzip_capped(data: bytes, max_bytes: int, source: str) -> bytes:
    """Decompress gzip (possibly multi-member) without ever holding more than `max_bytes`."""
    sink = _MemorySink()
    decoder = _Decoder(sink, max_bytes, source)
    decoder.push(data)
    decoder.finish()
    return bytes(sink.buf)


def _decode_local(path: Path, sink: _Sink, cap: int, label: str) -> None:
    decoder = _Decoder(sink, cap, label)
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            decoder.push(chunk)
    decoder.finish()


def _is_gzip_file(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(6).startswith((GZIP_MAGIC, XZ_MAGIC))


def _local_path(location: str, label: str) -> Path:
    path = Path(location.removeprefix("file://"))
    if "\x00" in location:
        raise FetchError(label, "file path contains a NUL byte")
    return path


@dataclass(slots=True)
class _Download:
    """One HTTP attempt's facts."""

    not_modified: bool = False
    validators: dict[str, str] | None = None


class Fetcher:
    """One shared httpx client for provider downloads, with an ETag/Last-Modified cache. Given a
    `factory` instead of a client (client.py), it is built, in a thread, on the first download:
    a refresh of local files never pays for it; `aclose` then closes it."""

    def __init__(
        self,
        client: httpx.AsyncClient | None,
        opts: FetchOptions,
        factory: Callable[[], httpx.AsyncClient] | None = None,
    ) -> None:
        self._client = client
        self._opts = opts
        self._factory = factory
        self._lock = asyncio.Lock()

    async def http(self) -> httpx.AsyncClient:
        """The client, built now if it was left to the factory."""
        async with self._lock:
            if self._client is None:
                if self._factory is None:
                    raise FetchError("http", "no HTTP client for this download")
                self._client = await asyncio.to_thread(self._factory)
            return self._client

    async def aclose(self) -> None:
        """Close the client this fetcher built (a client passed in belongs to the caller)."""
        if self._factory is not None and self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def options(self) -> FetchOptions:
        return self._opts

    async def fetch(
        self,
        location: str,
        headers: dict[str, str] | None = None,
        *,
        max_bytes: int | None = None,
    ) -> bytes:
        """Body of a URL or file in memory; gzip undone; FetchError names the redacted source."""
        cap = min(max_bytes or self._opts.max_bytes, self._opts.max_bytes)
        if not is_url(location):
            return await asyncio.to_thread(self._read_local_bytes, location, cap)
        label = redact_url(location)
        meta_path, body_path = self._cache_paths(location)
        sink = _MemorySink()
        result = await self._with_retries(
            location, label, headers, lambda: reset_memory(sink), sink, cap
        )
        if result.not_modified and body_path is not None:
            return await asyncio.to_thread(read_capped_file, body_path, cap, label)
        data = bytes(sink.buf)
        if body_path is not None and meta_path is not None and result.validators:
            await asyncio.to_thread(store_cache, meta_path, body_path, result.validators, data)
        return data

    async def fetch_file(self, location: str, headers: dict[str, str] | None = None) -> Path:
        """A URL or file as a decoded file on disk (kept for revalidation); memory stays flat."""
        cap = self._opts.max_bytes
        if not is_url(location):
            return await asyncio.to_thread(self._local_file, location, cap)
        label = redact_url(location)
        meta_path, body_path = self._cache_paths(location)
        assert meta_path is not None and body_path is not None, "fetch_file needs a cache_dir"
        part = body_path.with_suffix(f".part{os.getpid()}")
        holder: list[IO[bytes]] = []

        def reopen() -> None:
            for fh in holder:
                fh.close()
            holder[:] = [open_part(part)]

        sink = FileSinkProxy(holder)
        try:
            await asyncio.to_thread(reopen)
            result = await self._with_retries(location, label, headers, reopen, sink, cap)
            for fh in holder:
                await asyncio.to_thread(close_synced, fh)
            holder.clear()
            if result.not_modified:
                return body_path
            await asyncio.to_thread(commit, part, body_path, meta_path, result.validators or {})
        except (OSError, StateError) as err:  # StateError: the validators' file (write_atomic)
            why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise FetchError(label, f"cannot write the download: {why}") from None
        finally:
            for fh in holder:
                fh.close()
            with contextlib.suppress(OSError):
                part.unlink()
        return body_path

    # --- local files ---------------------------------------------------------------------------
    def _read_local_bytes(self, location: str, cap: int) -> bytes:
        sink = _MemorySink()
        path = _local_path(location, location)
        try:
            _decode_local(path, sink, cap, location)
        except OSError as err:
            raise FetchError(location, f"cannot read file: {err.strerror or err}") from None
        return bytes(sink.buf)

    def _local_file(self, location: str, cap: int) -> Path:
        """A plain file is read where it lies; a gzip one is inflated into the cache dir."""
        path = _local_path(location, location)
        try:
            if not _is_gzip_file(path):
                size = path.stat().st_size
                if size > cap:
                    raise FetchError(location, f"file is {size} bytes, over the cap of {cap}")
                return path
            _, body = self._cache_paths(f"file:{path.resolve()}")
            assert body is not None, "a gzip file needs a cache_dir to inflate into"
            body.parent.mkdir(parents=True, exist_ok=True)
            part = body.with_suffix(f".part{os.getpid()}")
            try:
                with part.open("wb") as fh:
                    _decode_local(path, fh, cap, location)
                part.replace(body)
            finally:
                with contextlib.suppress(OSError):
                    part.unlink()
            return body
        except OSError as err:
            raise FetchError(location, f"cannot read file: {err.strerror or err}") from None

    # --- HTTP ----------------------------------------------------------------------------------
    async def _with_retries(
        self,
        url: str,
        label: str,
        headers: dict[str, str] | None,
        reset: Reset,
        sink: _Sink,
        cap: int,
    ) -> _Download:
        attempt = 0
        while True:
            try:
                return await self._fetch_once(url, label, headers or {}, sink, cap)
            except FetchError as err:
                from plextuner.metrics import UPSTREAM_ERRORS  # lazily, as httpx

                UPSTREAM_ERRORS.labels(kind="fetch").inc()
                if not err.transient or attempt >= self._opts.retries:
                    raise
                attempt += 1
                delay = min(8.0, self._opts.backoff * 2**attempt) * (0.5 + random.random())  # noqa: S311
                log.info("fetch_retry", source=label, attempt=attempt, reason=err.reason)
                await asyncio.to_thread(reset)
                await asyncio.sleep(delay)

    async def _fetch_once(
        self, url: str, label: str, headers: dict[str, str], sink: _Sink, cap: int
    ) -> _Download:
        import httpx  # lazily: see the imports

        meta_path, body_path = self._cache_paths(url)
        req_headers = {
            "User-Agent": self._opts.user_agent,
            "Accept-Encoding": ACCEPT_ENCODING,
            **headers,
        }
        cached = await asyncio.to_thread(read_meta, meta_path, body_path)
        if cached.get("etag"):
            req_headers["If-None-Match"] = cached["etag"]
        if cached.get("last_modified"):
            req_headers["If-Modified-Since"] = cached["last_modified"]
        total = self._opts.total_timeout or self._opts.timeout * 4
        try:
            async with asyncio.timeout(total):
                client = await self.http()
                if url[:8].lower() == "https://":  # the CA bundle, off the loop (see tls.py)
                    await asyncio.to_thread(load_pending)
                async with client.stream("GET", url, headers=req_headers) as resp:
                    if resp.status_code == 304 and cached:
                        return _Download(not_modified=True)
                    check_status(resp.status_code, label)
                    await self._read_body(resp, sink, cap, label)
                    validators = {
                        "etag": resp.headers.get("etag", ""),
                        "last_modified": resp.headers.get("last-modified", ""),
                    }
                    return _Download(validators={k: v for k, v in validators.items() if v})
        except (TimeoutError, httpx.TimeoutException):
            raise FetchTimeoutError(label, "timed out", transient=True) from None
        except httpx.TooManyRedirects:
            raise FetchError(label, "too many redirects (a redirect loop?)") from None
        except httpx.TransportError as err:  # connect, read, protocol, proxy, unsupported scheme
            raise FetchError(
                label, f"connection failed ({type(err).__name__})", transient=True
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL, httpx.CookieConflict) as err:
            raise FetchError(label, f"request failed ({type(err).__name__})") from None
        except (ValueError, UnicodeError) as err:  # a URL or header httpx cannot even encode
            raise FetchError(label, f"invalid request ({type(err).__name__})") from None

    async def _read_body(self, resp: httpx.Response, sink: _Sink, cap: int, label: str) -> None:
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise FetchError(label, f"body of {declared} bytes is over the cap of {cap}")
        decoder = _Decoder(sink, cap, label, resp.headers.get("content-encoding", ""))
        if self._opts.yield_gil:  # a chunk's inflating and writing off the loop
            async for chunk in resp.aiter_raw(CHUNK):
                await asyncio.to_thread(decoder.push, chunk)
            await asyncio.to_thread(decoder.finish)
            return
        async for chunk in resp.aiter_raw(CHUNK):
            decoder.push(chunk)
        decoder.finish()

    def _cache_paths(self, url: str) -> tuple[Path | None, Path | None]:
        if self._opts.cache_dir is None:
            return None, None
        digest = hashlib.sha256(url.encode()).hexdigest()[:32]
        return self._opts.cache_dir / f"{digest}.json", self._opts.cache_dir / f"{digest}.body"


class Reset(Protocol):
    def __call__(self) -> None: ...


def reset_memory(sink: _MemorySink) -> None:
    sink.buf.clear()


def check_status(status: int, label: str) -> None:
    """Raise for an error answer; `transient` by the one status policy (httpstatus.py)."""
    if status < 300:
        return
    raise FetchError(label, f"HTTP {status}", transient=retry_may_help(status), status=status)
