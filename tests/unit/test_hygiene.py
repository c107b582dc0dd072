"""The test-hygiene fixtures themselves can fail: a leaked task fails its test."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INNER = """
import asyncio

from tests.conftest import _no_leaked_tasks  # noqa: F401  (the autouse fixture under test)


async def test_leaks() -> None:
    asyncio.get_running_loop().create_task(asyncio.sleep(3600), name="forgotten")


async def test_clean() -> None:
    task = asyncio.create_task(asyncio.sleep(0))
    await task
"""


def test_leaked_task_fails_the_test(pytester: pytest.Pytester) -> None:
    """A test leaving a task pending fails with the task named; a clean one passes."""
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)  # test_leaks passes, its teardown errors
    result.stdout.fnmatch_lines(["*1 task(s) left running*", "*forgotten*"])


def test_metrics_start_fresh_first() -> None:
    """Counts left by an earlier test are gone (the two tests below run in file order)."""
    from plextuner.metrics import REFRESH_CRASHES

    REFRESH_CRASHES.labels(task="hygiene").inc(5)


def test_metrics_start_fresh_second() -> None:
    from plextuner.metrics import REGISTRY

    value = REGISTRY.get_sample_value("plextuner_refresh_crashes_total", {"task": "hygiene"})
    assert value is None
