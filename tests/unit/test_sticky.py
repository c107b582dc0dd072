"""Order-independent, sticky placement: device, number and port survive reorders and regroups."""

from __future__ import annotations

import random
from pathlib import Path
from unittest import mock

import msgspec
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from plextuner.buckets import Assignments, NumberMap, build_devices
from plextuner.buckets.assignment import allocate_ports
from plextuner.config import Settings, load_settings
from plextuner.ingest import Entry, merge_entries


def entry(i: int, group: str) -> Entry:
    return Entry(
        name=f"Chan {i}",
        url=f"http://cdn.invalid/{i}.ts",
        provider="p",
        tvg_id=f"c{i}.uk",
        group=group,
    )


def config(tmp_path: Path, buckets: str, extra: str = "") -> Settings:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data_dir: {tmp_path}\nbuckets:\n{buckets}{extra}")
    return load_settings(cfg, env={})


RULES = (
    "  - {name: uk, match: {group: '^UK'}, max_channels: 4}\n"
    "  - {name: news, match: {group: 'News'}, max_channels: 4}\n"
    "  - {name: sports, match: {group: 'Sport'}}\n"
)


def placement(result: object) -> dict[str, tuple[str, str, int]]:
    return {
        e.channel.key: (d.name, e.number, d.port)
        for d in result.devices  # type: ignore[attr-defined]
        for e in d.entries
    }


def run(entries: list[Entry], s: Settings, numbers: NumberMap, placed: Assignments) -> object:
    return build_devices(merge_entries(entries), s, numbers, placed)


class TestMultiGroup:
    def test_first_rule_in_config_order_not_playlist_order(self, tmp_path: Path) -> None:
        """A channel listed under "US | News" and "UK & IE" goes to the uk bucket (first rule in
        config order) whichever entry comes first in the playlist."""
        s = config(tmp_path, RULES)
        a = [entry(1, "US | News"), entry(1, "UK & IE")]
        for entries in (a, a[::-1]):
            result = run(entries, s, NumberMap(), Assignments())
            assert placement(result)["id:c1.uk"][0] == "uk"

    def test_never_in_two_devices(self, tmp_path: Path) -> None:
        """One channel, one device, however many groups list it."""
        s = config(tmp_path, RULES)
        entries = [entry(1, g) for g in ("US | News", "UK & IE", "Sports", "UK News")]
        result = run(entries, s, NumberMap(), Assignments())
        keys = [e.channel.key for d in result.devices for e in d.entries]  # type: ignore[attr-defined]
        assert keys == ["id:c1.uk"]


