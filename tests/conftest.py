"""Shared fixtures: external tools (skip loudly, fail under CI=true), free ports, clean state."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator

import pytest

from plextuner.redact import SECRETS

TOOL_PACKAGES = {
    "ffmpeg": "ffmpeg",
    "ffprobe": "ffmpeg",
    "hdhomerun_config": "hdhomerun-config",
    "xmllint": "libxml2-utils",
    "shellcheck": "shellcheck",
    "promtool": "prometheus",
    "chromium": "chromium",
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
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)
    raise AssertionError  # unreachable


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _reset_secrets() -> Iterator[None]:
    """Each test starts with no registered secrets."""
    SECRETS.clear()
    yield
    SECRETS.clear()
