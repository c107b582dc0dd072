"""Guide downloads straight to disk (guides run to hundreds of MB), gzip undone with a cap."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import zlib
from pathlib import Path

import httpx

from plextuner.errors import EpgError
from plextuner.ingest.fetch import GZIP_MAGIC, is_url
from plextuner.redact import redact_url

CHUNK = 1024 * 1024


class _Sink:
    """Writes chunks to a file, gunzipping on the fly when the data is gzip, within a cap."""

    def __init__(self, path: Path, cap: int, label: str) -> None:
        self.fh = path.open("wb")
        self.cap, self.label, self.size = cap, label, 0
        self.inflater: zlib._Decompress | None = None
        self.first = True

    def write(self, chunk: bytes) -> None:
        if self.first:
            self.first = False
            if chunk.startswith(GZIP_MAGIC):
                self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self.inflater is not None:
            room = self.cap + 1 - self.size
            chunk = self.inflater.decompress(chunk, room)
            if self.inflater.unconsumed_tail:
                raise EpgError(
                    f"{self.label}: decompressed guide exceeds the cap of {self.cap} bytes"
                )
        self.size += len(chunk)
        if self.size > self.cap:
            raise EpgError(f"{self.label}: guide exceeds the cap of {self.cap} bytes")
        self.fh.write(chunk)

    def close(self) -> None:
        self.fh.close()


async def fetch_guide(
    client: httpx.AsyncClient, location: str, dest_dir: Path, cap: int, timeout: float
) -> Path:
    """The guide as a plain XML file on disk (kept for ETag/Last-Modified revalidation)."""
    label = redact_url(location) if is_url(location) else location
    key = hashlib.sha256(location.encode()).hexdigest()[:24]
    dest, meta, part = (dest_dir / f"{key}{ext}" for ext in (".xml", ".json", ".part"))
    sink = await asyncio.to_thread(_open_sink, part, cap, label)
    validators: dict[str, str] = {}
    try:
        if is_url(location):
            cached = await asyncio.to_thread(_read_meta, meta, dest)
            validators = await _download(client, location, sink, label, timeout, cached)
        else:
            await asyncio.to_thread(_copy_local, Path(location), sink, label)
    except BaseException as err:
        sink.close()
        await asyncio.to_thread(remove_quietly, part)
        if isinstance(err, zlib.error):
            raise EpgError(f"{label}: corrupt gzip data ({err})") from None
        raise
    sink.close()
    if validators.get("not_modified"):
        await asyncio.to_thread(remove_quietly, part)
        return dest
    await asyncio.to_thread(_commit, part, dest, meta, validators)
    return dest


def _read_meta(meta: Path, dest: Path) -> dict[str, str]:
    if not dest.exists():
        return {}
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def _commit(part: Path, dest: Path, meta: Path, validators: dict[str, str]) -> None:
    part.replace(dest)
    if validators:
        meta.write_text(json.dumps(validators))
    else:
        meta.unlink(missing_ok=True)


async def _download(
    client: httpx.AsyncClient,
    url: str,
    sink: _Sink,
    label: str,
    timeout: float,
    cached: dict[str, str],
) -> dict[str, str]:
    headers = {}
    if cached.get("etag"):
        headers["If-None-Match"] = cached["etag"]
    if cached.get("last_modified"):
        headers["If-Modified-Since"] = cached["last_modified"]
    try:
        async with asyncio.timeout(timeout * 20):
            async with client.stream("GET", url, headers=headers) as resp:
                if resp.status_code == 304 and cached:
                    return {"not_modified": "1"}
                if resp.status_code != 200:
                    raise EpgError(f"{label}: HTTP {resp.status_code}")
                async for chunk in resp.aiter_bytes(CHUNK):
                    await asyncio.to_thread(sink.write, chunk)
                found = {
                    "etag": resp.headers.get("etag", ""),
                    "last_modified": resp.headers.get("last-modified", ""),
                }
                return {k: v for k, v in found.items() if v}
    except TimeoutError:
        raise EpgError(f"{label}: timed out") from None
    except httpx.HTTPError as err:
        raise EpgError(f"{label}: connection failed ({type(err).__name__})") from None


def _copy_local(path: Path, sink: _Sink, label: str) -> None:
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                sink.write(chunk)
    except OSError as err:
        raise EpgError(f"{label}: cannot read ({err.strerror})") from None


def _open_sink(dest: Path, cap: int, label: str) -> _Sink:
    dest.parent.mkdir(parents=True, exist_ok=True)
    return _Sink(dest, cap, label)


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
