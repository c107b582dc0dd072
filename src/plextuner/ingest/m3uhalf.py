"""A big playlist parsed by two processes: its second part by a helper on the other core.

Parsing costs ~4 us of Python an entry (a 50k-entry list: 0.19 s of one core). When the file
is big and a second CPU is there, a helper (`python -m plextuner.ingest.m3uhalf`, which
imports the parser alone: no config, no pydantic) is sent the file from an `#EXTINF` line
near where the two parts cost the same, after a job naming the line number it starts at and
the header's `tvg-shift`. It walks its part as the parser would from there and answers with
its entries and its counts (msgpack); the parser reads up to that line meanwhile and takes
them after its own, as if it had read them itself.

What the parser carries from one line to the next is checked where the helper started: no
entry waiting for its URL, no `#EXTVLCOPT`/`#KODIPROP` pending, no `#EXTGRP` in force and the
`tvg-shift` the helper was given. Where anything differs, or the helper fails, hangs or
answers nonsense, the parser reads on alone from there: the result is the one-process
parse's, always (a property test holds the two equal).

A helper is started ahead: by the `plextuner refresh` command as it starts (early.py), or,
in `serve`, as a refresh begins when a big playlist is expected (`PlaylistHelpers(warm=True)`).
Its start (~0.1 s) then overlaps the refresh's own; a helper started later moves the split
toward the end by what its start still costs. Two processes parsing at once each go slower
than one alone (they share the machine's caches and memory): a 50k-entry list's parse takes
~0.7-0.8 of one process's time, not half.
"""

from __future__ import annotations

import contextlib
import gc
import os
import struct
import subprocess
import sys
import threading
import time
from typing import IO, Any, cast

import msgspec

from plextuner import early
from plextuner.cpus import second_cpu
from plextuner.ingest.lines import file_blocks
from plextuner.ingest.m3uline import read_header
from plextuner.ingest.m3uwalk import Walk, conclude, walk
from plextuner.ingest.models import Entry, ParseReport

NICE = 5  # the helper yields to the parser and to a serving daemon's viewers
RATE = 40e6  # bytes of playlist parsed a second (this machine: 9.5 MB in 0.19-0.24 s); a guess
START = 0.1  # seconds from spawning a helper to its first parsed line (Python, imports)
DECODE = 0.2  # the parser's cost of taking an answer, against parsing the same part itself
# The helper's time a byte against the parser's while both parse, its answer encoded and sent:
# measured 1.45-1.6x with the helper fully started (it is niced; the parser is not)
PACE = 1.6
MIN_PART = 1024 * 1024  # the least the helper is given: less does not pay for its answer
SPLIT_MIN = 2 * MIN_PART  # the least file worth a helper
WARM_ENTRIES = 10_000  # a provider that listed this many last time has its helper started ahead
WAIT_MIN = 10.0  # seconds the parser waits for an answer at least (4x its own part's time)
PROBE = 256 * 1024  # bytes looked through for an `#EXTINF` line to split at
CHUNK = 1024 * 1024
# The part goes in writes of SEND_CHUNK through a pipe of PIPE_SIZE: the sending thread needs
# the GIL (held by the parser) only between writes, and the helper reads while the write
# waits in the kernel.
SEND_CHUNK = 8 * CHUNK
PIPE_SIZE = CHUNK
_HEAD = struct.Struct("<I")  # the job's length, before the job and then the playlist's bytes


class HalfJob(msgspec.Struct):
    source: str  # the playlist's label (redacted)
    provider: str
    lineno: int  # the lines before the helper's part
    tvg_shift: float | None  # the header's, in force where the part starts


class HalfAnswer(msgspec.Struct):
    entries: list[Entry]
    skipped: dict[str, int]
    guide_urls: list[str]
    saw_header: bool
    tvg_shift: float | None


class PlaylistHelpers:
    """The helper processes of one refresh: one started ahead when asked, more on demand."""

    def __init__(self, warm: bool = False) -> None:
        self._lock = threading.Lock()
        # The one the `refresh` command started as it started, if any (early.py), whatever
        # `warm` says: a list fetched for the first time may yet prove big.
        self._ready = early.take()
        if self._ready is None and warm and second_cpu():
            with contextlib.suppress(OSError):
                self._ready = (early.spawn(), time.monotonic())

    def take(self) -> tuple[subprocess.Popen[bytes], float]:
        """A helper and when it was started: the warm one if there is one, else a new one."""
        with self._lock:
            ready, self._ready = self._ready, None
        return ready if ready is not None else (early.spawn(), time.monotonic())

    def close(self) -> None:
        """The warm helper, if nobody took it: gone now (it ends quietly on its closed input)."""
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is not None:
            _end(ready[0])


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.returncode is None:
        proc.kill()
    proc.communicate()


