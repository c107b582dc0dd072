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

The job goes through the helper's stdin: the packed programme lists (three arrays each) as
machine bytes, then the rest pickled with references to them; a channel's sources (their URLs
carry credentials) are left out, as the writer needs only names, ids and logos.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from plextuner import memtrim
from plextuner.buckets.models import Device, LineupEntry
from plextuner.epg.spill import Kept, KeptList, Spill
from plextuner.epg.writer import Placeholders, write_guide
from plextuner.epg.xmltv import Programme
from plextuner.ingest.models import Channel
from plextuner.logging import get_logger

if TYPE_CHECKING:
    from plextuner.epg.match import MatchResult

log = get_logger(__name__)

WRITER = [sys.executable, "-m", "plextuner.epg.writehalf"]
# Kept programmes in the guides to write: less is under ~0.3 s of writing, not worth a helper
# (~0.1 s to start, and what it is sent).
HELPER_MIN = 150_000
NICE = 5  # as the reading helper (halves.py): it yields to a serving daemon's viewers
Items = Sequence[Programme | Kept] | Placeholders


@dataclass(slots=True)
class GuideFile:
    """One device guide to write: what `write_guide` is given."""

    path: str
    device: Device
    programmes: Mapping[str, Items]
    icons: dict[str, str]


@dataclass(slots=True)
class WriteJob:
    spill: int  # the guide job's spill file, open in the helper under this number (-1: none)
    spill_size: int
    id_style: str
    generated: float
    parent: int
    files: list[GuideFile] = field(default_factory=list)


def work(results: Sequence[MatchResult], kept: Mapping[str, Sequence[Sized]]) -> int:
    """A device's writing work: the kept programmes of the guide channels it matched."""
    return sum(len(x) for r in results if r.guide_id for x in kept.get(r.guide_id, ()))


def two_writers(spill: Spill | None) -> bool:
    """A second CPU to write on, and the bodies in a file a helper can read."""
    from plextuner.epg.halves import usable_cpus

    return spill is not None and usable_cpus() >= 1.5


def share(weights: Sequence[int]) -> set[int]:
    """The devices (by index) the helper writes: the last ones, while each shortens the longer
    of the two writers' work; never the first; none when the work is too little to be worth
    a helper."""
    total = sum(weights)
    if total < HELPER_MIN or len(weights) < 2:
        return set()
    taken: set[int] = set()
    work = 0
    for i in range(len(weights) - 1, 0, -1):
        more = work + weights[i]
        if max(total - more, more) >= max(total - work, work):
            break
        taken.add(i)
        work = more
    return taken


def light(device: Device) -> Device:
    """`device` as the writer needs it: numbers, names, ids and logos (no stream URLs)."""
    entries = [
        LineupEntry(e.number, Channel(e.channel.key, e.channel.name, e.channel.tvg_id, "", "",
                                      e.channel.logo))
        for e in device.entries
    ]  # fmt: skip
    return Device(device.name, device.name, device.name, "", 0, 1, entries=entries)


