"""The guide worker process: killed when the refresh is cancelled, its failure reported."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from pathlib import Path

import pytest

from plextuner.config import load_settings
from plextuner.epg.worker import GuideJob, run_in_process
from plextuner.errors import EpgError
from tests.waiting import until


def job(tmp_path: Path, source: Path) -> GuideJob:
    settings = load_settings(None, {"data_dir": str(tmp_path / "data")}, env={})
    return GuideJob(settings, {}, [(str(source), "src")], True, (0.0, 1.0), [])


async def test_cancelled_refresh_kills_the_worker(tmp_path: Path) -> None:
    fifo = tmp_path / "guide.fifo"
    os.mkfifo(fifo)  # the child blocks opening it: a job that never ends on its own
    task = asyncio.create_task(run_in_process(job(tmp_path, fifo)))

    def started() -> bool:
        return any(p.name == "plextuner-guide" for p in multiprocessing.active_children())

    await until(started, "the worker to start", 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not any(p.name == "plextuner-guide" for p in multiprocessing.active_children())


async def test_a_failing_job_is_an_epg_error(tmp_path: Path) -> None:
    bad = job(tmp_path, tmp_path / "missing.xml")
    bad.devices = [("d", [("1",)])]  # a malformed row: the child raises, the parent reports
    with pytest.raises(EpgError, match="guide worker failed"):
        await run_in_process(bad)