class Split:
    """The playlist's second part, sent to a helper; `collect` takes its answer."""

    def __init__(self, fh: IO[bytes], offset: int, proc: subprocess.Popen[bytes], job: HalfJob):
        self.offset, self.job, self._proc = offset, job, proc
        self._started = time.monotonic()
        pipe, proc.stdin = proc.stdin, None  # `communicate` has nothing to send
        assert pipe is not None
        payload = msgspec.msgpack.encode(job)
        # From a thread: the pipe holds PIPE_SIZE, the helper reads as it parses.
        self._sender = threading.Thread(
            target=_send, args=(pipe, _HEAD.pack(len(payload)) + payload, fh.fileno(), offset),
            daemon=True,
        )  # fmt: skip
        self._sender.start()

    def collect(self) -> HalfAnswer | None:
        """The helper's answer; None when it failed (then it is gone)."""
        answer, why = self._answer()
        if why is not None:
            self.drop(why)
        else:
            self._sender.join()  # done: the helper read all of its part
        return answer

    def drop(self, why: str) -> None:
        """The helper's part not taken (`why`): the helper gone, its input no longer sent."""
        _end(self._proc)
        self._sender.join()  # it reads the parser's file: done before that is closed
        _dropped(self.job.source, why)

    def _answer(self) -> tuple[HalfAnswer | None, str | None]:
        # The helper had about as much to parse: far longer than the parser took is a hang.
        wait = max(WAIT_MIN, 4 * (time.monotonic() - self._started))
        try:
            out, err = self._proc.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            return None, f"the helper took over {wait:.0f} s"
        if self._proc.returncode != 0:
            tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            return None, f"the helper exited {self._proc.returncode}: {tail[0][:160]}"
        try:
            return msgspec.msgpack.decode(out, type=HalfAnswer), None
        except msgspec.DecodeError as error:  # a ValidationError is one
            return None, f"the helper's answer is unreadable: {error}"


def _dropped(source: str, why: str) -> None:
    _log().info("playlist_half_dropped", source=source, why=why)


def _log() -> Any:
    from plextuner.logging import get_logger  # here only: the helper imports no structlog

    return get_logger(__name__)


def _send(pipe: IO[bytes], head: bytes, fd: int, offset: int) -> None:
    try:
        _widen(pipe.fileno())
        pipe.write(head)
        while chunk := os.pread(fd, SEND_CHUNK, offset):
            pipe.write(chunk)
            offset += len(chunk)
    except OSError:
        pass  # the helper is gone: its exit says why
    finally:
        with contextlib.suppress(OSError):
            pipe.close()


def _widen(pipe: int) -> None:
    """The pipe's buffer at PIPE_SIZE (Linux); elsewhere, or refused, left as it is."""
    with contextlib.suppress(ImportError, OSError, AttributeError):
        import fcntl

        fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, PIPE_SIZE)


def split(fh: IO[bytes], helpers: PlaylistHelpers, source: str, provider: str) -> Split | None:
    """The file's second part sent to a helper, when the file is big enough and a second CPU
    is there; None to parse it whole here (nothing started)."""
    fd = fh.fileno()
    size = os.fstat(fd).st_size
    if size < SPLIT_MIN or not second_cpu():
        return None
    try:
        proc, spawned = helpers.take()
    except OSError:
        return None  # no helper: parsed whole here
    try:
        # Where both parts end together, the answer's decoding counted: x / r + DECODE *
        # (size - x) / r = start + PACE * (size - x) / r, the helper's start still to come.
        lead = max(0.0, START - (time.monotonic() - spawned)) * RATE
        at = (lead + size * (PACE - DECODE)) / (1 + PACE - DECODE)
        offset = _line_start(fd, int(at), size)
        if offset is None or size - offset < MIN_PART:
            _end(proc)
            return None
        job = HalfJob(source, provider, _lines_before(fd, offset), _header_shift(fd, source))
        _log().debug("playlist_split", source=source, size=size, helper_part=size - offset,
                     helper_started_s=round(time.monotonic() - spawned, 3))  # fmt: skip
        return Split(fh, offset, proc, job)
    except BaseException:
        _end(proc)
        raise


