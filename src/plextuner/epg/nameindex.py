"""The guide channels' names indexed for matching (see match.py).

Four indexes over the keys of every guide channel's display-names and of its id read as a name:
by the id's key, by the compact and by the loose name (after an alias's canonical spelling), and
the postings fuzzy matching proposes candidates by (a word and a signature). Guide channels are
indexed at the first lookup after they came, in the order they came.

Told what the channels still to match will look up (`expect`), the indexes hold only that: every
guide key under each of those names and words, and nothing under any other. A big guide is
mostly channels nobody asks for by name (50k guide channels, 10k lineup channels without an exact
tvg-id: 82 -> ~10 MB). A lookup outside it builds the whole indexes first, so an answer never
depends on what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

import msgspec

from plextuner.epg.names import NameKey, guide_keys

PostingKey = tuple[tuple[tuple[str, ...], int], str]
# The indexes hold one value as itself and more as a list: most names and words of a big guide
# lead to one guide channel, and a list each was ~90 bytes a key in four indexes (50k guide
# channels: 118 -> 86 MB)
_Ids = str | list[str]
_Posting = int | list[int]
_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(slots=True)
class Guide:
    """A guide channel as the matcher keeps it."""

    id: str
    name: str
    country: str | None  # the id's; the names' too once indexed
    lang: str
    lcn: str
    source: int
    names: Sequence[str] = ()


_Row = tuple[str, str, str | None, str, str, int, tuple[str, ...]]


def pack_guides(guides: Iterable[Guide]) -> bytes:
    """Guide channels as msgpack rows: ~50 bytes a channel against ~280 as objects."""
    return msgspec.msgpack.encode(
        [(g.id, g.name, g.country, g.lang, g.lcn, g.source, tuple(g.names)) for g in guides]
    )


def unpack_guides(blob: bytes) -> list[Guide]:
    """`pack_guides`'s channels, equal to those packed, in their order."""
    return [Guide(*row) for row in msgspec.msgpack.decode(blob, type=list[_Row])]


class Table(Enum):
    ID = "id"
    COMPACT = "compact"
    LOOSE = "loose"


@dataclass(slots=True)
class Wanted:
    """What lineup channels will look up, each name in its canonical spelling."""

    ids: set[str] = field(default_factory=set)
    compacts: set[str] = field(default_factory=set)
    loose: set[str] = field(default_factory=set)
    postings: set[PostingKey] = field(default_factory=set)

    def within(self, other: Wanted) -> bool:
        return (
            self.ids <= other.ids
            and self.compacts <= other.compacts
            and self.loose <= other.loose
            and self.postings <= other.postings
        )

    def names(self, table: Table) -> set[str]:
        return (
            self.ids
            if table is Table.ID
            else self.compacts
            if table is Table.COMPACT
            else self.loose
        )


