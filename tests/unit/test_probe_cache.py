"""The probe cache file: what a refresh reads back of the last one's results."""

from __future__ import annotations

from pathlib import Path

import pytest

from plextuner.validate.cache import ProbeCache


@pytest.mark.parametrize("garbage", [b"{not json", b'{"entries": {"k": Infinity}}', b""])
def test_an_unreadable_cache_starts_empty(tmp_path: Path, garbage: bytes) -> None:
    """A cache it cannot read costs a run its shortcuts, never the run (it raised before)."""
    path = tmp_path / "probe_cache.json"
    path.write_bytes(garbage)
    cache = ProbeCache.load(path)
    assert cache.fresh_ok("k", 1e12) is None
    cache.save(path)
    assert ProbeCache.load(path).fresh_ok("k", 1e12) is None
