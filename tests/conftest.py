"""Shared fixtures: external tools (skip loudly, fail under CI=true), free ports, clean state."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from plextuner import metrics
from plextuner.redact import SECRETS

LEAK_GRACE = 2.0  # seconds a task cancelled during teardown may take to finish

TOOL_PACKAGES = {
    "ffmpeg": "ffmpeg",
    "ffprobe": "ffmpeg",
    "hdhomerun_config": "hdhomerun-config",
    "xmllint": "libxml2-utils",
    "shellcheck": "shellcheck",
    "promtool": "prometheus",
    "chromium": "chromium",
    "tv_validate_file": "xmltv-util",
    "openssl": "openssl",
    "kubectl": "kubectl >= 1.21 (its built-in kustomize must support components)",
}


def require_tool(name: str) -> str:
    """Path of an external binary; skip (or fail under CI=true) naming its Debian package."""
    path = shutil.which(name)
    if path:
        return path
    package = TOOL_PACKAGES.get(name, name)
    message = (
        f"MISSING TOOL {name!r}: install Debian package {package!r} (apt-get install {package})"
    )
    skip_or_fail(message)
    raise AssertionError  # unreachable


def skip_or_fail(message: str) -> None:
    """Skip loudly on a developer machine; under CI=true a missing prerequisite is a failure."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, host: str = "127.0.0.1") -> int:
    """A first port whose `count - 1` successors are free too (a daemon's devices take
    port + i): a free first port alone let another process hold port + 1, a flaky failure."""
    for _ in range(100):
        base = free_port(host)
        try:
            for offset in range(1, count):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                    sock.bind((host, base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} consecutive free ports")


@pytest.fixture(autouse=True)
def _reset_secrets() -> Iterator[None]:
    """Each test starts with no registered secrets."""
    SECRETS.clear()
    yield
    SECRETS.clear()


@pytest.fixture(autouse=True)
def _isolated_metrics() -> None:
    """Each test starts with every metric at its initial value: no test sees another's counts."""
    metrics.reset()


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves tasks running in its event loop once its fixtures are torn down.

    Autouse fixtures are set up first, so this teardown runs after every fixture the test
    used (daemons, fake CDNs) has closed: anything still pending is the test's or the code's.
    """
    before = asyncio.all_tasks()
    yield
    me = asyncio.current_task()
    pending = {t for t in asyncio.all_tasks() - before if t is not me and not t.done()}
    if pending:  # tasks cancelled during teardown get a moment to unwind
        _, pending = await asyncio.wait(pending, timeout=LEAK_GRACE)
    if pending:
        names = sorted(f"{t.get_name()}: {t.get_coro()!r}" for t in pending)
        for task in pending:
            task.cancel()
        pytest.fail(f"{len(pending)} task(s) left running:\n  " + "\n  ".join(names))
