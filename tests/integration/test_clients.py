"""Every HDHomeRun client, not only Plex: libhdhomerun's own tool over the TCP control protocol,
tuner status, honest identity, discovery that never truncates, answers clients can parse."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
import subprocess
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from plextuner.hdhr.control import GETSET_REQ, TAG_NAME, TAG_VALUE
from plextuner.hdhr.discovery import DISCOVER_REQ, frame, iter_tlvs, parse_frame, tlv
from plextuner.service import Service
from tests.conftest import free_port, require_tool, skip_or_fail
from tests.fakes.daemon import daemon_settings, running
from tests.fakes.streams import FakeCdn
from tests.integration.test_hdhr import write_playlist
from tests.waiting import until

pytestmark = pytest.mark.integration
TAG_BASE_URL, TAG_LINEUP_URL = 0x2A, 0x27


def _need_port_65001() -> None:
    """hdhomerun_config talks to 65001 only (UDP discovery and TCP control)."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", 65001))
            except OSError:
                skip_or_fail("127.0.0.1:65001 is busy here; hdhomerun_config only talks to 65001")


@contextlib.asynccontextmanager
async def daemon_on(
    cdn: FakeCdn, tmp_path: Path, discovery_port: int, **extra: object
) -> AsyncIterator[Service]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    playlist = tmp_path / "list.m3u"
    write_playlist(playlist, cdn)
    settings = daemon_settings(
        tmp_path / "data",
        providers=[{"name": "p", "m3u_url": str(playlist), "max_connections": 4}],
        buckets=[
            {"name": "news", "friendly_name": "News", "match": {"group": "News"}, "tuners": 2},
            {"name": "sports", "match": {"group": "Sports"}, "model": "HDTC-2US"},
        ],
        devices=2,
        discovery_port=discovery_port,
        **extra,
    )
    async with running(settings) as service:
        yield service


def base(service: Service, device: int = 0) -> str:
    return f"http://127.0.0.1:{service.settings.port + device}"


