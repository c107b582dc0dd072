"""Matching lineup channels to guide channels, in tiers, each with a confidence.

Tiers, first hit wins: a manual mapping (`epg.map`) → the exact tvg-id → the tvg-id normalised
(`BBCOne.uk` = `bbc1.uk`) → a display-name (or the guide id read as a name) equal after
normalisation (`UK: BBC One FHD` = `BBC 1`) → the same without filler words → fuzzy token
similarity above `epg.match_threshold`. A wrong guide is worse than none, so every tier refuses
rather than guesses: a candidate of another country than the channel's is never taken, names that
differ in a number, a timeshift or a regional/feed word are different channels, and a tie between
guide channels of one source is left unmatched (with its candidates, for `guide-match`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING

import msgspec

from plextuner.epg.countries import country_of_group
from plextuner.epg.matchresult import CONFIDENCE, UNMATCHED, Candidate, MatchResult, MatchTier
from plextuner.epg.model import GuideChannel
from plextuner.epg.nameindex import Guide, NameIndex, Table, Wanted, pack_guides, unpack_guides
from plextuner.epg.names import NameKey, id_key, name_key, split_id

if TYPE_CHECKING:
    from rapidfuzz import fuzz, process
else:  # loaded at the first fuzzy comparison (~5 ms): a refresh without a guide makes none
    fuzz = process = None


def _rapidfuzz() -> None:
    global fuzz, process  # noqa: PLW0603 - a lazily loaded module, bound once
    from rapidfuzz import fuzz, process


MARGIN = 4.0  # a fuzzy winner must beat the next guide channel by this many points
# The exact name tiers and their tables, bound once: a class attribute's lookup of an enum
# member costs ~80 ns, and the tiers are tried for every channel without an exact tvg-id
_NAME, _NAME_LOOSE, _COMPACT, _LOOSE = (
    MatchTier.NAME,
    MatchTier.NAME_LOOSE,
    Table.COMPACT,
    Table.LOOSE,
)
MAX_POSTING = 200  # a word in more guide names than this ("sport", "news") proposes none
CANDIDATE_LIMIT = 5  # pool entries given the full similarity
CANDIDATE_FLOOR = 40.0  # below this a guide name is not worth showing as a candidate


# A guide channel's fields, and one channel from the next, as `Matcher.fingerprint` reads them:
# characters no XML text holds (the reader drops them: premend.py, mend.py)
_SEP, _REC = "\x1f", "\x1e"
ADDED_BATCH = 4096  # guide channels' fields held before the fingerprint's digest is fed them


class ChannelFacts(msgspec.Struct, frozen=True, gc=False):
    """What the matcher reads of a lineup channel."""

    key: str
    name: str
    tvg_id: str = ""
    tvg_name: str = ""
    groups: tuple[str, ...] = ()
    chno: str = ""

    @property
    def country(self) -> str | None:
        for text in (self.name, self.tvg_name):
            if text and (found := name_key(text).country):
                return found
        for group in self.groups:
            if found := country_of_group(group):
                return found
        return None


def _compatible(country: str | None, other: str | None) -> bool:
    return country is None or other is None or country == other


def _names_of(facts: ChannelFacts) -> tuple[str, ...]:
    """The names a channel is looked up by: its own, and its tvg-name when that differs."""
    name, tvg_name = facts.name, facts.tvg_name.replace("_", " ")
    if tvg_name and tvg_name != name:
        return (name, tvg_name) if name else (tvg_name,)
    return (name,) if name else ()


def similarity(a: NameKey, b: NameKey) -> float:
    """0 to 100; 0 when the names differ in what makes a channel distinct."""
    if a.signature != b.signature:
        return 0.0
    # No credit for one name containing the other: "Nick" and "Nick Jr", "TVA" and "TVA Sports"
    # are sister channels far more often than spellings of one channel; nor for a short word
    # spelled differently ("FX"/"FXX", "Kanal D"/"Kanal 7"): short words are names, not typos.
    sa, sb = frozenset(a.content), frozenset(b.content)
    if sa < sb or sb < sa or any(len(t) < 4 for t in sa ^ sb):
        return 0.0
    if fuzz is None:
        _rapidfuzz()
    return float(max(fuzz.ratio(a.compact, b.compact), fuzz.token_sort_ratio(a.text, b.text)))


class Matcher:
    """An index over the guide channels of every source read so far."""

    FILTER_OVER = 1.0  # `expect` filters when guide channels are more than this many a channel

    def __init__(
        self,
        manual: Mapping[str, str] | None = None,
        aliases: Iterable[Iterable[str]] = (),
        threshold: float = 0.88,
    ) -> None:
        self.manual = {k.casefold(): v for k, v in (manual or {}).items()}
        self.threshold = threshold * 100.0
        self.guides: dict[str, Guide] = {}
        self._icons: dict[str, str] = {}  # by guide id (`icons`)
        self._by_fold: dict[str, str] = {}
        self._fuzzy_cache: dict[tuple[str, str | None], MatchResult] = {}
        self._alias: dict[str, str] = {}
        self._names = NameIndex(self._alias, self.guides)
        self._packed: bytes | None = None  # the guide channels while `release`d
        self._packed_icons: bytes | None = None  # their icons, until the writer asks
        # `expect` keyed the channels to match ahead: their keys are wanted again by `match`
        self.keyed_ahead = False
        for group in aliases:
            keys = [name_key(n).compact for n in group if name_key(n)]
            for k in keys[1:]:
                self._alias[k] = keys[0]
        self.source = 0
        self._added = hashlib.blake2b(digest_size=16)  # every guide channel added, in order
        self._adding: list[str] = []  # (what `_added` is fed next, ADDED_BATCH at a time)
        self._source = "0"  # `source` as the fingerprint reads it

    def fingerprint(self) -> bytes:
        """What an answer depends on besides the channel asked about: the guide channels added
        (in order: an earlier source wins a tie), the manual mapping, the aliases and the
        threshold. Equal fingerprints and equal facts give equal answers (matchcache.py)."""
        self._feed_added()
        digest = self._added.copy()
        digest.update(repr((self.threshold, sorted(self.manual.items()))).encode())
        digest.update(repr(sorted(self._alias.items())).encode())
        return digest.digest()

    def next_source(self) -> None:
        """Channels added from now on rank below those already added."""
        self.source += 1
        self._source = str(self.source)
        self._fuzzy_cache.clear()

    def add(self, channel: GuideChannel) -> None:
        if self._packed is not None:
            self._unpack()
        if channel.id in self.guides:
            return  # an earlier source already described it
        stem, country = split_id(channel.id)
        g = Guide(
            channel.id,
            channel.names[0] if channel.names else stem,
            country,
            channel.lang,
            channel.lcn,
            self.source,
            channel.names,
        )
        self.guides[channel.id] = g
        # Its fields as the fingerprint reads them: joined by a separator no XML text holds
        # (a `repr` of them each, and a digest update each, were a third of this call)
        adding = self._adding
        adding.append(_SEP.join((self._source, channel.id, channel.lang, channel.lcn,
                                 *channel.names)))  # fmt: skip
        if len(adding) >= ADDED_BATCH:
            self._feed_added()
        if channel.icon:
            self._icons[channel.id] = channel.icon
        folded = channel.id.casefold()  # the id itself when already folded: one string fewer
        self._by_fold.setdefault(channel.id if folded == channel.id else folded, channel.id)
        self._names.pending.append(g)
        self._fuzzy_cache.clear()

    def _feed_added(self) -> None:
        """The channels added since, each ended by a record separator (no XML text holds
        one): the same bytes whatever the batches."""
        if self._adding:
            self._added.update(f"{_REC.join(self._adding)}{_REC}".encode())
            self._adding.clear()

    @property
    def icons(self) -> dict[str, str]:
        """Each guide channel's first icon, by its id."""
        if self._packed_icons is not None:
            self._icons = msgspec.msgpack.decode(self._packed_icons, type=dict[str, str])
            self._packed_icons = None
        return self._icons

    @property
    def empty(self) -> bool:
        """No guide channel added (packed ones count)."""
        return not self.guides and self._packed is None

    def release(self) -> None:
        """The name indexes dropped (~80 MB for 25k guide channels) once the last source is
        matched, and the guide channels packed (50,000: the refresh's peak, while the
        programmes are read, -15 MB); a later match (channels after the programmes) unpacks
        them and builds the indexes again, in order."""
        self._fuzzy_cache = {}
        if self.guides:
            self._packed = pack_guides(self.guides.values())
            self.guides.clear()
            self._by_fold.clear()
        self._names.release()  # (after the packing: none left pending to index again)
        if self._icons:  # (~3.7 MB less for 50,000, while read; the writer unpacks them)
            self._packed_icons, self._icons = msgspec.msgpack.encode(self._icons), {}

    def _unpack(self) -> None:
        blob, self._packed = self._packed, None
        assert blob is not None
        self._icons = self.icons  # (`add` adds to them)
        guides, by_fold = self.guides, self._by_fold
        self._names.pending = unpacked = unpack_guides(blob)
        for g in unpacked:  # as `add` filled them
            guides[g.id] = g
            folded = g.id.casefold()
            by_fold.setdefault(g.id if folded == g.id else folded, g.id)

    def expect(self, channels: Iterable[ChannelFacts]) -> None:
        """The channels about to be matched. When the guide channels outnumber those a manual
        mapping or their exact tvg-id does not answer (FILTER_OVER), the name indexes hold only
        what these can look up (see nameindex.py). Else the whole indexes: the channels' keys,
        made here and again by the matching once there are more than the key cache holds, cost
        more than indexing the guide (50k names against 10k guide channels: 1.07 -> 1.64 s)."""
        if self._packed is not None:
            self._unpack()
        todo = [facts for facts in channels if self._direct(facts) is None]
        self.keyed_ahead = len(self.guides) > self.FILTER_OVER * len(todo)
        if not self.keyed_ahead:
            self._names.expect(None)
            return
        wanted = Wanted()
        canon = self._alias.get
        for facts in todo:
            if facts.tvg_id and (key := id_key(facts.tvg_id)):
                wanted.ids.add(key.compact)
            for text in _names_of(facts):
                key = name_key(text)
                if key.compact:
                    wanted.compacts.add(canon(key.compact, key.compact))
                if key.loose:
                    wanted.loose.add(canon(key.loose, key.loose))
            key = name_key(facts.name)
            if key:
                wanted.postings.update((key.signature, token) for token in key.content)
        self._names.expect(wanted)

    # -- tiers -------------------------------------------------------------------------------

    def match(self, facts: ChannelFacts) -> MatchResult:
        if self._packed is not None:
            self._unpack()
        direct = self._direct(facts)
        if direct is not None:
            return direct
        country = facts.country
        result = self._exact(facts, country)
        if result is not None:
            return result  # found, or a tie between equal names: fuzzy must not break it
        return self._fuzzy(facts, country)

    def _direct(self, facts: ChannelFacts) -> MatchResult | None:
        """The manual mapping's or the exact tvg-id's answer: no name index needed."""
        if self.manual:
            for probe in (facts.key, facts.tvg_id, facts.name):
                if probe and (gid := self.manual.get(probe.casefold())):
                    return MatchResult(gid, MatchTier.MANUAL, 1.0)
        if facts.tvg_id:  # the exact id needs no country: most channels of a good list stop here
            gid = self._by_fold.get(facts.tvg_id.casefold())
            if gid is not None:
                return MatchResult(gid, MatchTier.TVG_ID, 1.0)
        return None

    def _exact(self, facts: ChannelFacts, country: str | None) -> MatchResult | None:
        if facts.tvg_id:  # its exact form was looked up by `match`
            key = id_key(facts.tvg_id)
            if key:
                found = self._names.lookup(Table.ID, key.compact)  # mostly nothing
                gid = self._pick(found, key.country or country, facts.chno) if found else None
                if gid:
                    return MatchResult(gid, MatchTier.TVG_ID_NORMALISED, 0.97)
        for text in _names_of(facts):
            key = name_key(text)
            own = key.country or country
            for tier, table, lookup in (
                (_NAME, _COMPACT, key.compact),
                (_NAME_LOOSE, _LOOSE, key.loose),
            ):
                if not lookup:
                    continue
                # (an alias is indexed under its group's canonical name)
                found = self._names.lookup(table, self._alias.get(lookup, lookup))
                if not found:
                    continue
                gid = self._pick(found, own, facts.chno)
                if gid:
                    return MatchResult(gid, tier, CONFIDENCE[tier])
                if gid == "":
                    tied = tuple(
                        Candidate(i, self.guides[i].name, 100.0 * CONFIDENCE[tier])
                        for i in found
                        if _compatible(own, self.guides[i].country)
                    )
                    return MatchResult(
                        None, MatchTier.NONE, 0.0, tied[:3], "ambiguous: equal names"
                    )
        return None

    def _pick(self, ids: Sequence[str], country: str | None, chno: str) -> str | None:
        """The one guide channel among equally named `ids`; None when none fits, "" when several
        fit equally (a tie no later tier may break)."""
        if len(ids) == 1:  # the common case
            only = ids[0]
            return only if _compatible(country, self.guides[only].country) else None
        fits = [self.guides[i] for i in ids if _compatible(country, self.guides[i].country)]
        if not fits:
            return None
        if country is not None:  # the channel's own country beats a guide id without one
            same = [g for g in fits if g.country == country]
            fits = same or fits
        first = min(g.source for g in fits)  # an earlier source wins a tie
        fits = [g for g in fits if g.source == first]
        if len(fits) > 1 and chno:
            by_lcn = [g for g in fits if g.lcn == chno]
            fits = by_lcn or fits
        return fits[0].id if len(fits) == 1 else ""

    def _fuzzy(self, facts: ChannelFacts, country: str | None) -> MatchResult:
        key = name_key(facts.name)
        if not key:
            return UNMATCHED
        own = key.country or country
        cache_key = (key.compact, own)
        cached = self._fuzzy_cache.get(cache_key)
        if cached is None:
            cached = self._fuzzy_cache[cache_key] = self._score(key, own)
        return cached

    def _score(self, key: NameKey, own: str | None) -> MatchResult:
        names = self._names
        pool: set[int] = set()
        for posting in names.postings_of(key.signature, key.content):
            if isinstance(posting, int):
                pool.add(posting)
            elif len(posting) <= MAX_POSTING:
                pool.update(posting)
        if own is not None:  # pools share a word and a signature: small, a cheap filter
            countries = names.key_country
            pool = {i for i in pool if countries[i] is None or countries[i] == own}
        if not pool:
            return UNMATCHED
        order = sorted(pool)  # guide order: the same ranking of ties from any index built
        if process is None:
            _rapidfuzz()
        # rapidfuzz ranks the pool in C; only the few best get the full (Python) similarity
        choices = (
            itemgetter(*order)(names.compacts) if len(order) > 1 else [names.compacts[order[0]]]
        )
        ranked = process.extract(
            key.compact,
            choices,
            scorer=fuzz.ratio,
            limit=CANDIDATE_LIMIT,
            score_cutoff=CANDIDATE_FLOOR,
        )
        best: dict[str, float] = {}
        for _, _, position in ranked:
            other, gid = names.keys[order[position]], names.key_ids[order[position]]
            score = similarity(key, other)
            if score > best.get(gid, 0.0):
                best[gid] = score
        scored = sorted(
            ((s, self.guides[g]) for g, s in best.items()),
            key=lambda sg: (-sg[0], sg[1].source, sg[1].country != own),
        )
        candidates = tuple(Candidate(g.id, g.name, round(s, 1)) for s, g in scored[:3])
        if not scored or scored[0][0] < self.threshold:
            return MatchResult(None, MatchTier.NONE, 0.0, candidates)
        top, g = scored[0]
        rivals = [s for s, o in scored[1:] if o.source == g.source and o.id != g.id]
        if rivals and top - rivals[0] < MARGIN:
            note = f"ambiguous: {g.id} {top:.0f} vs {rivals[0]:.0f}"
            return MatchResult(None, MatchTier.NONE, 0.0, candidates, note)
        return MatchResult(g.id, MatchTier.FUZZY, round(top / 100.0, 3), candidates)
