"""Match answers kept between refreshes (epg/matchcache.py): reused only where the matcher and
the channel's facts are what they were, the same answers either way, and a cache file that
cannot be read costs a full match, nothing else."""

from __future__ import annotations

from array import array
from pathlib import Path
from typing import Any

import msgspec
import pytest

from plextuner.buckets.models import LineupEntry
from plextuner.epg import match, matchcache
from plextuner.epg.guidedata import GuideData, match_pending
from plextuner.epg.match import ChannelFacts, Matcher
from plextuner.epg.matchresult import UNMATCHED, MatchResult
from plextuner.epg.model import GuideChannel
from plextuner.ingest.models import Channel
from tests.unit.test_guide_match_expect import lineup_entries, matcher, real_guide


def matched(
    known: dict[bytes, dict[int, MatchResult]],
    monkeypatch: pytest.MonkeyPatch,
    guide: list[GuideChannel] | None = None,
    entries: list[LineupEntry] | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[GuideData, int]:
    """One pass of `match_pending` given the answers kept before; how many it matched."""
    asked = 0
    real = Matcher.match

    def match(self: Matcher, facts: ChannelFacts) -> MatchResult:
        nonlocal asked
        asked += 1
        return real(self, facts)

    monkeypatch.setattr(Matcher, "match", match)
    m = Matcher(**(options or {}))
    for ch in real_guide() if guide is None else guide:
        m.add(ch)
    data = GuideData(m, known=known)
    match_pending(data, lineup_entries() if entries is None else entries)
    monkeypatch.setattr(Matcher, "match", real)
    return data, asked


def saved_first(directory: Path, monkeypatch: pytest.MonkeyPatch) -> GuideData:
    """A first refresh's pass, its answers kept in `directory`."""
    first, _ = matched({}, monkeypatch)
    matchcache.save(directory, first.answered)
    return first


def test_an_unchanged_lineup_and_guide_match_nothing_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, asked = matched({}, monkeypatch)
    assert asked == len(first.results) > 1500
    matchcache.save(tmp_path, first.answered)
    again, asked = matched(matchcache.load(tmp_path), monkeypatch)
    assert asked == 0
    assert again.results == first.results
    # the unmatched answer is still the one object the report tells by identity
    unmatched = [k for k, r in first.results.items() if r is UNMATCHED]
    assert unmatched
    assert all(again.results[k] is UNMATCHED for k in unmatched)
    assert again.answered == first.answered  # kept for the refresh after


def test_a_changed_channel_is_matched_again_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved_first(tmp_path, monkeypatch)
    entries = lineup_entries()
    renamed = entries[0].channel
    entries[0] = LineupEntry(entries[0].number, dataclasses_replace(renamed, name="Renamed One"))
    again, asked = matched(matchcache.load(tmp_path), monkeypatch, entries=entries)
    assert asked == 1
    fresh, _ = matched({}, monkeypatch, entries=entries)
    assert again.results == fresh.results


def dataclasses_replace(channel: Channel, **changes: Any) -> Channel:
    """A channel with some fields changed."""
    return msgspec.structs.replace(channel, **changes)


@pytest.mark.parametrize(
    ("change", "options"),
    [
        ("a guide channel renamed", {}),
        ("the threshold", {"threshold": 0.8}),
        ("the manual mapping", {"manual": {"some channel": "x.tv"}}),
        ("the aliases", {"aliases": [["Alpha One", "Alpha 1"]]}),
    ],
)
def test_anything_the_answers_depend_on_matches_everything_again(
    change: str, options: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = saved_first(tmp_path, monkeypatch)
    guide = real_guide()
    if change == "a guide channel renamed":
        guide[7] = GuideChannel(guide[7].id, ("Something Else Entirely",))
    again, asked = matched(matchcache.load(tmp_path), monkeypatch, guide=guide, options=options)
    assert asked == len(first.results)
    fresh, _ = matched({}, monkeypatch, guide=guide, options=options)
    assert again.results == fresh.results


def test_the_same_guide_gives_the_same_fingerprint() -> None:
    one, two = matcher(real_guide()), matcher(real_guide())
    assert one.fingerprint() == two.fingerprint()
    two.next_source()  # the same channels, from a later source: ties are decided otherwise
    extra = GuideChannel("extra.tv", ("Extra",))
    one.add(extra)
    two.add(extra)
    assert one.fingerprint() != two.fingerprint()


def test_the_fingerprint_reads_the_channels_added_however_they_were_batched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The channels' fields reach the digest a batch at a time (and whenever a fingerprint
    is asked for): the same channels give the same fingerprint; other fields another."""
    monkeypatch.setattr(match, "ADDED_BATCH", 3)
    channels = [GuideChannel(f"c{i}.tv", (f"C {i}", "x"), lang="en") for i in range(10)]
    one, two, three = Matcher(), Matcher(), Matcher()
    for i, channel in enumerate(channels):
        one.add(channel)
        two.add(channel)
        if i % 4 == 0:
            two.fingerprint()
        three.add(GuideChannel(channel.id, (" ".join(channel.names),), lang="en"))
    assert one.fingerprint() == two.fingerprint() != three.fingerprint()


@pytest.mark.parametrize(
    "content",
    [
        b"garbage",
        b"",
        msgspec.msgpack.encode({"format": 1, "code": "x", "passes": {"zz": [[1]]}}),
        msgspec.msgpack.encode([1, 2, 3]),
        msgspec.msgpack.encode({"format": 1, "code": 5, "passes": {}}),
    ],
)
def test_an_unreadable_cache_is_no_cache(content: bytes, tmp_path: Path) -> None:
    (tmp_path / matchcache.FILE).write_bytes(content)
    assert matchcache.load(tmp_path) == {}


def test_a_cache_too_big_to_be_ours_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved_first(tmp_path, monkeypatch)
    size = (tmp_path / matchcache.FILE).stat().st_size
    monkeypatch.setattr(matchcache, "MAX_BYTES", size)
    assert matchcache.load(tmp_path)
    monkeypatch.setattr(matchcache, "MAX_BYTES", size - 1)
    assert matchcache.load(tmp_path) == {}


def test_answers_of_other_code_are_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved_first(tmp_path, monkeypatch)
    assert matchcache.load(tmp_path)
    monkeypatch.setattr(matchcache, "code_stamp", lambda: "another version")
    assert matchcache.load(tmp_path) == {}
    # a bad fingerprint in an otherwise good file
    data = msgspec.msgpack.encode(
        {"format": matchcache.FORMAT, "code": "another version", "passes": {"not hex": []}}
    )
    (tmp_path / matchcache.FILE).write_bytes(data)
    assert matchcache.load(tmp_path) == {}


def test_a_cache_that_cannot_be_written_costs_nothing_else(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    matchcache.save(blocked, {b"x" * 16: (array("Q", [1]), [UNMATCHED])})  # logged, not raised
    assert matchcache.load(blocked) == {}


def test_the_code_stamp_covers_the_matching_modules() -> None:
    assert {"plextuner.epg.match", "plextuner.epg.names", "plextuner.ingest.models"} <= set(
        matchcache._MODULES
    )
    assert len(matchcache.code_stamp()) == 32


def test_an_install_without_the_modules_sources_still_has_a_stamp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A module whose file cannot be read (a frozen or sourceless install) is stamped by the
    package's version, not an error that would end the guide job."""
    from plextuner.epg import names

    normal = matchcache.code_stamp()
    matchcache.code_stamp.cache_clear()
    monkeypatch.setattr(names, "__file__", None)
    try:
        stamp = matchcache.code_stamp()
    finally:
        matchcache.code_stamp.cache_clear()
    assert len(stamp) == 32
    assert stamp != normal
