"""The HDHomeRun TCP control protocol (GETSET) on port 65001, read-only.

libhdhomerun's tools (`hdhomerun_config <id> get /sys/model`), TVHeadend and Home Assistant find a
device by UDP discovery, then connect to `<ip>:65001` over TCP and send GETSET requests: the same
frame as discovery (type, length, TLVs, CRC-32 LE) with a NUL-terminated name and, for a set, a
value. A request carries no DeviceID, so **every device behind one IP shares this endpoint**: the
`/sys/*` keys describe the first device (the daemon's primary identity) and the tuners of all
devices are numbered in device order (`tuner0`…`tuner{n-1}` of the first device, then the next
device's). `/sys/debug` prints that map. We never tune over TCP: a set answers an error message.

Anything malformed (bad CRC, truncated frame, oversized length, not a GETSET) closes that one
connection; nothing a client sends reaches the rest of the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from plextuner.errors import PacketError
from plextuner.hdhr.device import Identity
from plextuner.hdhr.discovery import MAX_PACKET, frame, iter_tlvs, parse_frame, tlv
from plextuner.logging import get_logger
from plextuner.supervise import record_crash

log = get_logger(__name__)
GETSET_REQ, GETSET_RPY = 0x0004, 0x0005
TAG_NAME, TAG_VALUE, TAG_ERROR, TAG_LOCKKEY = 0x03, 0x04, 0x05, 0x15
IDLE_TIMEOUT = 30.0  # clients time out after 2.5 s; an idle connection is closed after this
MAX_CONNECTIONS = 32
READ_ONLY = b"ERROR: read-only: plextuner tunes over HTTP (/auto/v<channel>)\x00"
IDLE_STATUS = "ch=none lock=none ss=0 snq=0 seq=0 bps=0 pps=0"
COPYRIGHT = "plextuner (MIT licence). HDHomeRun is a trademark of Silicondust USA Inc."
FEATURES = "channelmap: us-bcast\nmodulation: 8vsb\nauto-modulation: auto\n"
HELP = (
    "Supported configuration options:\n"
    "/lineup/scan\n"
    "/sys/copyright\n/sys/debug\n/sys/features\n/sys/hwmodel\n/sys/model\n/sys/version\n"
    "/tuner<n>/channel\n/tuner<n>/channelmap\n/tuner<n>/debug\n/tuner<n>/filter\n"
    "/tuner<n>/lockkey\n/tuner<n>/program\n/tuner<n>/status\n/tuner<n>/streaminfo\n"
    "/tuner<n>/target\n/tuner<n>/vchannel\n"
)


@dataclass(frozen=True, slots=True)
class TunerView:
    """One tuner as the control protocol reports it; `channel` is None when idle."""

    device: str
    index: int
    channel: str | None = None
    name: str = ""
    client: str = ""
    bps: int = 0

    @property
    def pps(self) -> int:
        return self.bps // (188 * 8)


@dataclass(frozen=True, slots=True)
class ControlView:
    """What the daemon looks like right now (built on each request)."""

    identity: Identity
    tuners: list[TunerView] = field(default_factory=list)
    channels: int = 0
    scanning: bool = False


class ControlError(Exception):
    """A GET we cannot answer; its text goes back as ERROR_MESSAGE."""


def answer(view: ControlView, name: str) -> str:
    """The value for a GET of `name`, or ControlError with a device-style message."""
    key = name.strip().lower()
    ident = view.identity
    fixed = {
        "/sys/model": ident.firmware_name,
        "/sys/hwmodel": ident.model,
        "/sys/version": ident.firmware_version,
        "/sys/copyright": COPYRIGHT,
        "/sys/features": FEATURES,
        "help": HELP,
        "/lineup/scan": _scan(view),
        "/sys/debug": _sys_debug(view),
    }
    if key in fixed:
        return fixed[key]
    if key.startswith("/tuner"):
        head, _, leaf = key[len("/tuner") :].partition("/")
        if head.isdigit() and int(head) < len(view.tuners):
            return _tuner_value(view.tuners[int(head)], leaf)
    raise ControlError("ERROR: unknown getset variable")


def _scan(view: ControlView) -> str:
    if view.scanning:
        return "state=scanning progress=50% found=0"
    return f"state=complete progress=100% found={view.channels}"


def _sys_debug(view: ControlView) -> str:
    lines = [f"plextuner tuners={len(view.tuners)} channels={view.channels}"]
    lines += [f"tuner{i}: device={t.device} tuner={t.index}" for i, t in enumerate(view.tuners)]
    return "\n".join(lines) + "\n"


def _tuner_value(t: TunerView, leaf: str) -> str:
    idle = t.channel is None
    values = {
        "status": IDLE_STATUS
        if idle
        else f"ch=auto:{t.channel} lock=8vsb ss=100 snq=100 seq=100 bps={t.bps} pps={t.pps}",
        "vchannel": "none" if idle else str(t.channel),
        "channel": "none" if idle else f"auto:{t.channel}",
        "streaminfo": "none\n" if idle else f"1: {t.channel} {t.name}\n",
        "target": "none" if idle else f"http://{t.client}",
        "lockkey": "none",
        "channelmap": "us-bcast",
        "filter": "0x0000-0x1FFF",
        "program": "0" if idle else "1",
        "debug": _tuner_debug(t),
    }
    if leaf not in values:
        raise ControlError("ERROR: unknown getset variable")
    return values[leaf]


def _tuner_debug(t: TunerView) -> str:
    ch = "none" if t.channel is None else f"auto:{t.channel}"
    return (
        f"tun: ch={ch} lock={'none' if t.channel is None else '8vsb'} ss=100 snq=100 seq=100\n"
        f"dev: bps={t.bps} resync=0 overflow=0\n"
        f"ts:  bps={t.bps} te=0 miss=0 crc=0\n"
        f"net: pps={t.pps} err=0 stop=0\n"
    )


def handle_request(packet: bytes, view: Callable[[], ControlView]) -> bytes:
    """One GETSET request frame in, one reply frame out; PacketError for anything malformed."""
    packet_type, payload = parse_frame(packet)
    if packet_type != GETSET_REQ:
        raise PacketError("not a GETSET request")
    name: bytes | None = None
    value: bytes | None = None
    for tag, data in iter_tlvs(payload):
        if tag == TAG_NAME:
            name = data
        elif tag == TAG_VALUE:
            value = data
    if name is None:
        raise PacketError("GETSET without a name")
    text = name.rstrip(b"\x00").decode("ascii", errors="replace")
    reply = tlv(TAG_NAME, name if name.endswith(b"\x00") else name + b"\x00")
    if value is not None:
        return frame(GETSET_RPY, reply + tlv(TAG_ERROR, READ_ONLY))
    try:
        reply += tlv(TAG_VALUE, answer(view(), text).encode() + b"\x00")
    except ControlError as err:
        reply += tlv(TAG_ERROR, str(err).encode() + b"\x00")
    return frame(GETSET_RPY, reply)


@dataclass(slots=True)
class ControlServer:
    """Serves GETSET on TCP; one task per connection under the asyncio server."""

    view: Callable[[], ControlView]
    requests: int = 0
    dropped: int = 0
    _slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_CONNECTIONS))

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._slots.locked():
            self.dropped += 1
            writer.close()
            return
        async with self._slots:
            try:
                await self._serve(reader, writer)
            except (PacketError, asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                self.dropped += 1
            except Exception as err:  # noqa: BLE001 - supervision boundary: a client never reaches the daemon
                record_crash("control", err)
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError, TimeoutError):
                    async with asyncio.timeout(1.0):
                        await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            async with asyncio.timeout(IDLE_TIMEOUT):
                try:
                    head = await reader.readexactly(4)
                except asyncio.IncompleteReadError as err:
                    if not err.partial:
                        return  # the client closed between requests
                    raise
                (length,) = struct.unpack_from(">H", head, 2)
                if length + 8 > MAX_PACKET:
                    raise PacketError("oversized frame")
                rest = await reader.readexactly(length + 4)
            writer.write(handle_request(head + rest, self.view))
            self.requests += 1
            async with asyncio.timeout(IDLE_TIMEOUT):
                await writer.drain()


async def start_control(
    host: str, port: int, view: Callable[[], ControlView]
) -> tuple[asyncio.Server, ControlServer]:
    control = ControlServer(view)
    server = await asyncio.start_server(control, host, port, reuse_address=True)
    log.info("control_listening", host=host, port=port)
    return server, control
