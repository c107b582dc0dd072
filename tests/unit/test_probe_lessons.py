"""Probe ceilings hosts taught earlier runs: kept in probe_cache.json, held by later runs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from plextuner.validate.cache import ProbeCache
from plextuner.validate.hosts import CLEAN_STREAK, LESSON_TTL, HostLimiter, HostMode


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


def _banned_for(lim: HostLimiter, since: float, until: float) -> None:
    """The host refuses every try from `since` to `until` (a ban), retried as the pool does."""
    now = since
    while now <= until:
        lim.started(now)
        lim.finished_transient(now, "connection refused", refused=True)
        now = max(now + 0.5, lim.next_start)


def test_a_long_ban_at_the_configured_pace_teaches_under_the_rate_resumed_at() -> None:
    # Refused at its second probe, at the configured 2/s: the limit is somewhere under it, and
    # a CDN that then bans for 30 s must not be climbed back towards 0.85 x 2/s again.
    lim = HostLimiter("h", 2, 0.5, 0.5, park_after=6, rng=random.Random(1))
    lim.started(0.0)
    lim.finished_ok()
    _banned_for(lim, 0.6, 31.0)
    assert lim.ceiling == pytest.approx(0.85 * 1.0) and lim.cap == lim.ceiling
    assert lim.rate <= lim.ceiling
    for _ in range(200):  # the run after the ban: the climb stops under it
        lim.started(40.0)
        lim.finished_ok()
    assert lim.rate <= 0.85


def test_a_short_ban_at_the_configured_pace_keeps_the_first_lesson() -> None:
    lim = HostLimiter("h", 2, 0.5, 0.5, park_after=6, rng=random.Random(1))
    lim.started(0.0)
    lim.finished_ok()
    _banned_for(lim, 0.6, 6.9)  # ~6 s (a 5 s ban, retried): another costs less than a slower pace
    assert lim.ceiling > 1.0


def test_a_long_ban_after_a_climb_keeps_the_lesson_the_climb_gave() -> None:
    # Refused only after a clean climb: the last clean rate bounds the limit from below, so
    # the lesson near the pace that met the trouble stands however long the ban.
    lim = HostLimiter("h", 2, 0.5, 0.0, park_after=6, rng=random.Random(1))
    now = 0.0
    for _ in range(12):
        lim.started(now)
        lim.finished_ok()
        now = lim.next_start
    assert lim.rate > 2.0
    first = None
    lim.started(now)
    lim.finished_transient(now, "HTTP 503")
    first = lim.ceiling
    _banned_for(lim, now + 0.5, now + 40.0)
    assert lim.ceiling == first and first > 1.7


def _taught_first(lim: HostLimiter) -> float:
    """A first lesson at 2/s, then the host fine again: the time after."""
    lim.started(0.0)
    lim.finished_ok()
    lim.started(0.5)
    lim.finished_transient(0.5, "HTTP 503")
    now = lim.next_start
    lim.started(now)
    lim.finished_ok()
    return now


def test_trouble_beside_another_probe_well_under_the_ceiling_caps_the_concurrency() -> None:
    # A CDN allowing one connection at a time: refused while another probe of ours was on it,
    # at a rate well under what the host allows. The concurrency stays at one for the run.
    lim = HostLimiter("h", 2, 0.5, 0.0, park_after=6, rng=random.Random(1))
    now = _taught_first(lim)
    assert lim.conc_cap == 0 and lim.ceiling > 1.5
    lim.rate = 0.5  # well under the ceiling
    lim.started(now)
    lim.started(now + 2.0)  # a second at once, while the first still runs
    lim.finished_transient(now + 2.0, "HTTP 503")
    assert lim.conc_cap == 1 and lim.concurrency == 1
    lim.finished_ok()
    for _ in range(100):  # a long clean run: never two at once again
        lim.started(now + 10)
        lim.finished_ok()
    assert lim.concurrency == 1
    lim.started(now + 20, holds=True)  # a hung channel's long retry is a connection too
    lim.started(now + 20)
    lim.finished_transient(now + 20, "HTTP 503")
    assert lim.concurrency == 1


def test_trouble_alone_well_under_the_ceiling_leaves_the_concurrency_alone() -> None:
    lim = HostLimiter("h", 2, 0.5, 0.0, park_after=6, rng=random.Random(1))
    now = _taught_first(lim)
    lim.rate = 0.5
    lim.started(now)  # nothing else of ours on the host: the rate, not the connections
    lim.finished_transient(now, "HTTP 503")
    assert lim.conc_cap == 0
    for _ in range(30):
        lim.started(now + 10)
        lim.finished_ok()
    assert lim.concurrency == 2


def test_back_under_a_lesson_the_rate_climbs_an_answer_at_a_time() -> None:
    # TCP's slow start up to its threshold: after trouble, the ceiling is a lesson already, so
    # each clean answer climbs towards it; before any trouble a step takes CLEAN_STREAK answers.
    lim = HostLimiter("h", 2, 0.5, 0.0, park_after=6, rng=random.Random(1))
    lim.started(0.0)
    lim.finished_ok()
    assert lim.rate == 2.0  # no step yet
    lim.started(0.5)
    lim.finished_transient(0.5, "HTTP 503")
    now = lim.next_start
    lim.started(now)
    lim.finished_transient(now, "connection refused", refused=True)  # a ban: trouble in a row
    halved, ceiling = lim.rate, lim.ceiling
    assert halved < ceiling and lim.level == 2
    rates = []
    for _ in range(2):
        now = lim.next_start
        lim.started(now)
        lim.finished_ok()
        rates.append(lim.rate)
    assert halved < rates[0] < rates[1] <= ceiling  # each answer a step
    assert lim.mode is HostMode.NORMAL and lim.level == 0
    steps = 0
    lim.rate = ceiling / 2  # recovered: a step every CLEAN_STREAK answers again
    for _ in range(2 * CLEAN_STREAK):
        before = lim.rate
        lim.started(now)
        lim.finished_ok()
        steps += lim.rate != before
    assert steps == 2