def _line_start(fd: int, near: int, size: int) -> int | None:
    """The offset of an `#EXTINF` line after a URL line, at or after `near`."""
    if near >= size:
        return None
    probe = os.pread(fd, min(PROBE, size - near), near)
    at = probe.find(b"\n#EXTINF:")
    while at >= 0:
        before = probe.rfind(b"\n", 0, at)
        line = probe[before + 1 : at].strip()
        if before >= 0 and line and not line.startswith(b"#"):
            return near + at + 1
        at = probe.find(b"\n#EXTINF:", at + 1)
    return None


def _lines_before(fd: int, offset: int) -> int:
    lines, at = 0, 0
    while at < offset:
        chunk = os.pread(fd, min(CHUNK, offset - at), at)
        if not chunk:
            break
        lines += chunk.count(b"\n")
        at += len(chunk)
    return lines


def _header_shift(fd: int, source: str) -> float | None:
    """The `tvg-shift` of the playlist's first line when it is the `#EXTM3U` header."""
    first = os.pread(fd, 64 * 1024, 0).removeprefix(b"\xef\xbb\xbf").lstrip()
    line = first.split(b"\n", 1)[0].strip().decode("utf-8", "replace")
    if not line[:7].upper().startswith("#EXTM3U"):
        return None
    report = ParseReport(source=source)
    read_header(line, report)
    return report.tvg_shift


def parse_in_two(fh: IO[bytes], part: Split) -> tuple[list[Entry], ParseReport]:
    """The playlist parsed here up to `part`, and the helper's answer for the rest (or the
    rest parsed here too, when the state at the split or the helper is not right)."""
    state = Walk(ParseReport(source=part.job.source), part.job.provider)
    try:
        walk(file_blocks(cast(IO[bytes], _Upto(fh, part.offset))), state)
    except BaseException:
        part.drop("the parser failed")
        raise
    answer = None
    if clean_at_split(state, part.job):
        answer = part.collect()
    else:
        part.drop("the state at the split is not the helper's")
    if answer is None:
        fh.seek(part.offset)
        walk(file_blocks(fh), state)
    else:
        take_answer(state, answer)
    return conclude(state)


class _Upto:
    """The file's reads, up to `end`."""

    def __init__(self, fh: IO[bytes], end: int) -> None:
        self._fh, self._left = fh, end - fh.tell()

    def read(self, size: int) -> bytes:
        data = self._fh.read(min(size, self._left)) if self._left > 0 else b""
        self._left -= len(data)
        return data


def clean_at_split(state: Walk, job: HalfJob) -> bool:
    """The parser's state after its part is what the helper started from."""
    pending = state.pending
    return (
        pending.entry is None
        and not pending.headers
        and not pending.kodiprops
        and not state.lane.group
        and state.report.tvg_shift == job.tvg_shift
    )


def take_answer(state: Walk, answer: HalfAnswer) -> None:
    """The helper's part added to the parser's, as if the parser had read it."""
    report = state.report
    state.entries.extend(answer.entries)
    for reason, count in answer.skipped.items():
        report.skip(reason, count)
    report.guide_urls.extend(u for u in answer.guide_urls if u not in report.guide_urls)
    state.saw_header = state.saw_header or answer.saw_header
    report.tvg_shift = answer.tvg_shift


def run_half(job: HalfJob, stream: IO[bytes]) -> HalfAnswer:
    """The helper's work: its part walked as the parser walks a file from there."""
    report = ParseReport(source=job.source, tvg_shift=job.tvg_shift)
    state = Walk(report, job.provider, job.lineno)
    walk(file_blocks(stream), state)
    if state.pending.entry is not None:
        report.skip("entry without URL")
    return HalfAnswer(state.entries, report.skipped, report.guide_urls, state.saw_header,
                      report.tvg_shift)  # fmt: skip


def main() -> None:
    # Run as `-m`, this file is `__main__`: the answer's classes come from the package module.
    from plextuner.ingest.m3uhalf import HalfJob as Job
    from plextuner.ingest.m3uhalf import run_half as run

    answer_to = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, not into the answer
    gc.disable()  # a one-shot process: its objects are freed at exit
    with contextlib.suppress(OSError):
        os.nice(NICE)
    stdin = sys.stdin.buffer
    head = stdin.read(_HEAD.size)
    if len(head) < _HEAD.size:
        return  # started ahead, then not needed
    job = msgspec.msgpack.decode(stdin.read(_HEAD.unpack(head)[0]), type=Job)
    answer = run(job, stdin)
    _widen(answer_to.fileno())  # the answer in fewer, larger pieces
    with answer_to:
        answer_to.write(msgspec.msgpack.encode(answer))
    # Gone at once: the parser waits for the exit, and freeing every entry one by one on the
    # way out took 10-40 ms.
    os._exit(0)


if __name__ == "__main__":
    main()
