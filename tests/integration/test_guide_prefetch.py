"""Guide sources download while the playlists are read, and all at once: each loopback server
below answers only once the download it waits for has been asked for, so a refresh that
fetched them in turn (the guide after the playlist, one source after another) fails."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from plextuner.config import Settings, load_settings
from plextuner.datadir import DataDir
from plextuner.errors import NothingPublishedError
from plextuner.pipeline import run_refresh
from plextuner.refresh import default_stages
from plextuner.stages import NamedStage, RefreshContext, StageName
from plextuner.state.aggregate import read_guide
from tests.waiting import until

pytestmark = pytest.mark.integration

WAIT = 10.0  # seconds a handler waits for the request it needs: only a failing run waits it
PLAYLIST = '#EXTM3U\n#EXTINF:-1 tvg-id="a.tv" group-title="G",Alpha\nhttp://h.invalid/a.ts\n'
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guide(title: str) -> bytes:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    fmt = "%Y%m%d%H%M%S +0000"
    return (
        '<?xml version="1.0"?><tv><channel id="a.tv"><display-name>Alpha</display-name>'
        "</channel>"
        + "".join(
            f'<programme start="{(now + timedelta(hours=h)).strftime(fmt)}" '
            f'stop="{(now + timedelta(hours=h + 1)).strftime(fmt)}" channel="a.tv">'
            f"<title>{title} {h}</title></programme>"
            for h in range(-1, 24)
        )
        + "</tv>"
    ).encode()


async def waited(event: asyncio.Event) -> bool:
    try:
        async with asyncio.timeout(WAIT):
            await event.wait()
    except TimeoutError:
        return False
    return True


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[dict[str, Handler]], Awaitable[str]]]:
    """Starts a loopback server of the given routes; its base URL."""
    runners: list[web.AppRunner] = []

    async def start(routes: dict[str, Handler]) -> str:
        app = web.Application()
        for path, handler in routes.items():
            app.router.add_get(path, handler)
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


def settings_for(tmp_path: Path, base: str, sources: list[str]) -> Settings:
    return load_settings(
        None,
        {
            "data_dir": str(tmp_path / "data"),
            "providers": [{"name": "p", "m3u_url": f"{base}/list.m3u"}],
            "buckets": [{"name": "g", "match": {"group": "G"}}],
            "postvalidate": {"enabled": False},
            "epg": {"days": 1, "sources": [f"{base}{s}" for s in sources]},
        },
        env={},
    )


async def refreshed_with_guide(settings: Settings, title: str) -> None:
    """A refresh whose one channel has its guide, the programmes titled `title`."""
    outcome = await run_refresh(settings, stages=default_stages(settings))
    assert [e.has_guide for e in outcome.state.devices[0].entries] == [True]
    assert f"<title>{title} 0</title>" in read_guide(settings.paths.guide("g")).decode()


async def test_a_configured_guide_downloads_while_the_playlist_is_read(
    tmp_path: Path, serve: Callable[[dict[str, Handler]], Awaitable[str]]
) -> None:
    asked = asyncio.Event()

    async def playlist(_: web.Request) -> web.StreamResponse:
        if not await waited(asked):  # answered only once the guide is on its way
            return web.Response(status=503, text="the guide was not asked for")
        return web.Response(text=PLAYLIST)

    async def xmltv(_: web.Request) -> web.StreamResponse:
        asked.set()
        return web.Response(body=guide("Show"), content_type="application/xml")

    base = await serve({"/list.m3u": playlist, "/guide.xml": xmltv})
    await refreshed_with_guide(settings_for(tmp_path, base, ["/guide.xml"]), "Show")


async def test_guides_download_at_once_and_keep_their_order(
    tmp_path: Path, serve: Callable[[dict[str, Handler]], Awaitable[str]]
) -> None:
    """The first source answers only after the second has answered in full: its programmes
    still win the slots both have (the first configured is the first in priority)."""
    first_asked, second_done = asyncio.Event(), asyncio.Event()

    async def playlist(_: web.Request) -> web.StreamResponse:
        return web.Response(text=PLAYLIST)

    async def first(_: web.Request) -> web.StreamResponse:
        first_asked.set()
        if not await waited(second_done):
            return web.Response(status=503, text="the second guide was not fetched meanwhile")
        return web.Response(body=guide("First"), content_type="application/xml")

    async def second(request: web.Request) -> web.StreamResponse:
        if not await waited(first_asked):
            return web.Response(status=503, text="asked for before the first")
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(guide("Second"))
        await response.write_eof()
        second_done.set()
        return response

    base = await serve({"/list.m3u": playlist, "/1.xml": first, "/2.xml": second})
    settings = settings_for(tmp_path, base, ["/1.xml", "/2.xml"])
    await run_refresh(settings, stages=default_stages(settings))
    text = read_guide(DataDir(tmp_path / "data").guide("g")).decode()
    assert "<title>First 0</title>" in text
    assert "Second" not in text


async def test_a_failed_refresh_leaves_no_download_behind(
    tmp_path: Path, serve: Callable[[dict[str, Handler]], Awaitable[str]]
) -> None:
    """Every provider fails while the guide is half downloaded: the refresh raises as before,
    the download is cancelled (the autouse fixture fails a test that leaves a task running)
    and its partial file is gone."""
    asked, finish = asyncio.Event(), asyncio.Event()

    async def playlist(_: web.Request) -> web.StreamResponse:
        await waited(asked)
        return web.Response(status=404)

    async def xmltv(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(guide("Show")[:4096])
        asked.set()
        await waited(finish)  # the rest never comes while the refresh runs
        return response

    base = await serve({"/list.m3u": playlist, "/guide.xml": xmltv})
    settings = settings_for(tmp_path, base, ["/guide.xml"])
    try:
        with pytest.raises(NothingPublishedError, match="every provider failed"):
            await run_refresh(settings, stages=default_stages(settings))
    finally:
        finish.set()
    cache = settings.paths.epg_cache
    assert [p.name for p in cache.rglob("*") if p.is_file()] == [] if cache.exists() else True


async def test_the_stages_wait_for_the_downloads(
    tmp_path: Path, serve: Callable[[dict[str, Handler]], Awaitable[str]]
) -> None:
    """A guide still downloading once the channels are bucketed is waited for before the
    first stage runs: post-validation never times the network while a guide takes it up.
    (The guide's server waits, bounded, to see whether a stage runs before it is done.)"""
    stage_ran = asyncio.Event()
    done_at_stage: list[bool] = []

    async def playlist(_: web.Request) -> web.StreamResponse:
        return web.Response(text=PLAYLIST)

    async def xmltv(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        body = guide("Show")
        await response.write(body[:4096])
        with contextlib.suppress(TimeoutError):  # only a wrong run sees the stage meanwhile
            async with asyncio.timeout(1.0):
                await stage_ran.wait()
        await response.write(body[4096:])
        return response

    async def probe_like(ctx: RefreshContext) -> None:
        done_at_stage.append(ctx.early[StageName.GUIDE].done())
        stage_ran.set()

    base = await serve({"/list.m3u": playlist, "/guide.xml": xmltv})
    settings = settings_for(tmp_path, base, ["/guide.xml"])
    stages = [NamedStage(StageName.VALIDATE, probe_like), *default_stages(settings)]
    outcome = await run_refresh(settings, stages=stages)
    assert done_at_stage == [True]
    assert [e.has_guide for e in outcome.state.devices[0].entries] == [True]


def xtream_panel(asked: asyncio.Event, *, auth: int = 1, wait: bool = True) -> dict[str, Handler]:
    """An Xtream Codes panel of one channel whose stream list is answered only once its
    xmltv.php has been asked for (`wait`)."""

    async def api(request: web.Request) -> web.StreamResponse:
        action = request.query.get("action")
        if action is None:
            info = {"auth": auth, "status": "Active", "max_connections": "1", "active_cons": "0"}
            return web.json_response({"user_info": info})
        if action == "get_live_categories":
            return web.json_response([{"category_id": "1", "category_name": "G"}])
        if wait and not await waited(asked):
            return web.Response(status=503, text="the guide was not asked for")
        stream = {"stream_id": 1, "name": "Alpha", "epg_channel_id": "a.tv", "category_id": "1"}
        return web.json_response([{**stream, "stream_type": "live"}])

    async def xmltv(_: web.Request) -> web.StreamResponse:
        asked.set()
        return web.Response(body=guide("Panel"), content_type="application/xml")

    return {"/player_api.php": api, "/xmltv.php": xmltv}


def panel_settings(tmp_path: Path, panel: str, playlist: str | None = None) -> Settings:
    providers: list[dict[str, object]] = [
        {"name": "xt", "xtream": {"url": panel, "username": "u", "password": "p"}}
    ]
    if playlist is not None:
        providers.append({"name": "m3u", "m3u_url": playlist})
    return load_settings(
        None,
        {
            "data_dir": str(tmp_path / "data"),
            "providers": providers,
            "buckets": [{"name": "g", "match": {"group": "G"}}],
            "postvalidate": {"enabled": False},
            "epg": {"days": 1},
        },
        env={},
    )


async def test_an_xtream_panels_guide_downloads_while_its_streams_are_listed(
    tmp_path: Path, serve: Callable[[dict[str, Handler]], Awaitable[str]]
) -> None:
    asked = asyncio.Event()
    base = await serve(xtream_panel(asked))
    await refreshed_with_guide(panel_settings(tmp_path, base), "Panel")


async def test_a_failed_panels_guide_is_not_used(
    tmp_path: Path, serve: Callable[[dict[str, Handler]], Awaitable[str]]
) -> None:
    """Its xmltv.php may come before the panel refuses the account: it is not read, as a
    failed provider's guide never was."""
    asked = asyncio.Event()

    async def playlist(_: web.Request) -> web.StreamResponse:
        return web.Response(text=PLAYLIST)

    base = await serve({**xtream_panel(asked, auth=0, wait=False), "/list.m3u": playlist})
    settings = panel_settings(tmp_path, base, f"{base}/list.m3u")
    outcome = await run_refresh(settings, stages=default_stages(settings))
    assert asked.is_set()  # downloaded early,
    assert [p.ok for p in outcome.state.providers] == [False, True]  # but its panel failed
    assert [e.has_guide for e in outcome.state.devices[0].entries] == [False]
    assert "Panel" not in read_guide(DataDir(tmp_path / "data").guide("g")).decode()


async def test_a_failed_panels_download_is_not_waited_for(
    tmp_path: Path, serve: Callable[[dict[str, Handler]], Awaitable[str]]
) -> None:
    """A panel that refuses the account while its xmltv.php still downloads: that download is
    cancelled once the lists are read, not waited for (it would not be read)."""
    asked, finish = asyncio.Event(), asyncio.Event()
    panel = xtream_panel(asked, auth=0, wait=False)

    async def hanging(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"<?xml version='1.0'?><tv>")
        asked.set()
        await waited(finish)
        return response

    async def playlist(_: web.Request) -> web.StreamResponse:
        await waited(asked)  # the panel's guide is on its way
        return web.Response(text=PLAYLIST)

    base = await serve({**panel, "/xmltv.php": hanging, "/list.m3u": playlist})
    settings = panel_settings(tmp_path, base, f"{base}/list.m3u")
    try:
        async with asyncio.timeout(WAIT):  # else the download's own 30 s read timeout
            outcome = await run_refresh(settings, stages=default_stages(settings))
    finally:
        finish.set()
    assert [p.ok for p in outcome.state.providers] == [False, True]


async def test_a_refresh_whose_guide_download_failed_is_freed_without_the_collector(
    tmp_path: Path, serve: Callable[[dict[str, Handler]], Awaitable[str]]
) -> None:
    """A failed download's EpgError keeps its traceback, whose frames hold the refresh's
    context, which held the download's task: a cycle that kept the whole refresh (50k
    channels: ~50 MB) for the cyclic collector, and `serve`, which freezes its heap after each
    refresh, kept it for good: ~50 MB more a refresh. With the collector off, the context of
    such a refresh goes with its outcome."""
    import gc

    async def playlist(_: web.Request) -> web.StreamResponse:
        return web.Response(text=PLAYLIST)

    async def missing(_: web.Request) -> web.StreamResponse:
        return web.Response(status=404)

    base = await serve({"/list.m3u": playlist, "/guide.xml": missing})
    settings = settings_for(tmp_path, base, ["/guide.xml"])
    gc.collect()
    gc.disable()
    try:
        outcome = await run_refresh(settings, stages=default_stages(settings))
        assert [e.has_guide for e in outcome.state.devices[0].entries] == [False]
        assert any(isinstance(o, RefreshContext) for o in gc.get_objects())
        del outcome
        # (the loop may still run a callback or two of the refresh's last tasks)
        await until(
            lambda: not any(isinstance(o, RefreshContext) for o in gc.get_objects()),
            "the refresh's context to be freed",
            3,
        )
    finally:
        gc.enable()
