"""What the guide stage reads into (`GuideData`), and the matching of the lineup's channels
against the guide channels read so far (`match_pending`)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from plextuner.buckets.models import LineupEntry
from plextuner.epg import names
from plextuner.epg.chunked import SpilledList
from plextuner.epg.match import ChannelFacts, Matcher
from plextuner.epg.matchcache import Answered, facts_digest
from plextuner.epg.matchresult import MatchResult
from plextuner.epg.model import Programme
from plextuner.epg.spill import Spill
from plextuner.logging import get_logger

log = get_logger(__name__)


@dataclass(slots=True)
class GuideData:
    matcher: Matcher = field(default_factory=Matcher)
    # guide id -> programmes per source, in source priority order
    programmes: dict[str, tuple[list[Programme] | SpilledList, ...]] = field(default_factory=dict)
    results: dict[str, MatchResult] = field(default_factory=dict)  # by channel key
    stamps: list[str] = field(default_factory=list)  # the parsed sources' identities, in order
    stale: bool = True  # guide channels came since the last matching pass
    # Where kept programmes are held (see spill.py); None: as objects in memory
    spill: Spill | None = None
    fold: bool = True  # `epg.fold_subtitle`: applied as a programme is spilled
    parallel: bool = True  # `epg.parallel`: a big guide read in two processes (halves.py)
    sourced: bool = False  # a source's file is read in place by the spill (the next ones spill)
    # Match answers by matcher fingerprint: the last refresh's, and this one's (matchcache.py)
    known: dict[bytes, dict[int, MatchResult]] = field(default_factory=dict)
    answered: dict[bytes, Answered] = field(default_factory=dict)


def facts_of(entry: LineupEntry) -> ChannelFacts:
    ch = entry.channel
    return ChannelFacts(
        key=ch.key,
        name=ch.name,
        tvg_id=ch.tvg_id,
        tvg_name=ch.tvg_name,
        groups=tuple(ch.groups) or ((ch.group,) if ch.group else ()),
        chno=ch.chno or "",
    )


def match_pending(data: GuideData, entries: list[LineupEntry]) -> set[str]:
    """Match every channel not matched by an earlier source; the guide ids now wanted."""
    if data.matcher.empty and not data.matcher.manual:
        return set()  # nothing to match against (no guide, no mapping): no work per channel
    if data.stale:  # else nothing new to match against since the last pass
        fingerprint = data.matcher.fingerprint()
        before = data.known.pop(fingerprint, {})  # the last refresh's answers to these (once)
        # This pass's answers, their digests packed (a dict of 34k held ~2 MB to the job's end)
        done_digests, done = data.answered.setdefault(fingerprint, (array("Q"), []))
        results = data.results
        # The channels still to match, as parallel lists (facts, keys, digests), made as the
        # entries are walked: no per-channel tuple or dict beside them at the match's peak
        seen: set[str] = set()
        facts_todo: list[ChannelFacts] = []
        keys: list[str] = []
        digests = array("Q")
        reused = 0
        for e in entries:
            key = e.channel.key
            known = results.get(key)
            if (known is not None and known.guide_id is not None) or key in seen:
                continue
            seen.add(key)
            facts = facts_of(e)
            digest = facts_digest(facts)
            if (answer := before.get(digest)) is not None:
                results[key] = answer
                done_digests.append(digest)
                done.append(answer)
                reused += 1
            else:
                facts_todo.append(facts)
                keys.append(key)
                digests.append(digest)
        del seen, before  # the answers not reused: freed before the match's peak
        if facts_todo:
            data.matcher.expect(facts_todo)  # what these can ask
        match = data.matcher.match
        for n, (facts, key) in enumerate(zip(facts_todo, keys, strict=True), 1):
            results[key] = answer = match(facts)
            done.append(answer)
            if n % names.KEYS_HELD == 0 and not data.matcher.keyed_ahead:
                names.forget()  # each channel's keys are wanted during its own match only
        done_digests.extend(digests)  # in the order their answers were appended to `done`
        data.stale = False
        names.forget()  # `reused`: what the kept answers saved (all on an unchanged re-refresh)
        log.info("guide_channels_matched", matched=len(facts_todo), reused=reused)
    return {r.guide_id for r in data.results.values() if r.guide_id}
