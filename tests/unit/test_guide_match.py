"""The guide matcher: the normaliser, every tier, and the ways a match goes wrong, by name."""

from __future__ import annotations

import lzma
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plextuner.config.models import EpgConfig
from plextuner.epg import names
from plextuner.epg.aliases import parse_aliases
from plextuner.epg.countries import country_of_group
from plextuner.epg.match import ChannelFacts, Matcher
from plextuner.epg.matchresult import MatchResult, MatchTier
from plextuner.epg.model import GuideChannel, Programme
from plextuner.epg.names import id_key, name_key
from plextuner.epg.owners import assign
from plextuner.epg.programmes import programmes_for
from plextuner.errors import FetchError
from plextuner.ingest.fetch import gunzip_capped
from tests.unit.test_epg import entry


def guide(*channels: tuple[str, str] | tuple[str, str, str], **kw: str) -> Matcher:
    m = Matcher(**kw)  # type: ignore[arg-type]
    for ch in channels:
        gid, name = ch[0], ch[1]
        m.add(GuideChannel(gid, [name], lcn=ch[2] if len(ch) > 2 else ""))  # type: ignore[misc]
    return m


def facts(name: str, group: str = "", tvg_id: str = "", chno: str = "") -> ChannelFacts:
    return ChannelFacts(key="name:" + name, name=name, tvg_id=tvg_id, groups=(group,), chno=chno)


class TestNormaliser:
    @pytest.mark.parametrize(
        "name",
        ["BBC One", "UK: BBC One FHD", "BBC One HD (1080p)", "BBC 1", "|UK| BBC ONE",
         "bbc one [VIP]", "[VIP] UK | BBC One HD", "BBC One (UHD)", "BBC One [Not 24/7]",
         "BBC  One 4K"],
    )  # fmt: skip
    def test_quality_prefixes_brackets_numbers(self, name: str) -> None:
        assert name_key(name).compact == "bbc1"

    def test_accents_and_and(self) -> None:
        assert name_key("Télé-Québec").compact == name_key("TELE QUEBEC").compact
        assert (
            name_key("Love Crime & History").compact == name_key("Love Crime and History").compact
        )
        assert name_key("BM&amp;C News").compact == name_key("BM&C News").compact

    def test_timeshift_is_part_of_the_key(self) -> None:
        assert name_key("ITV +1").timeshift == 1 and name_key("ITV+1 HD").compact == "itv+1"
        assert name_key("ITV +1").compact != name_key("ITV").compact

    def test_plus_is_not_a_timeshift(self) -> None:
        assert name_key("Sport TV +").compact == name_key("SPORT TV+").compact == "sporttvplus"
        assert name_key("Canal+ Sport").loose == "canalplussport"

    def test_countries(self) -> None:
        assert name_key("UK: Nickelodeon").country == "gb"
        assert name_key("[DE] Das Erste").country == "de"
        assert name_key("Sport Klub 1 [HR]").country == "hr"
        assert name_key("MTV Brasil").country == "br" and name_key("MTV Brasil").compact == "mtv"
        assert country_of_group("UK | Kids") == "gb"
        assert country_of_group("Germany - Movies") == "de"
        assert country_of_group("|PL| SPORTS") == "pl"
        assert country_of_group("POL Entertainment") == "pl"
        assert country_of_group("Sports") is None and country_of_group("TV | News") is None

    def test_call_signs_in_parentheses_stay(self) -> None:
        assert name_key("FOX (WGBC) Meridian, MS").tokens == ("fox", "wgbc", "meridian", "ms")

    def test_ids(self) -> None:
        assert id_key("BBCOne.uk").compact == id_key("bbc1.uk").compact == "bbc1"
        assert id_key("BBCOne.uk@HD").country == "gb"
        assert not id_key("12345")


