"""The stages a refresh runs after bucketing, chosen from the settings.

EPG and post-validation register here; the pipeline itself knows nothing about them.
"""

from __future__ import annotations

from plextuner.config import Settings
from plextuner.pipeline import Stage


def default_stages(settings: Settings) -> list[Stage]:
    stages: list[Stage] = []
    return stages
