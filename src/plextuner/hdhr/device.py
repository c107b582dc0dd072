"""What a device says over HTTP: discover.json, lineups, device.xml — rendered once per publish."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from plextuner.buckets.models import Device

MODEL_NUMBER = "HDTC-2US"
FIRMWARE_NAME = "hdhomeruntc_atsc"
FIRMWARE_VERSION = "20200101"
MANUFACTURER = "Silicondust"


def device_auth(device: Device) -> str:
    """A stable 24-character token (any string works; real devices rotate theirs)."""
    return hashlib.sha256(f"auth:{device.device_id}".encode()).hexdigest()[:24]


def base_url(host: str, port: int) -> str:
    return f"http://{host}:{port}"


def discover_doc(device: Device, base: str) -> dict[str, object]:
    # Key order as a real device sends it.
    return {
        "FriendlyName": device.friendly_name,
        "Manufacturer": MANUFACTURER,
        "ModelNumber": MODEL_NUMBER,
        "FirmwareName": FIRMWARE_NAME,
        "FirmwareVersion": FIRMWARE_VERSION,
        "DeviceID": device.device_id,
        "DeviceAuth": device_auth(device),
        "BaseURL": base,
        "LineupURL": f"{base}/lineup.json",
        "TunerCount": device.tuners,
    }


def lineup_items(device: Device, base: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    for e in device.entries:
        item: dict[str, object] = {
            "GuideNumber": e.number,
            "GuideName": e.channel.name,
            "URL": f"{base}/auto/v{e.number}",
        }
        if e.hd:
            item["HD"] = 1
        items.append(item)
    return items


def lineup_xml(items: list[dict[str, object]]) -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Lineup>']
    for item in items:
        fields = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in item.items())
        parts.append(f"<Program>{fields}</Program>")
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


def device_xml(device: Device, base: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<root xmlns="urn:schemas-upnp-org:device-1-0">'
        "<specVersion><major>1</major><minor>0</minor></specVersion>"
        f"<URLBase>{escape(base)}</URLBase>"
        "<device><deviceType>urn:schemas-upnp-org:device:MediaServer:1</deviceType>"
        f"<friendlyName>{escape(device.friendly_name)}</friendlyName>"
        f"<manufacturer>{MANUFACTURER}</manufacturer>"
        f"<modelName>{MODEL_NUMBER}</modelName><modelNumber>{MODEL_NUMBER}</modelNumber>"
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

    def get(self, device: Device, base: str) -> Rendered:
        key = (device.name, base)
        hit = self._items.get(key)
        if hit is None:
            items = lineup_items(device, base)
            hit = Rendered(
                discover=json.dumps(discover_doc(device, base)).encode(),
                lineup_json=json.dumps(items, ensure_ascii=False).encode(),
                lineup_xml=lineup_xml(items),
                lineup_m3u=lineup_m3u(device, items),
                device_xml=device_xml(device, base),
            )
            if len(self._items) > 256:  # many Host spellings: bound the cache
                self._items.clear()
            self._items[key] = hit
        return hit
