"""Overrides: an operator's corrections layered on top of the config's rules.

Set from the console or `POST /api/v1/overrides`, kept in the data dir (`overrides.json`,
written atomically), applied by every refresh right after bucketing, so a channel's name, number,
device, guide mapping or disabled flag survives refreshes and restarts. Only the channel an
override names changes: no other channel's number or device moves. The config may carry the same
records under `overrides:` (an export from here pastes there); the data dir's win.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import msgspec
import yaml

from plextuner.buckets.models import Device, LineupEntry
from plextuner.errors import OverrideError, StateError
from plextuner.fileio import read_json, write_json

NUMBER = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,3})?")
DEVICE = re.compile(r"[a-z0-9][a-z0-9_-]{0,40}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_TEXT = 200
MAX_OVERRIDES = 100_000
SETTABLE = ("disabled", "name", "number", "device", "guide_id")
PLEX_MAX_CHANNELS = 479  # Plex fails to save a larger lineup


@dataclass(frozen=True, slots=True)
class Override:
    key: str
    disabled: bool | None = None
    name: str | None = None
    number: str | None = None
    device: str | None = None
    guide_id: str | None = None
    updated: float = 0.0

    def changes(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in SETTABLE if getattr(self, f) is not None}


def _text(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise OverrideError(f"{field}: expected a string")
    text = value.strip()
    if not text or len(text) > MAX_TEXT or _CONTROL.search(text):
        raise OverrideError(f"{field}: 1 to {MAX_TEXT} printable characters")
    return text


def parse_override(raw: object, now: float | None = None) -> tuple[str, dict[str, Any]]:
    """A request body as (key, changes); a `null` field means "clear it". Raises OverrideError
    with a message fit for the client on any malformed field."""
    if not isinstance(raw, dict):
        raise OverrideError("expected a JSON object")
    unknown = set(raw) - {"key", *SETTABLE}
    if unknown:
        raise OverrideError(f"unknown field(s): {', '.join(sorted(map(str, unknown)))[:120]}")
    key = _text("key", raw.get("key"))
    changes: dict[str, Any] = {}
    for name in SETTABLE:
        if name not in raw:
            continue
        value = raw[name]
        if value is None:
            changes[name] = None
        elif name == "disabled":
            if not isinstance(value, bool):
                raise OverrideError("disabled: expected true or false")
            changes[name] = value
        else:
            text = _text(name, value)
            if name == "number" and not NUMBER.fullmatch(text):
                raise OverrideError("number: digits, optionally .digits (like 1005 or 7.1)")
            if name == "device" and not DEVICE.fullmatch(text):
                raise OverrideError("device: a device name as the lineup shows it")
            changes[name] = text
    if not changes:
        raise OverrideError(f"nothing to change: give one of {', '.join(SETTABLE)}")
    return key, changes


class OverrideStore:
    """The data dir's overrides, by channel key."""

    def __init__(self, path: Path, items: dict[str, Override] | None = None) -> None:
        self.path = path
        self.items = items or {}

    @classmethod
    def load(cls, path: Path) -> OverrideStore:
        try:
            raw = read_json(path)
        except StateError:
            raw = None  # a damaged file must not stop refreshes; the next save replaces it
        items: dict[str, Override] = {}
        rows = raw.get("overrides", []) if isinstance(raw, dict) else []
        for row in rows if isinstance(rows, list) else []:
            try:
                key, changes = parse_override({k: v for k, v in row.items() if k != "updated"})
            except (OverrideError, AttributeError):
                continue  # a damaged row is skipped, the rest still apply
            updated = row.get("updated") if isinstance(row.get("updated"), int | float) else 0.0
            items[key] = Override(key, **changes, updated=float(updated))
        return cls(path, items)

    def save(self) -> None:
        write_json(self.path, {"overrides": [asdict(o) for o in self.items.values()]})

    def put(
        self, key: str, changes: Mapping[str, Any], now: float | None = None
    ) -> Override | None:
        """Merge `changes` into the key's override (None clears a field); None when nothing is
        left of it."""
        current = self.items.get(key, Override(key))
        merged = replace(current, **dict(changes), updated=now or time.time())
        if not merged.changes():
            self.items.pop(key, None)
            return None
        if key not in self.items and len(self.items) >= MAX_OVERRIDES:
            raise OverrideError(f"at most {MAX_OVERRIDES} overrides")
        self.items[key] = merged
        return merged

    def delete(self, key: str) -> bool:
        return self.items.pop(key, None) is not None


def from_config(
    rows: Iterable[Mapping[str, Any]], problems: list[str] | None = None
) -> dict[str, Override]:
    out: dict[str, Override] = {}
    for row in rows:
        try:
            key, changes = parse_override(dict(row))
        except OverrideError as err:
            if problems is not None:
                problems.append(f"config override {str(row.get('key'))[:80]!r}: {err}")
            continue
        out[key] = Override(key, **{k: v for k, v in changes.items() if v is not None})
    return out


def layered(
    config_rows: Iterable[Mapping[str, Any]],
    store: OverrideStore,
    problems: list[str] | None = None,
) -> dict[str, Override]:
    """The config's overrides with the data dir's on top (field by field)."""
    out = from_config(config_rows, problems)
    for key, o in store.items.items():
        base = out.get(key, Override(key))
        out[key] = replace(base, **o.changes(), updated=o.updated)
    return out


def export_yaml(overrides: Iterable[Override]) -> str:
    rows = [{"key": o.key, **o.changes()} for o in overrides]
    return yaml.safe_dump({"overrides": rows}, sort_keys=False, allow_unicode=True)


def apply_overrides(devices: list[Device], overrides: Mapping[str, Override]) -> list[str]:
    """Apply to freshly bucketed devices in place; returns what could not apply, and why."""
    problems: list[str] = []
    if not overrides:
        return problems
    by_name = {d.name: d for d in devices}
    taken = {e.number for d in devices for e in d.entries}
    for device in list(devices):
        for entry in list(device.entries):
            o = overrides.get(entry.channel.key)
            if o is None:
                continue
            if o.disabled:
                device.entries.remove(entry)
                taken.discard(entry.number)
                continue
            if o.name:
                entry.channel = msgspec.structs.replace(entry.channel, name=o.name)
            if o.number and o.number != entry.number:
                if o.number in taken:
                    problems.append(f"{entry.channel.key}: number {o.number} is taken")
                else:
                    taken.discard(entry.number)
                    entry.number = o.number
                    taken.add(o.number)
            if o.device and o.device != device.name:
                problems.extend(_move(entry, device, by_name.get(o.device), o.device))
    return problems


def _move(entry: LineupEntry, source: Device, target: Device | None, name: str) -> list[str]:
    if target is None:
        return [f"{entry.channel.key}: no device named {name}"]
    if len(target.entries) >= PLEX_MAX_CHANNELS:
        return [f"{entry.channel.key}: device {name} is full"]
    source.entries.remove(entry)
    target.entries.append(entry)
    target.entries.sort(key=lambda e: _number_sort(e.number))
    return []


def _number_sort(number: str) -> tuple[int, int]:
    major, _, minor = number.partition(".")
    return int(major or 0), int(minor or 0)
