"""The guide stage inside a refresh: per-device guide.xml, coverage, failures keep the old guide."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from plextuner.config import load_settings
from plextuner.datadir import DataDir
from plextuner.epg import matchcache
from plextuner.epg.match import ChannelFacts, Matcher
from plextuner.epg.matchresult import MatchResult
from plextuner.pipeline import run_refresh
from plextuner.refresh import default_stages
from plextuner.stages import StageName
from plextuner.state.aggregate import open_aggregate, read_guide
from tests.unit.test_guide_aggregate import document

pytestmark = pytest.mark.integration


def world(tmp_path: Path, require: bool = False) -> object:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    fmt = "%Y%m%d%H%M%S +0000"
    progs = "".join(
        f'<programme start="{(now + timedelta(hours=h)).strftime(fmt)}" '
        f'stop="{(now + timedelta(hours=h + 1)).strftime(fmt)}" channel="a.tv">'
        f"<title>Show {h}</title></programme>"
        for h in range(-5, 100)
    )
    (tmp_path / "guide.xml").write_text(
        '<?xml version="1.0"?><tv><channel id="a.tv"><display-name>Alpha</display-name></channel>'
        + progs
        + "</tv>"
    )
    (tmp_path / "list.m3u").write_text(
        f'#EXTM3U url-tvg="{tmp_path / "guide.xml"}"\n'
        '#EXTINF:-1 tvg-id="A.TV" group-title="G",Alpha\nhttp://h.invalid/a.ts\n'
        '#EXTINF:-1 group-title="G",Beta\nhttp://h.invalid/b.ts\n'
    )
    return load_settings(
        None,
        {
            "data_dir": str(tmp_path / "data"),
            "providers": [{"name": "p", "m3u_url": str(tmp_path / "list.m3u")}],
            "buckets": [{"name": "g", "match": {"group": "G"}}],
            "postvalidate": {"enabled": False},
            "epg": {"days": 2, "require": require},
        },
        env={},
    )


async def test_guide_written_and_pruned(tmp_path: Path) -> None:
    """guide.xml carries the matched channel's programmes in the window and placeholders."""
    settings = world(tmp_path)
    outcome = await run_refresh(settings, stages=default_stages(settings))  # type: ignore[arg-type]
    device = outcome.state.devices[0]
    assert [e.has_guide for e in device.entries] == [True, False]
    text = read_guide(DataDir(tmp_path / "data").guide("g")).decode()
    shows = text.count("<title>Show")
    assert 45 <= shows <= 53  # now-2h .. now+48h of hourly shows
    assert text.count("<title>Beta</title>") >= 48
    assert outcome.context.reports[StageName.GUIDE].by_device["g"] == "1 matched, 1 placeholder"


async def test_failed_sources_keep_old_guide(tmp_path: Path) -> None:
    """When every guide source fails, the previous guide.xml stays as it was."""
    settings = world(tmp_path)
    await run_refresh(settings, stages=default_stages(settings))  # type: ignore[arg-type]
    before = DataDir(tmp_path / "data").guide("g").read_bytes()
    (tmp_path / "guide.xml").write_bytes(b"\x00garbage")
    outcome = await run_refresh(settings, stages=default_stages(settings))  # type: ignore[arg-type]
    assert DataDir(tmp_path / "data").guide("g").read_bytes() == before
    assert outcome.context.reports[StageName.GUIDE].by_device["g"].startswith("kept")


async def test_require_drops_unguided(tmp_path: Path) -> None:
    """epg.require drops channels without guide data from the lineup."""
    settings = world(tmp_path, require=True)
    outcome = await run_refresh(settings, stages=default_stages(settings))  # type: ignore[arg-type]
    assert [e.channel.name for e in outcome.state.devices[0].entries] == ["Alpha"]


