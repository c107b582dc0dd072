"""Log events are scrubbed of secrets and URL credentials, structure kept."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from plextuner.logging import configure_logging, get_logger
from plextuner.redact import SECRETS


def test_json_event_scrubbed() -> None:
    """Nested values, exceptions and URLs lose their credentials; numbers stay numbers."""
    SECRETS.add("hunter22")
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    get_logger("t").info(
        "provider_failed",
        url="http://bob:hunter22@h.invalid/get.php?password=hunter22",
        nested={"a": ["hunter22", 3]},
        error=ValueError("bad hunter22"),
        count=3,
    )
    line = out.getvalue().strip()
    assert "hunter22" not in line and "bob" not in line
    event = json.loads(line)
    assert event["count"] == 3 and event["nested"]["a"][1] == 3
    assert event["event"] == "provider_failed"


def test_a_logger_made_before_configuring_logs_as_configured() -> None:
    """Module loggers are made at import, before the CLI configures logging; they follow the
    configuration in force at each event (and the level filter applies)."""
    log = get_logger("early")
    out = io.StringIO()
    configure_logging("json", "warning", stream=out)
    log.info("quiet")
    log.warning("loud", n=1)
    first = io.StringIO()
    configure_logging("json", "info", stream=first)
    log.info("now_heard")
    assert [json.loads(x)["event"] for x in out.getvalue().splitlines()] == ["loud"]
    assert json.loads(first.getvalue())["event"] == "now_heard"


def test_the_guide_helper_does_not_import_structlog() -> None:
    """The second-half helper (epg/halves.py) never logs in a clean run: structlog (with the
    asyncio, ssl and greenlet it imports) stays out of it, 9 MB of its ~50."""
    code = "import sys, plextuner.epg.halves; print('structlog' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=60)
    assert done.stdout.strip() == b"False"