class NameIndex:
    def __init__(self, alias: dict[str, str], guides: Mapping[str, Guide]) -> None:
        self._alias = alias  # a spelling -> its group's canonical compact name
        self._guides = guides  # every guide channel added, in order: the matcher's
        self.wanted: Wanted | None = None  # None: everything
        self.by_idkey: dict[str, _Ids] = {}
        self.by_compact: dict[str, _Ids] = {}
        self.by_loose: dict[str, _Ids] = {}
        # (signature, token) -> guide keys: fuzzy candidates share a word and a signature
        self.postings: dict[PostingKey, _Posting] = {}
        self.keys: list[NameKey] = []  # the guide keys, numbered as the postings give them
        self.key_ids: list[str] = []  # each key's guide channel
        self.compacts: list[str] = []  # each key's compact form: the fuzzy scorer's choices
        self.key_country: list[str | None] = []  # each key's guide channel's country
        # Guide channels added and not yet indexed: a lineup whose channels all find their
        # exact tvg-id (a provider's own guide) never needs them, and for 6,000 guide channels
        # they were 25 MB beside the guide's programmes.
        self.pending: list[Guide] = []
        self._built = False  # some guide channels are in the indexes
        # (emptied in place by `release`: these stay the indexes)
        self._tables = {
            Table.ID: self.by_idkey,
            Table.COMPACT: self.by_compact,
            Table.LOOSE: self.by_loose,
        }

    def expect(self, wanted: Wanted | None) -> None:
        """From now on index only what `wanted` names (None: everything). Indexes built for
        more keep serving (each of its names has every guide key it had); built for other
        names, they go."""
        have = self.wanted
        if self._built:
            if have is None:
                return  # whole: covers anything
            if wanted is None or not wanted.within(have):
                self.release()
        self.wanted = wanted

    def lookup(self, table: Table, name: str) -> Sequence[str]:
        """The guide channels with a key of `name` in `table`."""
        if self.wanted is not None and name not in self.wanted.names(table):
            self._widen()
        if self.pending:
            self.build()
        return ids(self._tables[table], name)

    def postings_of(
        self, signature: tuple[tuple[str, ...], int], tokens: Sequence[str]
    ) -> list[_Posting]:
        """The keys posted under each of `tokens` with `signature`: numbered as `keys` are."""
        # Loops, not generators: this runs for every channel the exact tiers leave
        wanted = self.wanted
        if wanted is not None:
            for t in tokens:
                if (signature, t) not in wanted.postings:
                    self._widen()
                    break
        if self.pending:
            self.build()
        found = []
        get = self.postings.get
        for t in tokens:
            posting = get((signature, t))
            if posting is not None:
                found.append(posting)
        return found

    def _widen(self) -> None:
        self.wanted = None
        self.release()

    def build(self) -> None:
        """The indexes of the guide channels added since the last call, in their order."""
        pending, self.pending = self.pending, []
        self._built = self._built or bool(pending)
        wanted = None if self.wanted is None else self.wanted.ids
        for g in pending:
            keys, from_id = guide_keys(g.names, g.id)
            g.country = g.country or next((k.country for k in keys if k.country), None)
            if from_id:
                keys.append(from_id)
                if wanted is None or from_id.compact in wanted:
                    _add(self.by_idkey, from_id.compact, g.id)
            self._index_keys(g, keys)

    def release(self) -> None:
        """The indexes dropped; every guide channel indexed again, in order, at the next lookup."""
        for index in (self.by_idkey, self.by_compact, self.by_loose, self.postings):
            index.clear()
        self.keys, self.key_ids, self.compacts, self.key_country = [], [], [], []
        self.pending = list(self._guides.values())
        self._built = False
        self.wanted = None  # the next expect tells what to index again

    def _index_keys(self, g: Guide, keys: list[NameKey]) -> None:
        # Attributes bound once: this runs for every key of every guide channel (50k for 25k)
        seen: set[tuple[str, str | None]] = set()
        canon, gid = self._alias.get, g.id
        by_compact, by_loose, postings = self.by_compact, self.by_loose, self.postings
        wanted = self.wanted
        for k in keys:
            compact = k.compact
            if (compact, k.country) in seen:
                continue  # the same name twice (display-name and id): indexed once
            seen.add((compact, k.country))
            name = canon(compact, compact)
            if wanted is None or name in wanted.compacts:
                _add(by_compact, name, gid)
            if k.loose:
                name = canon(k.loose, k.loose)
                if wanted is None or name in wanted.loose:
                    _add(by_loose, name, gid)
            signature = k.signature
            tokens = (
                k.content
                if wanted is None
                else [t for t in k.content if (signature, t) in wanted.postings]
            )
            if not tokens:
                continue  # no posting leads to it: numbered for nothing
            index = len(self.keys)
            self.keys.append(k)
            self.key_ids.append(gid)
            self.compacts.append(compact)
            self.key_country.append(g.country)
            for token in tokens:
                _add(postings, (signature, token), index)


def _add(index: dict[_K, _V | list[_V]], key: _K, value: _V) -> None:
    """`value` under `key`, unless it was the last one added there."""
    have = index.get(key)
    if have is None:
        index[key] = value
    elif isinstance(have, list):
        if have[-1] != value:
            have.append(value)
    elif have != value:
        index[key] = [have, value]


def ids(index: dict[str, _Ids], key: str) -> Sequence[str]:
    have = index.get(key)
    return () if have is None else (have,) if isinstance(have, str) else have
