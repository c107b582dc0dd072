"""A matcher told which channels it will match indexes only what they can look up
(nameindex.py); its answers are the whole index's, whatever it is asked afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from plextuner.buckets.models import LineupEntry
from plextuner.epg import names
from plextuner.epg.guidedata import GuideData, match_pending
from plextuner.epg.match import ChannelFacts, Matcher
from plextuner.epg.matchresult import MatchResult
from plextuner.epg.model import GuideChannel
from plextuner.ingest import merge_entries, parse_m3u_file

DATA = Path(__file__).resolve().parents[1] / "data" / "guidematch"


def real_guide() -> list[GuideChannel]:
    root = etree.parse(str(DATA / "guide-channels.xml")).getroot()
    return [
        GuideChannel(ch.get("id") or "", tuple(d.text or "" for d in ch.iterfind("display-name")))
        for ch in root.iterfind("channel")
    ]


def real_lineup() -> list[ChannelFacts]:
    entries, _ = parse_m3u_file(DATA / "playlist.m3u", "set")
    return [
        ChannelFacts(c.key, c.name, c.tvg_id, c.tvg_name, tuple(c.groups) or (c.group,), "")
        for c in merge_entries(entries)
    ]


class Filtering(Matcher):
    FILTER_OVER = 0.0  # whatever the sizes


def matcher(
    channels: list[GuideChannel], aliases: list[list[str]] | None = None, kind: type = Matcher
) -> Matcher:
    m: Matcher = kind(aliases=aliases or ())
    for ch in channels:
        m.add(ch)
    return m


def answers(m: Matcher, lineup: list[ChannelFacts]) -> list[MatchResult]:
    return [m.match(f) for f in lineup]


class TestRealWorld:
    """3,000 guide channels and 1,800 provider names (tests/data/guidematch)."""

    def test_the_same_answers_from_a_smaller_index(self) -> None:
        guide, lineup = real_guide(), real_lineup()
        # Some channels carry an id: exact, normalised (`BBCOne.uk` = `bbc1.uk`) and unknown
        lineup += [
            ChannelFacts(f"id:{i}", f.name, tvg_id, f.tvg_name, f.groups)
            for i, (f, g) in enumerate(zip(lineup[:300], guide, strict=False))
            for tvg_id in (g.id, g.id.lower().replace(".", " ."), f"nowhere{i}.xx")
        ]
        whole = matcher(guide)
        want = answers(whole, lineup)
        part = matcher(guide)
        part.expect(lineup)
        assert answers(part, lineup) == want
        assert sum(r.guide_id is not None for r in want) > 1000  # a set that matches
        # What it is for: fewer keys numbered and fewer names held (a set built to match: a
        # quarter fewer keys; a big guide beside a lineup with ids loses most)
        for index in ("keys", "by_compact", "by_loose", "postings", "by_idkey"):
            assert len(getattr(part._names, index)) < 0.8 * len(getattr(whole._names, index))

    def test_a_channel_not_expected_gets_the_whole_index_answer(self) -> None:
        guide, lineup = real_guide(), real_lineup()
        want = answers(matcher(guide), lineup)
        part = matcher(guide)
        part.expect(lineup[:50])
        assert answers(part, lineup) == want
        assert part._names.wanted is None  # widened once, at the first name outside it

    def test_words_not_expected_get_the_whole_index_answer(self) -> None:
        """Every name expected, but the fuzzy words of other ones: tvg-names and names swapped."""
        guide, lineup = real_guide(), real_lineup()
        pairs = list(zip(lineup[::2], lineup[1::2], strict=False))
        told = [ChannelFacts(a.key, a.name, "", b.name, a.groups) for a, b in pairs]
        asked = [ChannelFacts(a.key, b.name, "", a.name, a.groups) for a, b in pairs]
        want = answers(matcher(guide), asked)
        part = matcher(guide)
        part.expect(told)
        assert answers(part, asked) == want
        assert part._names.wanted is None

    def test_more_channels_than_guide_channels_get_the_whole_index(self) -> None:
        """Their keys, made twice, would cost more than the guide's index (see `expect`)."""
        guide, lineup = real_guide(), real_lineup()
        few = matcher(guide[: len(lineup) - 1])
        few.expect(lineup)
        assert few._names.wanted is None
        many = matcher(guide[: len(lineup) + 1])
        many.expect(lineup)
        assert many._names.wanted is not None


