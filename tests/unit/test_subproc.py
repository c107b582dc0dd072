"""The one subprocess helper: bounded stderr, terminate then kill, nothing left behind."""

from __future__ import annotations

import asyncio
import sys

import pytest

from plextuner.subproc import TAIL_LINES, managed_process, run_to_end


async def test_run_to_end_collects_output_and_bounded_stderr() -> None:
    """stdout whole, stderr only its last lines (a chatty child cannot grow our memory)."""
    script = "import sys\nfor i in range(5000): print('e', i, file=sys.stderr)\nprint('done')"
    code, out, err = await run_to_end([sys.executable, "-c", script])
    assert code == 0 and out.strip() == b"done"
    assert len(err.splitlines()) == TAIL_LINES and err.splitlines()[-1] == "e 4999"


async def test_child_ignoring_sigterm_is_killed() -> None:
    """A child that ignores SIGTERM is killed after the grace; the helper returns."""
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)"
    )
    async with managed_process([sys.executable, "-c", script], grace=0.2) as child:
        assert await child.stdout.readline() == b"ready\n"
        proc = child.proc
    assert proc.returncode is not None and proc.returncode < 0


async def test_cancelled_body_still_stops_the_child() -> None:
    """Cancellation inside the body (a viewer leaving) still ends the child."""
    holder: list[asyncio.subprocess.Process] = []

    async def body() -> None:
        async with managed_process([sys.executable, "-c", "import time; time.sleep(60)"]) as c:
            holder.append(c.proc)
            await asyncio.Event().wait()

    task = asyncio.create_task(body())
    while not holder:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert holder[0].returncode is not None


async def test_missing_binary_is_oserror() -> None:
    """A binary that does not exist fails before anything starts."""
    with pytest.raises(OSError):
        async with managed_process(["/nonexistent/ffmpeg"]):
            pass
