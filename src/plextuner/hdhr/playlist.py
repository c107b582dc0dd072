"""`/playlist.m3u` and `/epg.xml`: every device's channels for IPTV players (Kodi's
pvr.iptvsimple, TiviMate, VLC, Jellyfin's and Channels' M3U sources).

Stream URLs go through our own tuner endpoints, so provider credentials never leave the daemon
and every player counts against the same tuners and connection budget as Plex. `tvg-id` is the
guide channel id of `/epg.xml` (`<GuideNumber>.plextuner`).
"""

from __future__ import annotations

from collections.abc import Iterable

from plextuner.buckets.models import Device, channel_id


def _attr(value: str) -> str:
    """An attribute value M3U readers can take: no quotes, no line breaks."""
    return value.replace('"', "'").replace("\n", " ").replace("\r", " ")


def aggregate_m3u(
    devices: Iterable[Device], host: str, guide_url: str, id_style: str = "xmltv"
) -> bytes:
    lines = [f'#EXTM3U url-tvg="{_attr(guide_url)}" x-tvg-url="{_attr(guide_url)}"']
    for device in devices:
        for e in device.entries:
            ch = e.channel
            name = _attr(ch.name)
            group = _attr(ch.group or device.friendly_name)
            logo = f' tvg-logo="{_attr(ch.logo)}"' if ch.logo else ""
            lines.append(
                f'#EXTINF:-1 tvg-id="{channel_id(e.number, id_style)}" tvg-name="{name}"{logo}'
                f' tvg-chno="{e.number}"'
                f' group-title="{group}",{name.replace(",", " ")}'
            )
            lines.append(f"http://{host}:{device.port}/auto/v{e.number}")
    return ("\n".join(lines) + "\n").encode()
