"""Now and next from a device's guide.xml, indexed once per file version (in a thread)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from plextuner.state.aggregate import guide_fill


@dataclass(slots=True)
class _Guide:
    mtime: float = -1.0
    built_at: float = 0.0
    slots: dict[str, list[tuple[float, float, str]]] = field(default_factory=dict)


_CACHE: dict[Path, _Guide] = {}
REBUILD_AFTER = 600.0  # "now" moves: a cached index older than this is rebuilt


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _build(path: Path, now: float) -> dict[str, list[tuple[float, float, str]]]:
    """Per channel id, the programme on now and the next one (our own files: +0000 times)."""
    slots: dict[str, list[tuple[float, float, str]]] = {}
    for _, el in etree.iterparse(
        str(path), tag="programme", resolve_entities=False, no_network=True
    ):
        start, stop = _epoch(el.get("start")), _epoch(el.get("stop"))
        cid = el.get("channel") or ""
        if start is not None and stop is not None and stop > now:
            mine = slots.setdefault(cid, [])
            if len(mine) < 2:
                mine.append((start, stop, el.findtext("title") or ""))
        el.clear(keep_tail=False)
        while el.getprevious() is not None:
            del el.getparent()[0]
    filled = guide_fill(path)  # the placeholders, noted rather than written (placeholders.py)
    for cid, times in filled.slots() if filled is not None else ():
        slots[cid] = [t for t in times if t[1] > now][:2]
    return slots


def now_next(path: Path, channel_id: str) -> list[tuple[float, float, str]]:
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return []
    now = time.time()
    cached = _CACHE.get(path)
    if cached is None or cached.mtime != mtime or now - cached.built_at > REBUILD_AFTER:
        try:
            slots = _build(path, now)
        except (etree.XMLSyntaxError, OSError):  # replaced or removed meanwhile
            slots = {}
        cached = _CACHE[path] = _Guide(mtime, now, slots)
    return cached.slots.get(channel_id, [])
