"""The download cache on disk: part files, atomic commit, ETag/Last-Modified metadata.

A body is written to a part file while it downloads and renamed over the cached copy only when
complete, so a cut download never replaces a good one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from plextuner.errors import FetchError, StateError
from plextuner.fileio import write_atomic
from plextuner.logging import get_logger

log = get_logger(__name__)
CHUNK = 256 * 1024


class FileSinkProxy:
    """Writes to whichever part file is open now (a retry starts a new one)."""

    def __init__(self, holder: list[IO[bytes]]) -> None:
        self._holder = holder

    def write(self, piece: bytes) -> None:
        self._holder[0].write(piece)


def open_part(part: Path) -> IO[bytes]:
    part.parent.mkdir(parents=True, exist_ok=True)
    return part.open("wb")


def close_synced(fh: IO[bytes]) -> None:
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()


def commit(part: Path, body: Path, meta: Path, validators: dict[str, str]) -> None:
    part.replace(body)
    if validators:
        write_atomic(meta, json.dumps(validators).encode())
    else:
        meta.unlink(missing_ok=True)


def read_capped_file(path: Path, cap: int, label: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > cap:
            raise FetchError(label, f"cached body of {size} bytes is over the cap of {cap}")
        return path.read_bytes()
    except OSError as err:
        raise FetchError(label, f"cannot read the cached body: {err.strerror or err}") from None


def read_meta(meta: Path | None, body: Path | None) -> dict[str, str]:
    if meta is None or body is None or not body.exists():
        return {}
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def store_cache(meta: Path, body: Path, validators: dict[str, str], data: bytes) -> None:
    try:
        write_atomic(body, data)
        write_atomic(meta, json.dumps(validators).encode())
    except StateError as err:  # a full disk costs revalidation, never the refresh
        log.warning("fetch_cache_unwritable", error=str(err))


def iter_chunks(path: Path, size: int = CHUNK) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk
