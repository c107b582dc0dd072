"""What a one-shot `plextuner refresh` of local files loads: its start-up is part of the wall
time users wait for (issue 16), so the HTTP client and the metrics library stay unloaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
from plextuner.cli import main
code = main(["refresh", "--config", sys.argv[1]])
print(code, sorted(m for m in ("httpx", "prometheus_client", "aiohttp") if m in sys.modules))
"""


def test_a_local_refresh_loads_no_http_client_and_no_metrics(tmp_path: Path) -> None:
    playlist = tmp_path / "list.m3u"
    playlist.write_text(
        '#EXTM3U\n#EXTINF:-1 tvg-id="a" group-title="News",A\nhttp://cdn.invalid/live/1.ts\n',
        encoding="utf-8",
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"providers:\n  - {{name: p, m3u_url: '{playlist}'}}\n"
        "postvalidate: {enabled: false}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 []"


PLUGINS = """
import os, sys
import plextuner.cli
from pydantic.plugin import _loader
print(os.environ["PYDANTIC_DISABLE_PLUGINS"], _loader._plugins)
"""


def test_the_command_skips_pydantic_s_plugin_search_unless_told_otherwise() -> None:
    """pydantic reads every installed distribution's entry points for plugins at the first
    model (20-30 ms of each start); the command turns that off, and an operator's own
    PYDANTIC_DISABLE_PLUGINS stands."""
    for env, said in (({}, "__all__ None"), ({"PYDANTIC_DISABLE_PLUGINS": "x"}, "x ")):
        done = subprocess.run(
            [sys.executable, "-c", PLUGINS],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"} | env,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().startswith(said.strip()), done.stdout
        if not env:
            assert done.stdout.split()[-1] == "None"  # never searched


def test_httpx_loads_without_its_command_line() -> None:
    """httpx's package init would import its command line (click, pygments) where they are
    installed, as in this venv (plextuner/__init__.py refuses it); httpx works without it."""
    code = (
        "import sys, plextuner, httpx\n"
        "client = httpx.Client(); client.close()\n"
        "print(sorted(m for m in ('click', 'pygments', 'rich') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_the_helper_processes_load_no_event_loop() -> None:
    """A big playlist's and a big guide's helper processes (m3uhalf, halves, writehalf) import
    what their work needs and no asyncio: with it (its ssl and selectors), each held ~5 MB
    more, counted in the refresh's process tree beside the guide job."""
    for module in ("plextuner.ingest.m3uhalf", "plextuner.epg.halves", "plextuner.epg.writehalf"):
        code = f"import sys, {module}\nprint('asyncio' in sys.modules)\n"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        )
        assert out.stdout.strip() == "False", module
