"""Stable GuideNumbers: a channel keeps its number across refreshes, reorders and restarts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import msgspec

from plextuner.fileio import encode_json, read_json_as, write_atomic, write_json
from plextuner.ingest.models import Channel

FORGET_AFTER = 30 * 86400.0  # a number unused this long may be reused


def _pair(value: object) -> bool:
    """[number, last_seen] as written by save(); anything else in a hand-edited file is dropped."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and 0 < value[0] < 10**6
    )


class _NumbersFile(msgspec.Struct):
    """What save() writes, as one type: 34k pairs checked one by one in Python took 40 ms."""

    buckets: dict[str, dict[str, tuple[Annotated[float, msgspec.Meta(gt=0, lt=10**6)], float]]] = {}


class NumberMap:
    """`{bucket: {channel_key: (number, last_seen)}}`, persisted in the data dir. Pairs, not
    lists: the file decodes straight into them (building a list a channel was 9 ms of 50k)."""

    def __init__(self, data: dict[str, dict[str, tuple[float, float]]] | None = None) -> None:
        self._map: dict[str, dict[str, tuple[float, float]]] = data or {}
        self._sealed: bytes | None = None  # what `save` writes, once `seal`ed

    @classmethod
    def load(cls, path: Path) -> NumberMap:
        raw = read_json_as(path, _NumbersFile)
        if isinstance(raw, _NumbersFile):  # as save() wrote it: checked whole, in C
            return cls(raw.buckets)
        data: dict[str, dict[str, tuple[float, float]]] = {}
        buckets = raw.get("buckets") if isinstance(raw, dict) else None
        for bucket, entries in buckets.items() if isinstance(buckets, dict) else ():
            if isinstance(entries, dict):
                data[str(bucket)] = {
                    str(k): (float(v[0]), float(v[1])) for k, v in entries.items() if _pair(v)
                }
        return cls(data)

    def save(self, path: Path) -> None:
        if self._sealed is not None:
            write_atomic(path, self._sealed)
        else:
            write_json(path, self._content())

    def seal(self) -> None:
        """The map encoded as `save` writes it, now that the channels are numbered, and its
        pairs freed: held until the refresh publishes, beside a big guide's reading (the
        refresh's peak), a 50k list's were 5.9 MB, ~2 MB as JSON."""
        self._sealed, self._map = encode_json(self._content()), {}

    def _content(self) -> dict[str, object]:
        return {"version": 1, "buckets": self._map}

    def assign(
        self,
        bucket_channels: dict[str, list[Channel]],
        first_numbers: dict[str, int],
        now: float | None = None,
    ) -> dict[str, dict[str, int]]:
        """Numbers per bucket per channel key; new channels take the lowest free number."""
        if self._sealed is not None:
            raise RuntimeError("a sealed number map assigns no numbers")
        now = time.time() if now is None else now
        self._forget(now)
        used = {int(v[0]) for entries in self._map.values() for v in entries.values()}
        result: dict[str, dict[str, int]] = {}
        for bucket, channels in bucket_channels.items():
            known = self._map.setdefault(bucket, {})
            numbers: dict[str, int] = {}
            new: list[str] = []  # in channel order: they take the free numbers in turn
            get = known.get
            for ch in channels:  # one lookup a channel (50k of them each refresh)
                key = ch.key
                pair = get(key)
                if pair is None:
                    new.append(key)
                else:
                    known[key] = (pair[0], now)
                    numbers[key] = int(pair[0])
            candidate = first_numbers[bucket]
            for key in new:
                if key in numbers:  # listed twice
                    continue
                while candidate in used:
                    candidate += 1
                used.add(candidate)
                known[key] = (float(candidate), now)
                numbers[key] = candidate
            result[bucket] = numbers
        return result

    def _forget(self, now: float) -> None:
        for entries in self._map.values():
            for key in [k for k, v in entries.items() if now - v[1] > FORGET_AFTER]:
                del entries[key]
