"""Guide downloads straight to disk (guides run to hundreds of MB), gzip undone with a cap."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
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
    """The guide as a plain XML file on disk; EpgError naming the (redacted) source."""
    label = redact_url(location) if is_url(location) else location
    dest = dest_dir / (hashlib.sha256(location.encode()).hexdigest()[:24] + ".xml")
    sink = await asyncio.to_thread(_open_sink, dest, cap, label)
    try:
        if is_url(location):
            await _download(client, location, sink, label, timeout)
        else:
            await asyncio.to_thread(_copy_local, Path(location), sink, label)
    except zlib.error as err:
        raise EpgError(f"{label}: corrupt gzip data ({err})") from None
    finally:
        sink.close()
    return dest


async def _download(
    client: httpx.AsyncClient, url: str, sink: _Sink, label: str, timeout: float
) -> None:
    try:
        async with asyncio.timeout(timeout * 20):
            async with client.stream("GET", url) as resp:
                if resp.status_code != 200:
                    raise EpgError(f"{label}: HTTP {resp.status_code}")
                async for chunk in resp.aiter_bytes(CHUNK):
                    await asyncio.to_thread(sink.write, chunk)
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
