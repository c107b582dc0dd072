"""Bucket rules, sharding at max_channels, stable numbering and DeviceIDs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from plextuner.buckets import NumberMap, build_devices
from plextuner.buckets.device_id import device_id_for, is_valid_device_id
from plextuner.buckets.rules import Rule, assign
from plextuner.config import BucketConfig, MatchConfig, load_settings
from plextuner.ingest.models import Channel


def chan(i: int, group: str = "News", provider: str = "p") -> Channel:
    return Channel(key=f"id:c{i}", name=f"C{i}", tvg_id=f"c{i}", group=group, provider=provider)


def settings(tmp_path: Path, extra: str = "") -> object:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data_dir: {tmp_path}\n"
        "buckets:\n"
        "  - {name: sports, match: {group: '^Sport'}}\n"
        "  - {name: news, match: {group: 'News', provider: '^p$'}, max_channels: 3}\n"
        "  - {name: any-news, match: {name: 'C1'}}\n" + extra
    )
    return load_settings(cfg, env={})


class TestRules:
    def test_first_match_wins_and_all_given_must_match(self, tmp_path: Path) -> None:
        """A channel goes to the first bucket whose every regex matches; the rest drop."""
        s = settings(tmp_path)
        channels = [chan(1, "Sports"), chan(2, "News"), chan(10, "News", "q"), chan(3, "Kids")]
        result = build_devices(channels, s, NumberMap())  # type: ignore[arg-type]
        by_dev = {d.name: [e.channel.key for e in d.entries] for d in result.devices}
        assert by_dev == {"sports": ["id:c1"], "news": ["id:c2"], "any-news": ["id:c10"]}
        assert result.dropped_unmatched == 1

    def test_unmatched_default(self, tmp_path: Path) -> None:
        """unmatched: default puts leftovers into a bucket named default."""
        s = settings(tmp_path, "unmatched: default\n")
        result = build_devices([chan(3, "Kids")], s, NumberMap())  # type: ignore[arg-type]
        assert [d.name for d in result.devices][-1] == "default"
        assert len(result.devices[-1].entries) == 1


class TestSharding:
    def test_split_into_shards_with_ports(self, tmp_path: Path) -> None:
        """A bucket over max_channels becomes name, name-2, ... each its own device and port."""
        s = settings(tmp_path)
        channels = [chan(i, "News") for i in range(2, 9)]
        result = build_devices(channels, s, NumberMap())  # type: ignore[arg-type]
        names = [d.name for d in result.devices]
        assert names == ["sports", "news", "news-2", "news-3", "any-news"]
        assert [len(d.entries) for d in result.devices] == [0, 3, 3, 1, 0]
        assert [d.port for d in result.devices] == [5004, 5005, 5006, 5007, 5008]
        assert len({d.device_id for d in result.devices}) == 5


class TestNumbering:
    def test_stable_across_reorder_and_additions(self, tmp_path: Path) -> None:
        """Numbers survive a reorder, a save/load and new channels taking free numbers."""
        s = settings(tmp_path)
        path = tmp_path / "numbers.json"
        channels = [chan(i, "Sports") for i in range(20)]
        numbers = NumberMap()
        first = build_devices(channels, s, numbers)  # type: ignore[arg-type]
        numbers.save(path)
        before = {e.channel.key: e.number for e in first.devices[0].entries}
        shuffled = channels[:]
        random.Random(4).shuffle(shuffled)
        shuffled = [chan(99, "Sports"), *shuffled[3:]]  # three gone, one new
        second = build_devices(shuffled, s, NumberMap.load(path))  # type: ignore[arg-type]
        after = {e.channel.key: e.number for e in second.devices[0].entries}
        for key, number in after.items():
            if key in before:
                assert before[key] == number
        assert after["id:c99"] not in before.values()

    def test_a_listed_channel_keeps_its_number_an_unlisted_one_is_forgotten(
        self, tmp_path: Path
    ) -> None:
        """Each refresh that lists a channel renews it (saved and loaded between refreshes);
        a number unused for FORGET_AFTER is free again, and a renewed one never is."""
        from plextuner.buckets.numbering import FORGET_AFTER

        path = tmp_path / "numbers.json"
        start, step = 1_800_000_000.0, FORGET_AFTER * 0.6
        numbers = NumberMap()
        first = numbers.assign({"b": [chan(1), chan(2)]}, {"b": 100}, now=start)
        assert first == {"b": {"id:c1": 100, "id:c2": 101}}
        numbers.save(path)
        numbers = NumberMap.load(path)
        assert numbers.assign({"b": [chan(1)]}, {"b": 100}, now=start + step) == {
            "b": {"id:c1": 100}
        }  # c1 renewed, c2 not
        numbers.save(path)
        numbers = NumberMap.load(path)
        # A new channel listed first takes the lowest free number: c2's, forgotten; never c1's
        later = numbers.assign({"b": [chan(4), chan(1)]}, {"b": 100}, now=start + 2 * step)
        assert later == {"b": {"id:c4": 101, "id:c1": 100}}

    def test_a_sealed_map_saves_what_it_held_and_numbers_nothing(self, tmp_path: Path) -> None:
        """`seal` (after bucketing: the pairs are not held beside a big guide's reading) saves
        the same bytes as the map itself, and refuses to number anything more."""
        held, sealed = tmp_path / "held.json", tmp_path / "sealed.json"
        for path, seal in ((held, False), (sealed, True)):
            numbers = NumberMap()
            numbers.assign({"b": [chan(1), chan(2)], "k": [chan(7)]}, {"b": 100, "k": 200}, 1e9)
            if seal:
                numbers.seal()
            numbers.save(path)
        assert sealed.read_bytes() == held.read_bytes()
        again = NumberMap.load(sealed).assign({"b": [chan(2)]}, {"b": 100}, 1e9 + 1)
        assert again == {"b": {"id:c2": 101}}
        numbers.seal()
        with pytest.raises(RuntimeError, match="sealed"):
            numbers.assign({"b": [chan(3)]}, {"b": 100})

    def test_numbers_unique_across_buckets(self, tmp_path: Path) -> None:
        """first_number collisions never give two channels one number."""
        s = settings(tmp_path)
        channels = [chan(i, "Sports") for i in range(1500)] + [
            chan(5000 + i, "News") for i in range(5)
        ]
        result = build_devices(channels, s, NumberMap())  # type: ignore[arg-type]
        numbers = [e.number for d in result.devices for e in d.entries]
        assert len(numbers) == len(set(numbers))


class TestDeviceId:
    def test_known_ids(self) -> None:
        """The libhdhomerun check digit accepts real IDs and rejects 12345678."""
        for good in ("10439EFD", "1053C0CA", "141007E7", "1322F2F9", "12345674"):
            assert is_valid_device_id(good)
        for bad in ("12345678", "FFFFFFFF", "00000000"):
            assert not is_valid_device_id(bad)

    def test_generated_ids_valid_stable_not_legacy(self) -> None:
        """Generated IDs pass the checksum, repeat per name, avoid the legacy prefixes."""
        for name in ("sports", "news", "news-2", "a" * 30):
            did = device_id_for(name)
            assert is_valid_device_id(did) and did == device_id_for(name)
            assert not 0x100 <= int(did, 16) >> 20 <= 0x122


_WORDS = st.sampled_from(["news", "sport", "uk", "kids", ""])
_PATTERN = st.one_of(st.none(), st.sampled_from(["news", "^sport", "uk|kids", "^$", "."]))


_CHANNELS = st.lists(
    st.tuples(st.lists(_WORDS, max_size=3), _WORDS, _WORDS, _WORDS, _WORDS), max_size=25
)
_STICKY = st.lists(st.integers(0, 4), max_size=25)
_FRESH = st.frozensets(st.sampled_from(["r0", "r1", "r2", "r3"]))
_UNMATCHED = st.sampled_from(["default", "drop"])


# Rules of every field, and the usual ones: groups only (or catch-alls only), which `assign`
# looks up by a channel's groups alone (one by its name, several by their tuple, none by the
# channel's `group`); each shape in about half the examples.
_RULES = st.one_of(
    st.lists(st.tuples(_PATTERN, _PATTERN, _PATTERN, _PATTERN), min_size=1, max_size=4),
    st.lists(st.tuples(_PATTERN, st.none(), st.none(), st.none()), min_size=1, max_size=4),
)


@given(
    rules=_RULES,
    channels=_CHANNELS,
    sticky_to=_STICKY,
    fresh=_FRESH,
    unmatched=_UNMATCHED,
)
@hsettings(max_examples=300, deadline=None)
def test_remembered_verdicts_place_channels_as_the_rules_do(
    rules: list[tuple[str | None, ...]],
    channels: list[tuple[list[str], str, str, str, str]],
    sticky_to: list[int],
    fresh: frozenset[str],
    unmatched: str,
) -> None:
    """`assign` remembers rule verdicts by the fields the rules read; it places every channel
    where asking each rule of each channel afresh would (sticky, catch-all and fresh rules
    included)."""
    configs = [
        BucketConfig(name=f"r{i}", match=MatchConfig(group=g, name=n, tvg_id=t, provider=p))
        for i, (g, n, t, p) in enumerate(rules)
    ]
    chans = [
        Channel(f"k{i}", name, tvg, group, provider, groups=list(groups))
        for i, (groups, group, name, tvg, provider) in enumerate(channels)
    ]
    sticky = {c.key: f"r{b}" for c, b in zip(chans, sticky_to, strict=False)}
    placed, dropped = assign(chans, configs, unmatched, sticky, fresh)

    compiled = [Rule.from_config(c) for c in configs]
    by_name = {r.bucket: r for r in compiled}
    expected: dict[str, list[str]] = {c.name: [] for c in configs}
    if unmatched == "default":
        expected.setdefault("default", [])
    lost = 0
    for ch in chans:
        kept = by_name.get(sticky.get(ch.key, ""))
        leaves = (
            kept is not None
            and kept.catch_all
            and any(r.bucket in fresh and not r.catch_all and r.matches(ch) for r in compiled)
        )
        if kept is not None and kept.matches(ch) and not leaves:
            expected[kept.bucket].append(ch.key)
            continue
        first = next((r for r in compiled if r.matches(ch)), None)
        if first is not None:
            expected[first.bucket].append(ch.key)
        elif unmatched == "default":
            expected["default"].append(ch.key)
        else:
            lost += 1
    assert {b: [c.key for c in cs] for b, cs in placed.items()} == expected
    assert dropped == lost


def test_a_channel_without_a_group_list_is_matched_on_its_group() -> None:
    """Channels whose group list is empty are matched on their `group`, each on its own (the
    remembered verdicts must not mix two of them up)."""
    configs = [BucketConfig(name="sport", match=MatchConfig(group="^sport$"))]
    chans = [
        Channel("a", "A", "", "news", "p", groups=[]),
        Channel("b", "B", "", "sport", "p", groups=[]),
    ]
    placed, dropped = assign(chans, configs, "drop")
    assert [c.key for c in placed["sport"]] == ["b"] and dropped == 1
