"""The guide channels' names indexed for matching (see match.py).

Four indexes over the keys of every guide channel's display-names and of its id read as a name:
by the id's key, by the compact and by the loose name (after an alias's canonical spelling), and
the postings fuzzy matching proposes candidates by (a word and a signature). Guide channels are
indexed at the first lookup after they came, in the order they came.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from plextuner.epg.names import NameKey, id_key, name_key

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


class NameIndex:
    def __init__(self, alias: dict[str, str]) -> None:
        self._alias = alias  # a spelling -> its group's canonical compact name
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

    def build(self) -> None:
        """The indexes of the guide channels added since the last call, in their order."""
        pending, self.pending = self.pending, []
        for g in pending:
            keys = [k for n in g.names if (k := name_key(n))]
            g.country = g.country or next((k.country for k in keys if k.country), None)
            from_id = id_key(g.id)
            if from_id:
                keys.append(from_id)
                _add(self.by_idkey, from_id.compact, g.id)
            self._index_keys(g, keys)

    def release(self, guides: Iterable[Guide]) -> None:
        """The indexes dropped; `guides` indexed again, in order, at the next lookup."""
        for index in (self.by_idkey, self.by_compact, self.by_loose, self.postings):
            index.clear()
        self.keys, self.key_ids, self.compacts, self.key_country = [], [], [], []
        self.pending = list(guides)

    def _index_keys(self, g: Guide, keys: list[NameKey]) -> None:
        # Attributes bound once: this runs for every key of every guide channel (50k for 25k)
        seen: set[tuple[str, str | None]] = set()
        canon, gid = self._alias.get, g.id
        by_compact, by_loose, postings = self.by_compact, self.by_loose, self.postings
        for k in keys:
            compact = k.compact
            if (compact, k.country) in seen:
                continue  # the same name twice (display-name and id): indexed once
            seen.add((compact, k.country))
            _add(by_compact, canon(compact, compact), gid)
            if k.loose:
                _add(by_loose, canon(k.loose, k.loose), gid)
            index = len(self.keys)
            self.keys.append(k)
            self.key_ids.append(gid)
            self.compacts.append(compact)
            self.key_country.append(g.country)
            signature = k.signature
            for token in k.content:
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
