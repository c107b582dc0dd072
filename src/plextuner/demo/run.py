"""`plextuner demo`: the daemon on the built-in provider, no account and no config needed."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from aiohttp import web

from plextuner.addresses import advertised_host
from plextuner.config import load_settings
from plextuner.datadir import DataDir
from plextuner.demo.clips import make_clips
from plextuner.demo.provider import CHANNELS, DemoProvider
from plextuner.errors import PlexTunerError
from plextuner.logging import configure_logging
from plextuner.service import Service


async def _demo(port: int, data_dir: Path, discovery_port: int) -> int:
    clips = await make_clips(
        "ffmpeg", [name for _, name, _ in CHANNELS], DataDir(data_dir).demo_clips
    )
    runner = web.AppRunner(DemoProvider(clips).app(), access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    provider_port = runner.addresses[0][1]  # the port the OS chose
    base = f"http://127.0.0.1:{provider_port}"
    settings = load_settings(
        None,
        {
            "port": port,
            "data_dir": str(data_dir),
            "discovery_port": discovery_port,
            "refresh_interval": "6h",
            "log_format": "console",
            "providers": [
                {"name": "demo", "m3u_url": f"{base}/playlist.m3u", "max_connections": 6}
            ],
            "buckets": [
                {"name": "news", "friendly_name": "Demo News", "match": {"group": "^News$"}},
                {"name": "sports", "friendly_name": "Demo Sports", "match": {"group": "^Sports$"}},
            ],
            "postvalidate": {"enabled": False},
        },
        env={},
    )
    service = Service(settings, refresh_on_start=True)  # the provider port is new each run
    try:
        await _serve_and_announce(service, port)
    except* PlexTunerError as group:
        raise group.exceptions[0] from None
    finally:
        await runner.cleanup()
    return 0


async def _serve_and_announce(service: Service, port: int) -> None:
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(service.run())
        await service.published.wait()
        host = advertised_host(service.settings)
        print(
            "\nplextuner demo is running. Add these devices in Plex "
            "(Live TV & DVR → Set up → enter the address):",
            flush=True,
        )
        for i, name in enumerate(("Demo News", "Demo Sports")):
            print(f"  {name}: http://{host}:{port + i}", flush=True)
        print(f"Status page: http://{host}:{port}/   (Ctrl-C to stop)\n", flush=True)
        await task


def run_demo(
    port: int | None = None, data_dir: Path | None = None, discovery_port: int = 65001
) -> int:
    configure_logging("auto", "info")
    port = port or 5004
    if data_dir is None:
        data_dir = Path(tempfile.gettempdir()) / "plextuner-demo"
    data_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_demo(port, data_dir, discovery_port))
