"""Atomic writes and reads: a crash at any moment leaves the old file readable (a leaf module)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from plextuner.errors import StateError

_T = TypeVar("_T")


def write_atomic(path: Path, data: bytes | Iterable[bytes], mode: int = 0o600) -> None:
    """Write to a temp file in the same dir, fsync it, rename over `path`, fsync the dir.

    `data` may be an iterable of chunks, so a large file is never held whole in memory.
    """
    try:  # a parent that cannot be made (a file in the way, no permission) is the same error
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise StateError(f"cannot write {path}: {err.strerror or err}") from err
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
    except BaseException as err:  # the chunks' own error too (a reader's, a cancellation)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise StateError(f"cannot write {path}: {err.strerror or err}") from err
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


class Committer:
    """Finished temp files made durable (fsync) and renamed over their targets on one
    background thread, in the order given: the caller renders the next file while the disk
    flushes this one (fsync releases the GIL). A big guide's device guides are hundreds of MB
    (a provider's 300 MB guide kept for 6,000 channels: 236 MB): flushed inline, that was half
    their write time. As a context manager
    it waits for every commit on the way out; `wait` raises the first failure. A temp file
    whose commit failed is removed; the target keeps its old content."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="plextuner-commit")
        self._pending: list[Future[None]] = []
        self.committed: list[Path] = []  # the targets renamed over, in order

    def submit(self, tmp: str, path: Path) -> None:
        self._pending.append(self._pool.submit(self._commit, tmp, path))

    def _commit(self, tmp: str, path: Path) -> None:
        _commit(tmp, path)
        self.committed.append(path)

    def wait(self) -> None:
        pending, self._pending = self._pending, []
        failures = [f.exception() for f in pending]
        first = next((e for e in failures if e is not None), None)
        if first is not None:
            raise first

    def __enter__(self) -> Committer:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self.wait()
            else:  # the body's error is the one to see; the commits still finish or clean up
                with contextlib.suppress(BaseException):
                    self.wait()
        finally:
            self._pool.shutdown(wait=True)


def _commit(tmp: str, path: Path) -> None:
    try:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# A temp file untouched this long was left by a crash mid-write. A younger one may be another
# writer's, in flight: every refresh reads the state, and its sweep of the data dir removed the
# temp of an override being saved at that moment (the save failed: "No such file or directory").
STALE_TEMP_AFTER = 3600.0


def remove_stale_temp(directory: Path) -> int:
    """Delete temp files a crash left behind mid-write (untouched for STALE_TEMP_AFTER: not
    another writer's, in flight); returns how many."""
    removed = 0
    oldest = time.time() - STALE_TEMP_AFTER
    with contextlib.suppress(OSError):
        for path in directory.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < oldest:
                    path.unlink()
                    removed += 1
    return removed


_ENCODER = msgspec.json.Encoder()


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON (what `write_json` writes)."""
    return _ENCODER.encode(value)


def write_json(path: Path, value: Any) -> None:
    """Compact UTF-8 JSON, encoded by msgspec: a 50k-channel map in ~10 ms (the stdlib's C
    encoder held the GIL 0.1-0.3 s for the same, stalling the loop while this ran in a thread)."""
    write_atomic(path, _ENCODER.encode(value))


def read_json(path: Path) -> Any | None:
    """The parsed file, None when absent; StateError when present but unreadable."""
    raw = _read_bytes(path)
    return None if raw is None else _decode(path, raw)


def read_json_as(path: Path, kind: type[_T]) -> _T | Any | None:
    """The file decoded as `kind` (checked in C: a file of our own writing, whole), or, when
    it is valid JSON of another shape (hand-edited, older), as plain JSON for the caller's
    forgiving reader; None when absent; StateError when unreadable."""
    raw = _read_bytes(path)
    if raw is None:
        return None
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError:
        return _decode(path, raw)
    except ValueError as err:  # msgspec.DecodeError is one
        raise StateError(f"{path} is corrupt: {err}") from err


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StateError(f"cannot read {path}: {err.strerror or err}") from err


def _decode(path: Path, raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except ValueError as err:  # msgspec.DecodeError is one
        raise StateError(f"{path} is corrupt: {err}") from err
