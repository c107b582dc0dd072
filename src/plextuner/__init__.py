"""plextuner: IPTV providers presented to Plex as HDHomeRun network tuners."""

import sys

__version__ = "0.1.0"

__all__ = ["__version__"]

# httpx's package init imports its command line (click, pygments, rich) wherever they are
# installed (encode/httpx#3547, open): 12-25 ms of every process that downloads, in a venv
# with dev tools (import-linter brings click, pytest pygments). plextuner never runs it: the
# import is refused (None in sys.modules), and httpx falls back to its stub `main`.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
