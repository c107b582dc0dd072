"""Probe results that survive restarts: a channel proven ok within cache_ttl is not probed again."""

from __future__ import annotations

import math
import time
from pathlib import Path

from plextuner.errors import StateError
from plextuner.fileio import read_json, write_json
from plextuner.logging import get_logger
from plextuner.validate.hosts import LESSON_TTL
from plextuner.validate.result import Origin, ProbeResult, Verdict

log = get_logger(__name__)


class ProbeCache:
    """Channels' results by cache key, and the probe ceilings hosts taught (`hosts`)."""

    def __init__(
        self,
        entries: dict[str, dict[str, object]] | None = None,
        hosts: dict[str, tuple[float, float]] | None = None,
    ) -> None:
        self._entries = entries or {}
        self._hosts = hosts or {}  # host -> (ceiling in probes/s, when it was learned)

    @classmethod
    def load(cls, path: Path) -> ProbeCache:
        """The cache on disk; empty when there is none, or when it cannot be read (a cache:
        the next save replaces it, and post-validation probes everything meanwhile)."""
        try:
            raw = read_json(path)
        except StateError as err:
            log.warning("probe_cache_unreadable", error=str(err))
            raw = None
        entries = raw.get("entries") if isinstance(raw, dict) else None
        hosts = raw.get("hosts") if isinstance(raw, dict) else None
        return cls(entries if isinstance(entries, dict) else {}, _lessons(hosts))

    def save(self, path: Path) -> None:
        hosts = {h: {"ceiling": c, "at": at} for h, (c, at) in self._hosts.items()}
        write_json(path, {"version": 1, "entries": self._entries, "hosts": hosts})

    def ceilings(self, now: float | None = None) -> dict[str, float]:
        """The hosts' ceilings learned within LESSON_TTL."""
        now = now or time.time()
        return {h: c for h, (c, at) in self._hosts.items() if _fresh(at, now)}

    def learned(self, ceilings: dict[str, float], now: float | None = None) -> None:
        """Ceilings hosts taught this run (a remembered one kept its first date: see hosts.py),
        and the expired ones dropped."""
        now = now or time.time()
        self._hosts = {h: v for h, v in self._hosts.items() if _fresh(v[1], now)}
        self._hosts.update((h, (c, now)) for h, c in ceilings.items())

    def fresh_ok(self, key: str, ttl: float, now: float | None = None) -> ProbeResult | None:
        entry = self._entries.get(key)
        if not entry or entry.get("verdict") != "ok":
            return None
        at = entry.get("at")
        if not isinstance(at, int | float) or (now or time.time()) - at > ttl:
            return None
        height = entry.get("height")
        return ProbeResult(
            Verdict.OK,
            "cached",
            str(entry.get("codec") or "") or None,
            None,
            height if isinstance(height, int) else None,
            origin=Origin.CACHE,
        )

    def record(self, key: str, result: ProbeResult, now: float | None = None) -> None:
        if result.verdict is Verdict.TRANSIENT:
            return  # a transient answer says nothing about the channel
        self._entries[key] = {
            "verdict": result.verdict.value,
            "at": now or time.time(),
            "codec": result.video_codec,
            "height": result.height,
        }

    def forget(self, key: str) -> None:
        """Drop one channel's result: the next refresh probes it (the console's re-probe)."""
        self._entries.pop(key, None)

    def prune(self, keep: set[str]) -> None:
        self._entries = {k: v for k, v in self._entries.items() if k in keep}


def _fresh(learned_at: float, now: float) -> bool:
    """Learned within LESSON_TTL (a date in the future: the clock went back, not trusted)."""
    return 0 <= now - learned_at <= LESSON_TTL


def _lessons(raw: object) -> dict[str, tuple[float, float]]:
    """The `hosts` a save wrote; anything else in the file (hand-edited, garbage) ignored."""
    if not isinstance(raw, dict):
        return {}
    kept = {}
    for host, lesson in raw.items():
        if not isinstance(lesson, dict):
            continue
        ceiling, at = lesson.get("ceiling"), lesson.get("at")
        if (
            isinstance(ceiling, int | float)
            and isinstance(at, int | float)
            and not isinstance(ceiling, bool)
            and not isinstance(at, bool)
            and 0 < ceiling < math.inf
            and 0 <= at < math.inf
        ):
            kept[str(host)] = (float(ceiling), float(at))
    return kept
