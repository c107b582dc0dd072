"""Configuration: defaults < config file (YAML/TOML) < environment < CLI flags.

Built once by the CLI and passed down; nothing here reads the environment at import time.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from plextuner.errors import ConfigError
from plextuner.redact import SECRETS, redact_url

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
    model_config = ConfigDict(extra="forbid", validate_default=True)


def _fill_secret(obj: Any, field: str) -> None:
    """`<field>_file` supplies `<field>` (Kubernetes mounts Secrets as files)."""
    path = getattr(obj, f"{field}_file")
    if path and getattr(obj, field) is None:
        setattr(obj, field, SecretStr(_read_secret_file(path, f"{field}_file")))
    value = getattr(obj, field)
    if isinstance(value, SecretStr):
        SECRETS.add(value.get_secret_value())


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

    @model_validator(mode="after")
    def _one_source(self) -> ProviderConfig:
        _fill_secret(self, "m3u_url")
        if (self.m3u_url is None) == (self.xtream is None):
            raise ValueError("give exactly one of m3u_url or xtream")
        if self.m3u_url is not None:
            SECRETS.add(*_url_secrets(self.m3u_url.get_secret_value()))
        return self


def _url_secrets(url: str) -> list[str]:
    """Credential values embedded in a URL, registered so logs can scrub them anywhere."""
    from urllib.parse import parse_qsl, urlsplit

    from plextuner.redact import SECRET_QUERY_KEYS

    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [parts.password or "", parts.username or ""]
    found += [v for k, v in parse_qsl(parts.query) if k.lower() in SECRET_QUERY_KEYS]
    return found


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


class EpgConfig(_Model):
    sources: list[str] = Field(default_factory=list, description="XMLTV URLs or paths (.gz ok)")
    days: int = Field(3, ge=1, le=31, description="Days of programmes kept")
    placeholder: bool = Field(True, description="Placeholder programmes for unmatched channels")
    placeholder_block: Duration = Field(3600.0, description="Length of a placeholder programme")
    require: bool = Field(False, description="Drop channels with no guide data from lineups")
    max_bytes: int = Field(2 * 1024**3, ge=1024, description="Cap on a decompressed guide")


class PostvalidateConfig(_Model):
    enabled: bool = Field(True, description="Probe streams after each refresh")
    engine: Literal["ffprobe", "native"] = Field("ffprobe", description="Probe engine")
    workers: int = Field(12, ge=1, le=256, description="Global probe concurrency cap")
    per_host: int = Field(2, ge=1, le=64, description="Concurrent probes per host")
    min_interval: Duration = Field(0.5, description="Seconds between probe starts on one host")
    jitter: Duration = Field(0.5, description="Random 0..jitter seconds added to the interval")
    timeout: Duration = Field(15.0, description="Seconds per probe")
    max_drop_ratio: float = Field(0.2, ge=0, le=1, description="Run guard threshold per bucket")
    cache_ttl: Duration = Field(86400.0, description="A channel proven ok within this is skipped")
    retries: int = Field(3, ge=0, le=10, description="Retries of a transient result, with backoff")
    park_after: int = Field(
        6, ge=1, description="Consecutive transient failures before a host is parked for the run"
    )
    max_run_time: Duration = Field(
        3600.0, description="Probes still pending after this are kept as unverified"
    )


class PlexConfig(_Model):
    url: str | None = Field(None, description="Plex Media Server URL")
    token: SecretStr | None = Field(None, description="X-Plex-Token")
    token_file: str | None = Field(None, description="File holding the token")
    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True)

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
    discovery_port: int = Field(65001, ge=0, le=65535, description="UDP discovery port, 0 = off")
    data_dir: Path = Field(Path("./data"), description="Where state is published")
    refresh_interval: Duration = Field(6 * 3600.0, description="Seconds between refreshes")
    providers: list[ProviderConfig] = Field(default_factory=list, description="Priority order")
    epg: EpgConfig = Field(default_factory=EpgConfig, description="Guide sources and output")
    buckets: list[BucketConfig] = Field(default_factory=list, description="Virtual devices")
    unmatched: Literal["drop", "default"] = Field("drop", description="Channels no rule matches")
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

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        _fill_secret(self, "admin_token")
        names = [p.name for p in self.providers]
        if len(names) != len(set(names)):
            raise ValueError("provider names must be unique")
        buckets = [b.name for b in self.buckets]
        if len(buckets) != len(set(buckets)):
            raise ValueError("bucket names must be unique")
        for source in self.epg.sources:
            SECRETS.add(*_url_secrets(source))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        layers = _LAYERS.get(id(settings_cls), ({}, {}))
        return (
            init_settings,
            env_settings,
            _DictSource(settings_cls, layers[0]),
            _DictSource(settings_cls, layers[1]),
        )


# Extra layers (shortcut env vars, then file) handed to settings_customise_sources per load.
_LAYERS: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}


class _DictSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = dict(data)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML or TOML file (by extension) into a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError([f"config file {path}: {err.strerror or err}"]) from err
    try:
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as err:
        raise ConfigError([f"config file {path}: {err}"]) from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"config file {path}: top level must be a mapping"])
    return data


def shortcut_layer(env: Mapping[str, str]) -> dict[str, Any]:
    """The single-provider environment shortcuts kept from the tool this replaces."""
    layer: dict[str, Any] = {}
    providers: list[dict[str, Any]] = []
    m3u = env.get(ENV_PREFIX + "M3U_URL")
    if m3u:
        providers.append({"name": "m3u", "m3u_url": m3u})
    elif env.get(ENV_PREFIX + "M3U_URL_FILE"):
        providers.append({"name": "m3u", "m3u_url_file": env[ENV_PREFIX + "M3U_URL_FILE"]})
    xt_url = env.get(ENV_PREFIX + "PROVIDER_URL")
    if xt_url:
        xtream: dict[str, Any] = {"url": xt_url}
        for key, var in (("username", "PROVIDER_USER"), ("password", "PROVIDER_PASS")):
            if env.get(ENV_PREFIX + var):
                xtream[key] = env[ENV_PREFIX + var]
            if env.get(ENV_PREFIX + var + "_FILE"):
                xtream[key + "_file"] = env[ENV_PREFIX + var + "_FILE"]
        providers.append({"name": "xtream", "xtream": xtream})
    if providers:
        layer["providers"] = providers
    if env.get(ENV_PREFIX + "XMLTV_URL"):
        layer["epg"] = {"sources": [env[ENV_PREFIX + "XMLTV_URL"]]}
    if env.get(ENV_PREFIX + "POSTVALIDATE_WORKERS"):
        layer["postvalidate"] = {"workers": env[ENV_PREFIX + "POSTVALIDATE_WORKERS"]}
    return layer


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _problems(err: ValidationError) -> list[str]:
    lines = []
    for item in err.errors():
        path = ".".join(str(p) for p in item["loc"]) or "(root)"
        msg = item["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {msg}")
    return lines


def load_settings(
    path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build the effective settings; raise ConfigError listing every problem with its key path."""
    env = os.environ if env is None else env
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = Path(env[ENV_PREFIX + "CONFIG"])
    file_layer = read_config_file(path) if path else {}
    shortcuts = shortcut_layer(env)
    if "providers" in shortcuts and "providers" in file_layer:
        # A shortcut provider joins the file's providers rather than hiding them.
        shortcuts["providers"] = file_layer["providers"] + shortcuts["providers"]
    if "epg" in shortcuts and "epg" in file_layer and isinstance(file_layer["epg"], dict):
        sources = list(file_layer["epg"].get("sources", [])) + shortcuts["epg"]["sources"]
        shortcuts["epg"] = _merge(file_layer["epg"], {"sources": sources})
    # Each load gets its own subclass so concurrent loads (tests) never share layers.
    loader = type("_LoadedSettings", (Settings,), {"__module__": __name__})
    _LAYERS[id(loader)] = (shortcuts, file_layer)
    saved = _swap_environ(env)
    try:
        settings = loader(**dict(overrides or {}))
    except ValidationError as err:
        raise ConfigError(_problems(err)) from None
    except ValueError as err:  # env JSON that does not parse, for one
        raise ConfigError([str(err)]) from None
    finally:
        _LAYERS.pop(id(loader), None)
        _restore_environ(saved)
    return Settings.model_construct(**{k: getattr(settings, k) for k in Settings.model_fields})


