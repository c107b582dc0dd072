"""The provider HTTP client (`make_client`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where a download starts: a local refresh never loads it (50 ms)
    import httpx


def make_client(timeout: float, user_agent: str) -> httpx.AsyncClient:
    """The process-wide provider client: bounded pool, connect/read timeouts, redirects followed."""
    import httpx  # lazily: see the imports

    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=True,
        max_redirects=5,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        headers={"User-Agent": user_agent},
        trust_env=False,
    )
