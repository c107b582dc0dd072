"""Configuration: the shape (`models`) and how it is loaded (`loading`).

Built once by the CLI and passed down; nothing here reads the environment at import time.
"""

from plextuner.config.loading import (
    MappingEnvSource,
    layout_digest,
    load_settings,
    read_config_file,
    redacted_dump,
    secret_values,
    shortcut_layer,
    url_secrets,
)
from plextuner.config.models import (
    ENV_PREFIX,
    AccountConfig,
    BucketConfig,
    EpgConfig,
    FetchConfig,
    MatchConfig,
    PlexConfig,
    PostvalidateConfig,
    ProviderConfig,
    Settings,
    StreamConfig,
    XtreamConfig,
    parse_duration,
)

__all__ = [
    "ENV_PREFIX",
    "AccountConfig",
    "BucketConfig",
    "EpgConfig",
    "FetchConfig",
    "MappingEnvSource",
    "MatchConfig",
    "PlexConfig",
    "PostvalidateConfig",
    "ProviderConfig",
    "Settings",
    "StreamConfig",
    "XtreamConfig",
    "layout_digest",
    "load_settings",
    "parse_duration",
    "read_config_file",
    "redacted_dump",
    "secret_values",
    "shortcut_layer",
    "url_secrets",
]
