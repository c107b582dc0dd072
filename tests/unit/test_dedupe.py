"""Merging entries into channels with ordered backup sources."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plextuner.ingest import models
from plextuner.ingest.dedupe import _clean_name, merge_entries, normalise_name
from plextuner.ingest.models import Entry, StreamKind, fold, stream_kind


class TestNormalise:
    def test_markers_and_accents(self) -> None:
        """Quality markers, brackets, accents and punctuation do not split a channel."""
        assert normalise_name("BBC News HD (720p) [Geo-blocked]") == normalise_name("bbc news")
        assert normalise_name("Café-TV") == normalise_name("cafe tv")

    def test_cyrillic_kept(self) -> None:
        """Non-Latin names stay distinct and non-empty."""
        assert normalise_name("Первый канал") == normalise_name("ПЕРВЫЙ  КАНАЛ")
        assert normalise_name("Первый канал") != normalise_name("Второй канал")


class TestMerge:
    def test_same_tvg_id_across_providers(self) -> None:
        """The same tvg-id from two providers is one channel, sources in provider order."""
        entries = [
            Entry(name="One", url="http://a/1.ts", provider="a", tvg_id="One.uk"),
            Entry(name="One HD", url="http://b/1.m3u8", provider="b", tvg_id="one.UK"),
            Entry(name="Two", url="http://a/2.ts", provider="a"),
        ]
        channels = merge_entries(entries)
        assert [c.name for c in channels] == ["One", "Two"]
        assert [s.provider for s in channels[0].sources] == ["a", "b"]
        assert channels[0].sources[1].kind is StreamKind.HLS

    def test_name_match_without_tvg_id(self) -> None:
        """Without tvg-id, normalised names identify the channel; duplicate URLs collapse."""
        entries = [
            Entry(name="Sky News (1080p)", url="http://a/1", provider="a"),
            Entry(name="sky news [Not 24/7]", url="http://b/1", provider="b"),
            Entry(name="Sky News", url="http://a/1", provider="a"),
        ]
        channels = merge_entries(entries)
        assert len(channels) == 1
        assert channels[0].name == "Sky News"
        assert len(channels[0].sources) == 2


_FORWARD_MARKERS = re.compile(r"(\s*(\[[^\]]*\]|\(\d{3,4}[pi]\)))+\s*$", re.IGNORECASE)


@given(st.lists(st.sampled_from(["BBC", " ", "[", "]", "(", ")", "720p", "1080I", "x", "[Geo]",
                                  "(576i)", "(72p)", "(٧٢٠p)", "(720ı)", "(²¹⁰p)", "(10800p)"]),
                max_size=10).map("".join))  # fmt: skip
@settings(max_examples=800, deadline=None)
def test_trailing_markers_read_backwards_match_the_forward_pattern(name: str) -> None:
    """The reversed-name match strips exactly what the plain trailing-marker pattern does."""
    want = _FORWARD_MARKERS.sub("", name).strip() or name.strip()
    assert _clean_name(name) == want


def _kind_reference(url: str) -> StreamKind:
    path = url.split("?", 1)[0].split("|", 1)[0].lower()
    if path.endswith((".m3u8", ".m3u")):
        return StreamKind.HLS
    if path.endswith(".mpd"):
        return StreamKind.DASH
    if path.endswith(".ts") or "/live/" in path:
        return StreamKind.TS
    return StreamKind.OTHER


_URL_PARTS = ["http://h/", "LIVE/", "/live/", "a", ".TS", ".m3u8", ".M3U", ".mpd", "?x=.ts",
              "|UA=1", "8", "."]  # fmt: skip


@given(st.lists(st.sampled_from(_URL_PARTS), max_size=8).map("".join))
@settings(max_examples=600, deadline=None)
def test_stream_kind_reads_only_the_path(url: str) -> None:
    assert stream_kind(url) is _kind_reference(url)


def test_merged_channel_fields_land_in_their_place() -> None:
    """Channels and sources are built positionally (speed): each field must reach its place."""
    entry = Entry("N (720p)", "http://h/1.m3u8", "p", "n.uk", "N HD", "http://l/n.png", "G",
                  "7", -1.0, {}, {"User-Agent": "x"})  # fmt: skip
    (ch,) = merge_entries([entry])
    assert (ch.key, ch.name, ch.tvg_id, ch.group, ch.provider) == ("id:n.uk", "N", "n.uk", "G", "p")
    assert (ch.logo, ch.tvg_name, ch.chno, ch.tvg_shift, ch.groups) == (
        "http://l/n.png", "N HD", "7", -1.0, ["G"]
    )  # fmt: skip
    (src,) = ch.sources
    assert (src.provider, src.url, src.headers, src.kind, src.group) == (
        "p", "http://h/1.m3u8", (("User-Agent", "x"),), StreamKind.HLS, "G"
    )  # fmt: skip


# The key as it was first written (it is persisted: channel numbers hang on it), spelled out
# here so that a change to the module's patterns is checked against it, not with it.
_REF_MARKERS = re.compile(
    r"\((?:\d{3,4}[pi]|4k|uhd|fhd|hd|sd)\)|\[(?:[^\]]*)\]|\b(?:fhd|uhd|hd|sd|4k|hevc|h265|backup)\b",
    re.IGNORECASE,
)


def _normalise_reference(name: str) -> str:
    """The normaliser without its shortcuts (ASCII, no marker hint, ASCII punctuation)."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _REF_MARKERS.sub(" ", text.casefold())
    return re.sub(r"[\W_]+", " ", text).strip()


