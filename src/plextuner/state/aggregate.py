"""`/epg.xml`: every device guide as one XMLTV document, assembled when it is asked for.

Writing it as a file of its own copied every device guide once more at each refresh that changed
one (366 MB for a 50k-channel placeholder guide: 0.2 s of copying and, worse, as much again to
flush to disk before the refresh could finish). Now the answer is a list of pieces: a head,
each device guide's channel section, each one's programme section, the end tag, in the order
the XMLTV DTD wants (every channel before the first programme). The sections are byte ranges
of the device guide files, sent by the kernel (`sendfile`) from descriptors opened when the
request came: a device guide replaced by a refresh meanwhile does not mix two versions into one
answer. Channel ids are unique across devices (built from GuideNumbers), so nothing collides.

A device guide of another shape (not written by epg/writer.py) is re-parsed and its
elements serialised; that costs what it costs, and only for such a file.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from plextuner import placeholders as fill
from plextuner.errors import StateError
from plextuner.placeholders import FillPart

HEAD = b"<?xml version='1.0' encoding='utf-8'?>\n<tv generator-info-name=\"plextuner\">"
TAIL = b"</tv>"
_HEAD_LIMIT = 4096
_CACHE_LIMIT = 4096
READ_CHUNK = 1 << 20  # what `chunks` reads of a file at a time


@dataclass(frozen=True, slots=True)
class Piece:
    """Bytes `lo..hi` of an open file, or `data` itself when `file` is None, or (`fill`)
    placeholder programmes rendered when they are sent (placeholders.py), `hi` bytes of them."""

    file: BinaryIO | None
    lo: int
    hi: int
    data: bytes = b""
    fill: FillPart | None = None

    @property
    def size(self) -> int:
        return self.hi - self.lo


@dataclass(slots=True)
class Aggregate:
    pieces: list[Piece]
    etag: str  # changes whenever any device guide is replaced
    mtime: float  # the newest device guide's
    files: list[BinaryIO] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(p.size for p in self.pieces)

    def span(self, start: int, count: int) -> Iterator[Piece]:
        """The pieces of bytes `start..start+count` of the document."""
        at, end = 0, start + count
        for piece in self.pieces:
            lo, hi = max(start, at), min(end, at + piece.size)
            if lo < hi:
                skip, take = lo - at, hi - lo
                if piece.fill is not None:
                    data = fill.render(piece.fill)
                    yield Piece(
                        None, 0, take, data[skip : skip + take] if take < len(data) else data
                    )
                elif piece.file is None:
                    yield Piece(None, 0, take, piece.data[skip : skip + take])
                else:
                    yield Piece(piece.file, piece.lo + skip, piece.lo + skip + take)
            at += piece.size
            if at >= end:
                return

    def close(self) -> None:
        for fh in self.files:
            fh.close()
        self.files.clear()


# A guide's sections: where its channels and programmes start, its body ends, its placeholder
# note starts (-1: none); see `_sections`
_Spans = tuple[int, int, int, int]

# (device, inode, size, mtime) of a guide file → its section offsets: a guide is replaced, never
# changed in place, so a file once measured keeps its offsets. Bounded; reset when full.
_sections_cache: dict[tuple[int, int, int, int], _Spans | None] = {}
_cache_lock = threading.Lock()


def open_aggregate(paths: Sequence[Path]) -> Aggregate | None:
    """The document over the device guides at `paths` (missing ones skipped), or None when not
    one exists. Blocking (opens and may read files): call it from a thread. The caller closes
    the result."""
    files: list[BinaryIO] = []
    channels: list[Piece] = []
    programmes: list[Piece] = []
    digest = hashlib.blake2b(digest_size=12)
    mtime = 0.0
    try:
        for path in paths:
            try:
                fh: BinaryIO = path.open("rb")
            except (FileNotFoundError, IsADirectoryError):
                continue
            files.append(fh)
            identity, modified, spans = _opened(fh)
            digest.update(repr(identity).encode())
            mtime = max(mtime, modified)
            if spans is None:
                channel_bytes, programme_bytes = _reserialised(fh)
                channels.append(_literal(channel_bytes))
                programmes.append(_literal(programme_bytes))
                continue
            body, first, end, note = spans
            channels.append(Piece(fh, body, first))
            found = _noted(fh, spans)
            programmes.append(Piece(fh, first, end if found is None else note))
            programmes += _rendered(found) if found is not None else ()
    except BaseException:
        for opened in files:
            opened.close()
        raise
    if not files:
        return None
    pieces = [_literal(HEAD), *channels, *programmes, _literal(TAIL)]
    return Aggregate(
        pieces=[p for p in pieces if p.size], etag=digest.hexdigest(), mtime=mtime, files=files
    )


def open_guide(path: Path) -> Aggregate | None:
    """One device guide as served: the file, its placeholders rendered (placeholders.py); None
    when it does not exist. Blocking: call it from a thread. The caller closes the result."""
    try:
        fh: BinaryIO = path.open("rb")
    except (FileNotFoundError, IsADirectoryError):
        return None
    try:
        identity, mtime, spans = _opened(fh)
        etag = hashlib.blake2b(repr(identity).encode(), digest_size=12).hexdigest()
        found = None if spans is None else _noted(fh, spans)
        if spans is None or found is None:
            pieces = [Piece(fh, 0, identity[2])]
        else:
            fh.seek(spans[2])
            pieces = [Piece(fh, 0, spans[3]), *_rendered(found), _literal(fh.read())]
    except BaseException:
        fh.close()
        raise
    return Aggregate(pieces=[p for p in pieces if p.size], etag=etag, mtime=mtime, files=[fh])


def read_guide(path: Path) -> bytes:
    """A device guide as served, whole (tests: a big guide is hundreds of MB; `chunks` streams)."""
    agg = open_guide(path)
    if agg is None:
        raise FileNotFoundError(path)
    try:
        return b"".join(chunks(agg))
    finally:
        agg.close()


def chunks(agg: Aggregate, size: int = READ_CHUNK) -> Iterator[bytes]:
    """The document's bytes in order, none longer than `size` from a file (a rendered piece of
    placeholders comes whole: ~600 KB, placeholders.CHUNK_CHANNELS channels). Blocking."""
    for piece in agg.span(0, agg.size):
        if piece.file is None:
            yield piece.data
            continue
        at = piece.lo
        piece.file.seek(at)
        while at < piece.hi:
            data = piece.file.read(min(size, piece.hi - at))
            if not data:  # shrunk under us: never by us (a guide is replaced, not rewritten)
                raise StateError(f"{piece.file.name}: ended at byte {at} of {piece.hi}")
            yield data
            at += len(data)


def guide_fill(path: Path) -> fill.Fill | None:
    """The placeholders a device guide's note names (placeholders.py), or None. Blocking."""
    with path.open("rb") as fh:
        _, _, spans = _opened(fh)
        return None if spans is None else _noted(fh, spans)