class TestSticky:
    def test_stays_while_its_rule_matches(self, tmp_path: Path) -> None:
        """Published in news; a new earlier rule that also matches does not move it."""
        s = config(tmp_path, RULES)
        numbers, placed = NumberMap(), Assignments()
        first = placement(run([entry(1, "World News")], s, numbers, placed))
        s2 = config(tmp_path, "  - {name: world, match: {group: 'World'}}\n" + RULES)
        second = placement(run([entry(1, "World News")], s2, numbers, placed))
        assert second["id:c1.uk"][:2] == first["id:c1.uk"][:2] == ("news", "2000")

    def test_moves_when_its_rule_no_longer_matches(self, tmp_path: Path) -> None:
        """A channel regrouped out of its bucket's rule goes to the rule that matches now."""
        s = config(tmp_path, RULES)
        numbers, placed = NumberMap(), Assignments()
        run([entry(1, "World News")], s, numbers, placed)
        again = placement(run([entry(1, "Sports")], s, numbers, placed))
        assert again["id:c1.uk"][0] == "sports"

    def test_catch_all_gives_way_to_a_new_rule(self, tmp_path: Path) -> None:
        """Parked in the default bucket, a channel moves when a rule for it is added."""
        s = config(tmp_path, RULES, "unmatched: default\n")
        numbers, placed = NumberMap(), Assignments()
        assert placement(run([entry(1, "Kids")], s, numbers, placed))["id:c1.uk"][0] == "default"
        s2 = config(
            tmp_path, RULES + "  - {name: kids, match: {group: 'Kids'}}\n", "unmatched: default\n"
        )
        assert placement(run([entry(1, "Kids")], s2, numbers, placed))["id:c1.uk"][0] == "kids"

    def test_shards_keep_their_channels(self, tmp_path: Path) -> None:
        """Removing a channel from the first shard moves nobody out of the second; a new
        channel fills the hole."""
        s = config(tmp_path, RULES)
        numbers, placed = NumberMap(), Assignments()
        entries = [entry(i, "UK") for i in range(7)]
        first = placement(run(entries, s, numbers, placed))
        assert {v[0] for v in first.values()} == {"uk", "uk-2"}
        later = [e for e in entries if e.tvg_id != "c0.uk"] + [entry(50, "UK")]
        second = placement(run(later, s, numbers, placed))
        for key, where in second.items():
            if key in first:
                assert where == first[key]
        assert second["id:c50.uk"][0] == "uk"

    def test_ports_survive_a_new_bucket_and_shard(self, tmp_path: Path) -> None:
        """A bucket added in front and a new shard take new ports; nobody else's port moves."""
        s = config(tmp_path, RULES)
        numbers, placed = NumberMap(), Assignments()
        base = [entry(1, "UK"), entry(2, "News"), entry(3, "Sport")]
        ports = {d.name: d.port for d in run(base, s, numbers, placed).devices}  # type: ignore[attr-defined]
        assert ports == {"uk": 5004, "news": 5005, "sports": 5006}
        s2 = config(tmp_path, "  - {name: kids, match: {group: 'Kids'}}\n" + RULES)
        more = base + [entry(10 + i, "News") for i in range(5)] + [entry(30, "Kids")]
        after = {d.name: d.port for d in run(more, s2, numbers, placed).devices}  # type: ignore[attr-defined]
        for name, port in ports.items():
            assert after[name] == port
        assert len(set(after.values())) == len(after)

    def test_round_trip_and_garbage(self, tmp_path: Path) -> None:
        """The file round-trips; a malformed one is ignored, never an error."""
        path = tmp_path / "assignments.json"
        placed = Assignments(
            channels={"k": ("news", "news-2")}, ports={"news-2": 5006}, rules={"news": "{}"}
        )
        placed.save(path)
        assert Assignments.load(path) == placed
        for junk in (
            '{"version": 1, "channels": [1], "ports": {"a": true, "b": 70000}}',
            '{"version": 1, "channels": {"k": ["a"]}, "ports": "x"}',
            "[]",
            "null",
        ):
            path.write_text(junk)
            assert Assignments.load(path) == Assignments()

    def test_explicit_port_wins(self) -> None:
        """An explicit port is kept; a remembered port it now collides with is reassigned."""
        got = allocate_ports([("a", None), ("b", 5004)], 5004, {"a": 5004})
        assert got == {"b": 5004, "a": 5005}


@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10**6),
    groups=st.lists(
        st.sampled_from(["UK", "UK & IE", "US | News", "News", "Sports", "Kids", "Sport UK"]),
        min_size=1,
        max_size=3,
    ),
)
def test_reorder_and_regroup_keep_everything(tmp_path: Path, seed: int, groups: list[str]) -> None:
    """Any reorder of the list, and any extra groups a channel is listed under, keep every
    channel's device, number and port."""
    s = config(tmp_path, RULES, "unmatched: default\n")
    rng = random.Random(seed)
    entries = [entry(i, rng.choice(["UK", "News", "Sports", "Kids"])) for i in range(30)]
    numbers, placed = NumberMap(), Assignments()
    before = placement(run(entries, s, numbers, placed))
    shuffled = entries[:]
    rng.shuffle(shuffled)
    # The same channels listed again under other groups, the originals still present.
    extra = [entry(int(e.tvg_id[1:-3]), rng.choice(groups)) for e in rng.sample(entries, 10)]
    mixed = extra + shuffled
    rng.shuffle(mixed)
    after = placement(run(mixed, s, numbers, placed))
    assert after == before


