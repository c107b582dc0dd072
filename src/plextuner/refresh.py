"""The stages a refresh runs after bucketing, chosen from the settings.

EPG and post-validation register here; the pipeline itself knows nothing about them.
"""

from __future__ import annotations

from plextuner.config import Settings
from plextuner.stages import Stage
from plextuner.stream.budget import BudgetRegistry


def default_stages(settings: Settings, budgets: BudgetRegistry | None = None) -> list[Stage]:
    """Post-validation, then the guide (so the guide covers exactly what is published)."""
    from plextuner.epg.stage import make_epg_stage

    stages: list[Stage] = []
    if settings.postvalidate.enabled:  # imported only then: 40 ms of a refresh's start-up
        from plextuner.validate.stage import make_validate_stage

        stages.append(make_validate_stage(settings, budgets))
    stages.append(make_epg_stage(settings))
    return stages
