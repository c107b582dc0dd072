"""plex register / reload-guides against a recording fake Plex."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from plextuner.buckets.models import Device, LineupEntry
from plextuner.config import load_settings
from plextuner.datadir import DataDir
from plextuner.errors import PlexAuthError
from plextuner.ingest.models import Channel
from plextuner.plex.client import PlexClient
from plextuner.plex.commands import register, reload_guides, run_plex_command
from plextuner.state.published import PublishedState, save_state
from tests.fakes.plex import CHANNELS, IDS, TOKEN, PlexWorld, fake_plex_app

pytestmark = pytest.mark.integration


def state(devices: int = 5, channels: int = 3) -> PublishedState:
    from plextuner.buckets.device_id import device_id_for

    return PublishedState(
        devices=[
            Device(
                f"d{i}",
                f"d{i}",
                f"Dev {i}",
                device_id_for(f"d{i}"),
                5004 + i,
                2,
                True,
                [
                    LineupEntry(
                        str(1000 + c),
                        Channel(key=f"{i}.{c}", name=f"C{c}", tvg_id="", group="", provider="p"),
                    )
                    for c in range(channels)
                ],
            )
            for i in range(devices)
        ]
    )


@pytest.fixture
async def plex() -> AsyncIterator[tuple[TestServer, PlexWorld]]:
    world = PlexWorld()
    app = fake_plex_app(world)
    published = state()
    for d in published.devices:
        app[IDS][f"http://tuner.lan:{d.port}"] = d.device_id
        app[CHANNELS][f"device://tv.plex.grabbers.hdhomerun/{d.device_id}"] = len(d.entries)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, world
    await server.close()


def settings_for(server: TestServer, tmp_path: Path, **plex: object):  # type: ignore[no-untyped-def]
    return load_settings(
        None,
        {
            "data_dir": str(tmp_path),
            "advertise_host": "tuner.lan",
            "plex": {
                "url": str(server.make_url("")),
                "token": TOKEN,
                "batch_size": 2,
                "batch_delay": 0.5,
                **plex,
            },
        },
        env={},
    )


async def test_register_creates_one_dvr_per_device_idempotently(plex, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """One DVR per device with its guide.xml, all channels enabled in one call; reruns add none."""
    server, world = plex
    settings = settings_for(server, tmp_path)
    client = PlexClient(settings.plex.url, TOKEN)
    await register(settings, state(), client)
    assert len(world.dvrs) == 5
    lineups = sorted(d["lineup"] for d in world.dvrs.values())
    assert "http%3A%2F%2Ftuner.lan%3A5004%2Fguide.xml" in lineups[0]
    puts = world.calls_to("PUT", "/media/grabbers/devices/")
    assert len(puts) == 5
    enabled = dict(puts[0].query)["channelsEnabled"]
    assert enabled == "1000,1001,1002"
    await register(settings, state(), client)
    assert len(world.dvrs) == 5 and len(world.devices) == 5
    posts = world.calls_to("POST", "/livetv/dvrs")
    assert sum(c.path == "/livetv/dvrs" for c in posts) == 5  # created once
    assert sum(c.path.endswith("/reloadGuide") for c in posts) == 10  # reloaded on each run
    await client.aclose()


async def test_reload_guides_in_batches(plex, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Five DVRs, batch_size 2 → three batches separated by batch_delay; unserved guides wait."""
    server, world = plex
    settings = settings_for(server, tmp_path)
    client = PlexClient(settings.plex.url, TOKEN)
    await register(settings, state(), client)
    world.calls.clear()

    async def served(url: str) -> bool:
        return ":5008/" not in url  # the last device's guide is not served yet

    done = await reload_guides(settings, state(), client, served)
    await client.aclose()
    reloads = world.calls_to("POST", "/livetv/dvrs/")
    assert len(done) == len(reloads) == 4
    gaps = [b.at - a.at for a, b in itertools.pairwise(reloads)]
    assert gaps[0] < 0.4 and gaps[1] >= 0.49 and gaps[2] < 0.4


async def test_bad_token_is_a_clear_error(
    plex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """A 401 names the fix and exits 1; the token never appears."""
    server, _ = plex
    client = PlexClient(str(server.make_url("")), "wrong-token-value")
    with pytest.raises(PlexAuthError, match=r"plex\.token"):
        await client.dvrs()
    await client.aclose()
    settings = load_settings(
        None,
        {
            "data_dir": str(tmp_path),
            "advertise_host": "tuner.lan",
            "plex": {"url": str(server.make_url("")), "token": "wrong-token-value"},
        },
        env={},
    )
    save_state(DataDir(tmp_path), state())
    assert await run_plex_command("register", settings) == 1
    out = capsys.readouterr().out
    assert "Plex rejected the token" in out and "wrong-token-value" not in out


async def test_register_against_an_xml_server(plex, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A server that answers XML and empty POST replies still gets every DVR, once."""
    server, world = plex
    world.xml, world.quiet_posts = True, True
    settings = settings_for(server, tmp_path)
    client = PlexClient(settings.plex.url, TOKEN)
    await register(settings, state(), client)
    await register(settings, state(), client)
    await client.aclose()
    assert len(world.dvrs) == 5 and len(world.devices) == 5
    assert len(world.calls_to("PUT", "/media/grabbers/devices/")) == 10


async def test_register_repairs_a_stale_device_record(plex, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A device Plex knows at an old URL or with an old tuner count is re-added at its URL."""
    server, world = plex
    settings = settings_for(server, tmp_path)
    client = PlexClient(settings.plex.url, TOKEN)
    await register(settings, state(), client)
    first = next(iter(world.devices.values()))
    first["uri"] = "http://tuner.lan:6999"  # Plex still has the port from before a re-shard
    second = list(world.devices.values())[1]
    second["tuners"] = "6"  # ... or the tuner count from before a config change
    world.calls.clear()
    await register(settings, state(), client)
    await client.aclose()
    re_added = [dict(c.query)["uri"] for c in world.calls_to("POST", "/media/grabbers/devices")]
    assert len(re_added) == 2
    assert first["uri"] != "http://tuner.lan:6999" and "tuners" not in second
    assert len(world.devices) == 5  # repaired in place, never duplicated
