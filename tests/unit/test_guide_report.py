"""The guide-match report's JSON: the keys, their order and values the command and console read."""

from __future__ import annotations

import json

from plextuner.buckets.models import Device, LineupEntry
from plextuner.epg.matchresult import UNMATCHED, Candidate, MatchResult, MatchTier
from plextuner.epg.report import device_report, needs_attention
from plextuner.fileio import encode_json
from plextuner.ingest.models import Channel

KEYS = [
    "key", "number", "name", "tvg_id", "guide_id", "tier", "confidence", "has_programmes",
    "note", "candidates",
]  # fmt: skip


def test_rows_as_the_readers_take_them() -> None:
    matched = LineupEntry("1000", Channel("id:a.uk", "A", "a.uk", "G", "p"), has_guide=True)
    doubtful = LineupEntry("1001", Channel("name:b", "B One", "", "G", "p"))
    lost = LineupEntry("1002", Channel("name:c", "C", "", "G", "p"))
    results = [
        MatchResult("a.uk", MatchTier.TVG_ID, 1.0),
        MatchResult(
            "b1.uk",
            MatchTier.FUZZY,
            0.81234,
            (Candidate("b1.uk", "B 1", 81.2), Candidate("b2.uk", "B Two", 80.0)),
            "close call",
        ),
        UNMATCHED,
    ]
    device = Device("d", "d", "D", "15000000", 5004, 2, entries=[matched, doubtful, lost])
    report = json.loads(encode_json(device_report(device, results)))
    assert {k: report[k] for k in ("name", "channels", "matched", "with_programmes")} == {
        "name": "d", "channels": 3, "matched": 2, "with_programmes": 1,
    }  # fmt: skip
    rows = report["rows"]
    assert all(list(row) == KEYS for row in rows)
    assert rows[0] == {
        "key": "id:a.uk", "number": "1000", "name": "A", "tvg_id": "a.uk", "guide_id": "a.uk",
        "tier": "tvg-id", "confidence": 1.0, "has_programmes": True, "note": "",
        "candidates": [],
    }  # fmt: skip
    assert rows[1]["confidence"] == 0.812 and rows[1]["note"] == "close call"
    assert rows[1]["candidates"] == [{"guide_id": "b2.uk", "name": "B Two", "score": 80.0}]
    assert rows[2]["guide_id"] is None and rows[2]["tier"] == "none"
    assert [needs_attention(r) for r in rows] == [False, True, True]  # under 0.9, or none


def test_an_unmatched_row_is_written_as_any_other() -> None:
    """The unmatched rows' shortcut (a guide-less lineup's every row) gives channel_row's row,
    byte for byte, whatever the entry's has_guide."""
    from plextuner.epg.report import _unmatched_row, channel_row

    for has_guide in (None, False, True):
        entry = LineupEntry("7", Channel("name:x", "X <&>", "x.tv", "G", "p"), has_guide=has_guide)
        assert encode_json(_unmatched_row(entry)) == encode_json(channel_row(entry, UNMATCHED))
    kept = MatchResult(None, MatchTier.NONE, 0.0)  # equal to UNMATCHED, not it: the long way
    assert device_report(Device("d", "d", "D", "1", 1, 1, entries=[entry]), [kept])["rows"] == [
        channel_row(entry, kept)
    ]