def _opened(fh: BinaryIO) -> tuple[tuple[int, int, int, int], float, _Spans | None]:
    """An open guide's identity (device, inode, size, mtime), its mtime and its sections."""
    st = os.fstat(fh.fileno())
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    return identity, st.st_mtime, _cached_sections(fh, identity)


def _noted(fh: BinaryIO, spans: _Spans) -> fill.Fill | None:
    """The placeholders the guide's note names, or None (no note, or not one)."""
    _, _, end, note = spans
    if note < 0:
        return None
    fh.seek(note)
    return fill.Fill.parse(fh.read(end - note))


def _rendered(found: fill.Fill) -> list[Piece]:
    """Its pieces, rendered when sent."""
    return [Piece(None, 0, size, fill=part) for size, part in found.chunks()]


def _literal(data: bytes) -> Piece:
    return Piece(None, 0, len(data), data)


def _cached_sections(fh: BinaryIO, identity: tuple[int, int, int, int]) -> _Spans | None:
    with _cache_lock:
        if identity in _sections_cache:
            return _sections_cache[identity]
    spans = _sections(fh, identity[2])
    with _cache_lock:
        if len(_sections_cache) >= _CACHE_LIMIT:
            _sections_cache.clear()
        _sections_cache[identity] = spans
    return spans


def _sections(fh: BinaryIO, size: int) -> _Spans | None:
    """Byte offsets (channels start, programmes start, body end, placeholder note start or -1)
    of a guide our writer wrote, or None for a file of another shape."""
    fh.seek(0)
    head = fh.read(_HEAD_LIMIT)
    if not head.startswith(b"<?xml") or b"<tv" not in head:
        return None
    body = head.index(b">", head.index(b"<tv")) + 1
    fh.seek(max(0, size - 64))
    tail = fh.read()
    if not tail.rstrip().endswith(TAIL):
        return None
    cut = tail.rindex(TAIL)
    end = size - len(tail) + cut
    note = fill.note_at(tail[:cut], end)
    note = -1 if note is None or note < body else note
    first = _find(fh, b"<programme ", body, end if note < 0 else note)
    return body, (first if first >= 0 else end if note < 0 else note), end, note


def _find(fh: BinaryIO, needle: bytes, lo: int, hi: int) -> int:
    fh.seek(lo)
    pos, carry = lo, b""
    while pos < hi:
        chunk = carry + fh.read(min(1 << 20, hi - pos))
        at = chunk.find(needle)
        if at >= 0:
            return pos - len(carry) + at
        pos += len(chunk) - len(carry)
        carry = chunk[-len(needle) :]
    return -1


def _reserialised(fh: BinaryIO) -> tuple[bytes, bytes]:
    """(channels, programmes) of a guide of another shape, each element serialised again."""
    out: dict[str, list[bytes]] = {"channel": [], "programme": []}
    fh.seek(0)
    parser = etree.iterparse(
        fh, events=("end",), tag=("channel", "programme"), resolve_entities=False,
        no_network=True, huge_tree=False,
    )  # fmt: skip
    try:
        for _, element in parser:
            out[element.tag].append(etree.tostring(element, encoding="utf-8", with_tail=False))
            element.clear(keep_tail=False)
            while element.getprevious() is not None:
                del element.getparent()[0]
    except etree.XMLSyntaxError:
        pass  # what parsed before the error is served; the rest of a broken file is not
    return b"".join(out["channel"]), b"".join(out["programme"])
