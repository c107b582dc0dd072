"""Atomic writes and reads: a crash at any moment leaves the old file readable (a leaf module)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from plextuner.errors import StateError


def write_atomic(path: Path, data: bytes | Iterable[bytes], mode: int = 0o600) -> None:
    """Write to a temp file in the same dir, fsync it, rename over `path`, fsync the dir.

    `data` may be an iterable of chunks, so a large file is never held whole in memory.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, bytes):
                fh.write(data)
            else:
                for chunk in data:
                    fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StateError(f"cannot write {path}: {err.strerror or err}") from err
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def remove_stale_temp(directory: Path) -> int:
    """Delete temp files a crash left behind mid-write; returns how many."""
    removed = 0
    with contextlib.suppress(OSError):
        for path in directory.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    return removed


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_FLUSH = 64 * 1024


def write_json(path: Path, value: Any) -> None:
    """Encoded piece by piece (the pure-Python encoder): the C one-shot encoder holds the GIL for
    the whole document (0.1-0.3 s for a 50k-channel map), stalling the event loop while this
    runs in a worker thread; this one hands the GIL over as it goes."""
    write_atomic(path, _chunks(_ENCODER.iterencode(value)))


def _chunks(pieces: Iterable[str]) -> Iterator[bytes]:
    buf: list[str] = []
    size = 0
    for piece in pieces:
        buf.append(piece)
        size += len(piece)
        if size >= _FLUSH:
            yield "".join(buf).encode()
            buf, size = [], 0
    if buf:
        yield "".join(buf).encode()


def read_json(path: Path) -> Any | None:
    """The parsed file, None when absent; StateError when present but unreadable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StateError(f"cannot read {path}: {err.strerror or err}") from err
    try:
        return json.loads(raw)
    except ValueError as err:
        raise StateError(f"{path} is corrupt: {err}") from err
