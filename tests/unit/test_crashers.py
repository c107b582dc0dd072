# ruff: noqa: PT017 - a crasher may end in our own error; its message is then checked.
"""Every input that ever hung or crashed us (tests/data/crashers) still parses, or fails cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from plextuner.errors import IngestError
from plextuner.ingest.m3u import parse_m3u, parse_m3u_file
from plextuner.ingest.urls import url_problem
from plextuner.redact import host_of

CRASHERS = Path(__file__).parent.parent / "data" / "crashers"
PLAYLISTS = sorted(CRASHERS.glob("*.m3u"))


def test_corpus_present() -> None:
    """The corpus is found (a moved folder must not turn these tests into no-ops)."""
    assert len(PLAYLISTS) >= 3


@pytest.mark.parametrize("path", PLAYLISTS, ids=lambda p: p.name)
def test_playlist_crasher(path: Path) -> None:
    """Both parsers give checked entries or IngestError; never a hang or a foreign exception."""
    for parse in (
        lambda: parse_m3u(path.read_bytes(), path.name),
        lambda: parse_m3u_file(path, path.name),
    ):
        try:
            entries, report = parse()
        except IngestError as err:
            assert path.name in str(err)
            continue
        for entry in entries:
            assert url_problem(entry.url) is None
            assert host_of(entry.url)
        assert report.entries == len(entries)


def test_bad_urls_named_in_report() -> None:
    """The malformed URLs of bad-port.m3u are skipped with a reason; the good entry stays."""
    entries, report = parse_m3u_file(CRASHERS / "bad-port.m3u", "bad-port")
    assert [e.name for e in entries] == ["Good"]
    assert report.skipped_total == 4


def test_control_characters_removed() -> None:
    """Names reach every output without control characters (XML 1.0 cannot carry them)."""
    entries, _ = parse_m3u_file(CRASHERS / "control-chars-name.m3u", "ctl")
    assert [e.name for e in entries] == ["Esc Name"]
