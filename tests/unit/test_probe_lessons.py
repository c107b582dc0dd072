"""Probe ceilings hosts taught earlier runs: kept in probe_cache.json, held by later runs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from plextuner.validate.cache import ProbeCache
from plextuner.validate.hosts import LESSON_TTL, HostLimiter, HostMode


def test_a_remembered_ceiling_is_never_climbed_past() -> None:
    lim = HostLimiter("h", 2, 0.25, 0.0, park_after=6, rng=random.Random(1))  # base 4/s
    lim.remember(1.7)
    assert lim.rate == 1.7 and lim.ceiling == 1.7
    for _ in range(300):  # a long clean run: the climb stops under what the host taught
        lim.started(0)
        lim.finished_ok()
    assert lim.rate <= 1.7 and lim.ceiling == 1.7 and lim.taught == 0
    lim.started(0)
    lim.finished_transient(0, "HTTP 503")  # refused near it: a lesson of this run's own
    assert lim.taught == 1 and lim.ceiling < 1.7 and lim.mode is HostMode.BACKOFF


def test_a_ceiling_over_the_base_rate_leaves_the_start_alone() -> None:
    lim = HostLimiter("h", 2, 0.5, 0.0, park_after=6)  # base 2/s
    lim.remember(3.0)
    assert (lim.rate, lim.ceiling) == (2.0, 3.0)


def test_lessons_kept_for_a_day_across_a_save(tmp_path: Path) -> None:
    path = tmp_path / "probe_cache.json"
    cache = ProbeCache()
    cache.learned({"cdn1:80": 1.84, "cdn2:80": 4.2}, now=1000.0)
    cache.save(path)
    again = ProbeCache.load(path)
    assert again.ceilings(now=1000.0 + LESSON_TTL - 1) == {"cdn1:80": 1.84, "cdn2:80": 4.2}
    assert again.ceilings(now=1000.0 + LESSON_TTL + 1) == {}
    # A later run's lesson for one host: dated then; the other keeps its date and expires first
    again.learned({"cdn2:80": 3.9}, now=5000.0)
    assert again.ceilings(now=1000.0 + LESSON_TTL + 1) == {"cdn2:80": 3.9}


@pytest.mark.parametrize(
    "hosts",
    [
        "nonsense",
        [1, 2],
        {"a": 5},
        {"a": {"ceiling": "fast", "at": 1}},
        {"a": {"ceiling": True, "at": 1}},
        {"a": {"ceiling": -1, "at": 1}},
        {"a": {"ceiling": 0, "at": 1}},
        {"a": {"ceiling": 2.0}},
    ],
)
def test_a_hand_edited_or_garbled_lesson_is_ignored(tmp_path: Path, hosts: object) -> None:
    path = tmp_path / "probe_cache.json"
    path.write_text(json.dumps({"version": 1, "entries": {}, "hosts": hosts}))
    assert ProbeCache.load(path).ceilings(now=2.0) == {}


def test_a_cache_from_before_lessons_loads(tmp_path: Path) -> None:
    path = tmp_path / "probe_cache.json"
    path.write_text(json.dumps({"version": 1, "entries": {"k": {"verdict": "ok", "at": 1}}}))
    cache = ProbeCache.load(path)
    assert cache.ceilings() == {} and cache.fresh_ok("k", 1e12) is not None


def test_a_lesson_is_the_rate_the_host_saw_when_starts_fell_behind() -> None:
    # Nominal 4/s, but the starts came 0.5 s apart (a slot held by a slow answer): refused
    # there, the host allows less than 2/s, not less than 4/s.
    lim = HostLimiter("h", 2, 0.25, 0.0, park_after=6, rng=random.Random(1))
    for at in (10.0, 10.5, 11.0):
        lim.started(at)
    lim.finished_ok()
    lim.finished_ok()
    lim.finished_transient(11.01, "HTTP 503")
    assert lim.ceiling == pytest.approx(0.85 * 2.0)
    assert lim.cap == pytest.approx(0.85 * 4.0)  # the base rate still bounds what is pooled


def test_a_lesson_at_the_nominal_pace_is_the_nominal_rate() -> None:
    lim = HostLimiter("h", 2, 0.25, 0.0, park_after=6, rng=random.Random(1))
    for at in (10.0, 10.25, 10.5):  # on the pace: what was seen is the rate itself
        lim.started(at)
    lim.finished_ok()
    lim.finished_ok()
    lim.finished_transient(10.51, "HTTP 503")
    assert lim.ceiling == pytest.approx(0.85 * 4.0)
