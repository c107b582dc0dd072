"""The guide worker process: killed when the refresh is cancelled, its failure reported."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from pathlib import Path

import pytest

from plextuner.buckets.models import LineupEntry
from plextuner.config import load_settings
from plextuner.epg.worker import GuideJob, _entry, entry_row, pack_rows, run_in_process, unpack_rows
from plextuner.errors import EpgError
from plextuner.ingest.models import Channel
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
    bad.devices = [
        ("d", pack_rows([("1",)]))
    ]  # a malformed row: the child raises, the parent reports
    with pytest.raises(EpgError, match="guide worker failed"):
        await run_in_process(bad)


def test_entry_rows_round_trip() -> None:
    """What the guide worker rebuilds from a row carries every field the guide stage reads."""
    channel = Channel("k", "N", "n.uk", "News", "p", "http://l/x.png", "N HD", "7", -1.0)
    channel.groups = ["News", "UK"]
    entry = LineupEntry("1000", channel)
    back = _entry(entry_row(entry))
    (packed,) = unpack_rows(pack_rows([entry_row(entry)]))  # as the worker gets it
    assert _entry(packed) == back
    assert back.number == "1000"
    assert (back.channel.key, back.channel.name, back.channel.tvg_id, back.channel.group) == (
        "k", "N", "n.uk", "News"
    )  # fmt: skip
    assert (back.channel.logo, back.channel.tvg_name, back.channel.chno) == (
        "http://l/x.png", "N HD", "7"
    )  # fmt: skip
    assert (back.channel.tvg_shift, back.channel.groups) == (-1.0, ["News", "UK"])


def test_a_terminated_worker_leaves_through_its_finally_blocks(tmp_path: Path) -> None:
    """Where a big guide's helper is killed and reaped (halves.py) rather than orphaned."""
    import signal
    import subprocess
    import sys

    done = tmp_path / "cleaned"
    code = (
        "import sys, time, pathlib\n"
        "from plextuner.epg.worker import stop_on_sigterm\n"
        "stop_on_sigterm()\n"
        "try:\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
        "finally:\n"
        "    pathlib.Path(sys.argv[1]).write_text('cleaned')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(done)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    proc.stdout.close()
    assert done.read_text() == "cleaned"


async def test_a_worker_that_cannot_start_is_reported_as_such(tmp_path: Path) -> None:
    """An EpgError (the stage then runs the job in a thread), not an AssertionError from waiting
    on a process never started."""
    from unittest import mock

    with (
        mock.patch("multiprocessing.context.SpawnProcess.start", side_effect=OSError(11, "EAGAIN")),
        pytest.raises(EpgError, match=r"cannot start the guide worker.*EAGAIN"),
    ):
        await run_in_process(job(tmp_path, tmp_path / "g.xml"))
