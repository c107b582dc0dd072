"""The job a guide helper is sent (epg/writehalf.py): its settings, then each device guide as a
frame, read back a guide at a time as the guide job writes them."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, cast

from plextuner.buckets.models import Device, LineupEntry
from plextuner.epg.kept import Kept, KeptList
from plextuner.epg.model import Programme
from plextuner.epg.writer import Placeholders
from plextuner.ingest.models import Channel

Items = Sequence[Programme | Kept] | Placeholders


@dataclass(slots=True)
class GuideFile:
    """One device guide to write: what `write_guide` is given."""

    path: str
    device: Device
    programmes: Mapping[str, Items]
    icons: dict[str, str]
    channels: bytes | None = None  # the device's channel elements, when rendered already


@dataclass(slots=True)
class WriteJob:
    spill: int  # the guide job's spill file, open in the helper under this number (-1: none)
    spill_size: int
    id_style: str
    generated: float
    parent: int
    parts: tuple[tuple[int, int, int], ...] = ()  # the spill's adopted files (`Spill.parts`)


def dump_head(job: WriteJob, out: IO[bytes]) -> None:
    """The job's settings; then each guide as a frame (`dump_frame`), then the end."""
    head = (job.spill, job.spill_size, job.id_style, job.generated, job.parent, job.parts)
    pickle.dump(head, out, protocol=pickle.HIGHEST_PROTOCOL)


def dump_frame(f: GuideFile, out: IO[bytes]) -> None:
    """One guide: its packed lists' lengths, their numbers as machine bytes, and the rest
    pickled as plain tuples, each packed list standing as its index among them (a channel's
    programmes are never an int) and each run of placeholders as its four values. Not by
    `persistent_id`: the pickler called it for every object, ~26 a lineup entry (630k calls,
    0.07 s of the guide job for a 50k lineup's helper devices); and no struct a channel: a
    lineup entry, its channel and its placeholders pickled as objects cost the guide job
    ~7 us a channel (a 50k list's placeholder guides: 0.2 s for the helper's share). The
    device goes as its entries' numbers, names, ids and logos only: a channel's sources (their
    URLs carry credentials) stay here."""
    packed: list[KeptList] = []
    programmes: dict[str, object] = {}
    for number, items in f.programmes.items():
        kind = type(items)
        if kind is KeptList:
            programmes[number] = len(packed)
            packed.append(cast(KeptList, items))
        elif kind is Placeholders:
            p = cast(Placeholders, items)
            programmes[number] = (p.title, p.start, p.end, p.block)
        else:  # programmes, as a list (a tuple of them would read as placeholders)
            listed = cast(Sequence[Programme | Kept], items)
            programmes[number] = listed if isinstance(listed, list) else list(listed)
    pickle.dump([len(kept) for kept in packed], out, protocol=pickle.HIGHEST_PROTOCOL)
    for kept in packed:
        kept.write_to(out)
    rows = [(e.number, e.channel.key, e.channel.name, e.channel.tvg_id, e.channel.logo)
            for e in f.device.entries]  # fmt: skip
    frame = (f.path, f.device.name, rows, programmes, f.icons, f.channels)
    pickle.dump(frame, out, protocol=pickle.HIGHEST_PROTOCOL)


_FRAME_FIELDS = 6  # what `dump_frame` pickles after the packed lists


def dump_end(out: IO[bytes]) -> None:
    pickle.dump(None, out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()


def load_job(fh: IO[bytes], ready: int | None = None) -> tuple[WriteJob, Iterator[GuideFile]]:
    """The job's settings, and its guides read one at a time as they are asked for; `ready`:
    a pipe with a byte for each frame written whole (the job is written while it is read)."""
    spill, size, id_style, generated, parent, parts = pickle.load(fh)  # noqa: S301 - ours
    return WriteJob(spill, size, id_style, generated, parent, parts), _frames(fh, ready)


def _frames(fh: IO[bytes], ready: int | None) -> Iterator[GuideFile]:
    while True:
        if ready is not None and not os.read(ready, 1):
            return  # the guide job stopped adding (it failed to): what came is all
        lengths = pickle.load(fh)  # noqa: S301 - ours
        if lengths is None:
            return
        packed = [KeptList.read_from(fh, n) for n in lengths]
        frame = pickle.load(fh)  # noqa: S301 - from our own parent
        if not (isinstance(frame, tuple) and len(frame) == _FRAME_FIELDS):
            raise TypeError("not a guide to write")
        path, name, rows, programmes, icons, channels = frame
        for number, items in programmes.items():
            if type(items) is int:  # a packed list's index (`dump_frame`)
                programmes[number] = packed[items]
            elif type(items) is tuple:  # a channel's placeholders
                programmes[number] = Placeholders(*items)
        entries = [LineupEntry(n, Channel(key, shown, tvg, "", "", logo))
                   for n, key, shown, tvg, logo in rows]  # fmt: skip
        device = Device(name, name, name, "", 0, 1, entries=entries)
        yield GuideFile(path, device, programmes, icons, channels)
