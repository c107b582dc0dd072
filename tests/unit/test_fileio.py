"""Commits in the background: every finished temp file ends up in place, or is removed and
its target left as it was; the first failure is raised, never a body's own error masked."""

from __future__ import annotations

import os
import tempfile
import time
from array import array
from collections.abc import Iterator
from pathlib import Path

import pytest

from plextuner.errors import StateError
from plextuner.fileio import STALE_TEMP_AFTER, Committer, remove_stale_temp, write_atomic


def temp(directory: Path, text: str) -> str:
    fd, name = tempfile.mkstemp(dir=directory, prefix=".t.", suffix=".tmp")
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return name


def test_every_file_is_in_place_and_no_temp_left(tmp_path: Path) -> None:
    targets = [tmp_path / f"g{i}.xml" for i in range(20)]
    targets[0].write_text("old", encoding="utf-8")
    with Committer() as committer:
        for i, target in enumerate(targets):
            committer.submit(temp(tmp_path, f"guide {i}"), target)
    assert [t.read_text(encoding="utf-8") for t in targets] == [f"guide {i}" for i in range(20)]
    assert not list(tmp_path.glob(".t.*"))


def test_a_failed_commit_is_raised_its_temp_removed_the_others_done(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "inside").write_text("keeps the directory non-empty", encoding="utf-8")
    fine = tmp_path / "fine.xml"

    def commit_both() -> None:
        with Committer() as committer:
            committer.submit(temp(tmp_path, "lost"), blocked)  # a directory cannot be replaced
            committer.submit(temp(tmp_path, "kept"), fine)

    with pytest.raises(OSError):
        commit_both()
    assert fine.read_text(encoding="utf-8") == "kept"
    assert blocked.is_dir()
    assert not list(tmp_path.glob(".t.*"))


def test_the_bodys_error_is_the_one_raised(tmp_path: Path) -> None:
    target = tmp_path / "g.xml"

    def failing_body() -> None:
        with Committer() as committer:
            committer.submit(temp(tmp_path, "done"), target)
            raise KeyError("the body's")

    with pytest.raises(KeyError):
        failing_body()
    assert target.read_text(encoding="utf-8") == "done"


def test_only_stale_temps_are_swept(tmp_path: Path) -> None:
    """A temp file untouched for an hour is a crash's leftover and goes; a younger one may be
    another writer's in flight (every refresh reads the state, and its sweep made an override's
    save fail at that moment) and stays."""
    fresh, stale = temp(tmp_path, "in flight"), temp(tmp_path, "left by a crash")
    old = time.time() - 2 * STALE_TEMP_AFTER
    os.utime(stale, (old, old))
    assert remove_stale_temp(tmp_path) == 1
    assert Path(fresh).exists() and not Path(stale).exists()


@pytest.mark.parametrize("where", ["a file in the way", "a directory that cannot be written"])
def test_a_write_that_cannot_start_is_a_state_error(tmp_path: Path, where: str) -> None:
    """Its parent not made, or its temp file not opened: the same StateError as a failed write,
    the old file untouched (callers report it; a bare OSError went up as a traceback)."""
    if where == "a file in the way":
        (tmp_path / "f").write_text("x", encoding="utf-8")
        target = tmp_path / "f" / "out.json"
    elif os.geteuid() == 0:  # root writes anywhere: a directory past the name limit instead
        target = tmp_path / ("d" * 300) / "out.json"
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        target = tmp_path / "ro" / "out.json"
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(StateError, match="cannot write"):
        write_atomic(target, [b"data"])
    assert sorted(tmp_path.rglob("*")) == before  # nothing made, no temp left


def test_a_full_disk_costs_the_caches_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guide-match cache and a download's revalidation copy are only caches: a disk that
    fills while one is written is logged, never raised (a full disk's StateError went past their
    `except OSError` and failed the guide job or the download)."""
    import errno

    from plextuner.epg import matchcache
    from plextuner.ingest.bodycache import store_cache

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    matchcache.save(tmp_path, {b"fp": (array("Q"), [])})
    store_cache(tmp_path / "meta.json", tmp_path / "body", {"etag": "x"}, b"data")
    assert not list(tmp_path.iterdir())  # no temporary left either


def test_chunks_that_fail_leave_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    """The chunks' own error (a reader's, a cancellation) goes up as it is; the temp file goes."""
    target = tmp_path / "guide.xml"
    target.write_bytes(b"old")

    def chunks() -> Iterator[bytes]:
        yield b"new start"
        raise ValueError("the source went away")

    with pytest.raises(ValueError, match="went away"):
        write_atomic(target, chunks())
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["guide.xml"]
