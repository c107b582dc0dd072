"""Bucket rules, sharding at max_channels, stable numbering and DeviceIDs."""

from __future__ import annotations

import random
from pathlib import Path

from plextuner.buckets import NumberMap, build_devices
from plextuner.buckets.device_id import device_id_for, is_valid_device_id
from plextuner.config import load_settings
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
