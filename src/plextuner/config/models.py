"""The configuration's shape: every section, its fields, defaults and checks (docs/configuration.md
is generated from these descriptions). Loading lives in `config.loading`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from plextuner.datadir import DataDir

ENV_PREFIX = "PLEX_TUNER_"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like `90`, `30s`, `30m`, `6h`, `1d`."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 30m, 6h or 1d")  # noqa: TRY004
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"invalid duration {value!r}: use seconds or 30s/30m/6h/1d")
        seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if seconds < 0:
        raise ValueError("duration must not be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _read_secret_file(path: str, key: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ValueError(f"{key}: cannot read secret file {path}: {err.strerror}") from err


class _Model(BaseModel):
    # defer_build: a section's own validator and serializer are built when it is first used
    # alone, not at import; `Settings` builds the whole schema once (every command's start-up:
    # ~50 ms less, the 50k `plextuner refresh` 1.03 -> 0.94 s median)
    model_config = ConfigDict(extra="forbid", validate_default=True, defer_build=True)


def _fill_secret(obj: Any, field: str) -> None:
    """`<field>_file` supplies `<field>` (Kubernetes mounts Secrets as files)."""
    path = getattr(obj, f"{field}_file")
    if path and getattr(obj, field) is None:
        setattr(obj, field, SecretStr(_read_secret_file(path, f"{field}_file")))


class XtreamConfig(_Model):
    url: str = Field(description="Base URL of the Xtream Codes panel, e.g. http://host:8080")
    username: SecretStr | None = Field(None, description="Account user name")
    username_file: str | None = Field(None, description="File holding the user name")
    password: SecretStr | None = Field(None, description="Account password")
    password_file: str | None = Field(None, description="File holding the password")
    output: Literal["ts", "m3u8"] = Field("ts", description="Stream container asked of the panel")

    @model_validator(mode="after")
    def _secrets(self) -> XtreamConfig:
        _fill_secret(self, "username")
        _fill_secret(self, "password")
        if self.username is None or self.password is None:
            raise ValueError("xtream needs username and password (or *_file)")
        return self


class AccountConfig(_Model):
    """A further login of the same provider (pooled accounts), with its own connection limit."""

    username: SecretStr | None = Field(None, description="Xtream user name of this account")
    username_file: str | None = Field(None, description="File holding the user name")
    password: SecretStr | None = Field(None, description="Xtream password of this account")
    password_file: str | None = Field(None, description="File holding the password")
    m3u_url: SecretStr | None = Field(None, description="This account's M3U URL (M3U providers)")
    m3u_url_file: str | None = Field(None, description="File holding m3u_url")
    max_connections: int = Field(1, ge=1, description="Concurrent streams this account allows")

    @model_validator(mode="after")
    def _secrets(self) -> AccountConfig:
        for name in ("username", "password", "m3u_url"):
            _fill_secret(self, name)
        xtream = self.username is not None or self.password is not None
        if xtream == (self.m3u_url is not None):
            raise ValueError("an account has username and password, or m3u_url")
        if xtream and (self.username is None or self.password is None):
            raise ValueError("an Xtream account needs username and password (or *_file)")
        return self


class ProviderConfig(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", description="Short unique name")
    m3u_url: SecretStr | None = Field(
        None, description="M3U playlist URL or file path (may embed credentials)"
    )
    m3u_url_file: str | None = Field(None, description="File holding m3u_url")
    xtream: XtreamConfig | None = Field(None, description="Xtream Codes account")
    max_connections: int | None = Field(
        None, ge=1, description="Concurrent streams allowed [from Xtream user_info, else 1]"
    )
    user_agent: str | None = Field(None, description="User-Agent for this provider's requests")
    accounts: list[AccountConfig] = Field(
        default_factory=list,
        description="Further logins of this provider, pooled for tunes and probes",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ProviderConfig:
        _fill_secret(self, "m3u_url")
        if (self.m3u_url is None) == (self.xtream is None):
            raise ValueError("give exactly one of m3u_url or xtream")
        for account in self.accounts:
            if (account.m3u_url is None) != (self.xtream is not None):
                kind = "username/password" if self.xtream else "m3u_url"
                raise ValueError(f"accounts of this provider are given by {kind}")
        return self


class MatchConfig(_Model):
    group: str | None = Field(None, description="Regex on the group-title")
    name: str | None = Field(None, description="Regex on the channel name")
    tvg_id: str | None = Field(None, description="Regex on tvg-id")
    provider: str | None = Field(None, description="Regex on the provider name")

    @field_validator("group", "name", "tvg_id", "provider")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as err:
                raise ValueError(f"invalid regex: {err}") from err
        return value


class BucketConfig(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,30}$", description="Bucket id (URL-safe)")
    friendly_name: str | None = Field(None, description="Name shown in Plex [name]")
    match: MatchConfig = Field(default_factory=MatchConfig, description="All given must match")
    tuners: int = Field(2, ge=1, le=64, description="Concurrent streams this device allows")
    max_channels: int = Field(479, ge=1, le=10000, description="Channels per device before a shard")
    first_number: int | None = Field(None, ge=1, description="First GuideNumber [auto]")
    port: int | None = Field(None, ge=1, le=65535, description="This device's HTTP port [port+i]")
    postvalidate: bool = Field(True, description="Probe this bucket's streams")
    model: str = Field(
        "HDHR5-4US",
        pattern=r"^[A-Za-z0-9._-]{1,32}$",
        description="ModelNumber the device claims (HDTC-* makes Jellyfin/Emby offer transcoding)",
    )
    firmware_name: str = Field(
        "hdhomerun5_atsc",
        pattern=r"^[A-Za-z0-9._-]{1,32}$",
        description="FirmwareName (and TCP /sys/model) the device claims",
    )


class EpgConfig(_Model):
    sources: list[str] = Field(default_factory=list, description="XMLTV URLs or paths (.gz ok)")
    days: int = Field(3, ge=1, le=31, description="Days of programmes kept")
    placeholder: bool = Field(True, description="Placeholder programmes for unmatched channels")
    placeholder_block: Duration = Field(3600.0, description="Length of a placeholder programme")
    require: bool = Field(False, description="Drop channels with no guide data from lineups")
    channel_ids: Literal["xmltv", "number"] = Field(
        "xmltv", description="Guide channel ids: `1000.plextuner` (valid XMLTV) or the bare number"
    )
    max_bytes: int = Field(2 * 1024**3, ge=1024, description="Cap on a decompressed guide")
    map: dict[str, str] = Field(
        default_factory=dict,
        description="Manual guide mappings: channel key, tvg-id or name → guide channel id; "
        "they win over every other match",
    )
    aliases: str | None = Field(
        None, description="File of names to treat as one: a line per channel, names joined by ` = `"
    )
    match_threshold: float = Field(
        0.88, ge=0.5, le=1.0, description="Lowest fuzzy similarity (0.5-1) accepted as a match"
    )
    fold_subtitle: bool = Field(
        True,
        description="Fold a programme's sub-title into its title when it has no episode number, "
        "so Plex does not show one description for every airing of a series",
    )
    parallel: bool = Field(
        True,
        description="Read a big guide (64 MB or more past its channels) with a second process, "
        "and write big device guides (150k kept programmes or more) with a second process, "
        "when two CPUs are available (the pod's CPU limit counts); ~50 MB more at the peak",
    )


class PostvalidateConfig(_Model):
    enabled: bool = Field(True, description="Probe streams after each refresh")
    engine: Literal["ffprobe", "native"] = Field("ffprobe", description="Probe engine")
    workers: int = Field(12, ge=1, le=256, description="Global probe concurrency cap")
    per_host: int = Field(2, ge=1, le=64, description="Concurrent probes per host")
    min_interval: Duration = Field(0.5, description="Seconds between probe starts on one host")
    jitter: Duration = Field(0.5, description="Random 0..jitter seconds added to the interval")
    timeout: Duration = Field(15.0, description="Seconds per probe (a retry's)")
    first_timeout: Duration = Field(
        5.0,
        description="Seconds for a channel's first probe: one that hangs is retried at the "
        "end of the run with the full timeout",
    )
    provider_linger: Duration | None = Field(
        None,
        description="Seconds a provider keeps counting a closed stream against the account "
        "(probes treat a freed slot as busy this long); unset: learned from its refusals",
    )
    max_drop_ratio: float = Field(0.2, ge=0, le=1, description="Run guard threshold per bucket")
    cache_ttl: Duration = Field(86400.0, description="A channel proven ok within this is skipped")
    retries: int = Field(3, ge=0, le=10, description="Retries of a transient result, with backoff")
    park_after: int = Field(
        6,
        ge=1,
        description="Consecutive transient failures before a host is parked for the run (one "
        "that answered earlier in the run: after 300 s of them, a ban ends)",
    )
    max_run_time: Duration = Field(
        3600.0, description="Probes still pending after this are kept as unverified"
    )


class PlexConfig(_Model):
    url: str | None = Field(None, description="Plex Media Server URL")
    token: SecretStr | None = Field(None, description="X-Plex-Token")
    token_file: str | None = Field(None, description="File holding the token")
    model_config = ConfigDict(
        extra="forbid", validate_default=True, populate_by_name=True, defer_build=True
    )

    # "register" would shadow ABCMeta.register on the model class, hence the alias.
    register_dvrs: bool = Field(
        False, alias="register", description="Create/refresh one Plex DVR per device"
    )
    reload_after_refresh: bool = Field(False, description="Reload guides after each refresh")
    batch_size: int = Field(3, ge=1, description="Guides reloaded at a time")
    batch_delay: Duration = Field(10.0, description="Pause between reload batches")

    @model_validator(mode="after")
    def _secrets(self) -> PlexConfig:
        _fill_secret(self, "token")
        return self


class StreamConfig(_Model):
    connect_timeout: Duration = Field(10.0, description="Seconds for an upstream to answer")
    stall_timeout: Duration = Field(6.0, description="No bytes this long mid-stream: reconnect")
    max_failovers: int = Field(4, ge=0, le=20, description="Reconnects/switches per session")
    viewer_wait: Duration = Field(
        3.0, description="A tune facing a full connection budget waits this long for a release"
    )
    default_max_connections: int = Field(
        1, ge=1, description="Connection budget of a provider that states none"
    )
    first_byte_timeout: Duration = Field(
        5.0, description="A tune that has no bytes from any source after this answers 503 806"
    )
    linger: Duration = Field(
        3.0, description="Keep an upstream this long after its last viewer (a transcode restart)"
    )
    ring_bytes: int = Field(
        8 * 1024**2, ge=188 * 64, description="Recent TS kept per upstream for joiners to start"
    )
    viewer_buffer_bytes: int = Field(
        4 * 1024**2, ge=188 * 64, description="A viewer this far behind is skipped or dropped"
    )
    slow_viewer: Literal["skip", "disconnect"] = Field(
        "skip", description="A viewer past its buffer: skip to a keyframe, or disconnect it"
    )


class FetchConfig(_Model):
    timeout: Duration = Field(30.0, description="Seconds per provider request (connect and read)")
    retries: int = Field(2, ge=0, le=10, description="Retries on transient errors")
    max_bytes: int = Field(256 * 1024**2, ge=1024, description="Cap on a (decompressed) playlist")
    user_agent: str = Field("plextuner/0.1", description="Default User-Agent to providers")
    max_shrink: float = Field(
        0.5,
        ge=0,
        le=1,
        description="A provider list that lost more than this share of its entries since the last "
        "publish is treated as a failed (truncated) download; 1 accepts any change",
    )


class OverrideConfig(_Model):
    key: str = Field(description="The channel's key, as `plextuner lineup --json` prints it")
    disabled: bool | None = Field(None, description="Leave the channel out of every lineup")
    name: str | None = Field(None, description="The name Plex shows")
    number: str | None = Field(None, description="The GuideNumber")
    device: str | None = Field(None, description="The device (bucket or shard) to put it on")
    guide_id: str | None = Field(None, description="The guide channel id to take programmes from")


class Settings(BaseSettings):
    """The whole configuration. See docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    host: str = Field("0.0.0.0", description="Listen address")  # noqa: S104
    port: int = Field(5004, ge=1, le=65535, description="First device port and admin port")
    advertise_host: str | None = Field(None, description="Host advertised in URLs [request Host]")
    discovery_port: int = Field(
        65001, ge=0, le=65535, description="UDP discovery and TCP control port, 0 = off"
    )
    compat_http_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Also serve the first device here (80: Jellyfin/HDHRUtil discovery), 0 = off",
    )
    data_dir: Path = Field(Path("./data"), description="Where state is published")
    refresh_interval: Duration = Field(6 * 3600.0, description="Seconds between refreshes")
    providers: list[ProviderConfig] = Field(default_factory=list, description="Priority order")
    epg: EpgConfig = Field(default_factory=EpgConfig, description="Guide sources and output")
    buckets: list[BucketConfig] = Field(default_factory=list, description="Virtual devices")
    unmatched: Literal["drop", "default"] = Field("drop", description="Channels no rule matches")
    overrides: list[OverrideConfig] = Field(
        default_factory=list,
        description="Per-channel corrections (the console exports these); the data dir's win",
    )
    postvalidate: PostvalidateConfig = Field(
        default_factory=PostvalidateConfig, description="Stream probing after each refresh"
    )
    plex: PlexConfig = Field(default_factory=PlexConfig, description="Plex Media Server API")
    fetch: FetchConfig = Field(default_factory=FetchConfig, description="Provider downloads")
    stream: StreamConfig = Field(default_factory=StreamConfig, description="Stream engine")
    admin_token: SecretStr | None = Field(None, description="Bearer token for admin POSTs")
    admin_token_file: str | None = Field(None, description="File holding admin_token")
    log_format: Literal["json", "console", "auto"] = Field(
        "auto", description="Log renderer; auto = console on a TTY, else JSON"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level")
    ffmpeg: str = Field("ffmpeg", description="ffmpeg binary (PLEX_TUNER_FFMPEG)")
    ffprobe: str = Field("ffprobe", description="ffprobe binary (PLEX_TUNER_FFPROBE)")

    @property
    def paths(self) -> DataDir:
        """The data dir's layout (every file the daemon keeps, named in one place)."""
        return DataDir(self.data_dir)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        _fill_secret(self, "admin_token")
        names = [p.name for p in self.providers]
        if len(names) != len(set(names)):
            raise ValueError("provider names must be unique")
        buckets = [b.name for b in self.buckets]
        if len(buckets) != len(set(buckets)):
            raise ValueError("bucket names must be unique")
        return self