class TestTiers:
    def test_exact_tvg_id(self) -> None:
        m = guide(("BBCOne.uk", "Something else"))
        r = m.match(facts("whatever", tvg_id="bbcone.UK"))
        assert (r.guide_id, r.tier, r.confidence) == ("BBCOne.uk", MatchTier.TVG_ID, 1.0)

    def test_normalised_tvg_id(self) -> None:
        r = guide(("bbc1.uk", "BBC1")).match(facts("x", tvg_id="BBCOne.uk"))
        assert (r.guide_id, r.tier) == ("bbc1.uk", MatchTier.TVG_ID_NORMALISED)

    def test_normalised_tvg_id_keeps_countries_apart(self) -> None:
        assert guide(("bbc1.au", "BBC1")).match(facts("x", tvg_id="BBCOne.uk")).guide_id is None

    def test_display_name(self) -> None:
        r = guide(("a.uk", "BBC 1 HD")).match(facts("UK: BBC One FHD"))
        assert (r.guide_id, r.tier) == ("a.uk", MatchTier.NAME)

    def test_loose_name(self) -> None:
        r = guide(("n.es", "Canal Nova")).match(facts("ES - Nova"))
        assert (r.guide_id, r.tier) == ("n.es", MatchTier.NAME_LOOSE)

    def test_fuzzy(self) -> None:
        r = guide(("s.in", "Subhavaartha Telugu")).match(facts("Subhavartha Telugu", "India"))
        assert r.tier is MatchTier.FUZZY and r.guide_id == "s.in" and 0.88 <= r.confidence < 1

    def test_threshold_setting(self) -> None:
        strict = guide(("s.in", "Subhavaartha Telugu"), threshold=0.99)  # type: ignore[arg-type]
        assert strict.match(facts("Subhavartha Telugu")).guide_id is None

    def test_manual_map_wins(self) -> None:
        m = guide(("a.uk", "BBC One"), ("b.uk", "Other"), manual={"BBC One": "b.uk"})  # type: ignore[arg-type]
        r = m.match(facts("BBC One"))
        assert (r.guide_id, r.tier) == ("b.uk", MatchTier.MANUAL)

    def test_aliases(self) -> None:
        groups = parse_aliases("# comment\nDas Erste = ARD\n\nlonely\n")
        assert groups == [["Das Erste", "ARD"]]
        m = guide(("DasErste.de", "Das Erste"), aliases=groups)  # type: ignore[arg-type]
        assert m.match(facts("DE: ARD HD")).guide_id == "DasErste.de"

    def test_lcn_breaks_a_tie(self) -> None:
        m = guide(("a", "News", "101"), ("b", "News", "202"))
        assert m.match(facts("News", chno="202")).guide_id == "b"
        assert m.match(facts("News")).guide_id is None


class TestNeverGuessWrong:
    def test_other_country_same_name(self) -> None:
        """Nickelodeon in a UK group never takes the Australian feed."""
        m = guide(("Nickelodeon.au", "Nickelodeon"))
        assert m.match(facts("Nickelodeon", "UK | Kids")).guide_id is None
        assert m.match(facts("UK: Nickelodeon")).guide_id is None
        assert m.match(facts("Nickelodeon", "Australia")).guide_id == "Nickelodeon.au"

    def test_own_country_preferred(self) -> None:
        m = guide(("Nick.au", "Nickelodeon"), ("Nick.uk", "Nickelodeon"))
        assert m.match(facts("Nickelodeon", "UK Kids")).guide_id == "Nick.uk"

    def test_unknown_country_and_two_feeds_is_a_tie(self) -> None:
        r = guide(("Nick.au", "Nickelodeon"), ("Nick.uk", "Nickelodeon")).match(
            facts("Nickelodeon")
        )
        assert r.guide_id is None and r.note.startswith("ambiguous")
        assert {c.guide_id for c in r.candidates} == {"Nick.au", "Nick.uk"}

    @pytest.mark.parametrize(
        ("ours", "theirs"),
        [("ITV +1", "ITV"), ("ITV", "ITV +1"), ("BBC One Scotland", "BBC One"),
         ("BBC One", "BBC One Wales"), ("HBO East", "HBO West"), ("Starz 2 West", "Starz 2 East"),
         ("Sky Sport 2", "Sky Sport 3"), ("Nick Jr", "Nick"), ("TVA", "TVA Sports"),
         ("FXX", "FX"), ("Kanal D", "Kanal 7"), ("Hollywood Suite 90s", "Hollywood Suite 2000s"),
         ("National Geographic", "National Geographic Wild")],
    )  # fmt: skip
    def test_variants_and_sisters_stay_apart(self, ours: str, theirs: str) -> None:
        assert guide(("x", theirs)).match(facts(ours)).guide_id is None

    def test_one_guide_channel_per_device(self) -> None:
        """Two channels never share a guide channel unless they are the same channel."""
        a, b, c = facts("BBC One"), facts("BBC One Backup Feed"), facts("BBC 1 HD")
        res = assign(
            [
                (a, MatchResult("bbc1", MatchTier.NAME, 0.95)),
                (b, MatchResult("bbc1", MatchTier.FUZZY, 0.9)),
                (c, MatchResult("bbc1", MatchTier.NAME, 0.95)),
            ]
        )
        assert res[0].guide_id == "bbc1" and res[2].guide_id == "bbc1"
        assert res[1].guide_id is None and "taken by" in res[1].note

    def test_a_device_keeps_one_owner_a_guide_channel_when_written(self) -> None:
        """As the writer gathers a device: a guide channel matched by two different channels
        goes to the more confident one; with none matched twice the answers stand as they
        are (no facts made for them)."""
        from plextuner.buckets.models import LineupEntry
        from plextuner.epg.guidedata import GuideData
        from plextuner.epg.writeall import _device_results
        from plextuner.ingest.models import Channel

        def entry(key: str, name: str) -> LineupEntry:
            return LineupEntry(key, Channel(key=key, name=name, tvg_id="", group="", provider="p"))

        entries = [entry("a", "BBC One"), entry("b", "BBC One Backup Feed"), entry("c", "ITV")]
        data = GuideData()
        data.results = {"a": MatchResult("bbc1", MatchTier.NAME, 0.95),
                        "b": MatchResult("bbc1", MatchTier.FUZZY, 0.9),
                        "c": MatchResult("itv", MatchTier.NAME, 0.95)}  # fmt: skip
        contended = _device_results(entries, data)
        assert [r.guide_id for r in contended] == ["bbc1", None, "itv"]
        assert "taken by BBC One" in contended[1].note
        alone = _device_results([entries[0], entries[2]], data)
        assert alone[0] is data.results["a"] and alone[1] is data.results["c"]

    def test_earlier_source_wins_a_tie(self) -> None:
        m = guide(("first.uk", "Dave"))
        m.next_source()
        m.add(GuideChannel("second.uk", ["Dave"]))
        assert m.match(facts("Dave", "UK")).guide_id == "first.uk"


