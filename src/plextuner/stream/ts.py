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


def pmt_pids(pat_packet: bytes | memoryview) -> set[int]:
    """PMT PIDs listed in a PAT section that starts in this packet."""
    if not starts_payload(pat_packet):
        return set()
    start = 5 + pat_packet[4] if pat_packet[3] & 0x20 else 4  # after the adaptation field
    pointer = pat_packet[start] if start < TS_PACKET else 0
    sec = start + 1 + pointer
    if sec + 8 > TS_PACKET:
        return set()
    length = ((pat_packet[sec + 1] & 0x0F) << 8) | pat_packet[sec + 2]
    end = min(sec + 3 + length - 4, TS_PACKET)
    out = set()
    for pos in range(sec + 8, end - 3, 4):
        program = (pat_packet[pos] << 8) | pat_packet[pos + 1]
        if program:
            out.add(((pat_packet[pos + 2] & 0x1F) << 8) | pat_packet[pos + 3])
    return out


@dataclass(slots=True)
class StreamHeaders:
    """The latest PAT and PMT packets seen, to prefix a joiner's first bytes."""

    pat: bytes = b""
    pmt: bytes = b""
    _pmt_pids: frozenset[int] = frozenset()

    def observe(self, packet: bytes) -> None:
        pid = pid_of(packet)
        if pid == PAT_PID and starts_payload(packet):
            self.pat = packet
            self._pmt_pids = frozenset(pmt_pids(packet))
        elif pid in self._pmt_pids and starts_payload(packet):
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
        if pid == PAT_PID or pid in headers._pmt_pids:  # noqa: SLF001 - same module
            headers.observe(bytes(packet))
        elif random_access(packet):
            points.append(off)
    return points


def keepalive(headers: StreamHeaders, nulls: int = 6) -> bytes:
    """Valid TS that carries no picture: PAT/PMT (when known) and null packets."""
    return headers.prefix + NULL_PACKET * nulls
