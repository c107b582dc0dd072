"""A fake Plex Media Server that records every call and keeps just enough Live TV state."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web

TOKEN = "fake-plex-token-271828"
IDS: web.AppKey[dict[str, str]] = web.AppKey("ids", dict)
CHANNELS: web.AppKey[dict[str, int]] = web.AppKey("channels", dict)


@dataclass
class Call:
    method: str
    path: str
    query: list[tuple[str, str]]
    at: float


@dataclass
class PlexWorld:
    calls: list[Call] = field(default_factory=list)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)  # uuid -> device
    dvrs: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> dvr
    next_key: int = 1
    xml: bool = False  # answer XML whatever Accept says (Plex's default format)
    quiet_posts: bool = False  # POSTs answer an empty container, as some servers do

    def calls_to(self, method: str, prefix: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path.startswith(prefix)]


def fake_plex_app(world: PlexWorld) -> web.Application:  # noqa: C901 - one route table
    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        world.calls.append(
            Call(request.method, request.path, list(request.query.items()), time.monotonic())
        )
        if request.headers.get("X-Plex-Token") != TOKEN:
            return web.Response(status=401)
        return await handler(request)

    def container(**items: Any) -> web.Response:
        if world.xml:
            return web.Response(body=_to_xml("MediaContainer", items), content_type="text/xml")
        return web.json_response({"MediaContainer": items})

    def posted(**items: Any) -> web.Response:
        return container() if world.quiet_posts else container(**items)

    async def identity(_: web.Request) -> web.Response:
        return container(machineIdentifier="fake")

    async def devices(_: web.Request) -> web.Response:
        return container(Device=list(world.devices.values()))

    async def add_device(request: web.Request) -> web.Response:
        uri = request.query["uri"]
        # A real PMS fetches discover.json; the fake derives the id from the port's device map.
        device_id = request.app[IDS].get(uri)
        if device_id is None:
            return web.Response(status=400)
        uuid = f"device://tv.plex.grabbers.hdhomerun/{device_id}"
        dev = world.devices.setdefault(uuid, {"key": str(world.next_key), "uuid": uuid, "uri": uri})
        dev["uri"] = uri  # like PMS: re-adding a known DeviceID re-reads it at the new URL
        dev.pop("tuners", None)
        world.next_key += 1
        return posted(Device=[dev])

    async def dvrs(_: web.Request) -> web.Response:
        return container(Dvr=list(world.dvrs.values()))

    async def create_dvr(request: web.Request) -> web.Response:
        key = str(world.next_key)
        world.next_key += 1
        uuid = request.query["device[]"]
        world.dvrs[key] = {
            "key": key,
            "lineup": request.query["lineup"],
            "Device": [{"uuid": uuid}],
        }
        return posted(Dvr=[world.dvrs[key]])

    async def set_lineup(request: web.Request) -> web.Response:
        world.dvrs[request.match_info["key"]]["lineup"] = request.query["lineup"]
        return container()

    async def reload_guide(request: web.Request) -> web.Response:
        if request.match_info["key"] not in world.dvrs:
            return web.Response(status=404)
        return web.Response(status=200, headers={"X-Plex-Activity": "act-1"})

    async def channelmap(request: web.Request) -> web.Response:
        lineup = unquote(request.query["lineup"])
        count = request.app[CHANNELS].get(request.query["device"], 0)
        return container(
            ChannelMapping=[
                {
                    "deviceIdentifier": str(1000 + i),
                    "lineupIdentifier": f"{i}",
                    "channelKey": f"k{i}",
                    "lineup": lineup,
                }
                for i in range(count)
            ]
        )

    async def put_channelmap(_: web.Request) -> web.Response:
        return container()

    app = web.Application(middlewares=[record])
    app[IDS] = {}
    app[CHANNELS] = {}
    app.router.add_get("/identity", identity)
    app.router.add_get("/media/grabbers/devices", devices)
    app.router.add_post("/media/grabbers/devices", add_device)
    app.router.add_get("/livetv/dvrs", dvrs)
    app.router.add_post("/livetv/dvrs", create_dvr)
    app.router.add_put("/livetv/dvrs/{key}/lineups", set_lineup)
    app.router.add_post("/livetv/dvrs/{key}/reloadGuide", reload_guide)
    app.router.add_get("/livetv/epg/channelmap", channelmap)
    app.router.add_put("/media/grabbers/devices/{key}/channelmap", put_channelmap)
    return app


def _to_xml(tag: str, value: dict[str, Any]) -> bytes:
    from lxml import etree

    def build(name: str, data: dict[str, Any]) -> Any:
        elem = etree.Element(name, {k: str(v) for k, v in data.items() if not isinstance(v, list)})
        for key, items in data.items():
            if isinstance(items, list):
                for item in items:
                    elem.append(build(key, item))
        return elem

    return bytes(etree.tostring(build(tag, value)))