class TestIndexedLate:
    """The name indexes are built at the first lookup an exact tvg-id does not answer, from the
    guide channels added so far, in their order; channels added later join at the next one."""

    def test_exact_ids_never_build_the_name_indexes(self) -> None:
        m = guide(*((f"ch{i}.tv", f"Channel {i}") for i in range(50)))
        for i in range(50):
            assert m.match(facts("x", tvg_id=f"CH{i}.tv")).tier is MatchTier.TVG_ID
        assert len(m._names.pending) == 50  # the memory this is for: 25 MB for 6,000 guide channels

    def test_channels_added_after_a_lookup_are_found(self) -> None:
        m = guide(("a.uk", "BBC 1 HD"))
        assert m.match(facts("UK: BBC One FHD")).guide_id == "a.uk"  # indexes built here
        m.next_source()
        m.add(GuideChannel("b.uk", ["Dave"]))
        m.add(GuideChannel("c.uk", ["BBC One"]))  # a later source's same name: ranks below
        m.add(GuideChannel("bbc1.de", ["Other"]))
        assert m.match(facts("Dave", "UK")).guide_id == "b.uk"
        assert m.match(facts("BBC One")).guide_id == "a.uk"
        r = m.match(facts("x", tvg_id="BBCOne.de"))
        assert (r.guide_id, r.tier) == ("bbc1.de", MatchTier.TVG_ID_NORMALISED)

    def test_country_from_names_counts_once_indexed(self) -> None:
        # the guide id says nothing of a country; its display-name does
        m = guide(("dave1", "UK: Dave"), ("dave2", "DE: Dave"))
        assert m.match(facts("Dave", "UK")).guide_id == "dave1"
        assert m.match(facts("Dave", "Germany")).guide_id == "dave2"

    @given(st.lists(st.sampled_from(["BBC One", "BBC 1 HD", "Dave", "Sky Sports 1",
                                     "Sky Sport 1", "UK: Dave", "Canal Nova", "RTL"]),
                    min_size=1, max_size=8),
           st.lists(st.integers(0, 7), max_size=4))  # fmt: skip
    @settings(max_examples=60, deadline=None)
    def test_same_answers_whenever_indexed(self, names: list[str], early: list[int]) -> None:
        """Looking up between adds (indexes built early, then extended) answers as a matcher
        given every channel first."""
        queries = [facts(n) for n in names] + [facts("x", tvg_id="bbc1")]
        whole = Matcher()
        for i, n in enumerate(names):
            whole.add(GuideChannel(f"id{i}", [n]))
        late = Matcher()
        for i, n in enumerate(names):
            if i in early:
                late.match(queries[i % len(queries)])
            late.add(GuideChannel(f"id{i}", [n]))
        assert [late.match(q) for q in queries] == [whole.match(q) for q in queries]


