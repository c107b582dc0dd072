"""One way to run a child process (ffprobe, ffmpeg, the demo's clip maker).

An argv list (never a shell); stdin closed; stderr drained line by line into a bounded tail (a
chatty child can neither fill the pipe and stall nor grow our memory); and on the way out, however
the body ends, `terminate → wait(grace) → kill`, the drain awaited and the pipes closed.

The drain is a task owned by this context manager and always awaited in its `finally`; it is not
put in an `asyncio.TaskGroup` because a group would wrap the body's own exceptions (a timeout, a
cancellation) in an ExceptionGroup that callers do not expect.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

GRACE = 1.0
TAIL_LINES = 40
LINE_LIMIT = 300


@dataclass(slots=True)
class ManagedProcess:
    proc: asyncio.subprocess.Process
    stderr_tail: deque[bytes] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))

    @property
    def stderr_text(self) -> str:
        return b"".join(self.stderr_tail).decode(errors="replace")

    @property
    def stdout(self) -> asyncio.StreamReader:
        assert self.proc.stdout is not None, "started with stdout=False"
        return self.proc.stdout


async def _drain(stream: asyncio.StreamReader | None, tail: deque[bytes]) -> None:
    if stream is None:
        return
    with contextlib.suppress(ValueError, ConnectionError):  # ValueError: a line over the limit
        async for line in stream:
            tail.append(line[:LINE_LIMIT])


async def stop(proc: asyncio.subprocess.Process, grace: float = GRACE) -> None:
    """terminate → wait(grace) → kill → wait; a process already gone is fine."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        async with asyncio.timeout(grace):
            await proc.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


@contextlib.asynccontextmanager
async def managed_process(
    argv: Sequence[str], *, stdout: bool = True, stdin: bool = False, grace: float = GRACE
) -> AsyncIterator[ManagedProcess]:
    """Run `argv`; OSError (not installed, not executable) propagates before anything starts."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE if stdout else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    managed = ManagedProcess(proc)
    drain = asyncio.ensure_future(_drain(proc.stderr, managed.stderr_tail))
    try:
        yield managed
    finally:
        try:
            await stop(proc, grace)
            with contextlib.suppress(TimeoutError):  # EOF follows the exit; keep the last lines
                async with asyncio.timeout(grace):
                    await asyncio.shield(drain)
        finally:
            if not drain.done():
                drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
            # Unread stdout may remain: close the transport now, not in the garbage collector.
            transport = getattr(proc, "_transport", None)
            if transport is not None:
                transport.close()


async def run_to_end(
    argv: Sequence[str], *, stdout: bool = True, feed: bytes | None = None
) -> tuple[int, bytes, str]:
    """(exit code, stdout, stderr tail) of a child that runs to its end (caller bounds the time);
    `feed` is written to its stdin, which is then closed."""
    async with managed_process(argv, stdout=stdout, stdin=feed is not None) as child:
        writer = None if feed is None else asyncio.ensure_future(_feed(child.proc, feed))
        try:
            out = await child.stdout.read() if stdout else b""
            code = await child.proc.wait()
        finally:
            if writer is not None:  # done by now (the child is gone), unless we are cancelled
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
    return code, out, child.stderr_text


async def _feed(proc: asyncio.subprocess.Process, data: bytes) -> None:
    """Beside the stdout read (a child that writes while it reads must not block on either);
    a child that stops reading early (it has seen enough) is not an error."""
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(data)
        await proc.stdin.drain()
    proc.stdin.close()
