"""Ordering a channel's sources by health: recent failures push a source back."""

from __future__ import annotations

import math
import time

from plextuner.ingest.models import Source
from plextuner.stream.budget import BudgetRegistry

HALF_LIFE = 300.0  # a failure five minutes ago weighs half as much as one now


class SourceHealth:
    def __init__(self) -> None:
        self._penalty: dict[str, tuple[float, float]] = {}  # url -> (score, at)

    def _score(self, url: str, now: float) -> float:
        score, at = self._penalty.get(url, (0.0, now))
        return score * math.pow(0.5, (now - at) / HALF_LIFE)

    def failed(self, url: str) -> None:
        now = time.monotonic()
        self._penalty[url] = (self._score(url, now) + 1.0, now)

    def succeeded(self, url: str) -> None:
        now = time.monotonic()
        score = self._score(url, now) / 2
        if score < 0.05:
            self._penalty.pop(url, None)
        else:
            self._penalty[url] = (score, now)

    def order(self, sources: list[Source], budgets: BudgetRegistry) -> list[tuple[int, Source]]:
        """(original index, source), healthiest first; providers with a free connection first."""
        now = time.monotonic()
        return sorted(
            enumerate(sources),
            key=lambda item: (
                budgets.get(item[1].provider).free == 0,
                round(self._score(item[1].url, now), 1),
                item[0],
            ),
        )