class TestProgrammes:
    def test_sources_deduplicated_by_time(self) -> None:
        t = 1_800_000_000.0
        first = [Programme("a", t, t + 3600, "A1"), Programme("a", t + 3600, t + 7200, "A2")]
        second = [
            Programme("a", t + 1800, t + 5400, "B overlaps"),
            Programme("a", t + 7200, t + 10800, "B fills the gap"),
        ]
        out = programmes_for(entry("1", "x"), [first, second], (t - 1, t + 86400), EpgConfig())
        assert [p.title for p in out] == ["A1", "A2", "B fills the gap"]

    def test_subtitle_folded_for_plex(self) -> None:
        t = time.time()
        p = Programme("a", t, t + 3600, "Show", sub_title="The Pilot")
        q = Programme("a", t + 3600, t + 7200, "Show", "Ep", episode_nums=(("onscreen", "S1E2"),))
        window = (t - 60, t + 86400)
        out = programmes_for(entry("1", "x"), [[p, q]], window, EpgConfig())
        assert [o.title for o in out] == ["Show: The Pilot", "Show"]
        off = programmes_for(entry("1", "x"), [[p]], window, EpgConfig(fold_subtitle=False))
        assert off[0].title == "Show"


class TestXz:
    def test_xz_guide(self) -> None:
        body = b"<tv>" + b"<channel id='a'/>" * 20000 + b"</tv>"
        assert gunzip_capped(lzma.compress(body), 10**7, "g") == body

    def test_xz_bomb_and_truncation(self) -> None:
        bomb = lzma.compress(b"\0" * 50_000_000)
        with pytest.raises(FetchError, match="cap"):
            gunzip_capped(bomb, 10**6, "g")
        import os

        noise = lzma.compress(os.urandom(200_000))
        with pytest.raises(FetchError, match="truncated"):
            gunzip_capped(noise[: len(noise) // 2], 10**7, "g")


@given(st.text(st.sampled_from("ab1 _-.é&/\u00a0\u0660x2"), max_size=16))
@settings(max_examples=500, deadline=None)
def test_word_pattern_finds_what_the_split_leaves(text: str) -> None:
    """`_WORD.findall` (the fast path) gives the non-empty pieces of `_SPLIT.split`."""
    assert names._WORD.findall(text) == [w for w in names._SPLIT.split(text) if w]


def test_a_released_index_is_built_again_for_a_later_match() -> None:
    """The name indexes go once the last source is matched (memory, beside its programmes); a
    guide channel listed after the programmes is matched against all of them again, as before."""
    guides = [
        GuideChannel("bbcone.uk", ["BBC One"]),
        GuideChannel("itv1.uk", ["ITV 1"]),
        GuideChannel("skynews.uk", ["Sky News HD"]),
    ]
    lineup = [ChannelFacts("a", "BBC One HD"), ChannelFacts("b", "Sky News"),
              ChannelFacts("c", "ITV1"), ChannelFacts("d", "Channel Four")]  # fmt: skip
    late = GuideChannel("channel4.uk", ["Channel 4"])

    def results(release: bool) -> list[MatchResult]:
        m = Matcher()
        for g in guides:
            m.add(g)
        first = [m.match(f) for f in lineup[:2]]
        if release:
            m.release()
        m.add(late)
        return first + [m.match(f) for f in lineup[2:]]

    kept, released = results(False), results(True)
    assert released == kept
    assert [r.guide_id for r in released] == ["bbcone.uk", "skynews.uk", "itv1.uk", "channel4.uk"]


def test_released_guide_channels_are_packed_and_unpacked_as_they_were() -> None:
    """`release` also packs the guide channels away while the programmes are read (50,000 of
    them: -15 MB at the refresh's peak); whatever asks next finds them as they were: every
    tier, the case-folded tvg-id, an earlier source winning a duplicate id, the countries
    the indexes learned, the order a fuzzy tie is broken in."""
    first = [
        GuideChannel("BBCOne.uk", ["BBC One"], "http://i/bbc.png", "en", "101"),
        GuideChannel("itv1.uk", ["ITV 1", "ITV"]),
        GuideChannel("Discovery.us", ["Discovery Channel"]),
        GuideChannel("discoverych.uk", ["Discovery Channel"]),
    ]
    second = [GuideChannel("itv1.uk", ["ITV One"]), GuideChannel("sky.uk", ["Sky Newz"])]
    lineup = [ChannelFacts("a", "BBC 1 HD", tvg_id="bbcone.uk"),
              ChannelFacts("b", "ITV1"), ChannelFacts("c", "Discovery Channel"),
              ChannelFacts("d", "Sky News", groups=("UK",)), ChannelFacts("e", "x", "DISCOVERY.US"),
              ChannelFacts("f", "Channel Four")]  # fmt: skip

    def run(release: bool) -> tuple[list[MatchResult], dict[str, str], bytes]:
        m = Matcher()
        for g in first:
            m.add(g)
        m.match(lineup[1])  # the indexes built, countries learned
        m.next_source()
        for g in second:
            m.add(g)
        if release:
            icons = dict(m.icons)
            m.release()
            assert m.guides == {} and m._icons == {} and not m.empty  # packed, not lost
            assert m.icons == icons  # as the writer asks for them, the guides still packed
            assert m.guides == {}
            m.release()  # (what a later `release` packs again)
        m.add(GuideChannel("late.uk", ["Late"], "http://i/late.png"))  # after the programmes
        m.expect(lineup)
        return [m.match(f) for f in lineup], m.icons, m.fingerprint()

    kept, released = run(False), run(True)
    assert released == kept
    assert [r.guide_id for r in released[0]][:2] == ["BBCOne.uk", "itv1.uk"]
    assert Matcher().empty


def _key_reference(tokens: tuple[str, ...]) -> tuple[str, tuple[str, ...], frozenset[str], int]:
    """A key's loose form, words and signature as first written (sets; the Canal+ rule for
    every name), against the key's tuples and shortcuts."""
    loose = "".join(
        t
        for i, t in enumerate(tokens)
        if t not in names.FILLER or tokens[i + 1 : i + 2] == ("plus",)
    )
    if len(loose) < 2 or loose.isdigit():
        loose = ""
    words = frozenset(tokens) - names.FILLER
    critical = frozenset(t for t in tokens if t.isdigit() or t in names.VARIANTS)
    return loose, tuple(sorted(words)), critical, 0


_TOKENS = st.lists(
    st.sampled_from(["canal", "channel", "tv", "plus", "bbc", "1", "23", "news", "hd", "a",
                     *sorted(names.VARIANTS)[:4], *sorted(names.FILLER)[:4]]),
    max_size=6,
).map(tuple)  # fmt: skip


@given(_TOKENS, st.sampled_from([0, 1, 12]))
@settings(max_examples=600, deadline=None)
def test_name_keys_hold_what_their_sets_held(tokens: tuple[str, ...], shift: int) -> None:
    key = names.make_key(tokens, "gb", shift)
    loose, words, critical, _ = _key_reference(tokens)
    suffix = f"+{shift}" if shift else ""
    assert type(key) is names.NameKey and key.country == "gb" and key.timeshift == shift
    assert key.compact == "".join(tokens) + suffix
    assert key.loose == (loose + suffix if loose else "")
    assert tuple(sorted(key.content)) == words and len(set(key.content)) == len(key.content)
    assert key.signature == (tuple(sorted(critical)), shift)
    assert key.text == " ".join(tokens)


@given(st.text(st.sampled_from(" [](|:-\u2013UKuk1 VIP\t"), max_size=16))
@settings(max_examples=600, deadline=None)
def test_the_prefix_test_misses_no_prefix(text: str) -> None:
    """`_maybe_prefix` only saves `_PREFIX` its work: never False where `_PREFIX` matches."""
    text = text.strip()
    if names._PREFIX.match(text):
        assert names._maybe_prefix(text)


@given(st.text(st.sampled_from("abzAZ09.é_"), max_size=12))
@settings(max_examples=600, deadline=None)
def test_a_stem_without_capitals_is_split_as_camel_case_splits_it(stem: str) -> None:
    if stem.islower():
        assert names._LETTER_DIGIT.sub(" ", stem) == names._CAMEL.sub(" ", stem)


@given(st.text(st.sampled_from("ab1 hd h264 one x2 é"), max_size=24))
@settings(max_examples=400, deadline=None)
def test_remembered_words_give_the_tokens_made_afresh(text: str) -> None:
    """A word's tokens come from `_WORD_TOKENS` once made: the same as made afresh."""
    warm = names._tokens(text)
    names._WORD_TOKENS.clear()
    assert names._tokens(text) == warm
    expected = [t for w in names._WORD.findall(text) for t in names._word_tokens(w)]
    assert warm == expected
    assert "hd" not in warm and "one" not in warm and "h264" not in warm