async def config_get(tool: str, key: str, *args: str, ok: bool = True) -> str:
    verb = "set" if args else "get"
    result = await asyncio.to_thread(
        subprocess.run,
        [tool, "127.0.0.1", verb, key, *args],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert (result.returncode == 0) is ok, (key, result.stdout, result.stderr)
    return (result.stdout + result.stderr).strip()


async def test_hdhomerun_config_get_every_key(cdn: FakeCdn, tmp_path: Path) -> None:
    """libhdhomerun's own tool reads every key over TCP; tuner status is live while a stream
    plays; a set is refused with a message."""
    tool = require_tool("hdhomerun_config")
    _need_port_65001()
    async with daemon_on(cdn, tmp_path, 65001) as service:
        assert await config_get(tool, "/sys/model") == "hdhomerun5_atsc"
        assert await config_get(tool, "/sys/hwmodel") == "HDHR5-4US"
        assert (await config_get(tool, "/sys/version")).isdigit()
        assert "plextuner" in await config_get(tool, "/sys/copyright")
        assert "channelmap" in await config_get(tool, "/sys/features")
        assert "tuner0: device=news" in await config_get(tool, "/sys/debug")
        assert "/tuner<n>/status" in await config_get(tool, "help")
        assert (await config_get(tool, "/lineup/scan")).startswith("state=complete")
        for n in range(4):  # 2 tuners of news, then 2 of sports
            assert await config_get(tool, f"/tuner{n}/status") == (
                "ch=none lock=none ss=0 snq=0 seq=0 bps=0 pps=0"
            )
            assert await config_get(tool, f"/tuner{n}/vchannel") == "none"
            assert await config_get(tool, f"/tuner{n}/lockkey") == "none"
            assert await config_get(tool, f"/tuner{n}/target") == "none"
            assert await config_get(tool, f"/tuner{n}/streaminfo") == "none"
            assert "tun: ch=none" in await config_get(tool, f"/tuner{n}/debug")
        assert "unknown" in (await config_get(tool, "/tuner9/status", ok=False)).lower()
        refused = await config_get(tool, "/tuner0/channel", "auto:1", ok=False)
        assert "read-only" in refused

        number = service.runtime.state.devices[0].entries[0].number  # type: ignore[union-attr]
        async with (
            httpx.AsyncClient(timeout=10) as client,
            client.stream("GET", f"{base(service)}/auto/v{number}") as resp,
        ):
            assert resp.status_code == 200
            body = resp.aiter_raw()  # kept open: leaving an `async for` would close the stream
            await body.__anext__()

            async def streaming() -> bool:
                status = await config_get(tool, "/tuner0/status")
                return "bps=0 " not in status and "lock=8vsb" in status

            await until(streaming, "tuner0 status to show a live bitrate", 15)
            assert await config_get(tool, "/tuner0/vchannel") == number
            assert (await config_get(tool, "/tuner0/target")).startswith("http://127.0.0.1")
            assert number in await config_get(tool, "/tuner0/streaminfo")
            doc = (await client.get(f"{base(service)}/status.json")).json()
            assert doc[0]["Resource"] == "tuner0" and doc[0]["VctNumber"] == number
            assert doc[0]["NetworkRate"] > 0 and doc[0]["TargetIP"] == "127.0.0.1"
            assert doc[1] == {"Resource": "tuner1"}
            html = (await client.get(f"{base(service)}/tuners.html")).text
            assert "Tuner 1 Channel</td><td>not in use" in html and f">{number} " in html
        await until(
            lambda: not service.engine.active_sessions(), "the session to end after the client"
        )
        assert await config_get(tool, "/tuner0/vchannel") == "none"


def _getset(name: bytes) -> bytes:
    return frame(GETSET_REQ, tlv(TAG_NAME, name + b"\x00"))


async def _exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        writer.write_eof()  # a truncated frame is dropped once the client gives up on it
        async with asyncio.timeout(5):
            return await reader.read(4096)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_control_port_survives_junk(cdn: FakeCdn, tmp_path: Path) -> None:
    """Bad CRC, truncated frames, huge lengths and garbage close that connection only; several
    requests on one connection work; the daemon keeps answering."""
    port = free_port()
    async with daemon_on(cdn, tmp_path, port) as service:
        good = _getset(b"/sys/hwmodel")
        bad_crc = good[:-4] + bytes(4)
        junk = [
            bad_crc,
            good[:6],
            struct.pack(">HH", GETSET_REQ, 0xFFFF) + b"x" * 100,
            b"\x00" * 3,
            b"GET / HTTP/1.1\r\n\r\n",
            frame(DISCOVER_REQ, b""),
            frame(GETSET_REQ, b""),
            frame(GETSET_REQ, b"\x03\x85"),  # a TLV length past the end
        ]
        for data in junk:
            assert await _exchange(port, data) == b"", data
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for key in (b"/sys/model", b"/sys/hwmodel"):
            writer.write(_getset(key))
            await writer.drain()
            head = await reader.readexactly(4)
            body = await reader.readexactly(struct.unpack(">H", head[2:])[0] + 4)
            _, payload = parse_frame(head + body)
            tags = dict(iter_tlvs(payload))
            assert tags[TAG_NAME] == key + b"\x00" and tags[TAG_VALUE].endswith(b"\x00")
        writer.close()
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{base(service)}/discover.json")).status_code == 200


def _discover(port: int) -> dict[int, bytes]:
    request = frame(DISCOVER_REQ, tlv(0x01, struct.pack(">I", 1)))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(request, ("127.0.0.1", port))
        data, _ = sock.recvfrom(2048)
    return dict(iter_tlvs(parse_frame(data)[1]))


async def test_discovery_never_truncates_urls(cdn: FakeCdn, tmp_path: Path) -> None:
    """A long advertise_host gives the IP literal in BaseURL (never a cut URL); a LineupURL over
    127 bytes is left out; a short host name is used as it is."""
    port = free_port(kind=socket.SOCK_DGRAM)
    long_host = "plextuner.home.arpa"
    async with daemon_on(cdn, tmp_path / "a", port, advertise_host=long_host):
        tags = await asyncio.to_thread(_discover, port)
        assert tags[TAG_BASE_URL].decode().startswith("http://127.0.0.1:")
        assert len(tags[TAG_BASE_URL]) <= 28
        assert tags[TAG_LINEUP_URL].decode().startswith(f"http://{long_host}:")
    port = free_port(kind=socket.SOCK_DGRAM)
    huge = "a" * 60 + "." + "b" * 60 + ".example"
    async with daemon_on(cdn, tmp_path / "b", port, advertise_host=huge):
        tags = await asyncio.to_thread(_discover, port)
        assert tags[TAG_BASE_URL].decode().startswith("http://127.0.0.1:")
        assert TAG_LINEUP_URL not in tags
    port = free_port(kind=socket.SOCK_DGRAM)
    async with daemon_on(cdn, tmp_path / "c", port, advertise_host="tv.lan"):
        tags = await asyncio.to_thread(_discover, port)
        assert tags[TAG_BASE_URL].decode().startswith("http://tv.lan:")


async def test_identity_and_lineup_format(cdn: FakeCdn, tmp_path: Path) -> None:
    """No transcoding model by default (configurable per device), no Manufacturer, the real key
    order, ?show=found, one <Program> a line."""
    async with daemon_on(cdn, tmp_path, 0) as service, httpx.AsyncClient() as client:
        disc = (await client.get(f"{base(service)}/discover.json")).json()
        assert disc["ModelNumber"] == "HDHR5-4US" and disc["FirmwareName"] == "hdhomerun5_atsc"
        assert "Manufacturer" not in disc
        assert list(disc) == [
            "FriendlyName",
            "ModelNumber",
            "FirmwareName",
            "FirmwareVersion",
            "DeviceID",
            "DeviceAuth",
            "BaseURL",
            "LineupURL",
            "TunerCount",
        ]
        other = (await client.get(f"{base(service, 1)}/discover.json")).json()
        assert other["ModelNumber"] == "HDTC-2US"
        found = await client.get(f"{base(service)}/lineup.json?show=found")
        assert found.status_code == 200
        for item in found.json():
            assert list(item)[:2] == ["GuideNumber", "GuideName"] and list(item)[-1] == "URL"
        xml = (await client.get(f"{base(service)}/lineup.xml")).text
        programs = [line for line in xml.splitlines() if "<Program>" in line]
        assert len(programs) == len(found.json())
        assert all(p.startswith("<Program>") and p.endswith("</Program>") for p in programs)


async def test_tune_errors_are_headers_with_empty_bodies(cdn: FakeCdn, tmp_path: Path) -> None:
    """801 unknown channel (404), 804 a busy /tunerN, 805 all tuners busy: empty bodies; HEAD
    answers without opening an upstream; ?transcode= is accepted and ignored."""
    async with daemon_on(cdn, tmp_path, 0) as service, httpx.AsyncClient(timeout=10) as client:
        unknown = await client.get(f"{base(service)}/auto/v99999")
        assert unknown.status_code == 404 and unknown.content == b""
        assert unknown.headers["X-HDHomeRun-Error"].startswith("801")
        entries = service.runtime.state.devices[0].entries  # type: ignore[union-attr]
        before = cdn.state.requests
        head = await client.head(f"{base(service)}/auto/v{entries[0].number}")
        assert head.status_code == 200 and head.headers["Content-Type"].startswith("video/")
        assert cdn.state.requests == before, "HEAD opened an upstream"
        first = f"{base(service)}/tuner0/v{entries[0].number}?transcode=heavy"
        second = f"{base(service)}/auto/v{entries[1].number}"
        async with client.stream("GET", first) as a:
            assert a.status_code == 200
            body_a = a.aiter_raw()
            await body_a.__anext__()
            busy = await client.get(f"{base(service)}/tuner0/v{entries[1].number}")
            assert busy.status_code == 503 and busy.content == b""
            assert busy.headers["X-HDHomeRun-Error"].startswith("804")
            async with client.stream("GET", second) as b:
                assert b.status_code == 200
                body_b = b.aiter_raw()
                await body_b.__anext__()
                full = await client.get(f"{base(service)}/auto/v{entries[2].number}")
                assert full.status_code == 503 and full.content == b""
                assert full.headers["X-HDHomeRun-Error"].startswith("805")


async def test_status_json_idle(cdn: FakeCdn, tmp_path: Path) -> None:
    """Idle tuners are `{"Resource": "tunerN"}` and nothing else, on every device."""
    async with daemon_on(cdn, tmp_path, 0) as service, httpx.AsyncClient() as client:
        for device in (0, 1):
            doc = json.loads((await client.get(f"{base(service, device)}/status.json")).text)
            assert doc == [{"Resource": "tuner0"}, {"Resource": "tuner1"}]
            via_prefix = await client.get(f"{base(service)}/devices/sports/status.json")
            assert via_prefix.status_code == 200


def test_crc_is_zlib() -> None:
    """The frame helper's CRC is libhdhomerun's (zlib CRC-32, little-endian)."""
    data = _getset(b"/sys/model")
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])