class TestSources:
    def test_a_later_source_joins_a_narrowed_index(self) -> None:
        """As a refresh does: match after each source, only what is still unmatched."""
        guide, lineup = real_guide(), real_lineup()
        first, second = guide[::2], guide[1::2]

        def run(expecting: bool) -> list[MatchResult]:
            m = matcher(first)
            results: dict[str, MatchResult] = {}
            for source in (first, second):
                if source is second:
                    m.next_source()
                    for ch in second:
                        m.add(ch)
                todo = [f for f in lineup if f.key not in results or not results[f.key].guide_id]
                if expecting:
                    m.expect(todo)
                results.update({f.key: m.match(f) for f in todo})
            return [results[f.key] for f in lineup]

        assert run(True) == run(False)

    def test_expecting_other_channels_rebuilds(self) -> None:
        guide, lineup = real_guide(), real_lineup()
        want = answers(matcher(guide), lineup)
        m = matcher(guide)
        m.expect(lineup[:400])
        assert answers(m, lineup[:400]) == want[:400]
        m.expect(lineup[400:])  # not within what was indexed: indexed again for these
        assert answers(m, lineup[400:]) == want[400:]
        assert m._names.wanted is not None  # answered without the whole index


WORDS = ["bbc", "one", "1", "2", "news", "sport", "hd", "uk:", "east", "+1", "cinema", "kids"]
WORDS += ["cinemax", "kid", "canal", "plus", "tv", "channel", "espn", "espn2", "fr:", "(us)"]
_name = st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(
    guide=st.lists(st.tuples(_name, st.sampled_from(["", ".uk", ".us", ".fr"])), max_size=25),
    lineup=st.lists(
        st.tuples(_name, st.sampled_from(["", "bbc1.uk", "x.us"]), st.sampled_from(["", "UK"])),
        min_size=1,
        max_size=15,
    ),
    expected=st.integers(0, 15),
    aliases=st.booleans(),
)
def test_any_guide_any_lineup(
    guide: list[tuple[str, str]],
    lineup: list[tuple[str, str, str]],
    expected: int,
    aliases: bool,
) -> None:
    channels = [
        GuideChannel(name.replace(" ", "").replace(":", "") + f"{i}{suffix}", (name,))
        for i, (name, suffix) in enumerate(guide)
    ]
    facts = [
        ChannelFacts(f"k{i}", name, tvg_id, "", (group,))
        for i, (name, tvg_id, group) in enumerate(lineup)
    ]
    groups = [["cinema", "cinemax"], ["bbc one", "bbc 1"]] if aliases else None
    part = matcher(channels, groups, Filtering)
    part.expect(facts[:expected])  # some, all or none of those asked
    assert answers(part, facts) == answers(matcher(channels, groups), facts)


class Whole(Matcher):
    FILTER_OVER = 1e9  # never filtered: nothing keyed ahead


def lineup_entries() -> list[LineupEntry]:
    entries, _ = parse_m3u_file(DATA / "playlist.m3u", "set")
    return [LineupEntry(str(n), c) for n, c in enumerate(merge_entries(entries), 1)]


def matched_holding(
    kind: type[Matcher], held: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, MatchResult], list[int]]:
    """A pass of `match_pending` over the real lineup: its answers, and how many keys the key
    cache held as each channel's match began."""
    monkeypatch.setattr(names, "KEYS_HELD", held)
    sizes: list[int] = []
    real = kind.match

    def match(self: Matcher, facts: ChannelFacts) -> MatchResult:
        sizes.append(names.name_key.cache_info().currsize)
        return real(self, facts)

    monkeypatch.setattr(kind, "match", match)
    names.forget()
    data = GuideData(matcher(real_guide(), kind=kind))
    match_pending(data, lineup_entries())
    return data.results, sizes


def test_keys_not_wanted_again_are_forgotten_as_the_pass_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Keys made by each channel's own match are dropped every KEYS_HELD channels (a 50k-stream
    lineup's held ~25 MB, its refresh's peak); those `expect` made ahead are kept for the
    match that wants them again. The answers are the same either way."""
    everything, _ = matched_holding(Whole, 10**9, monkeypatch)
    assert len(everything) > 1500
    assert sum(r.guide_id is not None for r in everything.values()) > 1000
    answers_now, sizes = matched_holding(Whole, 100, monkeypatch)
    assert answers_now == everything
    assert max(sizes) < 600  # 100 channels' names, ids and groups
    ahead, sizes = matched_holding(Filtering, 100, monkeypatch)
    assert ahead == everything
    assert min(sizes) > 1500  # every channel's keys, made by `expect`, to the last match
