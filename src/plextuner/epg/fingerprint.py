"""What a device's guide.xml was written from, so an unchanged guide is not written again.

A refresh of 50k unchanged channels with placeholders wrote 350 MB of identical guides (and
their 350 MB aggregate) every time. The fingerprint covers everything the writer reads: each
channel's element as written (number, names, logo and icon); for placeholders the title and
the slots they fill; for real programmes the guide channel, how many were kept and their span,
plus the identity (path, size, mtime) of every parsed source file and the guide settings. The
same source bytes, settings and kept span give the same programmes, so equal fingerprints mean
equal files (short of `generated`, which then keeps its earlier value).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from operator import attrgetter
from pathlib import Path

from plextuner.buckets.models import Device
from plextuner.epg.kept import Kept, KeptList
from plextuner.epg.model import Programme
from plextuner.epg.writer import Placeholders
from plextuner.errors import StateError
from plextuner.fileio import encode_json, read_json, write_json

FILE = ".fingerprints.json"


def source_stamp(path: Path) -> str:
    """A parsed source file's identity: a re-downloaded or edited file is another source."""
    try:
        st = path.stat()
    except OSError:
        return f"{path}:gone"
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def guide_fingerprint(
    device: Device,
    programmes: Mapping[str, Sequence[Programme | Kept] | Placeholders],
    channels: bytes,
    context: str,
) -> str:
    """`channels`: the device's `<channel>` elements as written (writer.channels_xml: every
    number, name, tvg-id, logo and icon, already rendered for the write, so a first run does
    not encode them a second time); `context`: the sources' stamps and the guide settings,
    shared by every device."""
    digest = hashlib.blake2b(context.encode(), digest_size=16)
    digest.update(channels)
    uniform = _uniform_placeholders(device, programmes)
    if uniform is not None:  # spelled apart from the spans below: no two encode alike
        digest.update(encode_json(uniform))
        return digest.hexdigest()
    spans: list[tuple[object, ...]] = []
    for i, e in enumerate(device.entries if any(programmes.values()) else ()):
        items = programmes.get(e.number)
        if not items:
            continue
        if isinstance(items, Placeholders):
            first, slots = _slots(items.start, items.end, items.block)
            spans.append((i, "p", items.title, first, slots, items.block))
        elif isinstance(items, KeptList):
            spans.append((i, e.guide_id, len(items), *items.span()))
        else:
            spans.append(
                (i, e.guide_id, len(items), items[0].start, items[-1].start, items[-1].stop)
            )
    digest.update(encode_json(spans))  # one encode (C) instead of a repr per row
    return digest.hexdigest()


_WINDOW = attrgetter("start", "end", "block")
_TITLE = attrgetter("title")


def _uniform_placeholders(
    device: Device, programmes: Mapping[str, Sequence[Programme | Kept] | Placeholders]
) -> tuple[object, ...] | None:
    """A device whose every entry has placeholders of one window (a guide-less lineup's every
    device), as what its spans say: the window's slots and each entry's title, in order; None
    for any other. Read with C-level walks (a span a channel made in Python was 0.7 us of a
    50k lineup's every refresh)."""
    entries = device.entries
    if not entries or len(programmes) != len(entries):
        return None
    items = list(programmes.values())
    if set(map(type, items)) != {Placeholders}:
        return None
    windows = set(map(_WINDOW, items))
    if len(windows) != 1 or list(programmes) != [e.number for e in entries]:
        return None
    ((start, end, block),) = windows
    first, slots = _slots(start, end, block)
    return ("placeholders", first, slots, block, list(map(_TITLE, items)))


def _slots(start: float, end: float, block: float) -> tuple[float, float]:
    """The first slot placeholders fill and how many: `end` moves with the clock, and only the
    slot count it gives matters."""
    first = start - start % block
    return first, 0 if end <= first else -(-(end - first) // block)


def load(guides: Path) -> dict[str, str]:
    """The fingerprints of the guides on disk; empty when unknown (then everything is written)."""
    with contextlib.suppress(StateError):
        raw = read_json(guides / FILE)
        if isinstance(raw, dict):
            return {str(k): v for k, v in raw.items() if isinstance(v, str)}
    return {}


def save(guides: Path, fingerprints: dict[str, str]) -> None:
    write_json(guides / FILE, fingerprints)
