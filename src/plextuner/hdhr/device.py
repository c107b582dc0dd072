"""What a device says over HTTP: discover.json, lineups, device.xml — rendered once per publish."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from plextuner.buckets.models import Device

FIRMWARE_VERSION = "20250506"
MANUFACTURER = "Silicondust"  # device.xml (UPnP requires it); discover.json leaves it out
# lineup.json codec hints, as real devices spell them (Jellyfin uses them to skip probing).
LINEUP_CODECS = {"mpeg2video": "MPEG2", "h264": "H264", "hevc": "HEVC", "mpeg1video": "MPEG2"}


@dataclass(frozen=True, slots=True)
class Identity:
    """What a device claims to be. The default, an HDHR5-4US, does not transcode: a model with
    `HDTC` makes Jellyfin and Emby offer transcode profiles we cannot honour."""

    model: str = "HDHR5-4US"
    firmware_name: str = "hdhomerun5_atsc"
    firmware_version: str = FIRMWARE_VERSION


def device_auth(device: Device) -> str:
    """A stable 24-character token (any string works; real devices rotate theirs)."""
    return hashlib.sha256(f"auth:{device.device_id}".encode()).hexdigest()[:24]


def base_url(host: str, port: int) -> str:
    return f"http://{host}:{port}"


def discover_doc(device: Device, base: str, ident: Identity = Identity()) -> dict[str, object]:
    # Key order as a real device sends it (no Manufacturer: real devices leave it out).
    return {
        "FriendlyName": device.friendly_name,
        "ModelNumber": ident.model,
        "FirmwareName": ident.firmware_name,
        "FirmwareVersion": ident.firmware_version,
        "DeviceID": device.device_id,
        "DeviceAuth": device_auth(device),
        "BaseURL": base,
        "LineupURL": f"{base}/lineup.json",
        "TunerCount": device.tuners,
    }


def lineup_items(device: Device, base: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    for e in device.entries:
        # A real device's key order: GuideNumber, GuideName, VideoCodec, AudioCodec, HD, URL.
        item: dict[str, object] = {"GuideNumber": e.number, "GuideName": e.channel.name}
        codec = LINEUP_CODECS.get(e.video_codec or "")
        if codec:
            item["VideoCodec"] = codec
        if e.hd:
            item["HD"] = 1
        item["URL"] = f"{base}/auto/v{e.number}"
        items.append(item)
    return items


def lineup_xml(items: list[dict[str, object]]) -> bytes:
    """One `<Program>` a line, as a device writes it."""
    parts = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Lineup>\n']
    for item in items:
        fields = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in item.items())
        parts.append(f"<Program>{fields}</Program>\n")
    parts.append("</Lineup>\n")
    return "".join(parts).encode()


def lineup_m3u(device: Device, items: list[dict[str, object]]) -> bytes:
    lines = ["#EXTM3U"]
    for e, item in zip(device.entries, items, strict=True):
        name = str(item["GuideName"]).replace(",", " ")
        logo = f' tvg-logo="{escape(e.channel.logo)}"' if e.channel.logo else ""
        lines.append(
            f'#EXTINF:-1 channel-id="{e.number}" tvg-chno="{e.number}" tvg-id="{e.number}"'
            f'{logo} group-title="{escape(e.channel.group)}",{name}'
        )
        lines.append(str(item["URL"]))
    return ("\n".join(lines) + "\n").encode()


def device_xml(device: Device, base: str, ident: Identity = Identity()) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<root xmlns="urn:schemas-upnp-org:device-1-0">'
        "<specVersion><major>1</major><minor>0</minor></specVersion>"
        f"<URLBase>{escape(base)}</URLBase>"
        "<device><deviceType>urn:schemas-upnp-org:device:MediaServer:1</deviceType>"
        f"<friendlyName>{escape(device.friendly_name)}</friendlyName>"
        f"<manufacturer>{MANUFACTURER}</manufacturer>"
        f"<modelName>{escape(ident.model)}</modelName>"
        f"<modelNumber>{escape(ident.model)}</modelNumber>"
        f"<serialNumber>{device.device_id}</serialNumber>"
        f"<UDN>uuid:{device.device_id}-AE2A-4E54-BBC9-33AF7D5D6A92</UDN>"
        "</device></root>\n"
    ).encode()


@dataclass(slots=True)
class Rendered:
    discover: bytes
    lineup_json: bytes
    lineup_xml: bytes
    lineup_m3u: bytes
    device_xml: bytes


@dataclass(slots=True)
class RenderCache:
    """Bodies per (device, base URL), built on first use after each publish, then reused."""

    _items: dict[tuple[str, str], Rendered] = field(default_factory=dict)

    def clear(self) -> None:
        self._items = {}

    def get(self, device: Device, base: str, ident: Identity = Identity()) -> Rendered:
        key = (device.name, base)
        hit = self._items.get(key)
        if hit is None:
            items = lineup_items(device, base)
            hit = Rendered(
                discover=json.dumps(discover_doc(device, base, ident)).encode(),
                lineup_json=json.dumps(items, ensure_ascii=False).encode(),
                lineup_xml=lineup_xml(items),
                lineup_m3u=lineup_m3u(device, items),
                device_xml=device_xml(device, base, ident),
            )
            if len(self._items) > 256:  # many Host spellings: bound the cache
                self._items.clear()
            self._items[key] = hit
        return hit
