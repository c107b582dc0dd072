"""guide.xml per device, written incrementally (lxml xmlfile) and atomically."""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from plextuner.buckets.models import Device, channel_id
from plextuner.epg.xmltv import Programme
from plextuner.fileio import fsync_dir


@functools.lru_cache(maxsize=8192)  # programmes share slot times across channels
def fmt_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y%m%d%H%M%S +0000")


def placeholders(name: str, start: float, end: float, block: float) -> list[Programme]:
    first = start - start % block
    return [
        Programme(channel="", start=t, stop=t + block, title=name)
        for t in _steps(first, end, block)
    ]


def _steps(first: float, end: float, step: float) -> Iterable[float]:
    t = first
    while t < end:
        yield t
        t += step


def _programme(xf: etree._IncrementalFileWriter, number: str, p: Programme, stop: float) -> None:
    attrs = {"start": fmt_time(p.start), "stop": fmt_time(stop), "channel": number}
    el = etree.Element("programme", attrs)
    etree.SubElement(el, "title").text = p.title or "Untitled"
    if p.sub_title:
        etree.SubElement(el, "sub-title").text = p.sub_title
    if p.desc:
        etree.SubElement(el, "desc").text = p.desc
    if p.date:
        etree.SubElement(el, "date").text = p.date
    for cat in p.categories:
        etree.SubElement(el, "category").text = cat
    if p.icon:
        etree.SubElement(el, "icon", {"src": p.icon})
    for system, value in p.episode_nums:
        etree.SubElement(el, "episode-num", {"system": system}).text = value
    if p.previously_shown:
        etree.SubElement(el, "previously-shown")
    if p.new:
        etree.SubElement(el, "new")
    xf.write(el)


@contextlib.contextmanager
def _atomic_tv(path: Path, attrs: dict[str, str]) -> Iterator[etree._IncrementalFileWriter]:
    """An XMLTV `<tv>` written incrementally to a temp file, fsynced and renamed over `path`
    only when the body finished (a crash or an error leaves the old file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            with etree.xmlfile(fh, encoding="utf-8") as xf:
                xf.write_declaration()
                with xf.element("tv", attrs):
                    yield xf
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_guide(
    path: Path,
    device: Device,
    programmes: dict[str, list[Programme]],
    icons: dict[str, str],
    generated: float | None = None,
    id_style: str = "xmltv",
) -> int:
    """Write `path` atomically; returns the programme count."""
    count = 0
    attrs = {"generator-info-name": "plextuner", "date": fmt_time(generated or time.time())}
    with _atomic_tv(path, attrs) as xf:
        for e in device.entries:
            ch = etree.Element("channel", {"id": channel_id(e.number, id_style)})
            for name in dict.fromkeys(n for n in (e.channel.name, e.number, e.channel.tvg_id) if n):
                etree.SubElement(ch, "display-name").text = name
            icon = e.channel.logo or icons.get(e.number, "")
            if icon:
                etree.SubElement(ch, "icon", {"src": icon})
            xf.write(ch)
        for e in device.entries:
            items = programmes.get(e.number, [])
            for i, p in enumerate(items):
                stop = p.stop or (items[i + 1].start if i + 1 < len(items) else p.start + 3600)
                if stop <= p.start:
                    continue
                _programme(xf, channel_id(e.number, id_style), p, stop)
                count += 1
    return count


def write_aggregate(path: Path, sources: list[Path]) -> int:
    """Every device guide in one XMLTV file, channels first (as the DTD orders them), written
    atomically; returns the programme count. Channel ids are unique across devices (they are
    built from GuideNumbers), so nothing collides."""
    existing = [p for p in sources if p.is_file()]
    count = 0
    with _atomic_tv(path, {"generator-info-name": "plextuner"}) as xf:
        for tag in ("channel", "programme"):
            for source in existing:
                for element in _elements(source, tag):
                    xf.write(element)
                    count += tag == "programme"
    return count


def _elements(path: Path, tag: str) -> Iterable[etree._Element]:
    """Our own guide file's `tag` elements, one at a time (memory stays flat)."""
    for _, element in etree.iterparse(str(path), tag=tag, resolve_entities=False, no_network=True):
        yield element
        element.clear(keep_tail=False)
        while element.getprevious() is not None:
            del element.getparent()[0]
