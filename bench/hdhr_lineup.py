"""lineup.json of a 479-channel device under wrk: requests/s and p99 (target >= 3000/s, <= 10 ms).

The daemon runs in its own process pinned to one core (taskset when available); wrk on the other.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHANNELS = 479


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_world(tmp: Path, port: int) -> Path:
    lines = ["#EXTM3U"]
    for i in range(CHANNELS):
        lines += [
            f'#EXTINF:-1 tvg-id="c{i}" group-title="G",Channel {i}',
            f"http://cdn.invalid/live/u/p/{i}.ts",
        ]
    (tmp / "list.m3u").write_text("\n".join(lines) + "\n")
    cfg = tmp / "c.yaml"
    cfg.write_text(
        f"host: 127.0.0.1\nport: {port}\ndiscovery_port: 0\ndata_dir: {tmp / 'data'}\n"
        "log_level: warning\npostvalidate: {enabled: false}\n"
        f"providers: [{{name: p, m3u_url: '{tmp / 'list.m3u'}'}}]\n"
        "buckets: [{name: big, match: {group: G}}]\n"
    )
    return cfg


def parse_wrk(out: str) -> tuple[float, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert m
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    return rps, p99


def main() -> int:
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk not installed (apt-get install wrk): skipped")
        return 0
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        port = free_port()
        cfg = write_world(tmp, port)
        pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
        daemon = subprocess.Popen(
            [*pin, sys.executable, "-m", "plextuner", "serve", "--config", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/lineup.json"
            for _ in range(100):
                try:
                    import urllib.request

                    body = urllib.request.urlopen(url, timeout=1).read()
                    if len(json.loads(body)) == CHANNELS:
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            print(f"lineup.json: {len(body)} bytes, {CHANNELS} channels")
            wrk_pin = ["taskset", "-c", "1"] if pin and (os.cpu_count() or 1) > 1 else []
            out = subprocess.run(
                [*wrk_pin, wrk, "-t1", "-c16", "-d10s", "--latency", url],
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout
            rps, p99 = parse_wrk(out)
            ok = rps >= 3000 and p99 <= 10
            print(
                f"requests/s {rps:.0f} (target >= 3000), p99 {p99:.2f} ms (target <= 10): "
                f"{'PASS' if ok else 'MISS'}"
            )
        finally:
            daemon.terminate()
            daemon.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
