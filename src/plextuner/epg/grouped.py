"""A device's spilled bodies read a group of channels at a time, in file order."""

from __future__ import annotations

from collections.abc import Sequence

from plextuner.epg.kept import KeptList
from plextuner.epg.spill import Spill


class GroupedReader:
    """The bodies of a device's spilled channels, read a group of channels at a time in file
    order (`Spill.read_runs`), handed out a channel at a time in the writer's order.

    A guide spelled time by time (every channel's programme at 20:00, then at 20:15...) spills
    them so: one channel's bodies lie ~500 KB apart in a lean 300 MB guide. Read a channel at a
    time, each body mapped the kernel's whole 64 KB window around it, 18 MB resident for one
    channel, in the reader and again in the writing helper, until the next hand-back; and the
    next channels faulted the same windows again after it. In file order, a group of channels
    faults each window once and hands it back as the read moves past it."""

    GROUP_BODIES = 8192  # bodies read together (~0.8 MB of titles, ~4 MB of long descriptions)

    def __init__(self, spill: Spill, lists: Sequence[KeptList]) -> None:
        self._spill = spill
        self._lists = lists  # the device's spilled channels, in the order they are written
        self._next = 0  # the first list not read yet
        self._ready: dict[int, list[bytes]] = {}  # by id() of lists read, not handed out yet

    def bodies(self, items: KeptList) -> list[bytes]:
        """The bodies of `items`, in its order."""
        ready = self._ready.pop(id(items), None)
        if ready is not None:
            return ready
        at = self._next
        if at >= len(self._lists) or self._lists[at] is not items:  # not the order announced
            return self._spill.read_many(items.bodies)
        group: list[KeptList] = []
        count = 0
        while at < len(self._lists) and (not group or count < self.GROUP_BODIES):
            group.append(self._lists[at])
            count += len(self._lists[at])
            at += 1
        self._next = at
        read = self._spill.read_runs([kept.bodies for kept in group])
        self._ready = {id(kept): bodies for kept, bodies in zip(group[1:], read[1:], strict=True)}
        return read[0]