def _swap_environ(env: Mapping[str, str]) -> dict[str, str] | None:
    if env is os.environ:
        return None
    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
        del os.environ[key]
    os.environ.update({k: v for k, v in env.items() if k.startswith(ENV_PREFIX)})
    return saved


def _restore_environ(saved: dict[str, str] | None) -> None:
    if saved is not None:
        os.environ.clear()
        os.environ.update(saved)


def layout_digest(settings: Settings) -> str:
    """What the published layout depends on (ports, buckets, providers): changes force a rebuild."""
    import hashlib

    layout = {
        "port": settings.port,
        "buckets": [b.model_dump(mode="json") for b in settings.buckets],
        "unmatched": settings.unmatched,
        "providers": [p.name for p in settings.providers],
        "epg_require": settings.epg.require,
    }
    return hashlib.sha256(json.dumps(layout, sort_keys=True).encode()).hexdigest()[:16]


def redacted_dump(settings: Settings) -> dict[str, Any]:
    """The effective config as plain data with every secret and URL credential masked."""
    data = settings.model_dump(mode="json", by_alias=True)
    for raw, provider in zip(data["providers"], settings.providers, strict=True):
        if provider.m3u_url is not None:
            raw["m3u_url"] = redact_url(provider.m3u_url.get_secret_value())
    redacted: dict[str, Any] = _redact_tree(json.loads(json.dumps(data, default=str)))
    return redacted


def _redact_tree(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _redact_tree(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_tree(v, key) for v in value]
    if isinstance(value, str):
        if value == "**********":
            return value
        if "://" in value:
            return redact_url(value)
    return value
