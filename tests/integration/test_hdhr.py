"""The daemon as Plex and hdhomerun_config see it: endpoints, discovery, tuning."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
import subprocess
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from unittest import mock

import httpx
import pytest
from lxml import etree

from plextuner.buckets.device_id import is_valid_device_id
from plextuner.hdhr.discovery import DISCOVER_RPY, build_reply, frame, iter_tlvs, parse_frame, tlv
from plextuner.service import Service
from tests.conftest import require_tool, skip_or_fail
from tests.fakes.daemon import daemon_settings, running
from tests.fakes.streams import FakeCdn
from tests.waiting import until

pytestmark = pytest.mark.integration
SECRET = "pa55-in-url-zz9"


def write_playlist(path: Path, cdn: FakeCdn) -> None:
    lines = ["#EXTM3U"]
    for i in range(6):
        group = "News" if i < 3 else "Sports"
        lines += [
            f'#EXTINF:-1 tvg-id="c{i}" group-title="{group}",Channel {i}',
            cdn.url(f"c{i}").replace("/pass/", f"/{SECRET}/"),
        ]
    lines += ['#EXTINF:-1 tvg-id="hls" group-title="Sports",HLS Channel', cdn.url("x", "hls")]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
async def daemon(cdn: FakeCdn, tmp_path: Path) -> AsyncIterator[Service]:
    playlist = tmp_path / "list.m3u"
    write_playlist(playlist, cdn)
    settings = daemon_settings(
        tmp_path / "data",
        providers=[{"name": "p", "m3u_url": str(playlist), "max_connections": 4}],
        buckets=[
            {"name": "news", "friendly_name": "News", "match": {"group": "News"}, "tuners": 1},
            {"name": "sports", "match": {"group": "Sports"}},
        ],
        devices=2,
    )
    async with running(settings) as service:
        yield service


def url(service: Service, path: str, device: int = 0) -> str:
    return f"http://127.0.0.1:{service.settings.port + device}{path}"


class TestPlexSequence:
    async def test_add_device_sequence(self, daemon: Service) -> None:
        """discover.json → lineup_status → lineup.json → lineup.post, as Plex sends them."""
        async with httpx.AsyncClient() as client:
            for i, name in enumerate(("News", "sports")):
                disc = (await client.get(url(daemon, "/discover.json", i))).json()
                port = daemon.settings.port + i
                assert disc["FriendlyName"] == name
                assert disc["BaseURL"] == f"http://127.0.0.1:{port}"
                assert disc["LineupURL"] == f"http://127.0.0.1:{port}/lineup.json"
                assert is_valid_device_id(disc["DeviceID"])
                assert disc["TunerCount"] == (1 if i == 0 else 2)
                status = (await client.get(url(daemon, "/lineup_status.json", i))).json()
                assert status["ScanInProgress"] == 0 and status["SourceList"] == ["Cable"]
                lineup = (await client.get(url(daemon, "/lineup.json", i))).json()
                assert len(lineup) == (3 if i == 0 else 4)
                assert all(
                    item["URL"] == f"http://127.0.0.1:{port}/auto/v{item['GuideNumber']}"
                    for item in lineup
                )
                post = await client.post(url(daemon, "/lineup.post?scan=start&source=Cable", i))
                assert post.status_code == 200

    async def test_prefix_routes_and_formats(self, daemon: Service) -> None:
        """Every device is also under /devices/<name>/ on any port; xml, m3u and device.xml."""
        async with httpx.AsyncClient() as client:
            disc = (await client.get(url(daemon, "/devices/sports/discover.json"))).json()
            assert disc["BaseURL"].endswith(f":{daemon.settings.port + 1}")
            xml = (await client.get(url(daemon, "/devices/news/lineup.xml"))).text
            assert xml.count("<Program>") == 3 and "<GuideNumber>" in xml
            m3u = (await client.get(url(daemon, "/lineup.m3u", 1))).text
            assert m3u.startswith("#EXTM3U") and m3u.count("#EXTINF") == 4
            dxml = (await client.get(url(daemon, "/device.xml"))).text
            assert "urn:schemas-upnp-org:device-1-0" in dxml and disc["DeviceID"] not in dxml

    async def test_advertised_host_follows_request(self, daemon: Service) -> None:
        """BaseURL uses the Host the client used (a Service name, a NodePort address)."""
        async with httpx.AsyncClient() as client:
            r = await client.get(url(daemon, "/discover.json"), headers={"Host": "tuner.lan:80"})
            assert r.json()["BaseURL"] == f"http://tuner.lan:{daemon.settings.port}"
            r = await client.get(url(daemon, "/discover.json"), headers={"Host": "<bad>"})
            assert r.json()["BaseURL"] == f"http://127.0.0.1:{daemon.settings.port}"

    async def test_no_credential_in_any_body(self, daemon: Service) -> None:
        """No endpoint reveals a provider URL or its credentials."""
        paths = [
            "/discover.json",
            "/lineup.json",
            "/lineup.xml",
            "/lineup.m3u",
            "/device.xml",
            "/lineup_status.json",
            "/api/v1/status",
            "/",
            "/metrics",
            "/readyz",
        ]
        async with httpx.AsyncClient() as client:
            for i in range(2):
                for path in paths:
                    body = (await client.get(url(daemon, path, i))).text
                    assert SECRET not in body and "/live/" not in body, path


class TestBadRequests:
    @pytest.mark.parametrize(
        "path",
        [
            "/nope",
            "/devices/nope/lineup.json",
            "/devices/..%2F..%2Fetc/lineup.json",
            "/../../etc/passwd",
            "/auto/v99999999999",
            "/auto/vabc",
            "/auto/v-1",
            "/tuner99/v1000",
            "/auto/v1000%2F..",
            "/devices/news%2F..%2Fsports/lineup.json",
        ],
    )
    async def test_path_tricks(self, daemon: Service, path: str) -> None:
        """Unknown paths and tricks are 404/400 without a trace."""
        async with httpx.AsyncClient() as client:
            r = await client.get(url(daemon, path))
            assert r.status_code in (400, 404), path
            assert "Traceback" not in r.text

    async def test_unknown_channel_404(self, daemon: Service) -> None:
        """A well-formed but unknown channel is 404 with the HDHomeRun error."""
        async with httpx.AsyncClient() as client:
            r = await client.get(url(daemon, "/auto/v5"))
            assert r.status_code == 404
            assert r.headers["X-HDHomeRun-Error"].startswith("801")

    async def test_head_on_get_routes(self, daemon: Service) -> None:
        """HEAD works on every GET route."""
        async with httpx.AsyncClient() as client:
            for path in ("/discover.json", "/lineup.json", "/lineup.xml", "/healthz", "/"):
                r = await client.head(url(daemon, path))
                assert r.status_code == 200 and r.content == b""

    @pytest.mark.parametrize("path", ["/epg.xml", "/guide.xml"])
    async def test_epg_xml_as_a_static_file(self, daemon: Service, path: str) -> None:
        """/epg.xml (assembled from the device guides) and a device's guide.xml (its
        placeholders rendered as sent) answer as a file would: length, ETag
        and Last-Modified, 304 to a matching If-None-Match or If-Modified-Since, one byte range
        (206, its Content-Range; 416 past the end; the whole file when If-Range names another
        version), HEAD without a body; and the kernel's sendfile or the fallback, same bytes."""
        async with httpx.AsyncClient() as client:
            whole = await client.get(url(daemon, path))
            assert whole.status_code == 200
            body = whole.content
            assert int(whole.headers["Content-Length"]) == len(body)
            assert whole.headers["Content-Type"].startswith("application/xml")
            root = etree.fromstring(body)
            tags = [e.tag for e in root]
            channels = 7 if path == "/epg.xml" else tags.count("channel")
            assert tags.count("channel") == channels and tags.index("programme") == channels
            assert len(tags) > channels * 10  # the placeholders rendered (hourly, for days)
            etag, modified = whole.headers["ETag"], whole.headers["Last-Modified"]
            assert (await client.get(url(daemon, path), headers={"If-None-Match": etag})
                    ).status_code == 304  # fmt: skip
            assert (await client.get(url(daemon, path), headers={"If-None-Match": '"x"'})
                    ).content == body  # fmt: skip
            since = await client.get(url(daemon, path), headers={"If-Modified-Since": modified})
            assert since.status_code == 304
            part = await client.get(url(daemon, path), headers={"Range": "bytes=30-4000"})
            assert part.status_code == 206 and part.content == body[30:4001]
            assert part.headers["Content-Range"] == f"bytes 30-4000/{len(body)}"
            tail = await client.get(url(daemon, path), headers={"Range": "bytes=-100"})
            assert tail.status_code == 206 and tail.content == body[-100:]
            past = await client.get(url(daemon, path), headers={"Range": f"bytes={len(body)}-"})
            assert past.status_code == 416
            assert past.headers["Content-Range"] == f"bytes */{len(body)}"
            for garbage in ("bytes=abc", "lines=1-2", "bytes=5-1"):  # ignored, as RFC 9110 says
                bad = await client.get(url(daemon, path), headers={"Range": garbage})
                assert bad.status_code == 200 and bad.content == body
            stale = {"Range": "bytes=0-9", "If-Range": '"another"'}
            assert (await client.get(url(daemon, path), headers=stale)).content == body
            fresh = {"Range": "bytes=0-9", "If-Range": etag}
            assert (await client.get(url(daemon, path), headers=fresh)).content == body[:10]
            head = await client.head(url(daemon, path))
            assert head.status_code == 200 and head.content == b""
            assert int(head.headers["Content-Length"]) == len(body)
            loop = asyncio.get_running_loop()
            with mock.patch.object(loop, "sendfile", side_effect=NotImplementedError):
                assert (await client.get(url(daemon, path))).content == body

    async def test_epg_xml_player_gone_midway(
        self, daemon: Service, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A player that drops /epg.xml halfway (a reset while the kernel sends it) ends that
        answer quietly: no error and no traceback logged, the next download whole."""
        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient() as client:
            body = (await client.get(url(daemon, "/epg.xml"))).content
            gone = ConnectionResetError(104, "Connection reset by peer")
            with (
                caplog.at_level(logging.ERROR),
                mock.patch.object(loop, "sendfile", side_effect=gone),
                pytest.raises(httpx.RemoteProtocolError),
            ):
                await client.get(url(daemon, "/epg.xml"))
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert (await client.get(url(daemon, "/epg.xml"))).content == body


class TestTuning:
    async def test_ffprobe_reads_video(self, daemon: Service) -> None:
        """ffprobe reads H.264 video through /auto/v<n>."""
        ffprobe = require_tool("ffprobe")
        number = daemon.runtime.state.devices[0].entries[0].number  # type: ignore[union-attr]
        proc = await asyncio.create_subprocess_exec(
            ffprobe,
            "-v",
            "error",
            "-show_streams",
            "-of",
            "json",
            url(daemon, f"/auto/v{number}"),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        codecs = {s["codec_name"] for s in json.loads(out)["streams"]}
        assert "h264" in codecs

    async def test_tuner_limit_503(self, daemon: Service, cdn: FakeCdn) -> None:
        """A second tune on a one-tuner device is refused with 503 and 805."""
        entries = daemon.runtime.state.devices[0].entries  # type: ignore[union-attr]
        async with httpx.AsyncClient(timeout=10) as client:
            async with client.stream("GET", url(daemon, f"/auto/v{entries[0].number}")) as first:
                assert first.status_code == 200
                assert first.headers["Content-Type"] == "video/mpeg"
                chunks = first.aiter_bytes()  # held: a dropped iterator closes the response
                assert (await anext(chunks))[0] == 0x47
                second = await client.get(url(daemon, f"/auto/v{entries[1].number}"))
                assert second.status_code == 503
                assert second.headers["X-HDHomeRun-Error"] == "805 All Tuners In Use"
        await until(
            lambda: cdn.state.open_connections == 0 and not daemon.engine.active_sessions(),
            "the upstream and the session to close",
        )


def discover_packet(
    device_type: int | None = 0xFFFFFFFF, device_id: int | None = 0xFFFFFFFF
) -> bytes:
    payload = b""
    if device_type is not None:
        payload += tlv(1, struct.pack(">I", device_type))
    if device_id is not None:
        payload += tlv(2, struct.pack(">I", device_id))
    return frame(2, payload)


def udp_exchange(port: int, packet: bytes, wait: float = 0.3) -> list[bytes]:
    replies = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(wait)
        sock.sendto(packet, ("127.0.0.1", port))
        try:
            while True:
                replies.append(sock.recv(2048))
        except TimeoutError:
            pass
    return replies


class TestDiscovery:
    async def test_one_reply_per_device(self, daemon: Service) -> None:
        """A wildcard request gets one valid reply per device, BaseURL within 28 bytes."""
        replies = await asyncio.to_thread(
            udp_exchange, daemon.settings.discovery_port, discover_packet()
        )
        assert len(replies) == 2
        ids = set()
        for reply in replies:
            kind, payload = parse_frame(reply)
            tags = dict(iter_tlvs(payload))
            assert kind == DISCOVER_RPY
            ids.add(struct.unpack(">I", tags[2])[0])
            assert len(tags[0x2A]) <= 28 and tags[0x2A].startswith(b"http://127.0.0.1:")
            assert tags[0x10] in (b"\x01", b"\x02")
        assert all(is_valid_device_id(i) for i in ids)

    async def test_by_id_and_newer_clients(self, daemon: Service) -> None:
        """A request naming one ID gets only that device; no ID tag at all is a wildcard."""
        port = daemon.settings.discovery_port
        did = int(daemon.runtime.state.devices[1].device_id, 16)  # type: ignore[union-attr]
        replies = await asyncio.to_thread(udp_exchange, port, discover_packet(1, did))
        assert len(replies) == 1
        assert struct.unpack(">I", dict(iter_tlvs(parse_frame(replies[0])[1]))[2])[0] == did
        extra = frame(2, tlv(1, struct.pack(">I", 1)) + tlv(0x2D, b"\x00\x00\x00\x01"))
        assert len(await asyncio.to_thread(udp_exchange, port, extra)) == 2
        assert await asyncio.to_thread(udp_exchange, port, discover_packet(5)) == []

    @pytest.mark.parametrize(
        "packet",
        [
            b"",
            b"\x00",
            discover_packet()[:-1],
            discover_packet()[:-4] + b"\0\0\0\0",
            b"\x00\x02\xff\xff" + b"x" * 20,
            b"\x00\x02" + b"\x00" * 3000,
            frame(2, b"\x01\xff"),
            frame(2, b"\x01\x85"),
            frame(4, b""),
            bytes(range(256)) * 5,
        ],
    )
    async def test_bad_packets_dropped(self, daemon: Service, packet: bytes) -> None:
        """Malformed, truncated, oversized or foreign packets get no reply and break nothing."""
        port = daemon.settings.discovery_port
        assert await asyncio.to_thread(udp_exchange, port, packet, 0.15) == []
        assert len(await asyncio.to_thread(udp_exchange, port, discover_packet())) == 2

    def test_reply_crc(self) -> None:
        """The CRC is zlib.crc32 over header and payload, little-endian."""
        from plextuner.hdhr.discovery import Announcement

        reply = build_reply(
            Announcement(
                0x1053C0CA, 2, "http://10.0.0.5:5004", "http://10.0.0.5:5004/lineup.json", "x" * 24
            )
        )
        assert struct.unpack("<I", reply[-4:])[0] == zlib.crc32(reply[:-4])


async def test_hdhomerun_config_finds_every_device(cdn: FakeCdn, tmp_path: Path) -> None:
    """The real hdhomerun_config lists each device with its ID (needs UDP 65001 on loopback)."""
    tool = require_tool("hdhomerun_config")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", 65001))
        except OSError:
            skip_or_fail("UDP 127.0.0.1:65001 is busy here; hdhomerun_config only talks to 65001")
    playlist = tmp_path / "list.m3u"
    write_playlist(playlist, cdn)
    buckets = [{"name": f"b{i}", "match": {"name": f"Channel {i}$"}} for i in range(6)]
    settings = daemon_settings(
        tmp_path / "data",
        [{"name": "p", "m3u_url": str(playlist)}],
        buckets,
        devices=6,
        discovery_port=65001,
    )
    async with running(settings) as service:
        result = await asyncio.to_thread(
            subprocess.run,
            [tool, "discover", "127.0.0.1"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert result.returncode == 0, result.stderr
        found = {line.split()[2] for line in result.stdout.splitlines() if "found at" in line}
        expected = {d.device_id for d in service.runtime.state.devices}  # type: ignore[union-attr]
        assert found == expected and len(found) == 6


async def test_readyz_before_anything_published(tmp_path: Path) -> None:
    """/readyz is 503 and /healthz 200 while nothing is published (provider down); /epg.xml
    is 404."""
    settings = daemon_settings(
        tmp_path / "data",
        [{"name": "p", "m3u_url": "http://127.0.0.1:9/down.m3u"}],
        [],
        devices=1,
        fetch={"retries": 0, "timeout": 1},
    )
    async with running(settings, wait_published=False) as service:
        async with httpx.AsyncClient() as client:
            assert (await client.get(url(service, "/healthz"))).status_code == 200
            assert (await client.get(url(service, "/readyz"))).status_code == 503
            assert (await client.get(url(service, "/epg.xml"))).status_code == 404
