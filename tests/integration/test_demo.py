"""`plextuner demo` (what `make run` starts): two devices with channels, a guide, real video."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_ports, require_tool

pytestmark = pytest.mark.integration


def test_demo_serves_two_devices_with_video(tmp_path: Path) -> None:
    """The demo starts without config or account, prints the Plex address and streams video."""
    ffprobe = require_tool("ffprobe")
    require_tool("ffmpeg")
    port = free_ports(2)  # the demo's second device listens on port + 1
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "plextuner",
            "demo",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 90  # the first run renders the demo clips with ffmpeg
        lineups: list[list[dict[str, str]]] = []
        with httpx.Client(timeout=5) as client:
            while time.monotonic() < deadline and len(lineups) < 2:
                lineups = []
                for p in (port, port + 1):
                    try:
                        r = client.get(f"http://127.0.0.1:{p}/lineup.json")
                    except httpx.HTTPError:
                        break
                    if r.status_code == 200 and r.json():
                        lineups.append(r.json())
                time.sleep(0.3)
            assert [len(x) for x in lineups] == [3, 3]
            guide = client.get(f"http://127.0.0.1:{port}/guide.xml")
            assert guide.status_code == 200 and "Demo News One" in guide.text
        url = lineups[0][0]["URL"]
        out = subprocess.run(
            [ffprobe, "-v", "error", "-show_streams", "-of", "json", url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "h264" in {s["codec_name"] for s in json.loads(out.stdout)["streams"]}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    output = proc.stdout.read() if proc.stdout else ""
    assert f":{port}" in output and "Add these devices in Plex" in output