_NAME_PARTS = ["BBC", " ", "\t", "(", ")", "[", "]", "HD", "hd", "Hd", "SD", "fhd", "UHD", "4K",
               "HEVC", "h265", "Backup", "1080p", "(720P)", "_", "-", "|", ".", "é", "É", "ſd",
               "\u212a", "２", "ß", "(720\u0131)", "\u0131", "İ", "(1080I)", "Ω", "ᴴᴰ", "x", "\x1f",
               "\u00a0", "+1", "&", "٣"]  # fmt: skip


@given(
    st.one_of(
        st.text(max_size=30),
        st.text(st.characters(max_codepoint=127), max_size=30),
        st.lists(st.sampled_from(_NAME_PARTS), max_size=10).map("".join),
    )
)
@settings(max_examples=1200, deadline=None)
def test_shortcuts_normalise_as_the_full_path(name: str) -> None:
    """Plain ASCII names skip decomposition, names without a marker's letters skip the marker
    pattern, ASCII punctuation is cut by a table; the key is the same either way."""
    assert normalise_name(name) == _normalise_reference(name)


def test_a_groups_name_is_held_once() -> None:
    """Each entry's group is its own string from the parser; the channels and sources of one
    group share one (a 50k list's refresh held ~3 MB of copies to its end)."""
    names = ["".join(["Spo", "rts"]) for _ in range(3)]  # equal, and three objects
    assert names[0] is not names[1]
    entries = [
        Entry(name=f"C{i}", url=f"http://a/{i}.ts", provider="a", group=g)
        for i, g in enumerate(names)
    ]
    channels = merge_entries(entries)
    assert len({id(c.group) for c in channels}) == 1
    assert len({id(s.group) for c in channels for s in c.sources}) == 1
    assert channels[2].groups[0] is channels[0].group


def _fold_reference(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


@given(
    st.one_of(
        st.text(max_size=30),
        st.text(st.characters(max_codepoint=0x3FF), max_size=30),
        st.lists(st.sampled_from(["é", "Ü", "\u0301", "\u034f", "ǅ", "ß", "Ω", "Я", "ᴴ", "a",
                                  "\u20dd", " ", "ΟΔΟΣ", "ς", "ﾊﾞ", "\u00a0", "Канал", "1"]),
                 max_size=10).map("".join),
    )
)  # fmt: skip
@settings(max_examples=800, deadline=None)
def test_fold_cuts_every_combining_mark(text: str) -> None:
    """The Latin block's marks cut by one pattern, the rest one by one: the same text as the
    plain filter (U+034F is in the block and is not a combining mark)."""
    assert fold(text) == _fold_reference(text)


def test_folded_words_are_remembered_within_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Words of other scripts are folded once and looked up after; past the bound they are
    folded each time, the same."""
    monkeypatch.setattr(models, "_FOLDED", {})
    monkeypatch.setattr(models, "FOLDED_KEPT", 3)
    names = [f"Канал{i} Спорт" for i in range(6)]
    assert [fold(n) for n in names] == [_fold_reference(n) for n in names]
    assert len(models._FOLDED) == 3
    assert fold("Канал0 Спорт") == "канал0 спорт"
