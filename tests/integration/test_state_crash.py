"""A kill -9 at any moment of a publish leaves the previous state readable."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plextuner.datadir import DataDir
from plextuner.fileio import STALE_TEMP_AFTER
from plextuner.state.published import load_state

pytestmark = pytest.mark.integration

WRITER = r"""
import sys, time
from pathlib import Path
from plextuner.buckets.models import Device, LineupEntry
from plextuner.ingest.models import Channel, Source
from plextuner.datadir import DataDir
from plextuner.fileio import STALE_TEMP_AFTER
from plextuner.state.published import PublishedState, save_state

data_dir = Path(sys.argv[1])
gen = 0
while True:
    gen += 1
    entries = [
        LineupEntry(number=str(1000 + i), channel=Channel(
            key=f"id:{i}", name=f"gen{gen} ch{i}", tvg_id=str(i), group="g", provider="p",
            sources=[Source("p", f"http://x/{gen}/{i}.ts")]))
        for i in range(3000)
    ]
    save_state(DataDir(data_dir), PublishedState(devices=[Device(
        name="d", bucket="d", friendly_name="d", device_id="1500000C", port=5004, tuners=2,
        entries=entries)]))
    print(gen, flush=True)
"""


def test_kill_9_during_publish_never_corrupts(tmp_path: Path) -> None:
    """Killing the publisher at random moments 12 times always leaves a complete state."""
    rnd = random.Random(42)
    seen_generations = set()
    for _ in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert proc.stdout is not None
        proc.stdout.readline()  # at least one full publish happened
        time.sleep(rnd.uniform(0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
        state = load_state(DataDir(tmp_path))
        assert state is not None
        names = {e.channel.name.split()[0] for e in state.devices[0].entries}
        assert len(names) == 1 and len(state.devices[0].entries) == 3000
        seen_generations |= names
        json.loads((DataDir(tmp_path).lineups).read_text())
    # crash leftovers: kept while they could be another writer's in flight, removed once stale
    for leftover in tmp_path.glob(".*.tmp"):
        stale = time.time() - 2 * STALE_TEMP_AFTER
        os.utime(leftover, (stale, stale))
    load_state(DataDir(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == [DataDir(tmp_path).lineups.name]
    assert len(seen_generations) > 1
