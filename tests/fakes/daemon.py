"""The real daemon (plextuner.service.Service) run in-process on free loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from plextuner.config import Settings, load_settings
from plextuner.service import Service
from tests.conftest import free_port
from tests.waiting import until_sync


def daemon_settings(
    data_dir: Path,
    providers: list[dict[str, Any]],
    buckets: list[dict[str, Any]],
    devices: int,
    **extra: Any,
) -> Settings:
    """Settings with `devices` consecutive free ports and a free UDP discovery port."""
    for _ in range(50):  # find a run of free consecutive ports
        base = free_port()
        if all(_port_free(base + i) for i in range(devices + 1)):
            break
    overrides: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": base,
        "discovery_port": free_port(kind=2),  # SOCK_DGRAM
        "data_dir": str(data_dir),
        "providers": providers,
        "buckets": buckets,
        "postvalidate": {"enabled": False},
        "log_format": "json",
    }
    overrides.update(extra)
    return load_settings(None, overrides, env={})


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    wait_published: bool = True,
    configure: Callable[[Service], None] | None = None,
) -> AsyncIterator[Service]:
    service = Service(settings)
    if configure:
        configure(service)
    task = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(30):
            await service.started.wait()
            if wait_published:
                await service.published.wait()
        yield service
    finally:
        service.stop()
        async with asyncio.timeout(15):
            await task


def serve_process(config: Path, port: int, timeout: float = 30) -> subprocess.Popen[str]:
    """`plextuner serve --config <config>` as a process (unbuffered), returned once /readyz
    answers 200 on `port`. Its output goes to an unlinked file `proc.stdout` reads from the
    start: a pipe nobody drains while the test runs stalls the daemon on its 64 KB'th byte of
    log (`make fuzz`'s 5,000 requests did, and every later test of the module failed)."""
    with tempfile.NamedTemporaryFile(prefix="plextuner-serve-", suffix=".log") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "plextuner", "serve", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        proc.stdout = open(log.name, encoding="utf-8", errors="replace")  # noqa: SIM115 - the caller's

    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        until_sync(ready, "the daemon to be ready", timeout)
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    return proc
