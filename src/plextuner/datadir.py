"""Every path of the data dir in one place: built once from `data_dir`, passed down."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class DataDir:
    """The layout of the data dir (a persistent volume in Kubernetes)."""

    root: Path

    @property
    def lineups(self) -> Path:
        """The published state: every device's lineup (state.published)."""
        return self.root / "lineups.json"

    @property
    def numbers(self) -> Path:
        """Sticky GuideNumbers (buckets.numbering)."""
        return self.root / "numbers.json"

    @property
    def assignments(self) -> Path:
        """Sticky device placement (buckets.assignment)."""
        return self.root / "assignments.json"

    @property
    def probe_cache(self) -> Path:
        """Post-validation results kept for their TTL (validate.cache)."""
        return self.root / "probe_cache.json"

    @property
    def guides(self) -> Path:
        return self.root / "guides"

    def guide(self, device: str) -> Path:
        """One device's guide.xml as served (epg.writer writes, hdhr serves)."""
        return self.guides / f"{device}.xml"

    @property
    def legacy_aggregate_guide(self) -> Path:
        """`/epg.xml` as a file of its own, as earlier versions wrote it; now assembled
        from the device guides when asked (state.aggregate), so a refresh removes it."""
        return self.root / "epg.xml"

    @property
    def overrides(self) -> Path:
        """The console's overrides (state/overrides.py), applied by every refresh."""
        return self.root / "overrides.json"

    @property
    def guide_matches(self) -> Path:
        """How every channel was matched to the guide, with candidates (`guide-match` reads it)."""
        return self.root / "guide-matches.json"

    @property
    def fetch_cache(self) -> Path:
        """Downloaded playlists with their ETag/Last-Modified (ingest.fetch)."""
        return self.root / "cache" / "fetch"

    @property
    def epg_cache(self) -> Path:
        """Downloaded guide sources (epg.fetch), and the guide job's spill while it runs."""
        return self.root / "cache" / "epg"

    @property
    def demo_clips(self) -> Path:
        return self.root / "demo-clips"