_JSONISH = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 10**6 + 5),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(["b0", "b0-2", "", "1"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "k"]), inner)
    ),
    max_leaves=8,
)
_PAIRS = st.dictionaries(
    st.sampled_from(["id:a", "id:b", "name:c"]),
    st.one_of(
        st.tuples(st.integers(-1, 10**6 + 1), st.floats(0, 2e9)).map(list),
        _JSONISH,
    ),
    max_size=4,
)


@given(
    numbers=st.one_of(
        st.fixed_dictionaries(
            {
                "version": st.just(1),
                "buckets": st.dictionaries(st.sampled_from(["b0", "b1"]), _PAIRS),
            }
        ),
        _JSONISH,
    ),
    assignments=st.one_of(
        st.fixed_dictionaries(
            {
                "version": st.sampled_from([1, 2, True, "1"]),
                "channels": st.one_of(
                    st.dictionaries(
                        st.sampled_from(["id:a", "id:b"]),
                        st.one_of(st.tuples(st.just("b0"), st.just("b0-2")).map(list), _JSONISH),
                    ),
                    _JSONISH,
                ),
                "ports": st.one_of(
                    st.dictionaries(
                        st.sampled_from(["b0", "b1"]),
                        st.one_of(st.integers(-1, 70000), st.booleans(), st.floats(0, 9e3)),
                    ),
                    _JSONISH,
                ),
                "rules": st.one_of(st.dictionaries(st.just("b0"), _JSONISH), _JSONISH),
            }
        ),
        _JSONISH,
    ),
)
@hsettings(max_examples=300, deadline=None)
def test_typed_reading_keeps_what_the_forgiving_reader_keeps(
    tmp_path_factory: pytest.TempPathFactory, numbers: object, assignments: object
) -> None:
    """numbers.json and assignments.json are read as one checked type when they are what save()
    wrote; any other content gives exactly what the entry-by-entry reader gives."""
    tmp = tmp_path_factory.mktemp("maps")
    (tmp / "n.json").write_bytes(msgspec.json.encode(numbers))
    (tmp / "a.json").write_bytes(msgspec.json.encode(assignments))
    fast_n, fast_a = NumberMap.load(tmp / "n.json"), Assignments.load(tmp / "a.json")
    plain = msgspec.json.decode  # the forgiving path: every file read as plain JSON
    with mock.patch("plextuner.fileio.msgspec.json.decode", lambda raw, type=None: plain(raw)):
        slow_n, slow_a = NumberMap.load(tmp / "n.json"), Assignments.load(tmp / "a.json")
    assert fast_n._map == slow_n._map
    assert (fast_a.channels, fast_a.ports, fast_a.rules) == (
        slow_a.channels,
        slow_a.ports,
        slow_a.rules,
    )


def test_a_shard_taking_new_channels_after_kept_ones_stays_in_number_order() -> None:
    """Kept channels fill their shard first and new ones the first with room: a shard holding
    both is put back in GuideNumber order (the lineup Plex reads is in channel order)."""
    from plextuner.buckets.devices import _shards
    from plextuner.buckets.models import LineupEntry
    from plextuner.config import BucketConfig
    from plextuner.ingest.models import Channel

    cfg = BucketConfig(name="b", max_channels=3)
    entries = [LineupEntry(str(1000 + i), Channel(f"k{i}", f"C{i}", "", "", "p")) for i in range(6)]
    placed = Assignments()
    placed.channels = {"k4": ("b", "b"), "k5": ("b", "b"), "k0": ("b", "b-2")}
    shards = _shards(cfg, entries, placed)
    assert {name: [e.number for e in chunk] for name, chunk in shards.items()} == {
        "b": ["1001", "1004", "1005"],
        "b-2": ["1000", "1002", "1003"],
    }
