"""One error root, one base per domain. Messages never carry credentials (see redact)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web


class PlexTunerError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(PlexTunerError):
    """The configuration is invalid; `problems` lists `key.path: reason` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class InflateError(PlexTunerError):
    """Compressed data is corrupt, truncated, or inflates past its cap."""


class IngestError(PlexTunerError):
    """A playlist or provider API could not be fetched or parsed."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class FetchError(IngestError):
    """A download failed; `transient` says whether a retry could help."""

    def __init__(
        self, source: str, reason: str, *, transient: bool = False, status: int | None = None
    ) -> None:
        super().__init__(source, reason)
        self.transient = transient
        self.status = status  # the HTTP status when the server answered with an error


class FetchTimeoutError(FetchError, TimeoutError):
    """A download timed out."""


class ProviderAuthError(IngestError):
    """An Xtream account is wrong, disabled or expired."""


class StateError(PlexTunerError):
    """The data dir could not be read or written."""


class OverrideError(PlexTunerError):
    """A console/API override that is malformed or cannot apply (a taken number, a full device)."""


class NothingPublishedError(PlexTunerError):
    """Every source failed or was rejected; the previous state was kept."""


class EpgError(PlexTunerError):
    """A guide source could not be fetched or parsed."""


class StreamError(PlexTunerError):
    """A tune could not be served."""


class TuneRefusedError(StreamError):
    """A tune answered with 503 and an HDHomeRun error header (busy, or the tune failed)."""

    def __init__(self, reason: str, hdhr_error: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason  # metric label: tuners_busy | connections_exhausted | tune_failed
        self.hdhr_error = hdhr_error  # e.g. "805 All Tuners In Use"


class BusyError(TuneRefusedError):
    """No tuner or provider connection free: a retry later may succeed."""


class TunersBusyError(BusyError):
    def __init__(self, device: str) -> None:
        super().__init__("tuners_busy", "805 All Tuners In Use", f"all tuners of {device} are busy")


class TunerInUseError(BusyError):
    """The client asked for one tuner (`/tunerN/v…`) and that one is busy."""

    def __init__(self, device: str, tuner: int) -> None:
        super().__init__("tuner_in_use", "804 Tuner In Use", f"tuner{tuner} of {device} is busy")


class ConnectionsExhaustedError(BusyError):
    def __init__(self, provider: str) -> None:
        super().__init__(
            "connections_exhausted",
            "803 System Busy",
            f"provider {provider} has no free connection",
        )


class TuneFailedError(TuneRefusedError):
    """Every source of the channel failed: nothing was busy, the channel did not play."""

    def __init__(self, detail: str) -> None:
        super().__init__("tune_failed", "806 Tune Failed", detail)


class FailureKind(StrEnum):
    """Why an upstream failed or ended (the `kind` label of plextuner_upstream_errors_total)."""

    TIMEOUT = "timeout"
    CONNECT = "connect"
    LIMIT = "limit"  # the provider's account or rate limit (401/403/429/458/509/513)
    HTTP = "http"  # any other error status (labelled http_<status>)
    NOT_MEDIA = "not_media"
    FFMPEG_MISSING = "ffmpeg_missing"
    HLS_DETECTED = "hls_detected"
    EOF = "eof"  # the upstream ended the stream
    STALL = "stall"  # no bytes within the stall timeout
    READ_ERROR = "read_error"  # the connection broke mid-stream


class UpstreamError(StreamError):
    """An upstream failed; `label` is its plextuner_upstream_errors_total kind."""

    def __init__(self, kind: FailureKind, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.status = status

    @property
    def label(self) -> str:
        return f"http_{self.status}" if self.kind is FailureKind.HTTP else self.kind.value


class IsHlsError(UpstreamError):
    """The URL answered with an HLS playlist: remux it instead."""

    def __init__(self) -> None:
        super().__init__(FailureKind.HLS_DETECTED, "upstream is an HLS playlist")


class ClientGoneError(StreamError):
    """The client disconnected while we wrote to it; `response` is the one it left."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__("client disconnected")
        self.response = response


class PacketError(PlexTunerError, ValueError):
    """Not a valid HDHomeRun frame (dropped silently by discovery)."""


class MissingBinaryError(PlexTunerError):
    """ffmpeg or ffprobe is not installed where the settings say."""

    def __init__(self, name: str, configured: str, why: str) -> None:
        super().__init__(
            f"{name} not found ({configured!r}): install Debian's ffmpeg (apt-get install ffmpeg), "
            f"or pip install 'plextuner[ffmpeg]', or set PLEX_TUNER_{name.upper()} to its path"
            + (f"; {why}" if why else "")
        )


class PlexError(PlexTunerError):
    """Plex Media Server refused or failed a call."""


class PlexAuthError(PlexError):
    def __init__(self) -> None:
        super().__init__(
            "Plex rejected the token (401): set plex.token or plex.token_file "
            "(PLEX_TUNER_PLEX__TOKEN_FILE) to a valid X-Plex-Token"
        )
