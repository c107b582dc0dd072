"""The demo's MPEG-TS: a clip per channel made by ffmpeg, or a minimal valid TS without it."""

from __future__ import annotations

import asyncio
import shutil
import struct
from pathlib import Path

from plextuner.logging import get_logger
from plextuner.subproc import run_to_end

log = get_logger(__name__)
CLIP_SECONDS = 10


def _crc32_mpeg(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _psi_packet(pid: int, table: bytes) -> bytes:
    section = table + struct.pack(">I", _crc32_mpeg(table))
    header = struct.pack(">BHB", 0x47, 0x4000 | pid, 0x10)
    payload = b"\x00" + section
    return header + payload + b"\xff" * (184 - len(payload))


def minimal_ts(packets: int = 2000, stream_type: int = 0x1B) -> bytes:
    """PAT + PMT (one stream at PID 0x100, H.264 by default) then null packets: valid, empty TS."""
    pat = bytes.fromhex("00b00d0001c100000001f000")
    pmt = (
        bytes.fromhex("02b0120001c10000e100f000") + bytes([stream_type]) + bytes.fromhex("e100f000")
    )
    null = b"\x47\x1f\xff\x10" + b"\xff" * 184
    head = _psi_packet(0x0000, pat) + _psi_packet(0x1000, pmt)
    return head + null * packets


async def _ffmpeg_clip(ffmpeg: str, name: str, out: Path, hue: int) -> bool:
    text = name.replace("\\", "").replace(":", " ").replace("'", "")
    base = [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size=640x360:rate=25,hue=h={hue}",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={300 + hue}:sample_rate=48000",
        "-t",
        str(CLIP_SECONDS),
    ]
    tail = [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-g",
        "25",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-f",
        "mpegts",
        str(out),
    ]
    label = f"drawtext=text='{text}':fontsize=40:fontcolor=white:box=1:boxcolor=black@0.6:x=20:y=20"
    for extra in (["-vf", label], []):  # drawtext needs a font; fall back without the label
        try:
            async with asyncio.timeout(120):
                code, _, err = await run_to_end([*base, *extra, *tail], stdout=False)
        except TimeoutError:
            return False
        if code == 0 and out.exists() and out.stat().st_size > 0:  # noqa: ASYNC240 - start-up only
            return True
        log.info("demo_clip_retry", channel=name, error=err[-200:])
    return False


async def make_clips(ffmpeg: str, names: list[str], directory: Path) -> dict[str, Path]:
    """One clip per channel name (reused across runs); the minimal TS where ffmpeg fails."""
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
    fallback = directory / "minimal.ts"
    if not fallback.exists():
        fallback.write_bytes(minimal_ts())
    have_ffmpeg = shutil.which(ffmpeg) is not None
    if not have_ffmpeg:
        log.warning("demo_without_ffmpeg", hint="install ffmpeg to see moving pictures")
    clips: dict[str, Path] = {}
    sem = asyncio.Semaphore(2)

    async def one(index: int, name: str) -> None:
        out = directory / f"clip{index}.ts"
        if have_ffmpeg and not out.exists():
            async with sem:
                tmp = out.with_suffix(".part.ts")
                if await _ffmpeg_clip(ffmpeg, name, tmp, (index * 60) % 360):
                    tmp.replace(out)
        clips[name] = out if out.exists() else fallback

    async with asyncio.TaskGroup() as tg:
        for i, name in enumerate(names):
            tg.create_task(one(i, name))
    return clips
