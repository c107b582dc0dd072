"""A small async client for the Plex Live TV API (protocols.md §5). The token travels in a
header only, so no URL we log or raise ever carries it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from plextuner.errors import PlexAuthError, PlexError

GRABBER = "device://tv.plex.grabbers.hdhomerun/"


def device_uuid(device_id: str) -> str:
    return GRABBER + device_id


def xmltv_lineup(guide_url: str, title: str) -> str:
    return f"lineup://tv.plex.providers.epg.xmltv/{quote(guide_url, safe='')}#{quote(title)}"


@dataclass(frozen=True, slots=True)
class PlexDvr:
    key: str
    device_uuids: tuple[str, ...]
    lineup: str


def _element(elem: Any) -> dict[str, Any]:
    out: dict[str, Any] = dict(elem.attrib)
    for child in elem:
        if isinstance(child.tag, str):
            out.setdefault(child.tag, []).append(_element(child))
    return out


def xml_container(body: bytes) -> dict[str, Any]:
    """A Plex XML MediaContainer in the shape of its JSON form (attributes, child lists)."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        return {}
    return _element(root) if root.tag == "MediaContainer" else {}


class PlexClient:
    def __init__(self, base_url: str, token: str, timeout: float = 15.0) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={
                "X-Plex-Token": token,
                "Accept": "application/json",
                "X-Plex-Product": "plextuner",
                "X-Plex-Client-Identifier": "plextuner",
            },
            timeout=timeout,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, params: Any = None) -> Any:
        try:
            resp = await self._http.request(method, path, params=params)
        except httpx.HTTPError as err:
            raise PlexError(
                f"Plex unreachable at {self._http.base_url}: {type(err).__name__}"
            ) from None
        if resp.status_code == 401:
            raise PlexAuthError
        if resp.status_code >= 400:
            raise PlexError(f"Plex answered HTTP {resp.status_code} to {method} {path}")
        if not resp.content:
            return {}
        try:
            data = resp.json()
        except ValueError:
            return xml_container(resp.content)  # Plex answers XML when it ignores Accept
        return data.get("MediaContainer", {}) if isinstance(data, dict) else {}

    async def identity(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/identity")
        return result

    async def devices(self) -> list[dict[str, Any]]:
        return list((await self._call("GET", "/media/grabbers/devices")).get("Device", []))

    async def add_device(self, uri: str, uuid: str) -> dict[str, Any]:
        reply = await self._call("POST", "/media/grabbers/devices", {"uri": uri})
        found = reply.get("Device", [])
        if not found:  # some servers answer with an empty container: look the device up
            found = [
                d for d in await self.devices() if d.get("uuid") == uuid or d.get("uri") == uri
            ]
        if not found:
            raise PlexError(f"Plex did not add the device at {uri}")
        return dict(found[0])

    async def dvrs(self) -> list[PlexDvr]:
        out = []
        for dvr in (await self._call("GET", "/livetv/dvrs")).get("Dvr", []):
            uuids = tuple(str(d.get("uuid", "")) for d in dvr.get("Device", []))
            out.append(PlexDvr(str(dvr.get("key")), uuids, str(dvr.get("lineup", ""))))
        return out

    async def create_dvr(self, lineup: str, uuid: str) -> PlexDvr:
        params = {"lineup": lineup, "device[]": uuid, "language": "eng"}
        dvrs = (await self._call("POST", "/livetv/dvrs", params)).get("Dvr", [])
        if dvrs:
            return PlexDvr(str(dvrs[0].get("key")), (uuid,), lineup)
        found = [d for d in await self.dvrs() if uuid in d.device_uuids]
        if not found:
            raise PlexError("Plex did not create the DVR")
        return found[0]

    async def set_lineup(self, dvr_key: str, lineup: str) -> None:
        await self._call("PUT", f"/livetv/dvrs/{dvr_key}/lineups", {"lineup": lineup})

    async def reload_guide(self, dvr_key: str) -> None:
        await self._call("POST", f"/livetv/dvrs/{dvr_key}/reloadGuide")

    async def channel_map(self, uuid: str, lineup: str) -> list[dict[str, Any]]:
        reply = await self._call(
            "GET", "/livetv/epg/channelmap", {"device": uuid, "lineup": lineup}
        )
        return list(reply.get("ChannelMapping", []))

    async def enable_all_channels(self, device_key: str, mappings: list[dict[str, Any]]) -> int:
        """The whole map and every channel enabled in ONE call (per-channel calls time out)."""
        params: list[tuple[str, str]] = []
        enabled = []
        for m in mappings:
            dev_id = str(m.get("deviceIdentifier", ""))
            if not dev_id:
                continue
            enabled.append(dev_id)
            params.append((f"channelMappingByKey[{dev_id}]", str(m.get("channelKey", ""))))
            params.append((f"channelMapping[{dev_id}]", str(m.get("lineupIdentifier", ""))))
        params.append(("channelsEnabled", ",".join(enabled)))
        await self._call("PUT", f"/media/grabbers/devices/{device_key}/channelmap", params)
        return len(enabled)
