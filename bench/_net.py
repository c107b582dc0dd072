"""Helpers the benchmarks share: free loopback ports, waiting for a daemon, /proc readings."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(count: int, tries: int = 50) -> int:
    """The first of `count` consecutive free loopback ports (a daemon's devices listen on
    port, port + 1, ...: one taken by another socket left a device unserved and a bench run
    failing to connect)."""
    for _ in range(tries):
        first = free_port()
        held: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports")


async def wait_ready(session: aiohttp.ClientSession, port: int, tries: int = 100) -> None:
    """Until the daemon on `port` answers /readyz with 200 (bounded: `tries` x 0.1 s)."""
    for _ in range(tries):
        try:
            async with session.get(f"http://127.0.0.1:{port}/readyz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the daemon on port {port} never became ready")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
