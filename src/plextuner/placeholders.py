"""Placeholder programmes kept in a device guide as a note, rendered when the guide is read.

A 50k-channel list without a guide source is ~75 placeholder slots a channel: 520 MB of device
guides written and flushed to disk at each refresh that changed them (0.3-0.4 s of a 1 s
refresh, and the disk's wear), though every byte follows from a channel id, a title and the
window. For a guide with many of them (NOTE_FROM slots or more) the writer leaves instead one
XML comment before `</tv>` naming them (`note`), and the
readers (state/aggregate.py for the HTTP answers, the console's now/next) render the slots as
the writer used to write them, byte for byte (a test holds them equal). An XML parser reading
the file as it lies skips the comment: it is a valid guide, only without the placeholders.

The note: `<!--plextuner-placeholders ` + base64 of msgspec JSON `[[start, end, block,
[[channel id, title], ...]], ...]` + a space, the comment's own length in 12 digits, `-->`.
Base64 so no title can end the comment (`--`); the length last, so a reader finds where the
note starts from the file's last bytes without reading the programmes before it.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import msgspec

from plextuner.xmlescape import xml_attr, xml_text

MARK = b"<!--plextuner-placeholders "
_END = b"-->"
_DIGITS = 12
TRAILER = 1 + _DIGITS + len(_END)  # " <length>-->"
CHUNK_CHANNELS = 64  # rendered and sent a few hundred KB at a time
# Placeholder slots a guide must hold to be noted rather than written: a device of 479
# channels without a guide is ~36k (4.9 MB written); one of a hundred, ~1 MB, is written.
NOTE_FROM = 10_000
MAX_NOTE = 16 * 1024 * 1024  # ~100 bytes a channel: 160k channels in one device guide
MAX_SLOTS = 100_000  # a window's slots a note may name (a bound on a damaged file's rendering)

Key = tuple[float, float, float]  # the window's start and end, the slot length
FillPart = list[tuple["SlotTemplate", bytes]]  # channels' slots and tails, rendered together
_Note = list[tuple[float, float, float, list[tuple[str, str]]]]


@functools.lru_cache(maxsize=8192)  # programmes share slot times across channels
def fmt_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y%m%d%H%M%S +0000")


def steps(first: float, end: float, step: float) -> Iterable[float]:
    t = first
    while t < end:
        yield t
        t += step


class SlotTemplate:
    """The placeholder slots of one window, pre-rendered up to the channel attribute."""

    def __init__(self, start: float, end: float, block: float) -> None:
        self.block = block
        self.times = list(steps(start - start % block, end, block))
        self.heads = [
            f'<programme start="{fmt_time(t)}" stop="{fmt_time(t + block)}" channel='.encode()
            for t in self.times
        ]
        self._slots = [*self.heads, b""]  # joined, each head followed by the channel's tail
        self.head_bytes = sum(map(len, self.heads))

    @staticmethod
    def tail(channel: str, title: str) -> bytes:
        shown = xml_text(title or "Untitled")
        return f"{xml_attr(channel)}><title>{shown}</title></programme>".encode()

    def render(self, tail: bytes) -> bytes:
        """A channel's slots (`tail`: its `tail`): bytes joined once, not text encoded and the
        tail added afterwards (each a copy of almost the whole guide: ~10 ms of a 50k-channel
        list's first write, when they were written)."""
        return tail.join(self._slots)

    def size(self, tail: bytes) -> int:
        return self.head_bytes + len(self.heads) * len(tail)


@functools.lru_cache(maxsize=64)
def template(start: float, end: float, block: float) -> SlotTemplate:
    return SlotTemplate(start, end, block)


class Collected:
    """The placeholder channels of one guide being written, by window, in writing order."""

    def __init__(self) -> None:
        self._groups: dict[Key, list[tuple[str, str]]] = {}

    def add(self, key: Key, channel: str, title: str) -> int:
        """Noted; returns the slots it stands for."""
        self._groups.setdefault(key, []).append((channel, title))
        return len(template(*key).heads)

    def note(self) -> bytes:
        """What goes before `</tv>`: the note, or the programmes themselves, rendered, when
        they are few (under NOTE_FROM slots: a small guide stays whole on disk, for whatever
        reads the file itself) or too many for a note (over MAX_NOTE, which readers do not
        take for one). Empty when no channel has placeholders."""
        if not self._groups:
            return b""
        data: _Note = [(*key, pairs) for key, pairs in self._groups.items()]
        slots = sum(len(template(*key).heads) * len(pairs) for key, pairs in self._groups.items())
        if slots >= NOTE_FROM:
            body = MARK + base64.b64encode(msgspec.json.encode(data)) + b" "
            length = len(body) + _DIGITS + len(_END)
            if length <= MAX_NOTE:
                return body + f"{length:0{_DIGITS}d}".encode() + _END
        return b"".join(render(part) for _, part in Fill(data).chunks())


class Fill:
    """A guide's placeholder programmes, as its note names them."""

    def __init__(self, note: _Note) -> None:
        self.groups = [(template(start, end, block), pairs) for start, end, block, pairs in note]

    @classmethod
    def parse(cls, comment: bytes) -> Fill | None:
        """From the note's bytes (`note`); None when they are not one."""
        if not comment.startswith(MARK) or not comment.endswith(_END):
            return None
        encoded = comment[len(MARK) : -TRAILER]
        try:
            note = msgspec.json.decode(base64.b64decode(encoded, validate=True), type=_Note)
        except (binascii.Error, ValueError, msgspec.DecodeError):
            return None
        if any(block <= 0 or end - start > MAX_SLOTS * block for start, end, block, _ in note):
            return None  # not a window our writer would note (and a bound on the rendering)
        try:
            return cls(note)
        except (ValueError, OverflowError, OSError):  # times no calendar holds
            return None

    def chunks(self) -> Iterator[tuple[int, FillPart]]:
        """(size, channels) a few dozen channels at a time: what `render` makes of them."""
        for slots, pairs in self.groups:
            for i in range(0, len(pairs), CHUNK_CHANNELS):
                part = [(slots, slots.tail(c, t)) for c, t in pairs[i : i + CHUNK_CHANNELS]]
                yield sum(s.size(tail) for s, tail in part), part

    def slots(self) -> Iterator[tuple[str, list[tuple[float, float, str]]]]:
        """Per channel id, its (start, stop, title) slots."""
        for slots, pairs in self.groups:
            for channel, title in pairs:
                shown = title or "Untitled"
                yield channel, [(t, t + slots.block, shown) for t in slots.times]


def render(part: FillPart) -> bytes:
    return b"".join([slots.render(tail) for slots, tail in part])


def note_at(tail: bytes, size: int) -> int | None:
    """Where the note starts, from the file's last bytes (`tail`, ending at `size`, the
    closing tag stripped by the caller); None when the file has none."""
    if not tail.endswith(_END) or len(tail) < TRAILER:
        return None
    digits = tail[-TRAILER + 1 : -len(_END)]
    if not digits.isdigit() or tail[-TRAILER] != ord(" "):
        return None
    length = int(digits)
    if length > MAX_NOTE:  # read whole by each answer: a damaged trailer must not claim a file
        return None
    start = size - length
    return start if start >= 0 else None
