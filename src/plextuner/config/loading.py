"""Loading: defaults < config file (YAML/TOML) < shortcut env vars < environment < CLI flags.

`load_settings` reads only the environment mapping it is given (no `os.environ` rewrite, no
module-global state), so concurrent loads with different environments never see each other.
Secrets are collected by `secret_values` and registered by the caller (the CLI, the service).
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from plextuner.config.models import ENV_PREFIX, Settings
from plextuner.errors import ConfigError
from plextuner.redact import SECRET_QUERY_KEYS, redact_url


class MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source (prefix, `__` nesting, JSON values) over a given
    mapping instead of the process environment."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._mapping = env  # read by _load_env_vars, which the base __init__ calls
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._mapping, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


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


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
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


def _with_shortcuts(file_layer: dict[str, Any], shortcuts: dict[str, Any]) -> dict[str, Any]:
    """A shortcut provider or guide joins the file's rather than hiding them."""
    if "providers" in shortcuts and "providers" in file_layer:
        shortcuts["providers"] = file_layer["providers"] + shortcuts["providers"]
    if "epg" in shortcuts and isinstance(file_layer.get("epg"), dict):
        sources = list(file_layer["epg"].get("sources", [])) + shortcuts["epg"]["sources"]
        shortcuts["epg"] = _merge(file_layer["epg"], {"sources": sources})
    return _merge(file_layer, shortcuts)


def load_settings(
    path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build the effective settings; raise ConfigError listing every problem with its key path."""
    env = dict(os.environ) if env is None else env
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = Path(env[ENV_PREFIX + "CONFIG"])
    base = _with_shortcuts(read_config_file(path) if path else {}, shortcut_layer(env))
    try:
        env_layer = MappingEnvSource(Settings, env)()
        merged = _merge(_merge(base, env_layer), dict(overrides or {}))
        # model_validate, not Settings(): the constructor would read os.environ itself.
        return Settings.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(_problems(err)) from None
    except ValueError as err:  # env JSON that does not parse, for one
        raise ConfigError([str(err)]) from None


def url_secrets(url: str) -> list[str]:
    """Credential values embedded in a URL (userinfo, and query keys such as password)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [parts.password or "", parts.username or ""]
    found += [v for k, v in parse_qsl(parts.query) if k.lower() in SECRET_QUERY_KEYS]
    return [f for f in found if f]


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, for the caller to register with the log scrubber."""
    out = list(_secret_strs(settings))
    for provider in settings.providers:
        urls = [provider.m3u_url, *(a.m3u_url for a in provider.accounts)]
        for url in urls:
            if url is not None:
                out += url_secrets(url.get_secret_value())
    for source in settings.epg.sources:
        out += url_secrets(source)
    return [s for s in out if s]


def _secret_strs(value: Any) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secret_strs(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _secret_strs(item)


def layout_digest(settings: Settings) -> str:
    """What the published layout depends on (ports, buckets, providers): changes force a rebuild."""
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
