"""HDHomeRun UDP discovery on port 65001 (libhdhomerun framing, see protocols.md §2).

Malformed, truncated, oversized or foreign packets are dropped silently: a discovery port faces
the whole LAN, and nothing it receives may raise.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

from plextuner.addresses import source_address_towards
from plextuner.errors import PacketError
from plextuner.logging import get_logger
from plextuner.supervise import record_crash

log = get_logger(__name__)

DISCOVER_REQ, DISCOVER_RPY = 0x0002, 0x0003
TAG_DEVICE_TYPE, TAG_DEVICE_ID, TAG_TUNER_COUNT = 0x01, 0x02, 0x10
TAG_LINEUP_URL, TAG_BASE_URL, TAG_DEVICE_AUTH_STR = 0x27, 0x2A, 0x2B
DEVICE_TYPE_TUNER, WILDCARD = 1, 0xFFFFFFFF
MAX_PACKET = 1460
MAX_BASE_URL = 28  # libhdhomerun 2022 silently drops a BaseURL of 29 bytes or more
MAX_LINEUP_URL = 127  # ... and a LineupURL of 128 or more
MAX_DEVICE_AUTH = 24


def _tlv_length(length: int) -> bytes:
    if length <= 127:
        return bytes([length])
    return bytes([0x80 | (length & 0x7F), length >> 7])


def tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _tlv_length(len(value)) + value


def frame(packet_type: int, payload: bytes) -> bytes:
    head = struct.pack(">HH", packet_type, len(payload)) + payload
    return head + struct.pack("<I", zlib.crc32(head))


def parse_frame(data: bytes) -> tuple[int, bytes]:
    """(type, payload) of a frame whose length and CRC check out."""
    if len(data) < 8 or len(data) > MAX_PACKET:
        raise PacketError("bad size")
    packet_type, length = struct.unpack_from(">HH", data)
    if length != len(data) - 8:
        raise PacketError("length mismatch")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(data[:-4]) != crc:
        raise PacketError("bad crc")
    return packet_type, data[4:-4]


def iter_tlvs(payload: bytes) -> Iterator[tuple[int, bytes]]:
    """Tags in order; unknown tags are yielded too (callers skip them)."""
    pos = 0
    while pos < len(payload):
        if pos + 2 > len(payload):
            raise PacketError("truncated tag")
        tag, length = payload[pos], payload[pos + 1]
        pos += 2
        if length & 0x80:
            if pos >= len(payload):
                raise PacketError("truncated length")
            length = (length & 0x7F) | (payload[pos] << 7)
            pos += 1
        if pos + length > len(payload):
            raise PacketError("truncated value")
        yield tag, payload[pos : pos + length]
        pos += length


@dataclass(frozen=True, slots=True)
class DiscoverRequest:
    device_type: int | None
    device_id: int | None

    def wants(self, device_id: int) -> bool:
        type_ok = self.device_type in (None, WILDCARD, DEVICE_TYPE_TUNER)
        id_ok = self.device_id in (None, WILDCARD, device_id)
        return type_ok and id_ok


def parse_request(data: bytes) -> DiscoverRequest:
    packet_type, payload = parse_frame(data)
    if packet_type != DISCOVER_REQ:
        raise PacketError("not a discover request")
    device_type = device_id = None
    for tag, value in iter_tlvs(payload):
        if tag == TAG_DEVICE_TYPE and len(value) == 4:
            device_type = struct.unpack(">I", value)[0]
        elif tag == TAG_DEVICE_ID and len(value) == 4:
            device_id = struct.unpack(">I", value)[0]
    return DiscoverRequest(device_type, device_id)


@dataclass(frozen=True, slots=True)
class Announcement:
    """What one device says about itself; URLs built for the address the request came in on."""

    device_id: int
    tuner_count: int
    base_url: str
    lineup_url: str | None
    device_auth: str


def announcement(
    device_id: int, tuners: int, host: str, local_ip: str, port: int, auth: str
) -> Announcement:
    """URLs that libhdhomerun keeps whole: it *drops* a BaseURL of 29 bytes or more (and a
    LineupURL of 128 or more) and assumes http://<ip>:80, so a URL is never cut short. A long
    host name gives way to the IP literal in BaseURL; a LineupURL that cannot fit is left out."""
    base = f"http://{host}:{port}"
    if len(base.encode()) > MAX_BASE_URL:
        base = f"http://{local_ip}:{port}"
    lineup: str | None = f"http://{host}:{port}/lineup.json"
    if len(f"http://{host}:{port}/lineup.json".encode()) > MAX_LINEUP_URL:
        lineup = None  # BaseURL + /lineup.json is what clients use then
    return Announcement(device_id, tuners, base, lineup, auth[:MAX_DEVICE_AUTH])


def build_reply(a: Announcement) -> bytes:
    payload = (
        tlv(TAG_DEVICE_TYPE, struct.pack(">I", DEVICE_TYPE_TUNER))
        + tlv(TAG_DEVICE_ID, struct.pack(">I", a.device_id))
        + tlv(TAG_TUNER_COUNT, bytes([min(a.tuner_count, 255)]))
    )
    if len(a.base_url.encode()) <= MAX_BASE_URL:
        payload += tlv(TAG_BASE_URL, a.base_url.encode())
    if a.lineup_url is not None and len(a.lineup_url.encode()) <= MAX_LINEUP_URL:
        payload += tlv(TAG_LINEUP_URL, a.lineup_url.encode())
    payload += tlv(TAG_DEVICE_AUTH_STR, a.device_auth.encode()[:MAX_DEVICE_AUTH])
    return frame(DISCOVER_RPY, payload)


Announcer = Callable[[str], list[Announcement]]  # local address -> one announcement per device


class DiscoveryProtocol(asyncio.DatagramProtocol):
    def __init__(self, announce: Announcer) -> None:
        self._announce = announce
        self._transport: asyncio.DatagramTransport | None = None
        self.answered = 0
        self.dropped = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | bytes | int, ...]) -> None:
        try:
            self._answer(data, addr)
        except PacketError:
            self.dropped += 1
        except OSError as err:  # the peer's address is unroutable, or the socket is closing
            self.dropped += 1
            log.debug("discovery_send_failed", error=err)
        except Exception as err:  # noqa: BLE001 - the responder's supervision boundary
            self.dropped += 1
            record_crash("discovery", err)

    def _answer(self, data: bytes, addr: tuple[str | bytes | int, ...]) -> None:
        request = parse_request(data)
        local = self._local_address(addr)
        sent = 0
        for a in self._announce(local):
            if request.wants(a.device_id) and self._transport is not None:
                self._transport.sendto(build_reply(a), addr)
                sent += 1
        self.answered += sent
        if not sent:  # a well-formed search for another device type or id: not ours to answer
            self.dropped += 1

    def _local_address(self, peer: tuple[str | bytes | int, ...]) -> str:
        """The address a reply should advertise: ours as the peer reaches it."""
        assert self._transport is not None
        sockname = self._transport.get_extra_info("sockname")
        bound = str(sockname[0]) if sockname else "0.0.0.0"  # noqa: S104
        if bound not in ("0.0.0.0", ""):  # noqa: S104
            return bound
        # Bound to all interfaces: ask the kernel which source address routes to the peer.
        return source_address_towards(str(peer[0]), int(peer[1])) or "127.0.0.1"

    def error_received(self, exc: Exception) -> None:
        log.debug("discovery_socket_error", error=exc)


async def start_discovery(
    host: str, port: int, announce: Announcer
) -> tuple[asyncio.DatagramTransport, DiscoveryProtocol]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: DiscoveryProtocol(announce),
        local_addr=(host, port),
        family=socket.AF_INET,
        reuse_port=False,
        allow_broadcast=True,
    )
    return transport, protocol
