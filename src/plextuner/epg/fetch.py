"""Guide downloads straight to disk (guides run to hundreds of MB) through the shared fetcher:
the same bounded inflation, caps, status policy and ETag revalidation as playlists."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from plextuner.errors import EpgError, FetchError
from plextuner.ingest.fetch import Fetcher, FetchOptions

if TYPE_CHECKING:  # a refresh of local files never loads httpx
    import httpx

GUIDE_TIMEOUT_FACTOR = 20  # a 300 MB guide at a slow provider is minutes, not seconds


async def fetch_guide(
    client: httpx.AsyncClient | None,
    location: str,
    dest_dir: Path,
    cap: int,
    timeout: float,
    retries: int = 0,
) -> Path:
    """The guide as a plain XML file on disk (kept for ETag/Last-Modified revalidation)."""
    opts = FetchOptions(
        timeout=timeout,
        retries=retries,
        max_bytes=cap,
        cache_dir=dest_dir,
        total_timeout=timeout * GUIDE_TIMEOUT_FACTOR,
    )
    try:
        return await Fetcher(client, opts).fetch_file(location)
    except FetchError as err:
        raise EpgError(str(err)) from None
