"""MPEG-TS facts the shared upstream needs: clean start points, PAT/PMT, keep-alive packets.

A joiner must start at a packet boundary with the PAT and PMT in hand, ideally at a keyframe
(a packet whose adaptation field sets random_access_indicator); a viewer waiting through a
reconnect gets PAT/PMT plus null packets so clients that drop a silent stream (Channels DVR
after ~6 s) stay connected.
"""

from __future__ import annotations

from dataclasses import dataclass

TS_PACKET = 188
SYNC = 0x47
PAT_PID = 0x0000
NULL_PID = 0x1FFF
NULL_PACKET = bytes([SYNC, 0x1F, 0xFF, 0x10]) + b"\xff" * (TS_PACKET - 4)


def pid_of(packet: bytes | memoryview) -> int:
    return ((packet[1] & 0x1F) << 8) | packet[2]


def starts_payload(packet: bytes | memoryview) -> bool:
    return bool(packet[1] & 0x40)


def random_access(packet: bytes | memoryview) -> bool:
    """The adaptation field's random_access_indicator: a decoder can start here (a keyframe)."""
    has_adaptation = packet[3] & 0x20
    return bool(has_adaptation and packet[4] > 0 and packet[5] & 0x40)


def section_of(packet: bytes | memoryview) -> bytes | None:
    """The PSI section that starts in a packet's payload (after the pointer field), if any."""
    pkt = bytes(packet)
    afc = (pkt[3] >> 4) & 0x3
    pos = 4
    if afc in (2, 3):
        pos += 1 + pkt[4]
    if afc == 2 or pos >= TS_PACKET:
        return None
    pointer = pkt[pos]
    return pkt[pos + 1 + pointer :]


def pat_pids(section: bytes) -> set[int]:
    """The PMT PIDs a PAT section lists."""
    if len(section) < 8 or section[0] != 0x00:
        return set()
    length = ((section[1] & 0x0F) << 8) | section[2]
    body = section[8 : 3 + length - 4]
    return {
        ((body[i + 2] & 0x1F) << 8) | body[i + 3]
        for i in range(0, len(body) - 3, 4)
        if (body[i] << 8 | body[i + 1]) != 0
    }


@dataclass(slots=True)
class StreamHeaders:
    """The latest PAT and PMT packets seen, to prefix a joiner's first bytes."""

    pat: bytes = b""
    pmt: bytes = b""
    pmt_pids: frozenset[int] = frozenset()

    def observe(self, packet: bytes) -> None:
        pid = pid_of(packet)
        if pid == PAT_PID and starts_payload(packet):
            self.pat = packet
            self.pmt_pids = frozenset(pat_pids(section_of(packet) or b""))
        elif pid in self.pmt_pids and starts_payload(packet):
            self.pmt = packet

    @property
    def prefix(self) -> bytes:
        return self.pat + self.pmt if self.pat and self.pmt else b""


def scan(chunk: bytes, headers: StreamHeaders) -> list[int]:
    """Offsets of random-access packets in a TS-aligned chunk; PAT/PMT recorded on the way."""
    points = []
    view = memoryview(chunk)
    for off in range(0, len(chunk) - TS_PACKET + 1, TS_PACKET):
        packet = view[off : off + TS_PACKET]
        if packet[0] != SYNC:
            continue
        pid = pid_of(packet)
        if pid == PAT_PID or pid in headers.pmt_pids:
            headers.observe(bytes(packet))
        elif random_access(packet):
            points.append(off)
    return points


def keepalive(headers: StreamHeaders, nulls: int = 6) -> bytes:
    """Valid TS that carries no picture: PAT/PMT (when known) and null packets."""
    return headers.prefix + NULL_PACKET * nulls
