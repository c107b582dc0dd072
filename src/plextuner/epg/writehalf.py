"""Device guides written by two processes: a helper writes some while the guide job writes the rest.

Writing a provider's own guide (a million kept programmes, 240 MB of device guides) is a third
of the guide job, all of it on one core: each programme's body copied out of the spill (see
spill.py) and joined behind its start tag. With a second CPU there, the guide job hands the
devices that hold about half of the kept programmes to a helper (`python -m
plextuner.epg.writehalf`, started once their programmes are known) and writes the others
meanwhile. The helper reads the bodies from the guide job's spill file (its descriptor passed
on), writes each guide as `write_guide` does (a temporary file, fsynced and renamed over the
old one), and answers which it wrote. A guide it did not write (it failed, was killed, or
found its disk full) is written by the guide job after its own, as before: the files on disk
are the same whoever wrote them.

The job goes to the helper in an unlinked file it reads a guide at a time (each: its packed
programme lists, three arrays each, as machine bytes, then the rest pickled with references to
them), and the guide job forgets those programmes once the file is written; a channel's
sources (their URLs carry credentials) are left out, as the writer needs only names, ids and
logos.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence, Sized
from pathlib import Path
from typing import IO, TYPE_CHECKING

from plextuner import memtrim
from plextuner.cpus import second_cpu
from plextuner.epg.spill import Spill, temporary
from plextuner.epg.spillparts import Part
from plextuner.epg.writejob import GuideFile, WriteJob, dump_end, dump_frame, dump_head
from plextuner.epg.writer import remove_temporaries, write_guide
from plextuner.errors import EpgError
from plextuner.fileio import Committer, fsync_dir
from plextuner.logging import get_logger

if TYPE_CHECKING:
    from plextuner.epg.matchresult import MatchResult

log = get_logger(__name__)

WRITER = [sys.executable, "-m", "plextuner.epg.writehalf"]
# Kept programmes in the guides to write: less is under ~0.3 s of writing, not worth a helper
# (~0.1 s to start, and what it is sent).
HELPER_MIN = 150_000
# Gathering a programme for its guide (its numbers loaded, chosen, fingerprinted, handed over),
# against writing it: 0.16-0.23 (a device of the provider-shaped guide 0.017 s to gather, 0.105
# to write; of the lean one 0.03 and 0.13). The guide job gathers them all, so the helper takes
# more than half of the writing.
GATHER = 0.2
# The helper writes a programme this much slower than the job (niced, its start-up, its job
# file): 0.122 s a device against 0.105, 0.144 against 0.13. With GATHER 0.3 and no pace, the
# job waited 0.37-0.43 s for the helper at the end on both guides.
HELPER_PACE = 1.12
# A channel with placeholders, against a kept programme: its slots are noted, not written
# (placeholders.py), ~2 us a channel, as a kept programme's writing (when they were written,
# 75 slots a channel at 0.5 each; a guide with few still writes them, under 10,000 slots).
PLACEHOLDER_WORK = 1.0
# Guides sent and not yet written by the helper, at most, when the guide job hands it one more
# of its own (`SecondWriter.idle`): the one it writes and the next
BACKLOG = 2
NICE = 5  # as the reading helper (halves.py): it yields to a serving daemon's viewers


def work(results: Sequence[MatchResult], kept: Mapping[str, Sequence[Sized]], filled: bool) -> int:
    """A device's writing work: the kept programmes of the guide channels it matched, and
    (`filled`: placeholders on) each channel with none weighed as PLACEHOLDER_WORK."""
    each = PLACEHOLDER_WORK if filled else 0.0
    if not kept:  # no guide source: placeholders only (no walk of the device's results)
        return int(len(results) * each)
    counts = [sum(len(x) for x in kept.get(r.guide_id, ())) if r.guide_id else 0 for r in results]
    return sum(counts) + int(counts.count(0) * each)


def two_writers(spill: Spill | None) -> bool:
    """A second CPU to write on, and the bodies in a file a helper can read (or none to read:
    no guide source, placeholders only)."""
    return (spill is None or not spill.in_memory) and second_cpu()


def share(weights: Sequence[int]) -> set[int]:
    """The devices (by index) the helper writes: the last ones, while each shortens the longer
    of the two writers' work (the guide job gathers every device, GATHER of a programme's
    writing, and writes its own); never the first; none when the work is too little to be
    worth a helper."""
    total = sum(weights)
    if total < HELPER_MIN or len(weights) < 2:
        return set()
    taken: set[int] = set()
    given = 0  # the helper's work so far
    gathering = GATHER * total

    def longer(helper: float) -> float:
        return max(gathering + total - helper, HELPER_PACE * helper)

    for i in range(len(weights) - 1, 0, -1):
        more = given + weights[i]
        if longer(more) >= longer(given):
            break
        taken.add(i)
        given = more
    return taken


class SecondWriter:
    """The guide job's side: the guides handed over, the helper that writes them, and what it
    wrote. Each guide goes to the job file as it is gathered (`add`), its programmes dropped
    here at once (gathered all before the job was written, the helper's devices' programmes sat
    together in the guide job: 20 MB of a lean 300 MB guide's numbers, at its peak), and the
    helper starts with the first: it writes while the next are gathered (it waited 0.6 s of a
    lean guide's 5 s for all nine of its devices), told of each whole one by a byte on a pipe."""

    def __init__(self, spill: Spill | None) -> None:
        self._spill = spill
        self._proc: subprocess.Popen[bytes] | None = None
        self._paths: list[str] = []  # the guides handed over (their devices not kept: 5 MB)
        self._job: IO[bytes] | None = None
        self._out: IO[bytes] | None = None  # the job file, while guides are added
        self._ready: int | None = None  # the pipe's end that tells the helper of a frame
        self._done: int | None = None  # the pipe's end the helper tells of each guide written
        self._written = 0  # guides the helper said it wrote
        self._failed = False  # no helper this time: the guides added are the job's to write

    def add(self, f: GuideFile, id_style: str, generated: float) -> None:
        """`f` into the job (the first opens it and starts the helper); its programmes are
        forgotten here either way (a guide the helper does not write is gathered again: see
        `finish`)."""
        self._paths.append(f.path)
        try:
            if not self._failed and self._out is None:
                self._open(id_style, generated, Path(f.path).parent)
            if self._out is not None and self._ready is not None:
                dump_frame(f, self._out)
                self._out.flush()
                os.write(self._ready, b"\x01")
        except (OSError, EpgError) as err:  # (a helper gone: a broken pipe)
            log.warning("guide_writer_not_started", error=str(err)[:200])
            self._failed = True
            self._close_job()  # the helper sees the pipe closed: it writes what it has
        finally:
            f.programmes, f.icons = {}, {}

    def _open(self, id_style: str, generated: float, guides: Path) -> None:
        spill, fd = self._spill, -1  # no spill: no guide source, nothing to read
        if spill is not None:
            found = spill.fileno()
            if found is None or spill.in_memory:
                self._failed = True  # bodies the disk refused are only in this process's memory
                return
            fd = found
        # The job in an unlinked file the helper reads a guide at a time: through a pipe,
        # both processes held every guide's packed lists while they wrote (4.5 MB a device
        # of a provider's guide, at the pair's peak). The helper reads it with an offset of its
        # own (a second open of the file), as it is written.
        where = spill.directory if spill is not None else guides
        self._job = temporary(where or Path(tempfile.gettempdir()))
        self._out = open(self._job.fileno(), "wb", closefd=False)  # noqa: SIM115 - kept open
        parts = tuple(spill.parts()) if spill is not None else ()
        size = spill.size if spill is not None else 0
        dump_head(WriteJob(fd, size, id_style, generated, os.getpid(), parts), self._out)
        self._out.flush()
        reading = os.open(f"/proc/self/fd/{self._job.fileno()}", os.O_RDONLY)
        told, self._ready = os.pipe()
        self._done, done = os.pipe()
        os.set_blocking(self._done, False)
        try:
            self._proc = subprocess.Popen(
                [*WRITER, str(done), str(told), str(reading)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(*([fd] if fd >= 0 else []), reading, told, done, *(p[0] for p in parts)),
            )
        finally:
            os.close(reading)
            os.close(told)
            os.close(done)

    def idle(self) -> bool:
        """Whether the helper is writing the last guide it was sent, or none: then one more
        keeps it busy to the end (a guide the guide job would write itself). The guide job
        gathers every guide and writes its own at its own pace, which the split (`share`)
        can only guess: on a guide of 50,000 channels the helper was done 0.9 s before it."""
        if self._done is None or self._out is None or self._failed:
            return False
        try:
            while told := os.read(self._done, 256):
                self._written += len(told)
        except BlockingIOError:  # nothing more said yet
            return len(self._paths) - self._written < BACKLOG
        except OSError:
            pass
        self._close_done()  # the helper is gone (or going): its exit says why, in `finish`
        return False

    def start(self) -> bool:
        """The guides `share` gave the helper all added: True when it has them, False when
        it could not start or failed on the way (then `finish` returns what it did not
        write, to be gathered again and written by the guide job). More may follow while it
        is `idle`."""
        try:
            return not (self._out is None or self._proc is None or self._failed)
        finally:
            memtrim.trim()  # the lists only the helper needed (the job forgot them)

    def _end(self) -> None:
        """The job's end written: the helper writes what it has and exits."""
        out, self._out = self._out, None
        try:
            if out is not None and self._ready is not None and not self._failed:
                dump_end(out)
                out.close()
                os.write(self._ready, b"\x01")
        except OSError as err:  # the helper sees the pipe closed: it writes what came
            log.warning("guide_writer_failed", why=str(err)[:200])
        finally:
            self._close_ready()

    def finish(self, timeout: float) -> list[str]:
        """The paths of the guides the helper did not write (all of them when it failed): what
        was sent is gone here (gather them again)."""
        self._end()
        proc, paths = self._proc, self._paths
        self._proc, self._paths = None, []
        if proc is None:
            return paths
        self._close_job()
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            log.warning("guide_writer_failed", why=f"took over {timeout:.0f} s")
            _remove_temporary(paths)
            return paths
        written: set[str] = set()
        with contextlib.suppress(Exception):
            answer = pickle.loads(out)  # noqa: S301 - our own child's answer
            written = set(answer) if isinstance(answer, list) else set()
        left = [path for path in paths if path not in written]
        if left:
            _remove_temporary(left)
            tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            log.warning(
                "guide_writer_failed",
                why=f"exit {proc.returncode}: {tail[0][:160]}",
                rewriting=[Path(path).stem for path in left],
            )
        return left

    def close(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            self._proc.communicate()
            _remove_temporary(self._paths)
        self._proc = None
        self._close_job()

    def _close_ready(self) -> None:
        if self._ready is not None:
            with contextlib.suppress(OSError):
                os.close(self._ready)
            self._ready = None

    def _close_done(self) -> None:
        if self._done is not None:
            with contextlib.suppress(OSError):
                os.close(self._done)
            self._done = None

    def _close_job(self) -> None:
        self._close_ready()
        self._close_done()
        if self._out is not None:
            with contextlib.suppress(OSError):
                self._out.close()
            self._out = None
        if self._job is not None:
            self._job.close()
            self._job = None


def _remove_temporary(paths: list[str]) -> None:
    """The temporary files a helper killed while writing left beside these guides."""
    for path in paths:
        remove_temporaries(Path(path))


def run_job(job: WriteJob, files: Iterable[GuideFile], done: int | None = None) -> list[str]:
    """The helper's work: each guide written, in order, a byte on `done` after each (the
    guide job's `idle`); the paths written."""
    spill = None
    if job.spill >= 0:
        parts = [Part(base, size, os.fdopen(fd, "rb", buffering=0)) for fd, base, size in job.parts]
        spill = Spill.written(os.fdopen(job.spill, "rb", buffering=0), job.spill_size, parts)
    # Each file flushed and renamed by a committer thread while the next is rendered, as the
    # guide job does (flushed inline, a 50k list's placeholder guides took the helper 0.51 s
    # against the guide job's 0.3 s for all of them); a guide is written once renamed.
    committer = Committer()
    try:
        with committer:
            for f in files:
                if os.getppid() != job.parent:
                    break  # nobody wants these guides
                write_guide(
                    Path(f.path),
                    f.device,
                    f.programmes,
                    f.icons,
                    generated=job.generated,
                    id_style=job.id_style,
                    spill=spill,
                    channels=f.channels,
                    committer=committer,
                )
                if done is not None:
                    with contextlib.suppress(OSError):
                        os.write(done, b"\x01")
    except Exception as err:  # noqa: BLE001 - what is not written, the guide job writes
        print(f"guide_writer: {type(err).__name__}: {err}"[:300], file=sys.stderr)
    finally:
        if spill is not None:
            spill.close()
    for directory in {path.parent for path in committer.committed}:
        fsync_dir(directory)  # the renames durable before the guide job says so
    return [str(path) for path in committer.committed]


def main() -> None:
    # Run as `-m`, this file is `__main__`: the job's classes come from the package modules.
    from plextuner.epg.writehalf import run_job as run
    from plextuner.epg.writejob import load_job as load

    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed or logged goes to stderr, not into the answer
    gc.disable()  # a one-shot process
    with contextlib.suppress(OSError):
        os.nice(NICE)
    started = time.monotonic()
    # The descriptors: the job's last, the pipe telling of its frames before it, and before
    # that the pipe to tell of each guide written
    ready = int(sys.argv[-2]) if len(sys.argv) > 2 else None
    done = int(sys.argv[-3]) if len(sys.argv) > 3 else None
    with os.fdopen(int(sys.argv[-1]), "rb") as fh:
        job, files = load(fh, ready)
        written = run(job, files, done)
    pickle.dump(written, answer)
    answer.flush()
    print(f"guide_writer: {len(written)} guides in {time.monotonic() - started:.2f} s",
          file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