def dump_job(job: WriteJob, out: IO[bytes]) -> None:
    """The packed lists first, as machine bytes; then the job, pickled, referring to them."""
    packed: list[KeptList] = []

    def reference(obj: object) -> int | None:
        if type(obj) is KeptList:
            packed.append(obj)
            return len(packed) - 1
        return None

    rest = io.BytesIO()
    pickler = pickle.Pickler(rest, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.persistent_id = reference  # type: ignore[method-assign]
    pickler.dump(job)
    pickle.dump([len(kept) for kept in packed], out, protocol=pickle.HIGHEST_PROTOCOL)
    for kept in packed:
        kept.write_to(out)
    out.write(rest.getbuffer())
    out.flush()


def load_job(fh: IO[bytes]) -> WriteJob:
    counts = pickle.load(fh)  # noqa: S301 - from our own parent
    packed = [KeptList.read_from(fh, count) for count in counts]
    unpickler = pickle.Unpickler(fh)  # noqa: S301 - from our own parent
    unpickler.persistent_load = packed.__getitem__  # type: ignore[method-assign]
    job = unpickler.load()
    if not isinstance(job, WriteJob):
        raise TypeError("not a write job")
    return job


class SecondWriter:
    """The guide job's side: the helper started with its guides, and what it wrote."""

    def __init__(self, spill: Spill | None) -> None:
        self._spill = spill
        self._proc: subprocess.Popen[bytes] | None = None
        self._files: list[GuideFile] = []

    def start(self, files: list[GuideFile], id_style: str, generated: float) -> bool:
        """Hand `files` to a helper; False when none could start (then `finish` returns them
        all, their programmes untouched)."""
        self._files = files
        spill = self._spill
        fd = spill.fileno() if spill is not None else None
        if not files or spill is None or fd is None or spill.in_memory:
            return False  # bodies the disk refused are only in this process's memory
        job = WriteJob(fd, spill.size, id_style, generated, os.getpid(), files)
        try:
            self._proc = subprocess.Popen(
                WRITER,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(fd,),
            )
        except OSError as err:
            log.warning("guide_writer_not_started", error=str(err)[:200])
            return False
        pipe, self._proc.stdin = self._proc.stdin, None  # `communicate` has nothing to send
        assert pipe is not None
        # Sent from a thread: the pipe holds 64 KB and the helper reads while it imports.
        threading.Thread(target=_send, args=(pipe, job), daemon=True).start()
        return True

    def finish(self, timeout: float) -> list[GuideFile]:
        """The guides the helper did not write (all of them when it failed); their programmes
        are gone once sent (gather them again)."""
        proc, files = self._proc, self._files
        self._proc, self._files = None, []
        if proc is None:
            return files
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            log.warning("guide_writer_failed", why=f"took over {timeout:.0f} s")
            _remove_temporary(files)
            return files
        written: set[str] = set()
        with contextlib.suppress(Exception):
            answer = pickle.loads(out)  # noqa: S301 - our own child's answer
            written = set(answer) if isinstance(answer, list) else set()
        left = [f for f in files if f.path not in written]
        if left:
            _remove_temporary(left)
            tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            log.warning(
                "guide_writer_failed",
                why=f"exit {proc.returncode}: {tail[0][:160]}",
                rewriting=[Path(f.path).stem for f in left],
            )
        return left

    def close(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            self._proc.communicate()
            _remove_temporary(self._files)
        self._proc = None


def _remove_temporary(files: list[GuideFile]) -> None:
    """The temporary files a helper killed while writing left beside these guides (see
    writer.py `_atomic_raw`: `.<name>.<random>.tmp`)."""
    for f in files:
        path = Path(f.path)
        for tmp in path.parent.glob(f".{path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _send(pipe: IO[bytes], job: WriteJob) -> None:
    try:
        dump_job(job, pipe)
    except OSError:
        pass  # the helper is gone: its exit says why
    finally:
        with contextlib.suppress(OSError):
            pipe.close()
        # Sent (or not): the helper has them. Held on, a device's share of a provider's guide
        # (9 MB for two of four devices) sat in both processes; a guide the helper fails to
        # write has its programmes gathered again (`SecondWriter.finish`).
        for f in job.files:
            f.programmes, f.icons = {}, {}
        memtrim.trim()  # the lists only the helper needed (the guide job forgot them), handed back


def run_job(job: WriteJob) -> list[str]:
    """The helper's work: each guide written, in order; the paths written."""
    spill = None
    if job.spill >= 0:
        spill = Spill.written(os.fdopen(job.spill, "rb", buffering=0), job.spill_size)
    written: list[str] = []
    try:
        for f in job.files:
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
            )
            written.append(f.path)
    except Exception as err:  # noqa: BLE001 - what is not written, the guide job writes
        print(f"guide_writer: {type(err).__name__}: {err}"[:300], file=sys.stderr)
    finally:
        if spill is not None:
            spill.close()
    return written


def main() -> None:
    # Run as `-m`, this file is `__main__`: the job's classes come from the package module.
    from plextuner.epg.writehalf import load_job as load
    from plextuner.epg.writehalf import run_job as run

    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed or logged goes to stderr, not into the answer
    gc.disable()  # a one-shot process
    with contextlib.suppress(OSError):
        os.nice(NICE)
    started = time.monotonic()
    job = load(sys.stdin.buffer)
    written = run(job)
    pickle.dump(written, answer)
    answer.flush()
    print(f"guide_writer: {len(written)} guides in {time.monotonic() - started:.2f} s",
          file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
