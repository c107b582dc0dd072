"""The guide-match report: every channel's guide channel, tier and confidence, and for the
unmatched and doubtful ones the best candidates. The guide stage writes it to the data dir; the
`guide-match` command and the console read it."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from plextuner.buckets.models import Device, LineupEntry
from plextuner.epg.matchresult import LOW_CONFIDENCE, TIER_VALUE, UNMATCHED, MatchResult
from plextuner.fileio import encode_json


class ReportRow(msgspec.Struct, gc=False):
    """One channel's row, encoded as a JSON object in this field order (a Struct: made and
    encoded in half the time of a dict, for a 50k lineup's every row). Untracked by the
    collector (it holds no cycle) and an unmatched row's candidates one shared empty tuple:
    with collections on (`serve`), a 50k lineup's rows cost 126 ms made tracked, each with a
    list of its own; 18 ms so."""

    key: str
    number: str
    name: str
    tvg_id: str
    guide_id: str | None
    tier: str
    confidence: float
    has_programmes: bool
    note: str
    candidates: Sequence[dict[str, Any]]


def channel_row(entry: LineupEntry, result: MatchResult) -> ReportRow:
    ch = entry.channel
    candidates = (
        [
            {"guide_id": c.guide_id, "name": c.name, "score": c.score}
            for c in result.candidates
            if c.guide_id != result.guide_id
        ][:3]
        if result.candidates
        else ()
    )
    return ReportRow(
        ch.key,
        entry.number,
        ch.name,
        ch.tvg_id,
        result.guide_id,
        TIER_VALUE[result.tier],
        round(result.confidence, 3),
        bool(entry.has_guide),
        result.note,
        candidates,
    )


_NONE = TIER_VALUE[UNMATCHED.tier]


def _unmatched_row(entry: LineupEntry) -> ReportRow:
    """`channel_row` of an entry whose result is UNMATCHED (a guide-less lineup's every entry),
    its constant fields spelled out (a test holds the two equal)."""
    ch = entry.channel
    return ReportRow(ch.key, entry.number, ch.name, ch.tvg_id, None, _NONE, 0.0,
                     entry.has_guide is True, "", ())  # fmt: skip


def device_report(device: Device, results: list[MatchResult]) -> dict[str, Any]:
    if len(results) != len(device.entries):
        raise ValueError("a match result for each entry")
    if results.count(UNMATCHED) == len(results):  # a guide-less lineup: every row's shortcut
        rows = [_unmatched_row(e) for e in device.entries]
    else:
        rows = [
            _unmatched_row(e) if r is UNMATCHED else channel_row(e, r)
            for e, r in zip(device.entries, results, strict=True)
        ]
    return {
        "name": device.name,
        "channels": len(rows),
        "matched": sum(1 for r in rows if r.guide_id),
        "with_programmes": sum(1 for r in rows if r.has_programmes),
        "rows": rows,
    }


def needs_attention(row: dict[str, Any]) -> bool:
    return not row["guide_id"] or float(row["confidence"]) < LOW_CONFIDENCE


def render_text(report: dict[str, Any], unmatched_only: bool) -> str:
    lines: list[str] = []
    for device in report.get("devices", []):
        lines.append(
            f"{device['name']}: {device['matched']}/{device['channels']} matched, "
            f"{device['with_programmes']} with programmes"
        )
        for row in device["rows"]:
            if unmatched_only and not needs_attention(row):
                continue
            target = row["guide_id"] or "-"
            lines.append(
                f"  {row['number']:>6}  {row['name'][:40]:<40}  {target[:32]:<32}  "
                f"{row['tier']:<17} {row['confidence']:.2f}"
                + (f"  ({row['note']})" if row["note"] else "")
            )
            if needs_attention(row):
                lines.extend(
                    f"          candidate {c['guide_id']} ({c['name']}) {c['score']:.1f}"
                    for c in row["candidates"]
                )
    return "\n".join(lines)


class ReportSpool:
    """The devices' reports as they are made, kept in an unlinked file beside the data until
    `guide-matches.json` is written from it in device order (devices are prepared in another
    order: the helper's first). Held in memory they were the guide job's growth while it
    wrote: 6.4 MB for 50k channels with a guide, 10 MB with none."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".guide-matches.", suffix=".tmp", dir=directory)
        os.unlink(name)  # nothing left behind, whatever ends the refresh
        self._file = os.fdopen(fd, "w+b")
        self._spans: dict[int, tuple[int, int]] = {}  # device index -> (offset, length)
        self._end = 0

    def add(self, index: int, report: bytes) -> None:
        self._file.write(report)
        self._spans[index] = (self._end, len(report))
        self._end += len(report)

    def chunks(self) -> Iterator[bytes]:
        """`guide-matches.json`, a device's report at a time: `{"generated":..,"devices":[`,
        the reports comma-separated in device order, `]}`."""
        yield encode_json({"generated": time.time(), "devices": []})[:-2]  # `...,"devices":[`
        for n, index in enumerate(sorted(self._spans)):
            at, size = self._spans[index]
            if n:
                yield b","
            self._file.seek(at)
            yield self._file.read(size)
        yield b"]}"

    def close(self) -> None:
        self._file.close()
