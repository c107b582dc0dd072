"""A big guide read by two processes: the second half by a helper on the other core.

A provider's own guide keeps every programme of the window, and reading each costs ~8-20 us of
Python (read from its bytes by plain.py, or the element's fields and rendered body): one core's
work for the whole file. When the file is big and a second CPU is there, a helper (`python -m
plextuner.epg.halves`) is started as the file is opened and waits; the reader, once it knows
which channels are wanted (at the first programme), samples what is left (halfsplit.py), sends
the helper the file from a `</programme>` where the two halves cost the same, and reads on up
to there (by bytes alone, a guide in time order, which holds the
window in its first third, gave the reader all the work). The helper parses the rest as a
document of its own (the file's prolog and root tag, then its bytes), renders the kept
programmes into a spill file its parent made (unlinked from the start, its descriptor passed
on), and leaves its channels, its kept programmes' times and references, and its counts in a
second such file (halfwire.py). At the split the reader takes them in file order, as if it had
read them itself.

Anything off falls back to reading on alone, as before: a helper that fails, hangs, finds the
file malformed or truncated, runs out of disk, or a split point inside a comment, CDATA section
or processing instruction. The helper runs at a lower priority than the reader (and than a
serving daemon's viewers), and ends by itself if its parent is gone.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from plextuner import memtrim
from plextuner.cpus import second_cpu
from plextuner.epg.chunked import SpilledList, seal_all
from plextuner.epg.halfsplit import boundary, even_split
from plextuner.epg.halfwire import HalfJob, HalfResult, read_answer, read_packed, write_answer
from plextuner.epg.model import GuideChannel, ParseOutcome
from plextuner.epg.resync import prolog_of
from plextuner.epg.spill import HELPER_SOURCE_BASE, Spill, temporary
from plextuner.logging import get_logger

log = get_logger(__name__)

SPLIT_MIN = 64 * 1024 * 1024  # what must be left to read for a helper to be worth its start
HELPER = [sys.executable, "-m", "plextuner.epg.halves"]
NICE = 5  # the helper yields to the reader and to a serving daemon


class SecondHalf:
    """The `Until` of a guide read in two halves (see bounded.py); `offset` stays beyond the
    file until `start` splits it."""

    def __init__(
        self,
        fh: IO[bytes],
        head: bytes,
        label: str,
        window: tuple[float, float],
        fold: bool,
        directory: Path,  # where the helper's spill file goes
    ) -> None:
        self.offset = sys.maxsize
        self.sourced = False  # the helper to reference long bodies in the file (`add_source`)
        self._directory = directory
        self.result: HalfResult | None = None
        self._fh, self._label, self._window, self._fold = fh, label, window, fold
        self._prolog, self._closing = prolog_of(head) or (b"", b"")
        self._proc: subprocess.Popen[bytes] | None = None
        self._file: IO[bytes] | None = None
        self._answer: IO[bytes] | None = None
        self._source: str = ""  # the helper's way to the file (see `_spawn`)
        self._started = 0.0
        self._warm()

    def _warm(self) -> None:
        """The helper started now, when the file is big enough to be split and there is a
        second CPU: it starts Python and imports its modules while the reader reads the
        channels and matches them (~0.1 s of its start off the split), then waits for its
        job. Anything that keeps it from starting leaves `start` to try again."""
        try:
            size = os.fstat(self._fh.fileno()).st_size
            if self._prolog and size >= SPLIT_MIN and second_cpu():
                self._spawn()
        except Exception as err:  # noqa: BLE001 - started later, or not at all
            log.info("guide_half_not_warmed", source=self._label, error=str(err)[:200])
            self.close()

    def start(self, wanted: frozenset[str]) -> None:
        """Split what is left of the file, when it is worth it (the reader stands at the first
        programme); anything that keeps the helper from starting leaves the file whole."""
        try:
            split = self._split(wanted)
            if split is None:
                self.close()  # a warmed helper not needed: gone now, not when the file is read
                return
            self._launch(wanted, split)
            self.offset, self._started = split, time.monotonic()
        except Exception as err:  # noqa: BLE001 - no helper: the reader reads on alone
            log.warning("guide_half_not_started", source=self._label, error=str(err)[:200])
            self.close()

    def _split(self, wanted: frozenset[str]) -> int | None:
        if not self._prolog or not second_cpu():
            return None
        at = self._fh.tell()
        left = os.fstat(self._fh.fileno()).st_size - at
        if left <= 0 or left < SPLIT_MIN:
            return None
        near = even_split(self._fh.fileno(), at, at + left, wanted, self._window)
        split = boundary(self._fh.fileno(), near) if near is not None else None
        return split if split is not None and split > at else None  # never behind the reader

    def _spawn(self) -> None:
        """The helper, its spill and answer files open in it, reading its job from a pipe."""
        self._file = temporary(self._directory)
        self._answer = temporary(self._directory)
        # The helper reads the reader's own file, even if its path is replaced meanwhile (a
        # second refresh fetching the same guide): a descriptor of its own on the same inode.
        source = _reopened(self._fh)
        self._source = f"/proc/self/fd/{source}" if source is not None else _path_of(self._fh)
        try:
            passed = [self._file.fileno(), self._answer.fileno()]
            passed += [] if source is None else [source]
            self._proc = subprocess.Popen(
                HELPER,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=passed,
            )
        finally:
            if source is not None:
                os.close(source)  # the helper has its own now

    def _launch(self, wanted: frozenset[str], split: int) -> None:
        if self._proc is None or self._proc.poll() is not None:  # not warmed, or gone
            self.close()
            self._spawn()
        assert self._proc is not None and self._file is not None and self._answer is not None
        job = HalfJob(
            self._source,
            self._label,
            split,
            self._prolog,
            wanted,
            self._window,
            self._fold,
            self._file.fileno(),
            os.getpid(),
            self._answer.fileno(),
            self.sourced,
        )
        # Sent from a thread: a job over the pipe's 64 KB (a big lineup's wanted ids) would
        # hold the reader until the helper has imported its modules and reads it.
        pipe, self._proc.stdin = self._proc.stdin, None  # `communicate` has nothing to send
        assert pipe is not None
        threading.Thread(target=_send, args=(pipe, pickle.dumps(job)), daemon=True).start()

    def decide(self, outside: bool) -> bytes | None:
        """At the split: the root's end tag when the helper's half is taken, else None."""
        why = "split inside markup"
        if outside:  # else the helper's half is wrong whatever it says: not waited for
            result = self._collect()
            if result is not None and result.problem is None:
                self.result = result
                return self._closing
            why = (result.problem if result else None) or "helper failed"
        log.info("guide_half_dropped", source=self._label, why=why[:200])
        self.close()
        return None

    def _collect(self) -> HalfResult | None:
        proc = self._proc
        if proc is None:
            return None
        # The helper had the same amount to read: far longer than the reader took is a hang.
        wait = max(60.0, 4 * (time.monotonic() - self._started))
        try:
            _, err = proc.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return HalfResult(problem=f"the helper took over {wait:.0f} s")
        if proc.returncode != 0:
            tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            return HalfResult(problem=f"the helper exited {proc.returncode}: {tail[0][:160]}")
        assert self._answer is not None
        try:
            return read_answer(self._answer)
        except Exception as error:  # noqa: BLE001
            return HalfResult(problem=f"the helper's answer is unreadable: {error}")

    def packed(self, shift: int) -> Iterator[tuple[str, SpilledList]]:
        """The taken half's kept programmes, a channel at a time, rebased by `shift`."""
        assert self.result is not None and self._answer is not None
        return read_packed(self.result, self._answer, shift)

    @property
    def spill_file(self) -> IO[bytes] | None:
        return self._file

    def close(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            self._proc.communicate()
        self._proc = None
        for file in (self._file, self._answer):
            if file is not None:
                file.close()
        self._file = self._answer = None


def _reopened(fh: IO[bytes]) -> int | None:
    """A new descriptor (its own offset) on `fh`'s file, through /proc; None without /proc."""
    try:
        return os.open(f"/proc/self/fd/{fh.fileno()}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _path_of(fh: IO[bytes]) -> str:
    return str(Path(fh.name).resolve()) if isinstance(fh.name, str) else ""


def _send(pipe: IO[bytes], data: bytes) -> None:
    try:
        pipe.write(data)
    except OSError:
        pass  # the helper is gone: its exit says why, at the split
    finally:
        with contextlib.suppress(OSError):
            pipe.close()


class _Joined:
    """The prolog, then the file from the split: what the helper parses. Each read first checks
    that the reader is still there (a helper whose reader was killed ends within a block)."""

    def __init__(self, prolog: bytes, fh: IO[bytes], start: int, parent: int) -> None:
        self._prolog, self._fh, self._start, self._parent = prolog, fh, start, parent
        self.seek(0)

    def seek(self, offset: int) -> int:
        """To `offset` of the joined stream (the prolog's bytes, then the file's from the
        split): its start, or past a construct left open (unclosed.py)."""
        self._at = min(offset, len(self._prolog))
        self._fh.seek(self._start + max(0, offset - len(self._prolog)))
        return offset

    def read(self, size: int = -1) -> bytes:
        if os.getppid() != self._parent:
            raise SystemExit(3)  # nobody wants the answer
        if self._at < len(self._prolog):
            part = (
                self._prolog[self._at :] if size < 0 else self._prolog[self._at : self._at + size]
            )
            self._at += len(part)
            return part
        return self._fh.read(size)


def run_half(job: HalfJob) -> HalfResult:
    """The helper's work: the second half read as `parse_source` reads a whole file."""
    from plextuner.epg.bodies import BodyRenderer, keep_programme
    from plextuner.epg.xmltv import iter_guide
    from plextuner.errors import EpgError

    result = HalfResult()
    outcome = ParseOutcome(source=job.label)
    spill = Spill(file=os.fdopen(job.fd, "r+b", buffering=0))
    bodies = BodyRenderer()
    with Path(job.path).open("rb") as raw:
        stream = _Joined(job.prolog, raw, job.start, job.parent)
        # The stream is the prolog, then the file from the split: its offsets as the file's,
        # above where the parent reads the helper's file part (moved by the adoption's shift)
        origin = HELPER_SOURCE_BASE + job.start - len(job.prolog) if job.sourced else None
        try:
            for item in iter_guide(
                stream,  # type: ignore[arg-type]
                job.label,
                outcome,
                lambda: job.wanted,
                job.window,
                fold=job.fold,
                origin=origin,
            ):
                if isinstance(item, GuideChannel):
                    result.channels.append(item)
                else:
                    keep_programme(item, job.fold, spill, result.packed, bodies)
        except EpgError as err:
            result.problem = str(err)
    # Every programme's numbers in the spill too, and no empty array left a channel (50,000
    # of them: 4 MB at the end)
    seal_all(result.packed.values(), spill)
    spill.flush()
    result.problem = result.problem or outcome.truncated
    if spill.in_memory:
        result.problem = result.problem or "the disk is full"
    result.spilled = spill.size
    result.counts = (outcome.channels, outcome.programmes, outcome.skipped)
    result.malformed = (outcome.malformed, outcome.malformed_first)
    result.notes = outcome.notes
    return result


def main() -> None:
    # Run as `-m`, this file is `__main__`: the answer's classes come from the package module,
    # so the parent can read them. What the reading needs is imported before the job is waited
    # for (the helper starts while its reader matches the channels: see `_warm`).
    from plextuner.epg import bodies, xmltv  # noqa: F401
    from plextuner.epg.halves import run_half as run

    # Anything printed or logged (structlog unconfigured prints to stdout) goes to stderr.
    os.dup2(2, 1)
    gc.disable()  # a one-shot process, as the guide worker (worker.py)
    with contextlib.suppress(OSError):
        os.nice(NICE)
    try:
        job = pickle.load(sys.stdin.buffer)  # noqa: S301 - from our own parent
    except EOFError:  # warmed, then not needed (the rest too little to split after all)
        return
    result = run(job)
    memtrim.trim()  # what reading freed, handed back before the answer is written
    with os.fdopen(job.answer, "wb") as answer:
        write_answer(result, answer)


if __name__ == "__main__":
    main()
