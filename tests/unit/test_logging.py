"""Log events are scrubbed of secrets and URL credentials, structure kept."""

from __future__ import annotations

import io
import json

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
