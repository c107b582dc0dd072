"""Downloading playlists and guides: timeouts, bounded retries, revalidation, size caps."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import zlib
from dataclasses import dataclass
from pathlib import Path

import httpx

from plextuner.errors import FetchError, FetchTimeoutError
from plextuner.logging import get_logger
from plextuner.metrics import UPSTREAM_ERRORS
from plextuner.redact import redact_url
from plextuner.state.store import write_atomic

log = get_logger(__name__)
GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class FetchOptions:
    timeout: float = 30.0
    retries: int = 2
    max_bytes: int = 256 * 1024**2
    user_agent: str = "plextuner/0.1"
    cache_dir: Path | None = None
    backoff: float = 0.5  # first retry delay; doubles per attempt, capped at 8 s, jittered


def is_url(location: str) -> bool:
    return location.lower().startswith(("http://", "https://"))


def gunzip_capped(data: bytes, max_bytes: int, source: str) -> bytes:
    """Decompress gzip (possibly multi-member) without ever holding more than `max_bytes`."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(data, max_bytes + 1 - len(out))
        except zlib.error as err:
            raise FetchError(source, f"corrupt gzip data: {err}") from None
        if len(out) > max_bytes:
            raise FetchError(source, f"decompressed size exceeds the cap of {max_bytes} bytes")
        if not inflater.eof:
            if inflater.unconsumed_tail:
                raise FetchError(source, f"decompressed size exceeds the cap of {max_bytes} bytes")
            raise FetchError(source, "truncated gzip data")
        data = inflater.unused_data
        if data and not data.startswith(GZIP_MAGIC):
            break
    return bytes(out)


def _maybe_gunzip(data: bytes, max_bytes: int, source: str) -> bytes:
    return gunzip_capped(data, max_bytes, source) if data.startswith(GZIP_MAGIC) else data


async def read_local(path: str, opts: FetchOptions) -> bytes:
    """A playlist or guide from a file path, read off the event loop."""
    label = path

    def _read() -> bytes:
        p = Path(path)
        size = p.stat().st_size
        if size > opts.max_bytes:
            raise FetchError(label, f"file is {size} bytes, over the cap of {opts.max_bytes}")
        return p.read_bytes()

    try:
        data = await asyncio.to_thread(_read)
    except OSError as err:
        raise FetchError(label, f"cannot read file: {err.strerror or err}") from None
    return await asyncio.to_thread(_maybe_gunzip, data, opts.max_bytes, label)


class Fetcher:
    """One shared httpx client for provider downloads, with an ETag/Last-Modified cache."""

    def __init__(self, client: httpx.AsyncClient, opts: FetchOptions) -> None:
        self._client = client
        self._opts = opts

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client

    async def fetch(self, location: str, headers: dict[str, str] | None = None) -> bytes:
        """Body of a URL or file; gzip undone; raises FetchError naming the redacted source."""
        if not is_url(location):
            return await read_local(location, self._opts)
        label = redact_url(location)
        attempt = 0
        while True:
            try:
                data = await self._fetch_once(location, label, headers or {})
                return await asyncio.to_thread(_maybe_gunzip, data, self._opts.max_bytes, label)
            except FetchError as err:
                UPSTREAM_ERRORS.labels(kind="fetch").inc()
                if not err.transient or attempt >= self._opts.retries:
                    raise
                attempt += 1
                delay = min(8.0, self._opts.backoff * 2**attempt) * (0.5 + random.random())  # noqa: S311
                log.info("fetch_retry", source=label, attempt=attempt, reason=err.reason)
                await asyncio.sleep(delay)

    async def _fetch_once(self, url: str, label: str, headers: dict[str, str]) -> bytes:
        meta_path, body_path = self._cache_paths(url)
        req_headers = {"User-Agent": self._opts.user_agent, **headers}
        cached = _read_meta(meta_path) if body_path and body_path.exists() else {}
        if cached.get("etag"):
            req_headers["If-None-Match"] = cached["etag"]
        if cached.get("last_modified"):
            req_headers["If-Modified-Since"] = cached["last_modified"]
        try:
            async with asyncio.timeout(self._opts.timeout * 4):
                async with self._client.stream("GET", url, headers=req_headers) as resp:
                    if resp.status_code == 304 and body_path is not None:
                        return await asyncio.to_thread(body_path.read_bytes)
                    _check_status(resp.status_code, label)
                    data = await self._read_capped(resp, label)
                    validators = {
                        "etag": resp.headers.get("etag"),
                        "last_modified": resp.headers.get("last-modified"),
                    }
        except TimeoutError:
            raise FetchTimeoutError(label, "timed out", transient=True) from None
        except httpx.TimeoutException:
            raise FetchTimeoutError(label, "timed out", transient=True) from None
        except httpx.TransportError as err:
            reason = type(err).__name__
            raise FetchError(label, f"connection failed ({reason})", transient=True) from None
        if body_path is not None and meta_path is not None and any(validators.values()):
            await asyncio.to_thread(_store_cache, meta_path, body_path, validators, data)
        return data

    async def _read_capped(self, resp: httpx.Response, label: str) -> bytes:
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self._opts.max_bytes:
            raise FetchError(label, f"body of {declared} bytes is over the cap")
        buf = bytearray()
        async for chunk in resp.aiter_bytes(_CHUNK):
            buf += chunk
            if len(buf) > self._opts.max_bytes:
                raise FetchError(label, f"body exceeds the cap of {self._opts.max_bytes} bytes")
        return bytes(buf)

    def _cache_paths(self, url: str) -> tuple[Path | None, Path | None]:
        if self._opts.cache_dir is None:
            return None, None
        digest = hashlib.sha256(url.encode()).hexdigest()[:32]
        return self._opts.cache_dir / f"{digest}.json", self._opts.cache_dir / f"{digest}.body"


def _check_status(status: int, label: str) -> None:
    if status < 300:
        return
    transient = status in (408, 425, 429) or status >= 500
    raise FetchError(label, f"HTTP {status}", transient=transient)


def _read_meta(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def _store_cache(meta: Path, body: Path, validators: dict[str, str | None], data: bytes) -> None:
    write_atomic(body, data)
    write_atomic(meta, json.dumps({k: v for k, v in validators.items() if v}).encode())


def make_client(timeout: float, user_agent: str) -> httpx.AsyncClient:
    """The process-wide provider client: bounded pool, connect/read timeouts, redirects followed."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=True,
        max_redirects=5,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        headers={"User-Agent": user_agent},
        trust_env=False,
    )