async def _validate_xmltv(path: Path) -> None:
    tool = require_tool("tv_validate_file")
    result = await asyncio.to_thread(
        subprocess.run,
        [tool, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "XMLTV_SUPPLEMENT": "/usr/share/xmltv"},
    )
    assert result.returncode == 0, (path.name, result.stdout[-2000:], result.stderr[-2000:])


async def test_aggregate_playlist_and_guides_for_players(cdn: FakeCdn, tmp_path: Path) -> None:
    """/playlist.m3u lists every device's channels through our tuner URLs (no provider URL or
    credential), with tvg-ids that /epg.xml defines; every guide we serve passes XMLTV's own
    validator; a player (ffprobe) reads video from a playlist entry."""
    async with daemon_on(cdn, tmp_path, 0) as service, httpx.AsyncClient(timeout=20) as client:
        text = (await client.get(f"{base(service)}/playlist.m3u")).text
        lines = text.splitlines()
        assert lines[0].startswith('#EXTM3U url-tvg="http://127.0.0.1:')
        entries = [(lines[i], lines[i + 1]) for i in range(1, len(lines), 2)]
        state = service.runtime.state
        assert state is not None
        assert len(entries) == sum(len(d.entries) for d in state.devices)
        assert str(cdn.port) not in text and "pa55" not in text
        ports = {d.port for d in state.devices}
        for extinf, stream in entries:
            assert 'tvg-id="' in extinf and 'tvg-chno="' in extinf and 'group-title="' in extinf
            assert int(stream.split(":")[2].split("/")[0]) in ports
        epg = tmp_path / "epg.xml"
        epg.write_bytes((await client.get(f"{base(service)}/epg.xml")).content)
        epg_text = epg.read_text()
        for extinf, _ in entries:
            tvg_id = extinf.split('tvg-id="')[1].split('"')[0]
            assert f'<channel id="{tvg_id}">' in epg_text
        await _validate_xmltv(epg)
        for device in (0, 1):
            guide = tmp_path / f"guide{device}.xml"
            guide.write_bytes((await client.get(f"{base(service, device)}/guide.xml")).content)
            await _validate_xmltv(guide)
        ffprobe = require_tool("ffprobe")
        probe = await asyncio.to_thread(
            subprocess.run,
            [
                ffprobe,
                "-v",
                "error",
                "-show_entries",
                "stream=codec_type",
                "-of",
                "csv=p=0",
                entries[0][1],
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "video" in probe.stdout, probe.stderr


async def test_compat_port_serves_the_first_device(cdn: FakeCdn, tmp_path: Path) -> None:
    """The optional extra listener (80 for Jellyfin's auto-discovery) answers as device one."""
    extra = free_port()
    async with (
        daemon_on(cdn, tmp_path, 0, compat_http_port=extra) as service,
        httpx.AsyncClient() as client,
    ):
        disc = (await client.get(f"http://127.0.0.1:{extra}/discover.json")).json()
        first = (await client.get(f"{base(service)}/discover.json")).json()
        assert disc["DeviceID"] == first["DeviceID"]
        lineup = (await client.get(f"http://127.0.0.1:{extra}/lineup.json")).json()
        assert len(lineup) == len(service.runtime.state.devices[0].entries)  # type: ignore[union-attr]
