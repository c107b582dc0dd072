"""Probe engines: ffprobe (a managed subprocess) and native (async HTTP + TS/HLS inspection)."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin

import httpx

from plextuner.binaries import header_args
from plextuner.ingest.models import Source, is_hls_reply, is_html_reply
from plextuner.ingest.urls import url_problem
from plextuner.stream.ts import pat_pids, section_of
from plextuner.subproc import run_to_end
from plextuner.validate.result import (
    ProbeResult,
    Scope,
    Verdict,
    classify_ffprobe_error,
    classify_status,
)

VIDEO_STREAM_TYPES = frozenset({0x01, 0x02, 0x10, 0x1B, 0x24, 0x42, 0xD1, 0xEA})
# PMT stream_type → the codec name ffprobe would report (the types a lineup can advertise).
TS_VIDEO_CODECS = {0x01: "mpeg1video", 0x02: "mpeg2video", 0x1B: "h264", 0x24: "hevc"}
SNIFF_BYTES = 188 * 400
PROBE_BYTES = 1_000_000  # what the ffprobe engine reads and hands to ffprobe
ANALYSE_TIMEOUT = 10.0  # ffprobe over bytes in memory: our own CPU, not the network
READ_AFTER_VIDEO = 1.0  # seconds the ffprobe engine reads on once a video stream shows (its size)


class Engine(Protocol):
    async def probe(self, source: Source, timeout: float) -> ProbeResult: ...


def parse_ffprobe(out: bytes) -> ProbeResult:
    try:
        doc = json.loads(out or b"{}")
    except ValueError:
        return ProbeResult(Verdict.TRANSIENT, "ffprobe printed invalid JSON")
    streams = doc.get("streams") if isinstance(doc, dict) else None
    if not isinstance(streams, list):
        streams = []
    video = [s for s in streams if isinstance(s, dict) and s.get("codec_type") == "video"]
    if not video:
        return ProbeResult(Verdict.DEAD, "no video stream")
    v = video[0]
    return ProbeResult(
        Verdict.OK, "ok", v.get("codec_name"), _int(v.get("width")), _int(v.get("height"))
    )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


@dataclass(slots=True)
class _Phase:
    """How far a request got (from httpcore's trace events)."""

    connected: bool = False  # the TCP (and TLS) connection is up
    answered: bool = False  # a 2xx status line arrived

    async def trace(self, event: str, _info: dict[str, object]) -> None:
        # A kept-alive connection reused from the pool has no connect events: the request sent
        # on it is the proof (without it, a channel that hangs there was the host's timeout).
        if event in _CONNECTED:
            self.connected = True


_CONNECTED = frozenset(
    {
        "connection.connect_tcp.complete",
        "connection.start_tls.complete",
        "http11.send_request_headers.complete",
        "http2.send_request_headers.complete",
    }
)


@dataclass(frozen=True, slots=True)
class Media:
    """The first bytes of a stream's media, reached directly or through an HLS playlist."""

    head: bytes
    via_hls: bool = False
    video: ProbeResult | None = None  # the bytes' inspection when the read already found video


class NativeEngine:
    """Status, content type and the first bytes: TS sync + PAT/PMT, or an HLS playlist's segment."""

    def __init__(
        self, client: httpx.AsyncClient, limit: int = SNIFF_BYTES, after_video: float = 0.0
    ) -> None:
        self.client = client
        self.limit = limit  # how many bytes of media are read (the ffprobe engine wants more)
        self.after_video = after_video  # how long to read on once a video stream shows

    async def probe(self, source: Source, timeout: float) -> ProbeResult:
        got = await self.fetch(source, timeout)
        if isinstance(got, ProbeResult):
            return got
        if got.via_hls and is_fmp4(got.head):  # its codecs are in an init segment: not read here
            return ProbeResult(
                Verdict.TRANSIENT, "fMP4 HLS segment, not inspected", scope=Scope.LOCAL
            )
        return got.video or inspect_ts(got.head)

    async def fetch(self, source: Source, timeout: float) -> ProbeResult | Media:
        """The stream's first bytes, or the result that says why there are none."""
        phase = _Phase()
        # The body's read ends a moment before the probe's timeout, so what came is kept.
        deadline = asyncio.get_running_loop().time() + timeout - min(0.1, timeout / 10)
        try:
            async with asyncio.timeout(timeout):
                return await self._fetch(source.url, dict(source.headers), 0, phase, deadline)
        except TimeoutError:
            # Where it stalled says whose trouble it is: a host that never accepts is the host's;
            # one that accepted (or answered 200) and then sent nothing is this channel's.
            if phase.answered:
                return ProbeResult(
                    Verdict.TRANSIENT,
                    "200, then nothing",
                    scope=Scope.CHANNEL,
                    definite=True,
                    dropped=True,
                )
            if phase.connected:
                return ProbeResult(
                    Verdict.TRANSIENT,
                    "connected, no answer",
                    scope=Scope.CHANNEL,
                    dropped=True,
                    silent=True,
                )
            return ProbeResult(Verdict.TRANSIENT, "timed out", scope=Scope.HOST)
        except (httpx.ConnectError, httpx.ConnectTimeout) as err:
            if _refused(err):
                return ProbeResult(Verdict.TRANSIENT, "connection refused", refused=True)
            return ProbeResult(Verdict.TRANSIENT, f"connection failed ({type(err).__name__})")
        except httpx.TransportError as err:  # reset or closed before an answer
            return ProbeResult(Verdict.TRANSIENT, f"connection failed ({type(err).__name__})")
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as err:
            # Redirect loops, bad encodings, a URL httpx cannot send: not proof the channel is
            # dead (the URL was checked when it was parsed), so it stays unverified.
            return ProbeResult(Verdict.TRANSIENT, f"request failed ({type(err).__name__})")

    async def _fetch(
        self, url: str, headers: dict[str, str], depth: int, phase: _Phase, deadline: float
    ) -> ProbeResult | Media:
        trace = {"trace": phase.trace}
        # Redirects followed whatever the client's default: a provider's 302 to its CDN is how
        # most Xtream streams start, and a 302 read as the stream would look like an empty 200.
        async with self.client.stream(
            "GET", url, headers=headers, extensions=trace, follow_redirects=True
        ) as resp:
            verdict = classify_status(resp.status_code)
            if verdict is not None:
                return verdict
            phase.answered = True
            ctype = resp.headers.get("content-type", "").lower()
            head, ended, video = await _read_head(resp, self.limit, deadline, self.after_video)
        if not head:
            # An empty body, or the connection dropped after the status line: either way the
            # server's own answer for this stream, the same on every attempt when it is dead.
            return ProbeResult(
                Verdict.TRANSIENT, "200, then closed", scope=Scope.CHANNEL, definite=True
            )
        if is_hls_reply(ctype, head):
            if depth >= 2:
                return ProbeResult(Verdict.DEAD, "HLS playlist nests too deep")
            # A playlist cut short (by the server or our limit) is read to its last whole line.
            target = _first_uri(head if ended else head[: head.rfind(b"\n") + 1])
            if target is None and not ended:
                return ProbeResult(
                    Verdict.TRANSIENT, "200, then closed", scope=Scope.CHANNEL, definite=True
                )
            if target is None:
                return _no_stream("HLS playlist lists nothing")
            try:
                nested = urljoin(str(resp.url), target)
            except ValueError:
                return ProbeResult(Verdict.DEAD, "HLS playlist lists a malformed URL")
            if url_problem(nested) is not None:
                return ProbeResult(Verdict.DEAD, "HLS playlist lists a malformed URL")
            return await self._fetch(nested, headers, depth + 1, phase, deadline)
        if is_html_reply(ctype, head):
            return _no_stream("HTML page served as 200")
        return Media(head, depth > 0, video)


async def _read_head(
    resp: httpx.Response, limit: int, deadline: float, after_video: float
) -> tuple[bytes, bool, ProbeResult | None]:
    """Up to `limit` bytes, and whether the body ended there as the server meant it to. The
    read also ends `after_video` seconds after the bytes show a video stream (0: at once; the
    ffprobe engine reads on a while, for the frames that give the size), at `deadline` (what
    came is judged: a slow starter is not a silent channel), and when the server drops the
    connection (what came is its answer). With nothing at the deadline, TimeoutError. Also the
    inspection that showed video, if one did (not made again)."""
    buf = bytearray()
    video: ProbeResult | None = None
    look_at = 188 * 8  # looked at for a video stream at doubling sizes: linear work in all
    try:
        async with asyncio.timeout_at(deadline) as stop:
            async for chunk in resp.aiter_raw():
                buf += chunk
                if len(buf) >= limit:
                    return bytes(buf[:limit]), False, video
                if look_at and len(buf) >= look_at:
                    look_at *= 2
                    seen = inspect_ts(bytes(buf))
                    if seen.verdict is Verdict.OK:
                        video = seen
                        if after_video <= 0:
                            return bytes(buf), False, video
                        now = asyncio.get_running_loop().time()
                        stop.reschedule(min(deadline, now + after_video))
                        look_at = 0
    except (TimeoutError, httpx.TimeoutException):  # ours, or the client's read timeout
        if not buf:
            raise TimeoutError from None  # `200, then nothing`
        return bytes(buf), False, video
    except httpx.TransportError:  # the server dropped the connection midway
        return bytes(buf), False, video
    return bytes(buf), True, video


class FfprobeEngine:
    """The stream fetched as the native engine fetches it (one connection, and how far the
    answer got says whose trouble a failure is), its first megabyte handed to ffprobe on stdin
    for the codec and size. ffprobe fetching the URL itself could not tell a hung host from a
    channel's `200, then nothing` (both "timed out"), nor a dropped connection from a CDN's
    refusal, and had the URL, credentials and all, on its command line. It still reads the URL
    for an HLS stream whose segment is not MPEG-TS (fMP4 needs the playlist's init segment)."""

    def __init__(self, binary: str, client: httpx.AsyncClient) -> None:
        self.binary = binary
        self.fetcher = NativeEngine(client, limit=PROBE_BYTES, after_video=READ_AFTER_VIDEO)

    async def probe(self, source: Source, timeout: float) -> ProbeResult:
        got = await self.fetcher.fetch(source, timeout)
        if isinstance(got, ProbeResult):
            return got
        seen = got.video or inspect_ts(got.head)
        analysed = await self._analyse(got.head)
        if analysed is not None and analysed.verdict is Verdict.OK:
            return analysed
        if seen.verdict is Verdict.OK:  # a video PMT that ffprobe could not size
            return seen
        if analysed is not None:  # ffprobe read the bytes and found no video in them
            return analysed
        if got.via_hls and is_fmp4(got.head):  # ffprobe on the URL reads the init segment
            return await self._probe_url(source, timeout)
        return seen

    async def _analyse(self, head: bytes) -> ProbeResult | None:
        """ffprobe's reading of the bytes; None when it could not read them as media (or did
        not run: the bytes' own inspection decides then)."""
        argv = [self.binary, "-v", "error", "-print_format", "json", "-show_streams"]
        argv += ["-probesize", str(PROBE_BYTES), "-analyzeduration", "2000000", "-i", "pipe:0"]
        try:
            async with asyncio.timeout(ANALYSE_TIMEOUT):
                code, out, _ = await run_to_end(argv, feed=head)
        except (TimeoutError, OSError):  # TimeoutError first: it is an OSError
            return None
        return parse_ffprobe(out) if code == 0 else None

    def argv(self, source: Source, timeout: float) -> list[str]:
        argv = [
            self.binary,
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-rw_timeout",
            str(int(timeout * 1_000_000)),
            "-probesize",
            str(PROBE_BYTES),
            "-analyzeduration",
            "2000000",
        ]
        argv += header_args(source.headers)
        return [*argv, source.url]

    async def _probe_url(self, source: Source, timeout: float) -> ProbeResult:
        try:
            async with asyncio.timeout(timeout):
                code, out, stderr = await run_to_end(self.argv(source, timeout))
        except TimeoutError:  # before OSError, which it is
            return ProbeResult(
                Verdict.TRANSIENT, "ffprobe timed out", scope=Scope.CHANNEL, dropped=True
            )
        except OSError as err:
            return ProbeResult(
                Verdict.TRANSIENT, f"cannot run ffprobe: {err.strerror}", scope=Scope.LOCAL
            )
        # ffprobe names the URL in its errors: never let it into a reason that may be logged.
        stderr = stderr[-4000:].replace(source.url, "<stream>")
        if code != 0:
            return classify_ffprobe_error(stderr)
        return parse_ffprobe(out)


_BMFF_BOXES = (b"ftyp", b"styp", b"moof", b"sidx", b"moov", b"prft", b"emsg")


def _refused(err: BaseException) -> bool:
    """The connection was refused (ECONNREFUSED somewhere in httpx's chain of causes)."""
    seen: BaseException | None = err
    for _ in range(8):  # httpx -> httpcore -> OSError -> ConnectionRefusedError: a few links
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_fmp4(data: bytes) -> bool:
    """An ISO BMFF (fragmented MP4) segment: its first box's type, after the 4-byte size."""
    return data[4:8] in _BMFF_BOXES


def _first_uri(playlist: bytes) -> str | None:
    for raw in playlist.decode(errors="replace").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            return line
    return None


def inspect_ts(data: bytes) -> ProbeResult:
    """MPEG-TS sync, then PAT → PMT → a video stream type."""
    start = next((i for i in range(min(188, len(data))) if _synced(data, i)), None)
    if start is None:
        return _no_stream("not MPEG-TS (no sync bytes)")
    pmt_pids: set[int] = set()
    stream_types: deque[int] = deque()
    saw_pmt = False
    for off in range(start, len(data) - 187, 188):
        pkt = data[off : off + 188]
        pid = ((pkt[1] & 0x1F) << 8) | pkt[2]
        if not pkt[1] & 0x40:  # payload_unit_start: sections begin here
            continue
        payload = section_of(pkt)
        if payload is None:
            continue
        if pid == 0:
            pmt_pids |= pat_pids(payload)
        elif pid in pmt_pids:
            saw_pmt = True
            stream_types.extend(_pmt_types(payload))
            video = next((t for t in stream_types if t in VIDEO_STREAM_TYPES), None)
            if video is not None:
                return ProbeResult(Verdict.OK, "ok", TS_VIDEO_CODECS.get(video))
    if saw_pmt:
        return ProbeResult(Verdict.DEAD, "no video stream")
    return ProbeResult(
        Verdict.TRANSIENT, "no PAT/PMT in the first bytes", scope=Scope.CHANNEL, definite=True
    )


def _no_stream(reason: str) -> ProbeResult:
    """A 200 whose body is no stream (an HTML page, text, an empty playlist): dead when the
    server says it again on the retry, a while later. Such a page is also what a CDN or panel
    shows while it protects itself or the account is full, for a moment."""
    return ProbeResult(Verdict.TRANSIENT, reason, scope=Scope.CHANNEL, definite=True)


def _synced(data: bytes, i: int) -> bool:
    return all(data[j] == 0x47 for j in range(i, min(len(data), i + 188 * 3), 188))


def _pmt_types(section: bytes) -> list[int]:
    if len(section) < 12 or section[0] != 0x02:
        return []
    length = ((section[1] & 0x0F) << 8) | section[2]
    info_len = ((section[10] & 0x0F) << 8) | section[11]
    pos, end, types = 12 + info_len, min(len(section), 3 + length - 4), []
    while pos + 5 <= end:
        types.append(section[pos])
        es_len = ((section[pos + 3] & 0x0F) << 8) | section[pos + 4]
        pos += 5 + es_len
    return types