async def test_unchanged_guides_are_not_rewritten(tmp_path: Path) -> None:
    """A refresh over the same list, guide and settings leaves guide.xml as it was (same inode,
    same mtime), so /epg.xml keeps its ETag; a changed guide source or a renamed channel
    rewrites it. The /epg.xml file an earlier version wrote is removed (it is assembled now)."""
    settings = world(tmp_path)
    paths = DataDir(tmp_path / "data")
    paths.root.mkdir(parents=True)
    paths.legacy_aggregate_guide.write_text("<tv></tv>")

    def stamps() -> tuple[tuple[int, int], str]:
        guide = paths.guide("g").stat()
        agg = open_aggregate([paths.guide("g")])
        assert agg is not None
        agg.close()
        return (guide.st_ino, guide.st_mtime_ns), agg.etag

    await run_refresh(settings, stages=default_stages(settings))  # type: ignore[arg-type]
    assert not paths.legacy_aggregate_guide.exists()
    first = stamps()
    outcome = await run_refresh(settings, stages=default_stages(settings))  # type: ignore[arg-type]
    assert stamps() == first
    assert outcome.context.reports[StageName.GUIDE].by_device["g"] == "1 matched, 1 placeholder"

    playlist = tmp_path / "list.m3u"
    playlist.write_text(playlist.read_text().replace(",Beta", ",Gamma"))
    await run_refresh(settings, stages=default_stages(settings))  # type: ignore[arg-type]
    renamed = stamps()
    assert renamed[0] != first[0] and renamed[1] != first[1]
    assert "<title>Gamma</title>" in read_guide(paths.guide("g")).decode()
    assert b"<title>Gamma</title>" in document([paths.guide("g")])

    guide = tmp_path / "guide.xml"
    guide.write_text(guide.read_text().replace("<title>Show 3<", "<title>Show three<"))
    await run_refresh(settings, stages=default_stages(settings))  # type: ignore[arg-type]
    assert stamps()[0] != renamed[0]
    assert "Show three" in paths.guide("g").read_text()

    paths.guide("g").unlink()  # a file gone from disk is written again
    await run_refresh(settings, stages=default_stages(settings))  # type: ignore[arg-type]
    assert "Show three" in paths.guide("g").read_text()


async def test_broken_programmes_cost_nothing_else(tmp_path: Path) -> None:
    """A guide with a bare `&` and an HTML entity mid-way (epg/resync.py): every programme in
    the device guide, written correctly, and one warning naming the first broken one."""
    from structlog.testing import capture_logs

    settings = world(tmp_path)
    guide = tmp_path / "guide.xml"
    text = guide.read_text().replace("<title>Show 3</title>", "<title>Law & Order</title>")
    guide.write_text(text.replace("<title>Show 7</title>", "<title>Caf&eacute;&nbsp;7</title>"))
    with capture_logs() as logs:
        await run_refresh(settings, stages=default_stages(settings))  # type: ignore[arg-type]
    written = read_guide(DataDir(tmp_path / "data").guide("g")).decode()
    assert "<title>Law &amp; Order</title>" in written
    assert "<title>Café\u00a07</title>" in written
    assert "<title>Show 8</title>" in written and "<title>Show 40</title>" in written
    warned = [e for e in logs if e["event"] == "guide_programmes_malformed"]
    assert len(warned) == 1 and warned[0]["count"] == 2
    assert warned[0]["first"].startswith('<programme start="') and "no name" in warned[0]["first"]
    parsed = [e for e in logs if e["event"] == "guide_source_parsed"]
    assert parsed[0]["malformed"] == 2 and parsed[0]["truncated"] is None


async def test_a_refresh_reuses_the_last_ones_match_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second refresh of the same list and guide matches no channel again (matchcache.py)
    and reports the same matches; a channel renamed since is matched again, alone."""
    settings = world(tmp_path)
    asked: list[str] = []
    real = Matcher.match

    def match(self: Matcher, facts: ChannelFacts) -> MatchResult:
        asked.append(facts.name)
        return real(self, facts)

    monkeypatch.setattr(Matcher, "match", match)
    await run_refresh(settings, stages=default_stages(settings))  # type: ignore[arg-type]

    def report() -> object:  # what the report says, whenever it was written
        said = json.loads(DataDir(tmp_path / "data").guide_matches.read_bytes())
        return {k: v for k, v in said.items() if k != "generated"}

    first = report()
    assert sorted(asked) == ["Alpha", "Beta"]
    assert (settings.paths.epg_cache / matchcache.FILE).exists()  # type: ignore[attr-defined]
    asked.clear()
    with capture_logs() as logs:
        await run_refresh(settings, stages=default_stages(settings))  # type: ignore[arg-type]
    assert asked == []
    said = [e for e in logs if e["event"] == "guide_channels_matched"]
    assert [(e["matched"], e["reused"]) for e in said] == [(0, 2)]
    assert report() == first
    # A refresh whose guide failed matches nothing and keeps the last answers for the next
    guide = tmp_path / "guide.xml"
    text = guide.read_text()
    guide.unlink()
    await run_refresh(settings, stages=default_stages(settings))  # type: ignore[arg-type]
    guide.write_text(text)
    playlist = tmp_path / "list.m3u"
    playlist.write_text(playlist.read_text().replace(",Beta", ",Gamma"))
    await run_refresh(settings, stages=default_stages(settings))  # type: ignore[arg-type]
    assert asked == ["Gamma"]
