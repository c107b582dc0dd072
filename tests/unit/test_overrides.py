"""Overrides: parsing every field's bad input, the store, layering, and applying them so that
only the named channel changes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plextuner.buckets.models import Device
from plextuner.errors import OverrideError
from plextuner.state.overrides import (
    Override,
    OverrideStore,
    apply_overrides,
    export_yaml,
    layered,
    parse_override,
)
from tests.unit.test_epg import entry


def devices() -> list[Device]:
    a = Device(
        "a", "a", "A", "11111111", 5004, 2, entries=[entry(str(n), f"A{n}") for n in (1, 2, 3)]
    )
    b = Device(
        "b", "b", "B", "22222222", 5005, 2, entries=[entry(str(n), f"B{n}") for n in (10, 11)]
    )
    for d in (a, b):
        for e in d.entries:
            e.channel.key = f"name:{e.channel.name.lower()}"
    return [a, b]


class TestParse:
    def test_good(self) -> None:
        key, changes = parse_override({"key": "name:x", "number": "7.1", "disabled": False})
        assert key == "name:x" and changes == {"number": "7.1", "disabled": False}

    def test_null_clears(self) -> None:
        assert parse_override({"key": "k", "name": None})[1] == {"name": None}

    @pytest.mark.parametrize(
        "body",
        [
            [],
            "x",
            None,
            {},
            {"key": "k"},
            {"key": 5, "name": "x"},
            {"key": "", "name": "x"},
            {"key": "k", "nmae": "x"},
            {"key": "k", "disabled": "yes"},
            {"key": "k", "disabled": 1},
            {"key": "k", "name": ""},
            {"key": "k", "name": "x" * 201},
            {"key": "k", "name": "bad\x00name"},
            {"key": "k", "name": ["x"]},
            {"key": "k", "number": "12a"},
            {"key": "k", "number": "1234567"},
            {"key": "k", "number": 12},
            {"key": "k", "device": "../etc"},
            {"key": "k", "device": "Sports B"},
            {"key": "k", "guide_id": {"a": 1}},
            {"key": "k\n", "name": "x", "extra": 1},
        ],
    )
    def test_bad_input_is_a_clear_error(self, body: object) -> None:
        with pytest.raises(OverrideError):
            parse_override(body)


class TestStore:
    def test_put_merge_clear_delete_and_reload(self, tmp_path: Path) -> None:
        store = OverrideStore(tmp_path / "o.json")
        store.put("k", {"name": "X"}, now=1.0)
        store.put("k", {"number": "5"}, now=2.0)
        assert store.items["k"].changes() == {"name": "X", "number": "5"}
        store.save()
        again = OverrideStore.load(tmp_path / "o.json")
        assert again.items["k"].changes() == {"name": "X", "number": "5"}
        assert again.put("k", {"name": None, "number": None}) is None and "k" not in again.items
        assert not again.delete("k")

    def test_damaged_file_rows_skipped(self, tmp_path: Path) -> None:
        path = tmp_path / "o.json"
        path.write_text('{"overrides": [{"key": "a", "name": "ok"}, {"key": 3}, "junk"]}')
        assert list(OverrideStore.load(path).items) == ["a"]
        path.write_text("not json at all")
        assert OverrideStore.load(path).items == {}

    def test_layered_and_export(self, tmp_path: Path) -> None:
        store = OverrideStore(tmp_path / "o.json")
        store.put("k", {"number": "9"})
        problems: list[str] = []
        merged = layered(
            [{"key": "k", "name": "From config"}, {"key": "bad", "number": "x"}], store, problems
        )
        assert merged["k"].changes() == {"name": "From config", "number": "9"}
        assert problems and "bad" in problems[0]
        doc = yaml.safe_load(export_yaml(merged.values()))
        assert doc == {"overrides": [{"key": "k", "name": "From config", "number": "9"}]}


class TestApply:
    def test_only_the_named_channel_moves(self) -> None:
        devs = devices()
        before = {e.channel.key: (d.name, e.number) for d in devs for e in d.entries}
        problems = apply_overrides(
            devs,
            {
                "name:a2": Override("name:a2", device="b"),
                "name:a3": Override("name:a3", name="Renamed", number="99"),
                "name:b10": Override("name:b10", disabled=True),
            },
        )
        assert problems == []
        after = {e.channel.key: (d.name, e.number) for d in devs for e in d.entries}
        assert after.pop("name:a2") == ("b", "2") and after.pop("name:a3") == ("a", "99")
        assert "name:b10" not in after
        assert all(after[k] == before[k] for k in after)
        assert [e.number for e in devs[1].entries] == ["2", "11"]
        assert any(e.channel.name == "Renamed" for e in devs[0].entries)

    def test_conflicts_reported_not_forced(self) -> None:
        devs = devices()
        problems = apply_overrides(
            devs,
            {
                "name:a1": Override("name:a1", number="10"),
                "name:a2": Override("name:a2", device="nowhere"),
            },
        )
        assert len(problems) == 2 and "taken" in problems[0] and "no device" in problems[1]
        assert [e.number for e in devs[0].entries] == ["1", "2", "3"]
